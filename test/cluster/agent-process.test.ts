// `meshstor agent --state kube` (on SimulatedHost) against the real apiserver, with the controller:
// the agent publishes its MeshStorNode, the controller places a volume on it, NodeStage records the
// array in the volume's status, and deletion completes only after the agent wiped the partition.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { ControllerService } from '../../csi/controller.ts';
import { mountCap } from '../../csi/test/requests.ts';
import { NODE_KEY } from '../../csi/topology.ts';
import { GROUP, type MeshStorNode, type MeshStorVolume, PLURAL, VERSION } from '../../kube/crds.ts';
import { GiB } from '../../placement/units.ts';
import { KubeNodeInventory, KubeVolumeStore } from '../../state/kube-store.ts';
import { csiNodeClient } from '../support/csi-client.ts';
import { MeshstorProcess } from '../support/meshstor-process.ts';
import { Kube, until } from './kube.ts';

describe('meshstor agent --state kube', () => {
  it('publishes its node, stages a volume the controller placed on it, and wipes it on deletion', async () => {
    const { kubeconfig } = inject('cluster');
    const k = new Kube(kubeconfig);
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-agent-kube-'));
    const socket = join(dir, 'csi.sock');
    const agent = new MeshstorProcess([
      'agent',
      '--host',
      'simulated',
      '--csi-socket',
      socket,
      '--node',
      'agent-n1',
      '--zone',
      'za',
      '--kubeconfig',
      kubeconfig,
      '--resync-seconds',
      '1',
      '--drives',
      '50GiB',
      // this test plays kubelet, with its staging and target paths under this directory
      '--kubelet-dir',
      dir,
    ]);
    try {
      await agent.waitFor('serving');
      const nodeRef = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorNode, name: 'agent-n1' };
      const node = (await k.custom.getClusterCustomObject(nodeRef)) as MeshStorNode;
      expect(node.spec.topology?.zone).toBe('za');
      expect(node.status?.drives?.map((d) => d.sizeBytes)).toEqual([50 * GiB]);
      expect(node.status?.hostNQN).toBe('nqn.2014-08.org.nvmexpress:uuid:meshstor-agent-n1');
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');

      const ctl = new ControllerService({
        store: new KubeVolumeStore(k.kc),
        inventory: new KubeNodeInventory(k.kc),
      });
      const { volume } = await ctl.createVolume({
        name: 'pvc-agent',
        capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
        volume_capabilities: [mountCap],
        parameters: { replicaCount: '1' },
        secrets: {},
        volume_content_source: null,
        accessibility_requirements: { requisite: [], preferred: [{ segments: { [NODE_KEY]: 'agent-n1' } }] },
        mutable_parameters: {},
      });
      const volRef = {
        group: GROUP,
        version: VERSION,
        plural: PLURAL.MeshStorVolume,
        name: volume.volume_id,
      };
      expect(
        ((await k.custom.getClusterCustomObject(volRef)) as MeshStorVolume).spec.replicas?.[0]?.node,
      ).toBe('agent-n1');

      const client = csiNodeClient(socket);
      const call = client.call;
      const staging = join(dir, 'stage');
      await call('NodeStageVolume', {
        volume_id: volume.volume_id,
        staging_target_path: staging,
        volume_capability: mountCap,
      });
      const staged = (await k.custom.getClusterCustomObject(volRef)) as MeshStorVolume;
      expect(staged.status?.arrayUUID).toBeTruthy();
      expect(staged.status?.members?.map((m) => m.state)).toEqual(['InSync']);
      await until('the partition in the MeshStorNode', 15_000, async () => {
        const n = (await k.custom.getClusterCustomObject(nodeRef)) as MeshStorNode;
        return n.status?.drives?.[0]?.partitions?.some((p) => p.owner?.volume === volume.volume_id)
          ? true
          : undefined;
      });
      await call('NodeUnstageVolume', { volume_id: volume.volume_id, staging_target_path: staging });

      await ctl.deleteVolume({ volume_id: volume.volume_id, secrets: {} });
      // held by its finalizer until the agent has wiped the partition; then the controller lets go
      await until('the agent to wipe the partition and the volume to go', 20_000, async () => {
        await ctl.deleteVolume({ volume_id: volume.volume_id, secrets: {} });
        try {
          await k.custom.getClusterCustomObject(volRef);
          return undefined;
        } catch (e) {
          return (e as { code?: number }).code === 404 ? true : undefined;
        }
      });
      expect(agent.logged('wiped', { partitions: ['agent-n1/SIMagent-n1-0/pvc-agent/r0'] })).toBe(true);

      // A layout the node cannot serve (an extent past its drive's end): a Warning Event on the volume.
      await k.custom.createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL.MeshStorVolume,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'MeshStorVolume',
          metadata: { name: 'beyond-the-end' },
          spec: {
            sizeBytes: GiB,
            replicaCount: 1,
            replicas: [
              {
                id: 'r0',
                node: 'agent-n1',
                drive: 'SIMagent-n1-0',
                extent: { start: 60 * GiB, end: 61 * GiB },
              },
            ],
          },
        },
      });
      const event = await until('a ReplicaNotServed event', 20_000, async () => {
        const l = await k.core.listNamespacedEvent({
          namespace: 'default',
          fieldSelector: 'involvedObject.name=beyond-the-end',
        });
        return l.items.find((e) => e.reason === 'ReplicaNotServed');
      });
      expect(event.type).toBe('Warning');
      expect(event.message).toMatch(/^node agent-n1, replica r0: /);
      await k.custom.deleteClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL.MeshStorVolume,
        name: 'beyond-the-end',
      });
      client.close();
    } finally {
      await agent.stop();
    }
  });
});

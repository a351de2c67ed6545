// The agent's MeshStorNode against the real apiserver: identity from the Node (a cordon, new
// topology labels) and what the agent found at start (skipped drives, kernel modules) reach it,
// and a condition keeps its transition time while its status holds.
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { SimulatedHost } from '../../agent/host/simulated.ts';
import { type NodeIdentity, NodePublisher } from '../../agent/publisher.ts';
import { NODE_CONDITION } from '../../kube/crds.ts';
import { nodeInfoFrom } from '../../state/placement-model.ts';
import { Kube } from './kube.ts';

const GiB = 2 ** 30;
let k: Kube;
beforeAll(() => {
  k = new Kube(inject('cluster').kubeconfig);
});

describe('NodePublisher', () => {
  it('publishes the identity, skipped drives and conditions; follows a cordon and a relabel', async () => {
    const host = new SimulatedHost({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000000beef',
      drives: [{ id: 'SIM0', sizeBytes: 20 * GiB }],
    });
    const id: NodeIdentity = {
      nodeName: 'pub-1',
      zone: 'z1',
      address: 'fd00::1',
      port: 4420,
      schedulable: true,
    };
    const pub = new NodePublisher(k.kc, id, host);
    const modulesMissing = {
      type: NODE_CONDITION.KernelModulesLoaded,
      status: 'False' as const,
      reason: 'ModulesMissing',
      message: 'kernel modules missing: nvmet-tcp',
    };
    pub.setReport({
      skippedDrives: [
        { id: 'OS1', path: '/dev/nvme0n1', reason: 'has partitions MeshStor did not create (nvme0n1p1)' },
      ],
      conditions: [modulesMissing],
    });
    await pub.publish();
    const first = await k.getMeshStorNode('pub-1');
    expect(first.spec.topology).toEqual({ zone: 'z1' });
    expect(first.status?.schedulable).toBe(true);
    expect(first.status?.nvmeofAddress).toEqual({ transport: 'tcp', address: 'fd00::1', port: 4420 });
    expect(first.status?.skippedDrives?.map((d) => d.id)).toEqual(['OS1']);
    const since = first.status?.conditions?.find((c) => c.type === NODE_CONDITION.KernelModulesLoaded);
    expect(since).toMatchObject(modulesMissing);

    await new Promise((r) => setTimeout(r, 1100)); // condition times have a one-second resolution
    pub.identify({ ...id, rack: 'r9', schedulable: false });
    await pub.publish();
    const second = await k.getMeshStorNode('pub-1');
    expect(second.spec.topology).toEqual({ zone: 'z1', rack: 'r9' });
    expect(second.status?.schedulable).toBe(false);
    const still = second.status?.conditions?.find((c) => c.type === NODE_CONDITION.KernelModulesLoaded);
    expect(still?.lastTransitionTime).toBe(since?.lastTransitionTime);
    const info = nodeInfoFrom(second, true);
    expect([info.schedulable, info.labels]).toEqual([false, { zone: 'z1', rack: 'r9' }]);

    pub.setReport({
      conditions: [{ ...modulesMissing, status: 'True', reason: 'AllLoaded', message: 'all loaded' }],
    });
    await pub.publish();
    const third = await k.getMeshStorNode('pub-1');
    expect(third.status?.skippedDrives).toBeUndefined();
    const now = third.status?.conditions?.find((c) => c.type === NODE_CONDITION.KernelModulesLoaded);
    expect(now?.status).toBe('True');
    expect(now?.lastTransitionTime).not.toBe(since?.lastTransitionTime);
  });
});

// Node loss on the real apiserver (issue 12 §2): a volume's member is on a node whose MeshStorNode
// heartbeat stopped. Within the grace period the controller's rebuild pass only says when it will
// act (a Normal Event); after it, it places a new member, claims it in that node's MeshStorLedger
// and writes it into the MeshStorVolume (which the CRD accepts as the one extra member it allows),
// marking the lost one Faulty: Ready says Rebuilding n% as the agent reports progress, InSync once
// done, the lost member kept Removed while its node may still hold the partition. A node that is
// deleted for good releases it: the member leaves the record and its claim leaves the ledger.
// The agents' side (adding the member, md's resync) is the unit and kernel tiers'; here the record
// steps the agent would write are written by the test.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RebuildReconciler, reportRebuildPass } from '../../controller/rebuild.ts';
import { RelocationReconciler } from '../../controller/relocation.ts';
import { ControllerService } from '../../csi/controller.ts';
import { NODE_KEY } from '../../csi/topology.ts';
import { EventRecorder } from '../../kube/events.ts';
import { meshStorHeartbeats } from '../../kube/heartbeats.ts';
import { GiB } from '../../placement/units.ts';
import { KubeNodeInventory, KubeVolumeStore } from '../../state/kube-store.ts';
import { updateRecord } from '../../state/store.ts';
import { Kube, recordsOf } from './kube.ts';

let k: Kube;
const NODES = ['rb-1', 'rb-2', 'rb-3'] as const;
const VOL = 'rb-v1';
const MIN = 60_000;

/** Sets a MeshStorNode's heartbeat time (what its agent's publish writes). */
async function beat(name: string, at: Date): Promise<void> {
  const n = await k.getMeshStorNode(name);
  if (n.status) n.status.heartbeatTime = at.toISOString();
  await k.custom.replaceClusterCustomObjectStatus({ ...k.ref('MeshStorNode', name), body: n });
}

const silent = { info: () => undefined, warn: () => undefined };

afterAll(async () => {
  for (const n of NODES) {
    await k.core.deleteNode({ name: n }).catch(() => undefined);
    await k.custom.deleteClusterCustomObject({ ...k.ref('MeshStorNode', n) }).catch(() => undefined);
  }
});

beforeAll(async () => {
  k = new Kube(inject('cluster').kubeconfig);
  for (const [i, n] of NODES.entries()) {
    await k.createNode(n, { zone: `rz${i}`, internalIp: `10.11.0.${i + 1}` });
    await k.createMeshStorNode(n, { driveBytes: 100 * GiB, zone: `rz${i}` });
  }
});

describe('rebuild after node loss (real apiserver)', () => {
  it('grace, then a new member claimed and recorded; Rebuilding n% -> InSync; the lost member released when its node is deleted', async () => {
    const store = recordsOf('rb-', new KubeVolumeStore(k.kc));
    const all = new KubeNodeInventory(k.kc);
    const inventory = { nodes: async () => (await all.nodes()).filter((n) => n.name.startsWith('rb-')) };
    const svc = new ControllerService({ store, inventory, seed: 7 });
    await svc.createVolume({
      name: VOL,
      capacity_range: { required_bytes: String(GiB), limit_bytes: '0' },
      volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } }],
      parameters: { replicaCount: '2' },
      secrets: {},
      volume_content_source: null,
      accessibility_requirements: { requisite: [], preferred: [{ segments: { [NODE_KEY]: 'rb-1' } }] },
      mutable_parameters: {},
    });
    const placed = await store.get(VOL);
    const lostNode = placed?.replicas.find((r) => r.node !== 'rb-1')?.node as string;
    const spare = NODES.find((n) => n !== 'rb-1' && n !== lostNode) as string;
    expect(placed?.replicas.map((r) => r.node)).toContain('rb-1');
    // in use on rb-1 with both copies in sync (what the agents would have reported)
    await updateRecord(store, VOL, (r) => {
      for (const x of r.replicas) x.state = 'InSync';
      r.arrayUuid = 'rb-array';
      r.attachment = { node: 'rb-1', hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:rb-1' };
      return true;
    });

    // the lost node's agent had made and reported its partition before it went away
    const lostMember = placed?.replicas.find((r) => r.node === lostNode);
    const reported = await k.getMeshStorNode(lostNode);
    const drive = reported.status?.drives?.[0];
    if (drive && lostMember)
      drive.partitions = [{ ...lostMember.extent, owner: { volume: VOL, replica: lostMember.id } }];
    await k.custom.replaceClusterCustomObjectStatus({ ...k.ref('MeshStorNode', lostNode), body: reported });

    let now = Date.now();
    const heartbeats = meshStorHeartbeats(k.kc, 0);
    const rebuild = new RebuildReconciler(svc.allocator, {
      heartbeats: async () => new Map([...(await heartbeats())].filter(([n]) => n.startsWith('rb-'))),
      leader: { isLeader: true },
      now: () => now,
    });
    const relocation = new RelocationReconciler(svc.allocator, undefined, { isLeader: true });
    const events = EventRecorder.forCluster(k.kc, 'meshstor-controller-test');
    const eventsOf = async () =>
      (
        await k.core.listNamespacedEvent({
          namespace: 'default',
          fieldSelector: `involvedObject.name=${VOL}`,
        })
      ).items.map((e) => `${e.type} ${e.reason}: ${e.message}`);

    // the lost node's agent stopped 5 minutes ago: down, within the 10-minute grace period
    for (const n of NODES) await beat(n, new Date(now));
    await beat(lostNode, new Date(now - 5 * MIN));
    const waiting = await rebuild.pass();
    expect(waiting.started).toEqual([]);
    expect(waiting.grace).toEqual([
      { volume: VOL, replica: expect.any(String), node: lostNode, rebuildAt: now - 5 * MIN + 10 * MIN },
    ]);
    await reportRebuildPass(waiting, silent, events);

    // 11 minutes: lost. The new member goes on the only node left, claimed before it is recorded.
    now += 6 * MIN;
    for (const n of NODES) if (n !== lostNode) await beat(n, new Date(now));
    const started = await rebuild.pass();
    expect(started.blocked).toEqual([]);
    expect(started.started).toHaveLength(1);
    expect(started.started[0]?.message).toMatch(
      new RegExp(`^r\\d on ${lostNode} \\(lost\\) -> r2 on ${spare}/${spare}-nvme0, from 1 in-sync copy$`),
    );
    await reportRebuildPass(started, silent, events);
    let v = await k.getMeshStorVolume(VOL);
    expect(v.spec.replicas?.map((r) => r.node).sort()).toEqual([...NODES].sort());
    expect(v.status?.relocation).toMatchObject({ toNode: spare, toReplica: 'r2', step: 'adding' });
    expect(v.status?.members?.find((m) => m.node === lostNode)?.state).toBe('Faulty');
    const ready = () => v.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready()?.reason).toBe('Rebuilding');
    const ledger = (await k.custom.getClusterCustomObject(k.ref('MeshStorLedger', spare))) as {
      spec: { claims: { volume: string; replica: string }[] };
    };
    expect(ledger.spec.claims.filter((c) => c.volume === VOL).map((c) => c.replica)).toEqual(['r2']);
    // a second pass starts nothing more: the move holds the volume
    expect((await rebuild.pass()).started).toEqual([]);

    // the attached node's agent reports md's progress, then the end (agent/relocation.ts writes these)
    await updateRecord(store, VOL, (r) => {
      if (!r.relocation) return false;
      r.relocation.step = 'syncing';
      r.relocation.bytesDone = r.sizeBytes / 2;
      const x = r.replicas.find((y) => y.id === 'r2');
      if (x) x.state = 'Syncing';
      return true;
    });
    v = await k.getMeshStorVolume(VOL);
    expect(ready()?.reason).toBe('Rebuilding');
    expect(ready()?.message).toMatch(/as r2 on .*: syncing 50%; 1 of 2 copies in sync$/);
    const lostId = v.status?.members?.find((m) => m.node === lostNode)?.replicaId as string;
    await updateRecord(store, VOL, (r) => {
      if (!r.relocation) return false;
      r.relocation.step = 'done';
      for (const x of r.replicas) x.state = x.id === lostId ? 'Removed' : 'InSync';
      return true;
    });
    await relocation.pass(); // its release waits for the lost node: no agent wiped its partition
    const ended = await rebuild.pass();
    expect(ended.released).toEqual([]);
    v = await k.getMeshStorVolume(VOL);
    expect(v.status?.relocation).toBeUndefined();
    expect(ready()).toMatchObject({
      status: 'True',
      reason: 'InSync',
      message: '2 of 2 copies in sync; attached to rb-1',
    });
    // still in the record (Removed) while its node may hold the partition, and still claimed
    expect(v.status?.members?.find((m) => m.replicaId === lostId)?.state).toBe('Removed');
    const lostLedger = () =>
      k.custom.getClusterCustomObject(k.ref('MeshStorLedger', lostNode)) as Promise<{
        spec: { claims: { volume: string; replica: string }[] };
      }>;
    expect((await lostLedger()).spec.claims.filter((c) => c.volume === VOL).map((c) => c.replica)).toEqual([
      lostId,
    ]);

    // the node is gone for good: its MeshStorNode is deleted; nothing reports the partition any more
    await k.custom.deleteClusterCustomObject({ ...k.ref('MeshStorNode', lostNode) });
    const released = await rebuild.pass();
    expect(released.released).toEqual([VOL]);
    v = await k.getMeshStorVolume(VOL);
    expect(v.spec.replicas?.map((r) => r.node).sort()).toEqual(['rb-1', spare].sort());
    expect((await lostLedger()).spec.claims.filter((c) => c.volume === VOL)).toEqual([]);

    const seen = await eventsOf();
    expect(seen).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(
            `^Normal MemberNodeDown: r\\d on ${lostNode}: .*rebuilt elsewhere at \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\dZ unless`,
          ),
        ),
        expect.stringMatching(/^Normal RebuildStarted: r\d on .* \(lost\) -> r2 on /),
      ]),
    );
    await svc.deleteVolume({ volume_id: VOL, secrets: {} });
  });
});

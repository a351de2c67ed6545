// Relocation: the pod's node has no member of its volume; the controller plans a new member there,
// the attached node's agent adds it, syncs it and removes the leaving one, the leaving node's agent
// wipes its partition, and only then does the controller release the old extent.
import { describe, expect, it } from 'vitest';
import { partitionOf } from '../../agent/owners.ts';
import { cluster, NODES, stage, unstage, volume } from './sim-cluster.ts';

type Cluster = ReturnType<typeof cluster>;

/** Agents' passes and the controller's relocation pass, round after round, until the volume settles. */
async function settle(c: Cluster, id: string, rounds = 10) {
  const log: string[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = await c.relocation.pass();
    log.push(...r.started.map((s) => `started ${s}`), ...r.finished.map((s) => `finished ${s}`));
    log.push(...r.blocked.map((b) => `blocked ${b.volume}: ${b.reason}`));
    for (const n of NODES) await c.node(n).pass();
    const rec = await c.store.get(id);
    if (!rec?.relocation && log.some((l) => l.startsWith('finished'))) break;
  }
  return log;
}

describe('relocation to the attached node', () => {
  it('adds a member on the pod node, removes one elsewhere, wipes it, then releases its extent', async () => {
    const c = cluster();
    // A provisioner's volume id: too long for the GPT name, known by its partition GUID.
    const v1 = 'pvc-9768324c-5b3a-401f-9360-b4148a67d8e5';
    await c.store.create(volume(v1, ['n1', 'n2']));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage(v1)));
    const uuid = (await c.node('n3').host.getArray(v1))?.uuid;

    const log = await settle(c, v1);
    expect(log).toContain(`started ${v1} -> n3`);
    expect(log).toContain(`finished ${v1}`);

    const rec = await c.store.get(v1);
    expect(rec?.relocation).toBeUndefined();
    expect(rec?.replicas).toHaveLength(2);
    expect(rec?.replicas.every((r) => r.state === 'InSync')).toBe(true);
    const nodes = rec?.replicas.map((r) => r.node) ?? [];
    expect(nodes).toContain('n3');
    const left = (['n1', 'n2'] as const).find((n) => !nodes.includes(n)) as 'n1' | 'n2';

    // The array on n3: same array, one member local now, back to two active slots, not degraded.
    const array = await c.node('n3').host.getArray(v1);
    expect(array?.uuid).toBe(uuid);
    expect(array?.raidDevices).toBe(2);
    expect(array?.degraded).toBe(false);
    const added = rec?.replicas.find((r) => r.node === 'n3');
    const local = partitionOf(await c.node('n3').host.listDrives(), {
      volumeId: v1,
      replicaId: added?.id ?? '',
    });
    expect(array?.members.map((m) => m.devicePath)).toContain(local?.path);
    // The leaving node: no export, no partition.
    expect(await c.node(left).host.listExports()).toEqual([]);
    expect((await c.node(left).host.listDrives())[0]?.partitions).toEqual([]);

    // Unstage and stage again: the relocated layout assembles.
    await c.node('n3').svc.nodeUnstageVolume(unstage(v1));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage(v1)));
    expect((await c.node('n3').host.getArray(v1))?.uuid).toBe(uuid);
    expect((await c.node('n3').host.getArray(v1))?.degraded).toBe(false);
  });

  it('does not move a volume that is not healthy, nor one already local', async () => {
    const c = cluster();
    await c.store.create(volume('v2', ['n1', 'n2']));
    await c.withAgents(c.node('n1').svc.nodeStageVolume(stage('v2')));
    expect((await c.relocation.pass()).started).toEqual([]); // a member is on n1 already

    await c.store.create(volume('v3', ['n1', 'n2']));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage('v3')));
    const rec = await c.store.get('v3');
    if (!rec) throw new Error('no record');
    const first = rec.replicas[0];
    if (first) first.state = 'Syncing';
    await c.store.replace(rec);
    expect((await c.relocation.pass()).started).toEqual([]);
    expect((await c.store.get('v3'))?.replicas).toHaveLength(2);
  });

  it('does not plan onto bytes an orphan ledger claim holds (released only after 10 minutes)', async () => {
    const c = cluster();
    await c.store.create(volume('v6', ['n1', 'n2']));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage('v6')));
    // Where the move would go, and an allocation killed after claiming exactly those bytes.
    const plan = (await c.controller.allocator.freshEngine()).planRelocation('v6', 'n3');
    if (!plan.ok || !plan.plan.to) throw new Error('no plan');
    const at = plan.plan.to;
    const l = await c.store.ledger.read('n3');
    await c.store.ledger.write({
      ...l,
      claims: [
        ...l.claims,
        {
          volume: 'killed-mid-create',
          allocation: 'a1',
          replica: 'r0',
          drive: at.drive,
          start: at.start,
          end: at.end,
          claimedAt: new Date().toISOString(),
        },
      ],
    });

    const pass = await c.relocation.pass();
    expect(pass.blocked).toEqual([]);
    expect(pass.started).toEqual(['v6 -> n3']);
    const added = (await c.store.get('v6'))?.replicas.find((r) => r.node === 'n3');
    expect(added?.drive).toBe(at.drive);
    expect(added && (added.extent.start >= at.end || added.extent.end <= at.start)).toBe(true);
  });

  it('resumes after the agent stopped between steps: a second pass finishes what the first began', async () => {
    const c = cluster();
    await c.store.create(volume('v4', ['n1', 'n2']));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage('v4')));
    await c.relocation.pass();
    const rec = await c.store.get('v4');
    expect(rec?.relocation?.step).toBe('adding');
    // As if the agent was killed right after adding the member, before it wrote anything down.
    const added = rec?.replicas.find((r) => r.id === rec.relocation?.toReplica);
    if (!rec || !added) throw new Error('no new member');
    const { ensurePartition } = await import('../../agent/exports.ts');
    const part = await ensurePartition(c.node('n3').host, rec, added);
    await c.node('n3').host.addMember('v4', part.path);
    expect((await c.store.get('v4'))?.relocation?.step).toBe('adding');

    const log = await settle(c, 'v4');
    expect(log).toContain('finished v4');
    const array = await c.node('n3').host.getArray('v4');
    expect(array?.members.filter((m) => m.state === 'in_sync')).toHaveLength(2);
    expect(array?.raidDevices).toBe(2);
  });
});

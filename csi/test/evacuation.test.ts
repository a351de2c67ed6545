// A drain's moves (issue 12 §4): every member on an evacuating node moves off it through the
// relocation steps, to where placement puts it (here the only other node), add before remove;
// a degraded volume waits (it is caught up or rebuilt first), and no member moves onto the node.
import { describe, expect, it } from 'vitest';
import { RelocationReconciler } from '../../controller/relocation.ts';
import { moveNeeded } from '../../controller/relocator.ts';
import type { VolumeRecord } from '../../state/store.ts';
import { cluster, NODES, stage, volume } from './sim-cluster.ts';

describe('evacuating a node', () => {
  it('moves the member off the node to another, through the relocation steps, and frees it', async () => {
    const c = cluster();
    await c.store.create(volume('ev1', ['n1', 'n2']));
    await c.withAgents(c.node('n1').svc.nodeStageVolume(stage('ev1')));
    const reconciler = new RelocationReconciler(
      c.controller.allocator,
      undefined,
      undefined,
      async () => new Set(['n2']),
    );
    const log: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await reconciler.pass();
      log.push(...r.started.map((s) => `started ${s}`), ...r.finished.map((s) => `finished ${s}`));
      for (const n of NODES) await c.node(n).pass();
      if (log.some((l) => l.startsWith('finished'))) break;
    }
    expect(log).toContain('started ev1 -> n3 (off n2)');
    expect(log).toContain('finished ev1');
    const rec = await c.store.get('ev1');
    expect(rec?.replicas.map((r) => [r.node, r.state]).sort()).toEqual([
      ['n1', 'InSync'],
      ['n3', 'InSync'],
    ]);
    const array = await c.node('n1').host.getArray('ev1');
    expect(array?.degraded).toBe(false);
    expect(array?.members.map((m) => m.state)).toEqual(['in_sync', 'in_sync']);
    // nothing of the volume is left on the evacuated node
    expect(await c.node('n2').host.listExports()).toEqual([]);
    expect((await c.node('n2').host.listDrives())[0]?.partitions).toEqual([]);
    // and nothing more to do
    expect((await reconciler.pass()).started).toEqual([]);
  });

  it('runs at most two moves off evacuating nodes at once, the larger volume first; the rest queue', async () => {
    const c = cluster();
    for (const id of ['q1', 'q2', 'q3']) {
      const v = volume(id, ['n1', 'n2']);
      if (id === 'q3') v.sizeBytes *= 2; // the largest of equally exposed volumes goes first
      await c.store.create(v);
      await c.withAgents(c.node('n1').svc.nodeStageVolume(stage(id)));
    }
    const reconciler = new RelocationReconciler(
      c.controller.allocator,
      undefined,
      undefined,
      async () => new Set(['n2']),
    );
    const first = await reconciler.pass();
    expect(first.started.map((s) => s.split(' ')[0])).toEqual(['q3', 'q1']);
    expect(first.queued).toEqual(['q2']);
    expect(first.blocked).toEqual([]);
    // still two running: the third stays queued
    expect((await reconciler.pass()).queued).toEqual(['q2']);
  });

  it('starts no move of a degraded or unattached volume, and none onto an evacuating node', () => {
    const rec = (states: VolumeRecord['replicas'][number]['state'][], attached?: string): VolumeRecord => {
      const v = volume('ev2', ['n1', 'n2']);
      v.replicas.forEach((r, i) => {
        r.state = states[i] ?? 'InSync';
      });
      if (attached) v.attachment = { node: attached, hostNqn: `nqn.x:${attached}` };
      return v;
    };
    const off = new Set(['n2']);
    expect(moveNeeded(rec(['InSync', 'InSync'], 'n1'), off)).toEqual({ kind: 'evacuate', off: 'n2' });
    // the only in-sync copy outside n2 is missing: n2's member is not moved, the volume is caught up or rebuilt first
    expect(moveNeeded(rec(['Faulty', 'InSync'], 'n1'), off)).toBeUndefined();
    // no node runs its array, so nobody can resync a new member
    expect(moveNeeded(rec(['InSync', 'InSync']), off)).toBeUndefined();
    // its pod is on the evacuating node n3: no member follows it there
    expect(moveNeeded(rec(['InSync', 'InSync'], 'n3'), new Set(['n3']))).toBeUndefined();
    expect(moveNeeded(rec(['InSync', 'InSync'], 'n3'), new Set())).toEqual({ kind: 'follow', to: 'n3' });
  });
});

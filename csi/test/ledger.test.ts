// The allocation ledger as the double-booking check: claims under the ledger's version, a
// controller killed between any two of its writes, the reconciler releasing orphaned claims while
// an allocator may still be writing its record, adoption of records older than the ledger, and
// many controllers (each of which may have lost the Lease without knowing) racing on few nodes.
import { describe, expect, it } from 'vitest';
import { Allocator } from '../../controller/allocator.ts';
import { Claims, ownerOf } from '../../controller/claims.ts';
import { LedgerReconciler } from '../../controller/ledger-reconciler.ts';
import { GiB } from '../../placement/units.ts';
import type { NodeLedger } from '../../state/ledger.ts';
import { MemoryVolumeStore, StaticInventory } from '../../state/memory-store.ts';
import { agentReady, nodeInfoFrom } from '../../state/placement-model.ts';
import type { VolumeRecord, VolumeStore } from '../../state/store.ts';
import { msNode } from '../../state/test/crd-fixtures.ts';
import { ControllerService } from '../controller.ts';

const inventory = (n: number, gib: number) =>
  new StaticInventory(
    Array.from({ length: n }, (_, i) => {
      const m = msNode(`n${i}`, { driveBytes: gib * GiB, zone: `z${i % 3}` });
      return nodeInfoFrom(m, agentReady(m));
    }),
  );

const createReq = (name: string, gib = 2) => ({
  name,
  capacity_range: { required_bytes: String(gib * GiB), limit_bytes: '0' },
  volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } }],
  parameters: { replicaCount: '2', spread: 'none' },
  secrets: {},
  volume_content_source: null,
  accessibility_requirements: null,
  mutable_parameters: {},
});

/** Pairs of live records that share a byte. */
function overlaps(records: readonly VolumeRecord[]): string[] {
  const out: string[] = [];
  const taken = records.flatMap((v) =>
    v.replicas.map((r) => ({ v: v.id, k: `${r.node}/${r.drive}`, ...r.extent })),
  );
  for (const [i, x] of taken.entries())
    for (const y of taken.slice(i + 1))
      if (x.k === y.k && x.start < y.end && y.start < x.end) out.push(`${x.v} overlaps ${y.v} on ${x.k}`);
  return out;
}

/** Every record's bytes are claimed for it, and every claim is held by its record. */
async function ledgerMatchesRecords(store: VolumeStore): Promise<string[]> {
  const problems: string[] = [];
  const records = await store.list();
  const ledgers = await store.ledger.list();
  const on = (node: string) => ledgers.find((l) => l.node === node)?.claims ?? [];
  for (const rec of records) {
    const o = ownerOf(rec);
    for (const r of rec.replicas) {
      const ok = on(r.node).some(
        (c) =>
          c.volume === o.volume &&
          c.allocation === o.allocation &&
          c.replica === r.id &&
          c.start <= r.extent.start &&
          c.end >= r.extent.end,
      );
      if (!ok) problems.push(`${rec.id}/${r.id} on ${r.node} is not claimed`);
    }
  }
  for (const l of ledgers) {
    for (const c of l.claims) {
      const rec = records.find((x) => x.id === c.volume && ownerOf(x).allocation === c.allocation);
      if (!rec?.replicas.some((r) => r.id === c.replica && r.node === l.node))
        problems.push(`claim ${c.volume}/${c.replica} on ${l.node} has no record`);
    }
  }
  return problems;
}

/**
 * A controller process that is killed after its `killAfter`-th write: that write lands, then it
 * and everything after it fails without effect (a dead process writes nothing more).
 */
function mortal(store: MemoryVolumeStore, killAfter: number): VolumeStore {
  let writes = 0;
  let dead = false;
  const alive = () => {
    if (dead) throw new Error('the process is dead');
  };
  const wrote = () => {
    if (++writes >= killAfter) {
      dead = true;
      throw new Error(`killed after write ${writes}`);
    }
  };
  return {
    get: async (id) => {
      alive();
      return store.get(id);
    },
    list: async () => {
      alive();
      return store.list();
    },
    create: async (r) => {
      alive();
      await store.create(r);
      wrote();
    },
    replace: async (r) => {
      alive();
      await store.replace(r);
      wrote();
    },
    remove: async (id) => {
      alive();
      await store.remove(id);
      wrote();
    },
    ledger: {
      read: async (n) => {
        alive();
        return store.ledger.read(n);
      },
      list: async () => {
        alive();
        return store.ledger.list();
      },
      write: async (l: NodeLedger) => {
        alive();
        const out = await store.ledger.write(l);
        wrote();
        return out;
      },
    },
  };
}

describe('the allocation ledger', () => {
  it('of two claims on the same bytes only one is written; claims on other bytes of the node both are', async () => {
    const store = new MemoryVolumeStore();
    const [a, b] = [new Claims(store.ledger), new Claims(store.ledger)] as const;
    const r = (start: number) => ({
      id: 'r0',
      node: 'n0',
      drive: 'nvme0',
      extent: { start, end: start + GiB },
    });
    // Both remember the empty ledger, then write over it: the second is refused and re-reads.
    const [x, y] = await Promise.all([
      a.claim({ volume: 'x', allocation: 'ax' }, [r(0)]),
      b.claim({ volume: 'y', allocation: 'ay' }, [r(GiB / 2)]),
    ]);
    expect([x, y].filter((c) => c === undefined)).toHaveLength(1);
    expect((x ?? y)?.clash.volume).toBe(x ? 'y' : 'x');
    expect(await b.claim({ volume: 'z', allocation: 'az' }, [r(4 * GiB)])).toBeUndefined();
    expect(await a.claim({ volume: 'w', allocation: 'aw' }, [r(8 * GiB)])).toBeUndefined(); // a's version was stale
    expect((await store.ledger.read('n0')).claims.map((c) => c.volume).sort()).toEqual(
      [x ? 'y' : 'x', 'w', 'z'].sort(),
    );
  });

  it('another attempt for the same volume is another owner: its release never frees the winner', async () => {
    const store = new MemoryVolumeStore();
    const claims = new Claims(store.ledger);
    const r = { id: 'r0', node: 'n0', drive: 'nvme0', extent: { start: 0, end: GiB } };
    expect(await claims.claim({ volume: 'v', allocation: 'first' }, [r])).toBeUndefined();
    expect((await claims.claim({ volume: 'v', allocation: 'second' }, [r]))?.clash.allocation).toBe('first');
    await claims.release({ volume: 'v', allocation: 'second' }, [r]);
    expect(await claims.holds({ volume: 'v', allocation: 'first' }, [r])).toBe(true);
  });

  for (const killAfter of [1, 2, 3]) {
    it(`a controller killed after write ${killAfter} of 3 (claim, claim, record) leaves nothing a retry or the reconciler cannot settle`, async () => {
      const store = new MemoryVolumeStore();
      const inv = inventory(3, 40);
      const dying = new ControllerService({ store: mortal(store, killAfter), inventory: inv, seed: 5 });
      await expect(dying.createVolume(createReq('v'))).rejects.toThrow(/killed/);
      // external-provisioner retries on the controller that took over (the same seed: the same
      // bytes are its first choice, so a claim left behind is really in its way).
      const next = new ControllerService({ store, inventory: inv, seed: 5, backoffMs: 1 });
      const { volume } = await next.createVolume(createReq('v'));
      expect(volume.volume_id).toBe('v');
      await next.createVolume(createReq('w'));
      expect(overlaps(await store.list())).toEqual([]);
      // A young orphan is left alone; once old, the reconciler releases it and the ledger and the
      // records tell the same story.
      const young = await new LedgerReconciler(next.allocator).pass();
      expect(young.released).toBe(0);
      const old = await new LedgerReconciler(next.allocator, { orphanAfterMs: 0 }).pass();
      expect(old.released).toBe(killAfter < 3 ? killAfter : 0);
      expect(old.clashes).toEqual([]);
      expect(await ledgerMatchesRecords(store)).toEqual([]);
    });
  }

  it('the reconciler revoking a claim while its record is being written: one of the two yields, never both keep it', async () => {
    for (const when of ['before the record', 'after the record'] as const) {
      const base = new MemoryVolumeStore();
      const inv = inventory(3, 40);
      let reconciler: LedgerReconciler | undefined;
      let passes = 0;
      // The first record write of the allocation runs a reconciler pass that takes every claim
      // for orphaned (a stall longer than the grace period), just before or just after it lands.
      const store: VolumeStore = {
        get: (id) => base.get(id),
        list: () => base.list(),
        replace: (r) => base.replace(r),
        remove: (id) => base.remove(id),
        ledger: base.ledger,
        create: async (r) => {
          if (when === 'before the record' && passes++ === 0) await reconciler?.pass();
          await base.create(r);
          if (when === 'after the record' && passes++ === 0) await reconciler?.pass();
        },
      };
      const ctl = new ControllerService({ store, inventory: inv, seed: 2, backoffMs: 1 });
      reconciler = new LedgerReconciler(new Allocator({ store: base, inventory: inv }), { orphanAfterMs: 0 });
      const { volume } = await ctl.createVolume(createReq('v'));
      expect(volume.volume_id).toBe('v');
      // Before: the claim was dropped, the allocator saw it gone after writing and yielded.
      // After: the reconciler found the record and took its revocation back; nothing yielded.
      expect(ctl.collisions, when).toBe(when === 'before the record' ? 1 : 0);
      const live = (await base.list()).filter((r) => r.phase === 'Active');
      expect(live.map((r) => r.id)).toEqual(['v']);
      expect(
        await ctl.allocator.claims.holds(
          ownerOf(live[0] as VolumeRecord),
          (live[0] as VolumeRecord).replicas,
        ),
      ).toBe(true);
    }
  });

  it('a record whose writer was killed before its check, after the reconciler dropped its claims, is claimed again or withdrawn by the retry', async () => {
    for (const meanwhile of ['nothing', 'another allocation took the bytes'] as const) {
      const base = new MemoryVolumeStore();
      const inv = inventory(3, 40);
      const reconciler = new LedgerReconciler(new Allocator({ store: base, inventory: inv }), {
        orphanAfterMs: 0,
      });
      const stalled: VolumeStore = {
        get: (id) => base.get(id),
        list: () => base.list(),
        replace: (r) => base.replace(r),
        remove: (id) => base.remove(id),
        ledger: base.ledger,
        create: async (r) => {
          await reconciler.pass(); // the stall: the claims look orphaned and are dropped
          await base.create(r);
          throw new Error('killed before the check');
        },
      };
      await expect(
        new ControllerService({ store: stalled, inventory: inv, seed: 4 }).createVolume(createReq('v')),
      ).rejects.toThrow(/killed/);
      const rec = (await base.get('v')) as VolumeRecord;
      expect(await new Claims(base.ledger).holds(ownerOf(rec), rec.replicas)).toBe(false);
      if (meanwhile !== 'nothing') {
        const r0 = rec.replicas[0] as VolumeRecord['replicas'][number];
        expect(
          await new Claims(base.ledger).claim({ volume: 'other', allocation: 'o' }, [r0]),
        ).toBeUndefined();
      }
      const retry = new ControllerService({ store: base, inventory: inv, seed: 4 });
      if (meanwhile === 'nothing') {
        expect((await retry.createVolume(createReq('v'))).volume.volume_id).toBe('v');
        expect(await ledgerMatchesRecords(base)).toEqual([]);
      } else {
        await expect(retry.createVolume(createReq('v'))).rejects.toThrow(/withdrawn/);
        expect(await base.get('v')).toBeUndefined(); // nothing on disk: released at once
      }
    }
  });

  it('never withdraws a record that may be in use, nor one older than the ledger, whatever the ledger shows', async () => {
    const store = new MemoryVolumeStore();
    const inv = inventory(1, 40);
    const rec = (id: string, allocation?: string, arrayUuid?: string): VolumeRecord => ({
      id,
      name: id,
      sizeBytes: GiB,
      replicaCount: 1,
      spread: { domain: 'zone', mode: 'none' },
      fsType: 'xfs',
      replicas: [
        { id: 'r0', node: 'n0', drive: 'nvme0', extent: { start: 0, end: 2 * GiB }, state: 'Pending' },
      ],
      phase: 'Active',
      allocation,
      arrayUuid,
    });
    // Another allocation holds the bytes both records name (as a pre-ledger double booking would).
    await new Claims(store.ledger).claim({ volume: 'other', allocation: 'o' }, [
      { id: 'r0', node: 'n0', drive: 'nvme0', extent: { start: 0, end: 2 * GiB } },
    ]);
    await store.create(rec('legacy'));
    await store.create(rec('in-use', 'a1', 'uuid-1'));
    const ctl = new ControllerService({ store, inventory: inv });
    const one = { ...createReq('legacy', 1), parameters: { replicaCount: '1', spread: 'none' } };
    expect((await ctl.createVolume(one)).volume.volume_id).toBe('legacy');
    const two = { ...createReq('in-use', 1), parameters: { replicaCount: '1', spread: 'none' } };
    await expect(ctl.createVolume(two)).rejects.toThrow(/not withdrawn/);
    expect((await store.get('legacy'))?.phase).toBe('Active');
    expect((await store.get('in-use'))?.phase).toBe('Active');
  });

  it('adopts records written before the ledger existed, and reports bytes two records keep', async () => {
    const store = new MemoryVolumeStore();
    const rec = (id: string, start: number): VolumeRecord => ({
      id,
      name: id,
      sizeBytes: GiB,
      replicaCount: 1,
      spread: { domain: 'zone', mode: 'none' },
      fsType: 'xfs',
      replicas: [
        { id: 'r0', node: 'n0', drive: 'nvme0', extent: { start, end: start + 2 * GiB }, state: 'InSync' },
      ],
      phase: 'Active',
    });
    await store.create(rec('old-1', 0));
    await store.create(rec('old-2', 4 * GiB));
    await store.create(rec('old-3', 5 * GiB)); // shares bytes with old-2: a double booking from before
    const inv = inventory(1, 40);
    const pass = await new LedgerReconciler(new Allocator({ store, inventory: inv })).pass();
    expect(pass.adopted).toBe(2);
    expect(pass.clashes).toEqual(['old-3/r0 on n0/nvme0 overlaps old-2/r0']);
    // The adopted bytes are protected now: a new volume cannot be claimed onto them.
    const ctl = new ControllerService({ store, inventory: inv, seed: 1 });
    await ctl.createVolume({ ...createReq('new', 3), parameters: { replicaCount: '1' } });
    const fresh = (await store.list()).filter((r) => r.id !== 'old-3');
    expect(overlaps(fresh)).toEqual([]);
  });

  it('16 controllers racing on 3 nodes (15 of them may have lost the Lease without knowing) never keep one byte twice', async () => {
    const store = new MemoryVolumeStore();
    const inv = inventory(3, 60);
    const stillLeader = { isLeader: true, currentHolder: 'whoever' };
    const ctls = Array.from(
      { length: 16 },
      () => new ControllerService({ store, inventory: inv, seed: 9, backoffMs: 1, leader: stillLeader }),
    );
    const results = await Promise.allSettled(
      ctls.flatMap((c, i) => [0, 1].map((j) => c.createVolume(createReq(`c${i}-${j}`)))),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.map((f) => String((f as PromiseRejectedResult).reason))).toEqual([]);
    expect(ctls.reduce((n, c) => n + c.collisions, 0)).toBeGreaterThan(0);
    expect(overlaps(await store.list())).toEqual([]);
    expect(await ledgerMatchesRecords(store)).toEqual([]);
  });
});

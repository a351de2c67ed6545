import { describe, expect, it } from 'vitest';
import { PlacementError } from '../../placement/errors.ts';
import { GiB } from '../../placement/units.ts';
import { MemoryVolumeStore, StaticInventory } from '../../state/memory-store.ts';
import { Allocator } from '../allocator.ts';
import { AllocatorRefusal } from '../errors.ts';

const request = (replicaCount: number) => ({
  id: 'v1',
  name: 'v1',
  sizeBytes: GiB,
  replicaCount,
  spread: { domain: 'zone' as const, mode: 'none' as const },
  fsType: 'xfs' as const,
});

describe('Allocator', () => {
  // csi/controller.ts used to wrap placement's refusals in `new Error(message)`, so every code but
  // `exhausted` reached the caller as INTERNAL.
  it("keeps placement's own refusal codes (invalid, exhausted), never a bare Error", async () => {
    const a = new Allocator({ store: new MemoryVolumeStore(), inventory: new StaticInventory([]) });
    const invalid = await a.create(request(9)).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(PlacementError);
    expect((invalid as PlacementError).code).toBe('invalid');
    const exhausted = await a.create(request(1)).catch((e: unknown) => e);
    expect(exhausted).toBeInstanceOf(PlacementError);
    expect((exhausted as PlacementError).code).toBe('exhausted');
  });

  it('refuses as unavailable while another controller holds the allocator lease', async () => {
    const a = new Allocator({
      store: new MemoryVolumeStore(),
      inventory: new StaticInventory([]),
      leader: { isLeader: false, currentHolder: 'controller-b' },
    });
    expect(() => a.requireLeader()).toThrow(AllocatorRefusal);
    expect(() => a.requireLeader()).toThrow(/lease held by controller-b/);
    expect(a.isLeader).toBe(false);
  });
});

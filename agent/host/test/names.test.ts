import { describe, expect, it } from 'vitest';
import {
  arrayName,
  guardName,
  guardPrefix,
  guardUuid,
  MAX_ARRAY_NAME,
  ownerFromSubsystemNqn,
  partitionOfGuard,
  subsystemNqn,
} from '../names.ts';

describe('arrayName', () => {
  it('keeps a short volume id readable', () => {
    expect(arrayName('vol-s')).toBe('ms-vol-s');
    expect(arrayName('a'.repeat(28))).toBe(`ms-${'a'.repeat(28)}`);
  });

  it('names longer ids by a hash that fits what mdadm keeps of a name', () => {
    for (const id of ['a'.repeat(29), 'pvc-2f0c6a1e-8d7b-4c55-9e3a-71b0d4c2a9f6']) {
      const n = arrayName(id);
      expect(n).toMatch(/^ms-[0-9a-f]+$/);
      expect(n.length).toBe(MAX_ARRAY_NAME);
    }
    expect(arrayName('a'.repeat(29))).not.toBe(arrayName('a'.repeat(30)));
  });
});

describe('ownerFromSubsystemNqn', () => {
  it('reads back the replica of a MeshStor subsystem NQN, and nothing from anybody else’s', () => {
    const o = { volumeId: 'pvc-9768324c-5b3a-401f-9360-b4148a67d8e5', replicaId: 'r2' };
    expect(ownerFromSubsystemNqn(subsystemNqn(o))).toEqual(o);
    expect(ownerFromSubsystemNqn('nqn.2014-08.org.nvmexpress:uuid:foreign')).toBeUndefined();
    expect(ownerFromSubsystemNqn(`${subsystemNqn(o)}:extra`)).toBeUndefined();
  });
});

describe('fence layer names', () => {
  it('say the volume and the partition, and give the partition back', () => {
    const n = guardName('vol-s', 'nvme0n1p3');
    expect(n).toBe('msfence_ms-vol-s_nvme0n1p3');
    expect(partitionOfGuard(n)).toBe('nvme0n1p3');
    expect(guardUuid(n)).toBe('MESHSTOR-msfence_ms-vol-s_nvme0n1p3');
    const long = guardName('pvc-2f0c6a1e-8d7b-4c55-9e3a-71b0d4c2a9f6', 'nvme12n1p100');
    expect(partitionOfGuard(long)).toBe('nvme12n1p100');
    expect(long.length).toBeLessThan(128); // device-mapper names hold 127 characters
  });

  it("never take one volume's layer for another's (ids may contain the other's prefix)", () => {
    const other = guardName('vol-1-x', 'sda1');
    expect(other.startsWith(guardPrefix('vol-1'))).toBe(false);
    expect(guardName('vol-1', 'sda1').startsWith(guardPrefix('vol-1'))).toBe(true);
  });

  it('refuse what is not a kernel partition name, and read no foreign name', () => {
    expect(() => guardName('vol-s', '../sda1')).toThrow(/kernel name/);
    expect(() => guardName('vol-s', 'sda_1')).toThrow(/kernel name/);
    expect(partitionOfGuard('vg0-lv0')).toBeUndefined();
    expect(partitionOfGuard('msfence_ms-vol-s')).toBeUndefined();
  });
});

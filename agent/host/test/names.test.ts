import { describe, expect, it } from 'vitest';
import { arrayName, MAX_ARRAY_NAME, ownerFromSubsystemNqn, subsystemNqn } from '../names.ts';

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

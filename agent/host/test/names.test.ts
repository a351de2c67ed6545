import { describe, expect, it } from 'vitest';
import { arrayName, MAX_ARRAY_NAME } from '../names.ts';

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

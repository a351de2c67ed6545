// The request checks on their own: names and ids, kubelet's paths, capacity ranges.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { type CsiError, codeFor } from '../errors.ts';
import { checkId, checkPath, checkRange, kubeletRoot, shown } from '../validate.ts';

const codeOfThrow = (f: () => unknown) => {
  try {
    f();
    return 'OK';
  } catch (e) {
    return codeFor(e);
  }
};

describe('checkId', () => {
  it('takes up to 128 bytes of printable text', () => {
    expect(checkId('pvc-0a1b', 'name')).toBe('pvc-0a1b');
    expect(checkId('é'.repeat(64), 'name')).toHaveLength(64);
  });
  it.each([
    ['', 'name is required'],
    ['x'.repeat(129), 'name is 129 bytes'],
    ['é'.repeat(65), 'name is 130 bytes'],
    ['a\u0000b', 'control character'],
    ['a\tb', 'control character'],
    ['a\u0085b', 'control character'],
  ])('refuses %j', (v, message) => {
    expect(() => checkId(v, 'name')).toThrow(message);
    expect(codeOfThrow(() => checkId(v, 'name'))).toBe(status.INVALID_ARGUMENT);
  });
  it('never echoes a long value whole', () => {
    try {
      checkId('z'.repeat(100_000), 'name');
    } catch (e) {
      expect((e as CsiError).message.length).toBeLessThan(200);
    }
    expect(shown('q'.repeat(1000))).toHaveLength(67);
  });
});

describe('checkPath', () => {
  const root = kubeletRoot('/var/lib/kubelet/');
  it('takes a normalised absolute path strictly under kubelet’s directory', () => {
    const p = '/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/pv/mount';
    expect(checkPath(p, 'target_path', root)).toBe(p);
  });
  it.each([
    '',
    '/',
    '/etc',
    'var/lib/kubelet/pods/x',
    '/var/lib/kubelet',
    '/var/lib/kubelet/',
    '/var/lib/kubeletX/pods',
    '/var/lib/kubelet/pods/',
    '/var/lib/kubelet/./pods',
    '/var/lib/kubelet//pods',
    '/var/lib/kubelet/pods/../../../../etc',
    '/var/lib/kubelet/pods/a\u0000b',
    `/var/lib/kubelet/${'p/'.repeat(3000)}x`,
  ])('refuses %j with INVALID_ARGUMENT', (p) => {
    expect(codeOfThrow(() => checkPath(p, 'target_path', root))).toBe(status.INVALID_ARGUMENT);
  });
  it('with / as kubelet’s directory takes any absolute path but / itself', () => {
    expect(checkPath('/stage/x', 'p', kubeletRoot('/'))).toBe('/stage/x');
    expect(codeOfThrow(() => checkPath('/', 'p', kubeletRoot('/')))).toBe(status.INVALID_ARGUMENT);
  });
  it('refuses a relative kubelet directory', () => {
    expect(() => kubeletRoot('var/lib/kubelet')).toThrow(/absolute/);
  });
});

describe('checkRange', () => {
  it('reads the bounds, 0 for unset', () => {
    expect(checkRange(null)).toEqual({ required: 0, limit: 0 });
    expect(checkRange({ required_bytes: '10', limit_bytes: '20' })).toEqual({ required: 10, limit: 20 });
  });
  it.each([
    [{ required_bytes: '-1', limit_bytes: '0' }, status.INVALID_ARGUMENT],
    [{ required_bytes: '2', limit_bytes: '1' }, status.INVALID_ARGUMENT],
    [{ required_bytes: '1e3', limit_bytes: '0' }, status.INVALID_ARGUMENT],
    [{ required_bytes: '9223372036854775807', limit_bytes: '0' }, status.OUT_OF_RANGE],
  ])('%j is %s', (range, code) => {
    expect(codeOfThrow(() => checkRange(range))).toBe(code);
  });
});

import type { CoreV1Event } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { EventRecorder } from '../events.ts';

describe('EventRecorder', () => {
  it('writes a Warning on the object once per quiet period; a failed write is reported, not thrown', async () => {
    const written: CoreV1Event[] = [];
    const errors: string[] = [];
    let fail = false;
    const r = new EventRecorder({
      component: 'test',
      quietMs: 1000,
      onError: (m) => errors.push(m),
      write: async (_ns, body) => {
        if (fail) throw new Error('apiserver down');
        written.push(body);
      },
    });
    const on = { kind: 'MeshStorVolume' as const, name: 'v1' };
    expect(await r.warn(on, 'RelocationBlocked', 'no room on n3', 0)).toBe(true);
    expect(await r.warn(on, 'RelocationBlocked', 'no room on n3', 500)).toBe(false);
    expect(await r.warn(on, 'RelocationBlocked', 'another reason', 500)).toBe(true);
    expect(await r.warn(on, 'RelocationBlocked', 'no room on n3', 1500)).toBe(true);
    expect(written).toHaveLength(3);
    expect(written[0]).toMatchObject({
      type: 'Warning',
      reason: 'RelocationBlocked',
      message: 'no room on n3',
      involvedObject: { apiVersion: 'meshstor.io/v1alpha1', kind: 'MeshStorVolume', name: 'v1' },
    });
    fail = true;
    expect(await r.warn(on, 'Other', 'x', 2000)).toBe(false);
    expect(errors[0]).toMatch(/event Other on MeshStorVolume v1: .*apiserver down/);
  });
});

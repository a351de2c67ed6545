// The extender's warm-up before /readyz: it goes through the real HTTP path and both verbs, asks
// about a bound claim (so nothing is reserved), and its calls stay out of the latency histogram.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeLogger } from '../../kube/log.ts';
import { GiB } from '../../placement/units.ts';
import { ExtenderMetrics } from '../metrics.ts';
import { createVerbsApp } from '../server.ts';
import { ExtenderState } from '../state.ts';
import { warmUp, warmUpBody } from '../warm-up.ts';
import { msNode, msVolume } from './fixtures.ts';

const NOW = 1_000_000;
const state = new ExtenderState();
const metrics = new ExtenderMetrics(() => state.sizes());
let server: Server;
let port: number;

beforeAll(async () => {
  state.setStorageClass('meshstor', 'meshstor.io');
  for (const n of ['node-1', 'node-2', 'node-3']) state.setMeshStorNode(msNode(n), NOW);
  state.setMeshStorVolume(msVolume('a', ['node-2']));
  state.setPv('pv-a', 'meshstor.io', 'a');
  // An unbound claim of our class: asking about it would reserve room, so the warm-up must not.
  state.setPvc(
    'default',
    'pending',
    { uid: 'p', volumeName: '', storageClassName: 'meshstor', requestBytes: 10 * GiB, selectedNode: '' },
    NOW,
  );
  state.setPvc(
    'team',
    'pvc-a',
    { uid: 'u', volumeName: 'pv-a', storageClassName: 'meshstor', requestBytes: 10 * GiB, selectedNode: '' },
    NOW,
  );
  const app = createVerbsApp({ state, metrics, log: makeLogger('test', 'silent'), now: () => NOW });
  server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('warm-up', () => {
  it('asks about the real nodes and a bound MeshStor claim', () => {
    const body = JSON.parse(warmUpBody(state, 2));
    expect(body.NodeNames).toEqual(['node-1', 'node-2']);
    expect(body.Pod.metadata.namespace).toBe('team');
    expect(body.Pod.spec.volumes).toEqual([{ name: 'data', persistentVolumeClaim: { claimName: 'pvc-a' } }]);
  });

  it('calls both verbs over HTTP, reserves nothing, and is not counted as kube-scheduler latency', async () => {
    const filter = vi.spyOn(state, 'filter');
    const prioritize = vi.spyOn(state, 'prioritize');
    await warmUp(state, { port }, 7);
    expect(filter).toHaveBeenCalledTimes(7);
    expect(prioritize).toHaveBeenCalledTimes(7);
    // The volume's replica is on node-2: the warm-up really scored it.
    expect(prioritize.mock.results.at(-1)?.value).toContainEqual({ Host: 'node-2', Score: 10 });
    expect(state.reservations()).toEqual([]);
    const counts = (await metrics.latency.get()).values.filter((v) => v.metricName?.endsWith('_count'));
    expect(counts.reduce((n, v) => n + v.value, 0)).toBe(0);
  });
});

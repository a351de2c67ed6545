// The extender's HTTP surface through a real socket: wire format, health, metrics, and bad input
// answered with a clear 4xx while the server keeps serving.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLogger } from '../../kube/log.ts';
import { GiB } from '../../placement/units.ts';
import { ExtenderMetrics } from '../metrics.ts';
import { createExtenderApp } from '../server.ts';
import { ExtenderState } from '../state.ts';
import { msNode, msVolume, pod } from './fixtures.ts';

const NOW = 1_000_000;
const state = new ExtenderState();
const metrics = new ExtenderMetrics(() => state.sizes());
let ready = false;
let server: Server;
let base: string;

beforeAll(async () => {
  state.setStorageClass('meshstor', 'meshstor.io');
  for (const n of ['node-1', 'node-2', 'node-3']) state.setMeshStorNode(msNode(n), NOW);
  state.setMeshStorVolume(msVolume('a', ['node-2']));
  state.setPv('pv-a', 'meshstor.io', 'a');
  state.setPvc(
    'default',
    'pvc-a',
    { uid: 'u', volumeName: 'pv-a', storageClassName: 'meshstor', requestBytes: 10 * GiB, selectedNode: '' },
    NOW,
  );
  const app = createExtenderApp({
    state,
    metrics,
    log: makeLogger('test', 'silent'),
    ready: () => ({ ready, waitingFor: ready ? [] : ['meshstorvolumes'] }),
    bodyLimit: '64kb',
    now: () => NOW,
  });
  server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function post(path: string, body: unknown, raw = false): Promise<[number, unknown]> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ? (body as string) : JSON.stringify(body),
  });
  const text = await res.text();
  return [res.status, text ? JSON.parse(text) : undefined];
}

describe('wire format (k8s.io/kube-scheduler/extender/v1, nodeCacheCapable)', () => {
  it('filter answers ExtenderFilterResult with capitalised keys and reasons', async () => {
    const [code, body] = await post('/filter', {
      Pod: pod('p', ['pvc-a']),
      NodeNames: ['node-1', 'node-2', 'node-9'],
      Nodes: null,
    });
    expect(code).toBe(200);
    expect(body).toEqual({
      NodeNames: ['node-1', 'node-2'],
      FailedNodes: {},
      FailedAndUnresolvableNodes: { 'node-9': expect.stringMatching(/no agent/) },
      Error: '',
    });
  });

  it('prioritize answers a HostPriorityList with scores 0..10', async () => {
    const [code, body] = await post('/prioritize', {
      Pod: pod('p', ['pvc-a']),
      NodeNames: ['node-1', 'node-2'],
    });
    expect(code).toBe(200);
    expect(body).toEqual([
      { Host: 'node-1', Score: expect.any(Number) },
      { Host: 'node-2', Score: 10 },
    ]);
  });

  it('answers with Node objects when kube-scheduler sends Nodes (not nodeCacheCapable)', async () => {
    const items = ['node-1', 'node-9'].map((name) => ({ metadata: { name }, status: {} }));
    const [code, body] = await post('/filter', { Pod: pod('p', ['pvc-a']), Nodes: { items } });
    expect(code).toBe(200);
    expect((body as { Nodes: { items: unknown[] } }).Nodes.items).toEqual([items[0]]);
  });
});

describe('bad input gets a clear 4xx and the server keeps serving', () => {
  const cases: [string, string, unknown, boolean, number, RegExp][] = [
    ['malformed JSON', '/filter', '{"Pod": {', true, 400, /malformed JSON/],
    ['a JSON array', '/filter', '[]', true, 400, /must be a JSON object/],
    ['no Pod', '/filter', { NodeNames: ['a'] }, false, 400, /Pod/],
    [
      'NodeNames of the wrong type',
      '/prioritize',
      { Pod: pod('p', []), NodeNames: 'node-1' },
      false,
      400,
      /NodeNames/,
    ],
    [
      'neither NodeNames nor Nodes',
      '/prioritize',
      { Pod: pod('p', []) },
      false,
      400,
      /NodeNames .* or Nodes/,
    ],
    [
      'a pod without a name',
      '/filter',
      { Pod: { metadata: {} }, NodeNames: [] },
      false,
      400,
      /Pod.metadata.name/,
    ],
    ['a huge body', '/filter', `{"x":"${'a'.repeat(100_000)}"}`, true, 413, /larger than the limit/],
  ];
  for (const [what, path, body, raw, status, msg] of cases) {
    it(`${what} -> ${status}`, async () => {
      const [code, out] = await post(path, body, raw);
      expect(code).toBe(status);
      expect((out as { Error: string }).Error).toMatch(msg);
      const [again] = await post('/filter', { Pod: pod('p', []), NodeNames: ['node-1'] });
      expect(again).toBe(200);
    });
  }

  it('counts the errors per verb and status in /metrics', async () => {
    expect(await metrics.errorCount('4')).toBe(cases.length);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/meshstor_extender_errors_total\{verb="filter",code="400"\} 4/);
    expect(text).toMatch(/meshstor_extender_request_duration_seconds_count\{verb="prioritize"\} \d+/);
    expect(text).toMatch(/meshstor_extender_cache_objects\{kind="meshstornodes"\} 3/);
  });

  it('says 404 with the endpoints it has for an unknown path', async () => {
    const [code, out] = await post('/bind', {});
    expect(code).toBe(404);
    expect((out as { Error: string }).Error).toMatch(/POST \/filter/);
  });
});

describe('health', () => {
  it('/healthz is ok at once, /readyz only after the caches synced', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const before = await fetch(`${base}/readyz`);
    expect(before.status).toBe(503);
    expect(await before.text()).toMatch(/meshstorvolumes/);
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });
});

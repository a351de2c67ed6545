// The extender's HTTP surfaces through real sockets: wire format, health, metrics, and bad input
// answered with a clear 4xx while the server keeps serving. The verbs and the probes are two apps
// on two ports (the verbs behind mutual TLS in a cluster: door.test.ts).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLogger } from '../../kube/log.ts';
import { GiB } from '../../placement/units.ts';
import { MAX_JSON_DEPTH } from '../json-body.ts';
import { ExtenderMetrics } from '../metrics.ts';
import { createProbesApp, createVerbsApp } from '../server.ts';
import { ExtenderState } from '../state.ts';
import { msNode, msVolume, pod } from './fixtures.ts';

const NOW = 1_000_000;
const state = new ExtenderState();
const metrics = new ExtenderMetrics(() => state.sizes());
let ready = false;
let server: Server;
let probeServer: Server;
let base: string;
let probeBase: string;

const listenOn = (app: import('express').Express): Promise<[Server, string]> =>
  new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () =>
      r([s, `http://127.0.0.1:${(s.address() as AddressInfo).port}`]),
    );
  });

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
  [server, base] = await listenOn(
    createVerbsApp({ state, metrics, log: makeLogger('test', 'silent'), bodyLimit: '64kb', now: () => NOW }),
  );
  [probeServer, probeBase] = await listenOn(
    createProbesApp({ metrics, ready: () => ({ ready, waitingFor: ready ? [] : ['meshstorvolumes'] }) }),
  );
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => probeServer.close(() => r()));
});

/** JSON text nested `depth` arrays deep inside a Nodes item (the shape of the 500 of issue 13). */
const deepNodes = (depth: number) =>
  `{"Pod":{"metadata":{"name":"p"}},"Nodes":{"items":[{"metadata":{"name":"node-1"},"x":${'['.repeat(depth)}${']'.repeat(depth)}}]}}`;

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

  it('prioritize answers a HostPriorityList of the hosts above the lowest score, shifted down to it', async () => {
    const names = ['node-1', 'node-2', 'node-3'];
    const dense = state.prioritize(pod('p', ['pvc-a']), names, NOW);
    // node-2 holds the copy: 10; the others can receive it: the same lower score
    expect(dense).toEqual([
      { Host: 'node-1', Score: 2 },
      { Host: 'node-2', Score: 10 },
      { Host: 'node-3', Score: 2 },
    ]);
    const [code, body] = await post('/prioritize', { Pod: pod('p', ['pvc-a']), NodeNames: names });
    expect(code).toBe(200);
    expect(body).toEqual([{ Host: 'node-2', Score: 8 }]);
    // a pod without MeshStor volumes scores 0 everywhere: nothing to send
    const [, none] = await post('/prioritize', { Pod: pod('q', []), NodeNames: names });
    expect(none).toEqual([]);
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
    // Used to be a 500 "Maximum call stack size exceeded" (issue 13): the answer echoes Nodes.
    ['Nodes nested 20,000 levels deep', '/filter', deepNodes(20_000), true, 400, /nested deeper than 100/],
    ['a Pod nested past the bound', '/prioritize', deepNodes(MAX_JSON_DEPTH), true, 400, /nested deeper/],
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
    const text = await (await fetch(`${probeBase}/metrics`)).text();
    expect(text).toMatch(/meshstor_extender_errors_total\{verb="filter",code="400"\} 5/);
    expect(text).toMatch(/meshstor_extender_request_duration_seconds_count\{verb="prioritize"\} \d+/);
    expect(text).toMatch(/meshstor_extender_cache_objects\{kind="meshstornodes"\} 3/);
  });

  it('says 404 with the endpoints it has for an unknown path', async () => {
    const [code, out] = await post('/bind', {});
    expect(code).toBe(404);
    expect((out as { Error: string }).Error).toMatch(/POST \/filter/);
  });

  it('accepts JSON nested up to the bound, and counts no brackets inside strings', async () => {
    const nested = `{"Pod":{"metadata":{"name":"p","annotations":{"a":"${'[{'.repeat(500)}"}},"spec":{"x":${'['.repeat(MAX_JSON_DEPTH - 3)}${']'.repeat(MAX_JSON_DEPTH - 3)}}},"NodeNames":["node-1"]}`;
    const [code] = await post('/filter', nested, true);
    expect(code).toBe(200);
  });
});

describe('two doors: the verbs and the probes answer on their own ports only', () => {
  it('the verbs port has no /healthz, /readyz or /metrics', async () => {
    for (const p of ['/healthz', '/readyz', '/metrics']) expect((await fetch(base + p)).status).toBe(404);
  });
  it('the probes port has no filter or prioritize', async () => {
    for (const p of ['/filter', '/prioritize']) {
      const res = await fetch(probeBase + p, { method: 'POST', body: '{}' });
      expect(res.status).toBe(404);
      expect(await res.text()).toMatch(/use GET \/healthz, \/readyz, \/metrics/);
    }
  });
});

describe('health', () => {
  it('/healthz is ok at once, /readyz only after the caches synced', async () => {
    expect((await fetch(`${probeBase}/healthz`)).status).toBe(200);
    const before = await fetch(`${probeBase}/readyz`);
    expect(before.status).toBe(503);
    expect(await before.text()).toMatch(/meshstorvolumes/);
    ready = true;
    expect((await fetch(`${probeBase}/readyz`)).status).toBe(200);
  });
});

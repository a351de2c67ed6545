// Fuzzing the CSI edge (issue 13): a few thousand random and mutated messages, from a fixed seed,
// across every RPC of the three services, over the real gRPC server. Every answer must be a gRPC
// status a handler chose (never a hang, never an unhandled throw), the log must stay small, and the
// server must still answer Probe afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedHost } from '../../agent/host/simulated.ts';
import { HostInventory } from '../../agent/host-inventory.ts';
import { fsMountPoints } from '../../agent/mount-points.ts';
import { GiB } from '../../placement/units.ts';
import { MemoryVolumeStore } from '../../state/memory-store.ts';
import { ControllerService } from '../controller.ts';
import { IdentityService } from '../identity.ts';
import { NodeService } from '../node.ts';
import { loadCsi, serveCsi } from '../server.ts';
import { NODE_KEY, ZONE_KEY } from '../topology.ts';

const SEED = 13;
const STRUCTURED = 2000;
const MUTATED = 1000;

let dir: string;
let kubelet: string;
let server: grpc.Server;
let client: grpc.Client;
let logBytes = 0;
let logLines = 0;
const csi = loadCsi().csi.v1;
const methods = (['Identity', 'Controller', 'Node'] as const).flatMap((svc) =>
  Object.entries(csi[svc].service).map(([rpc, m]) => ({ rpc, m })),
);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshstor-fuzz-'));
  kubelet = join(dir, 'kubelet');
  const host = new SimulatedHost({
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:fuzz-n1',
    drives: [{ id: 'F0', sizeBytes: 64 * GiB }],
  });
  const store = new MemoryVolumeStore();
  const log = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        logBytes += line.length;
        logLines++;
      },
    },
  );
  server = await serveCsi(
    join(dir, 'csi.sock'),
    {
      identity: new IdentityService({ controller: true, ready: () => true }),
      controller: new ControllerService({ store, inventory: new HostInventory('n1', 'a', host, store) }),
      node: new NodeService({
        nodeName: 'n1',
        zone: 'a',
        host,
        store,
        kubeletDir: kubelet,
        mountPoints: fsMountPoints,
      }),
    },
    log,
  );
  client = new grpc.Client(`unix:${join(dir, 'csi.sock')}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  server?.forceShutdown();
  await rm(dir, { recursive: true, force: true });
});

/** Strings a careless or hostile caller sends: ids, names, kubelet's paths and their near misses. */
const text = (): fc.Arbitrary<string> =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.constantFrom(
        '',
        'v1',
        'pvc-1',
        'xfs',
        'ext4',
        '/',
        '/etc',
        '/proc/self/x',
        '../x',
        'rel/path',
      ),
    },
    { weight: 2, arbitrary: fc.constantFrom('SINGLE_NODE_WRITER', 'MULTI_NODE_MULTI_WRITER', 'UNKNOWN') },
    {
      weight: 4,
      arbitrary: fc.constantFrom(NODE_KEY, ZONE_KEY, 'replicaCount', 'spread', 'fsType', 'n1', 'a', '2'),
    },
    { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            'pods/u/volumes/kubernetes.io~csi/v1/mount',
            'plugins/g',
            'x/../../..',
            'a\u0000b',
            '',
          ),
          fc.boolean(),
        )
        .map(([rest, slash]) => `${kubelet}/${rest}${slash ? '/' : ''}`),
    },
    // over CSI's 128 bytes
    { weight: 2, arbitrary: fc.integer({ min: 100, max: 300 }).map((n) => 'n'.repeat(n)) },
  );
/** A name, id or path: as `text`, and now and then far over any limit (a 3.5 MB name was stored once). */
const idText = (): fc.Arbitrary<string> =>
  fc.oneof({ weight: 50, arbitrary: text() }, { weight: 1, arbitrary: fc.constant('N'.repeat(100_000)) });
const int64 = () =>
  fc.oneof(
    fc.constantFrom('0', '1', '1048576', '1073741824', '-1', '9223372036854775807', '11258999068426240'),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  );
const map = () => fc.dictionary(text(), text(), { maxKeys: 4 });
const randomCapability = () =>
  fc.record(
    {
      block: fc.constant({}),
      mount: fc.record(
        { fs_type: text(), mount_flags: fc.array(text(), { maxLength: 2 }) },
        { requiredKeys: [] },
      ),
      access_mode: fc.record({ mode: fc.integer({ min: 0, max: 9 }) }),
    },
    { requiredKeys: [] },
  );
/** Mostly capabilities MeshStor serves, so calls get past the checks into the work behind them. */
const capability = () =>
  fc.oneof(
    fc.constant({ mount: { fs_type: 'xfs' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }),
    fc.constant({ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }),
    randomCapability(),
  );
const topology = () => fc.record({ segments: map() });

/** Values for every field any CSI request has, of the right wire type (or the wrong one: protobufjs coerces). */
const FIELDS: Record<string, () => fc.Arbitrary<unknown>> = {
  name: idText,
  volume_id: idText,
  snapshot_id: idText,
  source_volume_id: idText,
  starting_token: idText,
  max_entries: () => fc.integer({ min: -5, max: 2 ** 31 - 1 }),
  volume_content_source: () =>
    fc.oneof(
      fc.record({ snapshot: fc.record({ snapshot_id: idText() }) }),
      fc.record({ volume: fc.record({ volume_id: idText() }) }),
    ),
  staging_target_path: idText,
  target_path: idText,
  volume_path: idText,
  readonly: fc.boolean,
  capacity_range: () =>
    fc.oneof(
      fc.constantFrom({ required_bytes: '1073741824' }, { required_bytes: '1048576' }, {}),
      fc.record({ required_bytes: int64(), limit_bytes: int64() }, { requiredKeys: [] }),
    ),
  volume_capability: capability,
  volume_capabilities: () => fc.array(capability(), { maxLength: 3 }),
  parameters: () => fc.oneof(fc.constantFrom({}, { replicaCount: '1' }), map()),
  secrets: map,
  volume_context: map,
  publish_context: map,
  mutable_parameters: map,
  accessible_topology: topology,
  accessibility_requirements: () =>
    fc.record(
      {
        requisite: fc.array(topology(), { maxLength: 3 }),
        preferred: fc.array(topology(), { maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
};

/** A request that passes every check, for volume `v` (a sequence of these stages and publishes it). */
const plausible = (v: string): Record<string, unknown> => {
  const mount = { mount: { fs_type: 'xfs' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
  return {
    name: v,
    volume_id: v,
    source_volume_id: v,
    staging_target_path: `${kubelet}/plugins/meshstor.io/${v}/globalmount`,
    target_path: `${kubelet}/pods/u/volumes/kubernetes.io~csi/${v}/mount`,
    volume_path: `${kubelet}/pods/u/volumes/kubernetes.io~csi/${v}/mount`,
    capacity_range: { required_bytes: String(GiB) },
    volume_capability: mount,
    volume_capabilities: [mount],
  };
};

/**
 * A request for one method, over its own fields (read off an empty message's defaults): either any
 * subset of them with any values, or a plausible request with one or two fields made hostile, so
 * the fuzz reaches the work behind the checks too.
 */
function request(m: grpc.MethodDefinition<unknown, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const own = Object.keys(m.requestDeserialize(Buffer.alloc(0)) as object).filter((f) => f in FIELDS);
  const values = fc.record(
    Object.fromEntries(own.map((f) => [f, (FIELDS[f] as () => fc.Arbitrary<unknown>)()])),
    {
      requiredKeys: [],
    },
  );
  if (own.length === 0) return values;
  const nearMiss = fc
    .tuple(
      fc.constantFrom('v1', 'v2', 'v3'),
      fc.subarray(own, { maxLength: Math.min(2, own.length) }),
      values,
    )
    .map(([v, hostile, vals]) => {
      const base = Object.fromEntries(Object.entries(plausible(v)).filter(([f]) => own.includes(f)));
      for (const f of hostile) base[f] = vals[f];
      return base;
    });
  return fc.oneof(values, nearMiss);
}

/** Encodes a request for a method; undefined when protobufjs will not (the client could not send it either). */
function encode(m: grpc.MethodDefinition<unknown, unknown>, req: unknown): Buffer | undefined {
  try {
    return m.requestSerialize(req);
  } catch {
    return undefined;
  }
}

/** A small seeded PRNG (mulberry32): mutations need only cheap, repeatable numbers. */
function prng(seed: number): (below: number) => number {
  let a = seed >>> 0;
  return (below) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * below;
  };
}

/** A wire message with one to six random bytes changed, dropped, inserted, or the rest cut off. */
function mutate(bytes: Buffer, rand: (below: number) => number): Buffer {
  let b = Buffer.from(bytes);
  const edits = 1 + Math.floor(rand(6));
  for (let e = 0; e < edits; e++) {
    const i = Math.floor(rand(b.length + 1));
    const v = Math.floor(rand(256));
    const op = Math.floor(rand(4));
    if (op === 0 && i < b.length) b[i] = v;
    else if (op === 1) b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
    else if (op === 2) b = Buffer.concat([b.subarray(0, i), Buffer.from([v]), b.subarray(i)]);
    else if (op === 3 && rand(4) < 1) b = b.subarray(0, i);
  }
  return b;
}

/** Sends raw bytes to an RPC; resolves with the status code (0 for an answer) and its details. */
function send(rpc: string, svc: string, bytes: Buffer): Promise<{ code: number; details: string }> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      `/csi.v1.${svc}/${rpc}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      { deadline: Date.now() + 30_000 },
      (err) => resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '' }),
    ),
  );
}

const serviceOf = (rpc: string) =>
  (['Identity', 'Controller', 'Node'] as const).find((s) => rpc in csi[s].service) as string;

describe('fuzzing every RPC', () => {
  it(`answers ${STRUCTURED} random and ${MUTATED} mutated messages with a status, then still serves Probe`, async () => {
    const structured = fc
      .sample(
        fc.constantFrom(...methods).chain(({ rpc, m }) => request(m).map((req) => ({ rpc, m, req }))),
        {
          seed: SEED,
          numRuns: STRUCTURED,
        },
      )
      .map(({ rpc, m, req }) => ({ rpc, bytes: encode(m, req) }))
      .filter((x): x is { rpc: string; bytes: Buffer } => x.bytes !== undefined);
    const rand = prng(SEED);
    const mutated = Array.from({ length: MUTATED }, (_, i) => {
      const from = structured[i % structured.length] as { rpc: string; bytes: Buffer };
      return { rpc: from.rpc, bytes: mutate(from.bytes, rand) };
    });
    const all = [...structured, ...mutated];
    expect(all.length).toBeGreaterThan(2500);

    const answers: { rpc: string; code: number; details: string }[] = [];
    const BATCH = 32;
    for (let i = 0; i < all.length; i += BATCH) {
      const batch = all.slice(i, i + BATCH);
      answers.push(
        ...(await Promise.all(
          batch.map(async (x) => ({ rpc: x.rpc, ...(await send(x.rpc, serviceOf(x.rpc), x.bytes)) })),
        )),
      );
    }
    const valid = new Set(Object.values(grpc.status).filter((v): v is number => typeof v === 'number'));
    for (const a of answers) expect(valid.has(a.code), `${a.rpc}: ${a.code}`).toBe(true);
    // nothing hung: a server-side wait would show as the client's deadline passing
    expect(answers.filter((a) => a.code === grpc.status.DEADLINE_EXCEEDED).slice(0, 5)).toEqual([]);
    // every failure is one a handler chose; INTERNAL only where the bytes were not a message at all
    const unexplained = answers.filter(
      (a) =>
        a.code === grpc.status.UNKNOWN ||
        (a.code === grpc.status.INTERNAL && !/deserializ|parse/i.test(a.details)),
    );
    expect(unexplained.slice(0, 10)).toEqual([]);
    // requests are logged by id and size: the log stays small whatever the requests carried
    expect(logLines).toBeGreaterThan(0);
    expect(logBytes / logLines).toBeLessThan(1000);

    const probe = await send('Probe', 'Identity', Buffer.alloc(0));
    expect(probe.code).toBe(0);
    // a few seconds on an idle machine; the bound is for a loaded one (2 shared cores)
  }, 120_000);
});

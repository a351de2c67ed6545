// A node pair's DH-HMAC-CHAP keys from creation through a full rotation, on two SimulatedHosts
// (the same Host contract LinuxHost passes in the VM): the target grants first, the live connection
// takes the new keys without a disconnect, the old ones are retired and refused afterwards.
import { describe, expect, it } from 'vitest';
import { GiB, MiB } from '../../placement/index.ts';
import { MemoryPairKeyStore, newPair } from '../../state/dhchap-keys.ts';
import { generateDhchapSecret } from '../host/dhchap.ts';
import { ConnectRefusedError } from '../host/errors.ts';
import { SimFabric, SimulatedHost } from '../host/simulated.ts';
import { NodeKeys } from '../node-keys.ts';

const LISTEN = { address: '127.0.0.2', port: 4420 };
const OWNER = { volumeId: 'vol-1', replicaId: 'r2' };
const DAY = 86_400_000;

async function pair() {
  const fabric = new SimFabric();
  const a = new SimulatedHost({
    fabric,
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a',
    drives: [],
  });
  const b = new SimulatedHost({
    fabric,
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-0000-4000-8000-00000000000b',
    drives: [{ id: 'SIM-B', sizeBytes: GiB }],
  });
  const [p] = await b.createPartitions('SIM-B', [{ ...OWNER, extent: { start: MiB, end: 65 * MiB } }]);
  const ex = await b.exportReplica({ ...OWNER, devicePath: p?.path ?? '', listen: LISTEN });
  const store = new MemoryPairKeyStore();
  let now = Date.parse('2026-11-28T10:00:00Z');
  const clock = {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
  // no cache here: each pass reads what the other side wrote (the cache has its own test)
  const opts = { store, now: clock.now, rotateAfterMs: 15 * DAY, cacheMs: 0 };
  const keysA = new NodeKeys({ node: 'node-a', ...opts });
  const keysB = new NodeKeys({ node: 'node-b', ...opts });
  const spec = { subsystemNqn: ex.nqn, target: LISTEN, ctrlLossTmoSec: 30 };
  /** One pass of the target's agent: grant the pair's keys, record them. */
  const targetPass = async () => {
    const k = await keysB.forGrant('node-a');
    await b.grantHost(ex.nqn, { hostNqn: a.hostNqn, ...k.keys });
    await k.taken();
    return k;
  };
  /** One pass of the host's agent: connect (or hand the live connection) the keys, record them. */
  const hostPass = async () => {
    const k = await keysA.forConnect('node-b');
    if (!k) return undefined;
    const dev = await a.connect({ ...spec, ...k.keys });
    await k.taken();
    return { ...k, dev };
  };
  return { a, b, store, clock, keysA, spec, targetPass, hostPass };
}

describe('NodeKeys on SimulatedHosts', () => {
  it('the host waits for the target to create the pair, then both sides prove their keys', async () => {
    const t = await pair();
    expect(await t.keysA.forConnect('node-b')).toBeUndefined();
    const granted = await t.targetPass();
    const h = await t.hostPass();
    expect(h?.keys).toEqual(granted.keys);
    expect(h?.dev).toMatch(/^\/dev\//);
    const stored = await t.store.get('node-b', 'node-a');
    expect([stored?.targetApplied, stored?.hostApplied]).toEqual([1, 1]);
  });

  it('rotates one key per step without a disconnect; the old keys are retired and refused', async () => {
    const t = await pair();
    await t.targetPass();
    const first = await t.hostPass();
    const dev = first?.dev;
    t.clock.advance(16 * DAY);
    const step1 = await t.targetPass(); // the target takes the new host key first
    expect(step1.keys.dhchapSecret).not.toBe(first?.keys.dhchapSecret);
    expect(step1.keys.dhchapCtrlSecret).toBe(first?.keys.dhchapCtrlSecret);
    const h1 = await t.hostPass(); // the live connection takes it
    expect(h1?.dev).toBe(dev);
    expect(h1?.keys).toEqual(step1.keys);
    expect((await t.store.get('node-b', 'node-a'))?.previous).toBeUndefined(); // retired
    t.clock.advance(16 * DAY);
    const step2 = await t.targetPass();
    expect(step2.keys.dhchapCtrlSecret).not.toBe(first?.keys.dhchapCtrlSecret);
    expect((await t.hostPass())?.dev).toBe(dev);
    expect(await t.a.findDeviceByNqn(t.spec.subsystemNqn)).toBe(dev);
    await t.a.disconnect(t.spec.subsystemNqn);
    await expect(t.a.connect({ ...t.spec, ...first?.keys })).rejects.toBeInstanceOf(ConnectRefusedError);
    await expect(t.a.connect({ ...t.spec, ...step1.keys })).rejects.toBeInstanceOf(ConnectRefusedError);
    expect(await t.a.connect({ ...t.spec, ...step2.keys })).toMatch(/^\/dev\//);
  });

  it('while the target has not applied a step, the host keeps connecting with the keys the target has', async () => {
    const t = await pair();
    await t.targetPass();
    const first = await t.hostPass();
    t.clock.advance(16 * DAY);
    // the target's agent wrote the step but crashed before its nvmet took it
    const p = await t.store.get('node-b', 'node-a');
    if (!p) throw new Error('no pair');
    await t.store.update({
      ...p,
      generation: 2,
      previous: p.current,
      current: { ...p.current, host: generateDhchapSecret() },
    });
    const h = await t.keysA.forConnect('node-b');
    expect(h?.keys).toEqual(first?.keys);
    expect(h?.generation).toBe(1);
  });
});

describe('NodeKeys reads', () => {
  it('ask the store once per pair within the cache period, and again after it', async () => {
    const store = new MemoryPairKeyStore();
    await store.create(newPair('node-b', 'node-a', generateDhchapSecret, 0));
    let gets = 0;
    const counting = Object.assign(Object.create(store) as MemoryPairKeyStore, {
      get: (t: string, h: string) => {
        gets++;
        return store.get(t, h);
      },
    });
    let now = 0;
    const keys = new NodeKeys({ node: 'node-b', store: counting, now: () => now, cacheMs: 2000 });
    for (let i = 0; i < 10; i++) await keys.forGrant('node-a'); // ten replicas exported to node-a
    expect(gets).toBe(1);
    now = 2000;
    await keys.forGrant('node-a');
    expect(gets).toBe(2);
  });
});

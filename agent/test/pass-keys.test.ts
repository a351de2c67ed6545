// The agents' passes carry the node-pair keys (ADR 0007): the owner's export pass grants them, the
// attached node's key step hands a rotated pair to its live connection, and the old keys retire.
import { describe, expect, it } from 'vitest';
import { GiB, MiB } from '../../placement/units.ts';
import { MemoryPairKeyStore } from '../../state/dhchap-keys.ts';
import { KeyedLock } from '../../state/lock.ts';
import { MemoryVolumeStore, StaticPeers } from '../../state/memory-store.ts';
import type { VolumeRecord } from '../../state/store.ts';
import { ConnectRefusedError } from '../host/errors.ts';
import { subsystemNqn } from '../host/names.ts';
import { SimFabric, SimulatedHost } from '../host/simulated.ts';
import { NodeKeys } from '../node-keys.ts';
import { agentPass } from '../pass.ts';

const DAY = 86_400_000;
const NQN_A = 'nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a';
const LISTEN_B = { address: '127.0.0.2', port: 4420 };

describe('agent passes with DH-HMAC-CHAP keys', () => {
  it('export, connect, rotate both keys on the live connection, retire the old ones', async () => {
    const fabric = new SimFabric();
    const a = new SimulatedHost({ fabric, hostNqn: NQN_A, drives: [] });
    const b = new SimulatedHost({
      fabric,
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-0000-4000-8000-00000000000b',
      drives: [{ id: 'SIM-B', sizeBytes: 4 * GiB }],
    });
    const rec: VolumeRecord = {
      id: 'vol-1',
      name: 'vol-1',
      sizeBytes: GiB,
      replicaCount: 1,
      spread: { domain: 'zone', mode: 'none' },
      fsType: 'xfs',
      replicas: [
        {
          id: 'r2',
          node: 'node-b',
          drive: 'SIM-B',
          extent: { start: MiB, end: MiB + GiB + 2 * MiB },
          state: 'InSync',
        },
      ],
      phase: 'Active',
      attachment: { node: 'node-a', hostNqn: NQN_A },
    };
    const store = new MemoryVolumeStore();
    await store.create(rec);
    const keyStore = new MemoryPairKeyStore();
    let now = Date.parse('2026-11-28T10:00:00Z');
    const opts = { store: keyStore, now: () => now, rotateAfterMs: 15 * DAY, cacheMs: 0 };
    const peers = new StaticPeers();
    peers.set({ node: 'node-b', hostNqn: b.hostNqn, address: LISTEN_B, ready: true });
    const ctx = (node: string, host: SimulatedHost) => ({
      nodeName: node,
      host,
      store,
      listen: LISTEN_B,
      locks: new KeyedLock(),
      keys: new NodeKeys({ node, ...opts }),
      peers,
    });
    const passB = () => agentPass(ctx('node-b', b));
    const passA = () => agentPass(ctx('node-a', a));
    const nqn = subsystemNqn({ volumeId: 'vol-1', replicaId: 'r2' });

    expect((await passB()).exports.exported).toEqual(['vol-1/r2 -> node-a']);
    const first = await new NodeKeys({ node: 'node-a', ...opts }).forConnect('node-b');
    expect(first).toBeDefined();
    // what NodeStage does on node-a (node-volumes.ts): connect with the pair's keys
    const dev = await a.connect({ subsystemNqn: nqn, target: LISTEN_B, ...first?.keys, ctrlLossTmoSec: 30 });
    await first?.taken();

    for (let step = 1; step <= 2; step++) {
      now += 16 * DAY;
      const p = await passB(); // the target takes the step first
      expect(p.failures).toEqual([]);
      const mid = await keyStore.get('node-b', 'node-a');
      expect([mid?.generation, mid?.targetApplied, mid?.hostApplied]).toEqual([step + 1, step + 1, step]);
      expect((await passA()).failures).toEqual([]); // the live connection takes it
      const after = await keyStore.get('node-b', 'node-a');
      expect(after?.hostApplied).toBe(step + 1);
      expect(after?.previous).toBeUndefined();
      expect(await a.findDeviceByNqn(nqn)).toBe(dev);
    }
    const last = await keyStore.get('node-b', 'node-a');
    expect(last?.current.host).not.toBe(first?.keys.dhchapSecret);
    expect(last?.current.ctrl).not.toBe(first?.keys.dhchapCtrlSecret);
    // a fresh connect with the first keys is refused: they are retired on the target
    const c = new SimulatedHost({ fabric, hostNqn: NQN_A, drives: [] });
    await expect(
      c.connect({ subsystemNqn: nqn, target: LISTEN_B, ...first?.keys, ctrlLossTmoSec: 30 }),
    ).rejects.toBeInstanceOf(ConnectRefusedError);
  });
});

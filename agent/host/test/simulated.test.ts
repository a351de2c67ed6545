// The Host contract on SimulatedHost (unit tier). The same cases run on LinuxHost in the VM.
import { describe, expect, it } from 'vitest';
import { GiB, MiB } from '../../../placement/index.ts';
import { DeviceInUseError, NotFoundError } from '../errors.ts';
import { SimFabric, SimulatedHost } from '../simulated.ts';
import { CONTRACT, type ContractEnv } from './contract.ts';

function simEnv(): ContractEnv {
  const fabric = new SimFabric();
  const a = new SimulatedHost({
    fabric,
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a',
    drives: [{ id: 'SIM-A', sizeBytes: GiB }],
  });
  const b = new SimulatedHost({
    fabric,
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-0000-4000-8000-00000000000b',
    drives: [{ id: 'SIM-B', sizeBytes: GiB }],
  });
  const foreign = new SimulatedHost({
    fabric,
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:0e0e0e0e-0000-4000-8000-00000000000e',
    drives: [],
  });
  return {
    a,
    b,
    foreign,
    driveA: 'SIM-A',
    driveB: 'SIM-B',
    listenB: { address: '127.0.0.2', port: 4420 },
    mountDir: '/mnt/contract',
    canWrite: async (path) => a.canWrite(path),
    cutMkfsShort: (devicePath) => a.cutMkfsShort(devicePath),
    forgetPartitionInKernel: async () => {},
  };
}

describe('Host contract on SimulatedHost', () => {
  for (const c of CONTRACT) it(c.name, () => c.run(simEnv()));
});

describe('SimulatedHost specifics', () => {
  it('carves the free tail of an OS drive whose partitions are in use', async () => {
    const h = new SimulatedHost({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:0c0c0c0c-0000-4000-8000-00000000000c',
      drives: [
        {
          id: 'OS',
          sizeBytes: 2 * GiB,
          partitions: [
            { start: MiB, end: 101 * MiB, name: 'EFI' },
            { start: 101 * MiB, end: GiB, name: 'root' },
          ],
        },
      ],
    });
    const [d] = await h.listDrives();
    const tail = d?.free[0];
    if (!tail) throw new Error('no free tail');
    const [p] = await h.createPartitions('OS', [
      { volumeId: 'v', replicaId: 'r', extent: { start: tail.start, end: tail.start + 512 * MiB } },
    ]);
    if (!p) throw new Error('no partition');
    const root = d?.partitions[1];
    if (!root) throw new Error('no root');
    expect(p.owner).toEqual({ volumeId: 'v', replicaId: 'r' });
    expect(p.start).toBeGreaterThanOrEqual(root.end);
    await expect(h.wipePartition('OS', { volumeId: 'x', replicaId: 'y' })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(h.createArray({ volumeId: 'v2', devices: [root.path] })).rejects.toBeInstanceOf(
      DeviceInUseError,
    );
    expect((await h.createArray({ volumeId: 'v', devices: [p.path] })).raidDevices).toBe(1);
  });
});

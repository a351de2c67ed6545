// LinuxHost.listExports reads nvmet's configfs while others may unexport: the target tree here is a
// plain directory (configfs option), caught halfway through removals, as a concurrent unexport leaves it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LinuxHost } from '../linux.ts';
import { subsystemNqn } from '../names.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('LinuxHost.listExports during a concurrent unexport', () => {
  it('skips a port and a subsystem that vanish while being read', async () => {
    const cfs = mkdtempSync(join(tmpdir(), 'meshstor-cfs-'));
    dirs.push(cfs);
    const kept = subsystemNqn({ volumeId: 'v1', replicaId: 'r1' });
    const going = subsystemNqn({ volumeId: 'v2', replicaId: 'r1' });
    mkdirSync(join(cfs, 'subsystems', kept, 'allowed_hosts'), { recursive: true });
    mkdirSync(join(cfs, 'subsystems', kept, 'namespaces', '1'), { recursive: true });
    writeFileSync(join(cfs, 'subsystems', kept, 'namespaces', '1', 'device_path'), '/dev/nvme0n1p1\n');
    // the subsystem's allowed_hosts and namespaces are gone already, its directory not yet
    mkdirSync(join(cfs, 'subsystems', going), { recursive: true });
    // port 1 still links `kept`, but its attributes are gone (rmdir in progress); port 2 is whole
    mkdirSync(join(cfs, 'ports', '1', 'subsystems', kept), { recursive: true });
    mkdirSync(join(cfs, 'ports', '2', 'subsystems', kept), { recursive: true });
    writeFileSync(join(cfs, 'ports', '2', 'addr_traddr'), '127.0.0.3\n');
    writeFileSync(join(cfs, 'ports', '2', 'addr_trsvcid'), '4420\n');

    const host = new LinuxHost({ hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:n1', configfs: cfs });
    expect(await host.listExports()).toEqual([
      {
        nqn: kept,
        devicePath: '/dev/nvme0n1p1',
        listen: [{ address: '127.0.0.3', port: 4420 }],
        allowedHosts: [],
      },
    ]);
  });
});

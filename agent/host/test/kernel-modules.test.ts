import { describe, expect, it } from 'vitest';
import { CancelledError, CommandError } from '../errors.ts';
import type { Exec } from '../exec.ts';
import {
  ensureKernelModules,
  kernelModuleName,
  kernelModulesCondition,
  type ModuleReader,
  parseProcModules,
  REQUIRED_MODULES,
} from '../kernel-modules.ts';

// Captured from a Debian 12 node with the NVMe-oF target in use (fields: name size refs deps state address).
const PROC_MODULES = `nvmet_tcp 36864 1 - Live 0x0000000000000000
nvmet 188416 7 nvmet_tcp, Live 0x0000000000000000
nvme_tcp 49152 0 - Live 0x0000000000000000
nvme_fabrics 32768 1 nvme_tcp, Live 0x0000000000000000
raid1 57344 1 - Live 0x0000000000000000
nvme 57344 2 - Live 0x0000000000000000
nvme_core 200704 6 nvmet,nvme_tcp,nvme_fabrics,nvme, Live 0x0000000000000000
dm_mod 184320 0 - Live 0x0000000000000000
`;

const reader = (proc: string | undefined, sysModule: string[] = []): ModuleReader => ({
  procModules: async () => proc,
  inSysModule: async (n) => sysModule.includes(n),
});

/** A modprobe that loads what `available` has and fails like the real one otherwise; logs its calls. */
function fakeModprobe(available: string[], calls: string[][]): Exec {
  return async (cmd, args) => {
    calls.push([cmd, ...args]);
    const m = args[0] ?? '';
    if (available.includes(m)) return { code: 0, stdout: '', stderr: '' };
    const err = `modprobe: FATAL: Module ${m} not found in directory /lib/modules/6.1.0-18-amd64\n`;
    throw new CommandError(`modprobe ${m}`, 1, err);
  };
}

describe('parseProcModules', () => {
  it('takes the first field of every line', () => {
    expect([...parseProcModules(PROC_MODULES)]).toEqual([
      'nvmet_tcp',
      'nvmet',
      'nvme_tcp',
      'nvme_fabrics',
      'raid1',
      'nvme',
      'nvme_core',
      'dm_mod',
    ]);
    expect(parseProcModules('').size).toBe(0);
  });
  it('module names use underscores in the kernel', () => {
    expect(REQUIRED_MODULES.map(kernelModuleName)).toEqual([
      'nvme_fabrics',
      'nvme_tcp',
      'nvmet',
      'nvmet_tcp',
      'md_mod',
      'raid1',
      'dm_mod',
    ]);
  });
});

describe('ensureKernelModules', () => {
  it('loaded and built-in modules need no modprobe', async () => {
    const calls: string[][] = [];
    const r = await ensureKernelModules({
      exec: fakeModprobe([], calls),
      reader: reader(PROC_MODULES, ['md_mod']),
    });
    expect(calls).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.modules.map((m) => [m.module, m.state])).toEqual([
      ['nvme-fabrics', 'loaded'],
      ['nvme-tcp', 'loaded'],
      ['nvmet', 'loaded'],
      ['nvmet-tcp', 'loaded'],
      ['md_mod', 'built-in'],
      ['raid1', 'loaded'],
      ['dm-mod', 'loaded'],
    ]);
    expect(kernelModulesCondition(r)).toEqual({
      type: 'KernelModulesLoaded',
      status: 'True',
      reason: 'AllLoaded',
      message:
        'nvme-fabrics loaded, nvme-tcp loaded, nvmet loaded, nvmet-tcp loaded, md_mod built-in, raid1 loaded, dm-mod loaded',
    });
  });

  it('loads what is missing and names what cannot be loaded, with what to do', async () => {
    const calls: string[][] = [];
    const r = await ensureKernelModules({
      exec: fakeModprobe(['nvme-fabrics', 'nvme-tcp', 'md_mod', 'raid1', 'nvmet', 'dm-mod'], calls),
      reader: reader(undefined),
    });
    expect(calls).toEqual(REQUIRED_MODULES.map((m) => ['modprobe', m]));
    expect(r.ok).toBe(false);
    expect(r.missing).toEqual([
      {
        module: 'nvmet-tcp',
        state: 'missing',
        reason:
          "modprobe: FATAL: Module nvmet-tcp not found in directory /lib/modules/6.1.0-18-amd64 (the kernel was built without CONFIG_NVME_TARGET_TCP, or the host's /lib/modules is not mounted into the agent)",
      },
    ]);
    expect(r.modules.filter((m) => m.state === 'loaded-now').map((m) => m.module)).toEqual([
      'nvme-fabrics',
      'nvme-tcp',
      'nvmet',
      'md_mod',
      'raid1',
      'dm-mod',
    ]);
    expect(r.message).toMatch(/^kernel modules missing: nvmet-tcp \(nvmet-tcp: modprobe: FATAL/);
    expect(r.message).toMatch(
      /load them with "modprobe -a nvmet-tcp", or add them to \/etc\/modules-load\.d\/meshstor\.conf/,
    );
    const c = kernelModulesCondition(r);
    expect([c.status, c.reason, c.message]).toEqual(['False', 'ModulesMissing', r.message]);
  });

  it('a modprobe that cannot run at all is a reason too', async () => {
    const exec: Exec = async () => {
      throw new CommandError('modprobe nvmet', null, 'spawn modprobe ENOENT', 'cannot run');
    };
    const r = await ensureKernelModules({ exec, reader: reader(''), modules: ['nvmet'] });
    expect(r.missing).toEqual([{ module: 'nvmet', state: 'missing', reason: 'spawn modprobe ENOENT' }]);
  });

  it('cancellation stops the check instead of being reported as a missing module', async () => {
    const exec: Exec = async () => {
      throw new CancelledError('cancelled: modprobe nvmet');
    };
    await expect(ensureKernelModules({ exec, reader: reader(''), modules: ['nvmet'] })).rejects.toThrow(
      CancelledError,
    );
  });
});

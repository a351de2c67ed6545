import { describe, expect, it } from 'vitest';
import { subsystemNqn } from '../../names.ts';
import { fixture } from './fixtures/load.ts';
import {
  type ControllerFiles,
  isNamespaceBlock,
  localDriveId,
  type NamespaceFiles,
  namespaceDevice,
  ownControllers,
} from './nvme-sysfs.ts';

const NQN_A = 'nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a';
const NQN_B = 'nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-0000-4000-8000-00000000000b';
const r2 = subsystemNqn({ volumeId: 'vol-cap', replicaId: 'r2' });
const SERIALS = ['MS-A-DATA', 'MS-A-OS', 'MS-B-DATA', 'MS-B-DATA2', 'MS-N1-DATA', 'MS-N2-DATA', 'MS-N3-DATA'];

describe('NVMe host sysfs', () => {
  it("the local drives' ids are their serials, trimmed", () => {
    const local = fixture<NamespaceFiles[]>('namespaces-local');
    expect(local.map(localDriveId).sort()).toEqual(SERIALS);
  });

  it('a fabrics namespace is not a local drive; it is found by its subsystem NQN', () => {
    const all = fixture<NamespaceFiles[]>('namespaces-with-fabric');
    // the nvme-tcp namespace's device is its nvme-subsystem (native multipath): no transport file
    const remote = all.filter((n) => n.subsysnqn?.trim() === r2);
    expect(remote).toHaveLength(1);
    expect(remote[0]?.transport).toBeUndefined();
    expect(remote[0]?.serial?.trim()).toBeTruthy();
    expect(all.map(localDriveId).filter(Boolean).sort()).toEqual(SERIALS);
    expect(namespaceDevice(all, r2)).toBe(`/dev/${remote[0]?.block}`);
    expect(namespaceDevice(all, subsystemNqn({ volumeId: 'vol-cap', replicaId: 'r9' }))).toBeUndefined();
  });

  it("a subsystem's controllers are this host's only", () => {
    const ctrls = fixture<ControllerFiles[]>('nvme-controllers');
    const mine = ownControllers(ctrls, r2, NQN_A);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatch(/^nvme\d+$/);
    expect(ownControllers(ctrls, r2, NQN_B)).toEqual([]);
  });

  it('hidden multipath paths are not namespace devices', () => {
    expect(isNamespaceBlock('nvme0n1')).toBe(true);
    expect(isNamespaceBlock('nvme0c1n1')).toBe(false);
    expect(isNamespaceBlock('nvme0n1p1')).toBe(false);
  });
});

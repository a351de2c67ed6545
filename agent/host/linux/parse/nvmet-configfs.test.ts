import { describe, expect, it } from 'vitest';
import { subsystemNqn } from '../../names.ts';
import { fixture } from './fixtures/load.ts';
import {
  exportFrom,
  nextPortId,
  ourSubsystems,
  type PortFiles,
  portListen,
  portServes,
  type SubsystemFiles,
} from './nvmet-configfs.ts';

type Port = PortFiles & { subsystems: string[] };
const NQN_A = 'nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a';
const r2 = subsystemNqn({ volumeId: 'vol-cap', replicaId: 'r2' });
const r3 = subsystemNqn({ volumeId: 'vol-other', replicaId: 'r3' });

describe('nvmet configfs', () => {
  const ports = fixture<Port[]>('nvmet-ports');
  const subsystems = fixture<SubsystemFiles[]>('nvmet-subsystems');

  it('one tcp port per listen address, each linking its subsystem', () => {
    expect(ports.map((p) => [portListen(p), p.subsystems])).toEqual([
      [{ address: '127.0.0.2', port: 4420 }, [r2]],
      [{ address: '127.0.0.3', port: 4420 }, [r3]],
    ]);
    expect(ports.filter((p) => portServes(p, { address: '127.0.0.3', port: 4420 })).map((p) => p.id)).toEqual(
      ['2'],
    );
    expect(ports.some((p) => portServes(p, { address: '127.0.0.3', port: 4421 }))).toBe(false);
    expect(nextPortId(ports.map((p) => p.id))).toBe('3');
  });

  it('an export: its namespace device, listen addresses and allowed host', () => {
    const s = subsystems.find((x) => x.nqn === r2);
    if (!s) throw new Error(`no ${r2} captured`);
    const e = exportFrom(
      s,
      ports.filter((p) => p.subsystems.includes(r2)),
    );
    expect(e).toEqual({
      nqn: r2,
      devicePath: expect.stringMatching(/^\/dev\/nvme\d+n1p1$/),
      listen: [{ address: '127.0.0.2', port: 4420 }],
      allowedHosts: [NQN_A],
    });
  });

  it('a subsystem being removed (allowed_hosts gone) and a port without attributes are skipped', () => {
    expect(exportFrom({ nqn: r2, allowedHosts: undefined, devicePath: undefined }, [])).toBeUndefined();
    expect(portListen({ id: '1', trtype: undefined, traddr: undefined, trsvcid: undefined })).toBeUndefined();
  });

  it("only MeshStor's subsystems are listed", () => {
    expect(ourSubsystems(['nqn.2014-08.org.nvmexpress:other', ...subsystems.map((s) => s.nqn)])).toEqual([
      r2,
      r3,
    ]);
  });
});

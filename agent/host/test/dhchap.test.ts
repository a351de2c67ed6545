// DH-HMAC-CHAP secrets: the text form the kernel takes, generated here and checked before they reach
// it; the connect options they travel in; and that they never show in an error.
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { holdsSecret } from '../../../kube/redact.ts';
import { checkKeys, checkSecret, dhchapKeyBytes, generateDhchapSecret } from '../dhchap.ts';
import { CommandError, ConnectRefusedError, InvalidArgumentError } from '../errors.ts';
import { fabricsOptions } from '../linux/initiator.ts';

describe('generateDhchapSecret', () => {
  it('is DHHC-1:00:<base64 of the key and its CRC-32, little-endian>:', () => {
    for (const bytes of [32, 48, 64] as const) {
      const s = generateDhchapSecret(bytes);
      const m = /^DHHC-1:00:([A-Za-z0-9+/]+=*):$/.exec(s);
      expect(m, s).not.toBeNull();
      const raw = Buffer.from(m?.[1] ?? '', 'base64');
      expect(raw.length).toBe(bytes + 4);
      const key = raw.subarray(0, bytes);
      expect(raw.readUInt32LE(bytes)).toBe(crc32(key));
      expect(dhchapKeyBytes(s)?.equals(key)).toBe(true);
    }
  });

  it('gives a new key every time', () => {
    const seen = new Set(Array.from({ length: 50 }, () => generateDhchapSecret()));
    expect(seen.size).toBe(50);
  });

  it('matches a key made by hand the way nvme-cli gen-dhchap-key makes one', () => {
    // 32 bytes 0x00..0x1f; CRC-32 of them is 0x91267e8a (zlib), stored little-endian
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    const crc = Buffer.from([0x8a, 0x7e, 0x26, 0x91]);
    expect(crc32(key)).toBe(0x91267e8a);
    const s = `DHHC-1:00:${Buffer.concat([key, crc]).toString('base64')}:`;
    expect(dhchapKeyBytes(s)?.equals(key)).toBe(true);
  });
});

describe('checkSecret', () => {
  const good = generateDhchapSecret();
  const flip = (s: string, at: number) => `${s.slice(0, at)}${s[at] === 'A' ? 'B' : 'A'}${s.slice(at + 1)}`;

  it('takes a well-formed secret and nothing else, never quoting what it refuses', () => {
    expect(() => checkSecret(good)).not.toThrow();
    expect(() => checkSecret(undefined)).not.toThrow();
    const bad = [
      'secret',
      good.slice(0, -1), // no closing ':'
      good.replace('DHHC-1:00', 'DHHC-1:04'),
      flip(good, 20), // a key byte changed: the CRC no longer matches
      `DHHC-1:00:${Buffer.alloc(20).toString('base64')}:`, // 16-byte key
      `${good.slice(0, -1)},traddr=10.0.0.1:`,
    ];
    for (const s of bad) {
      let err: unknown;
      try {
        checkSecret(s);
      } catch (e) {
        err = e;
      }
      expect(err, s).toBeInstanceOf(InvalidArgumentError);
      if (s.length > 30) expect((err as Error).message).not.toContain(s.slice(10, 30));
    }
  });

  it('refuses a controller key without a host key', () => {
    expect(() => checkKeys({ dhchapCtrlSecret: good })).toThrow(InvalidArgumentError);
    expect(() => checkKeys({ dhchapSecret: good, dhchapCtrlSecret: generateDhchapSecret() })).not.toThrow();
  });
});

describe('fabricsOptions (what LinuxHost writes to /dev/nvme-fabrics)', () => {
  const hostNqn = 'nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a';
  const hostId = '0a0a0a0a-0000-4000-8000-00000000000a';
  const spec = {
    subsystemNqn: 'nqn.2024-11.io.meshstor:vol-1:r2',
    target: { address: '10.0.0.2', port: 4420 },
    ctrlLossTmoSec: 5,
  };

  it('names every option once, the keys last', () => {
    const host = generateDhchapSecret();
    const ctrl = generateDhchapSecret();
    const o = fabricsOptions({ ...spec, dhchapSecret: host, dhchapCtrlSecret: ctrl }, hostNqn, hostId);
    expect(o.split(',')).toEqual([
      `nqn=${spec.subsystemNqn}`,
      'transport=tcp',
      'traddr=10.0.0.2',
      'trsvcid=4420',
      `hostnqn=${hostNqn}`,
      `hostid=${hostId}`,
      'ctrl_loss_tmo=5',
      'reconnect_delay=1',
      `dhchap_secret=${host}`,
      `dhchap_ctrl_secret=${ctrl}`,
    ]);
    expect(fabricsOptions(spec, hostNqn, hostId)).not.toContain('dhchap');
  });

  it('refuses a value that would smuggle in another option', () => {
    const bad = [
      { ...spec, target: { address: '10.0.0.2,hostnqn=x', port: 4420 } },
      { ...spec, subsystemNqn: 'nqn.2024-11.io.meshstor:v,x' },
      { ...spec, dhchapSecret: `${generateDhchapSecret()},nr_io_queues=1` },
      { ...spec, ctrlLossTmoSec: -1 },
    ];
    for (const s of bad) expect(() => fabricsOptions(s, hostNqn, hostId)).toThrow(InvalidArgumentError);
    expect(() => fabricsOptions(spec, hostNqn, 'x,y')).toThrow(InvalidArgumentError);
  });
});

describe('host errors', () => {
  it('never carry a secret, whatever they were built from', () => {
    const s = generateDhchapSecret();
    const e1 = new ConnectRefusedError(`refused with ${s}`);
    const e2 = new CommandError(`nvme connect --dhchap-secret=${s}`, 1, `bad key ${s}\n`);
    for (const e of [e1, e2]) {
      expect(holdsSecret(e.message)).toBe(false);
      expect(e.message).toContain('DHHC-1:<redacted>');
    }
    expect(holdsSecret(e2.stderr)).toBe(false);
  });
});

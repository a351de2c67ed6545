// DH-HMAC-CHAP secrets in the NVMe text form the kernel reads (nvmet configfs `dhchap_key`, the
// initiator's `dhchap_secret=` option and sysfs attribute): `DHHC-1:<hh>:<base64(key || crc)>:`,
// where hh is the hash the key is transformed with before use (00: none, 01: SHA-256, 02: SHA-384,
// 03: SHA-512), the key is 32, 48 or 64 bytes and crc is the CRC-32 (IEEE, as zlib computes it) of
// the key, little-endian. The kernel refuses a secret whose length or CRC is wrong. Generated
// here with node:crypto, never by a command: a key on an argv is visible in /proc/*/cmdline.
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { InvalidArgumentError } from './errors.ts';

const KEY_LENGTHS = [32, 48, 64] as const;
export type DhchapKeyLength = (typeof KEY_LENGTHS)[number];
const FORM = /^DHHC-1:(0[0-3]):([A-Za-z0-9+/]+={0,2}):$/;

/** A fresh secret: `bytes` random bytes + their CRC-32, untransformed (hh 00: the same key for every host NQN). */
export function generateDhchapSecret(bytes: DhchapKeyLength = 32): string {
  const key = randomBytes(bytes);
  return `DHHC-1:00:${Buffer.concat([key, crcOf(key)]).toString('base64')}:`;
}

function crcOf(key: Buffer): Buffer {
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32(key));
  return crc;
}

/** The key bytes of a well-formed secret, or undefined (wrong form, length or CRC). */
export function dhchapKeyBytes(secret: string): Buffer | undefined {
  const m = FORM.exec(secret);
  if (!m?.[2]) return undefined;
  const raw = Buffer.from(m[2], 'base64');
  const key = raw.subarray(0, raw.length - 4);
  if (!(KEY_LENGTHS as readonly number[]).includes(key.length)) return undefined;
  if (!crcOf(key).equals(raw.subarray(key.length))) return undefined;
  return key;
}

/**
 * Refuses anything the kernel would not take as a secret, before it reaches the kernel: nvme-fabrics
 * prints a malformed secret into the kernel log when it refuses it. The message never quotes it.
 */
export function checkSecret(secret: string | undefined, what = 'DH-HMAC-CHAP secret'): void {
  if (secret !== undefined && dhchapKeyBytes(secret) === undefined) {
    throw new InvalidArgumentError(
      `${what} is not DHHC-1:0N:<base64 of a 32, 48 or 64 byte key and its CRC-32>: (value not shown)`,
    );
  }
}

/** The keys one host and one target share: what the host proves, and what the controller proves back. */
export interface DhchapKeys {
  /** The host's key (nvmet `dhchap_key`, initiator `dhchap_secret`). */
  dhchapSecret?: string | undefined;
  /** The controller's key (nvmet `dhchap_ctrl_key`, initiator `dhchap_ctrl_secret`): bidirectional. */
  dhchapCtrlSecret?: string | undefined;
}

/** Both keys checked; a controller key without a host key is refused (the kernel authenticates the host first). */
export function checkKeys(k: DhchapKeys): void {
  checkSecret(k.dhchapSecret);
  checkSecret(k.dhchapCtrlSecret, 'DH-HMAC-CHAP controller secret');
  if (k.dhchapCtrlSecret !== undefined && k.dhchapSecret === undefined) {
    throw new InvalidArgumentError('a DH-HMAC-CHAP controller secret needs a host secret too');
  }
}

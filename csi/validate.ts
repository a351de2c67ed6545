// The checks every CSI request goes through before any work: names and ids, kubelet's paths and
// capacity ranges. Each throws INVALID_ARGUMENT (OUT_OF_RANGE for a number MeshStor cannot address)
// naming the field, and never echoes a long value back whole.
import { isAbsolute, normalize } from 'node:path';
import { invalid, outOfRange } from './errors.ts';
import type { CapacityRange } from './types.ts';

/** The CSI spec's limit for a string field (names, ids): 128 bytes. */
export const MAX_ID_BYTES = 128;
/** Linux's PATH_MAX: no path the kernel takes is longer. */
const MAX_PATH_BYTES = 4096;
/** C0 and C1 control characters, NUL included: nothing a name, id or kubelet path contains. */
const CONTROL = /\p{Cc}/u;

/** A value as it may appear in an error message: cut, and quoted so control characters show. */
export function shown(value: string, chars = 64): string {
  return JSON.stringify(value.length > chars ? `${value.slice(0, chars)}…` : value);
}

/** A required name or id: present, at most 128 bytes (UTF-8), no control characters. */
export function checkId(value: string | undefined, field: string): string {
  if (!value) throw invalid(`${field} is required`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_ID_BYTES)
    throw invalid(`${field} is ${bytes} bytes; CSI allows at most ${MAX_ID_BYTES} (${shown(value)})`);
  if (CONTROL.test(value)) throw invalid(`${field} contains a control character (${shown(value)})`);
  return value;
}

/** kubelet's directory as the path checks compare with: normalised, no trailing slash. */
export function kubeletRoot(dir: string): string {
  if (!isAbsolute(dir)) throw new Error(`kubelet's directory must be an absolute path (got ${shown(dir)})`);
  return normalize(dir).replace(/\/+$/, '');
}

/**
 * A staging, target or volume path: absolute, normalised (no `..`, `.`, `//` or trailing slash),
 * no control characters, and strictly under kubelet's directory `root` (from `kubeletRoot`), so
 * a careless or hostile caller cannot make the driver create, mount or delete anything elsewhere.
 */
export function checkPath(value: string | undefined, field: string, root: string): string {
  if (!value) throw invalid(`${field} is required`);
  if (Buffer.byteLength(value, 'utf8') > MAX_PATH_BYTES)
    throw invalid(`${field} is longer than ${MAX_PATH_BYTES} bytes (${shown(value)})`);
  if (CONTROL.test(value)) throw invalid(`${field} contains a control character (${shown(value)})`);
  if (!isAbsolute(value) || normalize(value) !== value || (value.endsWith('/') && value !== '/'))
    throw invalid(`${field} must be an absolute, normalised path (got ${shown(value, 200)})`);
  if (!value.startsWith(`${root}/`) || value === `${root}/`)
    throw invalid(`${field} must be under kubelet's directory ${root || '/'} (got ${shown(value, 200)})`);
  return value;
}

/** One int64 of a capacity range: a whole number of bytes, not negative, one MeshStor can address. */
function bytesOf(v: string | number | undefined, field: string): number {
  const text = String(v ?? 0);
  if (!/^-?\d+$/.test(text)) throw invalid(`${field} must be a whole number of bytes (got ${shown(text)})`);
  const n = Number(text);
  if (n < 0) throw invalid(`${field} must not be negative`);
  if (!Number.isSafeInteger(n)) throw outOfRange(`${field} ${text} is larger than MeshStor can address`);
  return n;
}

/** A capacity range's bounds (0: not set); a required size above the limit is invalid. */
export function checkRange(
  range: CapacityRange | null | undefined,
  field = 'capacity_range',
): { required: number; limit: number } {
  const required = bytesOf(range?.required_bytes, `${field}.required_bytes`);
  const limit = bytesOf(range?.limit_bytes, `${field}.limit_bytes`);
  if (limit > 0 && required > limit)
    throw invalid(`${field}.required_bytes ${required} is above limit_bytes ${limit}`);
  return { required, limit };
}

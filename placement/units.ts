// Byte units and parsing. Sizes are plain numbers of bytes: a double holds every integer up to
// 2^53 (8 PiB), far above any drive, so no bigint is needed on the hot path.

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** Partitions start and end on 1 MiB boundaries (what sgdisk and parted align to by default). */
export const ALIGN = MiB;

export function alignUp(bytes: number, to: number = ALIGN): number {
  return Math.ceil(bytes / to) * to;
}

export function alignDown(bytes: number, to: number = ALIGN): number {
  return Math.floor(bytes / to) * to;
}

/** Kubernetes quantity suffixes, case as Kubernetes has them ("m" is milli there, never mega). */
const QUANTITY: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: KiB,
  Mi: MiB,
  Gi: GiB,
  Ti: TiB,
  Pi: 1024 * TiB,
  Ei: 1024 * 1024 * TiB,
  m: 1e-3,
};

/** Byte units as drives are sold and people write them, any case: B, KB … TB, KiB … TiB. */
const BYTE_UNIT: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  pb: 1e15,
  kib: KiB,
  mib: MiB,
  gib: GiB,
  tib: TiB,
  pib: 1024 * TiB,
};

/**
 * The one byte-size parser: a Kubernetes quantity ("10Gi", "500M", "1e9", "512Mi") or a size with a
 * byte unit ("3.84TB", "100GiB", "1 TiB"), or a plain number of bytes. Decimal units are how drives
 * are sold, binary ones how Kubernetes quantities and volumes are usually written; scenario files,
 * flags and claims use both. A fraction of a byte rounds up. Throws a message naming the bad text.
 */
export function parseBytes(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0) throw new Error(`size ${text} must be a non-negative number`);
    return Math.ceil(text);
  }
  const m = /^\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const suffix = m?.[2] ?? '';
  const unit = m ? (QUANTITY[suffix] ?? BYTE_UNIT[suffix.toLowerCase()]) : undefined;
  if (!m || unit === undefined) {
    throw new Error(
      `cannot read size "${text}": use a number with an optional unit (Ki, Mi, Gi, Ti, k, M, G, T, KiB, MiB, GiB, TiB, KB, MB, GB, TB)`,
    );
  }
  return Math.ceil(Number(m[1]) * unit);
}

export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs >= TiB) return `${(bytes / TiB).toFixed(2)} TiB`;
  if (abs >= GiB) return `${(bytes / GiB).toFixed(1)} GiB`;
  if (abs >= MiB) return `${(bytes / MiB).toFixed(0)} MiB`;
  return `${bytes} B`;
}

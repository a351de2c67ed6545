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

const UNIT: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: KiB,
  kib: KiB,
  mi: MiB,
  mib: MiB,
  gi: GiB,
  gib: GiB,
  ti: TiB,
  tib: TiB,
};

/**
 * Parses "3.84TB", "100GiB", "512Mi" or a plain byte count. Decimal units are how drives are
 * sold, binary units how Kubernetes quantities and volumes are usually written; both appear in
 * scenario files. Throws a message naming the bad text.
 */
export function parseBytes(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0) throw new Error(`size ${text} must be a non-negative number`);
    return Math.floor(text);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNIT[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new Error(
      `cannot read size "${text}": use a number with an optional unit (MiB, GiB, TiB, MB, GB, TB)`,
    );
  }
  return Math.floor(Number(m[1]) * unit);
}

export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs >= TiB) return `${(bytes / TiB).toFixed(2)} TiB`;
  if (abs >= GiB) return `${(bytes / GiB).toFixed(1)} GiB`;
  if (abs >= MiB) return `${(bytes / MiB).toFixed(0)} MiB`;
  return `${bytes} B`;
}

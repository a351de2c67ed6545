// Device-mapper tables as `dmsetup table <name>` prints them: one line per segment,
// "<start> <length> <target> <args...>" in 512-byte sectors. The fence layer under a local leg
// (guard.ts) is a single segment: `linear <major:minor> 0` while it passes IO, `error` once cut.

/** One fence layer's table: what it maps and whether it still passes IO. */
export type GuardTable =
  | { kind: 'linear'; sectors: number; dev: string; offset: number }
  | { kind: 'error'; sectors: number };

/**
 * The table of a fence layer, or undefined when the output is anything else (several segments,
 * another target, a linear map at another offset): then the device is not one this code made.
 */
export function parseGuardTable(stdout: string): GuardTable | undefined {
  const lines = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length !== 1) return undefined;
  const [start, length, target, ...args] = (lines[0] ?? '').split(/\s+/);
  const sectors = Number(length);
  if (start !== '0' || !Number.isInteger(sectors) || sectors <= 0) return undefined;
  if (target === 'error' && args.length === 0) return { kind: 'error', sectors };
  if (target === 'linear' && args.length === 2) {
    const [dev, off] = args as [string, string];
    if (!/^\d+:\d+$/.test(dev) || !/^\d+$/.test(off)) return undefined;
    return { kind: 'linear', sectors, dev, offset: Number(off) };
  }
  return undefined;
}

/** The table that passes a whole partition through (`dmsetup create/load --table`). */
export const linearTable = (sectors: number, dev: string): string => `0 ${sectors} linear ${dev} 0`;

/** The table that fails every IO with EIO. */
export const errorTable = (sectors: number): string => `0 ${sectors} error`;

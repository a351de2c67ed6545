// `mdadm --examine-bitmap <member>`: the write-intent bitmap an array member carries (chunk size,
// chunks, dirty chunks). Its "Key : value" lines are mdadm's own text, not an --export format.
import type { BitmapInfo } from '../../types.ts';

const UNIT: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

function fields(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(' : ');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 3).trim());
  }
  return m;
}

/** The bitmap, or undefined when the output holds none (no bitmap, no superblock, exit non-zero). */
export function parseExamineBitmap(code: number, stdout: string): BitmapInfo | undefined {
  if (code !== 0) return undefined;
  const f = fields(stdout);
  const chunk = /^(\d+)\s*(B|KB|MB|GB)$/.exec(f.get('Chunksize') ?? '');
  const bits = /^(\d+) bits \(chunks\), (\d+) dirty/.exec(f.get('Bitmap') ?? '');
  if (!chunk || !bits) return undefined;
  return {
    chunkBytes: Number(chunk[1]) * (UNIT[chunk[2] as string] ?? 1),
    chunks: Number(bits[1]),
    dirtyChunks: Number(bits[2]),
  };
}

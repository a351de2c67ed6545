// `mdadm --examine <member>` (1.x superblocks): where the member's data starts. The `--export` form
// does not carry it; the text form has a line `Data Offset : <n> sectors` (512-byte sectors).

/** The data offset in bytes, or undefined when the text names none (no 1.x superblock). */
export function dataOffsetBytes(examine: string): number | undefined {
  const m = /^\s*Data Offset\s*:\s*(\d+)\s+sectors\b/m.exec(examine);
  return m ? Number(m[1]) * 512 : undefined;
}

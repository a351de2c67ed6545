// `mdadm --examine <member>` (1.x superblocks): where the member's data starts and how much of it the
// array used. The `--export` form carries neither; the text form has `Data Offset : <n> sectors`
// (512-byte sectors) and `Array Size : <n> KiB`.

export interface MemberData {
  /** Bytes from the start of the member to its data. */
  offsetBytes: number;
  /** The array's size when the member was in it: what a copy of its contents must take. */
  arrayBytes: number;
}

/** The member's data area, or undefined when the text names none (no 1.x superblock). */
export function memberData(examine: string): MemberData | undefined {
  const offset = /^\s*Data Offset\s*:\s*(\d+)\s+sectors\b/m.exec(examine);
  const size = /^\s*Array Size\s*:\s*(\d+)\s+KiB\b/m.exec(examine);
  if (!offset || !size) return undefined;
  return { offsetBytes: Number(offset[1]) * 512, arrayBytes: Number(size[1]) * 1024 };
}

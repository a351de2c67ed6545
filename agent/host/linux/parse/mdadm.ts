// `mdadm --detail --export /dev/mdN` and `mdadm --examine --export <device>`: which array a running
// md device or a member's superblock belongs to, and how current a member's superblock is.
import { parseExportLines } from './export-format.ts';

export interface MdIdentity {
  /** MD_UUID (mdadm's colon-separated form). */
  uuid: string;
  /** MD_NAME as mdadm prints it: `homehost:name`, or `name` alone (`--homehost=any`). */
  fullName: string | undefined;
  /** The array's name without the homehost. */
  name: string;
}

/** The identity in an `--export` listing, or undefined when it names no array (no MD_UUID). */
export function parseMdIdentity(stdout: string): MdIdentity | undefined {
  const e = parseExportLines(stdout);
  if (!e.MD_UUID) return undefined;
  return { uuid: e.MD_UUID, fullName: e.MD_NAME, name: (e.MD_NAME ?? '').replace(/^.*:/, '') };
}

/**
 * The superblock `mdadm --examine --export` (exit codes 0 and 1 allowed) found, or undefined:
 * a device without one makes it exit 1.
 */
export function parseExamine(code: number, stdout: string): MdIdentity | undefined {
  return code === 0 ? parseMdIdentity(stdout) : undefined;
}

/**
 * The superblock's event count (MD_EVENTS of `mdadm --examine --export`): md raises it on every
 * change of the array's state, so a member that left has a lower count than the members that
 * stayed, and one written somewhere else after it left may have a higher one.
 */
export function parseExamineEvents(code: number, stdout: string): number | undefined {
  if (code !== 0) return undefined;
  const n = Number(parseExportLines(stdout).MD_EVENTS);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The array's name from mdadm's own map (MD_DEVNAME) when `--detail` could read no member's
 * superblock (no MD_NAME): a fenced array whose last member is a lost remote namespace (ADR 0006).
 * The uuid is MD_UUID when mdadm still printed it, else unknown ('').
 */
export function parseMdDevname(stdout: string): MdIdentity | undefined {
  const e = parseExportLines(stdout);
  if (e.MD_NAME || !e.MD_DEVNAME) return undefined;
  return { uuid: e.MD_UUID ?? '', fullName: undefined, name: e.MD_DEVNAME.replace(/^.*\//, '') };
}

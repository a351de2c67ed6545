// Which of a node's NVMe drives the agent manages: the admin's decision, never a guess. Selectors
// name drives by stable ids (by-id name, serial, WWN, model glob); without any, the default takes
// only PCIe NVMe drives with no partition table, an empty GPT, or only MeshStor's own partitions.
// A drive with partitions MeshStor did not create is left alone unless the admin opted in to its
// free tail (the OS drive); its partitions then stay as they are. Every drive not taken is reported
// with the reason, for the MeshStorNode. Pure: the facts come from agent/host/linux-drive-candidates.ts.

export type DriveSelectorKind = 'id' | 'serial' | 'wwn' | 'model';

export interface DriveSelector {
  kind: DriveSelectorKind;
  /** Exact value (serial, wwn) or glob (`*`, `?`) for id and model. */
  value: string;
  /** The selector as the admin wrote it, for messages. */
  text: string;
}

export interface CandidatePartition {
  /** Kernel name (nvme0n1p1) or GPT name: what the admin recognises in a message. */
  name: string;
  /** GPT partition GUID, when the table has one. */
  guid?: string | undefined;
  /** MeshStor created it (its type, name and GUID say so). */
  owned: boolean;
}

export interface DriveCandidate {
  /** Kernel name, e.g. nvme0n1. */
  name: string;
  serial: string;
  wwn?: string | undefined;
  model?: string | undefined;
  /** Names in /dev/disk/by-id pointing at the drive (without the directory). */
  byIdNames: string[];
  /** NVMe transport: pcie for local drives; tcp, rdma, fc, loop for fabrics namespaces. */
  transport: string;
  partitionTableType?: 'gpt' | 'dos' | undefined;
  partitions: CandidatePartition[];
  /** A filesystem, LVM or RAID signature on the whole drive (blkid TYPE), when there is no table. */
  signature?: string | undefined;
}

export interface ManagedDrive {
  /** Stable id: the serial (the WWN when there is none), what LinuxHost calls the drive. */
  id: string;
  name: string;
  /** `whole`: nothing but MeshStor on it; `free-space`: the OS drive's tail, its partitions kept. */
  use: 'whole' | 'free-space';
  /** Partitions MeshStor did not create and never touches (empty for `whole`). */
  keptPartitions: string[];
  /** Why it is taken, in words for the admin. */
  reason: string;
}

export interface SkippedDrive {
  id: string;
  name: string;
  reason: string;
}

export interface DriveSelection {
  managed: ManagedDrive[];
  skipped: SkippedDrive[];
  /** Selectors (`--drive` or `--os-drive-tail`) that matched no drive: likely a typo worth a warning. */
  unmatched: string[];
}

export interface DriveSelectionRules {
  /** `--drive`: when given, only drives matching one of them are taken. */
  drives?: readonly DriveSelector[];
  /** `--os-drive-tail`: drives whose free space may be used next to partitions MeshStor did not create. */
  osDriveTail?: readonly DriveSelector[];
}

export class DriveSelectorError extends Error {
  override name = 'DriveSelectorError';
}

/** Fabrics namespaces are other nodes' replicas connected here: never a drive of this node. */
const FABRICS = new Set(['tcp', 'rdma', 'fc', 'loop']);
const KINDS: readonly DriveSelectorKind[] = ['id', 'serial', 'wwn', 'model'];
const BY_ID_DIR = '/dev/disk/by-id/';
const SYNTAX = 'id:<by-id name or glob>, serial:<serial>, wwn:<wwn> or model:<glob>';

/** Parses one selector; throws DriveSelectorError saying what is wrong and what is accepted. */
export function parseDriveSelector(text: string): DriveSelector {
  const bad = (why: string) => new DriveSelectorError(`drive selector ${JSON.stringify(text)}: ${why}`);
  const colon = text.indexOf(':');
  if (colon < 0) throw bad(`missing "<kind>:"; use ${SYNTAX}`);
  const kind = text.slice(0, colon);
  let value = text.slice(colon + 1);
  if (!(KINDS as readonly string[]).includes(kind))
    throw bad(`unknown kind ${JSON.stringify(kind)}; use ${SYNTAX}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(value)) throw bad('contains control characters');
  if (value !== value.trim()) throw bad('has leading or trailing spaces');
  if (kind === 'id' && value.startsWith(BY_ID_DIR)) value = value.slice(BY_ID_DIR.length);
  if (value === '') throw bad(`the ${kind} is empty`);
  if (kind === 'id' && value.includes('/'))
    throw bad(`a by-id name has no '/' (give the name in ${BY_ID_DIR}, or the full path)`);
  if ((kind === 'serial' || kind === 'wwn') && /[*?[\]]/.test(value))
    throw bad(`a ${kind} is matched exactly: no glob characters (* ? [ ]); use id: or model: for globs`);
  if (kind === 'id' && /^\*+$/.test(value)) throw bad('matches every drive; name the drives to use');
  return { kind: kind as DriveSelectorKind, value, text };
}

/** Parses every selector, reporting all the bad ones in one error. */
export function parseDriveSelectors(texts: readonly string[]): DriveSelector[] {
  const out: DriveSelector[] = [];
  const errors: string[] = [];
  for (const t of texts) {
    try {
      out.push(parseDriveSelector(t));
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length > 0) throw new DriveSelectorError(errors.join('; '));
  return out;
}

const escapeRe = (s: string) => s.replace(/[.+^${}()|[\]\\]/g, '\\$&');
/** `*` any run of characters, `?` one character; everything else literal. */
export function globToRegExp(glob: string, ignoreCase = false): RegExp {
  const body = [...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : escapeRe(c))).join('');
  return new RegExp(`^${body}$`, ignoreCase ? 'i' : '');
}

/** Serial and model are space padded in sysfs; WWNs differ in case between tools. */
export function selectorMatches(sel: DriveSelector, d: DriveCandidate): boolean {
  switch (sel.kind) {
    case 'id': {
      const re = globToRegExp(sel.value);
      return d.byIdNames.some((n) => re.test(n));
    }
    case 'serial':
      return d.serial.trim() === sel.value;
    case 'wwn':
      return d.wwn !== undefined && d.wwn.trim().toLowerCase() === sel.value.toLowerCase();
    case 'model':
      return d.model !== undefined && globToRegExp(sel.value, true).test(d.model.trim());
  }
}

export const driveId = (d: Pick<DriveCandidate, 'serial' | 'wwn' | 'name'>): string =>
  d.serial.trim() || d.wwn?.trim() || d.name;

/** Names for a message; long lists are cut (a MeshStorNode reason holds 1024 characters). */
const list = (names: readonly string[]) =>
  names.length <= 8 ? names.join(', ') : `${names.slice(0, 8).join(', ')} and ${names.length - 8} more`;

/**
 * Decides, for every drive that is not a fabrics namespace, whether the agent manages it (and how
 * much of it) or skips it, and why. Deterministic: the order of `candidates` does not matter.
 */
export function selectDrives(
  candidates: readonly DriveCandidate[],
  rules: DriveSelectionRules = {},
): DriveSelection {
  const drives = rules.drives ?? [];
  const tails = rules.osDriveTail ?? [];
  const used = new Set<string>();
  const managed: ManagedDrive[] = [];
  const skipped: SkippedDrive[] = [];
  const seen = new Map<string, string>();
  const local = candidates
    .filter((d) => !FABRICS.has(d.transport))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const d of local) {
    const id = driveId(d);
    const skip = (reason: string) => skipped.push({ id, name: d.name, reason });
    const pickedBy = drives.filter((s) => selectorMatches(s, d));
    const tailBy = tails.filter((s) => selectorMatches(s, d));
    for (const s of [...pickedBy, ...tailBy]) used.add(s.text);
    const twin = seen.get(id);
    if (twin !== undefined) {
      skip(`same id ${id} as ${twin} (another namespace of one controller); only ${twin} is used`);
      continue;
    }
    seen.set(id, d.name);
    if (d.transport !== 'pcie') {
      skip(`transport ${JSON.stringify(d.transport)} is not a local PCIe NVMe drive`);
      continue;
    }
    const chosen = tailBy.length > 0 || pickedBy.length > 0 || drives.length === 0;
    if (!chosen) {
      skip('matches no --drive selector');
      continue;
    }
    const by = [...pickedBy, ...tailBy].map((s) => s.text);
    const why = by.length > 0 ? `selected by ${list(by)}` : 'default: an NVMe drive';
    const foreign = d.partitions.filter((p) => !p.owned).map((p) => p.name);
    if (d.partitionTableType === 'dos') {
      skip(
        foreign.length > 0
          ? `has an MBR (dos) partition table with ${list(foreign)}; MeshStor adds partitions to GPT only`
          : 'has an empty MBR (dos) partition table; MeshStor uses GPT: clear it (wipefs -a) to let MeshStor take the drive',
      );
      continue;
    }
    if (d.partitionTableType === undefined && d.signature) {
      skip(
        `holds a ${d.signature} signature on the whole drive (no partition table); MeshStor never overwrites it`,
      );
      continue;
    }
    if (foreign.length === 0) {
      const state =
        d.partitionTableType === undefined
          ? 'no partition table'
          : d.partitions.length === 0
            ? 'an empty GPT'
            : 'only MeshStor partitions';
      managed.push({ id, name: d.name, use: 'whole', keptPartitions: [], reason: `${why}; ${state}` });
      continue;
    }
    if (tailBy.length === 0) {
      skip(
        `has partitions MeshStor did not create (${list(foreign)}); to use its free space, name it in --os-drive-tail`,
      );
      continue;
    }
    managed.push({
      id,
      name: d.name,
      use: 'free-space',
      keptPartitions: foreign,
      reason: `${why}: only its free space is used; ${list(foreign)} stay as they are`,
    });
  }
  const unmatched = [...drives, ...tails].map((s) => s.text).filter((t) => !used.has(t));
  return { managed, skipped, unmatched: [...new Set(unmatched)] };
}

// Names that tie host objects to their volume replica: GPT partition name and GUID, the NVMe-oF
// subsystem NQN and the MD array name. Pure functions, shared by both Host implementations, so a
// partition, an export and an array found on a machine can always be traced back to the replica.
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from './errors.ts';
import type { Owner } from './types.ts';

export { checkSecret, generateDhchapSecret } from './dhchap.ts';

const ID = /^[a-z0-9]([a-z0-9.-]{0,62}[a-z0-9])?$/;
export const NQN_PREFIX = 'nqn.2024-11.io.meshstor';
/** GPT partition type GUID marking MeshStor replicas (Linux RAID, what mdadm members use). */
export const PARTITION_TYPE = 'a19d880f-05fc-4d3b-a006-743f0f84911e';

export function checkId(what: string, id: string): void {
  if (!ID.test(id)) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(id)} is not a valid id (lowercase letters, digits, '.', '-', 1-64 chars)`,
    );
  }
}

export function checkOwner(o: Owner): void {
  checkId('volume id', o.volumeId);
  checkId('replica id', o.replicaId);
}

/** GPT names hold 36 UTF-16 characters: long ids are cut, the GUID below stays exact. */
export function partitionName(o: Owner): string {
  checkOwner(o);
  // no ':' in it: sgdisk's --change-name=N:NAME cuts the name at its first ':'
  return `ms/${o.volumeId}/${o.replicaId}`.slice(0, 36);
}

/** A deterministic GUID from volume + replica (RFC 4122 layout, version 5 style, sha256 based). */
export function partitionUuid(o: Owner): string {
  checkOwner(o);
  const h = createHash('sha256').update(`meshstor-replica\0${o.volumeId}\0${o.replicaId}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** The owner a partition name says, when it is a whole (uncut) MeshStor name. */
export function ownerFromName(name: string): Owner | undefined {
  const m = /^ms\/([a-z0-9.-]+)\/([a-z0-9.-]+)$/.exec(name);
  return m?.[1] && m[2] && name.length < 36 ? { volumeId: m[1], replicaId: m[2] } : undefined;
}

export function subsystemNqn(o: Owner): string {
  checkOwner(o);
  return `${NQN_PREFIX}:${o.volumeId}:${o.replicaId}`;
}

/** The replica a MeshStor subsystem NQN names, or undefined for anybody else's subsystem. */
export function ownerFromSubsystemNqn(nqn: string): Owner | undefined {
  if (!nqn.startsWith(`${NQN_PREFIX}:`)) return undefined;
  const [volumeId, replicaId, ...rest] = nqn.slice(NQN_PREFIX.length + 1).split(':');
  if (!volumeId || !replicaId || rest.length > 0 || !ID.test(volumeId) || !ID.test(replicaId))
    return undefined;
  return { volumeId, replicaId };
}

/**
 * The 1.2 superblock has 32 bytes for the name, but mdadm --create keeps at most 31 of them (it
 * cuts the rest silently, and the array is then not found under the name it was created with).
 * Longer volume ids (a provisioner's `pvc-<uuid>`) are named by a hash.
 */
export const MAX_ARRAY_NAME = 31;
export function arrayName(volumeId: string): string {
  checkId('volume id', volumeId);
  if (volumeId.length > MAX_ARRAY_NAME - 3) {
    return `ms-${createHash('sha256')
      .update(volumeId)
      .digest('hex')
      .slice(0, MAX_ARRAY_NAME - 3)}`;
  }
  return `ms-${volumeId}`;
}

export function checkNqn(nqn: string): void {
  if (!/^nqn\.\d{4}-\d{2}\.[a-z0-9.-]+:[\w.:-]+$/.test(nqn) || nqn.length > 223) {
    throw new InvalidArgumentError(`${JSON.stringify(nqn)} is not a valid NVMe qualified name`);
  }
}

export function checkCtrlLoss(sec: number): void {
  if (!Number.isInteger(sec) || sec < 1 || sec > 3600) {
    throw new InvalidArgumentError(
      `ctrl-loss-tmo ${sec} s is not a bounded whole number of seconds (1..3600)`,
    );
  }
}

const GUARD_PREFIX = 'msfence_';

/**
 * The device-mapper name of the fence layer under a volume's local member (ADR 0006): the array's
 * name and the partition's kernel name, joined by '_' (which neither contains), so a restarted
 * agent finds it again and one volume's layers are never taken for another's.
 */
export function guardName(volumeId: string, partition: string): string {
  if (!/^[a-z0-9]+$/.test(partition))
    throw new InvalidArgumentError(`${JSON.stringify(partition)} is not a partition's kernel name`);
  return `${GUARD_PREFIX}${arrayName(volumeId)}_${partition}`;
}

/** The prefix of every fence layer name of a volume. */
export const guardPrefix = (volumeId: string): string => `${GUARD_PREFIX}${arrayName(volumeId)}_`;

/** The device-mapper UUID MeshStor gives a fence layer: it only ever touches layers carrying it. */
export const guardUuid = (name: string): string => `MESHSTOR-${name}`;

/** The partition's kernel name a fence layer name carries, or undefined for any other name. */
export function partitionOfGuard(name: string): string | undefined {
  const m = /^msfence_ms-[a-z0-9.-]+_([a-z0-9]+)$/.exec(name);
  return m?.[1];
}

// Typed errors of the Host layer. Every refusal is one of these, with a message that says what
// was refused and why; both Host implementations throw the same classes for the same situations.
import { redactSecrets } from '../../kube/redact.ts';

export class HostError extends Error {
  override name = 'HostError';
  // A host error's message may reach a log, an Event or kubelet: a secret in it never does.
  constructor(message?: string, options?: ErrorOptions) {
    super(message === undefined ? undefined : redactSecrets(message), options);
  }
}

/** Bad input (ids, extents, sizes): nothing was changed. */
export class InvalidArgumentError extends HostError {
  override name = 'InvalidArgumentError';
}

/** The thing the operation needs (drive, partition, array, export) does not exist. */
export class NotFoundError extends HostError {
  override name = 'NotFoundError';
}

/** A new partition would overlap an existing one (or leave the drive's usable area). */
export class PartitionOverlapError extends HostError {
  override name = 'PartitionOverlapError';
}

/** A device carries an MD superblock of another array (or a filesystem we did not make). */
export class ForeignSuperblockError extends HostError {
  override name = 'ForeignSuperblockError';
}

/** Removing this member would drop the last in-sync copy of the data. */
export class LastInSyncMemberError extends HostError {
  override name = 'LastInSyncMemberError';
}

/**
 * A member cannot be caught up from the array's write-intent bitmap (`mdadm --re-add`): it carries
 * no superblock of the array, it was written while away (its event count is ahead), or md found the
 * bitmap does not cover the time it was gone. Only a full rebuild (wipe, add) brings it back.
 */
export class ReAddRefusedError extends HostError {
  override name = 'ReAddRefusedError';
}

/** The partition is a member of an assembled array, exported, or mounted: not deleted or wiped. */
export class DeviceInUseError extends HostError {
  override name = 'DeviceInUseError';
}

/** The target refused our connection (host NQN not allowed, authentication failed, ...). */
export class ConnectRefusedError extends HostError {
  override name = 'ConnectRefusedError';
}

/** A host command exited non-zero, or could not be started. */
export class CommandError extends HostError {
  override name = 'CommandError';
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(command: string, exitCode: number | null, stderr: string, why?: string) {
    const tail = stderr.trim().split('\n').slice(-6).join('\n');
    super(`${why ?? `exit ${exitCode}`}: ${command}${tail ? `\n${tail}` : ''}`);
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = redactSecrets(stderr);
  }
}

/** A host command ran past its time bound and was killed. */
export class CommandTimeoutError extends CommandError {
  override name = 'CommandTimeoutError';
}

/** The operation was cancelled through its AbortSignal. */
export class CancelledError extends HostError {
  override name = 'CancelledError';
}

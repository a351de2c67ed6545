// Errors that reach a CSI caller as a gRPC status with the code the spec asks for. The layers below
// throw their own typed errors; this file is the one table that gives them codes.
import { status } from '@grpc/grpc-js';
import { VolumeRefusal, type VolumeRefusalKind } from '../agent/errors.ts';
import {
  CancelledError,
  CommandError,
  CommandTimeoutError,
  ConnectRefusedError,
  DeviceInUseError,
  ForeignSuperblockError,
  HostError,
  InvalidArgumentError,
  LastInSyncMemberError,
  NotFoundError,
  PartitionOverlapError,
} from '../agent/host/errors.ts';
import { AllocatorRefusal, type AllocatorRefusalKind } from '../controller/errors.ts';
import { PlacementError } from '../placement/errors.ts';
import { StateError, type StateErrorKind } from '../state/errors.ts';

export class CsiError extends Error {
  readonly code: status;
  constructor(code: status, message: string) {
    super(message);
    this.name = 'CsiError';
    this.code = code;
  }
}

export const invalid = (message: string) => new CsiError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string) => new CsiError(status.NOT_FOUND, message);
export const alreadyExists = (message: string) => new CsiError(status.ALREADY_EXISTS, message);
export const outOfRange = (message: string) => new CsiError(status.OUT_OF_RANGE, message);

/** Why a call's signal aborted, and so the status the call ends with whatever its work threw. */
const ABORT_CODES = {
  deadline: status.DEADLINE_EXCEEDED,
  cancelled: status.CANCELLED,
  stopping: status.UNAVAILABLE,
} as const;
export const aborted = (why: keyof typeof ABORT_CODES, message: string) =>
  new CsiError(ABORT_CODES[why], message);

const PLACEMENT_CODES: Record<PlacementError['code'], status> = {
  invalid: status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  conflict: status.ALREADY_EXISTS,
  exhausted: status.RESOURCE_EXHAUSTED,
  unsafe: status.FAILED_PRECONDITION,
};

const STATE_CODES: Record<StateErrorKind, status> = {
  exists: status.ALREADY_EXISTS,
  changed: status.ABORTED,
  'not-found': status.NOT_FOUND,
  unavailable: status.UNAVAILABLE,
};

const VOLUME_CODES: Record<VolumeRefusalKind, status> = {
  invalid: status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  exists: status.ALREADY_EXISTS,
  precondition: status.FAILED_PRECONDITION,
  unavailable: status.UNAVAILABLE,
  'out-of-range': status.OUT_OF_RANGE,
};

const ALLOCATOR_CODES: Record<AllocatorRefusalKind, status> = {
  unavailable: status.UNAVAILABLE,
  contended: status.ABORTED,
};

/**
 * Host refusals by class, most specific first (CommandTimeoutError is a CommandError). A refusal
 * that protects data (last in-sync copy, a foreign superblock, a device in use) is a precondition
 * the caller can change, never INTERNAL.
 */
const HOST_CODES: [new (...args: never[]) => HostError, status][] = [
  [CommandTimeoutError, status.DEADLINE_EXCEEDED],
  [CancelledError, status.CANCELLED],
  [InvalidArgumentError, status.INVALID_ARGUMENT],
  [NotFoundError, status.NOT_FOUND],
  [LastInSyncMemberError, status.FAILED_PRECONDITION],
  [ForeignSuperblockError, status.FAILED_PRECONDITION],
  [PartitionOverlapError, status.FAILED_PRECONDITION],
  [DeviceInUseError, status.FAILED_PRECONDITION],
  [ConnectRefusedError, status.UNAVAILABLE],
  [CommandError, status.INTERNAL],
];

/** The gRPC code for any thrown value; what no layer typed is INTERNAL. */
export function codeFor(e: unknown): status {
  if (e instanceof CsiError) return e.code;
  if (e instanceof PlacementError) return PLACEMENT_CODES[e.code];
  if (e instanceof StateError) return STATE_CODES[e.kind];
  if (e instanceof VolumeRefusal) return VOLUME_CODES[e.kind];
  if (e instanceof AllocatorRefusal) return ALLOCATOR_CODES[e.kind];
  if (e instanceof HostError) return HOST_CODES.find(([cls]) => e instanceof cls)?.[1] ?? status.INTERNAL;
  return status.INTERNAL;
}

/** Any thrown value as a CsiError with its code from the table above. */
export function toCsiError(e: unknown): CsiError {
  if (e instanceof CsiError) return e;
  return new CsiError(codeFor(e), e instanceof Error ? e.message : String(e));
}

/**
 * What a call that failed answers: once its signal aborted (deadline, cancel, stop), the abort's
 * status, since whatever the work threw then (a killed command, say) is a consequence of it.
 */
export function callFailure(e: unknown, signal: AbortSignal): CsiError {
  if (!signal.aborted || e === signal.reason) return toCsiError(e);
  const reason = toCsiError(signal.reason);
  const detail = e instanceof Error ? e.message : String(e);
  return new CsiError(reason.code, `${reason.message} (${detail})`);
}

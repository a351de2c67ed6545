// Errors that reach a CSI caller as a gRPC status with the code the spec asks for.
import { status } from '@grpc/grpc-js';
import { PlacementError } from '../placement/errors.ts';

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
export const exhausted = (message: string) => new CsiError(status.RESOURCE_EXHAUSTED, message);
export const outOfRange = (message: string) => new CsiError(status.OUT_OF_RANGE, message);
export const unavailable = (message: string) => new CsiError(status.UNAVAILABLE, message);
export const failedPrecondition = (message: string) => new CsiError(status.FAILED_PRECONDITION, message);

const PLACEMENT_CODES: Record<PlacementError['code'], status> = {
  invalid: status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  conflict: status.ALREADY_EXISTS,
  exhausted: status.RESOURCE_EXHAUSTED,
  unsafe: status.FAILED_PRECONDITION,
};

/** Any thrown value as a CsiError: ours keep their code, placement's are mapped, the rest INTERNAL. */
export function toCsiError(e: unknown): CsiError {
  if (e instanceof CsiError) return e;
  if (e instanceof PlacementError) return new CsiError(PLACEMENT_CODES[e.code], e.message);
  return new CsiError(status.INTERNAL, e instanceof Error ? e.message : String(e));
}

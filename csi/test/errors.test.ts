// The one table from every layer's typed errors to gRPC codes.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { VolumeRefusal } from '../../agent/errors.ts';
import {
  CancelledError,
  CommandError,
  CommandTimeoutError,
  ConnectRefusedError,
  DeviceInUseError,
  ForeignSuperblockError,
  LastInSyncMemberError,
  NotFoundError,
} from '../../agent/host/errors.ts';
import { AllocatorRefusal } from '../../controller/errors.ts';
import { PlacementError } from '../../placement/errors.ts';
import { StateError } from '../../state/errors.ts';
import { CsiError, codeFor, toCsiError } from '../errors.ts';

describe('codeFor', () => {
  it.each([
    [new PlacementError('invalid', 'x'), status.INVALID_ARGUMENT],
    [new PlacementError('not-found', 'x'), status.NOT_FOUND],
    [new PlacementError('conflict', 'x'), status.ALREADY_EXISTS],
    [new PlacementError('exhausted', 'x'), status.RESOURCE_EXHAUSTED],
    [new PlacementError('unsafe', 'x'), status.FAILED_PRECONDITION],
    [new StateError('exists', 'x'), status.ALREADY_EXISTS],
    [new StateError('changed', 'x'), status.ABORTED],
    [new StateError('not-found', 'x'), status.NOT_FOUND],
    [new StateError('unavailable', 'x'), status.UNAVAILABLE],
    [new VolumeRefusal('precondition', 'x'), status.FAILED_PRECONDITION],
    [new VolumeRefusal('unavailable', 'x'), status.UNAVAILABLE],
    [new VolumeRefusal('exists', 'x'), status.ALREADY_EXISTS],
    [new AllocatorRefusal('unavailable', 'x'), status.UNAVAILABLE],
    [new AllocatorRefusal('contended', 'x'), status.ABORTED],
    [new LastInSyncMemberError('x'), status.FAILED_PRECONDITION],
    [new ForeignSuperblockError('x'), status.FAILED_PRECONDITION],
    [new DeviceInUseError('x'), status.FAILED_PRECONDITION],
    [new NotFoundError('x'), status.NOT_FOUND],
    [new ConnectRefusedError('x'), status.UNAVAILABLE],
    [
      new CommandTimeoutError('mdadm --create', null, '', 'timed out after 60000 ms'),
      status.DEADLINE_EXCEEDED,
    ],
    [new CancelledError('x'), status.CANCELLED],
    [new CommandError('sgdisk', 1, 'boom'), status.INTERNAL],
    [new Error('something nobody typed'), status.INTERNAL],
    [new CsiError(status.OUT_OF_RANGE, 'x'), status.OUT_OF_RANGE],
  ])('%s -> %s', (e, code) => {
    expect(codeFor(e)).toBe(code);
    expect(toCsiError(e).code).toBe(code);
    expect(toCsiError(e).message).toMatch(/x|timed out|something nobody typed|boom|sgdisk/);
  });
});

// What can go wrong reading or writing a record, by kind, so each edge maps it to its own
// vocabulary (a gRPC code at the CSI edge) without parsing messages.

export type StateErrorKind =
  | 'exists' // create of an id that is taken
  | 'changed' // a write over a record that changed since it was read (optimistic concurrency)
  | 'not-found' // a write to a record that is gone
  | 'unavailable'; // the store could not be reached; retry

export class StateError extends Error {
  readonly kind: StateErrorKind;
  constructor(kind: StateErrorKind, message: string) {
    super(message);
    this.name = 'StateError';
    this.kind = kind;
  }
}

export const isStateError = (e: unknown, kind: StateErrorKind): boolean =>
  e instanceof StateError && e.kind === kind;

// Typed refusals. `code` says what kind of problem it is so each edge (CSI, extender, CLI) can map
// it to its own error vocabulary without parsing messages.

export type PlacementErrorCode =
  | 'invalid' // the request itself is malformed
  | 'not-found' // a node, drive, volume or reservation that is not in the model
  | 'conflict' // the id exists with different parameters, or the extent is taken
  | 'exhausted' // no room that satisfies the request
  | 'unsafe'; // would drop the last in-sync copy or similar

export class PlacementError extends Error {
  readonly code: PlacementErrorCode;
  constructor(code: PlacementErrorCode, message: string) {
    super(message);
    this.name = 'PlacementError';
    this.code = code;
  }
}

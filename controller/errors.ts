// Why the allocator could not decide, by kind, so the CSI edge maps it to a gRPC code. Placement's
// own refusals stay PlacementErrors (their codes reach the edge unchanged).

export type AllocatorRefusalKind =
  | 'unavailable' // not the active allocator, or its caches are still loading: retry
  | 'contended'; // kept colliding with another controller's records: retry

export class AllocatorRefusal extends Error {
  readonly kind: AllocatorRefusalKind;
  constructor(kind: AllocatorRefusalKind, message: string) {
    super(message);
    this.name = 'AllocatorRefusal';
    this.kind = kind;
  }
}

// Why the agent refused or could not finish an operation on a volume, by kind: each edge (the CSI
// Node service's gRPC codes, the agent's Events) maps the kind to its own vocabulary.

export type VolumeRefusalKind =
  | 'invalid' // the request names something that cannot be served
  | 'not-found' // the volume, or what the request names of it, is not there
  | 'exists' // something incompatible is already at the target
  | 'precondition' // the volume is not in the state the request needs (not staged, still published, …)
  | 'unavailable' // waiting for another node or the cluster; retrying later can succeed
  | 'out-of-range'; // a size the volume cannot take (beyond what the controller expanded it to)

export class VolumeRefusal extends Error {
  readonly kind: VolumeRefusalKind;
  constructor(kind: VolumeRefusalKind, message: string) {
    super(message);
    this.name = 'VolumeRefusal';
    this.kind = kind;
  }
}

// What the placement model reads of MeshStorNodes and MeshStorVolumes (placement-model.ts, and the
// extender's agent health in scheduler/state.ts), taken from each object as the informers receive
// it so the rest (managedFields, paths, skipped drives, messages, sync progress) is garbage at once.
// Keep in step with placement-model.ts: test/placement-slim.test.ts checks that the model built
// from a slimmed object equals the one built from the whole object, field by field.
import type { MeshStorNode, MeshStorVolume, ObjectMeta } from '../kube/crds.ts';

/** The identity an informer needs: name, namespace, and the version to skip redeliveries by. */
export function identityMeta(m: ObjectMeta): ObjectMeta {
  return { name: m.name, namespace: m.namespace, resourceVersion: m.resourceVersion };
}

export function slimNodeForPlacement(n: MeshStorNode): MeshStorNode {
  const s = n.status;
  return {
    apiVersion: n.apiVersion,
    kind: n.kind,
    metadata: identityMeta(n.metadata),
    spec: {
      nodeName: n.spec.nodeName,
      topology: n.spec.topology && { zone: n.spec.topology.zone, rack: n.spec.topology.rack },
    },
    status: s && {
      heartbeatTime: s.heartbeatTime,
      schedulable: s.schedulable,
      // Ready is what is read (agent health; its reason and message go into the filter's answer).
      // All are kept, few as they are, so a search for Ready reads the same list either way.
      conditions: s.conditions?.map((c) => ({
        type: c.type,
        status: c.status,
        reason: c.reason,
        message: c.message,
      })),
      drives: s.drives?.map((d) => ({
        id: d.id,
        sizeBytes: d.sizeBytes,
        logicalBlockSize: d.logicalBlockSize,
        gptSlots: d.gptSlots,
        partitions: d.partitions?.map((p) => ({
          start: p.start,
          end: p.end,
          label: p.label,
          owner: p.owner && { volume: p.owner.volume, replica: p.owner.replica },
        })),
      })),
    },
  };
}

export function slimVolumeForPlacement(v: MeshStorVolume): MeshStorVolume {
  return {
    apiVersion: v.apiVersion,
    kind: v.kind,
    metadata: identityMeta(v.metadata),
    spec: {
      sizeBytes: v.spec.sizeBytes,
      replicaCount: v.spec.replicaCount,
      spread: v.spec.spread && { domain: v.spec.spread.domain, mode: v.spec.spread.mode },
      replicas: v.spec.replicas?.map((r) => ({
        id: r.id,
        node: r.node,
        drive: r.drive,
        extent: { start: r.extent.start, end: r.extent.end },
      })),
      attachment: v.spec.attachment && { node: v.spec.attachment.node },
    },
    status: v.status && {
      members: v.status.members?.map((m) => ({ replicaId: m.replicaId, state: m.state })),
    },
  };
}

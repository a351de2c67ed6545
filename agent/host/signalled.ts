// A Host whose every call also stops when `signal` aborts: the agent binds its stop signal (SIGTERM)
// and the CSI edge binds each call's cancellation and deadline, so no caller can forget to pass one
// and leave an mdadm/nvme/sgdisk child running. A call's own signal still counts (either aborts).
import type { BindOptions, Host, MountOptions, OpOptions } from './types.ts';

export function withSignal(host: Host, signal: AbortSignal | undefined): Host {
  if (!signal) return host;
  const op = <T extends OpOptions>(o?: T): T =>
    ({ ...o, signal: o?.signal ? AbortSignal.any([o.signal, signal]) : signal }) as T;
  return {
    hostNqn: host.hostNqn,
    listDrives: (o) => host.listDrives(op(o)),
    createPartitions: (drive, specs, o) => host.createPartitions(drive, specs, op(o)),
    deletePartition: (drive, owner, o) => host.deletePartition(drive, owner, op(o)),
    wipePartition: (drive, owner, o) => host.wipePartition(drive, owner, op(o)),
    growPartition: (drive, owner, newEnd, o) => host.growPartition(drive, owner, newEnd, op(o)),
    exportReplica: (spec, o) => host.exportReplica(spec, op(o)),
    grantHost: (nqn, access, o) => host.grantHost(nqn, access, op(o)),
    revokeHost: (nqn, hostNqn, o) => host.revokeHost(nqn, hostNqn, op(o)),
    unexport: (nqn, o) => host.unexport(nqn, op(o)),
    listExports: (o) => host.listExports(op(o)),
    connect: (spec, o) => host.connect(spec, op(o)),
    disconnect: (nqn, o) => host.disconnect(nqn, op(o)),
    findDeviceByNqn: (nqn, o) => host.findDeviceByNqn(nqn, op(o)),
    createArray: (spec, o) => host.createArray(spec, op(o)),
    assembleArray: (spec, o) => host.assembleArray(spec, op(o)),
    getArray: (volumeId, o) => host.getArray(volumeId, op(o)),
    addMember: (volumeId, device, o) => host.addMember(volumeId, device, op(o)),
    removeMember: (volumeId, device, o) => host.removeMember(volumeId, device, op(o)),
    reAddMember: (volumeId, device, o) => host.reAddMember(volumeId, device, op(o)),
    readBitmap: (volumeId, o) => host.readBitmap(volumeId, op(o)),
    setWriteMostly: (volumeId, device, on, o) => host.setWriteMostly(volumeId, device, on, op(o)),
    setResyncSpeedLimit: (volumeId, kib, o) => host.setResyncSpeedLimit(volumeId, kib, op(o)),
    setRaidDevices: (volumeId, count, o) => host.setRaidDevices(volumeId, count, op(o)),
    growArray: (volumeId, o) => host.growArray(volumeId, op(o)),
    stopArray: (volumeId, o) => host.stopArray(volumeId, op(o)),
    cutLocalLegs: (volumeId, o) => host.cutLocalLegs(volumeId, op(o)),
    fenceArray: (volumeId, o) => host.fenceArray(volumeId, op(o)),
    makeFilesystem: (device, o) => host.makeFilesystem(device, op(o)),
    mount: (device, target, o) => host.mount(device, target, op<MountOptions>(o)),
    bindMount: (mountPoint, target, o) => host.bindMount(mountPoint, target, op<BindOptions>(o)),
    bindDevice: (device, target, o) => host.bindDevice(device, target, op<BindOptions>(o)),
    getMount: (target, o) => host.getMount(target, op(o)),
    unmount: (target, o) => host.unmount(target, op(o)),
    growFilesystem: (target, o) => host.growFilesystem(target, op(o)),
    filesystemUsage: (target, o) => host.filesystemUsage(target, op(o)),
    freezeFilesystem: (device, o) => host.freezeFilesystem(device, op(o)),
    thawFilesystem: (device, o) => host.thawFilesystem(device, op(o)),
    copyMemberData: (source, target, o) => host.copyMemberData(source, target, op(o)),
  };
}

// `meshstor agent`: the node agent. Serves the CSI Node service over the Host interface and, with
// Kubernetes state, runs the agent's loop (agent/loop.ts): the pass every --resync-seconds and on
// every change to a volume of this node, and this node's MeshStorNode heartbeat on its own timer.
// `--host linux` (the default) runs the real tools on this machine; `--host simulated` keeps
// everything in memory over NetworkSimFabric (agents in separate processes reach each other's
// exports over real TCP at their --address/--port) and stores nothing real. With --state memory
// --with-controller it is a one-node driver (Identity, Controller and Node on one socket) for
// csi-sanity and trials, which never exports and so never listens.
import { existsSync } from 'node:fs';
import { DriveSelectorError } from '../agent/drive-selection.ts';
import { fenceAllArrays } from '../agent/fence.ts';
import { kernelModulesCondition } from '../agent/host/kernel-modules.ts';
import { NetworkSimFabric } from '../agent/host/sim-network.ts';
import { SimulatedHost } from '../agent/host/simulated.ts';
import type { Host } from '../agent/host/types.ts';
import { HostInventory } from '../agent/host-inventory.ts';
import { KubeLeases } from '../agent/kube-leases.ts';
import { prepareLinuxNode } from '../agent/linux-node.ts';
import { AgentLoop } from '../agent/loop.ts';
import { fsMountPoints } from '../agent/mount-points.ts';
import { kubeNodeReader, NodeHeartbeat } from '../agent/node-heartbeat.ts';
import { DEFAULT_ROTATE_DAYS, NodeKeys } from '../agent/node-keys.ts';
import { NodePublisher } from '../agent/publisher.ts';
import {
  DEFAULT_LEASE_SECONDS,
  LEASE_SECONDS_RANGE,
  RightWatch,
  timingViolations,
  WriteRight,
  writeRightTiming,
} from '../agent/write-right.ts';
import { ControllerService } from '../csi/controller.ts';
import { IdentityService } from '../csi/identity.ts';
import { NodeService } from '../csi/node.ts';
import { probeCsiSocket } from '../csi/probe.ts';
import { KubeletRegistration, type RegistrationFlags, registrationTarget } from '../csi/registration.ts';
import { serveCsi, shutdownServer } from '../csi/server.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { EventRecorder } from '../kube/events.ts';
import type { Logger } from '../kube/log.ts';
import {
  CsiRpcMetrics,
  HostCommandMetrics,
  kubeletRegistrationGauge,
  metricsEndpoint,
  metricsRegistry,
  ResyncMetrics,
} from '../kube/metrics.ts';
import { parseBytes } from '../placement/units.ts';
import { KubePairKeyStore } from '../state/dhchap-keys.ts';
import { KubePeerDirectory, KubeVolumeStore, WatchedVolumeStore } from '../state/kube-store.ts';
import { KeyedLock } from '../state/lock.ts';
import { MemoryVolumeStore } from '../state/memory-store.ts';
import type { PeerDirectory, VolumeStore } from '../state/store.ts';
import { defineCommand, UsageError, untilStopSignal } from './cli.ts';

/** The heartbeat's period: well inside the 90 s after which peers count an agent as down. */
const HEARTBEAT_MS = 10_000;

function simulatedHost(
  nodeName: string,
  drives: string,
  log: Logger,
): { host: Host; fabric: NetworkSimFabric } {
  let sizes: number[];
  try {
    sizes = drives.split(',').map((s) => parseBytes(s));
  } catch (e) {
    throw new UsageError(`--drives: ${(e as Error).message}`);
  }
  log.warn(
    'SIMULATED HOST: --host simulated keeps drives, arrays and filesystems in memory; nothing is stored on this machine and every write is lost when the process ends',
  );
  const fabric = new NetworkSimFabric();
  const host = new SimulatedHost({
    hostNqn: `nqn.2014-08.org.nvmexpress:uuid:meshstor-${nodeName}`,
    drives: sizes.map((sizeBytes, i) => ({ id: `SIM${nodeName}-${i}`, sizeBytes })),
    fabric,
  });
  return { host, fabric };
}

/**
 * Registers the CSI socket with kubelet where the flags say (nowhere without --kubelet-dir or
 * --registration-dir). A registry derived from --kubelet-dir that does not exist is no kubelet:
 * a warning, not an error (tests run the agent with a kubelet directory of their own).
 */
async function registerWithKubelet(
  config: RegistrationFlags,
  log: Logger,
): Promise<KubeletRegistration | undefined> {
  const target = registrationTarget(config);
  if (!target) return undefined;
  if (!target.explicit && !existsSync(target.dir)) {
    log.warn({ dir: target.dir }, 'no kubelet plugin registry there: not registering with kubelet');
    return undefined;
  }
  return KubeletRegistration.serve({ dir: target.dir, endpoint: target.endpoint, log });
}

export const agentCommand = defineCommand({
  name: 'agent',
  about: 'the node agent: the CSI Node service, exports, relocation steps, the MeshStorNode heartbeat',
  flags: {
    'csi-socket': {
      kind: 'string',
      placeholder: 'PATH',
      about: 'the unix socket to serve on',
      required: true,
    },
    node: {
      kind: 'string',
      placeholder: 'NAME',
      about: "this node's name",
      env: 'NODE_NAME',
      required: true,
    },
    zone: {
      kind: 'string',
      placeholder: 'ZONE',
      about: "this node's zone when its Node object has no topology.kubernetes.io/zone label",
    },
    host: {
      kind: 'string',
      placeholder: 'KIND',
      choices: ['linux', 'simulated'],
      default: 'linux',
      about:
        'linux: the real tools on this machine; simulated: in memory, nothing is stored (tests and trials)',
    },
    'nvme-dir': {
      kind: 'string',
      placeholder: 'DIR',
      default: '/etc/nvme',
      about:
        "with --host linux: where this node's host NQN and host id live (hostnqn, hostid); created when absent",
    },
    drives: {
      kind: 'string',
      placeholder: 'LIST',
      default: '100GiB,100GiB',
      about: 'with --host simulated: the simulated NVMe drives, comma separated sizes',
    },
    state: {
      kind: 'string',
      placeholder: 'BACKEND',
      choices: ['kube', 'memory'],
      default: 'kube',
      about:
        "kube: volumes are MeshStorVolume objects and this node's MeshStorNode is published;\nmemory: volumes live in this process (with --with-controller: a one-node driver)",
    },
    kubeconfig: {
      kind: 'string',
      placeholder: 'FILE',
      about: 'with --state kube: the cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster)',
    },
    address: {
      kind: 'string',
      placeholder: 'ADDR',
      about:
        "the NVMe-oF address other nodes reach this node on, instead of its Node's InternalIP (published in\nits MeshStorNode; the simulated target's TCP listener opens there; default without a Node: 127.0.0.1)",
    },
    'lease-namespace': {
      kind: 'string',
      placeholder: 'NS',
      env: 'POD_NAMESPACE',
      default: 'kube-system',
      about:
        "with --state kube: where this node's Lease lives (its right to write, ADR 0006: renewed every\n--lease-seconds / 4; when it lapses the node fences its arrays)",
    },
    'lease-seconds': {
      kind: 'integer',
      placeholder: 'N',
      min: LEASE_SECONDS_RANGE.min,
      max: LEASE_SECONDS_RANGE.max,
      default: DEFAULT_LEASE_SECONDS,
      about:
        "how long one accepted renewal of this node's Lease lets it acknowledge writes (ADR 0006's D; the\nrest of the timing scales with it). Longer rides out a slow apiserver or a starved node; a node\nloss then stalls writes for 1.5 N s and a takeover waits 1.25 N s",
    },
    'rack-label': {
      kind: 'string',
      placeholder: 'LABEL',
      default: 'topology.meshstor.io/rack',
      about: 'the Node label that names its rack (zone: topology.kubernetes.io/zone)',
    },
    'metrics-port': {
      kind: 'integer',
      placeholder: 'N',
      min: 0,
      max: 65535,
      about: 'serve Prometheus /metrics and /healthz on this port (off when not given)',
    },
    port: { kind: 'integer', placeholder: 'N', min: 1, max: 65535, default: 4420, about: 'NVMe-oF TCP port' },
    'nvme-auth': {
      kind: 'string',
      placeholder: 'KIND',
      choices: ['auto', 'dhchap', 'none'],
      default: 'auto',
      about:
        'with --state kube: dhchap: exports and connects prove a per-node-pair DH-HMAC-CHAP key both ways,\nkept in Secrets of --namespace (ADR 0007); none: allow-listed host NQNs only; auto: dhchap with\n--host linux, none with --host simulated (its fabric compares secrets in the clear)',
    },
    'dhchap-rotate-days': {
      kind: 'integer',
      placeholder: 'N',
      min: 1,
      default: DEFAULT_ROTATE_DAYS,
      about:
        'replace both DH-HMAC-CHAP keys of a node pair every N days (one key at a time, without downtime)',
    },
    namespace: {
      kind: 'string',
      placeholder: 'NS',
      env: 'POD_NAMESPACE',
      default: 'meshstor-system',
      about: "where the node-pair DH-HMAC-CHAP Secrets live (the agent's own namespace)",
    },
    'resync-seconds': {
      kind: 'integer',
      placeholder: 'N',
      min: 1,
      default: 5,
      about:
        'how often to export replicas, follow relocations and clean up deleted volumes; a change to a\nvolume of this node runs that pass at once (a watch)',
    },
    'resync-max-kibps': {
      kind: 'integer',
      placeholder: 'KIB',
      min: 1,
      about:
        "cap each array's full resync (a rebuild's or a relocation's new member) at KIB KiB/s, md's\nsync_speed_max (default: md's system-wide limit)",
    },
    drive: {
      kind: 'list',
      placeholder: 'SELECTOR',
      about:
        'with --host linux: take only drives matching a selector: id:<by-id name or glob>, serial:<s>,\nwwn:<w>, model:<glob> (default: NVMe drives with no partition table or an empty one)',
    },
    'os-drive-tail': {
      kind: 'list',
      placeholder: 'SELECTOR',
      about:
        'with --host linux: a drive with partitions MeshStor did not create (the OS drive) whose free\nspace may be used; its partitions are never touched',
    },
    'kubelet-dir': {
      kind: 'string',
      placeholder: 'DIR',
      default: '/var/lib/kubelet',
      about:
        "kubelet's directory: staging, publish and volume paths must be absolute, normalised and under it",
    },
    'registration-dir': {
      kind: 'string',
      placeholder: 'DIR',
      about:
        "kubelet's plugin registry: the agent registers itself with kubelet through meshstor.io-reg.sock\nthere (default: <kubelet-dir>/plugins_registry when that directory exists; off when empty)",
    },
    'csi-endpoint-on-host': {
      kind: 'string',
      placeholder: 'PATH',
      about:
        'the CSI socket as kubelet reaches it on the host, told to kubelet at registration\n(default: <kubelet-dir>/plugins/meshstor.io/csi.sock; --csi-socket without --kubelet-dir)',
    },
    'with-controller': {
      kind: 'boolean',
      default: false,
      about: 'with --state memory: also serve the Controller from the same state',
    },
  },
  async run(config, { log }) {
    if (config.withController && config.state !== 'memory')
      throw new UsageError('--with-controller needs --state memory');
    const nodeName = config.node;
    // the write-right timing (ADR 0006) scaled to --lease-seconds; the range keeps it sound, and
    // the check says so at start-up rather than trusting the arithmetic
    const timing = writeRightTiming(config.leaseSeconds);
    const unsound = timingViolations(timing);
    if (unsound.length) throw new UsageError(`--lease-seconds ${config.leaseSeconds}: ${unsound.join('; ')}`);
    const registry = config.metricsPort !== undefined ? metricsRegistry('agent', true) : undefined;
    const rpcMetrics = registry ? new CsiRpcMetrics(registry) : undefined;
    const commandMetrics = registry ? new HostCommandMetrics(registry) : undefined;
    const resyncMetrics = registry ? new ResyncMetrics(registry) : undefined;

    const sim = config.host === 'simulated' ? simulatedHost(nodeName, config.drives, log) : undefined;
    let host: Host;
    let modulesMissing: string | undefined;
    let modulesCondition: ReturnType<typeof kernelModulesCondition> | undefined;
    let skippedDrives: { id: string; path: string; reason: string }[] | undefined;
    if (sim) host = sim.host;
    else {
      let node: Awaited<ReturnType<typeof prepareLinuxNode>>;
      try {
        node = await prepareLinuxNode({
          nvmeDir: config.nvmeDir,
          drives: config.drive,
          osDriveTail: config.osDriveTail,
          observe: commandMetrics?.observe,
        });
      } catch (e) {
        if (e instanceof DriveSelectorError) throw new UsageError(e.message);
        throw e;
      }
      host = node.host;
      skippedDrives = node.drives.skipped.map((d) => ({
        id: d.id,
        path: `/dev/${d.name}`,
        reason: d.reason,
      }));
      log.info({ drives: node.drives.managed.map((d) => ({ id: d.id, use: d.use })) }, 'drives managed');
      for (const d of node.drives.skipped) log.info(d, 'drive skipped');
      for (const s of node.drives.unmatched) log.warn({ selector: s }, 'a drive selector matched no drive');
      if (node.createdIdentity) log.info({ hostNqn: node.hostNqn, dir: config.nvmeDir }, 'host NQN created');
      modulesCondition = kernelModulesCondition(node.modules);
      modulesMissing = node.modules.ok ? undefined : node.modules.message;
      if (modulesMissing) log.error({ missing: node.modules.missing.map((m) => m.module) }, modulesMissing);
    }

    let store: VolumeStore;
    let heartbeat: NodeHeartbeat | undefined;
    let peers: PeerDirectory | undefined;
    let watched: WatchedVolumeStore | undefined;
    let events: EventRecorder | undefined;
    let keys: NodeKeys | undefined;
    const flagsIdentity = {
      nodeName,
      zone: config.zone,
      address: config.address ?? '127.0.0.1',
      port: config.port,
    };
    let identity = flagsIdentity;
    const kc = config.state === 'kube' ? loadKubeConfig(config.kubeconfig) : undefined;
    if (kc) {
      watched = new WatchedVolumeStore(new KubeVolumeStore(kc));
      store = watched;
      peers = new KubePeerDirectory(kc);
      if (config.nvmeAuth === 'dhchap' || (config.nvmeAuth === 'auto' && config.host === 'linux')) {
        keys = new NodeKeys({
          node: nodeName,
          store: new KubePairKeyStore({ namespace: config.namespace, kc }),
          rotateAfterMs: (config.dhchapRotateDays * 86_400_000) / 2,
        });
      }
      events = EventRecorder.forCluster(kc, `meshstor-agent/${nodeName}`, (m) =>
        log.warn({ error: m }, 'event'),
      );
      const publisher = new NodePublisher(kc, flagsIdentity, host);
      if (modulesCondition) publisher.setReport({ skippedDrives, conditions: [modulesCondition] });
      heartbeat = new NodeHeartbeat({
        publisher,
        readNode: kubeNodeReader(kc, nodeName),
        options: { addressOverride: config.address, rackLabel: config.rackLabel },
        identity: flagsIdentity,
        log,
      });
      identity = { ...flagsIdentity, ...(await heartbeat.refresh()) };
      await publisher.publish(await store.list());
      // the admin hears of missing modules on the node's object too, not only in its condition
      if (modulesMissing)
        await events.warn({ kind: 'MeshStorNode', name: nodeName }, 'KernelModulesMissing', modulesMissing);
    } else store = new MemoryVolumeStore();

    // The right to acknowledge writes (ADR 0006): staging needs it; when it lapses (the apiserver
    // unreachable for D - G) every array running here is fenced. Only with cluster state: without it
    // there is no other node to hand a volume to.
    let right: WriteRight | undefined;
    let rightWatch: RightWatch | undefined;
    if (kc) {
      const leases = new KubeLeases(kc, config.leaseNamespace);
      rightWatch = new RightWatch(leases, undefined, timing);
      const fencing = { host, store };
      right = new WriteRight({
        node: nodeName,
        api: leases,
        timing,
        onRenewError: (m) => log.warn({ error: m }, 'right to write not renewed'),
        onLapse: async (why) => {
          log.error({ why }, 'right to write lapsed: fencing every array on this node');
          const failures: { volume: string; reason: string }[] = [];
          const fenced = await fenceAllArrays(fencing, failures).catch((e: unknown) => {
            failures.push({ volume: '*', reason: String(e) });
            return [];
          });
          log.error({ fenced, failures }, 'fenced');
        },
      });
      await right.tick();
      await right.settle();
      if (!right.holds()) log.warn({ why: right.why() }, 'no right to write yet: staging waits for it');
      right.start();
    }

    // One lock per volume shared by the node service and the agent's pass (agent/exports.ts).
    const locks = new KeyedLock();
    const loop = new AgentLoop({
      context: {
        nodeName,
        host,
        store,
        listen: { address: identity.address, port: config.port },
        locks,
        keys,
        peers,
        resyncMaxKibPerSec: config.resyncMaxKibps,
        remoteCtrlLossTmoSec: timing.remoteCtrlLossTmoSec,
      },
      heartbeat,
      warnings: events,
      resyncMs: config.resyncSeconds * 1000,
      heartbeatMs: HEARTBEAT_MS,
      log,
      onPass: (r) =>
        resyncMetrics?.sample(
          r.arrays
            .filter((a) => a.syncProgress !== undefined)
            .map((a) => ({
              array: a.name,
              action: 'resync',
              progress: a.syncProgress ?? 0,
              sizeBytes: a.sizeBytes,
            })),
        ),
    });
    const server = await serveCsi(
      config.csiSocket,
      {
        identity: new IdentityService({ controller: config.withController, ready: () => true }),
        controller: config.withController
          ? new ControllerService({
              store,
              inventory: new HostInventory(nodeName, identity.zone, host, store),
            })
          : undefined,
        node: new NodeService({
          nodeName,
          zone: identity.zone,
          host,
          store,
          peers,
          locks,
          keys,
          mountPoints: fsMountPoints,
          missingPrerequisites: () => modulesMissing,
          kubeletDir: config.kubeletDir,
          right,
          rightWatch,
          remoteCtrlLossTmoSec: timing.remoteCtrlLossTmoSec,
        }),
        // SIGTERM aborts the calls in flight with the loop: their host commands are killed, and
        // every step they took is resumable, so kubelet's retry finishes the work.
        stopping: loop.signal,
        observe: rpcMetrics?.observe,
      },
      log,
    );
    const registration = await registerWithKubelet(config, log);
    if (registry && registration)
      kubeletRegistrationGauge(registry, () => registration.state().state === 'registered');
    const metrics = await metricsEndpoint(config.metricsPort, registry, {
      // kubelet's liveness probe: kubelet refused us or lost our socket, or the CSI socket does not answer
      unhealthy: async () => registration?.problem() ?? (await probeCsiSocket(config.csiSocket)),
    });
    log.info(
      {
        socket: config.csiSocket,
        registration: registration?.socket,
        node: nodeName,
        host: config.host,
        state: config.state,
        controller: config.withController,
        address: identity.address,
        zone: identity.zone,
        metricsPort: metrics.port,
      },
      'serving',
    );

    if (kc && watched) {
      loop.start();
      // A change to a volume with a member here or attached here runs a pass at once: exports follow
      // an attachment (and relocation steps follow each other) without waiting for the period.
      watched.start(kc, log, (before, after) => loop.volumeChanged(before, after));
    }

    const signal = await untilStopSignal();
    log.info({ signal }, 'stopping');
    // kubelet deregisters the driver when the socket goes; a new agent registers it again
    await registration?.stop();
    await loop.stop();
    right?.stop();
    await watched?.stop();
    await shutdownServer(server);
    await metrics.close();
    await sim?.fabric.close();
    return 0;
  },
});

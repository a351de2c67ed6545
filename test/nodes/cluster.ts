// The nodes tier's cluster: the control plane on host loopback (etcd, kube-apiserver,
// kube-scheduler with the MeshStor extender configured, kube-controller-manager), three guests
// that are real Kubernetes storage nodes (kubelet + containerd, own kernel, own NVMe drives), one
// of them also carrying MeshStor's controller and extender, and MeshStor installed by its own Helm
// chart from its own image. kubectl talks to it like a user would.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { type ControlPlane, startControlPlane } from '../cluster/control-plane.ts';
import { pointExtenders } from '../cluster/global-setup.ts';
import { until } from '../cluster/kube.ts';
import { helmBinary } from '../helm/paths.ts';
import { snapshotControllerBinary, snapshotCrdFiles } from '../snapshot/paths.ts';
import { type ExtenderPki, makeExtenderPki } from '../tls.ts';
import { type DriveFile, Guest } from './guest.ts';
import { k8sNodeBinary } from './paths.ts';
import { ensureGuestRoot, type GuestRoot } from './root-image.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * How often the tier's waits look again. Each look spawns kubectl (a Go binary: about a tenth of a
 * second of a core) and an apiserver request; at the shared helper's 100 ms the test itself kept
 * most of a host core busy, taken from the three TCG guests it waits for.
 */
export const POLL_MS = 2000;

/** `until` at the tier's pace (POLL_MS). */
export function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  return until(what, timeoutMs, probe, POLL_MS);
}

export const NAMESPACE = 'meshstor-system';
/** The storage nodes: the agent, NVMe drives, the workloads. */
export const NODES = ['node1', 'node2', 'node3'] as const;
export const ZONES: Record<string, string> = { node1: 'zone-a', node2: 'zone-b', node3: 'zone-c' };
/**
 * The storage node that also carries MeshStor's controller and extender (pinned there: the host's
 * kube-scheduler calls the extender at this node's address). A fourth guest for them, without
 * drives, was tried: on two host cores four TCG guests starved it, its controller's event loop
 * lagged 1-2 s and CreateVolume timed out (test/README.md, sixth session). A drain here leaves
 * them in place (`drain`), as an operator draining a node for its workloads would.
 */
const CONTROL_NODE: (typeof NODES)[number] = 'node3';
const CONTROL_INDEX = NODES.indexOf(CONTROL_NODE) + 1;
/** The extender runs there (host network); the host's kube-scheduler calls it on the node network. */
const EXTENDER_PORT = 8099;
/** its /healthz, /readyz and /metrics (plain HTTP; the verbs are mutual TLS only) */
const EXTENDER_PROBE_PORT = 8100;
/** The node network: a host bridge with one tap per guest; node N is .10+N, the host is .1. */
const NODE_NET = '192.168.100';
export const nodeIp = (index: number) => `${NODE_NET}.${10 + index}`;

export interface NodesClusterOptions {
  /** where consoles, logs and drive files go (kept after a failure) */
  dir?: string;
  memMiB?: number;
  cpus?: number;
  log?: (msg: string) => void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Bridges, taps and apiserver forwards of runs whose process is gone (killed before its stop()): msn<pid>[t<n>]. */
function removeOrphanBridges(): void {
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
  for (const m of links.matchAll(/^\d+: (msn(\d+)(t\d+)?)[@:]/gm)) {
    const [, name, pid] = m;
    if (name && pid && !processAlive(Number(pid))) spawnSync('ip', ['link', 'del', name]);
  }
  // apiserver forwards of such runs (commented with their bridge's name)
  const rules = spawnSync('iptables', ['-t', 'nat', '-S', 'PREROUTING'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of rules.split('\n')) {
    const m = /^-A (PREROUTING .*--comment (msn(\d+)) .*)$/.exec(line);
    if (m?.[1] && m[3] && !processAlive(Number(m[3])))
      spawnSync('iptables', ['-t', 'nat', '-D', ...m[1].split(' ')]);
  }
}

export class NodesCluster {
  readonly dir: string;
  cp: ControlPlane | undefined;
  root: GuestRoot | undefined;
  readonly guests = new Map<string, Guest>();
  /** the verbs, over mutual TLS with `extenderPki` */
  readonly extenderUrl = `https://${nodeIp(CONTROL_INDEX)}:${EXTENDER_PORT}`;
  readonly extenderMetricsUrl = `http://${nodeIp(CONTROL_INDEX)}:${EXTENDER_PROBE_PORT}/metrics`;
  /** The extender's CA, serving certificate (for the control node's address) and kube-scheduler's client certificate. */
  extenderPki: ExtenderPki | undefined;
  /** the run's host bridge (a short unique name: interface names have at most 15 bytes) */
  readonly bridge = `msn${process.pid}`;
  private readonly log: (msg: string) => void;
  readonly times: Record<string, number> = {};
  private snapshotController: ChildProcess | undefined;
  private forwardedPort: number | undefined;

  private readonly opts: NodesClusterOptions;

  constructor(opts: NodesClusterOptions = {}) {
    this.opts = opts;
    this.dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'meshstor-nodes-'));
    mkdirSync(this.dir, { recursive: true });
    this.log = opts.log ?? ((m) => console.log(`[nodes] ${m}`));
  }

  get kubeconfig(): string {
    if (!this.cp) throw new Error('the control plane is not running');
    return this.cp.kubeconfig;
  }

  /** kubectl against the cluster; throws with its output when it fails. */
  kubectl(args: string[], input?: string): string {
    const r = spawnSync(k8sNodeBinary('kubectl'), ['--kubeconfig', this.kubeconfig, ...args], {
      encoding: 'utf8',
      input,
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0)
      throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error?.message}`);
    return r.stdout;
  }

  kubectlJson<T>(args: string[]): T {
    return JSON.parse(this.kubectl([...args, '-o', 'json'])) as T;
  }

  drives(node: string): DriveFile[] {
    return [
      // sparse files: 4 GiB each costs only what is written. The e2e volume-expand suite makes 1 GiB
      // volumes and grows them by 1 GiB, which 1 GiB drives could not hold.
      { path: join(this.dir, `${node}-os.img`), serial: `${node}-os`, sizeMiB: 4096, osPartitionMiB: 200 },
      { path: join(this.dir, `${node}-a.img`), serial: `${node}-a`, sizeMiB: 4096 },
      { path: join(this.dir, `${node}-b.img`), serial: `${node}-b`, sizeMiB: 4096 },
    ];
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    this.root = await ensureGuestRoot(this.log);
    this.times.root = Date.now() - t0;
    this.makeBridge();
    const scheduler = parse(
      readFileSync(join(repo, 'deploy/scheduler/kube-scheduler-config.yaml'), 'utf8'),
    ) as {
      extenders: Parameters<typeof pointExtenders>[0];
    };
    // kube-scheduler reads its client certificate at start: made before it, put in a Secret at install.
    this.extenderPki = makeExtenderPki(join(this.dir, 'extender-pki'), [`IP:${nodeIp(CONTROL_INDEX)}`]);
    pointExtenders(scheduler.extenders, EXTENDER_PORT, this.extenderPki, nodeIp(CONTROL_INDEX));
    this.cp = await startControlPlane({
      schedulerConfig: scheduler,
      extraSans: ['IP:10.0.2.2', `IP:${NODE_NET}.1`],
      nodes: [...NODES],
      keep: true,
    });
    this.log(`control plane up: ${this.cp.apiUrl} (logs ${this.cp.logs})`);
    this.startSnapshotController();
    const apiPort = Number(new URL(this.cp.apiUrl).port);
    this.forwardApiserver(apiPort);
    for (const [i, name] of NODES.entries()) {
      const g = new Guest({
        name,
        index: i + 1,
        apiHost: `${NODE_NET}.1`,
        apiPort,
        pki: join(this.cp.dir, 'pki'),
        root: this.root,
        drives: this.drives(name),
        tap: this.tap(i + 1),
        labels: { 'meshstor.io/storage-node': 'true', 'topology.kubernetes.io/zone': ZONES[name] as string },
        memMiB: this.opts.memMiB ?? 1536,
        // one vCPU each: with two (six vCPUs on two host cores) scenario 1 took 463 s instead of
        // 145 s and the guests spent half their time in the kernel (a preempted vCPU holding a
        // lock its sibling spins on)
        cpus: this.opts.cpus ?? 1,
        dir: this.dir,
      });
      this.guests.set(name, g);
      g.start();
    }
    const tBoot = Date.now();
    await waitFor('every node Ready', 10 * 60_000, async () => {
      for (const g of this.guests.values())
        if (!g.running) throw new Error(`${g.spec.name}: qemu exited (console ${g.console})`);
      return NODES.every((n) => this.nodeReady(n)) ? true : undefined;
    });
    this.times.nodesReady = Date.now() - tBoot;
    this.log(`${NODES.length} nodes Ready ${(this.times.nodesReady / 1000).toFixed(0)} s after qemu started`);
  }

  /**
   * The chart documents the VolumeSnapshot CRDs and the snapshot-controller as a cluster
   * prerequisite (deploy/README.md): here they run beside kube-controller-manager on the host, the
   * controller with a parent-death signal so a killed run leaves nothing behind.
   */
  private startSnapshotController(): void {
    const crds = snapshotCrdFiles();
    const controller = snapshotControllerBinary();
    if (!crds || !controller) throw new Error('the snapshotter is not built: npm run setup:snapshotter');
    for (const f of crds) this.kubectl(['apply', '--server-side', '-f', f]);
    const cp = this.cp as ControlPlane;
    const log = openSync(join(cp.logs, 'snapshot-controller.log'), 'a');
    this.snapshotController = spawn(
      'setpriv',
      ['--pdeathsig', 'KILL', '--', controller, `--kubeconfig=${cp.kubeconfig}`, '--leader-election=false'],
      { stdio: ['ignore', log, log] },
    );
  }

  /**
   * The apiserver listens on the host's loopback; the guests reach it at the bridge address, which
   * the host's kernel forwards to loopback (DNAT, with route_localnet on the bridge). The kernel's
   * path costs the guests nothing, where slirp's user-space TCP ran in each qemu's main loop.
   */
  private forwardApiserver(port: number): void {
    writeFileSync(`/proc/sys/net/ipv4/conf/${this.bridge}/route_localnet`, '1');
    const r = spawnSync('iptables', ['-t', 'nat', '-A', ...this.forwardRule(port)], { encoding: 'utf8' });
    if (r.status !== 0)
      throw new Error(`iptables: ${r.stderr || r.error?.message} (the nodes tier needs root)`);
    this.forwardedPort = port;
  }

  private forwardRule(port: number): string[] {
    return [
      'PREROUTING',
      '-i',
      this.bridge,
      '-d',
      `${NODE_NET}.1`,
      '-p',
      'tcp',
      '--dport',
      String(port),
      '-m',
      'comment',
      '--comment',
      this.bridge,
      '-j',
      'DNAT',
      '--to-destination',
      `127.0.0.1:${port}`,
    ];
  }

  private tap(index: number): string {
    return `${this.bridge}t${index}`;
  }

  /** The node network: bridge (host address .1) and one tap per node; stop() removes them. */
  private makeBridge(): void {
    const ip = (...args: string[]) => {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr} (the nodes tier needs root)`);
    };
    this.removeBridge();
    removeOrphanBridges();
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('addr', 'add', `${NODE_NET}.1/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
    for (let i = 1; i <= NODES.length; i++) {
      ip('tuntap', 'add', 'dev', this.tap(i), 'mode', 'tap');
      ip('link', 'set', this.tap(i), 'master', this.bridge);
      ip('link', 'set', this.tap(i), 'up');
    }
  }

  private removeBridge(): void {
    if (this.forwardedPort !== undefined)
      spawnSync('iptables', ['-t', 'nat', '-D', ...this.forwardRule(this.forwardedPort)]);
    this.forwardedPort = undefined;
    for (let i = 1; i <= NODES.length; i++) spawnSync('ip', ['link', 'del', this.tap(i)]);
    spawnSync('ip', ['link', 'del', this.bridge]);
  }

  nodeReady(name: string): boolean {
    const r = spawnSync(
      k8sNodeBinary('kubectl'),
      ['--kubeconfig', this.kubeconfig, 'get', 'node', name, '-o', 'json'],
      {
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) return false;
    const n = JSON.parse(r.stdout) as { status?: { conditions?: { type: string; status: string }[] } };
    return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
  }

  /**
   * `kubectl drain` of a node's workloads. MeshStor's controller and extender stay where they are
   * pinned (CONTROL_NODE): kube-scheduler reaches the extender at that node's address, and this
   * tier drains nodes to move workloads, not MeshStor itself.
   */
  drain(node: string): void {
    this.kubectl([
      'drain',
      node,
      '--ignore-daemonsets',
      '--delete-emptydir-data',
      '--timeout=300s',
      '--pod-selector=app.kubernetes.io/component notin (controller,extender)',
    ]);
  }

  /** helm install of deploy/helm/meshstor with the image imported into the nodes' root. */
  helmInstall(extraValues: Record<string, unknown> = {}): void {
    if (!this.root) throw new Error('start() first');
    const helm = helmBinary();
    if (!helm) throw new Error('helm is not built: npm run setup:helm');
    const [repository, tag] = this.root.meshstorImage.split(':') as [string, string];
    const values = {
      image: { repository, tag, pullPolicy: 'Never' },
      logLevel: 'info',
      // TCG guests on a shared 2-core host start Node processes in minutes, not seconds
      startupTimeoutSeconds: 600,
      // a guest starting the controller and the extender on one TCG vCPU left /healthz unanswered
      // for 100 s, and each liveness restart began another cold start
      livenessTimeoutSeconds: 600,
      controller: {
        replicas: 1,
        // a starved guest's API calls took 10-27 s: with the sidecars' default 10 s renew deadline
        // each one lost its lease, exited and restarted (10 restarts before scenario 1 ended),
        // and every restart cost the starved guest another cold start
        sidecarLeaderElection: {
          leaseDurationSeconds: 120,
          renewDeadlineSeconds: 90,
          retryPeriodSeconds: 20,
        },
        nodeSelector: { 'kubernetes.io/hostname': CONTROL_NODE },
      },
      agent: {
        osDriveTail: NODES.map((n) => `serial:${n}-os`),
        // each pass runs host commands, and every exec costs a TCG guest dearly; a change to one
        // of its volumes still runs the pass at once
        // (20 s before: each pass, on every node, cost the starved node3 another round of sfdisk,
        // mdadm and nvme processes)
        resyncSeconds: 60,
        // a node that just took a moved pod (remote legs, the writer and a resync on one TCG vCPU)
        // had renewals accepted only after 17-25 s and then fenced at D - G = 35 s (ADR 0006
        // addendum): D = 120 s rides that out
        leaseSeconds: 120,
      },
      extender: {
        hostNetwork: true,
        nodeSelector: { 'kubernetes.io/hostname': CONTROL_NODE },
        port: EXTENDER_PORT,
      },
      scheduler: { form: 'default' },
      // No scenario and no spec of the e2e subset takes a snapshot (the cluster and kernel tiers
      // do): without the csi-snapshotter sidecar node3, which carries the controller pod, runs one
      // Go process with informers less on its one TCG vCPU.
      snapshots: { enabled: false },
      ...extraValues,
    };
    const file = join(this.dir, 'values.json');
    writeFileSync(file, JSON.stringify(values, null, 2));
    this.applyExtenderSecret();
    const r = spawnSync(
      helm,
      [
        'upgrade',
        '--install',
        'meshstor',
        join(repo, 'deploy/helm/meshstor'),
        '--namespace',
        NAMESPACE,
        '--create-namespace',
        '--values',
        file,
        '--kubeconfig',
        this.kubeconfig,
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`helm install failed: ${r.stderr || r.stdout}`);
  }

  /**
   * The extender's serving certificate and the CA of kube-scheduler's client certificate, as the
   * Secret the chart mounts (deploy/README.md, "The extender's certificates"); kept across uninstalls.
   */
  private applyExtenderSecret(): void {
    const pki = this.extenderPki;
    if (!pki) throw new Error('start() first');
    const dry = ['--dry-run=client', '-o', 'yaml'];
    this.kubectl(['apply', '-f', '-'], this.kubectl(['create', 'namespace', NAMESPACE, ...dry]));
    const secret = this.kubectl([
      ...[
        '-n',
        NAMESPACE,
        'create',
        'secret',
        'generic',
        'meshstor-extender-tls',
        '--type=kubernetes.io/tls',
      ],
      `--from-file=tls.crt=${pki.server.cert}`,
      `--from-file=tls.key=${pki.server.key}`,
      `--from-file=ca.crt=${pki.ca.cert}`,
      ...dry,
    ]);
    this.kubectl(['apply', '-f', '-'], secret);
  }

  helmUninstall(): void {
    const helm = helmBinary() as string;
    const r = spawnSync(
      helm,
      ['uninstall', 'meshstor', '--namespace', NAMESPACE, '--wait', '--kubeconfig', this.kubeconfig],
      {
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) throw new Error(`helm uninstall failed: ${r.stderr || r.stdout}`);
  }

  /** Where to look when something failed. */
  where(): string {
    return [
      `consoles and logs: ${this.dir}/<node>.console, <node>.logs (kubelet, containerd, every pod)`,
      `control plane logs: ${this.cp?.logs ?? '(none)'}`,
    ].join('\n');
  }

  async stop(): Promise<void> {
    this.snapshotController?.kill('SIGKILL');
    for (const g of this.guests.values()) await g.kill();
    await this.cp?.stop();
    this.removeBridge();
  }
}

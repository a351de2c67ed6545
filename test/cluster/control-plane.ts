// A real Kubernetes control plane for tests: etcd, kube-apiserver (TLS, RBAC, client-certificate
// kubeconfigs), kube-scheduler (with a KubeSchedulerConfiguration the caller passes, e.g. ours from
// deploy/scheduler/) and kube-controller-manager (only the volume controllers), on loopback with
// free ports. No kubelet: tests create Node and CSINode objects through the API. The admission
// plugin TaintNodesByCondition is off, so API-created Nodes carry no not-ready taint that only the
// (absent) node-lifecycle controller would lift; ServiceAccount admission is off as no token
// controller runs (envtest does the same).
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { issue, makeCa, openssl } from '../tls.ts';
import { type Binary, binPath } from './binaries.ts';

export interface ControlPlane {
  dir: string;
  apiUrl: string;
  /** Admin kubeconfig (client certificate in system:masters). */
  kubeconfig: string;
  logs: string;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /**
   * KubeSchedulerConfiguration as an object; clientConnection and leaderElection are filled in.
   * Without one only etcd and kube-apiserver run (no scheduler, no controller-manager).
   */
  schedulerConfig?: Record<string, unknown>;
  /** More subjectAltNames of the apiserver's serving certificate, e.g. `IP:10.0.2.2` for a VM. */
  extraSans?: string[];
  /**
   * Real kubelets will join with these node names (the nodes tier): each gets a client certificate
   * (pki/node-<name>.crt, CN=system:node:<name>, O=system:nodes); ServiceAccount admission is on
   * (pods get tokens) and kube-controller-manager runs every default controller, not only the
   * volume ones (Deployments, DaemonSets, StatefulSets, node lifecycle, kube-root-ca.crt).
   */
  nodes?: string[];
  /** Keep the run directory (logs, certificates) after stop. */
  keep?: boolean;
  /** Per-component start timeout. */
  startTimeoutMs?: number;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** CA, apiserver serving cert, admin and scheduler client certs, service-account key pair. */
function makePki(pki: string, extraSans: string[], nodes: string[]): void {
  const ca = makeCa(pki, 'ca', 'meshstor-test-ca');
  issue(pki, ca, 'apiserver', {
    subject: '/CN=kube-apiserver',
    usage: 'server',
    sans: ['IP:127.0.0.1', 'IP:10.0.0.1', 'DNS:localhost', 'DNS:kubernetes.default.svc', ...extraSans],
  });
  issue(pki, ca, 'admin', { subject: '/O=system:masters/CN=meshstor-test-admin', usage: 'client' });
  // The bootstrap RBAC policy grants system:kube-scheduler what the scheduler needs.
  issue(pki, ca, 'scheduler', { subject: '/CN=system:kube-scheduler', usage: 'client' });
  for (const n of nodes)
    issue(pki, ca, `node-${n}`, { subject: `/O=system:nodes/CN=system:node:${n}`, usage: 'client' });
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key'], pki);
  openssl(['ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], pki);
}

function kubeconfig(apiUrl: string, pki: string, user: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "${apiUrl}", certificate-authority: "${join(pki, 'ca.crt')}"}
users:
- name: ${user}
  user: {client-certificate: "${join(pki, `${user}.crt`)}", client-key: "${join(pki, `${user}.key`)}"}
contexts:
- name: test
  context: {cluster: test, user: ${user}}
current-context: test
`;
}

/** GET over TLS; resolves to [status, body], never rejects (connection errors give status 0). */
export function httpsGet(
  url: string,
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; insecure?: boolean; accept?: string },
): Promise<[number, string]> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: !tls.insecure,
        timeout: 3000,
        headers: tls.accept ? { accept: tls.accept } : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve([res.statusCode ?? 0, body]));
        res.on('error', () => resolve([0, body]));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve([0, e.message]));
    req.end();
  });
}

class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  exited = false;
  readonly logFile: string;

  constructor(name: Binary, args: string[], logs: string, logName: string = name) {
    this.name = logName;
    this.logFile = join(logs, `${logName}.log`);
    const out = createWriteStream(this.logFile);
    // with a parent-death signal (setpriv execs the binary, same pid): a test run killed outright
    // does not leave etcd and the control plane running
    this.child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', binPath(name), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.pipe(out);
    this.child.stderr?.pipe(out);
    this.child.on('exit', () => {
      this.exited = true;
    });
    this.child.on('error', () => {
      this.exited = true;
    });
  }

  tail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    const t = await Promise.race([gone.then(() => 'gone'), sleep(10_000).then(() => 'late')]);
    if (t === 'late' && !this.exited) {
      this.child.kill('SIGKILL');
      await gone;
    }
  }
}

async function waitFor(proc: Proc, what: string, timeoutMs: number, probe: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (proc.exited) throw new Error(`${proc.name} exited before ${what}:\n${proc.tail()}`);
    if (Date.now() > deadline)
      throw new Error(`${proc.name}: not ${what} after ${timeoutMs} ms:\n${proc.tail()}`);
    await sleep(200);
  }
}

/** kube-scheduler with `config` and kube-controller-manager with only the volume controllers. */
async function startSchedulerAndControllers(
  dir: string,
  logs: string,
  config: Record<string, unknown>,
  { schedPort, kcmPort }: { schedPort: number; kcmPort: number },
  procs: Proc[],
  timeout: number,
  realNodes: boolean,
): Promise<void> {
  const schedConfig = {
    ...config,
    clientConnection: { kubeconfig: join(dir, 'scheduler.kubeconfig') },
    leaderElection: { leaderElect: false },
  };
  writeFileSync(join(dir, 'scheduler-config.json'), JSON.stringify(schedConfig, null, 2));
  const sched = new Proc(
    'kube-scheduler',
    [
      `--config=${join(dir, 'scheduler-config.json')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      `--cert-dir=${join(dir, 'scheduler-certs')}`,
      '--v=2',
    ],
    logs,
  );
  procs.push(sched);
  // Without a kubelet nothing would ever lift a not-ready taint, so only the volume controllers
  // run (never node-lifecycle). --use-service-account-credentials=false: they act as admin.
  // With real kubelets (the nodes tier) every default controller runs.
  const pki = join(dir, 'pki');
  const controllers = realNodes
    ? [
        '--controllers=*',
        `--root-ca-file=${join(pki, 'ca.crt')}`,
        `--service-account-private-key-file=${join(pki, 'sa.key')}`,
        `--cluster-signing-cert-file=${join(pki, 'ca.crt')}`,
        `--cluster-signing-key-file=${join(pki, 'ca.key')}`,
      ]
    : [
        '--controllers=persistentvolume-binder-controller,persistentvolume-attach-detach-controller,' +
          'persistentvolumeclaim-protection-controller,persistentvolume-protection-controller,' +
          'garbage-collector-controller',
      ];
  const kcm = new Proc(
    'kube-controller-manager',
    [
      `--kubeconfig=${join(dir, 'admin.kubeconfig')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      `--cert-dir=${join(dir, 'kcm-certs')}`,
      '--leader-elect=false',
      '--use-service-account-credentials=false',
      ...controllers,
      '--v=1',
    ],
    logs,
  );
  procs.push(kcm);
  const healthy = (port: number) => async () =>
    (await httpsGet(`https://127.0.0.1:${port}/healthz`, { insecure: true }))[0] === 200;
  await waitFor(sched, 'healthy', timeout, healthy(schedPort));
  await waitFor(kcm, 'healthy', timeout, healthy(kcmPort));
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const timeout = opts.startTimeoutMs ?? 90_000;
  const dir = mkdtempSync(join(tmpdir(), 'meshstor-cp-'));
  const pki = join(dir, 'pki');
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  makePki(pki, opts.extraSans ?? [], opts.nodes ?? []);
  const realNodes = opts.nodes !== undefined;
  const [etcdPort, etcdPeer, apiPort, schedPort, kcmPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const apiUrl = `https://127.0.0.1:${apiPort}`;
  const adminKubeconfig = join(dir, 'admin.kubeconfig');
  const schedKubeconfig = join(dir, 'scheduler.kubeconfig');
  writeFileSync(adminKubeconfig, kubeconfig(apiUrl, pki, 'admin'));
  writeFileSync(schedKubeconfig, kubeconfig(apiUrl, pki, 'scheduler'));

  const procs: Proc[] = [];
  const stop = async () => {
    for (const p of [...procs].reverse()) await p.stop();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  };
  const tls = {
    ca: readFileSync(join(pki, 'ca.crt')),
    cert: readFileSync(join(pki, 'admin.crt')),
    key: readFileSync(join(pki, 'admin.key')),
  };
  try {
    const etcd = new Proc(
      'etcd',
      [
        '--name=test',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=test=http://127.0.0.1:${etcdPeer}`,
        '--unsafe-no-fsync=true', // test data only
        '--log-level=warn',
      ],
      logs,
    );
    procs.push(etcd);
    await waitFor(etcd, 'healthy', timeout, async () => {
      const r = await fetch(`http://127.0.0.1:${etcdPort}/health`).catch(() => undefined);
      return r?.ok === true && ((await r.json()) as { health?: string }).health === 'true';
    });

    const api = new Proc(
      'kube-apiserver',
      [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        '--advertise-address=127.0.0.1',
        '--bind-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
        `--client-ca-file=${join(pki, 'ca.crt')}`,
        '--authorization-mode=Node,RBAC',
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${join(pki, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        realNodes
          ? '--disable-admission-plugins=TaintNodesByCondition'
          : '--disable-admission-plugins=ServiceAccount,TaintNodesByCondition',
        '--endpoint-reconciler-type=none',
        '--profiling=false',
        // as kubeadm and every distribution run it: the agent DaemonSet is privileged
        '--allow-privileged=true',
        // real kubelets: logs, exec and port-forward go from the apiserver to the kubelet
        ...(realNodes
          ? [
              `--kubelet-client-certificate=${join(pki, 'admin.crt')}`,
              `--kubelet-client-key=${join(pki, 'admin.key')}`,
              '--kubelet-preferred-address-types=InternalIP',
            ]
          : []),
        '--v=1',
      ],
      logs,
    );
    procs.push(api);
    await waitFor(api, 'ready', timeout, async () => {
      const [code, body] = await httpsGet(`${apiUrl}/readyz`, tls);
      return code === 200 && body.trim() === 'ok';
    });

    if (opts.schedulerConfig) {
      const ports = { schedPort, kcmPort };
      await startSchedulerAndControllers(dir, logs, opts.schedulerConfig, ports, procs, timeout, realNodes);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, apiUrl, kubeconfig: adminKubeconfig, logs, stop };
}

/**
 * Starts one more kube-scheduler against a running control plane (a second scheduler with its own
 * profile, as deploy/scheduler/second-scheduler.yaml runs one). Its log is logs/<name>.log.
 */
export async function startScheduler(
  cp: { dir: string; logs: string },
  config: Record<string, unknown>,
  name: string,
  timeoutMs = 60_000,
): Promise<{ stop(): Promise<void> }> {
  const file = join(cp.dir, `${name}-config.json`);
  const cfg = {
    ...config,
    clientConnection: {
      ...(config.clientConnection as Record<string, unknown> | undefined),
      kubeconfig: join(cp.dir, 'scheduler.kubeconfig'),
    },
    leaderElection: { leaderElect: false },
  };
  writeFileSync(file, JSON.stringify(cfg, null, 2));
  const port = await freePort();
  const p = new Proc(
    'kube-scheduler',
    [
      `--config=${file}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(cp.dir, `${name}-certs`)}`,
    ],
    cp.logs,
    name,
  );
  try {
    await waitFor(p, 'healthy', timeoutMs, async () => {
      return (await httpsGet(`https://127.0.0.1:${port}/healthz`, { insecure: true }))[0] === 200;
    });
  } catch (e) {
    await p.stop();
    throw e;
  }
  return { stop: () => p.stop() };
}

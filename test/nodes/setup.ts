// `npm run setup:nodes`: what the nodes tier needs besides the control plane, the provisioner, helm
// and the kernel (their own setup:* scripts). Each step is cached and skipped when current:
//  1. Debian packages on the host (root): containerd, runc, CNI plugins, iptables, busybox-static,
//     e2fsprogs, qemu. The guests run these very binaries (same Debian release as the host), copied
//     into their root image with their shared libraries (root-image.ts).
//  2. kubelet, kubectl and e2e.test of the control plane's Kubernetes release, from the Go module
//     k8s.io/kubernetes (test/cluster/build-binaries.sh; ~/.cache/k8s-test-bins/<version>/bin).
//     MESHSTOR_NODES_E2E=0 skips e2e.test (the longest build).
//  3. The external-resizer sidecar from its Go module, and the tier's pause program (pause/).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, K8S_VERSION } from '../cluster/binaries.ts';
import { buildGoCommand } from '../support/go-wrapper-build.ts';
import {
  CACHE,
  HOST_PACKAGES,
  k8sNodeBinary,
  pauseBinary,
  RESIZER_MODULE,
  RESIZER_VERSION,
  resizerBinary,
} from './paths.ts';

const here = dirname(fileURLToPath(import.meta.url));
const t0 = Date.now();
const say = (msg: string) => console.log(`setup:nodes: ${msg} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
const go = existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): void {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env, cwd });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status})`);
}

function hostPackages(): void {
  const missing = HOST_PACKAGES.filter(
    (p) =>
      spawnSync('dpkg-query', ['-W', `-f=\${Status}`, p], { encoding: 'utf8' }).stdout !==
      'install ok installed',
  );
  if (missing.length === 0) {
    say('host packages present');
    return;
  }
  if (process.getuid?.() !== 0)
    throw new Error(`missing Debian packages (run as root): ${missing.join(' ')}`);
  say(`apt-get install ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], env);
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], env);
}

function kubernetesBinaries(): void {
  const want = ['kubelet', 'kubectl', ...(process.env.MESHSTOR_NODES_E2E === '0' ? [] : ['e2e.test'])];
  const gone = want.filter((b) => !existsSync(k8sNodeBinary(b as 'kubelet')));
  if (gone.length === 0) {
    say(`${want.join(', ')} ${K8S_VERSION} present`);
    return;
  }
  say(`building ${gone.join(', ')} ${K8S_VERSION} from k8s.io/kubernetes (e2e.test takes the longest)`);
  run('bash', [join(here, '..', 'cluster', 'build-binaries.sh')], {
    ...process.env,
    PATH: `${process.env.PATH}:/usr/local/go/bin`,
    K8S_VERSION,
    OUT: cacheDir(),
    K8S_COMMANDS: gone.join(' '),
  });
}

function resizer(): void {
  if (existsSync(resizerBinary())) {
    say(`csi-resizer ${RESIZER_VERSION} present`);
    return;
  }
  buildGoCommand({
    module: RESIZER_MODULE,
    version: RESIZER_VERSION,
    command: 'cmd/csi-resizer',
    dir: join(CACHE, 'csi-resizer', RESIZER_VERSION),
  });
}

function pause(): void {
  if (existsSync(pauseBinary())) {
    say('pause present');
    return;
  }
  mkdirSync(dirname(pauseBinary()), { recursive: true });
  const env = { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '' };
  run(go, ['build', '-trimpath', '-ldflags=-s -w', '-o', pauseBinary(), '.'], env, join(here, 'pause'));
}

try {
  hostPackages();
  pause();
  resizer();
  kubernetesBinaries();
  say('done');
} catch (e) {
  console.error(`setup:nodes: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}

// `npm run setup:cluster`: makes sure etcd, kube-apiserver, kube-scheduler and
// kube-controller-manager of K8S_VERSION are present for the `cluster` tier, and the external-resizer
// sidecar (built from its Go module, as the nodes tier builds it).
//  1. MESHSTOR_K8S_BIN set: use those binaries, build nothing (fails if any is missing).
//  2. The cache (~/.cache/k8s-test-bins/<version>/bin) already holds them: done.
//  3. Go on PATH (or in /usr/local/go/bin): build them from their Go modules
//     (test/cluster/build-binaries.sh), through the Go module proxy.
//  4. No Go: download the official release binaries, as controller-runtime's envtest does
//     (dl.k8s.io for Kubernetes, the etcd GitHub release for etcd). MESHSTOR_K8S_DOWNLOAD=1
//     forces this path even when Go is present.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CACHE as NODES_CACHE, RESIZER_MODULE, RESIZER_VERSION, resizerBinary } from '../nodes/paths.ts';
import { buildGoCommand } from '../support/go-wrapper-build.ts';
import { BINARIES, binDir, cacheDir, K8S_VERSION, missingBinaries } from './binaries.ts';

const here = dirname(fileURLToPath(import.meta.url));
/** etcd of the release's own go.mod; only the download path needs it spelled out. */
const ETCD_VERSION = process.env.MESHSTOR_ETCD_VERSION ?? 'v3.6.8';

function findGo(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/go/bin'];
  return dirs.find((d) => d && existsSync(join(d, 'go')));
}

async function fetchTo(url: string, file: string): Promise<void> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  writeFileSync(file, Buffer.from(await res.arrayBuffer()));
}

async function download(bin: string): Promise<void> {
  const a = arch() === 'arm64' ? 'arm64' : 'amd64';
  mkdirSync(bin, { recursive: true });
  for (const name of ['kube-apiserver', 'kube-scheduler', 'kube-controller-manager']) {
    const url = `https://dl.k8s.io/release/${K8S_VERSION}/bin/linux/${a}/${name}`;
    console.log(`setup:cluster: downloading ${url}`);
    await fetchTo(url, join(bin, `${name}.part`));
    chmodSync(join(bin, `${name}.part`), 0o755);
    renameSync(join(bin, `${name}.part`), join(bin, name));
  }
  const base = `etcd-${ETCD_VERSION}-linux-${a}`;
  const url = `https://github.com/etcd-io/etcd/releases/download/${ETCD_VERSION}/${base}.tar.gz`;
  console.log(`setup:cluster: downloading ${url}`);
  const tmp = mkdtempSync(join(tmpdir(), 'meshstor-etcd-'));
  try {
    await fetchTo(url, join(tmp, 'etcd.tgz'));
    const r = spawnSync('tar', ['-xzf', join(tmp, 'etcd.tgz'), '-C', tmp], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('tar could not unpack the etcd release');
    renameSync(join(tmp, base, 'etcd'), join(bin, 'etcd'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const bin = binDir();
  if (missingBinaries().length === 0) {
    console.log(`setup:cluster: ${BINARIES.join(', ')} present in ${bin}`);
    return 0;
  }
  if (process.env.MESHSTOR_K8S_BIN) {
    console.error(
      `setup:cluster: MESHSTOR_K8S_BIN=${bin} lacks ${missingBinaries().join(', ')}; unset it to build them`,
    );
    return 1;
  }
  const go = findGo();
  const t0 = Date.now();
  if (go && process.env.MESHSTOR_K8S_DOWNLOAD !== '1') {
    console.log(`setup:cluster: building ${K8S_VERSION} from Go modules into ${cacheDir()} (go in ${go})`);
    const r = spawnSync(join(here, 'build-binaries.sh'), [], {
      stdio: 'inherit',
      env: {
        ...process.env,
        PATH: `${go}${delimiter}${process.env.PATH ?? ''}`,
        K8S_VERSION,
        OUT: cacheDir(),
      },
    });
    if (r.status !== 0) {
      console.error(`setup:cluster: build failed (exit ${r.status ?? r.signal})`);
      return 1;
    }
  } else {
    await download(bin);
  }
  const still = missingBinaries();
  if (still.length > 0) {
    console.error(`setup:cluster: still missing after setup: ${still.join(', ')}`);
    return 1;
  }
  console.log(`setup:cluster: done in ${((Date.now() - t0) / 1000).toFixed(0)} s; binaries in ${bin}`);
  return 0;
}

/**
 * The external-resizer sidecar the expansion test runs, built from its Go module into the cache the
 * nodes tier uses too (one binary for both tiers; test/nodes/paths.ts names it).
 */
function resizer(): number {
  const bin = resizerBinary();
  if (existsSync(bin)) {
    console.log(`setup:cluster: csi-resizer ${RESIZER_VERSION} present`);
    return 0;
  }
  if (!findGo()) {
    console.error(
      `setup:cluster: csi-resizer ${RESIZER_VERSION} needs Go to build (or set MESHSTOR_CSI_RESIZER)`,
    );
    return 1;
  }
  console.log(`setup:cluster: building csi-resizer ${RESIZER_VERSION} from ${RESIZER_MODULE}`);
  buildGoCommand({
    module: RESIZER_MODULE,
    version: RESIZER_VERSION,
    command: 'cmd/csi-resizer',
    dir: join(NODES_CACHE, 'csi-resizer', RESIZER_VERSION),
  });
  return 0;
}

process.exitCode = await main()
  .then((code) => (code === 0 ? resizer() : code))
  .catch((e: unknown) => {
    console.error(`setup:cluster: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  });

// `npm run setup:helm`: builds helm from its Go module (through the Go module proxy) into a
// versioned cache outside the repo. Does nothing when it is already there.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HELM_MODULE, HELM_VERSION, helmBinary, helmCacheDir } from './paths.ts';

const have = helmBinary();
if (have) {
  console.log(`helm ${HELM_VERSION}: ${have}`);
  process.exit(0);
}
const go = existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
const bin = join(helmCacheDir(), 'bin');
mkdirSync(bin, { recursive: true });
const t0 = Date.now();
const env = {
  ...process.env,
  GOBIN: bin,
  CGO_ENABLED: '0',
  GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'local',
  GOFLAGS: '',
};

// helm's release build stamps the Kubernetes version of its client-go (major+1, minor) as the
// default for `helm template` and lint's deprecation checks; without it they assume v1.20.
const mod = spawnSync(go, ['mod', 'download', '-json', `${HELM_MODULE}@${HELM_VERSION}`], {
  cwd: helmCacheDir(),
  env,
  encoding: 'utf8',
});
if (mod.error || mod.status !== 0) {
  console.error(`go mod download ${HELM_MODULE}@${HELM_VERSION} failed: ${mod.error?.message ?? mod.stderr}`);
  process.exit(1);
}
const gomod = readFileSync((JSON.parse(mod.stdout) as { GoMod: string }).GoMod, 'utf8');
const clientGo = /^\s*k8s\.io\/client-go v(\d+)\.(\d+)\./m.exec(gomod);
if (!clientGo) {
  console.error(`no k8s.io/client-go requirement in the go.mod of ${HELM_MODULE}@${HELM_VERSION}`);
  process.exit(1);
}
const [k8sMajor, k8sMinor] = [String(Number(clientGo[1]) + 1), clientGo[2] as string];
const ldflags = [
  '-s -w',
  `-X ${HELM_MODULE}/internal/version.version=${HELM_VERSION}`,
  ...['pkg/chartutil', 'pkg/lint/rules'].flatMap((p) => [
    `-X ${HELM_MODULE}/${p}.k8sVersionMajor=${k8sMajor}`,
    `-X ${HELM_MODULE}/${p}.k8sVersionMinor=${k8sMinor}`,
  ]),
].join(' ');
console.log(`building helm ${HELM_VERSION} (Kubernetes ${k8sMajor}.${k8sMinor}) into ${bin} ...`);
const r = spawnSync(
  go,
  ['install', '-trimpath', `-ldflags=${ldflags}`, `${HELM_MODULE}/cmd/helm@${HELM_VERSION}`],
  { stdio: 'inherit', env },
);
if (r.error) {
  console.error(`cannot run go (${r.error.message}): install Go or set MESHSTOR_HELM to a helm binary`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`helm built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

// `npm run setup:snapshotter`: builds the external-snapshotter's csi-snapshotter sidecar and its
// snapshot-controller from their Go module (through a wrapper module:
// test/support/go-wrapper-build.ts; the module replaces its client with a local directory, so the
// client is pinned at the same release) and copies the snapshot.storage.k8s.io CRDs of that release.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildGoCommand } from '../support/go-wrapper-build.ts';
import {
  csiSnapshotterBinary,
  SNAPSHOTTER_CLIENT_MODULE,
  SNAPSHOTTER_MODULE,
  SNAPSHOTTER_VERSION,
  snapshotControllerBinary,
  snapshotCrdFiles,
  snapshotterCacheDir,
} from './paths.ts';

const t0 = Date.now();
const pin = [`${SNAPSHOTTER_CLIENT_MODULE} ${SNAPSHOTTER_VERSION}`];
for (const [name, have] of [
  ['csi-snapshotter', csiSnapshotterBinary()],
  ['snapshot-controller', snapshotControllerBinary()],
] as const) {
  if (have) {
    console.log(`${name} ${SNAPSHOTTER_VERSION}: ${have}`);
    continue;
  }
  buildGoCommand({
    module: SNAPSHOTTER_MODULE,
    version: SNAPSHOTTER_VERSION,
    command: `cmd/${name}`,
    dir: snapshotterCacheDir(name),
    require: pin,
  });
}

if (!snapshotCrdFiles()) {
  const go = existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
  const r = spawnSync(
    go,
    ['mod', 'download', '-json', `${SNAPSHOTTER_CLIENT_MODULE}@${SNAPSHOTTER_VERSION}`],
    {
      encoding: 'utf8',
      env: { ...process.env, GOFLAGS: '' },
      cwd: snapshotterCacheDir('csi-snapshotter'),
    },
  );
  if (r.status !== 0)
    throw new Error(`go mod download ${SNAPSHOTTER_CLIENT_MODULE}@${SNAPSHOTTER_VERSION} failed`);
  const src = join((JSON.parse(r.stdout) as { Dir: string }).Dir, 'config', 'crd');
  const dst = snapshotterCacheDir('snapshot-crds');
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src).filter(
    (x) => x.startsWith('snapshot.storage.k8s.io_') && x.endsWith('.yaml'),
  )) {
    copyFileSync(join(src, f), join(dst, f));
    chmodSync(join(dst, f), 0o644); // the module cache's files are read-only
  }
  console.log(`VolumeSnapshot CRDs ${SNAPSHOTTER_VERSION}: ${dst}`);
}
console.log(
  `external-snapshotter ${SNAPSHOTTER_VERSION} ready in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
);

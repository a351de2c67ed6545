// `npm run setup:sanity`: builds csi-sanity from its Go module (through the Go module proxy) into
// a versioned cache outside the repo. Does nothing when it is already there.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CSI_TEST_MODULE, CSI_TEST_VERSION, csiSanityBinary, sanityCacheDir } from './paths.ts';

const have = csiSanityBinary();
if (have) {
  console.log(`csi-sanity ${CSI_TEST_VERSION}: ${have}`);
  process.exit(0);
}
const go = ['/usr/local/go/bin/go', 'go'].find((g) => g === 'go' || existsSync(g)) as string;
const bin = join(sanityCacheDir(), 'bin');
mkdirSync(bin, { recursive: true });
const t0 = Date.now();
console.log(`building csi-sanity ${CSI_TEST_VERSION} into ${bin} ...`);
const r = spawnSync(go, ['install', `${CSI_TEST_MODULE}@${CSI_TEST_VERSION}`], {
  stdio: 'inherit',
  env: { ...process.env, GOBIN: bin, CGO_ENABLED: '0', GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'local' },
});
if (r.error) {
  console.error(
    `cannot run go (${r.error.message}): install Go or set MESHSTOR_CSI_SANITY to a csi-sanity binary`,
  );
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`csi-sanity built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

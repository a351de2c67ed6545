// `npm run setup:provisioner`: builds the external-provisioner sidecar from its Go module (through a
// wrapper module: test/support/go-wrapper-build.ts).
import { buildGoCommand } from '../support/go-wrapper-build.ts';
import { PROVISIONER_MODULE, PROVISIONER_VERSION, provisionerBinary, provisionerCacheDir } from './paths.ts';

const have = provisionerBinary();
if (have) {
  console.log(`csi-provisioner ${PROVISIONER_VERSION}: ${have}`);
  process.exit(0);
}
const t0 = Date.now();
buildGoCommand({
  module: PROVISIONER_MODULE,
  version: PROVISIONER_VERSION,
  command: 'cmd/csi-provisioner',
  dir: provisionerCacheDir(),
});
console.log(`csi-provisioner built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

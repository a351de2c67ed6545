// `npm run manifests`: re-renders deploy/manifests/meshstor.yaml from the chart (needs helm:
// `npm run setup:helm`).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { helmBinary, missingHelm } from '../../test/helm/paths.ts';
import { MANIFESTS_FILE, renderManifests } from './render.ts';

const bin = helmBinary();
if (!bin) {
  console.error(`manifests: ${missingHelm()}`);
  process.exit(1);
}
mkdirSync(dirname(MANIFESTS_FILE), { recursive: true });
writeFileSync(MANIFESTS_FILE, renderManifests(bin));
console.log(`manifests: wrote ${MANIFESTS_FILE}`);

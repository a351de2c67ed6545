// `npm run image:check`: proves the archive `npm run image` wrote is an image containerd takes and
// runs. Starts a private containerd (own root, state and socket in a temporary directory, stopped
// at the end), `ctr images import`s the archive, and runs the image with runc: `meshstor --help`
// and the host tools' versions. Needs root; installs Debian's containerd (with runc) when absent.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { HOST_COMMANDS, IMAGE_REPOSITORY } from './contents.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const say = (msg: string) => console.log(`image:check: ${msg}`);

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

function ensureContainerd(): void {
  if (spawnSync('sh', ['-c', 'command -v containerd && command -v ctr && command -v runc']).status === 0)
    return;
  if (process.getuid?.() !== 0)
    throw new Error('containerd, ctr and runc are missing: apt-get install containerd');
  say('apt-get install containerd');
  run('apt-get', ['update', '-qq']);
  spawnSync('apt-get', ['install', '-y', '-qq', 'containerd'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

async function main(): Promise<void> {
  const latest = join(root, 'dist/image/latest');
  if (!existsSync(latest)) throw new Error('no image built: run npm run image first');
  const version = readFileSync(latest, 'utf8').trim();
  const archive = join(root, 'dist/image', `meshstor-${version}.oci.tar`);
  const image = `${IMAGE_REPOSITORY}:${version}`;
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  ensureContainerd();

  const dir = mkdtempSync(join(tmpdir(), 'meshstor-containerd-'));
  const socket = join(dir, 'containerd.sock');
  writeFileSync(
    join(dir, 'config.toml'),
    `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${socket}"\n`,
  );
  let containerd: ChildProcess | undefined;
  try {
    containerd = spawn('containerd', ['--config', join(dir, 'config.toml')], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const ctr = (...args: string[]) => run('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args]);
    for (let i = 0; !existsSync(socket); i++) {
      if (i > 100 || containerd.exitCode !== null) throw new Error('containerd did not start');
      await sleep(100);
    }
    const t0 = Date.now();
    ctr('images', 'import', archive);
    const list = ctr('images', 'ls', '--quiet');
    for (const name of [image, `${IMAGE_REPOSITORY}:${pkg.version}`]) {
      if (!list.split('\n').includes(name))
        throw new Error(`ctr images import did not name ${name}:\n${list}`);
    }
    say(`ctr images import: ${image} in ${Date.now() - t0} ms`);

    const help = ctr('run', '--rm', image, 'meshstor-check-help', '/usr/local/bin/meshstor', '--help');
    if (!help.includes('usage: meshstor <command>')) throw new Error(`meshstor --help printed:\n${help}`);
    // the V8 code cache bundle.ts shipped is the one this image's Node reads, not compiled anew
    const cache = ctr(
      'run',
      '--rm',
      '--env',
      'NODE_DEBUG_NATIVE=COMPILE_CACHE',
      image,
      'meshstor-check-cache',
      '/usr/local/bin/meshstor',
      '--help',
    );
    if (!/V8 code cache for ESM \S+meshstor\.mjs was accepted/.test(cache))
      throw new Error(`the image's Node did not use the shipped compile cache:\n${cache.slice(-2000)}`);
    // one container: every program the agent runs is there, then the tools' versions
    const tools = ctr(
      'run',
      '--rm',
      image,
      'meshstor-check-tools',
      'sh',
      '-c',
      `for c in ${HOST_COMMANDS.join(' ')}; do command -v "$c" >/dev/null || echo "missing: $c"; done; ` +
        'set -e; node --version; mdadm --version 2>&1; nvme version; sgdisk --version; sfdisk --version; ' +
        'mkfs.xfs -V; xfs_growfs -V; modprobe --version; wipefs --version; lsblk --version',
    );
    const missing = [...tools.matchAll(/^missing: (\S+)$/gm)].map((m) => m[1]);
    if (missing.length > 0) throw new Error(`the image lacks programs the agent runs: ${missing.join(', ')}`);
    if (!/^v24\./m.test(tools)) throw new Error(`the image's node is not Node 24:\n${tools}`);
    say(
      `runs: meshstor --help (its compile cache accepted), all ${HOST_COMMANDS.length} programs the agent runs, and\n${tools.trim()}`,
    );
  } finally {
    containerd?.kill('SIGTERM');
    await new Promise((r) => (containerd?.exitCode !== null ? r(undefined) : containerd?.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main().catch((e: unknown) => {
  console.error(`image:check: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});

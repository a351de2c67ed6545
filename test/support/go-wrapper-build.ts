// Builds one command of a Go module whose go.mod carries replace directives (so `go install
// pkg@version` is refused): from a throw-away wrapper module that requires it and repeats its
// non-local replace directives. Used for the CSI sidecars (external-provisioner, -resizer).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GoCommandBuild {
  /** e.g. github.com/kubernetes-csi/external-provisioner/v6 */
  module: string;
  version: string;
  /** package path inside the module, e.g. cmd/csi-provisioner */
  command: string;
  /** cache directory: the binary goes to <dir>/bin/<last element of command>, work files to <dir>/work */
  dir: string;
  /**
   * Other modules pinned at a version (`module version`): a module's own sub-module it replaces
   * with a local directory (external-snapshotter's client) is required at the same release.
   */
  require?: string[];
}

const go = () => (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go');

function runGo(args: string[], cwd: string): string {
  const env = {
    ...process.env,
    CGO_ENABLED: '0',
    GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'local',
    GOFLAGS: '',
  };
  const r = spawnSync(go(), args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.error) throw new Error(`cannot run go (${r.error.message}): install Go`);
  if (r.status !== 0) throw new Error(`go ${args.join(' ')} failed (exit ${r.status})`);
  return r.stdout;
}

/** `old [v] => new v` lines of a go.mod's replace directives whose target is not a local path. */
export function remoteReplaces(gomod: string): string[] {
  const replaces: string[] = [];
  let inBlock = false;
  for (const raw of gomod.split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    if (/^replace\s*\($/.test(line)) inBlock = true;
    else if (inBlock && line === ')') inBlock = false;
    else if (inBlock || line.startsWith('replace ')) {
      const r = line.replace(/^replace\s+/, '');
      const target = r.split('=>')[1]?.trim() ?? '';
      if (r.includes('=>') && !target.startsWith('.') && !target.startsWith('/')) replaces.push(r);
    }
  }
  return replaces;
}

/** Builds the command (static, stripped, version stamped as main.version) and returns its path. */
export function buildGoCommand(b: GoCommandBuild): string {
  const name = b.command.split('/').at(-1) as string;
  const out = join(b.dir, 'bin', name);
  const work = join(b.dir, 'work');
  mkdirSync(work, { recursive: true });
  const info = JSON.parse(runGo(['mod', 'download', '-json', `${b.module}@${b.version}`], b.dir)) as {
    GoMod: string;
  };
  const gomod = readFileSync(info.GoMod, 'utf8');
  const replaces = remoteReplaces(gomod);
  const goVersion = /^go\s+(\S+)/m.exec(gomod)?.[1] ?? '1.24';
  writeFileSync(
    join(work, 'go.mod'),
    `module meshstor.local/${name}-build\n\ngo ${goVersion}\n\nrequire ${b.module} ${b.version}\n${(b.require ?? []).map((r) => `require ${r}\n`).join('')}${
      replaces.length ? `\nreplace (\n${replaces.map((r) => `\t${r}`).join('\n')}\n)\n` : ''
    }`,
  );
  writeFileSync(
    join(work, 'tools.go'),
    `//go:build tools\n\npackage tools\n\nimport _ "${b.module}/${b.command}"\n`,
  );
  console.log(`building ${name} ${b.version} (${replaces.length} replace directives) into ${b.dir}/bin ...`);
  runGo(['mod', 'tidy'], work);
  runGo(
    [
      'build',
      '-mod=mod',
      '-trimpath',
      '-ldflags',
      `-s -w -X main.version=${b.version}`,
      '-o',
      out,
      `${b.module}/${b.command}`,
    ],
    work,
  );
  return out;
}

// `npm run setup:provisioner`: builds the external-provisioner sidecar from its Go module. Its
// go.mod carries replace directives, so `go install pkg@version` is refused; we build it from a
// throw-away wrapper module that requires it and repeats its non-local replace directives.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROVISIONER_MODULE, PROVISIONER_VERSION, provisionerBinary, provisionerCacheDir } from './paths.ts';

const have = provisionerBinary();
if (have) {
  console.log(`csi-provisioner ${PROVISIONER_VERSION}: ${have}`);
  process.exit(0);
}
const go = existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
const env = {
  ...process.env,
  CGO_ENABLED: '0',
  GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'local',
  GOFLAGS: '',
};
const run = (args: string[], cwd?: string) => {
  const r = spawnSync(go, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.error)
    throw new Error(`cannot run go (${r.error.message}): install Go or set MESHSTOR_CSI_PROVISIONER`);
  if (r.status !== 0) throw new Error(`go ${args.join(' ')} failed (exit ${r.status})`);
  return r.stdout;
};

const t0 = Date.now();
const dir = provisionerCacheDir();
const work = join(dir, 'work');
mkdirSync(work, { recursive: true });
const info = JSON.parse(
  run(['mod', 'download', '-json', `${PROVISIONER_MODULE}@${PROVISIONER_VERSION}`], dir),
) as { GoMod: string };
const gomod = readFileSync(info.GoMod, 'utf8');

/** `old [v] => new v` lines of the module's replace directives whose target is not a local path. */
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
const goVersion = /^go\s+(\S+)/m.exec(gomod)?.[1] ?? '1.24';
writeFileSync(
  join(work, 'go.mod'),
  `module meshstor.local/provisioner-build\n\ngo ${goVersion}\n\nrequire ${PROVISIONER_MODULE} ${PROVISIONER_VERSION}\n${
    replaces.length ? `\nreplace (\n${replaces.map((r) => `\t${r}`).join('\n')}\n)\n` : ''
  }`,
);
writeFileSync(
  join(work, 'tools.go'),
  `//go:build tools\n\npackage tools\n\nimport _ "${PROVISIONER_MODULE}/cmd/csi-provisioner"\n`,
);
console.log(
  `building csi-provisioner ${PROVISIONER_VERSION} (${replaces.length} replace directives) into ${dir}/bin ...`,
);
run(['mod', 'tidy'], work);
run(
  [
    'build',
    '-mod=mod',
    '-trimpath',
    '-ldflags',
    `-s -w -X main.version=${PROVISIONER_VERSION}`,
    '-o',
    join(dir, 'bin', 'csi-provisioner'),
    `${PROVISIONER_MODULE}/cmd/csi-provisioner`,
  ],
  work,
);
console.log(`csi-provisioner built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

// Which files of node_modules a guest gets: the packages it names and everything they depend on
// (dependencies and optionalDependencies, resolved from each package's own folder upwards the way
// Node resolves them), only the files Node loads at run time (JavaScript, JSON, .proto). The VM's
// kernel has no 9p, so sharing the host's node_modules is not an option; this copies it into the
// initramfs instead.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

interface PackageJson {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** The folder Node would load `name` from when required in `from` (undefined: not installed). */
function resolvePackage(root: string, from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root) return undefined;
    dir = dirname(dir);
    // from node_modules/a (or node_modules/@s/a) the next place to look is node_modules' parent
    if (dir.endsWith('/node_modules')) dir = dirname(dir);
    else if (dirname(dir).endsWith('/node_modules')) dir = dirname(dirname(dir));
  }
}

/** Folders (relative to `root`) of `names` and their dependency closure; throws on one missing. */
export function packageClosure(root: string, names: readonly string[]): string[] {
  const seen = new Set<string>();
  const todo = names.map((n) => {
    const dir = resolvePackage(root, root, n);
    if (!dir) throw new Error(`the guest needs ${n}, which is not installed in ${root}/node_modules`);
    return dir;
  });
  for (let dir = todo.pop(); dir !== undefined; dir = todo.pop()) {
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
    for (const dep of Object.keys(pj.dependencies ?? {})) {
      const found = resolvePackage(root, dir, dep);
      if (!found) throw new Error(`${relative(root, dir)} depends on ${dep}, which is not installed`);
      todo.push(found);
    }
    // an optional dependency may be absent on this platform: Node copes, so do we
    for (const dep of Object.keys(pj.optionalDependencies ?? {})) {
      const found = resolvePackage(root, dir, dep);
      if (found) todo.push(found);
    }
  }
  return [...seen].map((d) => relative(root, d)).sort();
}

/** The run-time files (relative to `root`) of the packages' closure, without nested node_modules. */
export function packageFiles(root: string, names: readonly string[]): string[] {
  return packageClosure(root, names).flatMap((pkg) => {
    const r = spawnSync(
      'find',
      [
        '-L',
        pkg,
        '-path',
        `${pkg}/node_modules`,
        '-prune',
        '-o',
        '-type',
        'f',
        '(',
        '-name',
        '*.js',
        '-o',
        '-name',
        '*.cjs',
        '-o',
        '-name',
        '*.mjs',
        '-o',
        '-name',
        '*.json',
        '-o',
        '-name',
        '*.proto',
        ')',
        '-print',
      ],
      { cwd: root, encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`find in ${pkg} failed: ${r.stderr}`);
    return r.stdout.split('\n').filter(Boolean);
  });
}

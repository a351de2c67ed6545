// The folders are the architecture. Each top-level folder's README has one line
// `**May import:** ...` whose backticked tokens are what its code may import: other folders
// (`state/`), packages (`zod`), the standard library (`node:*` or one module such as `node:fs`),
// or `*` for anything; only the first sentence of the line counts. This test reads those lines and fails on any import that breaks them, on
// any two folders that import each other, and on host commands run outside the one exec wrapper.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
/** What a folder's tests may use besides what the folder may: the test tools, YAML fixtures and test/ support. */
const TEST_EXTRAS = ['vitest', 'fast-check', 'yaml', 'node:*', 'test/'];
/** The only product file that may start processes (agent/host/exec.ts: LC_ALL=C, time bound, kill). */
const EXEC_WRAPPER = 'agent/host/exec.ts';

const files = execFileSync('git', ['ls-files', '*.ts'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n')
  .filter((f) => f.includes('/') && existsSync(join(ROOT, f)));
const folders = [...new Set(files.map((f) => f.split('/')[0] as string))].sort();

/** The allowed tokens from the folder README's `**May import:**` line (undefined: no such line). */
function allowed(folder: string): string[] | undefined {
  const readme = join(ROOT, folder, 'README.md');
  if (!existsSync(readme)) return undefined;
  const line = readFileSync(readme, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('**May import:**'));
  if (line === undefined) return undefined;
  // The first sentence is the rule; what follows ("Never `csi/`.") is prose.
  const rule = line.split(/\.\s/)[0] as string;
  return [...rule.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
}

const isTest = (f: string) => f.includes('/test/') || f.endsWith('.test.ts') || f.startsWith('test/');

/** Every import of a file, as a folder (`state/`), a package (`@grpc/grpc-js`) or `node:x`. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [
    ...text.matchAll(
      /(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]/gm,
    ),
  ].map((m) => (m[1] ?? m[2]) as string);
  return specs.map((s) => {
    if (s.startsWith('.')) {
      const target = relative(ROOT, normalize(join(dirname(join(ROOT, file)), s)));
      return target.includes('/') ? `${target.split('/')[0]}/` : target;
    }
    if (s.startsWith('node:')) return s;
    return s
      .split('/')
      .slice(0, s.startsWith('@') ? 2 : 1)
      .join('/');
  });
}

function permits(tokens: readonly string[], target: string): boolean {
  return tokens.some((t) => t === '*' || t === target || (t === 'node:*' && target.startsWith('node:')));
}

describe('architecture', () => {
  it('every top-level source folder states its import rule', () => {
    expect(folders.length).toBeGreaterThan(8);
    for (const folder of folders)
      expect(allowed(folder), `${folder}/README.md has no **May import:** line`).toBeDefined();
  });

  it.each(folders)('%s/ imports only what its README allows', (folder) => {
    const rule = allowed(folder) ?? [];
    const broken: string[] = [];
    for (const file of files.filter((f) => f.startsWith(`${folder}/`))) {
      const tokens = isTest(file) ? [...rule, ...TEST_EXTRAS] : rule;
      for (const target of importsOf(file)) {
        if (target === `${folder}/`) continue;
        if (!permits(tokens, target)) broken.push(`${file} imports ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('no two folders import each other (product code)', () => {
    const uses = new Map<string, Set<string>>();
    for (const file of files.filter((f) => !isTest(f))) {
      const from = file.split('/')[0] as string;
      for (const t of importsOf(file)) {
        if (t.endsWith('/') && t !== `${from}/`) {
          if (!uses.has(from)) uses.set(from, new Set());
          uses.get(from)?.add(t.slice(0, -1));
        }
      }
    }
    const pairs: string[] = [];
    for (const [a, targets] of uses)
      for (const b of targets) if (uses.get(b)?.has(a) && a < b) pairs.push(`${a} <-> ${b}`);
    expect(pairs).toEqual([]);
  });

  it(`only ${EXEC_WRAPPER} starts processes in product code`, () => {
    const spawners = files
      // bench/ and deploy/ are tooling (benchmarks, the image build), not shipped code
      .filter((f) => !isTest(f) && !f.startsWith('bench/') && !f.startsWith('deploy/'))
      .filter((f) => importsOf(f).includes('node:child_process'));
    expect(spawners).toEqual([EXEC_WRAPPER]);
  });

  it('the rules can fail: a made-up import outside a rule is caught', () => {
    expect(permits(allowed('placement') ?? [], 'node:fs')).toBe(false);
    expect(permits(allowed('agent') ?? [], 'csi/')).toBe(false);
    expect(permits(allowed('kube') ?? [], 'placement/')).toBe(false);
  });
});

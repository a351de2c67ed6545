// placement/ must stay pure: no Kubernetes, no Node I/O, nothing from other folders.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(import.meta.dirname, '..');
const sources = readdirSync(dir).filter((f) => f.endsWith('.ts'));

describe('placement/ imports', () => {
  it('has sources to check', () => {
    expect(sources.length).toBeGreaterThan(5);
  });
  it.each(sources)('%s imports only its own folder', (file) => {
    const text = readFileSync(join(dir, file), 'utf8');
    const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1] as string);
    for (const s of specifiers) expect(s, `${file} imports ${s}`).toMatch(/^\.\/[\w-]+\.ts$/);
  });
});

// The nodes tier reads its writer pods' MSCHECK lines from every guest's log file. A pod that moved
// printed on two nodes; its lines must come back in the order they were printed, whichever node's
// file is read first (the tier once read node2's "found" before node3's "wrote" and failed).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLines } from '../nodes/workload.ts';

describe('checkLines', () => {
  it('orders a pod’s lines by their CRI timestamps across node files, fractions of any length', () => {
    const dir = mkdtempSync(join(tmpdir(), 'check-lines-'));
    const node2 = join(dir, 'node2.logs');
    const node3 = join(dir, 'node3.logs');
    writeFileSync(
      node2,
      [
        'kubelet: I1128 something else',
        'pod:default/db-0/writer: 2026-11-28T20:57:19.38395952Z stdout F MSCHECK found aa aa',
        'pod:default/db-0/writer: 2026-11-28T20:57:20.2Z stdout F MSCHECK size 300',
        'pod:default/other-0/writer: 2026-11-28T20:50:00.1Z stdout F MSCHECK wrote cc\n',
      ].join('\n'),
    );
    writeFileSync(
      node3,
      [
        'pod:default/db-0/writer: 2026-11-28T20:55:18.964929237Z stdout F MSCHECK wrote aa',
        'pod:default/db-0/writer: 2026-11-28T20:57:19.5Z stdout F MSCHECK size 263168\n',
      ].join('\n'),
    );
    const lines = checkLines([node2, node3], 'default/db-0');
    expect(lines.map((l) => [l.kind, ...l.values])).toEqual([
      ['wrote', 'aa'],
      ['found', 'aa', 'aa'],
      ['size', '263168'],
      ['size', '300'],
    ]);
  });

  it('leaves out a last line the guest is still writing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'check-lines-'));
    const file = join(dir, 'node3.logs');
    const full = 'pod:default/db-0/writer: 2026-11-28T20:55:18.9Z stdout F MSCHECK wrote aa\n';
    writeFileSync(file, `${full}pod:default/db-0/writer: 2026-11-28T20:57:19.5Z stdout F MSCHECK found aa a`);
    expect(checkLines([file], 'default/db-0').map((l) => [l.kind, ...l.values])).toEqual([['wrote', 'aa']]);
    writeFileSync(
      file,
      `${full}pod:default/db-0/writer: 2026-11-28T20:57:19.5Z stdout F MSCHECK found aa aa\n`,
    );
    expect(checkLines([file], 'default/db-0').map((l) => [l.kind, ...l.values])).toEqual([
      ['wrote', 'aa'],
      ['found', 'aa', 'aa'],
    ]);
  });
});

// `node test/kernel/capture.ts`: boots the kernel-tier VM with the `capture` suite
// (guest/capture.ts) and writes what LinuxHost read there (tool output, sysfs, configfs,
// mountinfo) to agent/host/linux/parse/fixtures/, where the parsers' unit tests read it. Run it
// again after a kernel or tool change to see whether the formats moved. With fixture names as
// arguments only those are written (a new parser's fixtures, without touching the others').
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshDrives } from './drives.ts';
import { bootGuest } from './harness.ts';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'agent/host/linux/parse/fixtures');
const dir = mkdtempSync(join(tmpdir(), 'meshstor-capture-'));
const r = await bootGuest({
  suite: 'capture',
  drives: freshDrives(dir),
  timeoutMs: 15 * 60_000,
  workDir: dir,
});
rmSync(dir, { recursive: true, force: true });
const done = r.events.find((e) => e.kind === 'case' && e.name === 'capture');
if (!done?.ok) {
  console.error(`capture failed (exit ${r.exitCode}, timedOut ${r.timedOut}): ${done?.error ?? ''}`);
  console.error(r.console.slice(-4000));
  process.exit(1);
}
const kernel = (r.events.find((e) => e.kind === 'booted') as { kernel?: string } | undefined)?.kernel;
mkdirSync(OUT, { recursive: true });
const only = new Set(process.argv.slice(2));
const fixtures = r.events.filter((e) => e.kind === 'fixture' && (only.size === 0 || only.has(e.name ?? '')));
for (const f of fixtures) {
  const body = { kernel, capturedBy: 'test/kernel/capture.ts', data: f.data };
  writeFileSync(join(OUT, `${f.name}.json`), `${JSON.stringify(body, null, 2)}\n`);
}
console.log(
  `${fixtures.length} fixtures from kernel ${kernel} (${r.accel}, ${r.wallSec.toFixed(0)} s) in ${OUT}`,
);

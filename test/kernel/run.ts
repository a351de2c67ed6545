// `node test/kernel/run.ts <suite>[,<suite>...]`: boots the VM once with fresh drives and prints
// its console (for debugging the kernel tier by hand; the tier itself is kernel.test.ts).
// MESHSTOR_RUN_MINUTES bounds the boot (default 15).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDrives } from './drives.ts';
import { bootGuest } from './harness.ts';

const suite = process.argv[2] ?? 'contract';
const dir = mkdtempSync(join(tmpdir(), 'meshstor-run-'));
const r = await bootGuest({
  suite,
  // the catch-up scenarios' 1 GiB volume needs larger data drives on A and B
  drives: freshDrives(dir, suite.includes('catchup') ? 2 * 2 ** 30 : undefined),
  timeoutMs: Number(process.env.MESHSTOR_RUN_MINUTES ?? 15) * 60_000,
  echo: true,
  workDir: dir,
});
rmSync(dir, { recursive: true, force: true });
console.log(
  `\naccel=${r.accel} boot=${r.bootSec}s wall=${r.wallSec.toFixed(1)}s exit=${r.exitCode} timedOut=${r.timedOut}`,
);
for (const e of r.events.filter((x) => x.kind === 'case'))
  console.log(`${e.ok ? 'PASS' : 'FAIL'} ${e.ms}ms ${e.name}`);
process.exit(r.exitCode === 0 ? 0 : 1);

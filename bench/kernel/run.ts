// `npm run bench:kernel`: boots the kernel-tier VM and runs the fio comparison in it (raw
// partition vs MD RAID1 single member vs LVM thin). `npm run bench:kernel -- write-mostly`: 4K
// random reads of a local + remote (nvme-tcp) RAID1 with and without the remote member marked
// write-mostly (write-mostly.ts). Not part of `npm test`: emulated drives under TCG give ratios
// only, never absolute numbers worth quoting.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDrives } from '../../test/kernel/drives.ts';
import { bootGuest, kernelTierMissing } from '../../test/kernel/harness.ts';

const missing = kernelTierMissing();
if (missing) {
  console.error(`bench:kernel cannot run: ${missing}`);
  process.exit(2);
}
const writeMostly = process.argv[2] === 'write-mostly';
const snapshot = process.argv[2] === 'snapshot';
const dir = mkdtempSync(join(tmpdir(), 'meshstor-bench-'));
const r = await bootGuest({
  suite: writeMostly ? 'bench-write-mostly' : snapshot ? 'bench-snapshot' : 'bench',
  // the snapshot bench takes a 1 GiB volume and its snapshot's member on two drives
  drives: freshDrives(dir, snapshot ? 2 * 2 ** 30 : undefined),
  timeoutMs: 15 * 60_000,
  workDir: dir,
});
rmSync(dir, { recursive: true, force: true });
const c = r.events.find(
  (e) =>
    e.kind === 'case' && e.name === (writeMostly ? 'fio-write-mostly' : snapshot ? 'fio-snapshot' : 'fio'),
);
if (!c?.ok) {
  console.error(c?.error ?? r.console.slice(-3000));
  process.exit(1);
}
if (snapshot) {
  const s = c.data as {
    iops: Record<string, number>;
    afterToBefore: Record<string, number | null>;
    snapshotOf1GiBMs: number;
    thinError?: string;
  };
  console.log(
    `fio 4K randwrite O_SYNC in the VM (accel=${r.accel}; ratios only), before and after a snapshot`,
  );
  console.log(
    `MeshStor (member detach)  ${s.iops.mdBefore} -> ${s.iops.mdAfter} IOPS (${s.afterToBefore.meshstor})`,
  );
  console.log(
    `LVM thin (thin snapshot)  ${s.iops.thinBefore} -> ${s.iops.thinAfter} IOPS (${s.afterToBefore.thin})`,
  );
  console.log(`snapshot of a 1 GiB volume (add, resync, detach): ${s.snapshotOf1GiBMs} ms`);
  if (s.thinError) console.log(`LVM thin snapshot failed: ${s.thinError}`);
  process.exit(0);
}
if (writeMostly) {
  const w = c.data as { iops: Record<string, number>; ratioToBalanced: Record<string, number> };
  console.log(`fio 4K randread in the VM (accel=${r.accel}; local + nvme-tcp RAID1; ratios only)`);
  console.log(`both legs read          ${w.iops.balanced} IOPS (1.00)`);
  console.log(
    `remote write-mostly     ${w.iops.writeMostly} IOPS (${w.ratioToBalanced.writeMostly?.toFixed(2)})`,
  );
  console.log(
    `local partition alone   ${w.iops.localPartition} IOPS (${w.ratioToBalanced.localPartition?.toFixed(2)})`,
  );
  process.exit(0);
}
const d = c.data as {
  iops: Record<string, Record<string, number>>;
  ratioToRaw: Record<string, Record<string, number>>;
  runtimeSec: number;
};
console.log(`fio 4K in the VM (accel=${r.accel}, ${d.runtimeSec} s per job; emulated NVMe: ratios only)`);
console.log('setup        randread IOPS (x raw)   randwrite O_SYNC IOPS (x raw)');
for (const k of ['raw', 'md', 'thin']) {
  const i = d.iops[k] ?? {};
  const q = d.ratioToRaw[k] ?? { randread: 1, 'randwrite-osync': 1 };
  console.log(
    `${k.padEnd(12)} ${String(i.randread).padStart(8)} (${q.randread?.toFixed(2)})      ${String(i['randwrite-osync']).padStart(8)} (${q['randwrite-osync']?.toFixed(2)})`,
  );
}

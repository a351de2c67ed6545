// Runs inside the VM (Node 24, real kernel): `node test/kernel/guest/main.ts <suite>` (contract,
// all, reboot, dhchap (the NVMe-oF authentication cases alone), bench, bench-write-mostly, capture
// (the parsers' fixtures), stage: scenarios s and r, relocate: r alone, rebuild: rb alone, catchup: h and h2,
// expand: x alone, fence: sf alone, fence-control: sf without the fence (must lose blocks), or agent: the real `meshstor agent`
// binary against the host's control plane). Prints an
// `@@MS {json}` line when each case starts and one with its result (harness.ts parses them; the
// host bounds each case's time from its start line) and exits non-zero when any case failed.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { type FileHandle, open, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTRACT, type ContractEnv } from '../../../agent/host/test/contract.ts';
import { rb_agentRebuild } from './agent-rebuild.ts';
import { r_agentRelocation } from './agent-relocation.ts';
import { captureFixtures } from './capture.ts';
import { CATCH_UP } from './catch-up.ts';
import { DRIVES, LISTEN_B, nodes, reset } from './env.ts';
import { x_expandRelocation } from './expand.ts';
import { sf_selfFence, sf0_noFenceControl } from './fence.ts';
import { AFTER_REBOOT, DHCHAP, SCENARIOS, type Scenario } from './scenarios.ts';
import { n_snapshotRestore } from './snapshot.ts';
import { s_csiStaging } from './stage.ts';

export function report(o: Record<string, unknown>): void {
  process.stdout.write(`@@MS ${JSON.stringify(o)}\n`);
}

async function runCase(name: string, fn: () => Promise<unknown>): Promise<boolean> {
  report({ kind: 'start', name });
  const t0 = performance.now();
  try {
    const data = await fn();
    report({ kind: 'case', name, ok: true, ms: Math.round(performance.now() - t0), data });
    return true;
  } catch (e) {
    const err = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
    report({ kind: 'case', name, ok: false, ms: Math.round(performance.now() - t0), error: err });
    return false;
  }
}

async function canWrite(path: string): Promise<boolean> {
  const refused = (e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    // EIO: a fenced (broken) md array fails the write or its flush
    if (code === 'EROFS' || code === 'EPERM' || code === 'EIO') return false;
    throw e;
  };
  if ((await stat(path)).isBlockDevice()) {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r+');
    } catch (e) {
      return refused(e);
    }
    try {
      await fh.write(Buffer.alloc(4096), 0, 4096, 0);
      await fh.sync();
      return true;
    } catch (e) {
      return refused(e);
    } finally {
      await fh.close();
    }
  }
  const probe = join(path, '.meshstor-write-probe');
  try {
    await writeFile(probe, 'x');
  } catch (e) {
    return refused(e);
  }
  await unlink(probe);
  return true;
}

/** An mkfs.xfs that did not finish, as the kernel sees it: sb_inprogress set (xfs_db rewrites the CRC). */
async function cutMkfsShort(devicePath: string): Promise<void> {
  execFileSync('xfs_db', ['-x', '-c', 'sb 0', '-c', 'write inprogress 1', devicePath], { stdio: 'pipe' });
}

/** Drops a partition from the kernel's view, the table untouched (a kill between sgdisk and partx). */
async function forgetPartitionInKernel(partitionPath: string): Promise<void> {
  const m = /^(.*\d)p(\d+)$/.exec(partitionPath);
  if (!m) throw new Error(`not an NVMe partition path: ${partitionPath}`);
  execFileSync('partx', ['--delete', '--nr', m[2] as string, m[1] as string], { stdio: 'pipe' });
}

/**
 * The contract cases: all, those whose numbers are given (`contract=10+11`, by hand), or those whose
 * name starts with a prefix (the DH-HMAC-CHAP ones).
 */
async function contract(only?: Set<number> | string): Promise<boolean> {
  let ok = true;
  for (const [i, c] of CONTRACT.entries()) {
    if (only instanceof Set && !only.has(i)) continue;
    if (typeof only === 'string' && !c.name.startsWith(only)) continue;
    // the reset is part of the case, so the harness's time bound for the case covers it
    const run = async () => {
      await reset();
      const n = nodes();
      const mountDir = `/mnt/contract/${i}`;
      mkdirSync(mountDir, { recursive: true });
      const env: ContractEnv = {
        a: n.a,
        b: n.b,
        foreign: n.x,
        driveA: DRIVES.a,
        driveB: DRIVES.b,
        listenB: LISTEN_B,
        mountDir,
        canWrite,
        cutMkfsShort,
        forgetPartitionInKernel,
      };
      return c.run(env);
    };
    ok = (await runCase(c.name, run)) && ok;
  }
  return ok;
}

/** Scenarios build on each other (fresh drives, no reset): the first failure skips the rest. */
async function scenarios(list: Scenario[]): Promise<boolean> {
  for (const s of list) if (!(await runCase(s.name, () => s.run()))) return false;
  return true;
}

async function benchSuite(): Promise<boolean> {
  const { bench } = await import('../../../bench/kernel/guest.ts');
  return runCase('fio', bench);
}

async function writeMostlyBench(): Promise<boolean> {
  const { benchWriteMostly } = await import('../../../bench/kernel/write-mostly.ts');
  return runCase('fio-write-mostly', benchWriteMostly);
}

/**
 * The agent boot: the real `meshstor agent` binary; it is stopped even when a case failed. Loaded
 * only here: it needs @kubernetes/client-node, which only this boot's initramfs has.
 */
async function agentSuite(): Promise<boolean> {
  const { AGENT_BINARY, stopAgent } = await import('./agent-binary.ts');
  try {
    return await scenarios(AGENT_BINARY);
  } finally {
    await stopAgent();
  }
}

/** NVMe-oF authentication alone: the contract's DH-HMAC-CHAP cases, a reset, then b and b2. */
async function dhchapSuite(): Promise<boolean> {
  const contractOk = await contract('DH-HMAC-CHAP');
  await reset();
  return (await scenarios(DHCHAP)) && contractOk;
}

async function runSuite(suite: string): Promise<boolean> {
  const picked = /^contract=([\d+]+)$/.exec(suite)?.[1];
  if (picked) return contract(new Set(picked.split('+').map(Number)));
  const only = SCENARIO_SUITES[suite];
  return suite === 'dhchap'
    ? await dhchapSuite()
    : suite === 'agent'
      ? await agentSuite()
      : suite === 'contract'
        ? await contract()
        : suite === 'bench'
          ? await benchSuite()
          : suite === 'bench-write-mostly'
            ? await writeMostlyBench()
            : suite === 'bench-snapshot'
              ? await runCase('fio-snapshot', async () =>
                  (await import('../../../bench/kernel/snapshot.ts')).benchSnapshot(),
                )
              : suite === 'capture'
                ? await runCase('capture', captureFixtures)
                : await scenarios(
                    only ?? [...SCENARIOS, s_csiStaging, r_agentRelocation, rb_agentRebuild, sf_selfFence],
                  );
}

/** Suites that are a list of scenarios; any other name runs boot 2's list (the default). */
const SCENARIO_SUITES: Record<string, Scenario[]> = {
  reboot: AFTER_REBOOT,
  stage: [s_csiStaging, r_agentRelocation],
  relocate: [r_agentRelocation],
  rebuild: [rb_agentRebuild],
  snapshot: [n_snapshotRestore],
  catchup: CATCH_UP,
  expand: [x_expandRelocation],
  fence: [sf_selfFence],
  'fence-control': [sf0_noFenceControl],
};

// by hand, several suites in one boot: `contract=10+11,catchup`
let ok = true;
for (const suite of (process.argv[2] ?? 'contract').split(',')) ok = (await runSuite(suite)) && ok;
process.exit(ok ? 0 : 1);

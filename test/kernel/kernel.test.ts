// The kernel tier: the Host contract and the data-path scenarios on a real Debian 6.12 kernel in
// qemu, through LinuxHost. Each boot's cases come back as events; one vitest test per case.
// Boot 1: the contract suite. Boot 2: scenarios a, b, c, d, f, e1, then s (the CSI node service
// and the agents' export passes of three nodes: stage with remote members, move, fence) and r
// (relocation onto the staging node by ControllerService.relocate() and the agents). Boot 3:
// the same drive images attached in another order (a "reboot": every device name may change) for
// e2, g and g2.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT } from '../../agent/host/test/contract.ts';
import { freshDrives, reordered } from './drives.ts';
import { bootGuest, type DriveSpec, type GuestRun, kernelTierMissing } from './harness.ts';

const MIN = 60_000;
const work = mkdtempSync(join(tmpdir(), 'meshstor-kernel-tier-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function summary(name: string, r: GuestRun): void {
  const cases = r.events.filter((e) => e.kind === 'case');
  console.log(
    `[kernel] ${name}: accel=${r.accel} boot=${r.bootSec ?? '?'}s wall=${r.wallSec.toFixed(1)}s exit=${r.exitCode}` +
      cases
        .map((c) => {
          const data = c.data === undefined ? '' : `\n       ${JSON.stringify(c.data).slice(0, 400)}`;
          return `\n  ${c.ok ? 'ok  ' : 'FAIL'} ${((c.ms ?? 0) / 1000).toFixed(1)}s ${c.name}${data}`;
        })
        .join(''),
  );
}

function expectCase(r: GuestRun | undefined, name: string): unknown {
  if (!r) throw new Error('the VM did not run');
  const c = r.events.find((e) => e.kind === 'case' && e.name === name);
  if (!c) {
    throw new Error(
      `the guest reported nothing for "${name}" (exit ${r.exitCode}, timedOut ${r.timedOut}); console tail:\n${r.console.slice(-3000)}`,
    );
  }
  expect(c.error ?? '', c.error).toBe('');
  expect(c.ok).toBe(true);
  return c.data;
}

beforeAll(() => {
  const missing = kernelTierMissing();
  if (missing) throw new Error(`kernel tier cannot run: ${missing}`);
});

describe('Host contract on LinuxHost (real kernel)', () => {
  let run: GuestRun | undefined;
  beforeAll(async () => {
    run = await bootGuest({
      suite: 'contract',
      drives: freshDrives(join(work, 'contract')),
      timeoutMs: 12 * MIN,
    });
    summary('contract', run);
    rmSync(join(work, 'contract'), { recursive: true, force: true });
  });
  for (const c of CONTRACT) it(c.name, () => void expectCase(run, c.name));
});

describe('data-path scenarios (real kernel)', () => {
  let run: GuestRun | undefined;
  let reboot: GuestRun | undefined;
  let drives: DriveSpec[] = [];
  beforeAll(async () => {
    drives = freshDrives(join(work, 'scenarios'));
    run = await bootGuest({ suite: 'all', drives, timeoutMs: 12 * MIN });
    summary('scenarios', run);
    const state = run.events.find((e) => e.kind === 'case' && e.name === 'e1-prepare-reboot' && e.ok)?.data;
    if (state) {
      reboot = await bootGuest({
        suite: 'reboot',
        drives: reordered(drives),
        timeoutMs: 12 * MIN,
        files: { 'state.json': JSON.stringify(state) },
      });
      summary('reboot', reboot);
    }
  });
  it('a: replicaCount=1 on the free tail of an OS drive with partitions in use', () => {
    expectCase(run, 'a-os-drive-tail');
  });
  it('b: RAID1 of a local partition + a remote namespace over nvme-tcp; foreign NQN and wrong secret refused', () => {
    expectCase(run, 'b-two-node-raid1');
  });
  it('c: relocation: add local member, resync, drop remote, disconnect, revoke, wipe, free', () => {
    expectCase(run, 'c-relocation');
  });
  it('d: remote member lost: degraded in bounded time, data intact, rebuilt onto a new member', () => {
    expectCase(run, 'd-remote-lost-rebuild');
  });
  it('f: online grow: partitions, md, xfs_growfs while mounted', () => {
    expectCase(run, 'f-online-grow');
  });
  it('s: NodeStage on three nodes: both members over nvme-tcp, moved (assembled, not created), fenced onto a member node', () => {
    expectCase(run, 's-csi-stage-remote-members');
  });
  it('r: relocation by the controller and the agents: a member added on the staging node, resynced, the leaving one removed, wiped and released', () => {
    expectCase(run, 'r-agent-relocation');
  });
  it('g: crash-and-resume: kill -9 of the relocation driver between every two steps', () => {
    expectCase(reboot, 'g-crash-resume');
  });
  it('g: crash-and-resume: kill -9 of the rebuild driver between every two steps after a lost member', () => {
    expectCase(reboot, 'g2-crash-resume-rebuild');
  });
  it('e: stop + re-assemble after a reboot with changed device names', () => {
    expectCase(run, 'e1-prepare-reboot');
    expectCase(reboot, 'e2-reassemble-after-reboot');
  });
});

// The kernel tier: the Host contract and the data-path scenarios on a real Debian 6.12 kernel in
// qemu, through LinuxHost, and the real `meshstor agent` binary there. Four boots; each case the guest runs is its own vitest test with its
// own time budget (budget.ts: nominal time scaled by how fast the guest booted), so a hung case
// fails by name, its guest is killed and its console log is kept (tier-boot.ts); the boot's later
// cases then fail as not run. No boot happens in a hook: a hook that timed out would leave its
// tests reported as skipped.
// Boot 1: the contract suite. Boot 2: scenarios a, b, b2 (DH-HMAC-CHAP rotation), c, d, f, e1, then s (the CSI node service
// and the agents' export passes of three nodes: stage with remote members, move, fence) and r
// (relocation onto the staging node by ControllerService.relocate() and the agents), rb (a node
// lost for good: rebuilt by the controller's rebuild pass and the agents; guest/agent-rebuild.ts)
// and sf (self-fencing when the attached node is cut off, ADR 0006). Boot 3:
// the same drive images attached in another order (a "reboot": every device name may change) for
// e2, g and g2. Boot 4: a member away and back, caught up from the bitmap (h, and h2 with kill -9
// between every two steps; guest/catch-up.ts), then x (expansion by relocation, guest/expand.ts). Boot 5: `meshstor agent --host linux --state kube`
// in the guest against the control plane and `meshstor controller` on the host (agent.ts,
// guest/agent-binary.ts), k1–k5.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { CONTRACT } from '../../agent/host/test/contract.ts';
import { NODE_CONDITION } from '../../kube/crds.ts';
import { holdsSecret } from '../../kube/redact.ts';
import { until } from '../cluster/kube.ts';
import { AgentBootHost } from './agent.ts';
import { BOOT_BACKSTOP_MS, backstopMs } from './budget.ts';
import { freshDrives, reordered } from './drives.ts';
import { AGENT_CASES, AGENT_DRIVES, AGENT_NODE } from './guest/agent-fixture.ts';
import { type DriveSpec, kernelTierMissing } from './harness.ts';
import { TierBoot } from './tier-boot.ts';

const work = mkdtempSync(join(tmpdir(), 'meshstor-kernel-tier-'));
/** Console logs: kept when any test failed (MESHSTOR_KERNEL_LOGS=dir keeps them there always). */
const logDir = process.env.MESHSTOR_KERNEL_LOGS ?? mkdtempSync(join(tmpdir(), 'meshstor-kernel-logs-'));
mkdirSync(logDir, { recursive: true });
let keepLogs = process.env.MESHSTOR_KERNEL_LOGS !== undefined;
const boots: TierBoot[] = [];
const tierStart = Date.now();

afterAll(() => {
  for (const b of boots) console.log(b.summary());
  console.log(`[kernel] tier wall ${((Date.now() - tierStart) / 1000).toFixed(1)} s`);
  rmSync(work, { recursive: true, force: true });
  if (keepLogs) console.log(`[kernel] console logs kept in ${logDir}`);
  else rmSync(logDir, { recursive: true, force: true });
});

beforeAll(() => {
  const missing = kernelTierMissing();
  if (missing) throw new Error(`kernel tier cannot run: ${missing}`);
});

function boot(name: string, options: ConstructorParameters<typeof TierBoot>[2]): TierBoot {
  const b = new TierBoot(name, logDir, options);
  boots.push(b);
  afterAll(() => b.stop());
  return b;
}

/** A test that waits on the guest: vitest's timeout is only a backstop above the case's budget. */
function guestTest(title: string, caseName: string | undefined, fn: () => Promise<unknown>): void {
  const backstop = caseName === undefined ? BOOT_BACKSTOP_MS : backstopMs(caseName);
  it(
    title,
    async () => {
      onTestFailed(() => {
        keepLogs = true;
      });
      await fn();
    },
    backstop,
  );
}

describe('Host contract on LinuxHost (real kernel)', () => {
  const contract = boot('contract', async () => ({
    suite: 'contract',
    drives: freshDrives(join(work, 'contract')),
  }));
  guestTest('the guest boots (speed measured for the budgets)', undefined, () => contract.booted());
  for (const c of CONTRACT) guestTest(c.name, c.name, () => contract.expectCase(c.name));
});

describe('data-path scenarios (real kernel)', () => {
  let drives: DriveSpec[] = [];
  const scenarios = boot('scenarios', async () => {
    drives = freshDrives(join(work, 'scenarios'));
    return { suite: 'all', drives };
  });
  // the "reboot": boots when boot 2 has powered off, with its images and the layout e1 noted
  const reboot = boot('reboot', async () => {
    await scenarios.finished();
    const e1 = await scenarios.resultOf('e1-prepare-reboot');
    if (!e1?.ok) throw new Error('cannot boot the reboot suite: e1-prepare-reboot did not pass in boot 2');
    return { suite: 'reboot', drives: reordered(drives), files: { 'state.json': JSON.stringify(e1.data) } };
  });
  const scenario = (title: string, name: string, b = scenarios) =>
    guestTest(title, name, () => b.expectCase(name));

  guestTest('the guest boots (speed measured for the budgets)', undefined, () => scenarios.booted());
  scenario('a: replicaCount=1 on the free tail of an OS drive with partitions in use', 'a-os-drive-tail');
  scenario(
    'b: RAID1 of a local partition + a remote namespace over nvme-tcp; foreign NQN and wrong secret refused',
    'b-two-node-raid1',
  );
  guestTest(
    'b2: DH-HMAC-CHAP keys rotated on the live remote leg under I/O (target first, one key per step), old keys refused; no secret on any command line, in the kernel log or on the console',
    'b2-dhchap-rotation',
    async () => {
      await scenarios.expectCase('b2-dhchap-rotation');
      expect(holdsSecret(readFileSync(scenarios.consoleLog, 'utf8')), 'a secret on the console').toBe(false);
    },
  );
  scenario(
    'c: relocation: add local member, resync, drop remote, disconnect, revoke, wipe, free',
    'c-relocation',
  );
  scenario(
    'd: remote member lost: degraded in bounded time, data intact, rebuilt onto a new member',
    'd-remote-lost-rebuild',
  );
  scenario('f: online grow: partitions, md, xfs_growfs while mounted', 'f-online-grow');
  scenario('e1: arrays stopped and their layout noted before the "reboot"', 'e1-prepare-reboot');
  scenario(
    's: NodeStage on three nodes: both members over nvme-tcp, moved (assembled, not created), fenced onto a member node',
    's-csi-stage-remote-members',
  );
  scenario(
    'r: relocation by the controller and the agents: a member added on the staging node, resynced, the leaving one removed, wiped and released',
    'r-agent-relocation',
  );
  guestTest(
    'rb: node gone for good: the controller rebuilds its member onto another node over nvme-tcp (resync capped), sha256 on the array and the new copy; the old member is wiped and released when the node returns',
    'rb-agent-rebuild',
    async () => {
      const rb = (await scenarios.expectCase('rb-agent-rebuild')) as { rebuild: unknown; reasons: string[] };
      console.log(`[kernel] rebuild ${JSON.stringify(rb.rebuild)} ${rb.reasons.join(' -> ')}`);
    },
  );
  scenario(
    'sf: split brain: the attached node cut off from the apiserver and its peer while an O_DIRECT+fsync writer runs; it fences itself, the volume moves after its right ended; every acknowledged block is on the new holder, the writer saw errors',
    'sf-self-fence-split-brain',
  );
  guestTest('the guest boots again with the drives in another order', undefined, () => reboot.booted());
  guestTest(
    'e: stop + re-assemble after a reboot with changed device names',
    'e2-reassemble-after-reboot',
    async () => {
      const e1 = await scenarios.resultOf('e1-prepare-reboot');
      expect(e1?.error ?? '', e1?.error).toBe('');
      expect(e1?.ok).toBe(true);
      await reboot.expectCase('e2-reassemble-after-reboot');
    },
  );
  scenario(
    'g: crash-and-resume: kill -9 of the relocation driver between every two steps',
    'g-crash-resume',
    reboot,
  );
  scenario(
    'g: crash-and-resume: kill -9 of the rebuild driver between every two steps after a lost member',
    'g2-crash-resume-rebuild',
    reboot,
  );
});

describe('snapshot by member detach and restore (real kernel)', () => {
  const snapshot = boot('snapshot', async () => ({
    suite: 'snapshot',
    drives: freshDrives(join(work, 'snapshot')),
  }));
  guestTest('the guest boots (speed measured for the budgets)', undefined, () => snapshot.booted());
  guestTest(
    'n: snapshot (member added over nvme-tcp, resynced, detached under fsfreeze), more writes, restore: the restored volume holds exactly the first files, the source both',
    'n-snapshot-restore',
    async () => {
      const n = (await snapshot.expectCase('n-snapshot-restore')) as { snapshotMs: number };
      console.log(`[kernel] snapshot of a 304 MiB volume took ${n.snapshotMs} ms`);
    },
  );
});

describe('bitmap catch-up of a member that was away (real kernel)', () => {
  // a 1 GiB volume: md's bitmap chunk is 64 MiB, so a few MiB written away are a small share of it
  // the same boot then runs x (expansion by relocation, guest/expand.ts) on the N1–N3 drives,
  // which h and h2 leave untouched: a separate suite, so it runs even when h or h2 failed
  const catchUp = boot('catch-up', async () => ({
    suite: 'catchup,expand',
    drives: freshDrives(join(work, 'catch-up'), 2 * 2 ** 30),
  }));
  guestTest('the guest boots (speed measured for the budgets)', undefined, () => catchUp.booted());
  guestTest(
    'h: a member back from a reboot is re-added and resyncs the dirty bitmap chunks only, not the volume; data on both legs',
    'h-catch-up',
    async () => {
      const h = (await catchUp.expectCase('h-catch-up')) as { resyncedBytes: number; volumeBytes: number };
      console.log(`[kernel] catch-up resynced ${h.resyncedBytes} of ${h.volumeBytes} bytes`);
      expect(h.resyncedBytes).toBeLessThan(h.volumeBytes / 4);
    },
  );
  guestTest(
    'h2: crash-and-resume: kill -9 of the catch-up driver between every two steps',
    'h2-crash-resume-catch-up',
    () => catchUp.expectCase('h2-crash-resume-catch-up'),
  );
  guestTest(
    'x: expansion when growth in place is blocked: the member moves to a larger extent (ABORTED meanwhile), then md and XFS grow while mounted; checksums intact',
    'x-expand-by-relocation',
    () => catchUp.expectCase('x-expand-by-relocation'),
  );
});

describe('meshstor agent --host linux: the real binary on the VM against the control plane (real kernel)', () => {
  const host = new AgentBootHost();
  // registered before the boot's own afterAll, so it runs after the guest is gone (hooks stack)
  afterAll(async () => {
    await host.stop(keepLogs ? logDir : undefined);
    console.log(host.summary());
  });
  const agent = boot('agent', () => host.start(work));
  guestTest(
    'the control plane and meshstor controller start on the host; the guest boots with a NIC',
    undefined,
    () => agent.booted(),
  );
  guestTest(
    'k1: the agent takes its identity from the Node, manages the empty drives, skips the OS drive, and publishes its MeshStorNode',
    AGENT_CASES.serves,
    async () => {
      const seen = (await agent.expectCase(AGENT_CASES.serves)) as { hostNqn: string };
      const n = await host.node();
      expect(n.spec.topology?.zone).toBe(AGENT_NODE.zone);
      expect(n.status?.nvmeofAddress?.address).toBe(AGENT_NODE.internalIp);
      expect(n.status?.hostNQN).toBe(seen.hostNqn);
      expect(n.status?.hostNQN).toMatch(/^nqn\.2014-08\.org\.nvmexpress:uuid:/);
      expect(n.status?.drives?.map((d) => d.id).sort()).toEqual([...AGENT_DRIVES.data].sort());
      const skipped = n.status?.skippedDrives?.find((d) => d.id === AGENT_DRIVES.os);
      expect(skipped?.reason).toMatch(/partition/i);
      const cond = (type: string) => n.status?.conditions?.find((c) => c.type === type);
      expect(cond(NODE_CONDITION.KernelModulesLoaded)?.status).toBe('True');
      expect(cond(NODE_CONDITION.Ready)?.status).toBe('True');
    },
  );
  guestTest(
    "k2: CreateVolume through meshstor controller places the replica on the guest's drive; NodeStage through the agent's socket; data written and re-read",
    AGENT_CASES.stage,
    async () => {
      await host.createVolume();
      const placed = await host.volume();
      expect(placed.spec.replicas?.map((r) => r.node)).toEqual([AGENT_NODE.name]);
      expect(AGENT_DRIVES.data).toContain(placed.spec.replicas?.[0]?.drive);
      await agent.expectCase(AGENT_CASES.stage);
      const staged = await host.volume();
      expect(staged.status?.arrayUUID).toBeTruthy();
      expect(staged.status?.members?.map((m) => m.state)).toEqual(['InSync']);
    },
  );
  guestTest(
    'k3: SIGTERM to the agent and a restart leave the staged array and its mount untouched; the stop warns of nothing',
    AGENT_CASES.restart,
    async () => {
      await agent.expectCase(AGENT_CASES.restart);
      // the restarted agent was given --os-drive-tail for the OS drive: its heartbeat lists it
      const n = await until('the OS drive in the MeshStorNode', 60_000, async () => {
        const n = await host.node();
        return n.status?.drives?.some((d) => d.id === AGENT_DRIVES.os) ? n : undefined;
      });
      expect(n.status?.skippedDrives ?? []).toEqual([]);
    },
  );
  guestTest('k4: NodeUnstage stops the array and keeps the partition', AGENT_CASES.unstage, () =>
    agent.expectCase(AGENT_CASES.unstage),
  );
  guestTest(
    'k5: DeleteVolume through meshstor controller: the agent wipes the partition, then the record goes',
    AGENT_CASES.wiped,
    async () => {
      await host.deleteVolume();
      await agent.expectCase(AGENT_CASES.wiped);
      await until('the MeshStorVolume to go (finalizer released after the wipe)', 60_000, async () =>
        (await host.volumeGone()) ? true : undefined,
      );
      const n = await until('no MeshStor partition in the MeshStorNode', 60_000, async () => {
        const n = await host.node();
        return n.status?.drives?.every((d) => (d.partitions ?? []).every((p) => !p.owner)) ? n : undefined;
      });
      // the OS drive's own partitions are reported as foreign and left as they were
      const os = n.status?.drives?.find((d) => d.id === AGENT_DRIVES.os);
      expect(os?.partitions?.map((p) => p.label)).toEqual(['EFI', 'root']);
    },
  );
});

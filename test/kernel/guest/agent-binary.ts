// Inside the VM, the agent boot: the real binary `meshstor agent --host linux --state kube` (a
// child process, as the DaemonSet runs it) on this VM's drives against the control plane on the
// host (reached at 10.0.2.2 over qemu's user network). The host (test/kernel/agent.ts) checks what
// the agent publishes and creates and deletes the volume through `meshstor controller` between the
// cases; the guest plays kubelet over the agent's CSI socket. The agent's log is copied to the
// console (lines starting `agent| `), so the console log has it.
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { exec } from '../../../agent/host/exec.ts';
import { mountCap } from '../../../csi/test/requests.ts';
import { httpStatusOf, loadKubeConfig } from '../../../kube/client.ts';
import { GROUP, type MeshStorNode, type MeshStorVolume, PLURAL, VERSION } from '../../../kube/crds.ts';
import { csiNodeClient } from '../../support/csi-client.ts';
import { MeshstorProcess } from '../../support/meshstor-process.ts';
import {
  AGENT_CASES,
  AGENT_DRIVES,
  AGENT_METRICS_PORT,
  AGENT_NODE,
  AGENT_VOLUME,
  GUEST_KUBECONFIG,
  GUEST_PATHS,
} from './agent-fixture.ts';
import { diskBySerial } from './env.ts';
import { poll, type Scenario, verify, writeRandom } from './scenarios.ts';

/** How long the guest waits for the host's part (CreateVolume, DeleteVolume) between its cases. */
const HOST_STEP_MS = 5 * 60_000;
/** Node 24 loads @kubernetes/client-node and gRPC slowly under TCG: the agent's start may take a while. */
const START_MS = 4 * 60_000;
const RESYNC_SECONDS = 2;

const kubeconfig = `/project/${GUEST_KUBECONFIG}`;
const args = (extra: string[] = []) => [
  'agent',
  '--host',
  'linux',
  '--state',
  'kube',
  '--node',
  AGENT_NODE.name,
  '--kubeconfig',
  kubeconfig,
  '--csi-socket',
  GUEST_PATHS.socket,
  '--nvme-dir',
  GUEST_PATHS.nvmeDir,
  '--kubelet-dir',
  GUEST_PATHS.kubeletDir,
  // no kubelet runs in this VM: registration with it is off, so a stop or start warns of nothing
  '--registration-dir=',
  '--metrics-port',
  String(AGENT_METRICS_PORT),
  '--resync-seconds',
  String(RESYNC_SECONDS),
  ...extra,
];

/** Copies the agent's log to the console line by line, prefixed, so it lands in the console log. */
function consoleCopy(prefix: string): (chunk: string) => void {
  let partial = '';
  return (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) process.stdout.write(`${prefix}${l}\n`);
  };
}

const ctx: {
  agent?: MeshstorProcess;
  volume?: MeshStorVolume;
  sums: Map<string, string>;
  starts: number;
} = { sums: new Map(), starts: 0 };

function startAgent(extra: string[] = []): MeshstorProcess {
  ctx.starts++;
  ctx.agent = new MeshstorProcess(args(extra), consoleCopy(`agent| [${ctx.starts}] `));
  return ctx.agent;
}

function agent(): MeshstorProcess {
  assert.ok(ctx.agent, 'the agent runs');
  return ctx.agent;
}

/** The agent's log lines at pino's warn level or above. */
function warnings(p: MeshstorProcess): string[] {
  return p.log
    .split('\n')
    .filter((l) => l.startsWith('{') && (JSON.parse(l) as { level: number }).level >= 40);
}

const sh = async (cmd: string, a: string[]) => (await exec(cmd, a, { timeoutMs: 60_000 })).stdout;

/**
 * What staging left on this node: the mount (its id says whether it was ever re-made) and the array
 * (its UUID says whether it was ever re-created).
 */
async function stagedState(): Promise<{ mountId: string; source: string; uuid: string }> {
  const line = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .find((l) => l.split(' ')[4] === GUEST_PATHS.staging);
  assert.ok(line, `${GUEST_PATHS.staging} is mounted`);
  const f = line.split(' ');
  const source = f[f.indexOf('-') + 2] ?? '';
  assert.match(source, /^\/dev\/md/, `${GUEST_PATHS.staging} is mounted from an md array`);
  const detail = await sh('mdadm', ['--detail', '--export', source]);
  const uuid = /^MD_UUID=(.+)$/m.exec(detail)?.[1] ?? '';
  assert.ok(uuid, `mdadm --detail --export ${source} names its UUID`);
  return { mountId: f[0] ?? '', source, uuid };
}

/** /proc/mdstat without its "unused devices" trailer. */
async function mdstat(): Promise<string> {
  return (await readFile('/proc/mdstat', 'utf8')).replace(/unused devices:.*\n?/, '').trim();
}

/** The number of answered NodeStageVolume calls with this code, from the agent's /metrics. */
async function stageCalls(code: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${AGENT_METRICS_PORT}/metrics`);
  assert.equal(res.status, 200, '/metrics answers');
  const text = await res.text();
  const m = new RegExp(
    `^meshstor_csi_rpc_duration_seconds_count\\{[^}]*method="NodeStageVolume"[^}]*code="${code}"[^}]*\\} (\\d+)`,
    'm',
  ).exec(text);
  return Number(m?.[1] ?? 0);
}

/** The guest reads the apiserver with the agent's kubeconfig: what the host's controller did. */
const customApi = () => loadKubeConfig(kubeconfig).makeApiClient(CustomObjectsApi);

/** The MeshStorVolume, or undefined while it does not exist. */
async function readVolume(): Promise<MeshStorVolume | undefined> {
  const ref = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorVolume, name: AGENT_VOLUME };
  try {
    return (await customApi().getClusterCustomObject(ref)) as MeshStorVolume;
  } catch (e) {
    if (httpStatusOf(e) === 404) return undefined;
    throw e;
  }
}

/** Whether this node's MeshStorNode still reports a partition of the volume. */
async function reportsPartition(): Promise<boolean> {
  const ref = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorNode, name: AGENT_NODE.name };
  const n = (await customApi().getClusterCustomObject(ref)) as MeshStorNode;
  return (n.status?.drives ?? []).some((d) => d.partitions?.some((p) => p.owner?.volume === AGENT_VOLUME));
}

const stageRequest = (volumeId: string) => ({
  volume_id: volumeId,
  staging_target_path: GUEST_PATHS.staging,
  volume_capability: mountCap,
  volume_context: {},
});

const k1_serves: Scenario = {
  name: AGENT_CASES.serves,
  async run() {
    await mkdir(GUEST_PATHS.socket.replace(/\/[^/]+$/, ''), { recursive: true });
    await mkdir(GUEST_PATHS.staging, { recursive: true });
    const t0 = Date.now();
    const a = startAgent();
    await a.waitFor('serving', START_MS);
    const startMs = Date.now() - t0;
    const hostNqn = (await readFile(`${GUEST_PATHS.nvmeDir}/hostnqn`, 'utf8')).trim();
    assert.ok(a.logged('host NQN created', { hostNqn }), 'the agent says it created the host NQN');
    const managed = a.lines('drives managed')[0]?.drives as { id: string; use: string }[] | undefined;
    assert.deepEqual(
      managed?.map((d) => d.id).sort(),
      [...AGENT_DRIVES.data].sort(),
      'the agent manages the empty data drives only',
    );
    assert.ok(a.logged('drive skipped', { id: AGENT_DRIVES.os }), 'the agent skips the OS drive');
    return { hostNqn, startMs };
  },
};

/** Waits for the host's controller to place the volume here, stages it, writes and re-reads data. */
const k2_stage: Scenario = {
  name: AGENT_CASES.stage,
  async run() {
    const volume = await poll(
      async () => {
        const v = await readVolume();
        return v?.spec.replicas?.some((r) => r.node === AGENT_NODE.name) ? v : undefined;
      },
      `the host's controller to create ${AGENT_VOLUME} with a replica here`,
      HOST_STEP_MS,
    );
    ctx.volume = volume;
    const client = csiNodeClient(GUEST_PATHS.socket);
    try {
      const t0 = Date.now();
      await client.call('NodeStageVolume', stageRequest(AGENT_VOLUME));
      const stageMs = Date.now() - t0;
      const staged = await stagedState();
      const fs = (await sh('findmnt', ['-n', '-o', 'FSTYPE', GUEST_PATHS.staging])).trim();
      assert.equal(fs, 'xfs', 'the staged volume is XFS');
      ctx.sums.set('data', await writeRandom(`${GUEST_PATHS.staging}/data`, 16, true));
      await verify(GUEST_PATHS.staging, ctx.sums);
      assert.equal(await stageCalls('OK'), 1, "the agent's /metrics counted the NodeStageVolume");
      return { stageMs, array: staged.source, uuid: staged.uuid, replica: volume.spec.replicas?.[0] };
    } finally {
      client.close();
    }
  },
};

/**
 * SIGTERM to the idle agent, then a new agent: the array and the mount are the same ones (same md
 * UUID, same mount id: never stopped, re-assembled or re-mounted), kubelet's repeated NodeStage
 * answers OK without touching them, and the data reads back from the drive.
 */
const k3_restart: Scenario = {
  name: AGENT_CASES.restart,
  async run() {
    const before = await stagedState();
    const code = await agent().stop();
    assert.equal(code, 0, 'the agent exits 0 on SIGTERM');
    assert.ok(agent().logged('stopping', { signal: 'SIGTERM' }), 'the agent logged its stop');
    // its pass runs every 2 s, so the stop may cut one short: that is no failure to warn about
    assert.deepEqual(warnings(agent()), [], 'the first agent logged no warning, its stop included');
    assert.deepEqual(await stagedState(), before, 'the stopped agent left the array and the mount alone');
    const t0 = Date.now();
    // the restarted agent is also allowed the OS drive's free tail: it now manages three drives
    const a = startAgent(['--os-drive-tail', `serial:${AGENT_DRIVES.os}`]);
    await a.waitFor('serving', START_MS);
    const restartMs = Date.now() - t0;
    // let its loop run a few passes over the staged volume
    await new Promise((r) => setTimeout(r, 3 * RESYNC_SECONDS * 1000));
    assert.deepEqual(
      await stagedState(),
      before,
      "the new agent's passes left the array and the mount alone",
    );
    const client = csiNodeClient(GUEST_PATHS.socket);
    try {
      await client.call('NodeStageVolume', stageRequest(AGENT_VOLUME));
    } finally {
      client.close();
    }
    assert.deepEqual(await stagedState(), before, 'a repeated NodeStage left the array and the mount alone');
    await verify(GUEST_PATHS.staging, ctx.sums);
    assert.equal(a.lines('host NQN created').length, 0, 'the host NQN persisted: not created again');
    const managed = a.lines('drives managed')[0]?.drives as { id: string; use: string }[] | undefined;
    assert.deepEqual(
      managed?.find((d) => d.id === AGENT_DRIVES.os)?.use,
      'free-space',
      "with --os-drive-tail the OS drive's free space is taken",
    );
    return { restartMs, array: before.source, mountId: before.mountId };
  },
};

const k4_unstage: Scenario = {
  name: AGENT_CASES.unstage,
  async run() {
    const client = csiNodeClient(GUEST_PATHS.socket);
    try {
      await client.call('NodeUnstageVolume', {
        volume_id: AGENT_VOLUME,
        staging_target_path: GUEST_PATHS.staging,
      });
    } finally {
      client.close();
    }
    const mounted = (await readFile('/proc/self/mountinfo', 'utf8')).includes(` ${GUEST_PATHS.staging} `);
    assert.equal(mounted, false, 'unstaged: not mounted');
    assert.doesNotMatch(await mdstat(), /^md/m, 'unstaged: the array is stopped');
    const partitions = await meshstorPartitions();
    assert.equal(partitions.length, 1, `unstaging keeps the replica's partition (${partitions.join(', ')})`);
    return { partitions };
  },
};

/** MeshStor's partitions on the data drives (by GPT name), as sfdisk reads them from the drives. */
async function meshstorPartitions(): Promise<string[]> {
  const names: string[] = [];
  for (const serial of AGENT_DRIVES.data) {
    const disk = await diskBySerial(serial);
    const out = await exec('sfdisk', ['--json', disk], { okCodes: [0, 1], timeoutMs: 60_000 });
    if (!out.stdout.trim()) continue; // no partition table
    const t = JSON.parse(out.stdout) as { partitiontable: { partitions?: { name?: string }[] } };
    for (const p of t.partitiontable.partitions ?? []) names.push(`${serial}:${p.name ?? ''}`);
  }
  return names;
}

/** The host deleted the volume through the controller: the agent wipes its partition, then stops. */
const k5_wiped: Scenario = {
  name: AGENT_CASES.wiped,
  async run() {
    const replica = ctx.volume?.spec.replicas?.[0];
    assert.ok(replica, 'k2 saw the replica');
    const a = agent();
    await poll(
      async () => (a.logged('wiped') ? true : undefined),
      `the agent to wipe ${AGENT_VOLUME}'s partition after the host deleted the volume`,
      HOST_STEP_MS,
    );
    const left = await meshstorPartitions();
    assert.deepEqual(left, [], `no partition left on the data drives (${left.join(', ')})`);
    // the agent reports the wipe in its MeshStorNode; only then does the controller drop the record
    await poll(
      async () => (!(await reportsPartition()) && (await readVolume()) === undefined ? true : undefined),
      'the MeshStorNode to report the wipe and the controller to drop the volume',
      HOST_STEP_MS,
    );
    assert.equal(await a.stop(), 0, 'the agent exits 0 on SIGTERM');
    assert.deepEqual(warnings(a), [], 'the restarted agent logged no warning');
    return { wiped: a.lines('wiped')[0]?.partitions };
  },
};

export const AGENT_BINARY: Scenario[] = [k1_serves, k2_stage, k3_restart, k4_unstage, k5_wiped];

/** Stops the agent if a case failed with it running (so the guest can power off). */
export async function stopAgent(): Promise<void> {
  if (ctx.agent && ctx.agent.proc.exitCode === null) await ctx.agent.stop();
}

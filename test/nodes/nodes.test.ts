// The nodes tier: real Kubernetes nodes. Three qemu guests, each with its own kernel, kubelet,
// containerd and NVMe drives (one also carries MeshStor's controller and extender), join a
// control plane on the host; MeshStor is installed by its Helm
// chart from its image; pods write data, get drained and move, and the data follows them over
// NVMe/TCP. The sha256 of the written data is checked at every step. Scenarios run in order on one
// cluster (booting three TCG guests costs minutes). A failure names the consoles and logs to read.
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { MeshStorNode, MeshStorVolume } from '../../kube/crds.ts';
import { NAMESPACE, NODES, NodesCluster, waitFor } from './cluster.ts';
import { CI_LANES, CI_SKIP, CI_SPECS, runE2E, runE2ELanes, WIDE_FOCUS } from './e2e.ts';
import { nodesTierMissing } from './paths.ts';
import { blockPod, checkLines, claim, readOnlyPod, writerStatefulSet } from './workload.ts';

const cluster = new NodesCluster({ dir: process.env.MESHSTOR_NODES_DIR });
let failed = false;
const timings: string[] = [];
const note = (what: string, ms: number) => {
  timings.push(`${what}: ${(ms / 1000).toFixed(1)} s`);
  console.log(`[nodes] ${what}: ${(ms / 1000).toFixed(1)} s`);
};

beforeAll(() => {
  const missing = nodesTierMissing();
  if (missing) throw new Error(`nodes tier cannot run: ${missing}`);
});

afterAll(async () => {
  console.log(`[nodes] timings:\n  ${timings.join('\n  ')}`);
  await cluster.stop();
  if (failed) console.log(`[nodes] a test failed; ${cluster.where()}`);
}, 120_000);

function watchFailure(): void {
  onTestFailed(() => {
    failed = true;
  });
}

interface PodJson {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: { phase?: string; containerStatuses?: { ready: boolean; restartCount: number }[] };
}

function pod(name: string): PodJson | undefined {
  try {
    return cluster.kubectlJson<PodJson>(['get', 'pod', name, '-n', 'default']);
  } catch {
    return undefined;
  }
}

async function podRunning(name: string, timeoutMs: number, notOn?: string): Promise<PodJson> {
  return waitFor(`pod ${name} Running${notOn ? ` off ${notOn}` : ''}`, timeoutMs, async () => {
    const p = pod(name);
    if (!p || p.metadata.deletionTimestamp || p.status.phase !== 'Running') return undefined;
    if (notOn && p.spec.nodeName === notOn) return undefined;
    return p.status.containerStatuses?.every((c) => c.ready) ? p : undefined;
  });
}

function volumeOf(claim: string): MeshStorVolume {
  const pvc = cluster.kubectlJson<{ spec: { volumeName?: string } }>(['get', 'pvc', claim, '-n', 'default']);
  if (!pvc.spec.volumeName) throw new Error(`claim ${claim} is not bound`);
  return cluster.kubectlJson<MeshStorVolume>(['get', 'meshstorvolumes.meshstor.io', pvc.spec.volumeName]);
}

const logFiles = () => [...cluster.guests.values()].map((g) => g.logs);

/** The `wrote`/`found` lines of a writer pod once there are `count` of them (one per start). */
async function check(podName: string, count: number, timeoutMs: number) {
  return waitFor(`${count} data checks from ${podName}`, timeoutMs, async () => {
    const lines = checkLines(logFiles(), `default/${podName}`).filter(
      (l) => l.kind === 'wrote' || l.kind === 'found',
    );
    return lines.length >= count ? lines : undefined;
  });
}

/** The first MSCHECK line of `kind` from a pod. */
async function line(podName: string, kind: string, timeoutMs: number, after = 0) {
  return waitFor(
    `a "${kind}" line from ${podName}`,
    timeoutMs,
    async () => checkLines(logFiles(), `default/${podName}`).filter((l) => l.kind === kind)[after],
  );
}

/** Deletes the agent pod on `node` at once (no grace): the DaemonSet starts a new one. */
function killAgent(node: string): string {
  const pods = cluster.kubectlJson<{ items: PodJson[] }>([
    'get',
    'pods',
    '-n',
    NAMESPACE,
    '-l',
    'app.kubernetes.io/component=agent',
    '--field-selector',
    `spec.nodeName=${node}`,
  ]);
  const victim = pods.items[0]?.metadata.name;
  if (!victim) throw new Error(`no agent pod on ${node}`);
  cluster.kubectl(['delete', 'pod', '-n', NAMESPACE, victim, '--grace-period=0', '--force', '--wait=false']);
  return victim;
}

function inSyncOn(v: MeshStorVolume, node: string): boolean {
  const ready = v.status?.conditions?.find((c) => c.type === 'Ready');
  const members = v.status?.members ?? [];
  return (
    ready?.reason === 'InSync' &&
    members.some((m) => m.node === node && m.state === 'InSync') &&
    members.filter((m) => m.state === 'InSync').length === v.spec.replicaCount
  );
}

async function extenderCalls(): Promise<number> {
  const res = await fetch(cluster.extenderMetricsUrl);
  const text = await res.text();
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^meshstor_extender_request_duration_seconds_count\{[^}]*\}\s+(\d+)/.exec(line);
    if (m) n += Number(m[1]);
  }
  return n;
}

describe('real nodes: kubelet + containerd in VMs, MeshStor installed by its chart', () => {
  it(
    'boots the control plane and three storage nodes that go Ready',
    async () => {
      watchFailure();
      await cluster.start();
      note('guest root image (cached by content)', cluster.times.root ?? 0);
      note('three nodes Ready after qemu start', cluster.times.nodesReady ?? 0);
      expect(NODES.every((n) => cluster.nodeReady(n))).toBe(true);
    },
    15 * 60_000,
  );

  it(
    'installs MeshStor with helm: agents on every node publish their drives, controller and extender ready',
    async () => {
      watchFailure();
      const t0 = Date.now();
      cluster.helmInstall();
      const nodes = await waitFor('three MeshStorNodes with drives', 10 * 60_000, async () => {
        const list = cluster.kubectlJson<{ items: MeshStorNode[] }>(['get', 'meshstornodes.meshstor.io']);
        const ready = list.items.filter((n) =>
          n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === 3 && ready.every((n) => (n.status?.driveCount ?? 0) >= 3)
          ? list.items
          : undefined;
      });
      note('helm install → three agents reporting', Date.now() - t0);
      for (const n of nodes) {
        // two blank drives and the OS drive's free tail (its first partition is never touched)
        expect(n.status?.driveCount).toBe(3);
        expect(n.status?.freeBytes ?? 0).toBeGreaterThan(11 * 1024 ** 3); // 3 × 4 GiB less the OS partition
      }
      await waitFor('controller and extender pods ready', 5 * 60_000, async () => {
        const pods = cluster.kubectlJson<{ items: PodJson[] }>(['get', 'pods', '-n', NAMESPACE]);
        const ready = (prefix: string) =>
          pods.items.some(
            (p) => p.metadata.name.startsWith(prefix) && p.status.containerStatuses?.every((c) => c.ready),
          );
        return ready('meshstor-controller') && ready('meshstor-extender') ? true : undefined;
      });
      note('helm install → controller and extender ready', Date.now() - t0);
    },
    15 * 60_000,
  );

  let dbNode = '';
  let dbSha = '';
  let soloNode = '';
  it(
    '1. a StatefulSet with a replicaCount 2 claim: first copy on the pod node, extender in the path',
    async () => {
      watchFailure();
      const before = await extenderCalls();
      const t0 = Date.now();
      cluster.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify(writerStatefulSet('db', 'meshstor-replicated', 320, 8)),
      );
      const p = await podRunning('db-0', 10 * 60_000);
      note('scenario 1: StatefulSet created → pod Running', Date.now() - t0);
      dbNode = p.spec.nodeName as string;
      const [wrote] = await check('db-0', 1, 3 * 60_000);
      expect(wrote?.kind).toBe('wrote');
      dbSha = wrote?.values[0] as string;
      expect(dbSha).toMatch(/^[0-9a-f]{64}$/);
      const v = volumeOf('data-db-0');
      expect(v.spec.replicas?.length).toBe(2);
      expect(v.spec.replicas?.some((r) => r.node === dbNode)).toBe(true);
      expect(new Set(v.spec.replicas?.map((r) => r.node)).size).toBe(2);
      expect(await extenderCalls()).toBeGreaterThan(before);
    },
    15 * 60_000,
  );

  it(
    '2. drain the pod node: the pod runs elsewhere at once over NVMe/TCP, then a copy relocates to it',
    async () => {
      watchFailure();
      const v0 = volumeOf('data-db-0');
      const other = v0.spec.replicas?.map((r) => r.node).find((n) => n !== dbNode) as string;
      // the other copy's node is cordoned, so the pod must land where no copy is
      cluster.kubectl(['cordon', other]);
      const t0 = Date.now();
      cluster.drain(dbNode);
      const p = await podRunning('db-0', 10 * 60_000, dbNode);
      const running = Date.now() - t0;
      note('scenario 2: drain → pod Running on the new node (remote copies)', running);
      const target = p.spec.nodeName as string;
      expect(target).not.toBe(dbNode);
      expect(target).not.toBe(other);
      const lines = await check('db-0', 2, 3 * 60_000);
      expect(lines[1]?.kind).toBe('found');
      expect(lines[1]?.values).toEqual([dbSha, dbSha]);
      await waitFor('a copy on the new node, in sync', 20 * 60_000, async () =>
        inSyncOn(volumeOf('data-db-0'), target) ? true : undefined,
      );
      note('scenario 2: drain → relocation done (InSync on the new node)', Date.now() - t0);
      cluster.kubectl(['uncordon', other, dbNode]);
      dbNode = target;
    },
    30 * 60_000,
  );

  it(
    '3. replicaCount 1: drain, the pod moves, its single partition follows, nothing lost',
    async () => {
      watchFailure();
      cluster.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify(writerStatefulSet('solo', 'meshstor-local', 320, 8)),
      );
      const p = await podRunning('solo-0', 10 * 60_000);
      const from = p.spec.nodeName as string;
      const [wrote] = await check('solo-0', 1, 3 * 60_000);
      expect(wrote?.kind).toBe('wrote');
      const sha = wrote?.values[0] as string;
      // The copy goes on the pod's node when the controller sees that node schedulable and its
      // agent reporting. Right after scenario 2's uncordon its view can lag the scheduler's by
      // seconds: then the copy lands elsewhere, the pod uses it over NVMe/TCP, and it follows the
      // pod (the promise); the drain waits for that. Read mid-move, the record lists both the
      // copy and its destination on the pod's node (nodes21: ['node3', 'node1']).
      const placed = volumeOf('data-solo-0').spec.replicas?.map((r) => r.node) ?? [];
      if (placed.length !== 1 || placed[0] !== from) {
        const t = Date.now();
        await waitFor(`the single copy following the pod to ${from}`, 20 * 60_000, async () => {
          const v = volumeOf('data-solo-0');
          return inSyncOn(v, from) && v.spec.replicas?.every((r) => r.node === from) ? true : undefined;
        });
        note(`scenario 3: the copy (${placed.join(' → ')}) followed the pod to ${from}`, Date.now() - t);
      }
      const t0 = Date.now();
      cluster.drain(from);
      const moved = await podRunning('solo-0', 10 * 60_000, from);
      note('scenario 3: drain → pod Running on the new node (its only copy remote)', Date.now() - t0);
      const lines = await check('solo-0', 2, 3 * 60_000);
      expect(lines[1]?.kind).toBe('found');
      expect(lines[1]?.values).toEqual([sha, sha]);
      const to = moved.spec.nodeName as string;
      // 6. the destination's agent is killed while the copy is under way; its DaemonSet restarts
      // it and the relocation resumes from the step the record names
      const step = await waitFor(
        'the relocation under way',
        10 * 60_000,
        async () => volumeOf('data-solo-0').status?.relocation?.step,
      );
      const killed = killAgent(to);
      note(`scenario 6: agent ${killed} on ${to} killed during relocation step "${step}"`, Date.now() - t0);
      await waitFor('the single copy on the new node', 20 * 60_000, async () => {
        const v = volumeOf('data-solo-0');
        return inSyncOn(v, to) && v.spec.replicas?.every((r) => r.node === to) ? true : undefined;
      });
      note('scenario 3: drain → the single copy moved (the agent killed on the way)', Date.now() - t0);
      cluster.kubectl(['uncordon', from]);
      soloNode = to;
    },
    30 * 60_000,
  );

  it(
    '4. online expansion of a mounted volume through external-resizer and kubelet, while the pod writes',
    async () => {
      watchFailure();
      const before = await line('db-0', 'size', 60_000);
      const t0 = Date.now();
      cluster.kubectl([
        'patch',
        'pvc',
        'data-db-0',
        '-n',
        'default',
        '-p',
        '{"spec":{"resources":{"requests":{"storage":"448Mi"}}}}',
      ]);
      await waitFor('the claim at 448Mi', 10 * 60_000, async () => {
        const pvc = cluster.kubectlJson<{ status: { capacity?: { storage?: string } } }>([
          'get',
          'pvc',
          'data-db-0',
          '-n',
          'default',
        ]);
        return pvc.status.capacity?.storage === '448Mi' ? true : undefined;
      });
      const grown = await waitFor('the pod to see a bigger file system', 5 * 60_000, async () => {
        const sizes = checkLines(logFiles(), 'default/db-0').filter((l) => l.kind === 'size');
        const last = sizes.at(-1);
        return last && Number(last.values[0]) > Number(before.values[0]) ? last : undefined;
      });
      note('scenario 4: resize request → file system grown in the running pod', Date.now() - t0);
      expect(Number(grown.values[0])).toBeGreaterThan(Number(before.values[0]) + 100 * 1024);
      expect(pod('db-0')?.status.containerStatuses?.[0]?.restartCount).toBe(0);
    },
    20 * 60_000,
  );

  it(
    '5. a raw block volume and a read-only mount, through kubelet',
    async () => {
      watchFailure();
      const t0 = Date.now();
      cluster.kubectl(['apply', '-f', '-'], JSON.stringify(claim('raw', 'meshstor-replicated', 64, 'Block')));
      cluster.kubectl(['apply', '-f', '-'], JSON.stringify(blockPod('raw', 'raw', 8)));
      await podRunning('raw', 10 * 60_000);
      const block = await line('raw', 'block', 3 * 60_000);
      expect(block.values[0]).toMatch(/^[0-9a-f]{64}$/);
      expect(block.values[1]).toBe(block.values[0]);
      note('scenario 5: block claim → data read back from the raw device', Date.now() - t0);
      // the solo StatefulSet's claim, mounted read-only by another pod once the writer is gone
      cluster.kubectl(['scale', 'statefulset', 'solo', '-n', 'default', '--replicas=0']);
      await waitFor('solo-0 gone', 5 * 60_000, async () => (pod('solo-0') ? undefined : true));
      const t1 = Date.now();
      cluster.kubectl(['apply', '-f', '-'], JSON.stringify(readOnlyPod('reader', 'data-solo-0')));
      const r = await podRunning('reader', 10 * 60_000);
      const ro = await line('reader', 'readonly', 3 * 60_000);
      expect(ro.values[0]).toBe(ro.values[1]);
      expect(ro.values[2]).toBe('yes'); // the write was refused
      note(`scenario 5: read-only mount on ${r.spec.nodeName} (solo's copy on ${soloNode})`, Date.now() - t1);
      cluster.kubectl(['delete', 'pod', 'reader', 'raw', '-n', 'default', '--wait=false']);
    },
    20 * 60_000,
  );

  it(
    '7. uninstall and reinstall the chart with volumes in place: nothing is lost, volumes stage again',
    async () => {
      watchFailure();
      const volumes = cluster.kubectlJson<{ items: MeshStorVolume[] }>([
        'get',
        'meshstorvolumes.meshstor.io',
      ]).items;
      const t0 = Date.now();
      cluster.helmUninstall();
      note('scenario 7: helm uninstall', Date.now() - t0);
      // the CRDs stay (Helm never deletes them), and with them every volume record
      const after = cluster.kubectlJson<{ items: MeshStorVolume[] }>([
        'get',
        'meshstorvolumes.meshstor.io',
      ]).items;
      expect(after.map((v) => v.metadata.name).sort()).toEqual(volumes.map((v) => v.metadata.name).sort());
      const t1 = Date.now();
      cluster.helmInstall();
      await waitFor('three agents reporting again', 10 * 60_000, async () => {
        const list = cluster.kubectlJson<{ items: MeshStorNode[] }>(['get', 'meshstornodes.meshstor.io']);
        const fresh = list.items.filter((n) => Date.parse(n.status?.heartbeatTime ?? '') > t1);
        return fresh.length === 3 ? true : undefined;
      });
      note('scenario 7: helm install again → three agents reporting', Date.now() - t1);
      // the writer restarts: its volume stages again and the data is the data it wrote first
      const starts = (await check('db-0', 1, 60_000)).length;
      cluster.kubectl(['delete', 'pod', 'db-0', '-n', 'default']);
      await podRunning('db-0', 10 * 60_000);
      const lines = await check('db-0', starts + 1, 5 * 60_000);
      expect(lines.at(-1)?.kind).toBe('found');
      expect(lines.at(-1)?.values).toEqual([dbSha, dbSha]);
      note('scenario 7: reinstall → writer restarted with its data', Date.now() - t1);
    },
    30 * 60_000,
  );

  it(
    "8. Kubernetes' own External Storage e2e suites (the CI subset) pass against MeshStor",
    async () => {
      watchFailure();
      const wide = process.env.MESHSTOR_E2E_SUBSET === 'wide';
      const focus = process.env.MESHSTOR_E2E_FOCUS ?? (wide ? WIDE_FOCUS : undefined);
      const common = {
        kubeconfig: cluster.kubeconfig,
        dir: cluster.dir,
        skip: process.env.MESHSTOR_E2E_SKIP ?? CI_SKIP,
        // the CI subset's specs took 1–4 min each in earlier runs; the wide one about 60 min
        timeoutMinutes: Number(process.env.MESHSTOR_E2E_MINUTES ?? (wide ? 80 : 30)),
      };
      const r = focus
        ? await runE2E({ ...common, focus })
        : await runE2ELanes({ ...common, lanes: CI_LANES });
      note(`e2e: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped (log ${r.log})`, r.wallMs);
      expect(r.failures).toEqual([]);
      // the CI subset names each spec: every one must have run (a claim dropped from driver.yaml
      // would skip one silently)
      if (!focus) expect(r.passed).toBe(CI_SPECS.length);
      else expect(r.passed).toBeGreaterThan(0);
    },
    90 * 60_000,
  );
});

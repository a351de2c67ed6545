// The number users feel: how many pods per second the REAL kube-scheduler binds on a cluster of
// 5,000 API-only nodes, with the MeshStor extender and without any extender, in the same run on
// the same control plane. Each pod mounts one MeshStor PVC (bound, replica on a random node).
// For each variant: create the pods first (for a scheduler name nobody serves yet), then start a
// kube-scheduler with that profile and time from its first binding to its last:
// rate = (pods - 1) / (t_last - t_first). Both schedulers get clientConnection qps/burst 1000 so the
// client-side rate limit (default 50/s) does not hide the difference.
//   node bench/scheduler-throughput.ts [--nodes 5000] [--pods 300] [--no-warm-up] [--no-self-warm-up]
// --no-warm-up skips the bench's own 500 rounds before the timed run; the extender still warms
// itself up before /readyz unless --no-self-warm-up (both: a fresh extender as before issue 15).
import { parseArgs } from 'node:util';
import { type V1Pod, Watch } from '@kubernetes/client-node';
import { API_VERSION, GROUP, type MeshStorNode, PLURAL, VERSION } from '../kube/crds.ts';
import { makeLogger } from '../kube/log.ts';
import { GiB } from '../placement/units.ts';
import { startExtender } from '../scheduler/extender.ts';
import { missingBinaries } from '../test/cluster/binaries.ts';
import { freePort, startControlPlane, startScheduler } from '../test/cluster/control-plane.ts';
import { schedulerConfigFor } from '../test/cluster/global-setup.ts';
import { applyCrds, Kube, until } from '../test/cluster/kube.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    pods: { type: 'string', default: '300' },
    // --no-warm-up: measure a freshly started extender (V8 not yet optimised).
    'no-warm-up': { type: 'boolean', default: false },
    // --no-self-warm-up: the extender says ready without warming itself up first (as before issue 15).
    'no-self-warm-up': { type: 'boolean', default: false },
  },
});
const NODES = Number(values.nodes);
const PODS = Number(values.pods);
const WARM = !values['no-warm-up'];
if (missingBinaries().length > 0)
  throw new Error('control-plane binaries missing: run npm run setup:cluster');

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++] as T);
    }),
  );
}

const name = (i: number) => `node-${String(i).padStart(5, '0')}`;
const extenderPort = await freePort();
const cp = await startControlPlane({ schedulerConfig: { ...schedulerConfigFor(extenderPort) } });
const log = makeLogger('bench', 'warn');
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void cp.stop().finally(() => process.exit(130));
  });
}
try {
  await applyCrds(cp.kubeconfig);
  const k = new Kube(cp.kubeconfig);
  const t0 = Date.now();
  const idx = Array.from({ length: NODES }, (_, i) => i);
  await pool(idx, 16, async (i) => {
    const n = name(i);
    await k.core.createNode({
      body: {
        metadata: { name: n, labels: { 'kubernetes.io/hostname': n, 'kubernetes.io/os': 'linux' } },
        status: {
          allocatable: { cpu: '32', memory: '128Gi', pods: '110' },
          capacity: { cpu: '32', memory: '128Gi', pods: '110' },
          conditions: [
            { type: 'Ready', status: 'True', lastHeartbeatTime: new Date(), lastTransitionTime: new Date() },
          ],
        },
      },
    });
    const msn = (await k.custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorNode,
      body: { apiVersion: API_VERSION, kind: 'MeshStorNode', metadata: { name: n }, spec: { nodeName: n } },
    })) as MeshStorNode;
    msn.status = {
      heartbeatTime: new Date().toISOString(),
      drives: [{ id: 'nvme0', sizeBytes: 4096 * GiB, logicalBlockSize: 512, gptSlots: 128 }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'Bench' }],
    };
    await k.custom.replaceClusterCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorNode,
      name: n,
      body: msn,
    });
  });
  console.log(`created ${NODES} Nodes and MeshStorNodes in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  const variants = ['no-extender', 'with-extender'] as const;
  const t1 = Date.now();
  const vols = variants.flatMap((v) => Array.from({ length: PODS }, (_, i) => ({ v, i })));
  await pool(vols, 16, async ({ v, i }) => {
    await k.createVolume(`${v}-${i}`, [name((i * 7919 + (v === 'no-extender' ? 0 : 1)) % NODES)], {
      sizeBytes: 10 * GiB,
    });
  });
  console.log(
    `created ${vols.length} bound MeshStor volumes (MSV, PV, PVC) in ${((Date.now() - t1) / 1000).toFixed(0)} s`,
  );

  // No agents run here to heartbeat: do not let the objects made minutes ago count as silent agents.
  const ext = await startExtender({
    kc: k.kc,
    log,
    door: { insecureHttp: true }, // the bench measures scheduling throughput over plain HTTP
    host: '127.0.0.1',
    port: extenderPort,
    heartbeatStaleMs: 24 * 3600_000,
    warmUpRounds: values['no-self-warm-up'] ? 0 : undefined,
  });
  await ext.whenSynced;
  await until('extender caches', 60_000, async () =>
    (ext.state.sizes().persistentvolumeclaims ?? 0) >= vols.length &&
    (ext.state.sizes().meshstornodes ?? 0) >= NODES
      ? true
      : undefined,
  );

  /**
   * A running extender has answered many calls before: 500 filter+prioritize rounds with one of
   * the bench's own pods and 500 names let V8 compile the hot path before the timed run.
   */
  const warmUp = async (podName: string) => {
    const pod = await k.core.readNamespacedPod({ name: podName, namespace: 'default' });
    const body = JSON.stringify({ Pod: pod, NodeNames: Array.from({ length: 500 }, (_, i) => name(i * 10)) });
    for (let i = 0; i < 500; i++) {
      for (const verb of ['filter', 'prioritize']) {
        const r = await fetch(`http://127.0.0.1:${extenderPort}/${verb}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        if (!r.ok) throw new Error(`warm-up ${verb}: HTTP ${r.status} ${await r.text()}`);
        await r.arrayBuffer();
      }
    }
  };
  /** Calls answered and seconds spent inside the extender's handlers, all verbs (its own histogram). */
  const extenderTotals = async () => {
    const vals = (await ext.metrics.latency.get()).values;
    const sum = (suffix: string) =>
      vals.filter((x) => x.metricName?.endsWith(suffix)).reduce((a, x) => a + x.value, 0);
    return { calls: sum('_count'), seconds: sum('_sum') };
  };
  const rates: Record<string, number> = {};
  for (const v of variants) {
    const scheduler = `bench-${v}`;
    await pool(
      Array.from({ length: PODS }, (_, i) => i),
      16,
      (i) => k.createPod(`${v}-${i}`, [`pvc-${v}-${i}`], { schedulerName: scheduler }),
    );
    const bound = new Map<string, number>();
    const watch = await new Watch(k.kc).watch(
      '/api/v1/namespaces/default/pods',
      {},
      (_type: string, pod: V1Pod) => {
        const n = pod.metadata?.name ?? '';
        if (n.startsWith(`${v}-`) && pod.spec?.nodeName && !bound.has(n)) bound.set(n, performance.now());
      },
      () => {},
    );
    const config: Record<string, unknown> = {
      apiVersion: 'kubescheduler.config.k8s.io/v1',
      kind: 'KubeSchedulerConfiguration',
      clientConnection: { qps: 1000, burst: 1000 },
      profiles: [{ schedulerName: scheduler }],
    };
    if (v === 'with-extender') {
      config.extenders = schedulerConfigFor(extenderPort).extenders;
      if (WARM) await warmUp(`${v}-0`);
    }
    const before = await extenderTotals();
    const s = await startScheduler(cp, config, scheduler, 120_000);
    await until(`${PODS} pods bound by ${scheduler}`, 600_000, async () =>
      bound.size >= PODS ? true : undefined,
    );
    await s.stop();
    watch.abort();
    const times = [...bound.values()].sort((a, b) => a - b);
    const span = ((times.at(-1) as number) - (times[0] as number)) / 1000;
    rates[v] = (PODS - 1) / span;
    const after = await extenderTotals();
    const calls = after.calls - before.calls;
    const ms = (after.seconds - before.seconds) * 1000;
    console.log(
      `${v}: ${PODS} pods bound in ${span.toFixed(2)} s = ${(rates[v] as number).toFixed(1)} pods/s; ` +
        `extender: ${calls} calls, ${calls ? (ms / calls).toFixed(2) : '0'} ms each inside the handler ` +
        `(${(ms / PODS).toFixed(2)} ms per pod)`,
    );
  }
  console.log(
    `throughput ratio with/without extender at ${NODES} nodes: ${((rates['with-extender'] as number) / (rates['no-extender'] as number)).toFixed(2)}`,
  );
  console.log(
    `4xx answers of the extender: ${await ext.metrics.errorCount('4')}, 5xx: ${await ext.metrics.errorCount('5')}`,
  );
  await ext.close();
} finally {
  await cp.stop();
}

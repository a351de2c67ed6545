// The extender end to end: the real kube-scheduler, running our KubeSchedulerConfiguration
// (deploy/scheduler/), calls the extender (started in this process with startExtender, the code
// `meshstor extender` runs) for pods with MeshStor PVCs and binds them where their replicas are.
// No mock between kube-scheduler and the extender: real HTTPS with mutual TLS (certificates made
// by global-setup.ts, the extender requiring kube-scheduler's client certificate), the real wire
// format.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { makeLogger } from '../../kube/log.ts';
import { GiB } from '../../placement/units.ts';
import { readDoorTls } from '../../scheduler/door.ts';
import { type RunningExtender, startExtender } from '../../scheduler/extender.ts';
import { httpsGet, startScheduler } from './control-plane.ts';
import { pointExtenders } from './global-setup.ts';
import { Kube, until } from './kube.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODES = ['node-1', 'node-2', 'node-3'];
const cluster = inject('cluster');
let k: Kube;
let ext: RunningExtender | undefined;

/** Waits until the extender's caches resolve every PVC of the pod to a MeshStorVolume. */
async function extenderKnows(claims: string[]): Promise<void> {
  const p = {
    metadata: { name: 'probe', namespace: 'default' },
    spec: {
      volumes: claims.map((claimName, i) => ({ name: `v${i}`, persistentVolumeClaim: { claimName } })),
    },
  };
  await until(`extender caches to know ${claims.join(', ')}`, 30_000, async () => {
    const v = ext?.state.podVolumes(p).volumes ?? [];
    return v.length === claims.length && v.every((x) => x.volumeId) ? true : undefined;
  });
}

async function boundClaims(volumes: { name: string; nodes: string[]; sizeBytes?: number }[]) {
  const claims: string[] = [];
  for (const v of volumes)
    claims.push((await k.createVolume(v.name, v.nodes, { sizeBytes: v.sizeBytes })).pvc);
  await extenderKnows(claims);
  return claims;
}

beforeAll(async () => {
  k = new Kube(cluster.kubeconfig);
  await k.storage.createStorageClass({
    body: {
      metadata: { name: 'meshstor' },
      provisioner: 'meshstor.io',
      volumeBindingMode: 'WaitForFirstConsumer',
      parameters: { replicaCount: '1' },
    },
  });
  for (const n of NODES) {
    await k.createNode(n);
    await k.createMeshStorNode(n);
  }
  ext = await startExtender({
    kc: k.kc,
    log: makeLogger('extender', process.env.MESHSTOR_LOG_LEVEL ?? 'silent'),
    door: {
      tls: readDoorTls({
        cert: cluster.extenderPki.server.cert,
        key: cluster.extenderPki.server.key,
        clientCa: cluster.extenderPki.ca.cert,
      }),
    },
    host: '127.0.0.1',
    port: cluster.extenderPort,
  });
  await ext.whenSynced;
  await until('extender to see the three healthy agents', 30_000, async () =>
    NODES.every((n) => ext?.state.cluster.node(n)?.agentHealthy) ? true : undefined,
  );
});

afterAll(async () => {
  await ext?.close();
});

describe('the real kube-scheduler with the MeshStor extender', () => {
  for (const holder of NODES) {
    it(`binds a pod whose volume has its replica on ${holder} to ${holder}`, async () => {
      const claims = await boundClaims([{ name: `vol-${holder}`, nodes: [holder] }]);
      await k.createPod(`pod-${holder}`, claims);
      expect(await k.scheduledNode(`pod-${holder}`)).toBe(holder);
    });
  }

  it('binds a pod whose two volumes live on different nodes where more of its bytes are local', async () => {
    const claims = await boundClaims([
      { name: 'vol-small', nodes: ['node-1'], sizeBytes: 10 * GiB },
      { name: 'vol-big', nodes: ['node-3'], sizeBytes: 40 * GiB },
    ]);
    await k.createPod('pod-two', claims);
    expect(await k.scheduledNode('pod-two')).toBe('node-3');
  });

  it('schedules the pod through the second-scheduler form (schedulerName: meshstor-scheduler)', async () => {
    const docs = parseAllDocuments(
      readFileSync(join(root, 'deploy/scheduler/second-scheduler.yaml'), 'utf8'),
    );
    const cm = docs.map((d) => d.toJS()).find((o) => o?.kind === 'ConfigMap') as {
      data: { 'config.yaml': string };
    };
    const cfg = parseAllDocuments(cm.data['config.yaml'])[0]?.toJS() as {
      extenders: Parameters<typeof pointExtenders>[0];
      profiles: { schedulerName: string }[];
    };
    pointExtenders(cfg.extenders, cluster.extenderPort, cluster.extenderPki);
    const second = await startScheduler(cluster, cfg, 'meshstor-scheduler');
    try {
      const claims = await boundClaims([{ name: 'vol-second', nodes: ['node-1'] }]);
      await k.createPod('pod-second', claims, { schedulerName: cfg.profiles[0]?.schedulerName });
      expect(await k.scheduledNode('pod-second')).toBe('node-1');
    } finally {
      await second.stop();
    }
  });

  it('was called by kube-scheduler for filter and prioritize, and never answered it with a 4xx', async () => {
    const m = ext?.metrics as NonNullable<typeof ext>['metrics'];
    const calls = await m.latency.get();
    const count = (verb: string) =>
      calls.values.find((v) => v.labels.verb === verb && v.metricName?.endsWith('_count'))?.value ?? 0;
    expect(count('filter')).toBeGreaterThanOrEqual(5);
    expect(count('prioritize')).toBeGreaterThanOrEqual(5);
    expect(await m.errorCount('4')).toBe(0);
    expect(await m.errorCount('5')).toBe(0);
  });

  it("lets only kube-scheduler's certificate through; probes on their own plain-HTTP port", async () => {
    const pki = cluster.extenderPki;
    const url = `https://127.0.0.1:${cluster.extenderPort}/filter`;
    const ca = readFileSync(pki.ca.cert);
    // GET is no verb: with the right certificate the request reaches the app and gets its 404.
    const [withCert] = await httpsGet(url, {
      ca,
      cert: readFileSync(pki.client.cert),
      key: readFileSync(pki.client.key),
    });
    expect(withCert).toBe(404);
    const [without, why] = await httpsGet(url, { ca });
    expect(without).toBe(0);
    expect(why).toMatch(/certificate required/);
    const ready = await fetch(`http://127.0.0.1:${ext?.probePort}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('keeps scheduling when the extender is gone (ignorable: true)', async () => {
    const claims = await boundClaims([{ name: 'vol-gone', nodes: ['node-2'] }]);
    await ext?.close();
    ext = undefined;
    await k.createPod('pod-gone', claims);
    expect(NODES).toContain(await k.scheduledNode('pod-gone'));
  });
});

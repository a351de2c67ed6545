// The install artifacts: the Helm chart lints and renders (with the real helm binary, built from
// its Go module by `npm run setup:helm`), the committed plain manifests are exactly its rendering,
// values reach the objects they govern, and the image's two recipes (npm run image and the
// Containerfile) ship the same packages and files.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { CHART_DIR, helm, MANIFESTS_FILE, renderChart, renderManifests } from '../../deploy/helm/render.ts';
import { RUNTIME_FILES } from '../../deploy/image/bundle.ts';
import { HOST_COMMANDS, imagePackages } from '../../deploy/image/contents.ts';
import { makeLogger } from '../../kube/log.ts';
import { closeServer, listen, verbsServer } from '../../scheduler/door.ts';
import { helmBinary, missingHelm } from '../helm/paths.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = helmBinary();
// Under CI a missing helm is a failure, not a skip.
if (!bin && process.env.CI === 'true') throw new Error(`CI=true and ${missingHelm()}`);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests of many kinds; tests read paths they know
  spec?: any;
  data?: Record<string, string>;
}

function objects(yamlText: string): K8sObject[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const key = (o: K8sObject) =>
  `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
const find = (objs: K8sObject[], kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name} in the rendering`);
  return o;
};
// biome-ignore lint/suspicious/noExplicitAny: a pod template's containers, as rendered
const container = (o: K8sObject, name: string): any =>
  [...(o.spec.template.spec.initContainers ?? []), ...o.spec.template.spec.containers].find(
    // biome-ignore lint/suspicious/noExplicitAny: as above
    (c: any) => c.name === name,
  );

describe.skipIf(!bin)(`Helm chart deploy/helm/meshstor${bin ? '' : ` (skipped: ${missingHelm()})`}`, () => {
  const h = bin as string;

  it('passes helm lint --strict', () => {
    const out = helm(h, ['lint', '--strict', CHART_DIR]);
    expect(out).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('renders with default values to this object list', () => {
    const objs = objects(renderChart(h, ['--include-crds']));
    expect(objs.map(key).sort()).toEqual(
      [
        'CustomResourceDefinition/meshstorledgers.meshstor.io',
        'CustomResourceDefinition/meshstornodes.meshstor.io',
        'CustomResourceDefinition/meshstorvolumes.meshstor.io',
        'ServiceAccount/meshstor-system/meshstor-controller',
        'ServiceAccount/meshstor-system/meshstor-agent',
        'ServiceAccount/meshstor-system/meshstor-extender',
        'ServiceAccount/meshstor-system/meshstor-scheduler',
        'ClusterRole/meshstor-controller',
        'ClusterRole/meshstor-agent',
        'ClusterRole/meshstor-extender',
        'ClusterRoleBinding/meshstor-controller',
        'ClusterRoleBinding/meshstor-agent',
        'ClusterRoleBinding/meshstor-extender',
        'ClusterRoleBinding/meshstor-scheduler-as-kube-scheduler',
        'ClusterRoleBinding/meshstor-scheduler-as-volume-scheduler',
        'ValidatingAdmissionPolicy/meshstor-agent-own-node',
        'ValidatingAdmissionPolicyBinding/meshstor-agent-own-node',
        'Role/meshstor-system/meshstor-agent-dhchap',
        'Role/meshstor-system/meshstor-controller',
        'Role/default/meshstor-agent-events',
        'Role/meshstor-system/meshstor-agent',
        'Role/meshstor-system/meshstor-scheduler-leader-election',
        'RoleBinding/meshstor-system/meshstor-agent-dhchap',
        'RoleBinding/meshstor-system/meshstor-controller',
        'RoleBinding/default/meshstor-agent-events',
        'RoleBinding/meshstor-system/meshstor-agent',
        'RoleBinding/meshstor-system/meshstor-scheduler-leader-election',
        'RoleBinding/kube-system/meshstor-scheduler-extension-apiserver-authentication-reader',
        'ConfigMap/meshstor-system/meshstor-scheduler-config',
        'Deployment/meshstor-system/meshstor-controller',
        'Deployment/meshstor-system/meshstor-extender',
        'Deployment/meshstor-system/meshstor-scheduler',
        'DaemonSet/meshstor-system/meshstor-agent',
        'Service/meshstor-system/meshstor-extender',
        'CSIDriver/meshstor.io',
        'StorageClass/meshstor-replicated',
        'StorageClass/meshstor-local',
      ].sort(),
    );
  });

  it('the committed deploy/manifests/meshstor.yaml is exactly the rendering (npm run manifests)', () => {
    expect(readFileSync(MANIFESTS_FILE, 'utf8')).toBe(renderManifests(h));
    const objs = objects(readFileSync(MANIFESTS_FILE, 'utf8'));
    expect(objs[0]?.kind).toBe('CustomResourceDefinition');
    expect(find(objs, 'Namespace', 'meshstor-system')).toBeDefined();
  });

  it('the chart ships the CRDs of deploy/crds unchanged', () => {
    const objs = objects(renderChart(h, ['--include-crds']));
    for (const f of ['meshstor.io_meshstornodes.yaml', 'meshstor.io_meshstorvolumes.yaml']) {
      const crd = parse(readFileSync(join(root, 'deploy/crds', f), 'utf8')) as K8sObject;
      expect(find(objs, 'CustomResourceDefinition', crd.metadata.name)).toEqual(crd);
    }
  });

  it('runs the agent as the issue says: privileged, host network, node-critical, host paths, drive selectors', () => {
    const objs = objects(
      renderChart(h, [
        '--set',
        'agent.drives={id:nvme-Samsung_XYZ_123,serial:S4EWNX0N}',
        '--set',
        'agent.osDriveTail={model:Samsung*}',
        '--set',
        'agent.address=10.1.2.3',
      ]),
    );
    const ds = find(objs, 'DaemonSet', 'meshstor-agent');
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.nodeSelector).toEqual({ 'meshstor.io/storage-node': 'true' });
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    const agent = container(ds, 'meshstor');
    expect(agent.securityContext.privileged).toBe(true);
    expect(agent.args).toEqual([
      'agent',
      '--host=linux',
      '--state=kube',
      '--node=$(NODE_NAME)',
      '--csi-socket=/csi/csi.sock',
      '--kubelet-dir=/var/lib/kubelet',
      '--registration-dir=/registration',
      '--csi-endpoint-on-host=/var/lib/kubelet/plugins/meshstor.io/csi.sock',
      '--rack-label=topology.meshstor.io/rack',
      '--drive=id:nvme-Samsung_XYZ_123',
      '--drive=serial:S4EWNX0N',
      '--os-drive-tail=model:Samsung*',
      '--address=10.1.2.3',
      '--port=4420',
      '--nvme-auth=dhchap',
      '--dhchap-rotate-days=30',
      '--resync-seconds=5',
      '--lease-seconds=40',
      '--metrics-port=9812',
      '--log-level=info',
    ]);
    expect(agent.env).toEqual([
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      // its Lease (ADR 0006) and the node-pair keys (ADR 0007) live in its namespace
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    ]);
    const mounts = Object.fromEntries(
      // biome-ignore lint/suspicious/noExplicitAny: rendered volumeMounts
      agent.volumeMounts.map((m: any) => [m.mountPath, m]),
    );
    expect(mounts['/var/lib/kubelet'].mountPropagation).toBe('Bidirectional');
    expect(mounts['/lib/modules'].readOnly).toBe(true);
    for (const p of [
      '/dev',
      '/sys',
      '/sys/kernel/config',
      '/run/udev',
      '/etc/nvme',
      '/csi',
      '/registration',
    ]) {
      expect(mounts[p], p).toBeDefined();
    }
    // no sidecars: the agent registers itself with kubelet and serves its own /healthz
    // biome-ignore lint/suspicious/noExplicitAny: rendered containers
    expect(pod.containers.map((c: any) => c.name)).toEqual(['meshstor']);
    expect(agent.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(agent.ports).toEqual([{ name: 'metrics', containerPort: 9812 }]);
    const hostPaths = Object.fromEntries(
      // biome-ignore lint/suspicious/noExplicitAny: rendered volumes
      pod.volumes.map((v: any) => [v.name, v.hostPath?.path]),
    );
    expect(hostPaths['registration-dir']).toBe('/var/lib/kubelet/plugins_registry');
    expect(hostPaths['plugin-dir']).toBe('/var/lib/kubelet/plugins/meshstor.io');
  });

  it('agent.kubeletDir moves the CSI socket, the registry and the endpoint told to kubelet together', () => {
    const ds = find(
      objects(renderChart(h, ['--set', 'agent.kubeletDir=/var/lib/k0s/kubelet'])),
      'DaemonSet',
      'meshstor-agent',
    );
    expect(container(ds, 'meshstor').args).toEqual(
      expect.arrayContaining([
        '--kubelet-dir=/var/lib/k0s/kubelet',
        '--registration-dir=/registration',
        '--csi-endpoint-on-host=/var/lib/k0s/kubelet/plugins/meshstor.io/csi.sock',
      ]),
    );
    const hostPaths = Object.fromEntries(
      // biome-ignore lint/suspicious/noExplicitAny: rendered volumes
      ds.spec.template.spec.volumes.map((v: any) => [v.name, v.hostPath?.path]),
    );
    expect(hostPaths['registration-dir']).toBe('/var/lib/k0s/kubelet/plugins_registry');
    expect(hostPaths['plugin-dir']).toBe('/var/lib/k0s/kubelet/plugins/meshstor.io');
  });

  it('agent.leaseSeconds reaches the agent and livenessTimeoutSeconds every liveness probe', () => {
    const objs = objects(
      renderChart(h, ['--set', 'agent.leaseSeconds=120', '--set', 'livenessTimeoutSeconds=600']),
    );
    const agent = container(find(objs, 'DaemonSet', 'meshstor-agent'), 'meshstor');
    expect(agent.args).toContain('--lease-seconds=120');
    const probed = [
      agent,
      container(find(objs, 'Deployment', 'meshstor-controller'), 'meshstor'),
      container(find(objs, 'Deployment', 'meshstor-extender'), 'meshstor'),
    ];
    expect(probed.map((c) => c.livenessProbe.failureThreshold)).toEqual([30, 30, 30]);
  });

  it('by default the agent has no --drive, --os-drive-tail or --address: the agent’s defaults apply', () => {
    const args: string[] = container(
      find(objects(renderChart(h)), 'DaemonSet', 'meshstor-agent'),
      'meshstor',
    ).args;
    expect(args.filter((a) => /^--(drive|os-drive-tail|address)=/.test(a))).toEqual([]);
  });

  it('runs two controllers with the provisioner (topology, capacity) and resizer; liveness on its own /healthz', () => {
    const d = find(objects(renderChart(h)), 'Deployment', 'meshstor-controller');
    expect(d.spec.replicas).toBe(2);
    expect(container(d, 'meshstor').args).toEqual([
      'controller',
      '--state=kube',
      '--csi-socket=/csi/csi.sock',
      '--resync-seconds=10',
      '--metrics-port=9811',
      '--log-level=info',
    ]);
    const prov = container(d, 'csi-provisioner');
    expect(prov.image).toBe('registry.k8s.io/sig-storage/csi-provisioner:v6.3.0');
    expect(prov.args).toEqual(
      expect.arrayContaining([
        '--feature-gates=Topology=true',
        '--enable-capacity',
        '--extra-create-metadata',
      ]),
    );
    // the version the Go module proxy serves (github.com/kubernetes-csi/external-resizer/v2)
    expect(container(d, 'csi-resizer').image).toBe('registry.k8s.io/sig-storage/csi-resizer:v2.3.0');
    // biome-ignore lint/suspicious/noExplicitAny: rendered containers
    expect(d.spec.template.spec.containers.map((c: any) => c.name)).toEqual([
      'csi-provisioner',
      'csi-resizer',
      'csi-snapshotter',
    ]);
    // the controller is a native sidecar: the CSI sidecars start once its startup probe passes
    // biome-ignore lint/suspicious/noExplicitAny: rendered containers
    expect(d.spec.template.spec.initContainers.map((c: any) => [c.name, c.restartPolicy])).toEqual([
      ['meshstor', 'Always'],
    ]);
    expect(container(d, 'meshstor').startupProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(container(d, 'meshstor').livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
  });

  it('ships the snapshotter sidecar, and a VolumeSnapshotClass only where the cluster serves the API', () => {
    const d = find(objects(renderChart(h)), 'Deployment', 'meshstor-controller');
    // the release test/snapshot/paths.ts builds, so the tier runs what the chart ships
    expect(container(d, 'csi-snapshotter').image).toBe('registry.k8s.io/sig-storage/csi-snapshotter:v8.7.0');
    expect(objects(renderChart(h)).some((o) => o.kind === 'VolumeSnapshotClass')).toBe(false);
    const withApi = objects(
      renderChart(h, ['--api-versions', 'snapshot.storage.k8s.io/v1/VolumeSnapshotClass']),
    );
    expect(find(withApi, 'VolumeSnapshotClass', 'meshstor')).toMatchObject({
      driver: 'meshstor.io',
      deletionPolicy: 'Delete',
    });
    const off = objects(renderChart(h, ['--set', 'snapshots.enabled=false']));
    const names = find(off, 'Deployment', 'meshstor-controller').spec.template.spec.containers.map(
      // biome-ignore lint/suspicious/noExplicitAny: rendered containers
      (c: any) => c.name,
    );
    expect(names).not.toContain('csi-snapshotter');
  });

  it('the provisioner pin is the version the cluster tier builds and runs', async () => {
    const { PROVISIONER_VERSION } = await import('../provision/paths.ts');
    const d = find(objects(renderChart(h)), 'Deployment', 'meshstor-controller');
    expect(container(d, 'csi-provisioner').image).toBe(
      `registry.k8s.io/sig-storage/csi-provisioner:${PROVISIONER_VERSION}`,
    );
  });

  it('CSIDriver and StorageClasses as the issue says', () => {
    const objs = objects(renderChart(h));
    expect(find(objs, 'CSIDriver', 'meshstor.io').spec).toMatchObject({
      attachRequired: false,
      storageCapacity: true,
    });
    for (const [name, replicas] of [
      ['meshstor-replicated', '2'],
      ['meshstor-local', '1'],
    ]) {
      const sc = find(objs, 'StorageClass', name as string) as unknown as Record<string, unknown>;
      expect(sc).toMatchObject({
        provisioner: 'meshstor.io',
        volumeBindingMode: 'WaitForFirstConsumer',
        allowVolumeExpansion: true,
        parameters: { replicaCount: replicas },
      });
    }
  });

  it('the second scheduler calls the extender with the settings of deploy/scheduler/second-scheduler.yaml', () => {
    const shipped = objects(readFileSync(join(root, 'deploy/scheduler/second-scheduler.yaml'), 'utf8'));
    const want = parse(
      find(shipped, 'ConfigMap', 'meshstor-scheduler-config').data?.['config.yaml'] as string,
    );
    const got = parse(
      find(objects(renderChart(h)), 'ConfigMap', 'meshstor-scheduler-config').data?.['config.yaml'] as string,
    );
    expect(got).toEqual(want);
  });

  it('scheduler.form=default ships no scheduler; an unknown form is refused', () => {
    const kinds = objects(renderChart(h, ['--set', 'scheduler.form=default'])).map(key);
    expect(kinds.filter((k) => k.includes('meshstor-scheduler'))).toEqual([]);
    expect(kinds).toContain('Deployment/meshstor-system/meshstor-extender');
    expect(() => renderChart(h, ['--set', 'scheduler.form=third'])).toThrow(
      /scheduler.form must be second or default/,
    );
  });

  it('the extender serves its verbs over mutual TLS from the Secret, probes and metrics on their own port', () => {
    const objs = objects(renderChart(h));
    const d = find(objs, 'Deployment', 'meshstor-extender');
    const c = container(d, 'meshstor');
    const dir = '/etc/meshstor/extender-tls';
    expect(c.args).toEqual(
      expect.arrayContaining([
        '--port=8099',
        '--probe-port=8100',
        `--tls-cert=${dir}/tls.crt`,
        `--tls-key=${dir}/tls.key`,
        `--client-ca=${dir}/ca.crt`,
      ]),
    );
    expect(c.args.join(' ')).not.toMatch(/insecure/);
    expect(c.volumeMounts).toContainEqual({ name: 'tls', mountPath: dir, readOnly: true });
    expect(d.spec.template.spec.volumes).toContainEqual({
      name: 'tls',
      secret: { secretName: 'meshstor-extender-tls', defaultMode: 0o400 },
    });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'probes' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'probes' });
    expect(find(objs, 'Service', 'meshstor-extender').spec.ports).toEqual([
      { name: 'https', port: 8099, targetPort: 'https' },
      { name: 'metrics', port: 8100, targetPort: 'probes' },
    ]);
    // The second scheduler presents its client certificate from a Secret mounted where tlsConfig points.
    const cfg = parse(find(objs, 'ConfigMap', 'meshstor-scheduler-config').data?.['config.yaml'] as string);
    const [ext] = cfg.extenders;
    expect(ext).toMatchObject({
      urlPrefix: 'https://meshstor-extender.meshstor-system.svc:8099',
      enableHTTPS: true,
    });
    const s = find(objs, 'Deployment', 'meshstor-scheduler');
    const mount = container(s, 'kube-scheduler').volumeMounts.find(
      (m: { name: string }) => m.name === 'extender-client',
    );
    for (const f of ['caFile', 'certFile', 'keyFile'])
      expect(dirname(ext.tlsConfig[f]), f).toBe(mount.mountPath);
    expect(s.spec.template.spec.volumes).toContainEqual({
      name: 'extender-client',
      secret: { secretName: 'meshstor-scheduler-extender-client', defaultMode: 0o400 },
    });
    // The plain manifests carry no key material: the Secrets are the admin's.
    expect(objs.filter((o) => o.kind === 'Secret')).toEqual([]);
    expect(readFileSync(MANIFESTS_FILE, 'utf8')).not.toMatch(/PRIVATE KEY|kind: Secret/);
  });

  it("agent.ownNodePolicy=false leaves out the agent's own-node admission policy", () => {
    const kinds = objects(renderChart(h, ['--set', 'agent.ownNodePolicy=false'])).map(key);
    expect(kinds.filter((k) => k.includes('own-node'))).toEqual([]);
    expect(kinds).toContain('ClusterRole/meshstor-agent');
  });

  it('extender.tls.generate makes both Secrets, and the scheduler reaches the extender with them', async () => {
    const objs = objects(renderChart(h, ['--set', 'extender.tls.generate=true']));
    const data = (name: string) => {
      const o = find(objs, 'Secret', name) as K8sObject & { type: string };
      expect(o.type).toBe('kubernetes.io/tls');
      return Object.fromEntries(
        Object.entries(o.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]),
      ) as Record<'tls.crt' | 'tls.key' | 'ca.crt', Buffer>;
    };
    const server = data('meshstor-extender-tls');
    const client = data('meshstor-scheduler-extender-client');
    expect(new X509Certificate(server['tls.crt']).subjectAltName).toMatch(
      /DNS:meshstor-extender\.meshstor-system\.svc/,
    );
    // The extender's own door with the server Secret; a call with the client Secret, by the Service name.
    const door = verbsServer(
      { tls: { cert: server['tls.crt'], key: server['tls.key'], clientCa: server['ca.crt'] } },
      (_req, res) => res.end('ok'),
      makeLogger('test', 'silent'),
    );
    const port = await listen(door, 0, '127.0.0.1');
    try {
      const status = await new Promise<number | string>((resolve) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port,
            servername: 'meshstor-extender.meshstor-system.svc',
            ca: client['ca.crt'],
            cert: client['tls.crt'],
            key: client['tls.key'],
            agent: false,
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', (e) => resolve(e.message));
        req.end();
      });
      expect(status).toBe(200);
    } finally {
      await closeServer(door);
    }
  });

  it('an empty image tag means the chart appVersion, which is the package version', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const chart = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as {
      version: string;
      appVersion: string;
    };
    expect(chart.appVersion).toBe(pkg.version);
    expect(chart.version).toBe(pkg.version);
    const d = find(objects(renderChart(h)), 'Deployment', 'meshstor-extender');
    expect(container(d, 'meshstor').image).toBe(`localhost/meshstor:${pkg.version}`);
  });
});

describe('image contents', () => {
  it('the Containerfile installs exactly deploy/image/packages.txt', () => {
    const file = readFileSync(join(root, 'deploy/Containerfile'), 'utf8');
    const install = /apt-get install -y --no-install-recommends \\\n([^&]+)&&/.exec(file)?.[1] ?? '';
    expect(
      install
        .split(/[\s\\]+/)
        .filter(Boolean)
        .sort(),
    ).toEqual([...imagePackages()].sort());
  });

  it("the image's command list names every program the agent runs (image:check looks each up in the image)", () => {
    const sources = execFileSync('git', ['ls-files', 'agent/*.ts'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f && !f.includes('/test/') && !f.includes('simulated') && !f.includes('/sim-'));
    const run = new Set<string>();
    for (const f of sources) {
      const text = readFileSync(join(root, f), 'utf8');
      // the exec wrapper's calls: x('mdadm', …), exec('modprobe', …), run('dd', …), the name on its own line too
      for (const m of text.matchAll(/\b(?:x|exec|run)\(\s*'([a-z0-9_.-]+)'/g)) run.add(m[1] as string);
    }
    expect(run.size).toBeGreaterThan(10);
    expect([...run].filter((c) => !(HOST_COMMANDS as readonly string[]).includes(c))).toEqual([]);
  });

  it('the Containerfile bundles the project with the script npm run image uses', () => {
    const file = readFileSync(join(root, 'deploy/Containerfile'), 'utf8');
    expect(file).toMatch(/^RUN \/node deploy\/image\/bundle\.ts \/opt\/meshstor$/m);
    expect(file).toContain('/opt/meshstor/meshstor.mjs');
  });

  it('every file the bundle reads at run time is shipped beside it, from a tracked file', () => {
    const tracked = new Set(execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n'));
    expect(RUNTIME_FILES.map((f) => f.to)).toEqual(
      expect.arrayContaining(['proto/csi.proto', 'proto/pluginregistration.proto', 'default-scenario.yaml']),
    );
    for (const f of RUNTIME_FILES) expect(tracked.has(f.from), f.from).toBe(true);
  });
});

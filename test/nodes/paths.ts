// Where the nodes tier keeps what `npm run setup:nodes` builds (outside the repository, keyed by
// version), and what is missing for the tier to run.
import { accessSync, constants, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { binDir } from '../cluster/binaries.ts';
import { helmBinary } from '../helm/paths.ts';
import { currentBuild } from '../kernel/paths.ts';
import { provisionerBinary } from '../provision/paths.ts';
import { missingSnapshotter } from '../snapshot/paths.ts';

export const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'meshstor', 'nodes');

/** external-resizer: the chart's pin. v2.2.x is not served by the Go module proxy here; v2.3.0 is. */
export const RESIZER_MODULE = 'github.com/kubernetes-csi/external-resizer/v2';
export const RESIZER_VERSION = 'v2.3.0';

/** The sandbox image kubelet asks containerd for (containerd's config names it too). */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';
/** The image of the tier's own test pods: static busybox. */
export const BUSYBOX_IMAGE = 'local.test/busybox:1';
/**
 * The images Kubernetes' e2e storage suites of v1.36.3 run (`e2e.test --list-images`), made here
 * from the same parts: busybox from Debian's busybox-static, agnhost built from k8s.io/kubernetes,
 * pause from pause/. No registry is reachable, so each is imported under the name the suite asks for.
 */
export const E2E_IMAGES = {
  busybox: [
    'registry.k8s.io/e2e-test-images/busybox:1.36.1-1',
    'registry.k8s.io/e2e-test-images/busybox:1.37.0-1',
    // The volumes suite's exec case runs `sh -ec "echo ls /vol1 > /vol1/x.sh; chmod u+x ...; /vol1/x.sh"`
    // in this image and nothing of nginx itself; no registry is reachable here, so the busybox
    // image answers to its name (it has the sh, ls and chmod the case runs).
    'registry.k8s.io/e2e-test-images/nginx:1.15-4',
  ],
  agnhost: ['registry.k8s.io/e2e-test-images/agnhost:2.55', 'registry.k8s.io/e2e-test-images/agnhost:2.63.0'],
  pause: ['registry.k8s.io/pause:3.10.2'],
};

/** Host packages whose binaries go into the guests' root (same Debian release as the host). */
export const HOST_PACKAGES = [
  'containerd',
  'runc',
  'containernetworking-plugins',
  'iptables',
  'busybox-static',
  'e2fsprogs',
  'kmod',
  'util-linux',
  'qemu-system-x86',
  'qemu-system-data',
  'gdisk',
];

export const resizerBinary = () =>
  process.env.MESHSTOR_CSI_RESIZER ?? join(CACHE, 'csi-resizer', RESIZER_VERSION, 'bin', 'csi-resizer');
export const pauseBinary = () => join(CACHE, 'pause', 'pause');
export const k8sNodeBinary = (name: 'kubelet' | 'kubectl' | 'e2e.test' | 'agnhost') => join(binDir(), name);

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Why the nodes tier cannot run here, or undefined. */
export function nodesTierMissing(): string | undefined {
  const gone: string[] = [];
  if (!currentBuild()) gone.push('the guest kernel (npm run setup:kernel)');
  for (const b of ['kubelet', 'kubectl', 'e2e.test', 'agnhost'] as const)
    if (!executable(k8sNodeBinary(b))) gone.push(`${b} (npm run setup:nodes)`);
  for (const b of ['etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager'])
    if (!executable(join(binDir(), b))) gone.push(`${b} (npm run setup:cluster)`);
  if (!provisionerBinary()) gone.push('csi-provisioner (npm run setup:provisioner)');
  if (!executable(resizerBinary())) gone.push('csi-resizer (npm run setup:nodes)');
  const snapshotter = missingSnapshotter();
  if (snapshotter) gone.push(snapshotter);
  if (!executable(pauseBinary())) gone.push('pause (npm run setup:nodes)');
  if (!helmBinary()) gone.push('helm (npm run setup:helm)');
  if (!existsSync('/usr/bin/qemu-system-x86_64')) gone.push('qemu-system-x86_64 (npm run setup:kernel)');
  for (const b of [
    '/usr/bin/containerd',
    '/usr/lib/cni/bridge',
    '/usr/sbin/xtables-legacy-multi',
    '/bin/busybox',
  ])
    if (!existsSync(b)) gone.push(`${b} (npm run setup:nodes installs its Debian package)`);
  return gone.length ? `missing: ${gone.join('; ')}` : undefined;
}

// What the host side (test/kernel/agent.ts) and the guest (agent-binary.ts) of the agent boot agree
// on: the node, its drives, where the agent's files live in the guest, and the order of the cases.

/** The guest's Node object; its InternalIP is the guest's address on qemu's user network. */
export const AGENT_NODE = {
  name: 'kagent-n1',
  internalIp: '10.0.2.15',
  zone: 'kagent-zone',
};

/** qemu serials: the OS drive comes with partitions on it, the data drives empty (drives.ts). */
export const AGENT_DRIVES = { os: 'MS-K-OS', data: ['MS-K-DATA1', 'MS-K-DATA2'] };

/** Where the harness puts the guest's kubeconfig, relative to /project. */
export const GUEST_KUBECONFIG = 'kagent/kubeconfig';

/** The host's loopback as the guest sees it on qemu's user network. */
export const HOST_FROM_GUEST = '10.0.2.2';

export const GUEST_PATHS = {
  socket: '/run/meshstor/csi.sock',
  nvmeDir: '/run/meshstor/nvme',
  kubeletDir: '/var/lib/kubelet',
  staging: '/var/lib/kubelet/plugins/kubernetes.io/csi/meshstor.io/kagent/globalmount',
};

export const AGENT_METRICS_PORT = 9808;

/** The name of the volume the host's controller creates (CreateVolume's name is its id). */
export const AGENT_VOLUME = 'pvc-kagent';

/** The guest's cases, in the order it runs them; the host acts between them (agent.ts). */
export const AGENT_CASES = {
  serves: 'k1-agent-publishes-its-node',
  stage: 'k2-stage-write',
  restart: 'k3-restart-keeps-array-and-mount',
  unstage: 'k4-unstage',
  wiped: 'k5-delete-wipes',
} as const;

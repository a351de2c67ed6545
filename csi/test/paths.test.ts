// With kubelet's directory configured, the node service refuses paths outside it before touching
// anything (a driver running as root must not create, mount or delete elsewhere).
import { describe, expect, it } from 'vitest';
import { SimulatedHost } from '../../agent/host/simulated.ts';
import { GiB } from '../../placement/units.ts';
import { MemoryVolumeStore } from '../../state/memory-store.ts';
import { NodeService } from '../node.ts';
import { codeOf, mountCap } from './requests.ts';

function service() {
  const made: string[] = [];
  const node = new NodeService({
    nodeName: 'n1',
    host: new SimulatedHost({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:paths-n1',
      drives: [{ id: 'S0', sizeBytes: 4 * GiB }],
    }),
    store: new MemoryVolumeStore(),
    kubeletDir: '/var/lib/kubelet/',
    mountPoints: {
      ensure: async (p) => void made.push(p),
      remove: async (p) => void made.push(`rm ${p}`),
    },
  });
  return { node, made };
}

const publish = (
  target_path: string,
  staging_target_path = '/var/lib/kubelet/plugins/kubernetes.io/csi/meshstor.io/x/globalmount',
) => ({
  volume_id: 'v1',
  staging_target_path,
  target_path,
  volume_capability: mountCap,
  volume_context: {},
  readonly: false,
});

describe('node service paths', () => {
  it.each([
    '/',
    '/etc',
    '/proc/self',
    'relative/target',
    '/var/lib/kubelet/../../etc',
    '/var/lib/kubelet',
    '/var/lib/kubeletX/pods',
    '/var/lib/kubelet/pods/',
  ])('refuses the target %j with INVALID_ARGUMENT and changes nothing', async (target) => {
    const { node, made } = service();
    expect(await codeOf(node.nodePublishVolume(publish(target)))).toBe(3);
    expect(await codeOf(node.nodeUnpublishVolume({ volume_id: 'v1', target_path: target }))).toBe(3);
    expect(made).toEqual([]);
  });
  it('refuses a staging path outside kubelet’s directory', async () => {
    const { node } = service();
    expect(
      await codeOf(
        node.nodeStageVolume({
          volume_id: 'v1',
          staging_target_path: '/tmp/stage',
          volume_capability: mountCap,
          volume_context: {},
        }),
      ),
    ).toBe(3);
  });
  it('lets a path under it through to the volume checks (this volume does not exist: NOT_FOUND)', async () => {
    const { node } = service();
    expect(
      await codeOf(
        node.nodePublishVolume(publish('/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/pv/mount')),
      ),
    ).toBe(5);
  });
});

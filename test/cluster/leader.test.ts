// One active allocator: controllers elect a leader through a real coordination.k8s.io Lease.
import { status } from '@grpc/grpc-js';
import { describe, expect, inject, it } from 'vitest';
import { LeaseElector } from '../../controller/leader.ts';
import { ControllerService } from '../../csi/controller.ts';
import { toCsiError } from '../../csi/errors.ts';
import { loadKubeConfig } from '../../kube/client.ts';
import { cluster } from '../../placement/test/fixtures.ts';
import { GiB } from '../../placement/units.ts';
import { MemoryVolumeStore, StaticInventory } from '../../state/memory-store.ts';

const opts = (identity: string) => ({
  namespace: 'default',
  name: 'meshstor-allocator-test',
  identity,
  leaseSeconds: 3,
  retryMs: 200,
  onError: (m: string) => console.error(m),
});

describe('allocator lease on the real apiserver', () => {
  it('elects exactly one leader, refuses allocation elsewhere, and hands over on release', async () => {
    const kc = loadKubeConfig(inject('cluster').kubeconfig);
    const a = new LeaseElector(kc, opts('controller-a'));
    const b = new LeaseElector(kc, opts('controller-b'));
    expect(await a.tick()).toBe(true);
    expect(await b.tick()).toBe(false);
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    expect(b.currentHolder).toBe('controller-a');
    expect(await a.tick()).toBe(true); // renewal keeps it

    const follower = new ControllerService({
      store: new MemoryVolumeStore(),
      inventory: new StaticInventory(cluster(2, ['a'], [100])),
      leader: b,
    });
    const req = {
      name: 'pvc-lease',
      capacity_range: { required_bytes: String(GiB), limit_bytes: '0' },
      volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } }],
      parameters: {},
      secrets: {},
      volume_content_source: null,
      accessibility_requirements: null,
      mutable_parameters: {},
    };
    const err = toCsiError(await follower.createVolume(req).catch((e) => e));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.message).toMatch(/lease held by controller-a/);

    await a.stop(); // hands the lease back
    expect(a.isLeader).toBe(false);
    expect(await b.tick()).toBe(true);
    expect((await follower.createVolume(req)).volume.volume_id).toBe('pvc-lease');
    await b.stop();
  });

  it('takes over from a leader that stopped renewing, after the lease duration', async () => {
    const kc = loadKubeConfig(inject('cluster').kubeconfig);
    const o = { ...opts('x'), name: 'meshstor-allocator-expiry' };
    const dead = new LeaseElector(kc, { ...o, identity: 'controller-dead' });
    const next = new LeaseElector(kc, { ...o, identity: 'controller-next' });
    expect(await dead.tick()).toBe(true); // then it "dies": no more renewals
    expect(await next.tick()).toBe(false);
    await new Promise((r) => setTimeout(r, 3500));
    expect(await next.tick()).toBe(true);
    expect(next.currentHolder).toBe('controller-next');
    await next.stop();
  });
});

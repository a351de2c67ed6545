import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { NodeHeartbeat } from '../node-heartbeat.ts';
import type { NodeIdentity, NodePublisher } from '../publisher.ts';

const quiet = { info: () => {}, warn: () => {} } as never;

function fakePublisher() {
  const seen: { identities: NodeIdentity[]; publishes: number } = { identities: [], publishes: 0 };
  const publisher = {
    identify: (id: NodeIdentity) => void seen.identities.push(id),
    publish: async () => void seen.publishes++,
  } as unknown as NodePublisher;
  return { publisher, seen };
}

const node = (unschedulable: boolean): V1Node => ({
  metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'z9' } },
  spec: { unschedulable },
  status: { addresses: [{ type: 'InternalIP', address: '10.1.2.3' }] },
});

const flags = { nodeName: 'n1', zone: 'from-flag', address: '127.0.0.1', port: 4420 };

describe('NodeHeartbeat', () => {
  it('takes the identity from the Node, reads it again only after refreshMs, and publishes every beat', async () => {
    const { publisher, seen } = fakePublisher();
    let reads = 0;
    let cordoned = false;
    const hb = new NodeHeartbeat({
      publisher,
      readNode: async () => {
        reads++;
        return node(cordoned);
      },
      options: {},
      identity: flags,
      log: quiet,
      refreshMs: 60_000,
    });
    expect(await hb.refresh()).toMatchObject({ address: '10.1.2.3', zone: 'z9', schedulable: true });
    cordoned = true;
    await hb.publish([]);
    await hb.publish([]);
    expect(seen.publishes).toBe(2);
    expect(reads).toBe(1); // within the minute: no GET per beat
    const eager = new NodeHeartbeat({
      publisher,
      readNode: async () => node(cordoned),
      options: {},
      identity: flags,
      log: quiet,
      refreshMs: 0,
    });
    await eager.publish([]);
    expect(eager.current.schedulable).toBe(false); // the cordon reaches the next beat once due
  });

  it('keeps the flags identity and still publishes when there is no Node or it cannot be read', async () => {
    const { publisher, seen } = fakePublisher();
    const missing = new NodeHeartbeat({
      publisher,
      readNode: async () => undefined,
      options: {},
      identity: flags,
      log: quiet,
      refreshMs: 0,
    });
    await missing.publish([]);
    const broken = new NodeHeartbeat({
      publisher,
      readNode: async () => {
        throw new Error('apiserver down');
      },
      options: {},
      identity: flags,
      log: quiet,
      refreshMs: 0,
    });
    await broken.publish([]);
    expect(seen.publishes).toBe(2);
    expect(missing.current).toEqual(flags);
    expect(broken.current).toEqual(flags);
  });
});

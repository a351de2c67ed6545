import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { NodeIdentityError, nodeIdentityFrom } from '../node-identity.ts';

const node = (
  over: { labels?: Record<string, string>; addresses?: [string, string][]; unschedulable?: boolean } = {},
): V1Node => ({
  metadata: { name: 'worker-1', labels: over.labels ?? {} },
  spec: over.unschedulable === undefined ? {} : { unschedulable: over.unschedulable },
  status: {
    addresses: (
      over.addresses ?? [
        ['Hostname', 'worker-1'],
        ['InternalIP', '10.0.0.11'],
      ]
    ).map(([type, address]) => ({
      type,
      address,
    })),
  },
});

describe('nodeIdentityFrom', () => {
  it('address from the first InternalIP, zone and rack from labels, schedulable when not cordoned', () => {
    const n = node({
      labels: {
        'topology.kubernetes.io/zone': 'eu-1a',
        'topology.meshstor.io/rack': 'r12',
        'kubernetes.io/os': 'linux',
      },
      addresses: [
        ['ExternalIP', '203.0.113.7'],
        ['InternalIP', '10.0.0.11'],
        ['InternalIP', '10.0.1.11'],
      ],
    });
    expect(nodeIdentityFrom(n)).toEqual({
      nodeName: 'worker-1',
      address: '10.0.0.11',
      zone: 'eu-1a',
      rack: 'r12',
      schedulable: true,
    });
  });

  it('IPv6 InternalIP; no topology labels; a cordoned node', () => {
    const n = node({ addresses: [['InternalIP', 'fd00::11']], unschedulable: true });
    expect(nodeIdentityFrom(n)).toEqual({
      nodeName: 'worker-1',
      address: 'fd00::11',
      zone: undefined,
      rack: undefined,
      schedulable: false,
    });
  });

  it('the rack label is configurable; an empty label value is no value', () => {
    const n = node({
      labels: {
        'example.com/rack': 'B7',
        'topology.meshstor.io/rack': 'r1',
        'topology.kubernetes.io/zone': '',
      },
    });
    const id = nodeIdentityFrom(n, { rackLabel: 'example.com/rack' });
    expect([id.rack, id.zone]).toEqual(['B7', undefined]);
  });

  it('an override wins over the InternalIP and is checked', () => {
    expect(nodeIdentityFrom(node(), { addressOverride: '192.168.5.2' }).address).toBe('192.168.5.2');
    expect(nodeIdentityFrom(node({ addresses: [] }), { addressOverride: '2001:db8::2' }).address).toBe(
      '2001:db8::2',
    );
    expect(() => nodeIdentityFrom(node(), { addressOverride: 'worker-1.example' })).toThrow(
      /--address "worker-1.example" is not an IPv4 or IPv6 address/,
    );
  });

  it('no usable InternalIP: says which addresses the Node has and what to do', () => {
    const n = node({
      addresses: [
        ['Hostname', 'worker-1'],
        ['InternalIP', 'not-an-ip'],
      ],
    });
    expect(() => nodeIdentityFrom(n)).toThrow(NodeIdentityError);
    expect(() => nodeIdentityFrom(n)).toThrow(
      'Node worker-1 has no InternalIP address (addresses: Hostname=worker-1, InternalIP=not-an-ip); give the NVMe-oF address with --address',
    );
    expect(() => nodeIdentityFrom({ metadata: {} })).toThrow(/no metadata.name/);
  });
});

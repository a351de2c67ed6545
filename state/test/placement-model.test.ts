import { describe, expect, it } from 'vitest';
import { API_VERSION, type MeshStorNode } from '../../kube/crds.ts';
import { nodeInfoFrom } from '../placement-model.ts';

const msn = (status: MeshStorNode['status'], topology?: MeshStorNode['spec']['topology']): MeshStorNode => ({
  apiVersion: API_VERSION,
  kind: 'MeshStorNode',
  metadata: { name: 'n1' },
  spec: { nodeName: 'n1', ...(topology ? { topology } : {}) },
  ...(status ? { status } : {}),
});

describe('nodeInfoFrom', () => {
  it('zone and rack from the topology the agent copied from the Node labels', () => {
    expect(nodeInfoFrom(msn({}, { zone: 'z1', rack: 'r7' }), true).labels).toEqual({
      zone: 'z1',
      rack: 'r7',
    });
    expect(nodeInfoFrom(msn({}), true).labels).toEqual({ zone: undefined, rack: undefined });
  });

  it('a cordoned node is unschedulable; an agent that does not report it counts as schedulable', () => {
    expect(nodeInfoFrom(msn({ schedulable: false }), true).schedulable).toBe(false);
    expect(nodeInfoFrom(msn({ schedulable: true }), true).schedulable).toBe(true);
    expect(nodeInfoFrom(msn({}), true).schedulable).toBe(true);
    expect(nodeInfoFrom(msn(undefined), false)).toMatchObject({
      schedulable: true,
      agentHealthy: false,
      drives: [],
    });
  });
});

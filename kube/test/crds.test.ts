// kube/crds.ts and deploy/crds/ describe the same objects: every field of the TypeScript shapes
// (a sample that TypeScript forces to name all of them) must be in the CRD's schema.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { MeshStorNodeSpec, MeshStorNodeStatus } from '../crds.ts';

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
}

/** Paths of the sample's fields the schema does not have. */
function missing(schema: Schema, value: unknown, path: string): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => missing(schema.items ?? {}, v, `${path}[]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const sub = schema.properties?.[k];
    return sub ? missing(sub, v, `${path}.${k}`) : [`${path}.${k}`];
  });
}

const nodeStatus: Required<MeshStorNodeStatus> = {
  observedGeneration: 1,
  heartbeatTime: '2026-01-01T00:00:00Z',
  schedulable: false,
  hostNQN: 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000000',
  nvmeofAddress: { transport: 'tcp', address: 'fd00::1', port: 4420 },
  driveCount: 1,
  capacityBytes: 1,
  freeBytes: 1,
  drives: [
    {
      id: 'S1',
      path: '/dev/nvme0n1',
      sizeBytes: 1,
      logicalBlockSize: 512,
      gptSlots: 128,
      partitions: [
        { number: 1, start: 0, end: 1, partUUID: 'x', label: 'EFI', owner: { volume: 'v', replica: 'r0' } },
      ],
    },
  ],
  skippedDrives: [{ id: 'S2', path: '/dev/nvme1n1', reason: 'matches no --drive selector' }],
  conditions: [
    {
      type: 'KernelModulesLoaded',
      status: 'False',
      reason: 'ModulesMissing',
      message: 'm',
      lastTransitionTime: 't',
      observedGeneration: 1,
    },
  ],
};
const nodeSpec: Required<MeshStorNodeSpec> = { nodeName: 'n1', topology: { zone: 'z', rack: 'r' } };

describe('MeshStorNode CRD and kube/crds.ts', () => {
  const crd = parse(
    readFileSync(new URL('../../deploy/crds/meshstor.io_meshstornodes.yaml', import.meta.url), 'utf8'),
  );
  const root: Schema = crd.spec.versions[0].schema.openAPIV3Schema;

  it('every status and spec field of the TypeScript shape is in the schema', () => {
    expect(missing(root, { spec: nodeSpec, status: nodeStatus }, '')).toEqual([]);
  });

  it('the check finds a field the schema lacks', () => {
    expect(missing(root, { status: { skippedDrive: [] } }, '')).toEqual(['.status.skippedDrive']);
  });
});

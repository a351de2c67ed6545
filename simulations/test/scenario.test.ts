import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCENARIO_PATH } from '../run.ts';
import { parseScenario, ScenarioError } from '../scenario.ts';

const base = readFileSync(DEFAULT_SCENARIO_PATH, 'utf8');

describe('scenario files', () => {
  it('the embedded default is valid and parses units', () => {
    const s = parseScenario(base);
    expect(s.cluster.zones).toEqual(['a', 'b', 'c']);
    expect(s.cluster.nodeTypes[0]?.drives[0]).toBe(3_840_000_000_000);
    expect(s.policies).toContain('meshstor');
  });

  it('names every problem with its path', () => {
    const bad = base
      .replace('nodesPerZone: 8', 'nodesPerZone: -1')
      .replace('value: 20GiB', 'value: 20 potatoes')
      .replace('nodeType: dense, zone: b', 'nodeType: huge, zone: q')
      .replace('seed: 42', 'seed: 42\nunknownKey: 1');
    let err: unknown;
    try {
      parseScenario(bad, 'bad.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScenarioError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^scenario bad.yaml is not valid/);
    expect(msg).toMatch(/cluster\.nodesPerZone: /);
    expect(msg).toMatch(/workload\.sizes\.0\.value: cannot read size "20 potatoes"/);
    expect(msg).toMatch(/unknownKey/);
  });

  it('checks cross references after the shape is right', () => {
    const bad = base.replace('nodeType: dense, zone: b', 'nodeType: huge, zone: q');
    expect(() => parseScenario(bad)).toThrow(
      /events\.2\.nodeType: no node type "huge"[\s\S]*events\.2\.zone: no zone "q"/,
    );
  });

  it('rejects unknown policies and broken YAML', () => {
    expect(() => parseScenario(`${base}\npolicies: [meshstor, nope]\n`)).toThrow(
      /policies\.1: known policies: meshstor/,
    );
    expect(() => parseScenario('name: [unclosed')).toThrow(/YAML:/);
  });
});

describe('bad scenarios get clear errors, never a crash, a hang or an out-of-memory', () => {
  const problem = (from: string, to: string) => {
    expect(base).toContain(from);
    return () => parseScenario(base.replace(from, to), 'bad.yaml');
  };

  it('a 0-byte drive, an OS partition past its drive, a 0-byte volume', () => {
    expect(problem('drives: [1.92TB, 3.84TB]', 'drives: [0, 3.84TB]')).toThrow(
      /cluster\.nodeTypes\.1\.drives\.0: must be more than 0 bytes/,
    );
    expect(problem('{ size: 480GB, used: 64GiB }', '{ size: 600MiB, used: 100MiB }')).toThrow(
      /osDrive\.used: the root partition .* ends past the end of the drive/,
    );
    expect(problem('value: 20GiB', 'value: 0GiB')).toThrow(
      /workload\.sizes\.0\.value: must be more than 0 bytes/,
    );
  });

  it('a drain of a node that does not exist, a zone that does not exist', () => {
    expect(problem('type: drain, node: auto', 'type: drain, node: z-99')).toThrow(
      /events\.0\.node: no node "z-99"/,
    );
    expect(
      problem('{ at: 1800, type: evictionStorm, fraction: 0.3 }', '{ at: 1800, type: zoneOutage, zone: q }'),
    ).toThrow(/events\.3\.zone: no zone "q"/);
    expect(problem('nodesPerZone: 8', 'nodesPerZone: { a: 2, q: 1 }')).toThrow(
      /nodesPerZone\.q: no zone "q"/,
    );
  });

  it('absurd durations, sample counts and arrival counts are bounded', () => {
    expect(problem('durationHours: 2400', 'durationHours: 1e12')).toThrow(/durationHours/);
    expect(problem('sampleEveryHours: 24', 'sampleEveryHours: 0.0001')).toThrow(/more than 100000 samples/);
    expect(problem('arrivalsPerHour: 0.12', 'arrivalsPerHour: 1e9')).toThrow(/arrivals: at most/);
    expect(problem('nodesPerZone: 8', 'nodesPerZone: 1000000')).toThrow(/nodes: at most 20000/);
  });
});

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

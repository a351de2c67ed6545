// Time in the simulator: syncs take bytes / bandwidth within per-node limits, a pod is remote
// until its move ends, and the per-volume placements written out obey the engine's invariants.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateCluster } from '../cluster-gen.ts';
import { DEFAULT_SCENARIO_PATH, runScenario } from '../run.ts';
import { parseScenario } from '../scenario.ts';
import { type Sync, SyncQueue } from '../syncs.ts';

const sync = (seq: number, kind: Sync['kind'], bytes: number, target = 'n1'): Sync => ({
  seq,
  kind,
  volumeId: `v${seq}`,
  target,
  bytes,
  toReplica: 'r1',
  cause: -1,
  queuedAt: 0,
  cancelled: false,
});

describe('SyncQueue', () => {
  it('runs at most `slots` syncs into a node, starts the waiting ones safety-first and small-first', () => {
    const started: Sync[] = [];
    const q = new SyncQueue(
      2,
      () => 100,
      (s) => started.push(s),
    );
    const big = sync(0, 'relocation', 1000);
    const small = sync(1, 'relocation', 100);
    const rebuild = sync(2, 'rebuild', 5000);
    const other = sync(3, 'relocation', 50);
    q.enqueue(big, 0);
    q.enqueue(sync(4, 'relocation', 10), 0);
    q.enqueue(small, 0);
    q.enqueue(rebuild, 0);
    q.enqueue(other, 0);
    expect(started.map((s) => s.seq)).toEqual([0, 4]);
    expect(big.endsAt).toBe(10); // 1000 bytes at 100 per hour
    q.finish(started[1] as Sync, 0.1);
    expect(started.at(-1)).toBe(rebuild);
    expect(rebuild.startedAt).toBe(0.1);
    q.finish(big, 10);
    expect(started.at(-1)).toBe(other);
    q.finish(small, 10); // cancelled while waiting: leaves the queue, frees nothing
    expect(q.inFlight).toBe(2);
    expect(q.peakPerNode).toBe(2);
    expect(q.peakTotal).toBe(5);
  });
});

const small = readFileSync(DEFAULT_SCENARIO_PATH, 'utf8')
  .replace('nodesPerZone: 8', 'nodesPerZone: 4')
  .replace('durationHours: 2400', 'durationHours: 1200')
  .replace(/at: 900/, 'at: 400')
  .replace(/at: 1300/, 'at: 600')
  .replace(/at: 1500/, 'at: 800')
  .replace(/at: 1800/, 'at: 1000')
  .replace(/at: 2100/, 'at: 1100')
  .replace(/at: 2200/, 'at: 1150');

type Row = Record<string, string>;
function rows(csv: string): Row[] {
  const [head, ...lines] = csv.trim().split('\n');
  const keys = (head as string).split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [keys[i], v])));
}

describe('simulated time', () => {
  it('per-volume placements obey the invariants, from the files alone (property over seeds)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 10_000 }), async (seed) => {
        const s = parseScenario(
          `${small.replace('seed: 42', `seed: ${seed}`)}\npolicies: [meshstor, random]\n`,
        );
        const r = await runScenario(s, 'small', { charts: false });
        const placed = rows(r.files['placements.csv'] as string);
        expect(placed.length).toBeGreaterThan(0);
        const byDrive = new Map<string, [number, number][]>();
        const byVolume = new Map<string, Set<string>>();
        for (const x of placed) {
          const nodeKey = `${x.policy}/${x.volume}`;
          const onNodes = byVolume.get(nodeKey) ?? new Set();
          expect(onNodes.has(x.node as string), `${nodeKey} twice on ${x.node}`).toBe(false);
          onNodes.add(x.node as string);
          byVolume.set(nodeKey, onNodes);
          if (x.state === 'Faulty') continue; // a lost node's member has no drive any more
          const key = `${x.policy}/${x.node}/${x.drive}`;
          const list = byDrive.get(key) ?? [];
          list.push([Number(x.start), Number(x.end)]);
          byDrive.set(key, list);
          expect(Number(x.end) - Number(x.start)).toBeGreaterThan(Number(x.sizeBytes));
        }
        for (const [key, list] of byDrive) {
          list.sort((a, b) => a[0] - b[0]);
          for (let i = 1; i < list.length; i++) {
            expect((list[i] as [number, number])[0], `overlap on ${key}`).toBeGreaterThanOrEqual(
              (list[i - 1] as [number, number])[1],
            );
          }
        }
        for (const { metrics: m } of r.runs) {
          expect(m.peakSyncsPerNode).toBeLessThanOrEqual(s.sync.concurrentPerNode);
          expect(m.timeLocality).toBeGreaterThanOrEqual(0);
          expect(m.timeLocality).toBeLessThanOrEqual(1);
          expect(m.remotePodHours).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 4 },
    );
  });

  it('a slower sync keeps pods remote longer and makes events take longer to settle', async () => {
    const storm = (cap: string) =>
      parseScenario(
        `${small
          .replace(/events:[\s\S]*$/, 'events:\n  - { at: 600, type: evictionStorm, fraction: 0.5 }\n')
          .replace('perSyncCap: 200MB/s', `perSyncCap: ${cap}`)
          .replace(
            'dwellHours: 1, stayPerMoveHour: 1',
            'dwellHours: 0, stayPerMoveHour: 0',
          )}policies: [meshstor]\n`,
      );
    const fast = (await runScenario(storm('2GB'), 'fast', { charts: false })).runs[0]?.metrics;
    const slow = (await runScenario(storm('20MB'), 'slow', { charts: false })).runs[0]?.metrics;
    expect(fast && slow).toBeTruthy();
    if (!fast || !slow) return;
    expect(slow.remotePodHours).toBeGreaterThan(fast.remotePodHours);
    expect(slow.maxSettleHours).toBeGreaterThan(fast.maxSettleHours);
    expect(slow.timeLocality).toBeLessThan(fast.timeLocality);
    expect(fast.relocationBytes).toBeGreaterThan(0);
  });

  it('a node back under its own name catches up instead of being rebuilt, and loses nothing', async () => {
    const loss = (back: string) =>
      parseScenario(
        `${small.replace(/events:[\s\S]*$/, `events:\n  - { at: 600, type: nodeLoss, node: a-00${back} }\n`)}policies: [meshstor]\n`,
      );
    const gone = (await runScenario(loss(''), 'gone', { charts: false })).runs[0]?.metrics;
    const back = (await runScenario(loss(', returnAfterHours: 0.5'), 'back', { charts: false })).runs[0]
      ?.metrics;
    expect(gone && back).toBeTruthy();
    if (!gone || !back) return;
    expect(gone.volumesLost).toBeGreaterThan(0); // replicaCount 1 volumes on the node
    expect(back.volumesLost).toBe(0); // they were only away
    expect(back.catchUpBytes).toBeGreaterThan(0);
    // Half an hour of writes is less than rebuilding whole members.
    expect(back.catchUpBytes + back.rebuildBytes).toBeLessThan(gone.rebuildBytes);
    expect(gone.catchUpBytes).toBe(0);
  });

  it('a failed drive rebuilds its members elsewhere; the node keeps its other drives and its pods', async () => {
    const s = parseScenario(
      `${small.replace(/events:[\s\S]*$/, 'events:\n  - { at: 600, type: driveFailure, node: a-00, drive: 1 }\n')}policies: [meshstor]\n`,
    );
    const r = await runScenario(s, 'drive', { charts: false });
    const m = r.runs[0]?.metrics;
    expect(m?.rebuildBytes).toBeGreaterThan(0);
    const placed = rows(r.files['placements.csv'] as string);
    const failed = generateCluster(s).find((n) => n.name === 'a-00')?.drives[1]?.id;
    expect(failed).toBeTruthy();
    expect(placed.some((x) => x.node === 'a-00' && x.state === 'InSync')).toBe(true); // other drives
    expect(placed.some((x) => x.drive === failed && x.state !== 'Faulty')).toBe(false);
    expect(() =>
      parseScenario(
        `${small.replace(/events:[\s\S]*$/, 'events:\n  - { at: 600, type: driveFailure, drive: 60 }\n')}`,
      ),
    ).toThrow(/drive 60: some node type has only \d+ drive/);
  });

  it('a zone outage loses every node of the zone and rebuilds what it can', async () => {
    const s = parseScenario(
      `${small.replace(/events:[\s\S]*$/, 'events:\n  - { at: 600, type: zoneOutage, zone: b }\n')}policies: [meshstor]\n`,
    );
    const r = await runScenario(s, 'zone', { charts: false });
    const m = r.runs[0]?.metrics;
    expect(m?.rebuildBytes).toBeGreaterThan(0);
    expect(m?.volumesLost).toBeGreaterThan(0); // replicaCount 1 volumes in zone b
    expect(m?.peakSyncsQueued).toBeGreaterThan(m?.peakSyncsPerNode ?? 0); // a rebuild storm queues
    expect(
      rows(r.files['placements.csv'] as string).some((x) => x.zone === 'b' && x.state === 'InSync'),
    ).toBe(false);
    expect(r.files['report.md']).toMatch(/zoneOutage at 600 h \(zone b\)/);
  });
});

// The server logs each request by the volume it names and its size on the wire, never whole: no
// secret and no megabyte-long field reaches a log line, whether the call succeeds or is refused.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { cluster } from '../../placement/test/fixtures.ts';
import { MemoryVolumeStore, StaticInventory } from '../../state/memory-store.ts';
import { ControllerService } from '../controller.ts';
import { invalid } from '../errors.ts';
import { IdentityService } from '../identity.ts';
import { describeRequest } from '../request-summary.ts';
import { loadCsi, serveCsi } from '../server.ts';

describe('request log', () => {
  it('describeRequest keeps the volume id or name, cut to 128 characters, and nothing else', () => {
    expect(describeRequest({ volume_id: 'v1', secrets: { k: 'x' } })).toEqual({ volume: 'v1' });
    expect(describeRequest({ name: 'pvc-1', parameters: { a: 'b' } })).toEqual({ volume: 'pvc-1' });
    expect(describeRequest({ name: 'x'.repeat(1000) }).volume).toBe(`${'x'.repeat(128)}…`);
    expect(describeRequest(null)).toEqual({});
  });

  it('logs requests, successful or refused, by id and size: no secret, no long field', async () => {
    const lines: string[] = [];
    const socket = join(mkdtempSync(join(tmpdir(), 'meshstor-reqlog-')), 'csi.sock');
    const server = await serveCsi(
      socket,
      {
        identity: new IdentityService({ controller: true, ready: () => true }),
        controller: new ControllerService({
          store: new MemoryVolumeStore(),
          inventory: new StaticInventory(cluster(2, ['a'], [10])),
        }),
      },
      pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
    );
    const client = new (loadCsi().csi.v1.Controller)(
      `unix:${socket}`,
      grpc.credentials.createInsecure(),
    ) as unknown as {
      CreateVolume: (r: object, cb: (e: unknown) => void) => void;
      close: () => void;
    };
    const call = (r: object) => new Promise((resolve) => client.CreateVolume(r, resolve));
    const block = [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }];
    await call({ name: 'ok', volume_capabilities: block, secrets: { token: 's3cr3t-ok' } });
    const huge = 'h'.repeat(200_000);
    await call({
      name: 'bad',
      volume_capabilities: block,
      parameters: { nope: huge },
      secrets: { token: 's3cr3t-bad' },
    });
    client.close();
    server.forceShutdown();
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).not.toMatch(/s3cr3t/);
    expect(lines[0]).toMatch(/"request":\{"volume":"ok","bytes":\d+\}/);
    expect(lines[1]).toMatch(/"code":"INVALID_ARGUMENT"/);
    expect(lines[1]).toMatch(/"volume":"bad","bytes":2000\d\d/);
    for (const line of lines) expect(line.length).toBeLessThan(1000);
  });

  it('an error quoting a huge value still reaches its caller as its status, and the connection lives', async () => {
    const socket = join(mkdtempSync(join(tmpdir(), 'meshstor-details-')), 'csi.sock');
    const server = await serveCsi(socket, {
      identity: new IdentityService({ controller: true, ready: () => true }),
      // a handler whose message quotes 200 kB of its input (a status message travels as a header)
      controller: {
        createVolume: async () => {
          throw invalid(`bad name ${'q'.repeat(200_000)}`);
        },
      },
    });
    const csi = loadCsi().csi.v1;
    const ctl = new csi.Controller(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as {
      CreateVolume: (r: object, cb: (e: grpc.ServiceError | null) => void) => void;
      close: () => void;
    };
    const identity = new csi.Identity(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as {
      Probe: (r: object, cb: (e: grpc.ServiceError | null) => void) => void;
      close: () => void;
    };
    try {
      const err = await new Promise<grpc.ServiceError | null>((r) => ctl.CreateVolume({ name: 'x' }, r));
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details.length).toBeLessThanOrEqual(1025);
      const again = await new Promise<grpc.ServiceError | null>((r) => ctl.CreateVolume({ name: 'y' }, r));
      expect(again?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(await new Promise((r) => identity.Probe({}, r))).toBeNull();
    } finally {
      ctl.close();
      identity.close();
      server.forceShutdown();
    }
  });
});

// Secrets never reach a log: the server logs every request redacted, failures included.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { cluster } from '../../placement/test/fixtures.ts';
import { MemoryVolumeStore, StaticInventory } from '../../state/memory-store.ts';
import { ControllerService } from '../controller.ts';
import { IdentityService } from '../identity.ts';
import { redact } from '../redact.ts';
import { loadCsi, serveCsi } from '../server.ts';

describe('secrets', () => {
  it('redact() hides secret values at any depth and keeps the rest', () => {
    expect(
      redact({ name: 'v', secrets: { password: 'hunter2' }, nested: [{ secrets: { k: 'x' } }] }),
    ).toEqual({
      name: 'v',
      secrets: { password: '***' },
      nested: [{ secrets: { k: '***' } }],
    });
  });

  it('the server logs requests, successful or refused, without secret values', async () => {
    const lines: string[] = [];
    const socket = join(mkdtempSync(join(tmpdir(), 'meshstor-redact-')), 'csi.sock');
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
    await call({
      name: 'bad',
      volume_capabilities: block,
      parameters: { nope: '1' },
      secrets: { token: 's3cr3t-bad' },
    });
    client.close();
    server.forceShutdown();
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).not.toMatch(/s3cr3t/);
    expect(lines[0]).toMatch(/"token":"\*\*\*"/);
    expect(lines[1]).toMatch(/"code":"INVALID_ARGUMENT"/);
  });
});

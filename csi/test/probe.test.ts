// The liveness check: a driver that answers Probe is alive even while it says "not ready"; one that
// does not answer (no socket, or no server behind it) is not.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IdentityService } from '../identity.ts';
import { probeCsiSocket } from '../probe.ts';
import { serveCsi, shutdownServer } from '../server.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshstor-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('probeCsiSocket (the /healthz of the controller and the agent)', () => {
  it('counts a driver that answers "not ready" as alive, and one that does not answer as not', async () => {
    const socket = join(dir, 'csi.sock');
    let ready = false;
    const server = await serveCsi(socket, {
      identity: new IdentityService({ controller: true, ready: () => ready }),
    });
    try {
      expect(await probeCsiSocket(socket, 2_000)).toBeUndefined();
      ready = true;
      expect(await probeCsiSocket(socket, 2_000)).toBeUndefined();
    } finally {
      await shutdownServer(server);
    }
    expect(await probeCsiSocket(socket, 1_000)).toMatch(/does not answer Probe/);
    expect(await probeCsiSocket(join(dir, 'none.sock'), 1_000)).toMatch(/does not answer Probe/);
  });
});

// A DH-HMAC-CHAP secret never reaches a log line or an Event, even one put into a message by mistake.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { EventRecorder } from '../events.ts';
import { redactingDestination } from '../log.ts';
import { holdsSecret, REDACTED, redactSecrets } from '../redact.ts';

/** A secret's shape (kube/ imports no other MeshStor folder, so not agent/host/dhchap.ts). */
const generateDhchapSecret = (bytes = 32) => `DHHC-1:00:${randomBytes(bytes + 4).toString('base64')}:`;

describe('redactSecrets', () => {
  it('replaces every secret of any length and hash and keeps the rest', () => {
    const a = generateDhchapSecret(32);
    const b = generateDhchapSecret(64).replace('DHHC-1:00', 'DHHC-1:03');
    const text = `host ${a} ctrl=${b}, done`;
    expect(holdsSecret(text)).toBe(true);
    expect(redactSecrets(text)).toBe(`host ${REDACTED} ctrl=${REDACTED}, done`);
    expect(holdsSecret(redactSecrets(text))).toBe(false);
  });

  it('leaves text without a secret as it is', () => {
    const t = 'nqn.2024-11.io.meshstor:vol-1:r2 refused: EKEYREJECTED';
    expect(redactSecrets(t)).toBe(t);
    expect(holdsSecret(t)).toBe(false);
  });
});

describe('the logger', () => {
  it('redacts a secret in a message, a field or an error', () => {
    const lines: string[] = [];
    const s = generateDhchapSecret();
    const log = pino({}, redactingDestination({ write: (l: string) => lines.push(l) }));
    log.info({ spec: { dhchapSecret: s } }, `connecting with ${s}`);
    log.error({ err: new Error(`bad ${s}`) }, 'failed');
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(holdsSecret(l)).toBe(false);
      expect(l).toContain(REDACTED);
    }
  });
});

describe('Events', () => {
  it('carry no secret', async () => {
    const bodies: string[] = [];
    const rec = new EventRecorder({
      component: 'test',
      write: async (_ns, body) => bodies.push(body.message ?? ''),
    });
    await rec.warn(
      { kind: 'MeshStorVolume', name: 'v' },
      'AgentStepFailed',
      `connect ${generateDhchapSecret()}`,
    );
    expect(bodies).toHaveLength(1);
    expect(holdsSecret(bodies[0] ?? '')).toBe(false);
  });
});

// The application of the split-brain scenario (fence.ts), as its own process on the attached node:
// `node fence-writer.ts <device> <bytes> [maxErrors]` writes 4 KiB blocks one after another to the raw
// device with O_DIRECT, each followed by fsync, and prints `ACK <seq> <sha256> <ms>` only when both
// returned (an acknowledged block) or `ERR <seq> <code> <ms>` when either failed; it stops after
// maxErrors errors. Block `seq` is at byte seq × 4096 and starts with "MSFENCE1" and its seq.
import { createHash, randomFillSync } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

const BLOCK = 4096;
const [device, sizeArg, maxErrorsArg] = process.argv.slice(2);
if (!device || !sizeArg) throw new Error('usage: fence-writer.ts <device> <bytes> [maxErrors]');
const size = Number(sizeArg);
const maxErrors = Number(maxErrorsArg ?? 3);
const fh = await open(device, constants.O_RDWR | constants.O_DIRECT);

// O_DIRECT wants the buffer's address aligned; Node does not say where a Buffer lives, so find an
// offset into a larger one at which a harmless O_DIRECT read of block 0 is accepted
const pool = Buffer.allocUnsafeSlow(4 * BLOCK);
let at = -1;
for (let o = 0; o < 2 * BLOCK && at < 0; o += 16) {
  try {
    await fh.read(pool, o, BLOCK, 0);
    at = o;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  }
}
if (at < 0) throw new Error('no aligned buffer for O_DIRECT');
const buf = pool.subarray(at, at + BLOCK);
const say = (line: string) => process.stdout.write(`${line}\n`);
say(`READY ${Date.now()}`);

let errors = 0;
for (let seq = 1; errors < maxErrors; seq++) {
  if ((seq + 1) * BLOCK > size) {
    say(`FULL ${seq} ${Date.now()}`);
    break;
  }
  randomFillSync(buf);
  buf.write('MSFENCE1', 0, 'latin1');
  buf.writeUInt32LE(seq, 8);
  const sum = createHash('sha256').update(buf).digest('hex');
  try {
    await fh.write(buf, 0, BLOCK, seq * BLOCK);
    await fh.sync();
    say(`ACK ${seq} ${sum} ${Date.now()}`);
  } catch (e) {
    errors++;
    say(`ERR ${seq} ${(e as NodeJS.ErrnoException).code ?? String(e)} ${Date.now()}`);
  }
}
await fh.close().catch(() => undefined);

import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkNqn } from '../host/names.ts';
import { ensureHostNqn, HostIdentityError, uuidOfNqn } from '../host-nqn.ts';

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hostnqn-'));
  dir = join(root, 'etc', 'nvme'); // does not exist yet
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});
const text = (name: string) => readFile(join(dir, name), 'utf8');

describe('ensureHostNqn', () => {
  it('creates /etc/nvme, a uuid host NQN and the matching host id, mode 0644; the second call returns the same', async () => {
    const first = await ensureHostNqn(dir);
    expect(first.created).toEqual({ hostNqn: true, hostId: true });
    expect(first.hostNqn).toMatch(/^nqn\.2014-08\.org\.nvmexpress:uuid:/);
    expect(() => checkNqn(first.hostNqn)).not.toThrow();
    expect(first.hostId).toMatch(UUID4);
    expect(uuidOfNqn(first.hostNqn)).toBe(first.hostId);
    expect(await text('hostnqn')).toBe(`${first.hostNqn}\n`);
    expect(await text('hostid')).toBe(`${first.hostId}\n`);
    for (const f of ['hostnqn', 'hostid']) expect((await stat(join(dir, f))).mode & 0o777).toBe(0o644);
    expect((await readdir(dir)).sort()).toEqual(['hostid', 'hostnqn']); // no temporary files left

    const second = await ensureHostNqn(dir);
    expect(second).toEqual({
      hostNqn: first.hostNqn,
      hostId: first.hostId,
      created: { hostNqn: false, hostId: false },
    });
  });

  it('two agents starting at once end up with one identity', async () => {
    const [a, b] = await Promise.all([ensureHostNqn(dir), ensureHostNqn(dir)]);
    expect(a.hostNqn).toBe(b.hostNqn);
    expect(a.hostId).toBe(b.hostId);
    expect(await text('hostnqn')).toBe(`${a.hostNqn}\n`);
  });

  it("keeps the admin's NQN and adds the host id from its UUID", async () => {
    await ensureHostNqn(dir); // creates the directory
    await rm(join(dir, 'hostid'));
    const nqn = 'nqn.2014-08.org.nvmexpress:uuid:4C4C4544-0000-1000-8000-000000000001';
    await writeFile(join(dir, 'hostnqn'), `${nqn}\n`);
    const id = await ensureHostNqn(dir);
    expect(id).toEqual({
      hostNqn: nqn,
      hostId: '4c4c4544-0000-1000-8000-000000000001',
      created: { hostNqn: false, hostId: true },
    });
  });

  it('an NQN without a UUID gets a fresh host id; an existing host id lends its UUID to a new NQN', async () => {
    await ensureHostNqn(dir);
    await rm(join(dir, 'hostid'));
    await writeFile(join(dir, 'hostnqn'), 'nqn.2024-01.com.example:node-7\n');
    const a = await ensureHostNqn(dir);
    expect(a.hostNqn).toBe('nqn.2024-01.com.example:node-7');
    expect(a.hostId).toMatch(UUID4);

    await writeFile(join(dir, 'hostnqn'), '\n'); // empty counts as absent
    await writeFile(join(dir, 'hostid'), 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE\n');
    const b = await ensureHostNqn(dir);
    expect(b.hostNqn).toBe('nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee');
    expect(b.hostId).toBe('aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee');
    expect(b.created).toEqual({ hostNqn: true, hostId: false });
  });

  it('refuses a malformed file and leaves it as it is', async () => {
    await ensureHostNqn(dir);
    await writeFile(join(dir, 'hostnqn'), 'not an nqn\n');
    await expect(ensureHostNqn(dir)).rejects.toThrow(HostIdentityError);
    await expect(ensureHostNqn(dir)).rejects.toThrow(/hostnqn holds "not an nqn".*never overwrites/);
    expect(await text('hostnqn')).toBe('not an nqn\n');

    await writeFile(join(dir, 'hostnqn'), '');
    await writeFile(join(dir, 'hostid'), 'node-7\n');
    await expect(ensureHostNqn(dir)).rejects.toThrow(/hostid holds "node-7", which is not a valid host id/);
    expect(await text('hostnqn')).toBe(''); // nothing written when either file is bad
  });
});

// The node's NVMe host identity: /etc/nvme/hostnqn and /etc/nvme/hostid, what nvme-cli and the
// kernel's initiator use. Read when present (and checked: a malformed file is the admin's to fix,
// never overwritten); created once when absent, so the node keeps one NQN across agent restarts
// and reboots (the exports other nodes grant name it).
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { checkNqn } from './host/names.ts';

export const NVME_CONFIG_DIR = '/etc/nvme';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface HostIdentity {
  hostNqn: string;
  /** The host id (a UUID) nvme-cli sends with this NQN; the kernel refuses one host id under two NQNs. */
  hostId: string;
  /** Which files this call wrote (both false on every call after the first). */
  created: { hostNqn: boolean; hostId: boolean };
}

export class HostIdentityError extends Error {
  override name = 'HostIdentityError';
}

const readOpt = (p: string) =>
  readFile(p, 'utf8').then(
    (t) => t.trim(),
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '';
      throw new HostIdentityError(`cannot read ${p}: ${e.message}`);
    },
  );

/**
 * Writes `text` to `path` atomically, mode 0644: a temporary file in the same directory, flushed,
 * then linked into place, which fails when the file appeared meanwhile (another writer, e.g. a
 * package install): that file wins and `false` is returned, unless it is empty (then it is
 * replaced by rename). Falls back to rename where the filesystem has no hard links.
 */
async function writeOnce(path: string, text: string): Promise<boolean> {
  const tmp = `${path}.tmp-${process.pid}-${randomUUID().slice(0, 8)}`;
  const f = await open(tmp, 'wx', 0o644);
  try {
    await f.writeFile(text);
    await f.chmod(0o644); // the umask may have taken bits off
    await f.sync();
  } finally {
    await f.close();
  }
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await readOpt(path)) !== '') return false;
    if (code !== 'EEXIST' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    await rename(tmp, path);
    return true;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** The UUID inside a `nqn.2014-08.org.nvmexpress:uuid:<uuid>` NQN, if it is one. */
export function uuidOfNqn(nqn: string): string | undefined {
  return /:uuid:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i
    .exec(nqn)?.[1]
    ?.toLowerCase();
}

function checkRead(path: string, what: string, ok: (v: string) => boolean, v: string): string {
  if (!ok(v))
    throw new HostIdentityError(
      `${path} holds ${JSON.stringify(v.slice(0, 80))}, which is not a valid ${what}; fix or remove the file (MeshStor never overwrites it)`,
    );
  return v;
}

const validNqn = (v: string) => {
  try {
    checkNqn(v);
    return true;
  } catch {
    return false;
  }
};

const validId = (v: string) => UUID.test(v.toLowerCase());

/**
 * The host NQN and host id of this node, created and persisted when absent or empty (a fresh
 * `nqn.2014-08.org.nvmexpress:uuid:<uuid v4>`; the host id is the NQN's UUID, or a fresh one when
 * an existing NQN has none). Both files are checked before anything is written. Idempotent: a
 * second call returns the same identity and writes nothing.
 */
export async function ensureHostNqn(dir: string = NVME_CONFIG_DIR): Promise<HostIdentity> {
  const nqnPath = join(dir, 'hostnqn');
  const idPath = join(dir, 'hostid');
  const nqnRead = await readOpt(nqnPath);
  const idRead = await readOpt(idPath);
  if (nqnRead) checkRead(nqnPath, 'NVMe qualified name', validNqn, nqnRead);
  if (idRead) checkRead(idPath, 'host id (UUID)', validId, idRead);
  const created = { hostNqn: false, hostId: false };
  if (nqnRead && idRead) return { hostNqn: nqnRead, hostId: idRead.toLowerCase(), created };

  await mkdir(dir, { recursive: true, mode: 0o755 });
  let hostNqn = nqnRead;
  if (!hostNqn) {
    // an existing host id lends the new NQN its UUID, so the two stay one identity
    const fresh = `nqn.2014-08.org.nvmexpress:uuid:${idRead ? idRead.toLowerCase() : randomUUID()}`;
    created.hostNqn = await writeOnce(nqnPath, `${fresh}\n`);
    // lost a race: whoever wrote the file first wins, if what they wrote is valid
    hostNqn = created.hostNqn
      ? fresh
      : checkRead(nqnPath, 'NVMe qualified name', validNqn, await readOpt(nqnPath));
  }
  let hostId = idRead.toLowerCase();
  if (!hostId) {
    const fresh = uuidOfNqn(hostNqn) ?? randomUUID();
    created.hostId = await writeOnce(idPath, `${fresh}\n`);
    hostId = created.hostId
      ? fresh
      : checkRead(idPath, 'host id (UUID)', validId, await readOpt(idPath)).toLowerCase();
  }
  await syncDir(dir);
  return { hostNqn, hostId, created };
}

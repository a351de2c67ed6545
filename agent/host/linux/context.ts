// What LinuxHost's sections share: the host's identity, the one exec wrapper (exec.ts, the only
// place commands run), the nvmet configfs root, the kernel modules loaded once, and small file
// readers. sysfs and configfs files are read raw here; parse/ turns them into values.
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { CancelledError, HostError } from '../errors.ts';
import type { Exec, ExecResult } from '../exec.ts';
import type { OpOptions } from '../types.ts';

export class LinuxContext {
  readonly hostNqn: string;
  readonly hostId: string;
  /** nvmet configfs root. */
  readonly cfs: string;
  private readonly run: Exec;
  private modules: Promise<void> | undefined;

  constructor(hostNqn: string, hostId: string, cfs: string, run: Exec) {
    this.hostNqn = hostNqn;
    this.hostId = hostId;
    this.cfs = cfs;
    this.run = run;
  }

  x(
    cmd: string,
    args: string[],
    o?: OpOptions,
    extra: { okCodes?: number[]; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    return this.run(cmd, args, { signal: o?.signal, ...extra });
  }

  ensureModules(o?: OpOptions): Promise<void> {
    this.modules ??= (async () => {
      for (const m of ['nvmet', 'nvmet_tcp', 'nvme_tcp', 'nvme_fabrics', 'md_mod', 'raid1', 'dm_mod']) {
        await this.x('modprobe', [m], o);
      }
    })();
    return this.modules;
  }
}

export function check(o: OpOptions | undefined): void {
  if (o?.signal?.aborted) throw new CancelledError('operation cancelled before it started');
}

export const exists = (p: string): Promise<boolean> =>
  access(p, constants.F_OK).then(
    () => true,
    () => false,
  );
/** A file as it is (sysfs values end in a newline), undefined when it cannot be read. */
export const readRaw = (p: string): Promise<string | undefined> => readFile(p, 'utf8').catch(() => undefined);
export const readText = async (p: string): Promise<string> => (await readFile(p, 'utf8')).trim();
export const readOpt = (p: string): Promise<string | undefined> => readText(p).catch(() => undefined);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 100 ms for up to `ms` (device nodes and sysfs settle asynchronously). */
export async function waitFor(cond: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new HostError(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

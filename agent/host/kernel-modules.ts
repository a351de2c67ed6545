// The kernel modules MeshStor needs on a node: the NVMe-oF target and its TCP transport, the TCP
// initiator, MD RAID1, and device-mapper (the fence layer). Checked at agent start (/proc/modules, and /sys/module for built-ins),
// missing ones loaded with modprobe through the one exec wrapper. What still misses is said in
// words an admin acts on: the MeshStorNode condition, an Event, and NodeStage's refusal.
import { access, readFile } from 'node:fs/promises';
import { CancelledError, CommandError } from './errors.ts';
import type { Exec } from './exec.ts';

/** modprobe names, in load order (modprobe loads dependencies itself). */
export const REQUIRED_MODULES = [
  'nvme-fabrics',
  'nvme-tcp',
  'nvmet',
  'nvmet-tcp',
  'md_mod',
  'raid1',
  // the fence layer under every local member of an array (guard.ts, ADR 0006): linear + error
  'dm-mod',
] as const;

/** The kernel config option behind each module: what a custom kernel must enable. */
const CONFIG: Record<string, string> = {
  'nvme-fabrics': 'CONFIG_NVME_FABRICS',
  'nvme-tcp': 'CONFIG_NVME_TCP',
  nvmet: 'CONFIG_NVME_TARGET',
  'nvmet-tcp': 'CONFIG_NVME_TARGET_TCP',
  md_mod: 'CONFIG_BLK_DEV_MD',
  raid1: 'CONFIG_MD_RAID1',
  'dm-mod': 'CONFIG_BLK_DEV_DM',
};

export const MODULES_CONDITION = 'KernelModulesLoaded';

/** The name the kernel lists a module under (/proc/modules, /sys/module): '-' becomes '_'. */
export const kernelModuleName = (m: string): string => m.replaceAll('-', '_');

/** Names of the loaded modules from /proc/modules ("name size refcount deps state address" lines). */
export function parseProcModules(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const name = line.split(' ', 1)[0];
    if (name) out.add(name);
  }
  return out;
}

export interface ModuleStatus {
  /** modprobe name. */
  module: string;
  /** `loaded`: found loaded; `built-in`: in the kernel itself; `loaded-now`: this call loaded it. */
  state: 'loaded' | 'built-in' | 'loaded-now' | 'missing';
  /** Why it is missing (modprobe's complaint). */
  reason?: string;
}

export interface KernelModulesReport {
  ok: boolean;
  modules: ModuleStatus[];
  missing: ModuleStatus[];
  /** For the admin, when something is missing: which, why, and what to do. */
  message?: string;
}

export interface ModuleReader {
  /** /proc/modules text; undefined when it cannot be read (a kernel without module support). */
  procModules(): Promise<string | undefined>;
  /** Whether /sys/module/<name> exists (loaded modules and built-ins with parameters appear there). */
  inSysModule(name: string): Promise<boolean>;
}

export const linuxModuleReader: ModuleReader = {
  procModules: () => readFile('/proc/modules', 'utf8').catch(() => undefined),
  inSysModule: (name) =>
    access(`/sys/module/${name}`).then(
      () => true,
      () => false,
    ),
};

export interface EnsureModulesOptions {
  exec: Exec;
  reader?: ModuleReader;
  modules?: readonly string[];
  signal?: AbortSignal | undefined;
}

const NOT_FOUND = /not found in directory|could not find module|Module .* not found/i;

function reasonOf(module: string, e: unknown): string {
  if (!(e instanceof CommandError)) return e instanceof Error ? e.message : String(e);
  const said =
    e.stderr.trim().split('\n').slice(-2).join(' ') || e.message.split('\n')[0] || 'modprobe failed';
  return NOT_FOUND.test(said)
    ? `${said} (the kernel was built without ${CONFIG[module] ?? 'it'}, or the host's /lib/modules is not mounted into the agent)`
    : said;
}

/** What to tell the admin about the missing modules. */
export function missingModulesMessage(missing: readonly ModuleStatus[]): string | undefined {
  if (missing.length === 0) return undefined;
  const names = missing.map((m) => m.module);
  const why = missing.map((m) => `${m.module}: ${m.reason ?? 'not loaded'}`).join('; ');
  return (
    `kernel modules missing: ${names.join(', ')} (${why}). On the node, load them with ` +
    `"modprobe -a ${names.join(' ')}", or add them to /etc/modules-load.d/meshstor.conf (one a line) to load them at boot`
  );
}

/**
 * Checks each module and loads the missing ones (modprobe, bounded to 30 s each). Never throws for
 * a module that cannot be loaded: it is reported in the result. A cancelled call throws.
 */
export async function ensureKernelModules(opts: EnsureModulesOptions): Promise<KernelModulesReport> {
  const reader = opts.reader ?? linuxModuleReader;
  const loaded = parseProcModules((await reader.procModules()) ?? '');
  const modules: ModuleStatus[] = [];
  for (const module of opts.modules ?? REQUIRED_MODULES) {
    const name = kernelModuleName(module);
    if (loaded.has(name)) {
      modules.push({ module, state: 'loaded' });
      continue;
    }
    if (await reader.inSysModule(name)) {
      modules.push({ module, state: 'built-in' });
      continue;
    }
    try {
      // modprobe also succeeds for a built-in without parameters (it knows modules.builtin)
      await opts.exec('modprobe', [module], { signal: opts.signal, timeoutMs: 30_000 });
      modules.push({ module, state: 'loaded-now' });
    } catch (e) {
      if (e instanceof CancelledError) throw e;
      modules.push({ module, state: 'missing', reason: reasonOf(module, e) });
    }
  }
  const missing = modules.filter((m) => m.state === 'missing');
  const message = missingModulesMessage(missing);
  return { ok: missing.length === 0, modules, missing, ...(message ? { message } : {}) };
}

/** A MeshStorNode condition (kube/crds.ts Condition without its time), kept here free of kube/. */
export interface ModulesCondition {
  type: typeof MODULES_CONDITION;
  status: 'True' | 'False';
  reason: 'AllLoaded' | 'ModulesMissing';
  message: string;
}

/** The MeshStorNode condition for the report (type KernelModulesLoaded). */
export function kernelModulesCondition(r: KernelModulesReport): ModulesCondition {
  return r.ok
    ? {
        type: MODULES_CONDITION,
        status: 'True',
        reason: 'AllLoaded',
        message: r.modules.map((m) => `${m.module} ${m.state}`).join(', '),
      }
    : {
        type: MODULES_CONDITION,
        status: 'False',
        reason: 'ModulesMissing',
        message: r.message ?? 'kernel modules missing',
      };
}

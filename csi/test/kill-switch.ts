// Crash-and-resume in process: the Hosts and the store a controller and agents work through are
// wrapped so that, after `limit` state-changing calls, the next one and every call after it throws
// (the process was killed -9 there: what was done stays, nothing more happens). The test then
// builds the controller and agents again over the real Hosts and store, as a restart would, and
// lets them finish. Reads count as nothing; any Host method that does not start with get, list,
// find or read changes something.
import type { VolumeStore } from '../../state/store.ts';

export class Killed extends Error {
  constructor(at: string) {
    super(`killed -9 before ${at}`);
    this.name = 'Killed';
  }
}

const READ = /^(get|list|find|read)/;

export class KillSwitch {
  private readonly limit: number;
  /** The state-changing calls made before the kill, in order. */
  readonly steps: string[] = [];
  /** Where it was killed, once it was. */
  killedAt: string | undefined;

  constructor(limit = Number.POSITIVE_INFINITY) {
    this.limit = limit;
  }

  private step(what: string, changes: boolean): void {
    if (this.killedAt) throw new Killed(`${what} (already dead)`);
    if (!changes) return;
    if (this.steps.length >= this.limit) {
      this.killedAt = what;
      throw new Killed(what);
    }
    this.steps.push(what);
  }

  private wrap<T extends object>(name: string, target: T, changes: (method: string) => boolean): T {
    return new Proxy(target, {
      get: (t, prop, recv) => {
        const v = Reflect.get(t, prop, recv);
        if (typeof v !== 'function' || typeof prop !== 'string') return v;
        return (...args: unknown[]) => {
          this.step(`${name}.${prop}`, changes(prop));
          return (v as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  }

  host<H extends object>(node: string, host: H): H {
    return this.wrap(node, host, (m) => !READ.test(m) && m !== 'constructor');
  }

  store(store: VolumeStore): VolumeStore {
    const ledger = this.wrap('ledger', store.ledger, (m) => m === 'write');
    const wrapped = this.wrap('store', store, (m) => m === 'create' || m === 'replace' || m === 'remove');
    return new Proxy(wrapped, { get: (t, p, r) => (p === 'ledger' ? ledger : Reflect.get(t, p, r)) });
  }
}

// One active allocator: a coordination.k8s.io Lease names the controller that may allocate.
// Expiry is judged by the local clock from when this process last saw the lease change (as
// client-go does), so clock skew between controllers cannot hand the lease to two of them.
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { httpStatusOf, kubeErrorMessage } from '../kube/client.ts';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseSeconds?: number;
  retryMs?: number;
  onChange?: (leading: boolean, holder: string | undefined) => void;
  onError?: (message: string) => void;
}

export class LeaseElector {
  private readonly api: CoordinationV1Api;
  private readonly o: Required<Omit<LeaseOptions, 'onChange' | 'onError'>> &
    Pick<LeaseOptions, 'onChange' | 'onError'>;
  private leading = false;
  private holder: string | undefined;
  private observed: { version: string | undefined; at: number } = { version: undefined, at: 0 };
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(kc: KubeConfig, o: LeaseOptions) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.o = { leaseSeconds: 15, retryMs: 2000, ...o };
  }

  get isLeader(): boolean {
    // A leader that could not renew within the lease must assume someone else took over.
    return this.leading && Date.now() - this.lastRenew < this.o.leaseSeconds * 1000;
  }

  get currentHolder(): string | undefined {
    return this.holder;
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      await this.tick();
      if (!this.stopped) this.timer = setTimeout(loop, this.o.retryMs);
    };
    void loop();
  }

  /** Stops trying; a leader hands the lease back so a successor need not wait for expiry. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.set(false, undefined);
    try {
      const l = await this.read();
      if (l?.spec?.holderIdentity === this.o.identity) {
        l.spec.holderIdentity = undefined;
        l.spec.leaseDurationSeconds = 1;
        await this.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: l });
      }
    } catch (e) {
      this.o.onError?.(`releasing lease ${this.o.name}: ${kubeErrorMessage(e)}`);
    }
  }

  private async read(): Promise<V1Lease | undefined> {
    try {
      return await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw e;
    }
  }

  /** One acquire-or-renew attempt. */
  async tick(): Promise<boolean> {
    // MicroTime: the apiserver wants six fractional digits, which a plain Date does not print.
    const now = new V1MicroTime();
    try {
      const l = await this.read();
      if (!l) {
        await this.api.createNamespacedLease({
          namespace: this.o.namespace,
          body: {
            metadata: { name: this.o.name, namespace: this.o.namespace },
            spec: {
              holderIdentity: this.o.identity,
              leaseDurationSeconds: this.o.leaseSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        return this.won(now);
      }
      const spec = l.spec ?? {};
      if (l.metadata?.resourceVersion !== this.observed.version) {
        this.observed = { version: l.metadata?.resourceVersion, at: Date.now() };
      }
      const mine = spec.holderIdentity === this.o.identity;
      const expired =
        !spec.holderIdentity ||
        Date.now() - this.observed.at > (spec.leaseDurationSeconds ?? this.o.leaseSeconds) * 1000;
      if (!mine && !expired) {
        this.set(false, spec.holderIdentity);
        return false;
      }
      const body: V1Lease = {
        ...l,
        spec: {
          ...spec,
          holderIdentity: this.o.identity,
          leaseDurationSeconds: this.o.leaseSeconds,
          renewTime: now,
          acquireTime: mine ? spec.acquireTime : now,
          leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      };
      const written = await this.api.replaceNamespacedLease({
        name: this.o.name,
        namespace: this.o.namespace,
        body,
      });
      this.observed = { version: written.metadata?.resourceVersion, at: Date.now() };
      return this.won(now);
    } catch (e) {
      // 409: someone else wrote the lease first; anything else: we cannot tell, so do not lead.
      if (httpStatusOf(e) !== 409) this.o.onError?.(`lease ${this.o.name}: ${kubeErrorMessage(e)}`);
      if (!this.isLeader) this.set(false, this.holder);
      return false;
    }
  }

  private won(at: Date): boolean {
    this.lastRenew = at.getTime();
    this.set(true, this.o.identity);
    return true;
  }

  private set(leading: boolean, holder: string | undefined): void {
    const changed = leading !== this.leading || holder !== this.holder;
    this.leading = leading;
    this.holder = holder;
    if (changed) this.o.onChange?.(leading, holder);
  }
}

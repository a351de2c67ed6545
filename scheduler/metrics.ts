// Prometheus metrics of the extender, on a registry of its own (several extenders can live in one
// test process).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { metricsRegistry } from '../kube/metrics.ts';

export class ExtenderMetrics {
  readonly registry: Registry;
  readonly latency: Histogram<'verb'>;
  readonly errors: Counter<'verb' | 'code'>;
  readonly cacheObjects: Gauge<'kind'>;

  constructor(sizes: () => Record<string, number>, defaults = false) {
    this.registry = metricsRegistry('extender', defaults);
    this.latency = new Histogram({
      name: 'meshstor_extender_request_duration_seconds',
      help: 'Time to answer one kube-scheduler extender call, by verb',
      labelNames: ['verb'],
      // The extender runs inside kube-scheduler's single scheduling loop: sub-millisecond matters.
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 2],
      registers: [this.registry],
    });
    this.errors = new Counter({
      name: 'meshstor_extender_errors_total',
      help: 'Extender calls answered with an HTTP error, by verb and status code',
      labelNames: ['verb', 'code'],
      registers: [this.registry],
    });
    this.cacheObjects = new Gauge({
      name: 'meshstor_extender_cache_objects',
      help: 'Objects in the extender caches, by kind',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        for (const [kind, n] of Object.entries(sizes())) this.set({ kind }, n);
      },
    });
  }

  /** Sum of meshstor_extender_errors_total over the given status-code class ('4' or '5'), all verbs. */
  async errorCount(codeClass: '4' | '5'): Promise<number> {
    const m = await this.errors.get();
    return m.values
      .filter((v) => String(v.labels.code).startsWith(codeClass))
      .reduce((s, v) => s + v.value, 0);
  }
}

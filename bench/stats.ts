// Timing helpers for benchmarks (never for tests): percentiles over per-call samples.

export interface Summary {
  count: number;
  perSecond: number;
  p50us: number;
  p99us: number;
  maxUs: number;
}

/** Calls `fn(i)` `count` times, timing each call; returns rate and latency percentiles. */
export function measure(count: number, fn: (i: number) => void): Summary {
  const samples = new Float64Array(count);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const totalSec = Number(process.hrtime.bigint() - start) / 1e9;
  return summarize(samples, totalSec);
}

export function summarize(samples: Float64Array, totalSec: number): Summary {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return {
    count: samples.length,
    perSecond: samples.length / totalSec,
    p50us: at(0.5),
    p99us: at(0.99),
    maxUs: sorted[sorted.length - 1] as number,
  };
}

export function fmt(s: Summary): string {
  return `${Math.round(s.perSecond).toLocaleString('en-US')}/s  p50 ${s.p50us.toFixed(1)} µs  p99 ${s.p99us.toFixed(1)} µs  (n=${s.count})`;
}

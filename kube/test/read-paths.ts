// Which fields of an object a piece of code reads: the object is handed over behind a Proxy that
// records every path read (["status", "drives", "0", "sizeBytes"]) with the value found there.
// Tests of informer slims use it to check that a slimmed object still has everything its reader
// reads.

/** Stands for "an object or array was here" among the recorded values. */
export const PRESENT = Symbol('present');

/** Path (JSON array of keys: annotation keys have dots) -> the value read there. */
export function readPaths<T extends object>(obj: T, read: (o: T) => void): Map<string, unknown> {
  const reads = new Map<string, unknown>();
  const wrap = (v: unknown, path: string[]): unknown => {
    if (v === null || typeof v !== 'object') return v;
    return new Proxy(v, {
      get(target, key, receiver) {
        const val: unknown = Reflect.get(target, key, receiver);
        if (typeof key === 'symbol' || typeof val === 'function') return val;
        const p = [...path, key];
        reads.set(JSON.stringify(p), val !== null && typeof val === 'object' ? PRESENT : val);
        return wrap(val, p);
      },
    });
  };
  read(wrap(obj, []) as T);
  return reads;
}

/** The value at a recorded path (PRESENT for an object or array). */
export function valueAt(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const k of JSON.parse(path) as string[]) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v !== null && typeof v === 'object' ? PRESENT : v;
}

/**
 * The values (not objects: what is read beneath them is what counts) `read` reads of `whole`
 * that the slimmed copy does not have, as `path = value (slim: value)`.
 */
export function missingFromSlim<T extends object>(whole: T, slim: (o: T) => T, read: (o: T) => void) {
  const slimmed = slim(structuredClone(whole));
  return [...readPaths(whole, read)]
    .filter(([p, v]) => v !== PRESENT && valueAt(slimmed, p) !== v)
    .map(
      ([p, v]) =>
        `${(JSON.parse(p) as string[]).join('.')} = ${String(v)} (slim: ${String(valueAt(slimmed, p))})`,
    );
}

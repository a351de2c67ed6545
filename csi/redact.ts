// Secrets never reach a log: request fields the spec marks as secret are replaced before logging.

const SECRET_FIELDS = new Set(['secrets']);

export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (SECRET_FIELDS.has(k) && v && typeof v === 'object') {
      out[k] = Object.fromEntries(Object.keys(v).map((key) => [key, '***']));
    } else out[k] = redact(v);
  }
  return out;
}

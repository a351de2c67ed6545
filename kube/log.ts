// Structured JSON logs (pino) for every long-running MeshStor process.
import { type Logger, pino } from 'pino';

export type { Logger };

export function makeLogger(name: string, level: string = process.env.MESHSTOR_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { component: name } });
}

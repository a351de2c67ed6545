// Structured JSON logs (pino) for every long-running MeshStor process, on stderr (stdout stays for
// a command's own output), written synchronously so the last lines before an exit are not lost.
import { type Logger, pino } from 'pino';

export type { Logger };

export function makeLogger(name: string, level: string = process.env.MESHSTOR_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { component: name } }, pino.destination({ fd: 2, sync: true }));
}

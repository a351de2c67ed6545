// Structured JSON logs (pino) for every long-running MeshStor process, on stderr (stdout stays for
// a command's own output), written synchronously so the last lines before an exit are not lost.
// Every line passes redactSecrets on its way out: a DH-HMAC-CHAP secret never reaches a log, even
// one that slipped into an error message or a logged object.
import { type DestinationStream, type Logger, pino } from 'pino';
import { redactSecrets } from './redact.ts';

export type { Logger };

/** A pino destination that redacts each line before `out` writes it. */
export function redactingDestination(out: { write(line: string): unknown }): DestinationStream {
  return { write: (line: string) => void out.write(redactSecrets(line)) };
}

export function makeLogger(name: string, level: string = process.env.MESHSTOR_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    { level, base: { component: name } },
    redactingDestination(pino.destination({ fd: 2, sync: true })),
  );
}

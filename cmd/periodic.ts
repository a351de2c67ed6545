// Background passes of the long-running commands, and their orderly stop.
import type { Server } from '@grpc/grpc-js';

export interface Periodic {
  /** No new pass starts; resolves when the one running (if any) has finished. */
  stop(): Promise<void>;
}

/** Runs `pass` every `ms` after the previous one ended (never two at once); its errors are the caller's to log. */
export function every(ms: number, pass: () => Promise<void>): Periodic {
  let stopped = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    running = pass()
      .catch(() => {})
      .finally(() => {
        running = undefined;
        // A pass that ends after stop() must not schedule another: it would keep the process alive.
        if (!stopped) timer = setTimeout(tick, ms);
      });
  };
  timer = setTimeout(tick, ms);
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** Stops serving: lets calls in flight finish, but not for longer than `graceMs`. */
export function shutdownServer(server: Server, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

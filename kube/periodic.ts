// Background passes of the long-running processes (never two at once), and their orderly stop.

export interface Periodic {
  /** No new pass starts; resolves when the one running (if any) has finished. */
  stop(): Promise<void>;
  /** Runs a pass now instead of at the next period (after the running one, if any). */
  kick(): void;
}

/** Runs `pass` every `ms` after the previous one ended (never two at once); its errors are the caller's to log. */
export function every(ms: number, pass: () => Promise<void>): Periodic {
  let stopped = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let again = false;
  const tick = () => {
    clearTimeout(timer);
    running = pass()
      .catch(() => {})
      .finally(() => {
        running = undefined;
        // A pass that ends after stop() must not schedule another: it would keep the process alive.
        if (stopped) return;
        // Kicks that came while it ran are served by one more pass, at once.
        timer = setTimeout(tick, again ? 0 : ms);
        again = false;
      });
  };
  timer = setTimeout(tick, ms);
  return {
    kick: () => {
      if (stopped) return;
      if (running) again = true;
      else tick();
    },
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

// Serialises work per key: a second call on the same volume waits for the first instead of
// failing with ABORTED, which the spec allows and callers handle better. Every wait and every
// answer is bounded by the caller's signal (a CSI call's cancel or deadline): a caller whose call
// has ended stops waiting for the key, and is answered even while its work is still finishing.

/** Settles like `p`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /**
   * Runs `work` once every earlier holder of `key` is done. With a signal, the wait ends when it
   * aborts (rejecting with its reason; the key was never held), and so does this call's answer.
   * The key itself stays held until `work` settles, whatever the signal says: letting a second
   * caller in beside work that is still running would be the race the lock exists to prevent, so
   * work must stop on the same signal (the Host's commands do).
   */
  async run<T>(key: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    // The key is free again when the last queued holder is done, whether it ran or gave up waiting.
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    try {
      await untilAborted(before, signal);
    } catch (e) {
      release();
      throw e;
    }
    const running = (async () => {
      try {
        return await work();
      } finally {
        release();
      }
    })();
    // Answered early on abort: the work's own outcome is then nobody's to hear.
    running.catch(() => undefined);
    return untilAborted(running, signal);
  }

  /** Runs `work` only if nobody holds the key now; otherwise returns `busy` at once. */
  async tryRun<T, B>(key: string, work: () => Promise<T>, busy: B, signal?: AbortSignal): Promise<T | B> {
    if (this.tails.has(key)) return busy;
    return this.run(key, work, signal);
  }

  get size(): number {
    return this.tails.size;
  }
}

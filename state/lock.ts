// Serialises work per key: a second call on the same volume waits for the first instead of
// failing with ABORTED, which the spec allows and callers handle better.

export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    await before;
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Runs `work` only if nobody holds the key now; otherwise returns `busy` at once. */
  async tryRun<T, B>(key: string, work: () => Promise<T>, busy: B): Promise<T | B> {
    if (this.tails.has(key)) return busy;
    return this.run(key, work);
  }

  get size(): number {
    return this.tails.size;
  }
}

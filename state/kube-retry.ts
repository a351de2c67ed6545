// Retrying what the apiserver says is temporary, for the state layer's reads.
import { httpStatusOf } from '../kube/client.ts';

/**
 * Retries what the apiserver says is temporary (429 "storage is (re)initializing", 5xx) a few
 * times with backoff; anything else, or the last failure, is thrown as it is.
 */
export async function retryTransient<T>(what: () => Promise<T>, attempts = 6): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await what();
    } catch (e) {
      const code = httpStatusOf(e);
      if (i >= attempts || !(code === 429 || code >= 500)) throw e;
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** i)));
    }
  }
}

// Warning (and Normal) Events on MeshStor objects: where `kubectl describe` shows a user why something waits.
// Best effort (an Event that cannot be written is logged, never fatal) and deduplicated: the same
// reason and message on the same object is written once per `quietMs`.
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { kubeErrorMessage } from './client.ts';
import { API_VERSION } from './crds.ts';
import { redactSecrets } from './redact.ts';

export interface EventTarget {
  kind: 'MeshStorVolume' | 'MeshStorNode';
  name: string;
}

export type WriteEvent = (namespace: string, body: CoreV1Event) => Promise<unknown>;

export class EventRecorder {
  private readonly write: WriteEvent;
  private readonly component: string;
  private readonly quietMs: number;
  private readonly onError: (message: string) => void;
  private readonly sent = new Map<string, number>();

  constructor(o: {
    component: string;
    write: WriteEvent;
    quietMs?: number;
    onError?: (message: string) => void;
  }) {
    this.write = o.write;
    this.component = o.component;
    this.quietMs = o.quietMs ?? 10 * 60_000;
    this.onError = o.onError ?? (() => {});
  }

  static forCluster(kc: KubeConfig, component: string, onError?: (message: string) => void): EventRecorder {
    const api = kc.makeApiClient(CoreV1Api);
    return new EventRecorder({
      component,
      onError,
      write: (namespace, body) => api.createNamespacedEvent({ namespace, body }),
    });
  }

  /** Returns whether an Event was written (false: a duplicate within the quiet period, or it failed). */
  warn(on: EventTarget, reason: string, message: string, now = Date.now()): Promise<boolean> {
    return this.record('Warning', on, reason, message, now);
  }

  /** A Normal Event: progress a user may want to see (a member catching up), same deduplication. */
  note(on: EventTarget, reason: string, message: string, now = Date.now()): Promise<boolean> {
    return this.record('Normal', on, reason, message, now);
  }

  private async record(
    type: 'Warning' | 'Normal',
    on: EventTarget,
    reason: string,
    message: string,
    now: number,
  ): Promise<boolean> {
    const key = `${on.kind}/${on.name}/${reason}/${message}`;
    const last = this.sent.get(key);
    if (last !== undefined && now - last < this.quietMs) return false;
    this.sent.set(key, now);
    for (const [k, t] of this.sent) if (now - t >= this.quietMs) this.sent.delete(k);
    const at = new Date(now);
    try {
      // Cluster-scoped objects' Events live in "default", where kubectl describe looks for them.
      await this.write('default', {
        metadata: { generateName: `${on.name}.` },
        involvedObject: { apiVersion: API_VERSION, kind: on.kind, name: on.name },
        type,
        reason,
        message: redactSecrets(message).slice(0, 1024),
        source: { component: this.component },
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
      });
      return true;
    } catch (e) {
      this.onError(`event ${reason} on ${on.kind} ${on.name}: ${kubeErrorMessage(e)}`);
      return false;
    }
  }
}

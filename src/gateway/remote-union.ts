/**
 * What other regions want, as one set of (subject, queue) keys over every origin: a reference count per
 * key, reporting only 0->1 and 1->0. RemoteInterest feeds it as origins' entries come and go; a region
 * port that must subscribe on behalf of other regions (the leafnode adapter) watches it.
 */
import type { RemoteInterestChange, RemoteInterestKey, RemoteInterestSource } from "../region/port.js";

export class RemoteInterestUnion implements RemoteInterestSource {
  // Nested maps, as InterestSet: no separator is guaranteed unused in subjects or queue names.
  private readonly counts = new Map<string, Map<string | undefined, number>>();
  private readonly listeners = new Set<(change: RemoteInterestChange) => void>();

  /** One more origin wants the key. */
  add(subject: string, queue: string | undefined): void {
    let byQueue = this.counts.get(subject);
    if (byQueue === undefined) {
      byQueue = new Map();
      this.counts.set(subject, byQueue);
    }
    const n = byQueue.get(queue) ?? 0;
    byQueue.set(queue, n + 1);
    if (n === 0) this.emit({ op: "add", subject, queue });
  }

  /** One origin no longer wants the key; removing what is not there does nothing. */
  remove(subject: string, queue: string | undefined): void {
    const byQueue = this.counts.get(subject);
    const n = byQueue?.get(queue);
    if (byQueue === undefined || n === undefined) return;
    if (n > 1) {
      byQueue.set(queue, n - 1);
      return;
    }
    byQueue.delete(queue);
    if (byQueue.size === 0) this.counts.delete(subject);
    this.emit({ op: "remove", subject, queue });
  }

  /** How many origins want the key. */
  count(subject: string, queue: string | undefined): number {
    return this.counts.get(subject)?.get(queue) ?? 0;
  }

  snapshot(): RemoteInterestKey[] {
    const out: RemoteInterestKey[] = [];
    for (const [subject, byQueue] of this.counts)
      for (const queue of byQueue.keys()) out.push({ subject, queue });
    return out;
  }

  onChange(listener: (change: RemoteInterestChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(c: RemoteInterestChange): void {
    for (const l of this.listeners) l(c);
  }
}

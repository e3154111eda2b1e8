/**
 * Reference-counted interest per (subject, queue), reporting only the transitions a peer must hear about.
 *
 * A peer needs one plain interest per subject however many local subscriptions back it, so plain changes
 * are reported only on 0->1 and 1->0. For a queue group the peer weighs its choice of member by the group's
 * size, so every change of member count is reported. Subjects are not validated here: callers add what the
 * sublist already accepted.
 */

export type InterestChange =
  | {
      readonly op: "add" | "remove";
      readonly subject: string;
      readonly queue: undefined;
      /** 1 on add, 0 on remove. */
      readonly weight: number;
    }
  | {
      readonly op: "add" | "update" | "remove";
      readonly subject: string;
      readonly queue: string;
      /** Member count after the change; 0 on remove. */
      readonly weight: number;
    };

export interface InterestEntry {
  readonly subject: string;
  readonly queue: string | undefined;
  readonly weight: number;
}

export class InterestSet {
  // Nested maps rather than a joined "subject queue" key: nothing here guarantees a separator is unused.
  private readonly plain = new Map<string, number>();
  private readonly queues = new Map<string, Map<string, number>>();
  private queueEntries = 0;

  add(subject: string, queue?: string): InterestChange | undefined {
    if (queue === undefined) {
      const count = this.plain.get(subject) ?? 0;
      this.plain.set(subject, count + 1);
      return count === 0 ? { op: "add", subject, queue: undefined, weight: 1 } : undefined;
    }
    let groups = this.queues.get(subject);
    if (groups === undefined) {
      groups = new Map();
      this.queues.set(subject, groups);
    }
    const weight = (groups.get(queue) ?? 0) + 1;
    groups.set(queue, weight);
    if (weight === 1) {
      this.queueEntries++;
      return { op: "add", subject, queue, weight };
    }
    return { op: "update", subject, queue, weight };
  }

  /** Undoes one add. Removing what is not there returns undefined. */
  remove(subject: string, queue?: string): InterestChange | undefined {
    if (queue === undefined) {
      const count = this.plain.get(subject);
      if (count === undefined) return undefined;
      if (count > 1) {
        this.plain.set(subject, count - 1);
        return undefined;
      }
      this.plain.delete(subject);
      return { op: "remove", subject, queue: undefined, weight: 0 };
    }
    const groups = this.queues.get(subject);
    const count = groups?.get(queue);
    if (groups === undefined || count === undefined) return undefined;
    if (count > 1) {
      groups.set(queue, count - 1);
      return { op: "update", subject, queue, weight: count - 1 };
    }
    groups.delete(queue);
    if (groups.size === 0) this.queues.delete(subject);
    this.queueEntries--;
    return { op: "remove", subject, queue, weight: 0 };
  }

  /** Plain: the reference count. Queue: the member count. 0 if absent. */
  weight(subject: string, queue?: string): number {
    if (queue === undefined) return this.plain.get(subject) ?? 0;
    return this.queues.get(subject)?.get(queue) ?? 0;
  }

  snapshot(): InterestEntry[] {
    const out: InterestEntry[] = [];
    for (const [subject, weight] of this.plain) out.push({ subject, queue: undefined, weight });
    for (const [subject, groups] of this.queues) {
      for (const [queue, weight] of groups) out.push({ subject, queue, weight });
    }
    return out;
  }

  /** Distinct (subject, queue) entries. */
  get size(): number {
    return this.plain.size + this.queueEntries;
  }
}

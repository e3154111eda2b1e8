/**
 * The region's interest as the hub reports it over LS+/LS-: one entry per (subject, queue), plain entries
 * present or not, queue entries with the absolute member count the hub sends. Turned into the same
 * transitions the embedded broker's InterestSet reports (plain 0->1 / 1->0, every queue weight change),
 * and diffed against a fresh snapshot after a reconnect so the gateway sees changes, not a flap.
 */
import type { InterestChange, InterestEntry } from "../../interest/interest-set.js";
import { isValidSubject, isWireSafe } from "../../interest/subject.js";
import { Sublist } from "../../interest/sublist.js";

/**
 * Subjects that are the cluster's own business and must not become interest of the region: loop detection
 * (`$LDS.`), the system account's services (`$SYS.`), nats gateway routing (`$GR.`, `_GR_.`), and the
 * routed replies the adapter itself subscribes to (`_BHR_.`, routed by prefix without interest).
 */
const INTERNAL_PREFIXES = ["$LDS.", "$SYS.", "$GR.", "_GR_.", "_BHR_."];

export function isInternalSubject(subject: string): boolean {
  for (const p of INTERNAL_PREFIXES) if (subject.startsWith(p)) return true;
  return false;
}

interface Entry extends InterestEntry {
  readonly subject: string;
  readonly queue: string | undefined;
  readonly weight: number;
}

export class HubInterest {
  // Nested maps: nothing guarantees a separator byte is unused in subjects or queue names.
  private readonly plain = new Map<string, Entry>();
  private readonly queues = new Map<string, Map<string, Entry>>();
  /** For matching injected messages against what the region wants. */
  readonly sublist = new Sublist<Entry>();

  /** Whether an LS+/LS- for this (subject, queue) may be applied at all. */
  static accepts(subject: string, queue: string | undefined): boolean {
    return (
      !isInternalSubject(subject) && isValidSubject(subject) && (queue === undefined || isWireSafe(queue))
    );
  }

  get size(): number {
    let n = this.plain.size;
    for (const g of this.queues.values()) n += g.size;
    return n;
  }

  get(subject: string, queue: string | undefined): Entry | undefined {
    return queue === undefined ? this.plain.get(subject) : this.queues.get(subject)?.get(queue);
  }

  /** LS+ with an absolute weight (1 for plain). */
  set(subject: string, queue: string | undefined, weight: number): InterestChange | undefined {
    const old = this.get(subject, queue);
    if (old !== undefined && (queue === undefined || old.weight === weight)) return undefined;
    const e: Entry = { subject, queue, weight: queue === undefined ? 1 : weight };
    if (old !== undefined) this.sublist.remove(old);
    this.sublist.insert(e);
    if (queue === undefined) {
      this.plain.set(subject, e);
      return { op: "add", subject, queue: undefined, weight: 1 };
    }
    let g = this.queues.get(subject);
    if (g === undefined) {
      g = new Map();
      this.queues.set(subject, g);
    }
    g.set(queue, e);
    return { op: old === undefined ? "add" : "update", subject, queue, weight };
  }

  delete(subject: string, queue: string | undefined): InterestChange | undefined {
    const old = this.get(subject, queue);
    if (old === undefined) return undefined;
    this.sublist.remove(old);
    if (queue === undefined) {
      this.plain.delete(subject);
      return { op: "remove", subject, queue: undefined, weight: 0 };
    }
    const g = this.queues.get(subject)!;
    g.delete(queue);
    if (g.size === 0) this.queues.delete(subject);
    return { op: "remove", subject, queue, weight: 0 };
  }

  snapshot(): InterestEntry[] {
    const out: InterestEntry[] = [...this.plain.values()];
    for (const g of this.queues.values()) out.push(...g.values());
    return out;
  }

  /**
   * Make this set equal to `next` and return the transitions that takes: what a resync after a reconnect
   * reports (additions and weight changes first, removals last, so a group never looks empty in between).
   */
  replaceWith(next: HubInterest): InterestChange[] {
    const out: InterestChange[] = [];
    for (const e of next.snapshot()) {
      const c = this.set(e.subject, e.queue, e.weight);
      if (c !== undefined) out.push(c);
    }
    for (const e of this.snapshot()) {
      if (next.get(e.subject, e.queue) === undefined) {
        const c = this.delete(e.subject, e.queue);
        if (c !== undefined) out.push(c);
      }
    }
    return out;
  }

  /** Whether a message on `subject` would reach anyone: a plain subscriber or a member of one of `queues`. */
  wants(subject: string, queues: readonly string[]): boolean {
    const m = this.sublist.match(subject);
    if (m.plain.length > 0) return true;
    if (queues.length === 0) return false;
    for (const g of m.queues) if (queues.includes(g[0]!.queue!)) return true;
    return false;
  }
}

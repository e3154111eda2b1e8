/**
 * What every other region wants: per origin region, the (subject, queue, weight) entries it advertised
 * and the (epoch, seq) last applied, all in one sublist so a publish finds the interested regions with
 * one cached match.
 *
 * Invariants:
 * - an origin's entries change only by a snapshot with a newer (epoch, seq) or by the delta numbered
 *   exactly applied+1 in the same epoch; anything else is a duplicate (ignored) or a gap (the caller asks
 *   for a snapshot);
 * - the sublist holds exactly the entries of the `origins` map (one object per entry, replaced, never
 *   mutated, so match results handed out stay valid);
 * - epochs compare with serial-number arithmetic (RFC 1982) so the u32 wraps harmlessly.
 */

import { isValidSubject, isWireSafe } from "../interest/subject.js";
import type { SubscriptionLike } from "../interest/sublist.js";
import { Sublist } from "../interest/sublist.js";
import { RemoteInterestUnion } from "./remote-union.js";

export interface RemoteEntry extends SubscriptionLike {
  readonly subject: string;
  readonly queue: string | undefined;
  readonly region: string;
  readonly weight: number;
}

export interface OriginState {
  readonly epoch: number;
  readonly seq: number;
  readonly entries: ReadonlyMap<string, RemoteEntry>;
}

/** `invalid`: the change names a subject no subscription can have; nothing was changed. */
export type DeltaOutcome = "applied" | "duplicate" | "gap" | "invalid";

export type DeltaAction = "add" | "update" | "remove" | "skip";

export interface EntryInput {
  readonly subject: string;
  readonly queue: string | undefined;
  readonly weight: number;
}

/** True when epoch `a` is newer than `b` (serial-number arithmetic over u32). */
export function epochNewer(a: number, b: number): boolean {
  const d = (a - b) >>> 0;
  return d !== 0 && d < 0x80000000;
}

function validEntry(e: EntryInput): boolean {
  return isValidSubject(e.subject) && (e.queue === undefined || isWireSafe(e.queue));
}

function key(subject: string, queue: string | undefined): string {
  return queue === undefined ? subject : `${subject}\u0000${queue}`;
}

interface MutableOrigin {
  epoch: number;
  seq: number;
  entries: Map<string, RemoteEntry>;
}

export class RemoteInterest {
  readonly sublist = new Sublist<RemoteEntry>();
  /** Every (subject, queue) some origin wants, counted over origins (weights aside). */
  readonly union = new RemoteInterestUnion();
  private readonly origins = new Map<string, MutableOrigin>();
  /** Bumped on every change: callers cache decisions per generation. */
  generation = 0;

  /** Replace an origin's interest if (epoch, seq) is newer than what was applied. Returns whether it was. */
  applySnapshot(origin: string, epoch: number, seq: number, entries: readonly EntryInput[]): boolean {
    // Entries no subscription could have are dropped before anything changes, so an insert cannot throw
    // half-way through and leave the sublist and the table disagreeing.
    const valid = entries.filter(validEntry);
    const cur = this.origins.get(origin);
    if (cur !== undefined && !epochNewer(epoch, cur.epoch) && !(epoch === cur.epoch && seq > cur.seq)) {
      return false;
    }
    if (cur !== undefined) for (const e of cur.entries.values()) this.sublist.remove(e);
    const map = new Map<string, RemoteEntry>();
    for (const e of valid) {
      if (e.weight <= 0) continue;
      const entry: RemoteEntry = { subject: e.subject, queue: e.queue, region: origin, weight: e.weight };
      const k = key(e.subject, e.queue);
      const old = map.get(k);
      if (old !== undefined) this.sublist.remove(old);
      map.set(k, entry);
      this.sublist.insert(entry);
    }
    this.origins.set(origin, { epoch, seq, entries: map });
    // Only keys that came or went: an unchanged entry must not flap in the union.
    for (const [k, e] of map) if (cur?.entries.has(k) !== true) this.union.add(e.subject, e.queue);
    if (cur !== undefined)
      for (const [k, e] of cur.entries) if (!map.has(k)) this.union.remove(e.subject, e.queue);
    this.generation++;
    return true;
  }

  /** Apply one numbered change from `origin`. */
  applyDelta(origin: string, epoch: number, seq: number, action: DeltaAction, e: EntryInput): DeltaOutcome {
    if (action !== "skip" && !validEntry(e)) return "invalid";
    const cur = this.origins.get(origin);
    if (cur === undefined || epoch !== cur.epoch) {
      // An older epoch is stale; a newer or unknown one needs the full picture first.
      if (cur !== undefined && epochNewer(cur.epoch, epoch)) return "duplicate";
      return "gap";
    }
    if (seq <= cur.seq) return "duplicate";
    if (seq !== cur.seq + 1) return "gap";
    cur.seq = seq;
    if (action === "skip") return "applied";
    const k = key(e.subject, e.queue);
    const old = cur.entries.get(k);
    if (old !== undefined) {
      this.sublist.remove(old);
      cur.entries.delete(k);
    }
    const keep = action !== "remove" && e.weight > 0;
    if (keep) {
      const entry: RemoteEntry = { subject: e.subject, queue: e.queue, region: origin, weight: e.weight };
      cur.entries.set(k, entry);
      this.sublist.insert(entry);
    }
    if (keep && old === undefined) this.union.add(e.subject, e.queue);
    else if (!keep && old !== undefined) this.union.remove(e.subject, e.queue);
    this.generation++;
    return "applied";
  }

  /** Drop everything an origin advertised (it became unreachable). */
  forget(origin: string): boolean {
    const cur = this.origins.get(origin);
    if (cur === undefined) return false;
    for (const e of cur.entries.values()) {
      this.sublist.remove(e);
      this.union.remove(e.subject, e.queue);
    }
    this.origins.delete(origin);
    this.generation++;
    return true;
  }

  origin(origin: string): OriginState | undefined {
    return this.origins.get(origin);
  }

  originNames(): string[] {
    return [...this.origins.keys()];
  }

  /** The entries of one origin, in the form a snapshot carries them. */
  entriesOf(origin: string): EntryInput[] {
    const cur = this.origins.get(origin);
    return cur === undefined ? [] : [...cur.entries.values()];
  }
}

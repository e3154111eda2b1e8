/**
 * A set of subject patterns answering "does any pattern match this subject?" with the sublist's cached
 * match (publish paths ask this per message), and "could any pattern match some subject of this
 * pattern?" (interest filtering asks this per subscription).
 */
import { patternsIntersect } from "./subject.js";
import { Sublist } from "./sublist.js";

interface Pattern {
  readonly subject: string;
  readonly queue: undefined;
}

export class PatternSet {
  private readonly list = new Sublist<Pattern>({ cacheSize: 256 });

  /** `patterns` are wire strings (latin1, one char per byte): convert UTF-8 config text with `toWire`. */
  constructor(readonly patterns: readonly string[]) {
    for (const p of patterns) this.list.insert({ subject: p, queue: undefined });
  }

  matches(subject: string): boolean {
    return this.list.match(subject).plain.length > 0;
  }

  intersects(pattern: string): boolean {
    return this.patterns.some((p) => patternsIntersect(p, pattern));
  }
}

/** Config subjects are UTF-8 text; the broker and links compare latin1 wire strings (one char per byte). */
export function toWire(s: string): string {
  return Buffer.from(s, "utf8").toString("latin1");
}

/**
 * Subjects allowed through every one of several pattern sets (an export list and an import list, say):
 * a subject passes when each set has a pattern matching it. No sets = everything passes.
 */
export class SubjectFilter {
  private readonly sets: readonly PatternSet[];

  constructor(lists: readonly (readonly string[] | undefined)[]) {
    this.sets = lists
      .filter((l): l is readonly string[] => l !== undefined)
      .map((l) => new PatternSet(l.map(toWire)));
  }

  get empty(): boolean {
    return this.sets.length === 0;
  }

  allows(subject: string): boolean {
    for (const s of this.sets) if (!s.matches(subject)) return false;
    return true;
  }

  /** Could some subject matched by `pattern` pass? (Each set checked on its own: a safe over-approximation.) */
  mayAllow(pattern: string): boolean {
    for (const s of this.sets) if (!s.intersects(pattern)) return false;
    return true;
  }
}

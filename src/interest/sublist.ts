/**
 * Sublist: subscriptions indexed by subject for publish-time matching, after nats-server's `sublist.go`.
 *
 * Structure: a trie of levels, one level per token. A level maps literal tokens to nodes and has at most
 * one `*` node and one `>` node. A subscription lives in the node its subject's last token leads to, as a
 * plain subscription or in that node's set for its queue name. Queue members are grouped by queue name
 * across nodes in a result, because `foo.*` q1 and `foo.>` q1 are one group to deliver to.
 *
 * Invariants (the tests check them against a naive matcher):
 * 1. `subs` holds exactly the subscriptions in the trie, each once (identity), in the node of its subject.
 * 2. No node is empty: a node without subscriptions has a non-empty next level. Empty nodes are pruned on
 *    remove and empty levels dropped, so an empty sublist has zero nodes and nothing is leaked.
 * 3. Each cache entry equals a fresh trie walk for its key (as multisets). Inserts and removes patch the
 *    entries they affect rather than dropping the cache: a literal subscription affects only its own key,
 *    a wildcard one the keys it matches. So a hit is one Map lookup and no allocation.
 * 4. Results are frozen and never mutated once handed out, since delivering a message can unsubscribe while
 *    the caller iterates. Patches build new results, sharing the inner arrays that did not change.
 * 5. Cache keys are subjects without empty tokens (those match nothing and are not cached), and the cache
 *    never holds more than `cacheSize` entries; the oldest entry is dropped first.
 */
import { assertValidSubject, subjectHasWildcard, subjectMatches } from "./subject.js";

export interface SubscriptionLike {
  readonly subject: string;
  readonly queue: string | undefined;
}

export interface MatchResult<T> {
  /** Plain (non-queue) subscriptions matching. */
  readonly plain: readonly T[];
  /** One array per queue group (by queue name, across subscription subjects), never empty. */
  readonly queues: readonly (readonly T[])[];
}

export interface SublistStats {
  subscriptions: number;
  nodes: number;
  cacheEntries: number;
  matches: number;
  cacheHits: number;
  inserts: number;
  removes: number;
}

const EMPTY: MatchResult<never> = Object.freeze({
  plain: Object.freeze([] as never[]),
  queues: Object.freeze([] as (readonly never[])[]),
});

const DEFAULT_CACHE_SIZE = 1024;

class Level<T> {
  readonly nodes = new Map<string, TrieNode<T>>();
  pwc: TrieNode<T> | undefined = undefined;
  fwc: TrieNode<T> | undefined = undefined;

  isEmpty(): boolean {
    return this.nodes.size === 0 && this.pwc === undefined && this.fwc === undefined;
  }
}

class TrieNode<T> {
  next: Level<T> | undefined = undefined;
  readonly plain = new Set<T>();
  queues: Map<string, Set<T>> | undefined = undefined;

  isEmpty(): boolean {
    return this.plain.size === 0 && this.queues === undefined && this.next === undefined;
  }
}

function makeResult<T>(plain: readonly T[], queues: readonly (readonly T[])[]): MatchResult<T> {
  if (plain.length === 0 && queues.length === 0) return EMPTY;
  return Object.freeze({ plain, queues });
}

function findGroup<T extends SubscriptionLike>(queues: readonly (readonly T[])[], queue: string): number {
  for (let i = 0; i < queues.length; i++) {
    if (queues[i]![0]!.queue === queue) return i;
  }
  return -1;
}

function withSub<T extends SubscriptionLike>(r: MatchResult<T>, sub: T): MatchResult<T> {
  const queue = sub.queue;
  if (queue === undefined) return makeResult(Object.freeze([...r.plain, sub]), r.queues);
  const i = findGroup(r.queues, queue);
  const queues = r.queues.slice();
  if (i === -1) queues.push(Object.freeze([sub]));
  else queues[i] = Object.freeze([...queues[i]!, sub]);
  return makeResult(r.plain, Object.freeze(queues));
}

function withoutSub<T extends SubscriptionLike>(r: MatchResult<T>, sub: T): MatchResult<T> {
  const queue = sub.queue;
  if (queue === undefined) {
    const j = r.plain.indexOf(sub);
    if (j === -1) return r;
    const plain = r.plain.slice();
    plain.splice(j, 1);
    return makeResult(Object.freeze(plain), r.queues);
  }
  const i = findGroup(r.queues, queue);
  if (i === -1) return r;
  const group = r.queues[i]!;
  const j = group.indexOf(sub);
  if (j === -1) return r;
  const queues = r.queues.slice();
  if (group.length === 1) {
    queues.splice(i, 1);
  } else {
    const members = group.slice();
    members.splice(j, 1);
    queues[i] = Object.freeze(members);
  }
  return makeResult(r.plain, Object.freeze(queues));
}

/** Accumulates a trie walk; queue groups are keyed by name until the result is frozen. */
class Collector<T> {
  readonly plain: T[] = [];
  readonly groups = new Map<string, T[]>();

  addNode(n: TrieNode<T>): void {
    for (const sub of n.plain) this.plain.push(sub);
    if (n.queues === undefined) return;
    for (const [name, members] of n.queues) {
      let group = this.groups.get(name);
      if (group === undefined) {
        group = [];
        this.groups.set(name, group);
      }
      for (const sub of members) group.push(sub);
    }
  }

  result(): MatchResult<T> {
    const queues: (readonly T[])[] = [];
    for (const group of this.groups.values()) queues.push(Object.freeze(group));
    return makeResult(Object.freeze(this.plain), Object.freeze(queues));
  }
}

/** Each node is reached by exactly one pattern, so no subscription is collected twice. */
function matchLevel<T>(start: Level<T>, tokens: readonly string[], from: number, out: Collector<T>): void {
  let level: Level<T> | undefined = start;
  let n: TrieNode<T> | undefined;
  let pwc: TrieNode<T> | undefined;
  for (let i = from; i < tokens.length; i++) {
    if (level === undefined) return;
    if (level.fwc !== undefined) out.addNode(level.fwc);
    pwc = level.pwc;
    if (pwc?.next !== undefined) matchLevel(pwc.next, tokens, i + 1, out);
    // A '*' or '>' token in a published subject is looked up here as a literal and finds nothing,
    // because wildcard subscriptions never live in `nodes`.
    n = level.nodes.get(tokens[i]!);
    level = n?.next;
  }
  if (n !== undefined) out.addNode(n);
  if (pwc !== undefined) out.addNode(pwc);
}

export class Sublist<T extends SubscriptionLike> {
  private readonly root = new Level<T>();
  private readonly subs = new Set<T>();
  private readonly cache = new Map<string, MatchResult<T>>();
  private readonly cacheSize: number;
  private nodeCount = 0;
  private matches = 0;
  private cacheHits = 0;
  private inserts = 0;
  private removes = 0;

  constructor(options?: { cacheSize?: number }) {
    const size = options?.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.cacheSize = Number.isFinite(size) && size > 0 ? Math.floor(size) : 0;
  }

  /** Adds `sub`; throws InvalidSubjectError for a subject SUB must reject. */
  insert(sub: T): void {
    if (this.subs.has(sub)) return;
    const subject = sub.subject;
    assertValidSubject(subject);
    const tokens = subject.split(".");
    let level = this.root;
    let node: TrieNode<T> | undefined;
    for (const token of tokens) {
      if (node !== undefined) {
        node.next ??= new Level<T>();
        level = node.next;
      }
      node = this.child(level, token);
      if (node === undefined) {
        node = new TrieNode<T>();
        this.nodeCount++;
        if (token === "*") level.pwc = node;
        else if (token === ">") level.fwc = node;
        else level.nodes.set(token, node);
      }
    }
    // A valid subject has at least one token.
    const target = node!;
    const queue = sub.queue;
    if (queue === undefined) {
      target.plain.add(sub);
    } else {
      target.queues ??= new Map();
      let members = target.queues.get(queue);
      if (members === undefined) {
        members = new Set();
        target.queues.set(queue, members);
      }
      members.add(sub);
    }
    this.subs.add(sub);
    this.inserts++;
    this.patchCache(subject, sub, true);
  }

  /** Removes `sub` (by identity); false if it is not in the sublist. */
  remove(sub: T): boolean {
    if (!this.subs.has(sub)) return false;
    const subject = sub.subject;
    const tokens = subject.split(".");
    const levels: Level<T>[] = [];
    const nodes: TrieNode<T>[] = [];
    let level: Level<T> | undefined = this.root;
    for (const token of tokens) {
      const node: TrieNode<T> | undefined = level === undefined ? undefined : this.child(level, token);
      if (level === undefined || node === undefined) {
        throw new Error(`sublist: subscription to ${JSON.stringify(subject)} missing from the trie`);
      }
      levels.push(level);
      nodes.push(node);
      level = node.next;
    }
    const target = nodes[nodes.length - 1]!;
    const queue = sub.queue;
    if (queue === undefined) {
      target.plain.delete(sub);
    } else {
      const members = target.queues?.get(queue);
      members?.delete(sub);
      if (members !== undefined && members.size === 0) {
        target.queues!.delete(queue);
        if (target.queues!.size === 0) target.queues = undefined;
      }
    }
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      if (node.next?.isEmpty()) node.next = undefined;
      // A non-empty node keeps all its ancestors non-empty.
      if (!node.isEmpty()) break;
      const parent = levels[i]!;
      const token = tokens[i]!;
      if (token === "*") parent.pwc = undefined;
      else if (token === ">") parent.fwc = undefined;
      else parent.nodes.delete(token);
      this.nodeCount--;
    }
    this.subs.delete(sub);
    this.removes++;
    this.patchCache(subject, sub, false);
    return true;
  }

  /** Subscriptions interested in published `subject`. The result is frozen and never changes later. */
  match(subject: string): MatchResult<T> {
    this.matches++;
    const cached = this.cache.get(subject);
    if (cached !== undefined) {
      this.cacheHits++;
      return cached;
    }
    const tokens = subject.split(".");
    for (const token of tokens) {
      if (token.length === 0) return EMPTY;
    }
    const out = new Collector<T>();
    matchLevel(this.root, tokens, 0, out);
    const result = out.result();
    if (this.cacheSize > 0) {
      if (this.cache.size >= this.cacheSize) {
        // Map iteration is insertion order, and patches overwrite in place, so this is the oldest key.
        const oldest = this.cache.keys().next();
        if (oldest.done !== true) this.cache.delete(oldest.value);
      }
      this.cache.set(subject, result);
    }
    return result;
  }

  /** True if a publish to `subject` would reach any subscription. */
  hasInterest(subject: string): boolean {
    const r = this.match(subject);
    return r.plain.length > 0 || r.queues.length > 0;
  }

  get count(): number {
    return this.subs.size;
  }

  all(): T[] {
    return [...this.subs];
  }

  stats(): SublistStats {
    return {
      subscriptions: this.subs.size,
      nodes: this.nodeCount,
      cacheEntries: this.cache.size,
      matches: this.matches,
      cacheHits: this.cacheHits,
      inserts: this.inserts,
      removes: this.removes,
    };
  }

  private child(level: Level<T>, token: string): TrieNode<T> | undefined {
    if (token === "*") return level.pwc;
    if (token === ">") return level.fwc;
    return level.nodes.get(token);
  }

  /** Keeps invariant 3 after `sub` (with `subject`) was added or removed. */
  private patchCache(subject: string, sub: T, added: boolean): void {
    if (this.cache.size === 0) return;
    if (!subjectHasWildcard(subject)) {
      const r = this.cache.get(subject);
      if (r !== undefined) this.cache.set(subject, added ? withSub(r, sub) : withoutSub(r, sub));
      return;
    }
    // Overwriting existing keys while iterating a Map is well defined and keeps their order.
    for (const [key, r] of this.cache) {
      if (subjectMatches(subject, key)) this.cache.set(key, added ? withSub(r, sub) : withoutSub(r, sub));
    }
  }
}

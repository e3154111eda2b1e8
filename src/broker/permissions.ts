/**
 * Per-user publish/subscribe permissions with nats-server's semantics: an allow list (absent = all
 * allowed), a deny list that overrides it, wildcards in both, and `allow_responses`, which lets a user
 * publish to the reply subject of a request it received (a bounded number of times, for a bounded time).
 *
 * Checks sit on the publish path, so each answer is cached per subject (bounded, like nats-server's pcache).
 */

import { PatternSet, toWire } from "../interest/pattern-set.js";
import { patternsIntersect, subjectHasWildcard } from "../interest/subject.js";
import type { ResponsePermission, SubjectPermission, UserPermissions } from "./options.js";

const CACHE_MAX = 1024;

function compile(p: SubjectPermission | undefined): { allow?: PatternSet; deny?: PatternSet } {
  if (p === undefined) return {};
  const out: { allow?: PatternSet; deny?: PatternSet } = {};
  if (p.allow !== undefined) out.allow = new PatternSet(p.allow.map(toWire));
  if (p.deny !== undefined && p.deny.length > 0) out.deny = new PatternSet(p.deny.map(toWire));
  return out;
}

export class ClientPermissions {
  private readonly pubAllow: PatternSet | undefined;
  private readonly pubDeny: PatternSet | undefined;
  private readonly subAllow: PatternSet | undefined;
  private readonly subDeny: PatternSet | undefined;
  readonly responses: ResponsePermission | undefined;
  private readonly pubCache = new Map<string, boolean>();

  constructor(p: UserPermissions) {
    const pub = compile(p.publish);
    const sub = compile(p.subscribe);
    this.responses = p.allowResponses;
    // nats-server: allow_responses without a publish allow list means "publish nothing but responses".
    this.pubAllow = pub.allow ?? (p.allowResponses !== undefined ? new PatternSet([]) : undefined);
    this.pubDeny = pub.deny;
    this.subAllow = sub.allow;
    this.subDeny = sub.deny;
  }

  canPublish(subject: string): boolean {
    const cached = this.pubCache.get(subject);
    if (cached !== undefined) return cached;
    let ok = this.pubAllow === undefined || this.pubAllow.matches(subject);
    if (ok && this.pubDeny !== undefined) ok = !this.pubDeny.matches(subject);
    if (this.pubCache.size >= CACHE_MAX) this.pubCache.clear();
    this.pubCache.set(subject, ok);
    return ok;
  }

  /**
   * A subscription subject is checked like a published one: its wildcard tokens are matched as literal
   * tokens against the patterns, which is what nats-server's canSubscribe does.
   */
  canSubscribe(subject: string): boolean {
    let ok = this.subAllow === undefined || this.subAllow.matches(subject);
    if (ok && this.subDeny !== undefined) ok = !this.subDeny.matches(subject);
    return ok;
  }

  /**
   * True when messages delivered on a subscription to `subject` must be filtered against the deny list:
   * a wildcard subscription may be allowed while some subjects it covers are denied.
   */
  needsDeliveryFilter(subject: string): boolean {
    if (this.subDeny === undefined || !subjectHasWildcard(subject)) return false;
    return this.subDeny.patterns.some((d) => patternsIntersect(d, subject));
  }

  deliveryDenied(subject: string): boolean {
    return this.subDeny?.matches(subject) === true;
  }
}

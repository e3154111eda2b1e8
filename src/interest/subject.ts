/**
 * Subject syntax and matching, following nats-server 2.9 (`sublist.go`, see the protocol reference §1.8).
 *
 * Subjects are `.`-separated tokens. `*` and `>` are wildcards only as a whole token (`foo*` is a literal),
 * and `>` must be last. A *published* subject is never interpreted: a `*` or `>` token in it is just a
 * token, which only a wildcard in the subscription can match.
 *
 * Everything here scans char codes in place: these functions sit on the publish path and in the sublist
 * cache maintenance loop, so they must not split strings or run regexes.
 */
import { BridgeheadError } from "../util/errors.js";

const DOT = 0x2e;
const STAR = 0x2a;
const GT = 0x3e;

/** A SUB with a subject the sublist cannot hold. `reason` is meant for logs, not for the wire. */
export class InvalidSubjectError extends BridgeheadError {
  override readonly name: string = "InvalidSubjectError";

  constructor(
    readonly subject: string,
    readonly reason: string,
  ) {
    // JSON-quoted because a rejected subject may hold CR/LF, and this message can end up in a log line.
    super(`invalid subject ${JSON.stringify(subject)}: ${reason}`);
  }
}

/** The whitespace nats-server's IsValidSubject rejects; it includes \f, which the parser does not split on. */
function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c;
}

const OK = 0;
const EMPTY_SUBJECT = 1;
const EMPTY_TOKEN = 2;
const FWC_NOT_LAST = 3;
const WHITESPACE = 4;

// Side results of the last checkSubject call, so the boolean checks allocate nothing.
let problemAt = 0;
let sawWildcard = false;

/** Validates in one pass; on failure `problemAt` is the 1-based token position or the char offset. */
function checkSubject(subject: string): number {
  const len = subject.length;
  sawWildcard = false;
  if (len === 0) return EMPTY_SUBJECT;
  let tokenStart = 0;
  let position = 1;
  for (let i = 0; i <= len; i++) {
    const c = i < len ? subject.charCodeAt(i) : DOT;
    if (c === DOT) {
      const tokenLength = i - tokenStart;
      if (tokenLength === 0) {
        problemAt = position;
        return EMPTY_TOKEN;
      }
      if (tokenLength === 1) {
        const t = subject.charCodeAt(tokenStart);
        if (t === GT) {
          sawWildcard = true;
          if (i < len) {
            problemAt = position;
            return FWC_NOT_LAST;
          }
        } else if (t === STAR) {
          sawWildcard = true;
        }
      }
      tokenStart = i + 1;
      position++;
    } else if (isWhitespace(c)) {
      problemAt = i;
      return WHITESPACE;
    }
  }
  return OK;
}

/** True if `subject` may be subscribed to. */
export function isValidSubject(subject: string): boolean {
  return checkSubject(subject) === OK;
}

/** True if `subject` is valid and has no wildcard token (nats-server's pedantic PUB check). */
export function isValidLiteralSubject(subject: string): boolean {
  return checkSubject(subject) === OK && !sawWildcard;
}

/** Throws InvalidSubjectError saying exactly what is wrong with `subject`. */
export function assertValidSubject(subject: string): void {
  const code = checkSubject(subject);
  if (code === OK) return;
  let reason: string;
  switch (code) {
    case EMPTY_SUBJECT:
      reason = "subject is empty";
      break;
    case EMPTY_TOKEN:
      reason = `empty token at position ${problemAt}`;
      break;
    case FWC_NOT_LAST:
      reason = `'>' must be the last token (found at position ${problemAt})`;
      break;
    default:
      reason = `whitespace (0x${subject.charCodeAt(problemAt).toString(16).padStart(2, "0")}) at offset ${problemAt}`;
  }
  throw new InvalidSubjectError(subject, reason);
}

/** True if some token of `subject` is exactly `*` or `>`. Does not validate. */
/**
 * True when `s` is non-empty and has no space, tab, CR, LF or other control byte: safe to write into a
 * protocol line. Subjects and replies that arrive from a peer are checked with this before a client ever
 * sees them, so nothing from a link can forge protocol lines.
 */
export function isWireSafe(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

export function subjectHasWildcard(subject: string): boolean {
  const len = subject.length;
  for (let i = 0; i < len; i++) {
    const c = subject.charCodeAt(i);
    if (
      (c === STAR || c === GT) &&
      (i === 0 || subject.charCodeAt(i - 1) === DOT) &&
      (i + 1 === len || subject.charCodeAt(i + 1) === DOT)
    ) {
      return true;
    }
  }
  return false;
}

/** End (exclusive) of the token starting at `start`. */
function tokenEnd(s: string, start: number): number {
  // A plain loop beats indexOf's runtime call on tokens this short.
  const len = s.length;
  let i = start;
  while (i < len && s.charCodeAt(i) !== DOT) i++;
  return i;
}

/** STAR or GT if s[start, end) is a whole wildcard token, else 0. */
function wildcardAt(s: string, start: number, end: number): number {
  if (end - start !== 1) return 0;
  const c = s.charCodeAt(start);
  return c === STAR || c === GT ? c : 0;
}

function sameToken(
  a: string,
  aStart: number,
  aEnd: number,
  b: string,
  bStart: number,
  bEnd: number,
): boolean {
  const len = aEnd - aStart;
  if (len !== bEnd - bStart) return false;
  for (let k = 0; k < len; k++) {
    if (a.charCodeAt(aStart + k) !== b.charCodeAt(bStart + k)) return false;
  }
  return true;
}

/** True if `s` has no empty token from `from` (the start of a non-empty token) to the end. */
function restHasNoEmptyToken(s: string, from: number): boolean {
  const len = s.length;
  let prevDot = false;
  for (let i = from; i < len; i++) {
    const isDot = s.charCodeAt(i) === DOT;
    if (isDot && prevDot) return false;
    prevDot = isDot;
  }
  return !prevDot;
}

/**
 * Does subscription `pattern` match published `subject`? A subject with an empty token matches nothing,
 * and so does a malformed pattern (empty token, `>` not last). Whitespace is not checked here.
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const pl = pattern.length;
  const sl = subject.length;
  if (pl === 0 || sl === 0) return false;
  let pi = 0;
  let si = 0;
  for (;;) {
    const pe = tokenEnd(pattern, pi);
    const se = tokenEnd(subject, si);
    if (pe === pi || se === si) return false;
    const w = wildcardAt(pattern, pi, pe);
    if (w === GT) return pe === pl && restHasNoEmptyToken(subject, si);
    if (w !== STAR && !sameToken(pattern, pi, pe, subject, si, se)) return false;
    const patternDone = pe === pl;
    const subjectDone = se === sl;
    if (patternDone || subjectDone) return patternDone && subjectDone;
    pi = pe + 1;
    si = se + 1;
  }
}

/** Could some published subject match both patterns? Invalid patterns intersect nothing. */
export function patternsIntersect(a: string, b: string): boolean {
  if (!isValidSubject(a) || !isValidSubject(b)) return false;
  let ai = 0;
  let bi = 0;
  for (;;) {
    const ae = tokenEnd(a, ai);
    const be = tokenEnd(b, bi);
    const aw = wildcardAt(a, ai, ae);
    const bw = wildcardAt(b, bi, be);
    // Both still have a token here, so whatever the other needs from here on can be supplied.
    if (aw === GT || bw === GT) return true;
    if (aw === 0 && bw === 0 && !sameToken(a, ai, ae, b, bi, be)) return false;
    const aDone = ae === a.length;
    const bDone = be === b.length;
    if (aDone || bDone) return aDone && bDone;
    ai = ae + 1;
    bi = be + 1;
  }
}

/** Is every subject matched by `specific` also matched by `general`? Invalid patterns cover nothing. */
export function patternCovers(general: string, specific: string): boolean {
  if (!isValidSubject(general) || !isValidSubject(specific)) return false;
  let gi = 0;
  let si = 0;
  for (;;) {
    const ge = tokenEnd(general, gi);
    const se = tokenEnd(specific, si);
    const gw = wildcardAt(general, gi, ge);
    const sw = wildcardAt(specific, si, se);
    if (gw === GT) return true;
    // `specific` matches subjects of any length from here; a general pattern without '>' cannot.
    if (sw === GT) return false;
    if (gw === 0 && (sw === STAR || !sameToken(general, gi, ge, specific, si, se))) return false;
    const gDone = ge === general.length;
    const sDone = se === specific.length;
    if (gDone || sDone) return gDone && sDone;
    gi = ge + 1;
    si = se + 1;
  }
}

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  assertValidSubject,
  InvalidSubjectError,
  isValidLiteralSubject,
  isValidSubject,
  patternCovers,
  patternsIntersect,
  subjectHasWildcard,
  subjectMatches,
} from "../../src/interest/index.js";
import { BridgeheadError } from "../../src/util/errors.js";

/** The obvious split-and-compare matcher the fast one is checked against. */
function naiveMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  if (s.some((t) => t === "")) return false;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return i === p.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

function reasonOf(subject: string): string {
  try {
    assertValidSubject(subject);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidSubjectError);
    return (err as InvalidSubjectError).reason;
  }
  return "valid";
}

describe("subject validation", () => {
  it.each([
    "foo",
    "foo.bar",
    "foo.*",
    "*",
    ">",
    "foo.>",
    "*.*.>",
    "foo*",
    "foo*.bar",
    "*foo",
    "foo.>bar",
    "foo.bar>",
    "a-b_c:d/e",
    "ünïcødé.日本.🚀",
    "$SYS.REQ",
  ])("accepts %j", (subject) => {
    expect(isValidSubject(subject)).toBe(true);
    expect(() => assertValidSubject(subject)).not.toThrow();
  });

  it.each([
    ["", "subject is empty"],
    ["foo..bar", "empty token at position 2"],
    [".foo", "empty token at position 1"],
    ["foo.", "empty token at position 2"],
    [".", "empty token at position 1"],
    ["foo.>.bar", "'>' must be the last token (found at position 2)"],
    [">.foo", "'>' must be the last token (found at position 1)"],
    ["foo bar", "whitespace (0x20) at offset 3"],
    ["foo\tbar", "whitespace (0x09) at offset 3"],
    ["foo.bar\r", "whitespace (0x0d) at offset 7"],
    ["\nfoo", "whitespace (0x0a) at offset 0"],
    ["foo\fbar", "whitespace (0x0c) at offset 3"],
    [" ", "whitespace (0x20) at offset 0"],
  ])("rejects %j: %s", (subject, reason) => {
    expect(isValidSubject(subject)).toBe(false);
    expect(isValidLiteralSubject(subject)).toBe(false);
    expect(reasonOf(subject)).toBe(reason);
  });

  it("throws a BridgeheadError naming the subject and reason, with control characters escaped", () => {
    let caught: unknown;
    try {
      assertValidSubject("foo..bar\r\n");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BridgeheadError);
    expect(caught).toBeInstanceOf(InvalidSubjectError);
    const err = caught as InvalidSubjectError;
    expect(err.name).toBe("InvalidSubjectError");
    expect(err.subject).toBe("foo..bar\r\n");
    expect(err.reason).toBe("empty token at position 2");
    expect(err.message).toContain(JSON.stringify("foo..bar\r\n"));
    expect(err.message).toContain("empty token at position 2");
    expect(err.message).not.toMatch(/[\r\n]/);
  });

  it("literal subjects have no wildcard token", () => {
    for (const s of ["foo", "foo.bar", "foo*", "foo.>bar", "a.*b.c"]) {
      expect(isValidLiteralSubject(s), s).toBe(true);
      expect(subjectHasWildcard(s), s).toBe(false);
    }
    for (const s of ["*", ">", "foo.*", "foo.>", "*.foo", "a.*.b"]) {
      expect(isValidLiteralSubject(s), s).toBe(false);
      expect(subjectHasWildcard(s), s).toBe(true);
    }
  });
});

describe("subjectMatches", () => {
  it.each([
    ["foo", "foo", true],
    ["foo", "Foo", false],
    ["foo", "foo.bar", false],
    ["foo.bar", "foo", false],
    ["foo.*", "foo.bar", true],
    ["foo.*", "foo", false],
    ["foo.*", "foo.bar.baz", false],
    ["*.bar", "foo.bar", true],
    ["*", "foo", true],
    ["*", "foo.bar", false],
    ["foo.>", "foo.bar", true],
    ["foo.>", "foo.bar.baz", true],
    ["foo.>", "foo", false],
    [">", "foo", true],
    [">", "foo.bar.baz", true],
    ["*.>", "foo", false],
    ["*.>", "foo.bar", true],
    ["foo*", "foo*", true],
    ["foo*", "fooX", false],
    // Wildcards in a published subject are plain tokens.
    ["foo.*", "foo.*", true],
    ["foo.>", "foo.*", true],
    [">", "foo.>", true],
    ["foo.bar", "foo.*", false],
    ["foo.bar", "foo.>", false],
    // Empty tokens in the subject match nothing.
    [">", "foo..bar", false],
    [">", "foo.", false],
    [">", ".foo", false],
    ["foo.>", "foo.bar.", false],
    ["foo.>", "foo..bar", false],
    ["foo.*", "foo.", false],
    ["*", "", false],
    [">", "", false],
    // Malformed patterns match nothing.
    ["", "", false],
    ["foo.>.bar", "foo.x.bar", false],
    ["foo..bar", "foo.x.bar", false],
  ])("%j matches %j: %s", (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
    expect(naiveMatches(pattern, subject)).toBe(expected);
  });

  it("agrees with the naive matcher on random patterns and subjects", () => {
    const token = fc.constantFrom("a", "b", "ab", "*", ">", "", "a*");
    const subject = fc.array(token, { minLength: 1, maxLength: 5 }).map((ts) => ts.join("."));
    fc.assert(
      fc.property(subject, subject, (p, s) => {
        expect(subjectMatches(p, s)).toBe(naiveMatches(p, s));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("patternsIntersect / patternCovers", () => {
  const TOKENS = ["a", "b", "c"];
  // Patterns use tokens a, b; 'c' stands for every other token, and subjects are one longer than any pattern.
  const universe: string[] = [];
  const grow = (prefix: string[], depth: number): void => {
    if (prefix.length > 0) universe.push(prefix.join("."));
    if (depth === 0) return;
    for (const t of TOKENS) grow([...prefix, t], depth - 1);
  };
  grow([], 5);

  const pattern = fc
    .array(fc.constantFrom("a", "b", "*", ">"), { minLength: 1, maxLength: 4 })
    .filter((ts) => ts.indexOf(">") === -1 || ts.indexOf(">") === ts.length - 1)
    .map((ts) => ts.join("."));

  it("patternsIntersect agrees with brute force", () => {
    fc.assert(
      fc.property(pattern, pattern, (a, b) => {
        const brute = universe.some((s) => naiveMatches(a, s) && naiveMatches(b, s));
        expect(patternsIntersect(a, b)).toBe(brute);
        expect(patternsIntersect(b, a)).toBe(brute);
      }),
      { numRuns: 500 },
    );
  });

  it("patternCovers agrees with brute force", () => {
    fc.assert(
      fc.property(pattern, pattern, (general, specific) => {
        const brute = universe.every((s) => !naiveMatches(specific, s) || naiveMatches(general, s));
        expect(patternCovers(general, specific)).toBe(brute);
        expect(patternCovers(general, general)).toBe(true);
        if (patternCovers(general, specific)) expect(patternsIntersect(general, specific)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("handles the usual cases and rejects malformed patterns", () => {
    expect(patternsIntersect("foo.*", "*.bar")).toBe(true);
    expect(patternsIntersect("foo.>", "foo")).toBe(false);
    expect(patternsIntersect("foo.*", "foo.*.*")).toBe(false);
    expect(patternsIntersect("foo.*", "foo.>")).toBe(true);
    expect(patternsIntersect(">", "x.y.z")).toBe(true);
    expect(patternsIntersect("foo..bar", "foo.*.bar")).toBe(false);
    expect(patternCovers(">", "foo.bar")).toBe(true);
    expect(patternCovers("foo.>", "foo.*.>")).toBe(true);
    expect(patternCovers("foo.*", "foo.>")).toBe(false);
    expect(patternCovers("foo.>", "foo")).toBe(false);
    expect(patternCovers("*.*", "foo.*")).toBe(true);
    expect(patternCovers("foo.*", "*.*")).toBe(false);
    expect(patternCovers(">", "foo.>.bar")).toBe(false);
    expect(patternCovers("foo..bar", "foo..bar")).toBe(false);
  });
});

/**
 * Shared scaffolding for the raw-socket comparison suites (test/broker/raw-*.test.ts): each file runs the same
 * byte-exact tests against every server kind, records each test's normalised transcript, and ends with a check
 * that all kinds produced the same bytes per scenario.
 */
import { afterEach, describe, expect, it } from "vitest";
import { closeAllRaw, INFO_LINE, type RawClient, TranscriptBook } from "./raw-client.js";
import { type ServerKind, selectedKinds } from "./servers.js";

/** A CONNECT that turns the verbose default off (pedantic stays on, as it defaults to true). */
export const QUIET = 'CONNECT {"verbose":false}\r\n';
/** `QUIET` plus headers support, so the server sends HMSG. */
export const QUIET_HEADERS = 'CONNECT {"verbose":false,"headers":true}\r\n';

/** What a raw comparison file shares between its per-kind suites and its closing transcript check. */
export interface RawComparison {
  /** The server kinds to run against (`selectedKinds()`, so `BH_KINDS` applies). */
  readonly kinds: ServerKind[];
  /** Tests record their normalised transcripts here, one scenario per test name. */
  readonly book: TranscriptBook;
}

/**
 * Sets up a raw comparison test file; call it at the file's top level. Every raw client still open is closed
 * after each test, so no socket outlives its test. End the file with `describeTranscriptCheck`.
 */
export function rawComparison(): RawComparison {
  afterEach(() => {
    closeAllRaw();
  });
  return { kinds: selectedKinds(), book: new TranscriptBook() };
}

/**
 * Declares the check that every server kind produced the same normalised transcript per scenario. Call it
 * after the per-kind describe blocks: vitest runs tests in declaration order, so by then the book is full.
 */
export function describeTranscriptCheck({ kinds, book }: RawComparison): void {
  describe("every server kind produced the same bytes", () => {
    it.skipIf(kinds.length < 2)("normalised transcripts match per scenario", () => {
      expect(book.common(kinds).length).toBeGreaterThan(0);
      expect(book.mismatches(kinds)).toEqual([]);
    });
  });
}

/** Waits for the server to close `c`, then checks everything it sent after INFO. */
export async function expectClosedAfter(c: RawClient, afterInfo: string): Promise<void> {
  await c.waitClosed();
  expect(c.transcript()).toBe(INFO_LINE + afterInfo);
}

/**
 * Drop log: messages dropped by the gateway are counted, never logged one by one. This watches the drop
 * counters and writes one warning when a counter first moves, then at most one per reason every
 * `minIntervalMs` (10 s) while drops go on, with how many since the last line. Quiet otherwise.
 */
import type { Logger } from "pino";
import type { Gateway } from "../gateway/gateway.js";
import { DROP_REASONS, type DropReason } from "./metrics.js";

const CAUSE: Record<DropReason, string> = {
  filtered: "a link's export or import list does not allow the subject",
  unroutable: "no path to a destination region (a link just went down, or routing is converging)",
};

export interface DropLogOptions {
  /** How often the counters are looked at (ms); default 1000. */
  readonly checkMs?: number;
  /** At most one line per reason this often (ms); default 10000. */
  readonly minIntervalMs?: number;
}

/** Starts watching; returns a function that stops (logging what is still unreported). */
export function watchDrops(gateway: Gateway, log: Logger, o: DropLogOptions = {}): () => void {
  const minInterval = o.minIntervalMs ?? 10_000;
  const reasons = Object.keys(DROP_REASONS) as DropReason[];
  const state = new Map(
    reasons.map((r) => [r, { reported: DROP_REASONS[r](gateway.stats), at: Number.NEGATIVE_INFINITY }]),
  );
  const check = (final: boolean) => {
    const now = Date.now();
    for (const reason of reasons) {
      const st = state.get(reason)!;
      const total = DROP_REASONS[reason](gateway.stats);
      if (total <= st.reported) continue;
      if (!final && now - st.at < minInterval) continue;
      log.warn(
        {
          reason,
          dropped: total - st.reported,
          total,
          ...(Number.isFinite(st.at) ? { sinceMs: now - st.at } : {}),
          cause: CAUSE[reason],
        },
        "messages dropped",
      );
      st.reported = total;
      st.at = now;
    }
  };
  const timer = setInterval(() => check(false), o.checkMs ?? 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    check(true);
  };
}

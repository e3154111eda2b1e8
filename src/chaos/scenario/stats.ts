/** Percentiles over latency samples (nearest rank), in milliseconds. */

export interface LatencyStats {
  readonly count: number;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

function rank(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function latencyStats(samples: readonly number[]): LatencyStats {
  if (samples.length === 0) return { count: 0, p50: null, p90: null, p99: null, max: null };
  const s = [...samples].sort((a, b) => a - b);
  return {
    count: s.length,
    p50: round(rank(s, 50)),
    p90: round(rank(s, 90)),
    p99: round(rank(s, 99)),
    max: round(s[s.length - 1]!),
  };
}

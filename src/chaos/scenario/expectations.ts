/** Judge a run against the scenario's `expect` section: one result per limit, each with what was measured. */
import type { Analysis } from "./recorder.js";
import type { ExpectationResult, Recovery } from "./result.js";
import type { Expectations, LatencyLimits, LossLimit } from "./schema.js";
import type { LatencyStats } from "./stats.js";

export interface Measured extends Analysis {
  readonly recoveries: readonly Recovery[];
  readonly interest: { readonly consistent: boolean; readonly problems: readonly string[] };
}

const pct = (n: number, of: number) => (of === 0 ? 0 : (100 * n) / of);

function lossCheck(name: string, limit: LossLimit, n: number, of: number): ExpectationResult {
  const share = `${pct(n, of).toFixed(2)}% of ${of}`;
  if (typeof limit === "number") {
    return { name, limit: `<= ${limit}`, actual: `${n} (${share})`, passed: n <= limit };
  }
  const max = Number(limit.slice(0, -1));
  return { name, limit: `<= ${limit}`, actual: `${n} (${share})`, passed: pct(n, of) <= max };
}

function latencyChecks(name: string, limits: LatencyLimits, stats: LatencyStats): ExpectationResult[] {
  const out: ExpectationResult[] = [];
  for (const k of ["p50", "p90", "p99", "max"] as const) {
    const limit = limits[k];
    if (limit === undefined) continue;
    const v = stats[k];
    out.push({
      name: `${name}.${k}`,
      limit: `<= ${limit} ms`,
      actual: v === null ? "no samples" : `${v} ms (${stats.count} samples)`,
      passed: v !== null && v <= limit,
    });
  }
  return out;
}

export function evaluate(expect: Expectations, m: Measured): ExpectationResult[] {
  const out: ExpectationResult[] = [];
  const t = m.totals;
  if (expect.max_loss !== undefined)
    out.push(lossCheck("max_loss", expect.max_loss, t.lost, t.expectedDeliveries));
  if (expect.max_loss_outside_faults !== undefined) {
    out.push(
      lossCheck(
        "max_loss_outside_faults",
        expect.max_loss_outside_faults,
        t.lostOutsideFaults,
        t.expectedOutsideFaults,
      ),
    );
  }
  out.push({
    name: "max_duplicates",
    limit: `<= ${expect.max_duplicates}`,
    actual: String(t.duplicates),
    passed: t.duplicates <= expect.max_duplicates,
  });
  if (expect.max_request_failures !== undefined) {
    out.push(
      lossCheck("max_request_failures", expect.max_request_failures, m.requests.failed, m.requests.sent),
    );
  }
  if (expect.convergence_after_heal !== undefined) {
    const limit = expect.convergence_after_heal;
    const worst = m.recoveries.reduce<number | null | undefined>(
      (w, r) => (w === null || r.convergenceMs === null ? null : Math.max(w ?? 0, r.convergenceMs)),
      undefined,
    );
    out.push({
      name: "convergence_after_heal",
      limit: `<= ${limit} ms`,
      actual:
        worst === undefined
          ? "no heal in the run"
          : worst === null
            ? "did not converge before the end"
            : `${worst} ms (worst of ${m.recoveries.length})`,
      passed: worst !== null && (worst ?? 0) <= limit,
    });
  }
  if (expect.latency !== undefined)
    out.push(...latencyChecks("latency", expect.latency, m.latency.outsideFaults));
  if (expect.latency_during_faults !== undefined) {
    out.push(...latencyChecks("latency_during_faults", expect.latency_during_faults, m.latency.duringFaults));
  }
  if (expect.interest_consistent) {
    out.push({
      name: "interest_consistent",
      limit: "every region holds exactly the others' interest",
      actual: m.interest.consistent
        ? "consistent"
        : `${m.interest.problems.length} problem(s): ${m.interest.problems.slice(0, 3).join("; ")}`,
      passed: m.interest.consistent,
    });
  }
  return out;
}

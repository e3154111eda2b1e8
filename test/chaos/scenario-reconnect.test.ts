/**
 * Faults that break a link: reset_peer (the connection is reset) and timeout (data stops flowing, the
 * heartbeat notices). Between two regions with one link, so nothing can route around it. While the link is
 * down region b drops one subscription and takes another; after it reconnects, interest must be resynced
 * from snapshots: a holds b's new subscription and nothing of the dropped one (read from a's gateway state).
 */
import { describe, expect, it } from "vitest";
import type { ScenarioCluster } from "../../src/chaos/scenario/index.js";
import { figures, link, receiver, runYaml, TWO_REGIONS } from "./scenario-kit.js";

function workload(fault: string): string {
  return `
duration: 4500ms
link_heartbeat: 300ms
workload:
  subscribers:
    - { name: steady, region: b, subject: "steady.>" }
    - { name: stale, region: b, subject: "stale.>", until: 1500ms }
    - { name: fresh, region: b, subject: "fresh.>", from: 1500ms }
  publishers:
    - { region: a, subject: steady.x, rate: 50 }
    - { region: a, subject: stale.x, rate: 20 }
    - { region: a, subject: fresh.x, rate: 50 }
timeline:
  - ${fault}
expect:
  max_loss_outside_faults: 0
  interest_consistent: true
`;
}

interface Seen {
  subjects: string[];
  seq: { a: unknown; b: unknown };
}

function inspectInterest(into: Seen): (c: ScenarioCluster) => void {
  return (c) => {
    const a = c.region("a")!;
    const b = c.region("b")!;
    into.subjects = [...(a.gateway.remote.origin("b")?.entries.values() ?? [])].map((e) => e.subject).sort();
    into.seq = { a: a.gateway.appliedSeq("b"), b: b.gateway.appliedSeq("b") };
  };
}

describe("link faults that force a reconnect", () => {
  it("reset_peer: the link is reset, reconnects once the toxic goes, and interest resyncs with nothing stale", async () => {
    const seen: Seen = { subjects: [], seq: { a: undefined, b: undefined } };
    const r = await runYaml(
      TWO_REGIONS,
      `name: reset_peer${workload(
        "{ at: 1s, action: toxic, link: [a, b], direction: b->a, toxic: reset_peer, attributes: { timeout: 0 }, duration: 1s }",
      )}`,
      { inspect: inspectInterest(seen) },
    );
    console.info(figures(r));
    expect(r.faults[0]!.targets).toEqual(["a->b downstream"]);
    const l = link(r, "a->b");
    // Down during the fault, up again after it; the current link is not the first one.
    expect(l.transitions.some((t) => !t.up && t.at >= r.faults[0]!.start)).toBe(true);
    expect(l.upAtEnd).toBe(true);
    expect(l.established).toBeGreaterThanOrEqual(2);
    expect(r.recoveries[0]!.convergenceMs).not.toBeNull();
    // b's interest as a holds it: the subscription dropped while the link was down is gone.
    expect(seen.subjects).toContain("fresh.>");
    expect(seen.subjects).toContain("steady.>");
    expect(seen.subjects).not.toContain("stale.>");
    expect(seen.seq.a).toEqual(seen.seq.b);
    expect(r.interest).toEqual({ consistent: true, problems: [] });
    expect(receiver(r, "fresh").received).toBeGreaterThan(0);
    expect(r.totals.lostOutsideFaults).toBe(0);
    expect(r.totals.duplicates).toBe(0);
    expect(r.passed).toBe(true);
  });

  it("timeout: a->b goes silent, the heartbeat drops the link, it reconnects after the toxic and resyncs", async () => {
    const seen: Seen = { subjects: [], seq: { a: undefined, b: undefined } };
    const r = await runYaml(
      TWO_REGIONS,
      `name: timeout${workload(
        "{ at: 800ms, action: toxic, link: [a, b], direction: a->b, toxic: timeout, attributes: { timeout: 400 }, duration: 1700ms }",
      )}`,
      { inspect: inspectInterest(seen) },
    );
    console.info(figures(r));
    const l = link(r, "a->b");
    const f = r.faults[0]!;
    expect(l.transitions.some((t) => !t.up && t.at >= f.start && t.at <= f.end!)).toBe(true);
    expect(l.upAtEnd).toBe(true);
    expect(l.established).toBeGreaterThanOrEqual(2);
    expect(seen.subjects).toContain("fresh.>");
    expect(seen.subjects).not.toContain("stale.>");
    expect(seen.seq.a).toEqual(seen.seq.b);
    expect(r.interest).toEqual({ consistent: true, problems: [] });
    expect(r.totals.lostOutsideFaults).toBe(0);
    expect(r.totals.duplicates).toBe(0);
    expect(r.passed).toBe(true);
  });
});

/**
 * Region-level faults in a triangle a-b-c: a partition of c (every link of c down) then a heal, with the
 * convergence time after the heal measured and bounded; and a restart of c's broker and gateway, which the
 * other regions must not feel, after which every region holds c's new interest.
 */
import { describe, expect, it } from "vitest";
import type { ScenarioCluster } from "../../src/chaos/scenario/index.js";
import { figures, link, receiver, runYaml, THREE_REGIONS } from "./scenario-kit.js";

/** The dialers back off up to 10 s with full jitter: a heal can wait that long for the last redial. */
const CONVERGENCE_BOUND_MS = 12_000;

describe("region faults", () => {
  it("partition of c then heal: links come back, interest converges within the bound, no loss outside it", async () => {
    const r = await runYaml(
      THREE_REGIONS,
      `
name: partition c
duration: 5s
link_heartbeat: 300ms
workload:
  subscribers:
    - { name: at-b, region: b, subject: "orders.>" }
    - { name: at-c, region: c, subject: "orders.>" }
    - { name: c-at-a, region: a, subject: "c.>" }
  publishers:
    - { region: a, subject: orders.x, rate: 50 }
    - { region: c, subject: c.x, rate: 50 }
timeline:
  - { at: 1s, action: partition, region: c }
  - { at: 3s, action: heal }
expect:
  max_loss_outside_faults: 0
  convergence_after_heal: ${CONVERGENCE_BOUND_MS}ms
`,
    );
    console.info(figures(r));
    const f = r.faults[0]!;
    expect(f.label).toBe("partition c");
    expect([...f.targets].sort()).toEqual(["b->c", "c->a"]);
    // c's links went down during the partition; a-b stayed up throughout.
    for (const name of ["b->c", "c->a"]) {
      const l = link(r, name);
      expect(l.transitions.some((t) => !t.up && t.at >= f.start && t.at <= f.end!)).toBe(true);
      expect(l.upAtEnd).toBe(true);
    }
    expect(link(r, "a->b").transitions.map((t) => t.up)).toEqual([true]);
    // Measured: from the heal to links up and interest identical everywhere.
    expect(r.recoveries).toHaveLength(1);
    const ms = r.recoveries[0]!.convergenceMs;
    console.info(`partition: converged ${ms} ms after the heal`);
    expect(ms).not.toBeNull();
    expect(ms!).toBeLessThanOrEqual(CONVERGENCE_BOUND_MS);
    expect(f.convergenceMs).toBe(ms);
    // b never lost anything from a; c and a lost only during the fault window.
    expect(receiver(r, "at-b").lost).toBe(0);
    expect(r.totals.lostOutsideFaults).toBe(0);
    expect(r.totals.duplicates).toBe(0);
    expect(r.interest).toEqual({ consistent: true, problems: [] });
    expect(r.passed).toBe(true);
  });

  it("restart of c: a and b are unaffected, c's clients come back and every region holds c's new interest", async () => {
    const seen: { epochs: number[]; own: number | undefined; subjects: string[][] } = {
      epochs: [],
      own: undefined,
      subjects: [],
    };
    const inspect = (cl: ScenarioCluster) => {
      seen.own = cl.region("c")!.gateway.epoch;
      for (const x of ["a", "b"]) {
        const o = cl.region(x)!.gateway.remote.origin("c");
        seen.epochs.push(o?.epoch ?? -1);
        seen.subjects.push([...(o?.entries.values() ?? [])].map((e) => e.subject).sort());
      }
    };
    const r = await runYaml(
      THREE_REGIONS,
      `
name: restart c
duration: 5s
link_heartbeat: 300ms
workload:
  subscribers:
    - { name: at-b, region: b, subject: "orders.>" }
    - { name: at-c, region: c, subject: "orders.>" }
    - { name: b-at-a, region: a, subject: "b.>" }
  publishers:
    - { region: a, subject: orders.x, rate: 50 }
    - { region: b, subject: b.x, rate: 50 }
timeline:
  - { at: 1s, action: kill, region: c, duration: 1500ms }
expect:
  max_loss_outside_faults: 0
  convergence_after_heal: ${CONVERGENCE_BOUND_MS}ms
`,
      { inspect },
    );
    console.info(figures(r));
    // a and b: every message, no duplicate, latency as without the fault.
    for (const k of ["at-b", "b-at-a"]) {
      const x = receiver(r, k);
      expect(x.lost).toBe(0);
      expect(x.duplicates).toBe(0);
      expect(x.latencyDuringFaults.p90!).toBeLessThan(100);
    }
    expect(link(r, "a->b").transitions.map((t) => t.up)).toEqual([true]);
    // c came back: its links are up, its subscriber receives again, nothing lost outside the fault window.
    for (const name of ["b->c", "c->a"]) expect(link(r, name).upAtEnd).toBe(true);
    const atC = receiver(r, "at-c");
    expect(atC.received).toBeGreaterThan(0);
    expect(atC.lost).toBeLessThan(atC.expected);
    expect(r.totals.lostOutsideFaults).toBe(0);
    // Interest restored: a and b hold c's interest under c's new epoch, exactly what c has.
    expect(seen.epochs).toEqual([seen.own, seen.own]);
    for (const subjects of seen.subjects) expect(subjects).toContain("orders.>");
    expect(r.interest).toEqual({ consistent: true, problems: [] });
    console.info(
      `restart: converged ${r.recoveries[0]!.convergenceMs} ms after the restart; c's subscriber: ${atC.lost} lost, ${atC.duplicates} duplicates`,
    );
    expect(r.recoveries[0]!.convergenceMs).not.toBeNull();
    expect(r.recoveries[0]!.convergenceMs!).toBeLessThanOrEqual(CONVERGENCE_BOUND_MS);
  });
});

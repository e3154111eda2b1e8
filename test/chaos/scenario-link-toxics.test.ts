/**
 * Toxics on one link and one direction, driven through scenarios: latency with jitter (no loss, the latency
 * budget holds, and only that direction of that link slows down), a bandwidth cap (no loss, throughput near
 * the cap), and the slicer (frames cut into pieces of a few bytes still decode: the link never drops).
 */
import { describe, expect, it } from "vitest";
import { figures, link, receiver, runYaml, THREE_REGIONS, TWO_REGIONS } from "./scenario-kit.js";

describe("toxics on one link", () => {
  it("latency + jitter on a->b: nothing lost, a->b deliveries take latency±jitter, everything else stays fast", async () => {
    const r = await runYaml(
      THREE_REGIONS,
      `
name: latency a->b
duration: 3500ms
link_heartbeat: 300ms
workload:
  subscribers:
    - { name: at-b, region: b, subject: "ab.>" }
    - { name: at-c, region: c, subject: "ab.>" }
    - { name: at-a, region: a, subject: "ba.>" }
  publishers:
    - { region: a, subject: ab.x, rate: 100 }
    - { region: b, subject: ba.x, rate: 100 }
timeline:
  - { at: 1s, action: toxic, link: [b, a], direction: a->b, toxic: latency, attributes: { latency: 120, jitter: 30 }, duration: 1500ms }
expect:
  max_loss: 0
  latency: { p99: 100ms }
  latency_during_faults: { max: 400ms }
`,
    );
    console.info(figures(r));
    expect(r.expectations.filter((e) => !e.passed)).toEqual([]);
    expect(r.totals.lost).toBe(0);
    expect(r.totals.duplicates).toBe(0);
    // a dials b, so a->b is the proxy's upstream stream, and only that stream got the toxic.
    expect(r.faults).toHaveLength(1);
    expect(r.faults[0]!.targets).toEqual(["a->b upstream"]);
    const atB = receiver(r, "at-b").latencyDuringFaults;
    // 120 ± 30 ms: the median sits in [90, 150] (plus scheduling slack); the budget holds for every message.
    expect(atB.p50).toBeGreaterThanOrEqual(90);
    expect(atB.p50).toBeLessThan(200);
    expect(atB.max).toBeLessThanOrEqual(150 + 250);
    // The same publisher to c (link a-c) and b's publisher to a (the other direction of a-b) are untouched.
    expect(receiver(r, "at-c").latencyDuringFaults.p50).toBeLessThan(50);
    expect(receiver(r, "at-a").latencyDuringFaults.p50).toBeLessThan(50);
    expect(receiver(r, "at-a").latencyDuringFaults.p90).toBeLessThan(90);
    // Latency never broke the link.
    expect(link(r, "a->b").established).toBe(1);
    expect(r.interest.consistent).toBe(true);
  });

  it("bandwidth cap on a->b: nothing lost, and while capped the link carries close to the cap", async () => {
    const capKBs = 24;
    const r = await runYaml(
      TWO_REGIONS,
      `
name: bandwidth a->b
duration: 4s
workload:
  subscribers:
    - { name: at-b, region: b, subject: "bw.>" }
  publishers:
    - { region: a, subject: bw.x, rate: 40, size: 1000 }
timeline:
  - { at: 1s, action: toxic, link: [a, b], direction: a->b, toxic: bandwidth, attributes: { rate: ${capKBs} }, duration: 2s }
expect:
  max_loss: 0
`,
    );
    console.info(figures(r));
    expect(r.totals.lost).toBe(0);
    expect(r.totals.duplicates).toBe(0);
    const f = r.faults[0]!;
    // 40 msgs/s of 1000 B plus headers and framing (~45 KB/s) is more than the cap: the link is saturated.
    // Payload delivered in the capped window, after the first half second (the pipe fills), is below the
    // cap (framing takes a share of it) and near it.
    const from = f.start + 500;
    const inWindow = r.buckets.filter((b) => b.t >= from && b.t + b.width <= f.end!);
    const ms = inWindow.reduce((s, b) => s + b.width, 0);
    const payloadBps = (inWindow.reduce((s, b) => s + b.delivered, 0) * 1000 * 1000) / ms;
    console.info(`bandwidth: ${Math.round(payloadBps)} B/s of payload under a ${capKBs * 1000} B/s cap`);
    expect(payloadBps).toBeLessThanOrEqual(capKBs * 1000 * 1.05);
    expect(payloadBps).toBeGreaterThanOrEqual(capKBs * 1000 * 0.6);
    // Deliveries fell behind during the cap and caught up after it.
    expect(receiver(r, "at-b").latencyDuringFaults.max).toBeGreaterThan(200);
    expect(link(r, "a->b").established).toBe(1);
  });

  it("slicer on both directions: frames cut into pieces of a few bytes still decode, the link never drops", async () => {
    const r = await runYaml(
      TWO_REGIONS,
      `
name: slicer a<->b
duration: 3s
link_heartbeat: 300ms
workload:
  subscribers:
    - { name: at-b, region: b, subject: "ab.>" }
    - { name: at-a, region: a, subject: "ba.>" }
    # Subscribes while the link is sliced, so interest deltas cross it in pieces too.
    - { name: late-at-a, region: a, subject: "ba.late", from: 1200ms }
  publishers:
    - { region: a, subject: ab.x, rate: 100, size: 300 }
    - { region: b, subject: ba.x, rate: 100, size: 300 }
    - { region: b, subject: ba.late, rate: 50, size: 50 }
timeline:
  - { at: 700ms, action: toxic, link: [a, b], toxic: slicer, attributes: { average_size: 12, size_variation: 6, delay: 100 }, duration: 1800ms }
expect:
  max_loss: 0
`,
    );
    console.info(figures(r));
    expect(r.faults[0]!.targets).toEqual(["a->b upstream", "a->b downstream"]);
    expect(r.totals.lost).toBe(0);
    expect(r.totals.duplicates).toBe(0);
    expect(receiver(r, "late-at-a").received).toBeGreaterThan(0);
    // One link for the whole run: no decode error, no heartbeat timeout.
    expect(link(r, "a->b").established).toBe(1);
    expect(link(r, "a->b").transitions.map((t) => t.up)).toEqual([true]);
    expect(r.interest).toEqual({ consistent: true, problems: [] });
  });
});

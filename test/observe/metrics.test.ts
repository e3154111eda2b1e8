/**
 * /metrics of a running two-region system: names, types, labels, and values that follow real traffic,
 * link cuts and reconnects.
 */
import { afterEach, describe, expect, it } from "vitest";
import { waitUntil } from "../helpers/regions.js";
import { collect, type Kit, sc, startKit } from "./kit.js";
import { type Family, sampleValue } from "./prom-text.js";

let kit: Kit | undefined;

afterEach(async () => {
  await kit?.close();
  kit = undefined;
});

/** Every metric the region registry serves, with its type and labels (besides `region`). */
const EXPECTED: Record<string, { type: string; labels: readonly string[] }> = {
  bridgehead_broker_connections: { type: "gauge", labels: [] },
  bridgehead_broker_connections_total: { type: "counter", labels: [] },
  bridgehead_broker_subscriptions: { type: "gauge", labels: [] },
  bridgehead_broker_received_messages_total: { type: "counter", labels: [] },
  bridgehead_broker_received_bytes_total: { type: "counter", labels: [] },
  bridgehead_broker_sent_messages_total: { type: "counter", labels: [] },
  bridgehead_broker_sent_bytes_total: { type: "counter", labels: [] },
  bridgehead_broker_injected_messages_total: { type: "counter", labels: [] },
  bridgehead_broker_slow_consumers_total: { type: "counter", labels: [] },
  bridgehead_gateway_forwarded_messages_total: { type: "counter", labels: [] },
  bridgehead_gateway_received_messages_total: { type: "counter", labels: [] },
  bridgehead_gateway_delivered_messages_total: { type: "counter", labels: [] },
  bridgehead_gateway_transit_messages_total: { type: "counter", labels: [] },
  bridgehead_gateway_dropped_messages_total: { type: "counter", labels: ["reason"] },
  bridgehead_link_up: { type: "gauge", labels: ["peer"] },
  bridgehead_link_state: { type: "gauge", labels: ["peer", "state"] },
  bridgehead_link_sent_messages_total: { type: "counter", labels: ["peer"] },
  bridgehead_link_received_messages_total: { type: "counter", labels: ["peer"] },
  bridgehead_link_sent_bytes_total: { type: "counter", labels: ["peer"] },
  bridgehead_link_received_bytes_total: { type: "counter", labels: ["peer"] },
  bridgehead_link_sent_frames_total: { type: "counter", labels: ["peer"] },
  bridgehead_link_received_frames_total: { type: "counter", labels: ["peer"] },
  bridgehead_link_reconnects_total: { type: "counter", labels: ["peer"] },
  bridgehead_link_dial_attempts: { type: "gauge", labels: ["peer"] },
  bridgehead_link_outbox_frames: { type: "gauge", labels: ["peer"] },
  bridgehead_link_outbox_bytes: { type: "gauge", labels: ["peer"] },
  bridgehead_link_outbox_messages: { type: "gauge", labels: ["peer"] },
  bridgehead_link_unacked_bytes: { type: "gauge", labels: ["peer"] },
  bridgehead_link_compression_input_bytes: { type: "gauge", labels: ["peer"] },
  bridgehead_link_compression_output_bytes: { type: "gauge", labels: ["peer"] },
  bridgehead_outbox_messages: { type: "gauge", labels: ["destination"] },
  bridgehead_outbox_bytes: { type: "gauge", labels: ["destination"] },
  bridgehead_outbox_oldest_age_seconds: { type: "gauge", labels: ["destination"] },
  bridgehead_outbox_dropped_messages_total: { type: "counter", labels: ["destination", "reason"] },
  bridgehead_outbox_parked_messages_total: { type: "counter", labels: [] },
  bridgehead_outbox_replayed_messages_total: { type: "counter", labels: [] },
  bridgehead_gateway_duplicates_dropped_total: { type: "counter", labels: [] },
  bridgehead_link_dropped_messages_total: { type: "counter", labels: ["peer", "reason"] },
  bridgehead_link_interest_entries: { type: "gauge", labels: ["peer"] },
  bridgehead_link_interest_lag_seconds: { type: "gauge", labels: ["peer"] },
  bridgehead_link_rtt_seconds: { type: "histogram", labels: ["peer"] },
  bridgehead_interest_updates_sent_total: { type: "counter", labels: [] },
  bridgehead_interest_updates_received_total: { type: "counter", labels: [] },
  bridgehead_interest_resyncs_requested_total: { type: "counter", labels: [] },
  bridgehead_interest_entries: { type: "gauge", labels: ["origin"] },
  bridgehead_interest_applied_seq: { type: "gauge", labels: ["origin"] },
  bridgehead_interest_synced: { type: "gauge", labels: ["origin"] },
  bridgehead_interest_update_age_seconds: { type: "gauge", labels: ["origin"] },
  bridgehead_interest_seq_lag: { type: "gauge", labels: ["origin"] },
  bridgehead_topology_reachable_regions: { type: "gauge", labels: [] },
  bridgehead_region_start_time_seconds: { type: "gauge", labels: [] },
};

const LINK_AB = '  - between: [a, b]\n    token: t\n    export:\n      a: ["allowed.>", "m.>"]\n';

const v = (f: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
  sampleValue(f, name, labels) ?? Number.NaN;

describe("/metrics", () => {
  it("serves every metric with its type, unit-suffixed name and labels, region on every sample", async () => {
    kit = await startKit(["a", "b"], LINK_AB);
    const m = await kit.metrics("a");
    expect([...m.keys()].sort()).toEqual(Object.keys(EXPECTED).sort());
    for (const [name, want] of Object.entries(EXPECTED)) {
      const f = m.get(name)!;
      expect(f.type, name).toBe(want.type);
      expect(f.help, name).not.toBe("");
      if (want.type === "counter") expect(name).toMatch(/_total$/);
      expect(f.samples.length, `${name} has samples`).toBeGreaterThan(0);
      for (const s of f.samples) {
        expect(s.labels["region"], `${s.name} region`).toBe("a");
        const extra = Object.keys(s.labels).filter((k) => k !== "region" && k !== "le");
        expect(extra.sort(), s.name).toEqual([...want.labels].sort());
      }
    }
    // Link metrics name the peer; drop reasons are all there from the start.
    expect(v(m, "bridgehead_link_up", { peer: "b" })).toBe(1);
    expect(v(m, "bridgehead_link_state", { peer: "b", state: "up" })).toBe(1);
    expect(v(m, "bridgehead_link_state", { peer: "b", state: "down" })).toBe(0);
    expect(v(m, "bridgehead_gateway_dropped_messages_total", { reason: "filtered" })).toBe(0);
    expect(v(m, "bridgehead_gateway_dropped_messages_total", { reason: "unroutable" })).toBe(0);
    expect(v(m, "bridgehead_topology_reachable_regions")).toBe(1);
    expect(v(m, "bridgehead_interest_synced", { origin: "b" })).toBe(1);
    // The RTT histogram has seen the first heartbeat.
    await waitUntil(() => kit!.gw("a").linkView("b")?.rttMicros !== undefined, "a first RTT");
    const m2 = await kit.metrics("a");
    expect(v(m2, "bridgehead_link_rtt_seconds_count", { peer: "b" })).toBeGreaterThan(0);
    expect(v(m2, "bridgehead_link_rtt_seconds_sum", { peer: "b" })).toBeGreaterThan(0);
    expect(v(m2, "bridgehead_link_rtt_seconds_bucket", { peer: "b", le: "+Inf" })).toBe(
      v(m2, "bridgehead_link_rtt_seconds_count", { peer: "b" }),
    );
    // b's registry is its own.
    const mb = await kit.metrics("b");
    expect(mb.get("bridgehead_link_up")!.samples.map((s) => s.labels)).toEqual([{ region: "b", peer: "a" }]);
  });

  it("counts follow real traffic on both sides; interest metrics follow subscriptions", async () => {
    kit = await startKit(["a", "b"], LINK_AB);
    const na = await kit.client("a");
    const nb = await kit.client("b");
    const before = { a: await kit.metrics("a"), b: await kit.metrics("b") };
    const got = collect(nb, "m.x");
    await nb.flush();
    await kit.converged();
    for (let i = 0; i < 5; i++) na.publish("m.x", sc.encode(`hello-${i}`));
    await na.flush();
    await waitUntil(() => got.length === 5, "5 messages in b");
    const a = await kit.metrics("a");
    const b = await kit.metrics("b");
    const grew = (side: "a" | "b", now: Map<string, Family>, name: string, labels = {}) =>
      v(now, name, labels) - v(before[side], name, labels);

    expect(grew("a", a, "bridgehead_broker_received_messages_total")).toBe(5);
    expect(grew("a", a, "bridgehead_broker_received_bytes_total")).toBe(5 * "hello-0".length);
    expect(grew("a", a, "bridgehead_gateway_forwarded_messages_total")).toBe(5);
    expect(grew("a", a, "bridgehead_link_sent_messages_total", { peer: "b" })).toBe(5);
    expect(grew("a", a, "bridgehead_link_sent_bytes_total", { peer: "b" })).toBeGreaterThan(5 * 7);
    expect(grew("b", b, "bridgehead_link_received_messages_total", { peer: "a" })).toBe(5);
    expect(grew("b", b, "bridgehead_link_received_bytes_total", { peer: "a" })).toBeGreaterThan(5 * 7);
    expect(grew("b", b, "bridgehead_gateway_received_messages_total")).toBe(5);
    expect(grew("b", b, "bridgehead_gateway_delivered_messages_total")).toBe(5);
    expect(grew("b", b, "bridgehead_broker_injected_messages_total")).toBe(5);
    expect(grew("b", b, "bridgehead_broker_sent_messages_total")).toBe(5);
    expect(v(b, "bridgehead_broker_connections")).toBe(1);
    expect(v(b, "bridgehead_broker_subscriptions")).toBe(1);

    // Interest: a knows one entry of b's, at b's sequence; b's own count is its local interest.
    expect(v(a, "bridgehead_interest_entries", { origin: "b" })).toBe(1);
    expect(v(b, "bridgehead_interest_entries", { origin: "b" })).toBe(1);
    expect(v(a, "bridgehead_interest_applied_seq", { origin: "b" })).toBe(kit.gw("b").localSeq);
    expect(v(a, "bridgehead_interest_seq_lag", { origin: "b" })).toBe(0);
    expect(v(a, "bridgehead_interest_update_age_seconds", { origin: "b" })).toBeGreaterThanOrEqual(0);
    expect(grew("b", b, "bridgehead_interest_updates_sent_total")).toBe(1);
    // Per link: what a learned from b, and nothing awaited on it.
    expect(v(a, "bridgehead_link_interest_entries", { peer: "b" })).toBe(1);
    expect(v(a, "bridgehead_link_interest_lag_seconds", { peer: "b" })).toBe(0);
    // Nothing queued once everything is delivered.
    expect(v(a, "bridgehead_link_outbox_frames", { peer: "b" })).toBe(0);
    expect(v(a, "bridgehead_link_outbox_bytes", { peer: "b" })).toBe(0);
    expect(grew("a", a, "bridgehead_interest_updates_received_total")).toBe(1);

    // A filtered message counts as a drop (reason filtered), in the region that held it back.
    collect(nb, "secret.x");
    const wild = collect(nb, "*.x");
    await nb.flush();
    await kit.converged();
    na.publish("secret.x", sc.encode("no"));
    na.publish("m.x", sc.encode("yes"));
    await na.flush();
    await waitUntil(() => wild.includes("m.x:yes"), "the allowed message");
    const a2 = await kit.metrics("a");
    expect(grew("a", a2, "bridgehead_gateway_dropped_messages_total", { reason: "filtered" })).toBe(1);
    // ... and on the link it was held back from.
    expect(grew("a", a2, "bridgehead_link_dropped_messages_total", { peer: "b", reason: "filtered" })).toBe(
      1,
    );
    expect(v(a2, "bridgehead_link_dropped_messages_total", { peer: "b", reason: "unroutable" })).toBe(0);
  });

  it("a cut link shows in the state gauges; a redialed one counts as a reconnect", async () => {
    kit = await startKit(["a", "b"], LINK_AB);
    // b drops the link a dialed: a redials at once (b keeps accepting).
    await kit.gw("b").dropLink("a");
    await waitUntil(() => kit!.gw("a").linkView("b")?.established === 2, "a to redial b");
    await waitUntil(() => kit!.gw("a").linkState("b") === "up", "the new link up");
    const a = await kit.metrics("a");
    expect(v(a, "bridgehead_link_reconnects_total", { peer: "b" })).toBe(1);
    expect(v(a, "bridgehead_link_up", { peer: "b" })).toBe(1);

    // a drops it for good: a shows it closed, b down.
    await kit.gw("a").dropLink("b");
    await waitUntil(() => kit!.gw("b").linkState("a") === undefined, "b to see the link go");
    const a2 = await kit.metrics("a");
    const b2 = await kit.metrics("b");
    expect(v(a2, "bridgehead_link_up", { peer: "b" })).toBe(0);
    expect(v(a2, "bridgehead_link_state", { peer: "b", state: "closed" })).toBe(1);
    expect(v(a2, "bridgehead_link_state", { peer: "b", state: "up" })).toBe(0);
    expect(v(b2, "bridgehead_link_up", { peer: "a" })).toBe(0);
    expect(v(b2, "bridgehead_link_state", { peer: "a", state: "down" })).toBe(1);
    expect(v(a2, "bridgehead_topology_reachable_regions")).toBe(0);
    // Counters of the finished links are kept.
    expect(v(a2, "bridgehead_link_received_frames_total", { peer: "b" })).toBeGreaterThan(0);
    expect(a2.has("bridgehead_interest_synced")).toBe(true);
    expect(sampleValue(a2, "bridgehead_interest_synced", { origin: "b" })).toBeUndefined();
  });

  it("metrics.enabled: false turns /metrics off, the rest of the monitor stays", async () => {
    kit = await startKit(["a", "b"], "  - between: [a, b]\n    token: t\n", {
      extra: "metrics: { enabled: false }\n",
    });
    const res = await fetch(`${kit.system.monitorUrl("a")}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "metrics are disabled (metrics.enabled: false)" });
    expect((await kit.json("a", "/healthz")).status).toBe(200);
  });
});

/**
 * /topologyz, the dashboard's data: the whole system from one region's monitor. In `bridgehead up`
 * (startSystem) the other regions run in the same process and their counters and links are read directly;
 * with regions in other processes (here: regions started without a system, so no siblings) only the
 * link-state database is known, and a link between two other regions is judged by their advertisements.
 */
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type RegionObserver, startObserver } from "../../src/observe/index.js";
import type { TopologyView } from "../../src/observe/topology-view.js";
import { type Cluster, startCluster, waitUntil } from "../helpers/regions.js";
import { collect, type Kit, sc, startKit, waitForAsync } from "./kit.js";

let kit: Kit | undefined;
let cluster: Cluster | undefined;
let observer: RegionObserver | undefined;

afterEach(async () => {
  await observer?.close();
  observer = undefined;
  await cluster?.close();
  cluster = undefined;
  await kit?.close();
  kit = undefined;
});

const CHAIN = "  - between: [a, b]\n    token: t\n  - between: [b, c]\n    token: t\n";

async function view(base: string): Promise<TopologyView> {
  const res = await fetch(`${base}/topologyz`);
  expect(res.status).toBe(200);
  return (await res.json()) as TopologyView;
}

const link = (v: TopologyView, a: string, b: string) => v.links.find((l) => l.a === a && l.b === b)!;
const regionOf = (v: TopologyView, name: string) => v.regions.find((r) => r.name === name)!;

describe("/topologyz", () => {
  it("in one process: every region with counters and health, every link from an end, traffic both ways", async () => {
    kit = await startKit(["a", "b", "c"], CHAIN);
    await kit.converged();
    const nc = await kit.client("c");
    const got = collect(nc, "t.x");
    await nc.flush();
    await kit.converged();
    const na = await kit.client("a");
    for (let i = 0; i < 4; i++) na.publish("t.x", sc.encode(`${i}`));
    await na.flush();
    await waitUntil(() => got.length === 4, "4 messages in c");

    const v = await view(kit.system.monitorUrl("a")!);
    expect(v.region).toBe("a");
    expect(v.regions.map((r) => [r.name, r.self, r.reachable, r.observed])).toEqual([
      ["a", true, true, "self"],
      ["b", false, true, "in-process"],
      ["c", false, true, "in-process"],
    ]);
    expect(regionOf(v, "c").health).toEqual({ ok: true, reasons: [] });
    expect(regionOf(v, "c").counters).toMatchObject({ connections: 1, subscriptions: 1, msgs_out: 4 });
    expect(regionOf(v, "a").counters).toMatchObject({ msgs_in: 4, msgs_forwarded: 4, links_up: 1, links: 1 });
    expect(regionOf(v, "c").hops).toBe(2);
    expect(v.links.map((l) => [l.a, l.b, l.state, l.status, l.source, l.seen_by, l.configured])).toEqual([
      ["a", "b", "up", "up", "link", "a", true],
      ["b", "c", "up", "up", "link", "b", true],
    ]);
    // a's view of b - c comes from b, which carried the 4 messages towards c.
    expect(link(v, "b", "c").traffic).toMatchObject({ msgs_ab: 4, msgs_ba: 0 });
    expect(link(v, "a", "b").traffic).toMatchObject({ msgs_ab: 4, msgs_ba: 0 });

    // Cut b - c: a's monitor shows it down, with the cause, and c's health says why.
    await kit.gw("b").dropLink("c");
    await waitUntil(() => kit!.gw("c").linkState("b") === undefined, "c to see the link go");
    const cut = await view(kit.system.monitorUrl("a")!);
    expect(link(cut, "b", "c")).toMatchObject({
      state: "closed",
      status: "down",
      seen_by: "b",
      rtt_ms: null,
    });
    expect(link(cut, "b", "c").detail).toBe("closed: closed by this side: 1000 dialer stopped (seen by b)");
    await waitForAsync(
      async () => !regionOf(await view(kit!.system.monitorUrl("a")!), "c").reachable,
      "c gone",
    );
    expect(regionOf(cut, "c").health).toMatchObject({ ok: false });
  });

  it("regions in other processes: links between two other regions come from their advertisements", async () => {
    cluster = await startCluster(
      ["a", "b", "c"],
      [
        ["a", "b"],
        ["b", "c"],
      ],
    );
    observer = await startObserver({
      region: cluster.region("a"),
      logger: pino({ level: "silent" }),
      monitor: { host: "127.0.0.1", port: 0 },
    });
    const base = observer.monitorUrl!;
    await waitUntil(() => cluster!.region("a").gateway.topology.reachable("c"), "c reachable from a");
    // b advertises b - c with its RTT once measured (re-advertised every second here).
    await waitForAsync(async () => link(await view(base), "b", "c").rtt_ms !== null, "b - c advertised");
    const v = await view(base);
    expect(link(v, "a", "b")).toMatchObject({ state: "up", source: "link", seen_by: "a" });
    expect(link(v, "b", "c")).toMatchObject({
      state: "up",
      status: "up",
      source: "advertisements",
      seen_by: null,
      traffic: null,
      detail: "advertised up by both b and c",
    });
    expect(regionOf(v, "c")).toMatchObject({
      reachable: true,
      observed: null,
      counters: null,
      health: null,
      hops: 2,
    });

    // Cut b - c (both ends): b re-advertises without c; c's last advertisement still lists b but c is cut
    // off, so the edge is down, and c unreachable.
    await cluster.region("b").gateway.dropLink("c");
    await cluster.region("c").gateway.dropLink("b");
    await waitForAsync(async () => link(await view(base), "b", "c").status === "down", "b - c down");
    const cut = await view(base);
    expect(link(cut, "b", "c")).toMatchObject({ state: "down", source: "advertisements", rtt_ms: null });
    expect(link(cut, "b", "c").detail).toMatch(
      /^advertised by (neither b nor c|c only \(not used for routing\))$/,
    );
    expect(regionOf(cut, "c").reachable).toBe(false);
  });
});

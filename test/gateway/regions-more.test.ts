/**
 * More multi-region behaviour with `startCluster` and the official nats client: publishes from every region
 * of a mesh to every other (each message exactly once per subscription), queue-group placement by distance
 * on a chain, interest forgotten when a region is cut off and relearned when it comes back, request/reply
 * between leaves of a star.
 *
 * "Nothing more arrives" is checked with a probe sent after the messages on the same path and the same
 * client connections (in order, so anything earlier would have arrived first), never with a sleep.
 */
import { connect, type NatsConnection, StringCodec } from "nats";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startRegion } from "../../src/region/region.js";
import { type Cluster, collect as collectMessages, startCluster, waitUntil } from "../helpers/regions.js";

const sc = StringCodec();
let cluster: Cluster | undefined;

afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});
const collect = (nc: NatsConnection, subject: string, queue?: string): string[] =>
  collectMessages(nc, subject, { ...(queue === undefined ? {} : { queue }), format: (s, d) => `${s}|${d}` });

/** Every region reaches every other one (routes known everywhere), then interest converged. */
async function ready(c: Cluster): Promise<void> {
  const all = [...c.regions.values()];
  await waitUntil(
    () => all.every((r) => all.every((o) => o === r || r.gateway.topology.reachable(o.name))),
    "routes everywhere",
  );
  await c.converged();
}

function count(list: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of list) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

describe("regions: 3-region mesh, publishes from every region", () => {
  it("every subscription in every other region gets each message exactly once, wildcards included", async () => {
    const names = ["a", "b", "c"];
    cluster = await startCluster(names, [
      ["a", "b"],
      ["b", "c"],
      ["a", "c"],
    ]);
    const c = cluster;
    const conns = new Map<string, NatsConnection>();
    // Per region: a full wildcard, a single-token wildcard, a literal, and a probe subscription, all on one
    // connection (so the probe arriving means everything sent before it on that path has arrived).
    const subs = new Map<string, { full: string[]; star: string[]; literal: string[]; probe: string[] }>();
    for (const r of names) {
      const nc = await c.client(r);
      conns.set(r, nc);
      subs.set(r, {
        full: collect(nc, "mesh.>"),
        star: collect(nc, "mesh.*.x"),
        literal: collect(nc, `mesh.${r}.x`),
        probe: collect(nc, "probe.*"),
      });
      await nc.flush();
    }
    await ready(c);
    const N = 25;
    for (const from of names) {
      const nc = conns.get(from)!;
      for (let i = 0; i < N; i++) {
        for (const to of names) nc.publish(`mesh.${to}.x`, sc.encode(`${from}-${to}-${i}`));
        nc.publish(`mesh.${from}.deep.y`, sc.encode(`${from}-deep-${i}`));
      }
    }
    for (const nc of conns.values()) await nc.flush();
    // Each full wildcard sees everything: 3 publishers × N × (3 + 1) messages.
    await waitUntil(
      () => [...subs.values()].every((s) => s.full.length === 3 * N * 4 && s.star.length === 3 * N * 3),
      "all deliveries",
    );
    // Probes from every region to every region, after the messages, on the same connections.
    for (const from of names) conns.get(from)!.publish(`probe.${from}`, sc.encode("p"));
    for (const nc of conns.values()) await nc.flush();
    await waitUntil(() => [...subs.values()].every((s) => s.probe.length === 3), "probes");

    for (const to of names) {
      const s = subs.get(to)!;
      for (const [what, list, perPublisher] of [
        ["full", s.full, N * 4],
        ["star", s.star, N * 3],
        ["literal", s.literal, N],
      ] as const) {
        const counts = count(list);
        expect(
          [...counts.values()].every((n) => n === 1),
          `${to} ${what}: no duplicate`,
        ).toBe(true);
        for (const from of names) {
          const fromHere = list.filter((m) => m.split("|")[1]!.startsWith(`${from}-`));
          expect(fromHere.length, `${to} ${what} from ${from}`).toBe(perPublisher);
        }
      }
      // The literal subscription got exactly the messages addressed to its region, from each publisher.
      const want = names.flatMap((from) =>
        Array.from({ length: N }, (_, i) => `mesh.${to}.x|${from}-${to}-${i}`),
      );
      expect([...s.literal].sort()).toEqual(want.sort());
      // Order from one publisher is kept.
      for (const from of names) {
        const seq = s.literal.filter((m) => m.includes(`|${from}-`)).map((m) => Number(m.split("-").pop()));
        expect(seq).toEqual(Array.from({ length: N }, (_, i) => i));
      }
    }
    // In a full mesh every message goes straight to its destination: one copy per interested region,
    // nothing in transit.
    for (const r of names) {
      const g = c.region(r).gateway;
      expect(g.stats.msgsTransit, `${r} transit`).toBe(0);
      expect(g.stats.msgsUnroutable, `${r} unroutable`).toBe(0);
    }
  });
});

describe("regions: queue group placement on a chain a-b-c", () => {
  it("members in b and c, publish in a: all to b (nearest); once b's members leave, all to c", async () => {
    cluster = await startCluster(
      ["a", "b", "c"],
      [
        ["a", "b"],
        ["b", "c"],
      ],
    );
    const c = cluster;
    const na = await c.client("a");
    const nb = await c.client("b");
    const nc = await c.client("c");
    const b1 = collect(nb, "work", "workers");
    const b2 = collect(nb, "work", "workers");
    const c1 = collect(nc, "work", "workers");
    const c2 = collect(nc, "work", "workers");
    const c3 = collect(nc, "work", "workers");
    const probeC = collect(nc, "probe");
    await nb.flush();
    await nc.flush();
    await ready(c);
    expect(c.region("a").gateway.topology.cost("b")?.hops).toBe(1);
    expect(c.region("a").gateway.topology.cost("c")?.hops).toBe(2);
    const N = 60;
    for (let i = 0; i < N; i++) na.publish("work", sc.encode(`${i}`));
    na.publish("probe", sc.encode("after"));
    await na.flush();
    await waitUntil(() => b1.length + b2.length === N && probeC.length === 1, "b serves the group");
    // The probe took the same path (a→b→c) after the work: c got none of it.
    expect(c1.length + c2.length + c3.length).toBe(0);
    expect(new Set([...b1, ...b2]).size).toBe(N);

    // b's members leave.
    await nb.close();
    await c.converged();
    await waitUntil(
      () =>
        !c
          .region("a")
          .gateway.remote.sublist.match("work")
          .queues.some((g) => g.some((e) => e.region === "b")),
      "a to forget b's members",
    );
    for (let i = 0; i < N; i++) na.publish("work", sc.encode(`r${i}`));
    await na.flush();
    await waitUntil(() => c1.length + c2.length + c3.length === N, "c serves the group");
    const inC = [...c1, ...c2, ...c3].map((m) => m.split("|")[1]);
    expect(new Set(inC)).toEqual(new Set(Array.from({ length: N }, (_, i) => `r${i}`)));
  });
});

describe("regions: a region cut off and back", () => {
  it("its interest is forgotten by the others once cut off past the outbox max age, and relearned when it comes back", async () => {
    cluster = await startCluster(
      ["a", "b", "c"],
      [
        ["a", "b"],
        ["b", "c"],
        ["a", "c"],
      ],
      // Interest of an unreachable region is held (store-and-forward) for the outbox's max age.
      { outbox: { maxAgeMs: 300 } },
    );
    const c = cluster;
    const nb = await c.client("b");
    const ncC = await c.client("c");
    const inC = collect(ncC, "to.c");
    const inB = collect(nb, "to.b");
    await ncC.flush();
    await nb.flush();
    await ready(c);
    const ga = c.region("a").gateway;
    const gb = c.region("b").gateway;
    const gc = c.region("c").gateway;
    expect(ga.remote.origin("c")?.entries.size).toBeGreaterThan(0);
    expect(gb.remote.origin("c")).toBeDefined();

    // Cut c off: a and b stop dialing it and drop their links; c drops what is left.
    await ga.dropLink("c");
    await gb.dropLink("c");
    await gc.dropLink("a");
    await gc.dropLink("b");
    await waitUntil(
      () =>
        ga.remote.origin("c") === undefined &&
        gb.remote.origin("c") === undefined &&
        gc.remote.origin("a") === undefined &&
        gc.remote.origin("b") === undefined,
      "c's interest forgotten by a and b, and theirs by c",
    );
    expect(ga.topology.reachable("c")).toBe(false);
    expect(gb.topology.reachable("c")).toBe(false);
    expect(gc.topology.reachableRegions()).toEqual([]);
    expect(ga.remote.sublist.hasInterest("to.c")).toBe(false);
    expect(gc.remote.sublist.hasInterest("to.b")).toBe(false);
    // a and b still know each other.
    expect(ga.remote.origin("b")).toBeDefined();

    // c comes back with a new dial to a; b relearns c's interest through a.
    gc.dial({ url: c.region("a").gatewayUrl!, region: "a" });
    await waitUntil(() => ga.linkState("c") === "up" && gc.linkState("a") === "up", "c-a link up");
    await waitUntil(
      () =>
        ga.remote.origin("c")?.seq === gc.localSeq &&
        gb.remote.origin("c")?.seq === gc.localSeq &&
        gc.remote.origin("a") !== undefined &&
        gc.remote.origin("b") !== undefined,
      "interest relearned on both sides",
    );
    expect(gb.topology.nextHop("c")).toBe("a");
    expect(gb.remote.sublist.hasInterest("to.c")).toBe(true);
    expect(gc.remote.sublist.hasInterest("to.b")).toBe(true);
    await c.converged();
    // And traffic flows again, both ways, through a.
    nb.publish("to.c", sc.encode("hello c"));
    ncC.publish("to.b", sc.encode("hello b"));
    await waitUntil(() => inC.length === 1 && inB.length === 1, "traffic both ways");
    expect(inC).toEqual(["to.c|hello c"]);
    expect(inB).toEqual(["to.b|hello b"]);
    expect(ga.stats.msgsTransit).toBe(2);
  });
});

describe("regions: request/reply on a star", () => {
  it("leaves request and reply to each other through the hub", async () => {
    const leaves = ["l1", "l2", "l3"];
    cluster = await startCluster(
      ["hub", ...leaves],
      leaves.map((l) => [l, "hub"] as const),
    );
    const c = cluster;
    const conns = new Map<string, NatsConnection>();
    for (const l of leaves) {
      const nc = await c.client(l);
      conns.set(l, nc);
      const sub = nc.subscribe(`svc.${l}`);
      (async () => {
        for await (const m of sub) m.respond(sc.encode(`${l} answers ${sc.decode(m.data)}`));
      })().catch(() => {});
      await nc.flush();
    }
    await ready(c);
    const hub = c.region("hub").gateway;
    const transitBefore = hub.stats.msgsTransit;
    let requests = 0;
    for (const from of leaves) {
      for (const to of leaves) {
        if (from === to) continue;
        const replies = await Promise.all(
          [0, 1, 2].map((i) =>
            conns.get(from)!.request(`svc.${to}`, sc.encode(`${from}#${i}`), { timeout: 5000 }),
          ),
        );
        requests += 3;
        expect(replies.map((m) => sc.decode(m.data))).toEqual(
          [0, 1, 2].map((i) => `${to} answers ${from}#${i}`),
        );
      }
    }
    // Every request and every reply crossed the hub once (leaf → hub → leaf), none was delivered there.
    expect(hub.stats.msgsTransit - transitBefore).toBe(2 * requests);
    expect(hub.stats.msgsDelivered).toBe(0);
  });
});

describe("regions: link ACKs switched off on one side", () => {
  it("carries traffic without ACKs either way and keeps nothing for replay", async () => {
    const logger = pino({ level: process.env.BH_TEST_LOG ?? "silent" });
    const start = (name: string, acks: boolean) =>
      startRegion({
        name,
        broker: { host: "127.0.0.1", port: 0 },
        gateway: { token: "t", listen: { host: "127.0.0.1", port: 0 }, acks },
        logger,
      });
    const a = await start("a", false);
    const b = await start("b", true);
    try {
      a.gateway.dial({ url: b.gatewayUrl!, region: "b" });
      await waitUntil(() => a.gateway.linkState("b") === "up" && b.gateway.linkState("a") === "up", "a-b up");
      const nb = await connect({ servers: b.clientUrl });
      const na = await connect({ servers: a.clientUrl });
      try {
        const got: string[] = [];
        nb.subscribe("x", { callback: (_e, m) => got.push(sc.decode(m.data)) });
        await nb.flush();
        await waitUntil(() => a.gateway.remote.sublist.hasInterest("x"), "b's interest at a");
        for (let i = 0; i < 100; i++) na.publish("x", sc.encode(String(i)));
        await na.flush();
        await waitUntil(() => got.length === 100, "100 messages at b");
        // b announced `ack`, a did not: neither side keeps frames or sends ACKs.
        expect(a.gateway.linkView("b")!.acks).toBe(false);
        expect(b.gateway.linkView("a")!.acks).toBe(false);
        expect(a.gateway.linkView("b")!.unacked).toEqual({ messages: 0, bytes: 0 });
      } finally {
        await na.close();
        await nb.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/**
 * Several in-process regions linked by gateway links, driven with the official nats client: interest
 * propagation, forwarding over mesh and multi-hop topologies, queue groups, request/reply, exactly-once.
 */
import { ErrorCode, headers, type NatsConnection, type NatsError, StringCodec } from "nats";
import { afterEach, describe, expect, it } from "vitest";
import { type Cluster, collect as collectMessages, startCluster, waitUntil } from "../helpers/regions.js";

const collect = (nc: NatsConnection, subject: string, queue?: string): string[] =>
  collectMessages(nc, subject, queue === undefined ? {} : { queue });

const sc = StringCodec();
let cluster: Cluster | undefined;

afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

async function flushAll(...ncs: NatsConnection[]): Promise<void> {
  for (const nc of ncs) await nc.flush();
}

describe("gateway: 3-region full mesh", () => {
  it("delivers a publish to every interested region exactly once, wildcards included", async () => {
    cluster = await startCluster(
      ["a", "b", "c"],
      [
        ["a", "b"],
        ["b", "c"],
        ["a", "c"],
      ],
    );
    const [na, nb, nc] = await Promise.all(["a", "b", "c"].map((r) => cluster!.client(r)));
    const inB = collect(nb!, "orders.*");
    const inC = collect(nc!, "orders.>");
    const inA = collect(na!, "orders.eu");
    await flushAll(na!, nb!, nc!);
    await cluster.converged();
    for (let i = 0; i < 20; i++) na!.publish("orders.eu", sc.encode(`m${i}`));
    nb!.publish("orders.us.west", sc.encode("deep"));
    await flushAll(na!, nb!);
    await waitUntil(() => inB.length === 20 && inC.length === 21 && inA.length === 20, "deliveries");
    expect(inB).toEqual(Array.from({ length: 20 }, (_, i) => `orders.eu:m${i}`));
    expect(inC.filter((m) => m === "orders.us.west:deep")).toHaveLength(1);
    // Nothing arrives twice: let a round trip through every region pass, then count again.
    await flushAll(na!, nb!, nc!);
    expect(inB).toHaveLength(20);
    expect(inC).toHaveLength(21);
  });

  it("does not forward a subject no other region wants (checked with link counters)", async () => {
    cluster = await startCluster(
      ["a", "b", "c"],
      [
        ["a", "b"],
        ["b", "c"],
        ["a", "c"],
      ],
    );
    const na = await cluster.client("a");
    const nb = await cluster.client("b");
    collect(nb, "wanted");
    await flushAll(nb);
    await cluster.converged();
    const before = cluster.region("a").gateway.stats.msgsForwarded;
    for (let i = 0; i < 50; i++) na.publish("unwanted", sc.encode("x"));
    na.publish("wanted", sc.encode("y"));
    await na.flush();
    await waitUntil(
      () => cluster!.region("a").gateway.stats.msgsForwarded > before,
      "the wanted message to leave",
    );
    expect(cluster.region("a").gateway.stats.msgsForwarded - before).toBe(1);
  });

  it("unsubscribing stops cross-region traffic", async () => {
    cluster = await startCluster(["a", "b"], [["a", "b"]]);
    const na = await cluster.client("a");
    const nb = await cluster.client("b");
    const sub = nb.subscribe("ticks");
    await nb.flush();
    await cluster.converged();
    na.publish("ticks", sc.encode("1"));
    await na.flush();
    await waitUntil(() => cluster!.region("a").gateway.stats.msgsForwarded === 1, "first tick forwarded");
    sub.unsubscribe();
    await nb.flush();
    await cluster.converged();
    for (let i = 0; i < 10; i++) na.publish("ticks", sc.encode("more"));
    await na.flush();
    expect(cluster.region("a").gateway.stats.msgsForwarded).toBe(1);
    expect(cluster.region("a").gateway.remote.sublist.hasInterest("ticks")).toBe(false);
  });

  it("carries headers and binary payloads byte-exact", async () => {
    cluster = await startCluster(["a", "b"], [["a", "b"]]);
    const na = await cluster.client("a");
    const nb = await cluster.client("b");
    const payload = Uint8Array.from({ length: 256 }, (_, i) => i);
    const got: { data: Uint8Array; h: string | undefined }[] = [];
    const sub = nb.subscribe("bin", { max: 1 });
    const done = (async () => {
      for await (const m of sub) got.push({ data: m.data, h: m.headers?.get("X-Key") });
    })();
    await nb.flush();
    await cluster.converged();
    const h = headers();
    h.set("X-Key", "value-1");
    na.publish("bin", payload, { headers: h });
    await done;
    expect(Buffer.from(got[0]!.data).equals(Buffer.from(payload))).toBe(true);
    expect(got[0]!.h).toBe("value-1");
  });
});

describe("gateway: multi-hop", () => {
  it("chain a-b-c: a reaches c through b", async () => {
    cluster = await startCluster(
      ["a", "b", "c"],
      [
        ["a", "b"],
        ["b", "c"],
      ],
    );
    const na = await cluster.client("a");
    const nc = await cluster.client("c");
    const inC = collect(nc, "far.>");
    await nc.flush();
    await cluster.converged();
    for (let i = 0; i < 10; i++) na.publish(`far.${i}`, sc.encode("x"));
    await waitUntil(() => inC.length === 10, "chain delivery");
    expect(cluster.region("b").gateway.stats.msgsTransit).toBe(10);
    expect(cluster.region("b").gateway.stats.msgsDelivered).toBe(0);
  });

  it("star: leaves reach each other through the hub, each copy once", async () => {
    cluster = await startCluster(
      ["hub", "l1", "l2", "l3"],
      [
        ["l1", "hub"],
        ["l2", "hub"],
        ["l3", "hub"],
      ],
    );
    const n1 = await cluster.client("l1");
    const n2 = await cluster.client("l2");
    const n3 = await cluster.client("l3");
    const got2 = collect(n2, "s");
    const got3 = collect(n3, "s");
    await flushAll(n2, n3);
    await cluster.converged();
    for (let i = 0; i < 5; i++) n1.publish("s", sc.encode(`${i}`));
    await waitUntil(() => got2.length === 5 && got3.length === 5, "star delivery");
    // The hub forwarded one frame per leaf and delivered nothing itself.
    expect(cluster.region("hub").gateway.stats.msgsTransit).toBe(10);
    expect(cluster.region("l1").gateway.stats.msgsForwarded).toBe(5);
  });

  it("ring of 4: traffic reroutes when a link dies mid-stream", async () => {
    cluster = await startCluster(
      ["a", "b", "c", "d"],
      [
        ["a", "b"],
        ["b", "c"],
        ["c", "d"],
        ["d", "a"],
      ],
    );
    const na = await cluster.client("a");
    const nc = await cluster.client("c");
    const inC = collect(nc, "ring");
    await nc.flush();
    await cluster.converged();
    let i = 0;
    for (; i < 10; i++) na.publish("ring", sc.encode(`${i}`));
    await waitUntil(() => inC.length === 10, "first half");
    // Cut a-b: c is still reachable through d.
    await cluster.region("a").gateway.dropLink("b");
    await waitUntil(
      () => cluster!.region("a").gateway.topology.nextHop("c") === "d",
      "reroute via d",
      15_000,
    );
    for (; i < 20; i++) na.publish("ring", sc.encode(`${i}`));
    await waitUntil(() => inC.length === 20, "second half");
    expect(new Set(inC).size).toBe(20);
  });
});

describe("gateway: queue groups across regions", () => {
  it("prefers local members, then exactly one remote region serves each message", async () => {
    cluster = await startCluster(
      ["a", "b", "c"],
      [
        ["a", "b"],
        ["b", "c"],
        ["a", "c"],
      ],
    );
    const na = await cluster.client("a");
    const nb = await cluster.client("b");
    const nc = await cluster.client("c");
    const localA = collect(na, "work", "workers");
    const inB = collect(nb, "work", "workers");
    const inC = collect(nc, "work", "workers");
    await flushAll(na, nb, nc);
    await cluster.converged();
    for (let i = 0; i < 30; i++) na.publish("work", sc.encode(`${i}`));
    await waitUntil(() => localA.length === 30, "local member gets all");
    await flushAll(na, nb, nc);
    expect(inB.length + inC.length).toBe(0);

    // Local member leaves: each message is served once, somewhere else.
    await na.close();
    const np = await cluster.client("a");
    await cluster.converged();
    for (let i = 0; i < 40; i++) np.publish("work", sc.encode(`r${i}`));
    await waitUntil(() => inB.length + inC.length === 40, "remote members serve");
    const all = [...inB, ...inC].map((m) => m.split(":")[1]);
    expect(new Set(all).size).toBe(40);
  });

  it("a group present only in a far region is served once per message across a chain", async () => {
    cluster = await startCluster(
      ["a", "b", "c"],
      [
        ["a", "b"],
        ["b", "c"],
      ],
    );
    const na = await cluster.client("a");
    const nc = await cluster.client("c");
    const inC1 = collect(nc, "jobs", "q");
    const inC2 = collect(nc, "jobs", "q");
    const plainC = collect(nc, "jobs");
    await nc.flush();
    await cluster.converged();
    for (let i = 0; i < 20; i++) na.publish("jobs", sc.encode(`${i}`));
    await waitUntil(() => inC1.length + inC2.length === 20 && plainC.length === 20, "group and plain");
  });
});

describe("gateway: request/reply across regions", () => {
  it("every pair of regions in a chain can request and reply", async () => {
    cluster = await startCluster(
      ["a", "b", "c"],
      [
        ["a", "b"],
        ["b", "c"],
      ],
    );
    const conns = new Map<string, NatsConnection>();
    for (const r of ["a", "b", "c"]) {
      const nc = await cluster.client(r);
      conns.set(r, nc);
      const sub = nc.subscribe(`svc.${r}`);
      (async () => {
        for await (const m of sub) m.respond(sc.encode(`pong from ${r}: ${sc.decode(m.data)}`));
      })().catch(() => {});
      await nc.flush();
    }
    await cluster.converged();
    for (const from of ["a", "b", "c"]) {
      for (const to of ["a", "b", "c"]) {
        const reply = await conns.get(from)!.request(`svc.${to}`, sc.encode(from), { timeout: 5000 });
        expect(sc.decode(reply.data)).toBe(`pong from ${to}: ${from}`);
      }
    }
  });

  it("answers no-responders (503) only when no region has interest", async () => {
    cluster = await startCluster(["a", "b"], [["a", "b"]]);
    const na = await cluster.client("a");
    const err = await na.request("nobody.home", sc.encode("?"), { timeout: 5000 }).catch((e: NatsError) => e);
    expect((err as NatsError).code).toBe(ErrorCode.NoResponders);
    const nb = await cluster.client("b");
    const sub = nb.subscribe("somebody.home");
    (async () => {
      for await (const m of sub) m.respond(sc.encode("here"));
    })().catch(() => {});
    await nb.flush();
    await cluster.converged();
    const ok = await na.request("somebody.home", sc.encode("?"), { timeout: 5000 });
    expect(sc.decode(ok.data)).toBe("here");
  });
});

describe("gateway: link security", () => {
  it("a link with the wrong token never comes up and carries nothing", async () => {
    const { startRegion } = await import("../../src/region/region.js");
    const { pino } = await import("pino");
    const logger = pino({ level: "silent" });
    const a = await startRegion({
      name: "a",
      broker: { host: "127.0.0.1", port: 0 },
      gateway: { token: "right", listen: { host: "127.0.0.1", port: 0 } },
      logger,
    });
    const b = await startRegion({
      name: "b",
      broker: { host: "127.0.0.1", port: 0 },
      gateway: { token: "wrong" },
      logger,
    });
    try {
      const dialer = b.gateway.dial({ url: a.gatewayUrl!, region: "a" });
      await waitUntil(() => dialer.attempts >= 2, "two refused attempts");
      expect(a.gateway.linkedRegions()).toEqual([]);
      expect(b.gateway.linkedRegions()).toEqual([]);
    } finally {
      await b.close();
      await a.close();
    }
  });
});

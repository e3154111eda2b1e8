/**
 * Three regions, each backed by a two-server nats-server cluster (routes between the servers), linked by
 * Bridgehead in a full mesh, plus an embedded region linked to one of them only (a mixed topology whose
 * traffic transits a nats-server-backed region). Clients sit on the server the adapter is *not* attached
 * to, so every message also crosses a route inside its cluster. Ends with a node restart: the adapter
 * fails over to the other server, interest does not flap, and traffic resumes.
 */
import { headers, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningLeafnodeRegion, RunningRegion } from "../../src/region/region.js";
import { natsServerAvailable } from "../helpers/servers.js";
import {
  Clients,
  type Collected,
  collect,
  counts,
  embeddedRegion,
  leafRegion,
  type NatsCluster,
  probe,
  startNatsCluster,
  waitUntil,
} from "./kit.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
const clients = new Clients();
const clusters = new Map<string, NatsCluster>();
const leaf = new Map<string, RunningLeafnodeRegion>();
let m: RunningRegion;
/** One client per region, on a server the adapter is not attached to (the second one). */
const cl = new Map<string, NatsConnection>();

function pub(c: NatsConnection, subject: string, id: string): void {
  const h = headers();
  h.set("Msg-Id", id);
  c.publish(subject, enc.encode(id), { headers: h });
}

function exactlyOnce(got: Collected, expected: number): void {
  expect(got.msgs).toHaveLength(expected);
  const c = counts(got.msgs.map((x) => x.id ?? "?"));
  expect(c.size).toBe(expected);
}

describe.skipIf(!natsServerAvailable())(
  "leafnode regions: three two-server clusters and an embedded region",
  () => {
    beforeAll(async () => {
      const names = ["a", "b", "c"];
      // Settled, not all: a cluster that started is registered (and stopped by afterAll) even if another failed.
      const started = await Promise.allSettled(names.map((n) => startNatsCluster(n, 2)));
      for (const [i, r] of started.entries()) if (r.status === "fulfilled") clusters.set(names[i]!, r.value);
      for (const r of started) if (r.status === "rejected") throw r.reason;
      for (const n of names) leaf.set(n, await leafRegion(n, clusters.get(n)!.leafUrls));
      m = await embeddedRegion("m");
      const g = (n: string) => leaf.get(n)!.gateway;
      g("a").dial({ url: leaf.get("b")!.gatewayUrl!, region: "b" });
      g("b").dial({ url: leaf.get("c")!.gatewayUrl!, region: "c" });
      g("c").dial({ url: leaf.get("a")!.gatewayUrl!, region: "a" });
      m.gateway.dial({ url: leaf.get("a")!.gatewayUrl!, region: "a" });
      await waitUntil(
        () =>
          names.every((n) => leaf.get(n)!.port.state === "up") &&
          g("a").linkState("b") === "up" &&
          g("b").linkState("c") === "up" &&
          g("c").linkState("a") === "up" &&
          m.gateway.linkState("a") === "up",
        "adapters and links up",
      );
      for (const n of names) {
        // The adapter dials the first URL: clients go to the other server.
        expect(leaf.get(n)!.port.connection.url).toBe(clusters.get(n)!.nodes[0]!.leafUrl);
        cl.set(n, await clients.open(clusters.get(n)!.nodes[1]!.clientUrl));
      }
      cl.set("m", await clients.open(m.clientUrl));
    });

    afterAll(async () => {
      await clients.closeAll();
      await m?.close();
      await Promise.all([...leaf.values()].map((r) => r.close()));
      await Promise.all([...clusters.values()].map((c) => c.close()));
    });

    it("delivers every region's publishes to every region once, wildcards included", async () => {
      const regions = ["a", "b", "c", "m"];
      const subs = new Map(regions.map((r) => [r, collect(cl.get(r)!, r === "b" ? "x.*" : "x.>")]));
      await Promise.all(regions.map((r) => cl.get(r)!.flush()));
      for (const p of regions) {
        const subject = `x.probe-${p}`;
        await probe(cl.get(p)!, subject, () => [...subs.values()].every((s) => s.probeSubjects.has(subject)));
      }
      for (let i = 0; i < 20; i++) for (const p of regions) pub(cl.get(p)!, `x.${p}`, `${p}${i}`);
      await Promise.all(regions.map((r) => cl.get(r)!.flush()));
      await waitUntil(() => [...subs.values()].every((s) => s.msgs.length >= 80), "80 messages everywhere");
      for (const p of regions) {
        const subject = `x.fence-${p}`;
        await probe(cl.get(p)!, subject, () => [...subs.values()].every((s) => s.probeSubjects.has(subject)));
      }
      for (const s of subs.values()) {
        exactlyOnce(s, 80);
        s.unsubscribe();
      }
    });

    it("serves a queue group once across clusters and fails over when one region's members leave", async () => {
      const inB = [collect(cl.get("b")!, "job", "w"), collect(cl.get("b")!, "job", "w")];
      const inC = [collect(cl.get("c")!, "job", "w"), collect(cl.get("c")!, "job", "w")];
      await Promise.all([cl.get("b")!.flush(), cl.get("c")!.flush()]);
      const known = (at: RunningRegion | RunningLeafnodeRegion, origin: string) =>
        [...(at.gateway.remote.origin(origin)?.entries.values() ?? [])].some(
          (e) => e.subject === "job" && e.queue === "w",
        );
      await waitUntil(
        () => known(leaf.get("a")!, "b") && known(leaf.get("a")!, "c") && known(m, "b") && known(m, "c"),
        "members known at a and m",
      );
      const all = [...inB, ...inC];
      const total = () => all.reduce((s, x) => s + x.msgs.length, 0);
      await probe(cl.get("a")!, "job", () => all.some((x) => x.probes > 0));
      for (let i = 0; i < 30; i++) {
        pub(cl.get("a")!, "job", `a${i}`);
        pub(cl.get("m")!, "job", `m${i}`);
      }
      await Promise.all([cl.get("a")!.flush(), cl.get("m")!.flush()]);
      await waitUntil(() => total() >= 60, "60 jobs served");
      expect(counts(all.flatMap((x) => x.msgs.map((y) => y.id ?? "?"))).size).toBe(60);

      for (const x of inB) x.unsubscribe();
      await cl.get("b")!.flush();
      await waitUntil(() => !known(leaf.get("a")!, "b") && !known(m, "b"), "b's members gone at a and m");
      const before = inC.reduce((s, x) => s + x.msgs.length, 0);
      for (let i = 0; i < 30; i++) pub(cl.get("a")!, "job", `f${i}`);
      await cl.get("a")!.flush();
      await waitUntil(() => inC.reduce((s, x) => s + x.msgs.length, 0) >= before + 30, "failover to c");
      expect(total()).toBe(90);
      expect(counts(all.flatMap((x) => x.msgs.map((y) => y.id ?? "?"))).size).toBe(90);
      for (const x of inC) x.unsubscribe();
    });

    it("answers requests across clusters and through a nats-backed transit region", async () => {
      const svcC = cl
        .get("c")!
        .subscribe("svc.c", { callback: (_e, msg) => msg.respond(enc.encode(`c:${dec.decode(msg.data)}`)) });
      const svcM = cl
        .get("m")!
        .subscribe("svc.m", { callback: (_e, msg) => msg.respond(enc.encode(`m:${dec.decode(msg.data)}`)) });
      await Promise.all([cl.get("c")!.flush(), cl.get("m")!.flush()]);
      const knows = (g: RunningRegion | RunningLeafnodeRegion, origin: string, subject: string) =>
        [...(g.gateway.remote.origin(origin)?.entries.values() ?? [])].some((e) => e.subject === subject);
      await waitUntil(() => knows(m, "c", "svc.c") && knows(leaf.get("c")!, "m", "svc.m"), "services known");
      // The interest must also have crossed the adapter's leaf connection and the route inside c.
      const ask = async (c: NatsConnection, subject: string, want: string) => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          try {
            const r = await c.request(subject, enc.encode("q"), { timeout: 500 });
            expect(dec.decode(r.data)).toBe(want);
            return;
          } catch (err) {
            if (Date.now() > deadline) throw err;
          }
        }
      };
      await ask(cl.get("m")!, "svc.c", "c:q");
      await ask(cl.get("c")!, "svc.m", "m:q");
      for (let i = 0; i < 5; i++) {
        const r1 = await cl.get("m")!.request("svc.c", enc.encode(`${i}`), { timeout: 3000 });
        expect(dec.decode(r1.data)).toBe(`c:${i}`);
        const r2 = await cl.get("b")!.request("svc.m", enc.encode(`${i}`), { timeout: 3000 });
        expect(dec.decode(r2.data)).toBe(`m:${i}`);
      }
      svcC.unsubscribe();
      svcM.unsubscribe();
    });

    it("fails over to the other server when the adapter's node restarts, without flapping interest", async () => {
      const a = leaf.get("a")!;
      const ac = cl.get("a")!;
      const atA = collect(ac, "r.>");
      const atB = collect(cl.get("b")!, "r.>");
      await Promise.all([ac.flush(), cl.get("b")!.flush()]);
      await probe(cl.get("m")!, "r.probe-m", () => atA.probeSubjects.has("r.probe-m"));
      await probe(ac, "r.probe-a", () => atB.probeSubjects.has("r.probe-a"));
      const seqBefore = a.gateway.appliedSeq("a")!.seq;
      const node0 = clusters.get("a")!.nodes[0]!;
      const connects = a.port.connection.stats.connects;
      await node0.stop();
      await waitUntil(
        () => a.port.state === "up" && a.port.connection.stats.connects > connects,
        "adapter reconnected",
      );
      expect(a.port.connection.url).toBe(clusters.get("a")!.nodes[1]!.leafUrl);
      // The new hub's snapshot equals what was known: no interest change reached the other regions.
      expect(a.gateway.appliedSeq("a")!.seq).toBe(seqBefore);

      await probe(cl.get("m")!, "r.probe2-m", () => atA.probeSubjects.has("r.probe2-m"));
      await probe(ac, "r.probe2-a", () => atB.probeSubjects.has("r.probe2-a"));
      for (let i = 0; i < 20; i++) {
        pub(cl.get("m")!, "r.m", `m${i}`);
        pub(ac, "r.a", `a${i}`);
      }
      await Promise.all([cl.get("m")!.flush(), ac.flush()]);
      await waitUntil(() => atA.msgs.length >= 40 && atB.msgs.length >= 20, "traffic after failover");
      expect(atA.msgs.filter((x) => x.subject === "r.m")).toHaveLength(20);

      // The node comes back; the adapter stays where it is and traffic keeps flowing.
      await node0.start();
      await node0.routed();
      for (let i = 0; i < 10; i++) pub(cl.get("m")!, "r.m", `again${i}`);
      await cl.get("m")!.flush();
      await waitUntil(() => atA.msgs.length >= 50, "traffic after the restart");
      exactlyOnce(atA, 50);
      atA.unsubscribe();
      atB.unsubscribe();
    });
  },
);

/**
 * A region backed by one real nats-server (2.9.10), attached by the leafnode adapter and linked to an
 * embedded region, driven with the official nats client on both sides: pub/sub both ways with wildcards
 * and headers, queue groups served once with cross-region failover, request/reply, interest added and
 * removed, and no echo or duplicate (every message carries an id).
 */
import { headers, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningLeafnodeRegion, RunningRegion } from "../../src/region/region.js";
import { natsServerAvailable } from "../helpers/servers.js";
import {
  Clients,
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
const clients = new Clients();
let nats: NatsCluster;
let e: RunningRegion;
let n: RunningLeafnodeRegion;
let ec: NatsConnection;
let nc: NatsConnection;

function pub(c: NatsConnection, subject: string, id: string): void {
  const h = headers();
  h.set("Msg-Id", id);
  c.publish(subject, enc.encode(id), { headers: h });
}

/** The adapter holds `subject` (for other regions) on the hub, and the hub has processed it. */
async function heldOnHub(subject: string, queue?: string): Promise<void> {
  await waitUntil(
    () => n.port.ownSubscriptions().some((s) => s.subject === subject && s.queue === queue),
    `adapter subscribed ${subject} ${queue ?? ""}`,
  );
  await n.port.connection.ping();
}

function nInterest(subject: string, queue?: string): number {
  return n.port.interestSnapshot().find((x) => x.subject === subject && x.queue === queue)?.weight ?? 0;
}

function eKnows(subject: string, queue?: string): number {
  const entry = [...(e.gateway.remote.origin("n")?.entries.values() ?? [])].find(
    (x) => x.subject === subject && x.queue === queue,
  );
  return entry?.weight ?? 0;
}

describe.skipIf(!natsServerAvailable())(
  "leafnode region: one nats-server linked to an embedded region",
  () => {
    beforeAll(async () => {
      nats = await startNatsCluster("single", 1);
      e = await embeddedRegion("e");
      n = await leafRegion("n", nats.leafUrls);
      n.gateway.dial({ url: e.gatewayUrl!, region: "e" });
      await waitUntil(() => n.port.state === "up" && n.gateway.linkState("e") === "up", "leaf and link up");
      ec = await clients.open(e.clientUrl);
      nc = await clients.open(nats.nodes[0]!.clientUrl);
    });

    afterAll(async () => {
      await clients.closeAll();
      await n?.close();
      await e?.close();
      await nats?.close();
    });

    it("delivers both ways exactly once, with wildcards and headers, and never echoes", async () => {
      const atN = collect(nc, "t1.>");
      const atE = collect(ec, "t1.*");
      await Promise.all([nc.flush(), ec.flush()]);
      await probe(ec, "t1.probe", () => atN.probes > 0);
      await probe(nc, "t1.probe", () => atE.probes > 0);
      const fromN = n.port.stats.msgsFromCluster;
      for (let i = 0; i < 50; i++) {
        pub(ec, "t1.e", `e${i}`);
        pub(nc, "t1.n", `n${i}`);
      }
      await Promise.all([ec.flush(), nc.flush()]);
      await waitUntil(() => atN.msgs.length >= 100 && atE.msgs.length >= 100, "100 messages each side");
      // A fence after the data: a duplicate would have had to overtake it.
      await probe(ec, "t1.fence", () => atN.probes > 1);
      await probe(nc, "t1.fence", () => atE.probes > 1);
      for (const got of [atN, atE]) {
        expect(got.msgs).toHaveLength(100);
        const c = counts(got.msgs.map((m) => m.id ?? "?"));
        expect(c.size).toBe(100);
        expect([...c.values()].every((v) => v === 1)).toBe(true);
        // Headers crossed: the id came from the header, and matches the payload.
        expect(got.msgs.every((m) => m.id === m.data)).toBe(true);
      }
      // The cluster offered the gateway only what its own clients published (50 plus canaries), never
      // the 50 the adapter injected for e.
      const offered = n.port.stats.msgsFromCluster - fromN;
      expect(offered).toBeGreaterThanOrEqual(50);
      expect(offered).toBeLessThan(100);
      expect(e.gateway.stats.duplicatesDropped + n.gateway.stats.duplicatesDropped).toBe(0);
      atN.unsubscribe();
      atE.unsubscribe();
    });

    it("reports interest added and removed, plain and queue with weights, and subscribes for the other region", async () => {
      const s1 = nc.subscribe("ia.plain");
      const q1 = nc.subscribe("ia.q", { queue: "g" });
      const q2 = nc.subscribe("ia.q", { queue: "g" });
      await nc.flush();
      await waitUntil(() => eKnows("ia.plain") === 1 && eKnows("ia.q", "g") === 2, "interest at e");
      expect(nInterest("ia.q", "g")).toBe(2);
      q2.unsubscribe();
      await nc.flush();
      await waitUntil(() => eKnows("ia.q", "g") === 1, "queue weight 1 at e");
      s1.unsubscribe();
      q1.unsubscribe();
      await nc.flush();
      await waitUntil(() => eKnows("ia.plain") === 0 && eKnows("ia.q", "g") === 0, "interest gone at e");
      expect(nInterest("ia.plain")).toBe(0);

      // The other way: e's interest becomes the adapter's subscription on the hub, and goes away with it.
      const es = ec.subscribe("ib.>");
      await ec.flush();
      await heldOnHub("ib.>");
      // The adapter's own subscription is never reported back as the region's interest.
      expect(nInterest("ib.>")).toBe(0);
      es.unsubscribe();
      await ec.flush();
      await waitUntil(
        () => !n.port.ownSubscriptions().some((s) => s.subject === "ib.>"),
        "adapter unsubscribed",
      );
      // Internal subjects of the cluster never become interest.
      expect(
        n.port.interestSnapshot().some((x) => x.subject.startsWith("$") || x.subject.startsWith("_GR_")),
      ).toBe(false);
    });

    it("request/reply across, both ways", async () => {
      const svcN = nc.subscribe("svc.n", {
        callback: (_err, m) => m.respond(enc.encode(`n:${new TextDecoder().decode(m.data)}`)),
      });
      const svcE = ec.subscribe("svc.e", {
        callback: (_err, m) => m.respond(enc.encode(`e:${new TextDecoder().decode(m.data)}`)),
      });
      await Promise.all([nc.flush(), ec.flush()]);
      await waitUntil(() => eKnows("svc.n") === 1, "svc.n known at e");
      await heldOnHub("svc.e");
      for (let i = 0; i < 5; i++) {
        const a = await ec.request("svc.n", enc.encode(`${i}`), { timeout: 3000 });
        expect(new TextDecoder().decode(a.data)).toBe(`n:${i}`);
        const b = await nc.request("svc.e", enc.encode(`${i}`), { timeout: 3000 });
        expect(new TextDecoder().decode(b.data)).toBe(`e:${i}`);
      }
      svcN.unsubscribe();
      svcE.unsubscribe();
    });

    it("queue groups: each message served once, locally first, failing over across regions", async () => {
      const nMembers = [collect(nc, "work", "g"), collect(nc, "work", "g")];
      const eMembers = [collect(ec, "work", "g"), collect(ec, "work", "g")];
      await Promise.all([nc.flush(), ec.flush()]);
      await waitUntil(() => eKnows("work", "g") === 2, "n's members known at e");
      await heldOnHub("work", "g");
      const total = (ms: { msgs: unknown[] }[]) => ms.reduce((s, m) => s + m.msgs.length, 0);
      const ids = (ms: { msgs: { id: string | undefined }[] }[]) =>
        ms.flatMap((m) => m.msgs.map((x) => x.id ?? "?"));

      // Both regions have members: each region serves its own publishes.
      for (let i = 0; i < 20; i++) {
        pub(ec, "work", `pe${i}`);
        pub(nc, "work", `pn${i}`);
      }
      await Promise.all([ec.flush(), nc.flush()]);
      await waitUntil(() => total(eMembers) === 20 && total(nMembers) === 20, "served locally");
      expect(ids(eMembers).every((id) => id.startsWith("pe"))).toBe(true);
      expect(ids(nMembers).every((id) => id.startsWith("pn"))).toBe(true);

      // e's members leave: e's publishes go to n's members, once each.
      for (const m of eMembers) m.unsubscribe();
      await ec.flush();
      for (let i = 0; i < 20; i++) pub(ec, "work", `fe${i}`);
      await ec.flush();
      await waitUntil(() => total(nMembers) === 40, "e's publishes served in n");
      expect(counts(ids(nMembers).filter((id) => id.startsWith("fe"))).size).toBe(20);

      // n's members leave, e's come back: the cluster hands n's publishes to the adapter (the fallback
      // member), and e serves them, once each.
      const back = [collect(ec, "work", "g"), collect(ec, "work", "g")];
      await ec.flush();
      for (const m of nMembers) m.unsubscribe();
      await nc.flush();
      await waitUntil(() => nInterest("work", "g") === 0 && eKnows("work", "g") === 0, "n's members gone");
      await heldOnHub("work", "g");
      for (let i = 0; i < 20; i++) pub(nc, "work", `fn${i}`);
      await nc.flush();
      await waitUntil(() => total(back) === 20, "n's publishes served in e");
      expect(counts(ids(back)).size).toBe(20);
      expect(total(nMembers)).toBe(40);
      for (const m of back) m.unsubscribe();
    });

    it("resyncs both ways when the server restarts: lost interest removed, kept interest not flapped", async () => {
      // A client that does not reconnect: its interest is gone after the restart.
      const once = await clients.open(nats.nodes[0]!.clientUrl, { reconnect: false });
      once.subscribe("rs.gone");
      const q = nc.subscribe("rs.kept", { queue: "k" });
      await Promise.all([once.flush(), nc.flush()]);
      const atE = collect(ec, "rs.back");
      await ec.flush();
      await waitUntil(() => eKnows("rs.gone") === 1 && eKnows("rs.kept", "k") === 1, "interest at e");
      await heldOnHub("rs.back");
      const changes: string[] = [];
      const stop = n.port.onInterest((c) =>
        changes.push(`${c.op} ${c.subject} ${c.queue ?? "-"} ${c.weight}`),
      );
      const connects = n.port.connection.stats.connects;
      await nats.nodes[0]!.stop();
      await waitUntil(() => n.port.state !== "up", "adapter down");
      await nats.nodes[0]!.start();
      await waitUntil(
        () => n.port.state === "up" && n.port.connection.stats.connects > connects,
        "adapter back",
      );
      // nc reconnects and subscribes again: rs.kept stays (or comes back), rs.gone is removed once.
      await waitUntil(
        () => eKnows("rs.gone") === 0 && eKnows("rs.kept", "k") === 1,
        "interest resynced at e",
      );
      expect(changes.filter((c) => c.includes("rs.gone"))).toEqual(["remove rs.gone - 0"]);
      stop();
      // The adapter subscribed again for e: the reconnected client's publishes reach e.
      await probe(nc, "rs.back", () => atE.probes > 0);
      nc.publish("rs.back", enc.encode("after"));
      await waitUntil(() => atE.msgs.length === 1, "message at e after the restart");
      q.unsubscribe();
      atE.unsubscribe();
    });
  },
);

/**
 * The broker reports local interest as transitions only (what a gateway must propagate): the first
 * subscriber of a subject adds it, the last one removes it, queue groups carry their member count.
 */
import { connect, type NatsConnection } from "nats";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../src/broker/index.js";
import type { InterestChange } from "../../src/interest/interest-set.js";

describe("broker interest events", () => {
  let broker: RunningBroker;
  let events: InterestChange[];
  const conns: NatsConnection[] = [];

  beforeEach(async () => {
    broker = await startBroker({ host: "127.0.0.1", port: 0 }, pino({ level: "silent" }));
    events = [];
    broker.server.onInterest((c) => events.push(c));
  });

  afterEach(async () => {
    for (const c of conns.splice(0)) await c.close().catch(() => {});
    await broker.close();
  });

  async function client(): Promise<NatsConnection> {
    const nc = await connect({ servers: broker.url });
    conns.push(nc);
    return nc;
  }

  const brief = (c: InterestChange) =>
    `${c.op} ${c.subject}${c.queue === undefined ? "" : ` ${c.queue}`} ${c.weight}`;

  it("emits 0->1 and 1->0 for plain subjects, nothing for extra subscribers", async () => {
    const a = await client();
    const b = await client();
    const s1 = a.subscribe("orders.>");
    await a.flush();
    const s2 = b.subscribe("orders.>");
    await b.flush();
    expect(events.map(brief)).toEqual(["add orders.> 1"]);
    s1.unsubscribe();
    await a.flush();
    expect(events.map(brief)).toEqual(["add orders.> 1"]);
    s2.unsubscribe();
    await b.flush();
    expect(events.map(brief)).toEqual(["add orders.> 1", "remove orders.> 0"]);
  });

  it("reports queue group weights as members come and go", async () => {
    const a = await client();
    const b = await client();
    const q1 = a.subscribe("work", { queue: "w" });
    await a.flush();
    const q2 = b.subscribe("work", { queue: "w" });
    await b.flush();
    q1.unsubscribe();
    await a.flush();
    q2.unsubscribe();
    await b.flush();
    expect(events.map(brief)).toEqual([
      "add work w 1",
      "update work w 2",
      "update work w 1",
      "remove work w 0",
    ]);
  });

  it("removes a closed client's interest and keeps the snapshot consistent", async () => {
    const a = await client();
    a.subscribe("x.*");
    a.subscribe("y", { queue: "g" });
    await a.flush();
    expect(
      broker.server
        .interestSnapshot()
        .map((e) => `${e.subject} ${e.queue ?? "-"} ${e.weight}`)
        .sort(),
    ).toEqual(["x.* - 1", "y g 1"]);
    await a.close();
    const deadline = Date.now() + 5000;
    while (broker.server.interestSnapshot().length > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(broker.server.interestSnapshot()).toEqual([]);
    expect(
      events
        .filter((e) => e.op === "remove")
        .map(brief)
        .sort(),
    ).toEqual(["remove x.* 0", "remove y g 0"]);
  });
});

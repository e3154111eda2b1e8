/**
 * Per-link export/import filters, in process: a system started with `startSystem` from a config built by
 * `loadConfig` (every listener on 127.0.0.1:0; the dialing region uses the running peer's gateway URL), and
 * driven with the official nats client.
 *
 * Negative checks never sleep: a message that must not arrive is published before one that must, on the
 * same connection and over the same link, so once the allowed one is in, the other would have been too.
 */
import { connect, type NatsConnection, StringCodec } from "nats";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { type RunningSystem, startSystem } from "../../src/runtime/system.js";
import { collect as collectMessages, waitUntil } from "../helpers/regions.js";

const collect = (nc: NatsConnection, subject: string, queue?: string): string[] =>
  collectMessages(nc, subject, queue === undefined ? {} : { queue });

const sc = StringCodec();
const logger = pino({ level: process.env.BH_TEST_LOG ?? "silent" });

let system: RunningSystem | undefined;
const clients: NatsConnection[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await system?.close();
  system = undefined;
});

/** A config of `regions` (all on 127.0.0.1:0) and `links` (YAML list items, indented by 2). */
function configText(regions: readonly string[], links: string): string {
  const rs = regions
    .map((r) => `  - name: ${r}\n    broker: { listen: 127.0.0.1:0 }\n    gateway: { listen: 127.0.0.1:0 }\n`)
    .join("");
  return `regions:\n${rs}links:\n${links}`;
}

async function start(regions: readonly string[], links: string): Promise<RunningSystem> {
  const loaded = loadConfig(configText(regions, links), { env: {} });
  system = await startSystem(loaded, logger);
  const s = system;
  await waitUntil(
    () =>
      loaded.config.links.every(
        ({ between: [a, b] }) =>
          s.regions.get(a)!.gateway.linkState(b) === "up" && s.regions.get(b)!.gateway.linkState(a) === "up",
      ),
    "links to come up",
  );
  return s;
}

function gw(name: string) {
  const r = system!.regions.get(name);
  if (r === undefined) throw new Error(`no region ${name}`);
  return r.gateway;
}

async function client(region: string): Promise<NatsConnection> {
  const nc = await connect({ servers: system!.regions.get(region)!.clientUrl });
  clients.push(nc);
  return nc;
}

/** Every region has applied every other reachable region's latest interest sequence. */
async function converged(): Promise<void> {
  const s = system!;
  await waitUntil(() => {
    for (const r of s.regions.values()) {
      const own = r.gateway.appliedSeq(r.name)!;
      for (const o of s.regions.values()) {
        if (o === r) continue;
        const seen = o.gateway.appliedSeq(r.name);
        if (seen === undefined || seen.epoch !== own.epoch || seen.seq !== own.seq) return false;
      }
    }
    return true;
  }, "interest to converge");
}

const LINK_AB = "  - between: [a, b]\n    token: t\n";

describe("export filter", () => {
  it("only allowed subjects leave the region; the other direction is unfiltered", async () => {
    await start(["a", "b"], `${LINK_AB}    export:\n      a: ["allowed.>"]\n`);
    const na = await client("a");
    const nb = await client("b");
    const allowed = collect(nb, "allowed.one");
    const secret = collect(nb, "secret.one");
    await nb.flush();
    await converged();
    // Interest for a subject the link could never carry is not advertised to a...
    expect(gw("a").remote.sublist.hasInterest("allowed.one")).toBe(true);
    expect(gw("a").remote.sublist.hasInterest("secret.one")).toBe(false);
    // ...and yet b's sequence, as a applied it, is contiguous: the filtered change went as a skip.
    expect(gw("a").appliedSeq("b")).toEqual({ epoch: gw("b").epoch, seq: gw("b").localSeq });
    expect(gw("b").localSeq).toBeGreaterThanOrEqual(2);

    // A wildcard that overlaps the filter is advertised, so a now attempts secret.one and filters it.
    const all = collect(nb, ">");
    await nb.flush();
    await converged();
    expect(gw("a").remote.sublist.hasInterest("secret.one")).toBe(true);
    const filteredBefore = gw("a").stats.msgsFiltered;
    na.publish("secret.one", sc.encode("s1"));
    na.publish("allowed.one", sc.encode("a1"));
    await na.flush();
    await waitUntil(() => allowed.length === 1 && all.length === 1, "the allowed message");
    expect(allowed).toEqual(["allowed.one:a1"]);
    expect(all).toEqual(["allowed.one:a1"]);
    expect(secret).toEqual([]);
    expect(gw("a").stats.msgsFiltered).toBe(filteredBefore + 1);

    // b -> a has no filter.
    const back = collect(na, "secret.back");
    await na.flush();
    await converged();
    nb.publish("secret.back", sc.encode("b1"));
    await waitUntil(() => back.length === 1, "the unfiltered direction");
  });
});

describe("import filter", () => {
  it("only subjects the region imports arrive; interest for others is not advertised", async () => {
    await start(["a", "b"], `${LINK_AB}    import:\n      b: ["allowed.>"]\n`);
    const na = await client("a");
    const nb = await client("b");
    const secret = collect(nb, "secret.two");
    const allowed = collect(nb, "allowed.two");
    await nb.flush();
    await converged();
    expect(gw("a").remote.sublist.hasInterest("allowed.two")).toBe(true);
    expect(gw("a").remote.sublist.hasInterest("secret.two")).toBe(false);
    expect(gw("a").appliedSeq("b")).toEqual({ epoch: gw("b").epoch, seq: gw("b").localSeq });

    const all = collect(nb, "*.two");
    await nb.flush();
    await converged();
    const filteredBefore = gw("a").stats.msgsFiltered;
    na.publish("secret.two", sc.encode("s"));
    na.publish("allowed.two", sc.encode("ok"));
    await na.flush();
    await waitUntil(() => allowed.length === 1 && all.length === 1, "the allowed message");
    expect(secret).toEqual([]);
    expect(all).toEqual(["allowed.two:ok"]);
    expect(gw("a").stats.msgsFiltered).toBe(filteredBefore + 1);
  });

  it("the importing region enforces its filter itself, even when the sender does not", async () => {
    await start(["a", "b"], `${LINK_AB}    import:\n      b: ["allowed.>"]\n`);
    // A sender that ignores the filter (say, an older config on a's host).
    gw("a").setFilters(undefined);
    const na = await client("a");
    const nb = await client("b");
    const all = collect(nb, ">");
    await nb.flush();
    await converged();
    const before = gw("b").stats.msgsFiltered;
    na.publish("secret.three", sc.encode("s"));
    na.publish("allowed.three", sc.encode("ok"));
    await na.flush();
    await waitUntil(() => all.length === 1, "the allowed message");
    expect(all).toEqual(["allowed.three:ok"]);
    expect(gw("b").stats.msgsFiltered).toBe(before + 1);
    expect(gw("a").stats.msgsFiltered).toBe(0);
  });
});

describe("interest sequences through a filter", () => {
  it("a filtered subscribe then an allowed one keep the origin's sequence contiguous at the peer", async () => {
    await start(["a", "b"], `${LINK_AB}    export:\n      b: ["ok.>"]\n`);
    const na = await client("a");
    const seq0 = gw("a").localSeq;
    const s1 = na.subscribe("blocked.x"); // not carried b -> a, so not advertised to b: a skip
    const s2 = na.subscribe("ok.x");
    await na.flush();
    await waitUntil(() => gw("a").localSeq === seq0 + 2, "two local interest changes");
    await converged();
    expect(gw("b").appliedSeq("a")).toEqual({ epoch: gw("a").epoch, seq: gw("a").localSeq });
    expect(gw("b").remote.sublist.hasInterest("ok.x")).toBe(true);
    expect(gw("b").remote.sublist.hasInterest("blocked.x")).toBe(false);
    // Removals too: no gap, no resync needed.
    s1.unsubscribe();
    s2.unsubscribe();
    await na.flush();
    await waitUntil(() => gw("a").localSeq === seq0 + 4, "two more changes");
    await converged();
    expect(gw("b").remote.sublist.hasInterest("ok.x")).toBe(false);
    expect(gw("b").stats.resyncsRequested).toBe(0);
  });
});

describe("filters in transit", () => {
  it("a middle region applies the filter of its outgoing link to transit messages", async () => {
    await start(
      ["a", "b", "c"],
      `${LINK_AB}  - between: [b, c]\n    token: t\n    export:\n      b: ["ok.>"]\n`,
    );
    const na = await client("a");
    const nc = await client("c");
    const all = collect(nc, ">");
    await nc.flush();
    await converged();
    na.publish("no.1", sc.encode("x"));
    na.publish("ok.1", sc.encode("y"));
    await na.flush();
    await waitUntil(() => all.length === 1, "the allowed message through b");
    expect(all).toEqual(["ok.1:y"]);
    // a's link to b has no filter: a forwarded both, b dropped one.
    expect(gw("a").stats.msgsFiltered).toBe(0);
    expect(gw("b").stats.msgsFiltered).toBe(1);
  });
});

describe("request/reply through a filtered link", () => {
  it("works for an allowed request subject (the routed reply is exempt); a filtered one has no responders", async () => {
    // b exports nothing a client would reply to: replies come back anyway.
    await start(["a", "b"], `${LINK_AB}    export:\n      a: ["svc.>"]\n      b: ["events.>"]\n`);
    const na = await client("a");
    const nb = await client("b");
    for (const subject of ["svc.echo", "private.echo"]) {
      nb.subscribe(subject, { callback: (_e, m) => m.respond(sc.encode(`echo:${sc.decode(m.data)}`)) });
    }
    await nb.flush();
    await converged();
    const r = await na.request("svc.echo", sc.encode("hi"), { timeout: 5000 });
    expect(sc.decode(r.data)).toBe("echo:hi");
    // private.echo's interest never reached a: the request finds no responders at once.
    await expect(na.request("private.echo", sc.encode("hi"), { timeout: 5000 })).rejects.toThrow(
      /503|no responders/i,
    );
  });

  // Regression (fixed; was src/gateway/gateway.ts:533 and :554, `filtered = parseRoutedReply(subject) === undefined`): every
  // subject of the form `_GR_.<region>.<rest>` is exempt from the filters, not only replies to requests that
  // passed them, and the receiving region strips the prefix and delivers `<rest>` (deliver(), line 597). So any
  // client can send any subject across a filtered link: here b exports only events.>, yet a client in b makes
  // `secret.cmd` appear in a. Fix: exempt only reply subjects the gateway itself issued for requests that
  // passed the outbound filter (remember `routedReply(region, reply)` per forwarded request with a TTL/LRU),
  // or check the filters against the stripped subject `<rest>` when the reply is not a known one.
  it("a client cannot smuggle a filtered subject through the routed-reply prefix", async () => {
    await start(["a", "b"], `${LINK_AB}    export:\n      b: ["events.>"]\n`);
    const na = await client("a");
    const nb = await client("b");
    const secret = collect(na, "secret.cmd");
    const events = collect(na, "events.x");
    await na.flush();
    await converged();
    nb.publish("_GR_.a.secret.cmd", sc.encode("smuggled"));
    nb.publish("events.x", sc.encode("ok"));
    await nb.flush();
    await waitUntil(() => events.length === 1, "the allowed message");
    expect(secret).toEqual([]);
  });
});

describe("filters changed by reload", () => {
  const exportA = (subjects: string) => `${LINK_AB}    export:\n      a: [${subjects}]\n`;

  it("a tighter filter applies to the very next message; loosening back restores it", async () => {
    const s = await start(["a", "b"], exportA('"allowed.>", "later.>"'));
    const na = await client("a");
    const nb = await client("b");
    const later = collect(nb, "later.x");
    const allowed = collect(nb, "allowed.x");
    await nb.flush();
    await converged();
    na.publish("later.x", sc.encode("1"));
    await waitUntil(() => later.length === 1, "later.x before the reload");

    const report = await s.reload(loadConfig(configText(["a", "b"], exportA('"allowed.>"')), { env: {} }));
    expect(report).toEqual({
      linksAdded: [],
      linksRemoved: [],
      filtersChanged: ["a <-> b"],
      needsRestart: [],
    });
    // The very next message is filtered at a, whether or not b's re-advertised interest (which now leaves
    // later.x out) has arrived yet: either a attempts it and the filter stops it, or a no longer sees interest.
    const filteredBefore = gw("a").stats.msgsFiltered;
    const forwardedBefore = gw("a").stats.msgsForwarded;
    na.publish("later.x", sc.encode("2"));
    na.publish("allowed.x", sc.encode("3"));
    await na.flush();
    await waitUntil(() => allowed.length === 1, "allowed.x after the reload");
    expect(later).toEqual(["later.x:1"]);
    expect(gw("a").stats.msgsForwarded - forwardedBefore).toBe(1);
    expect(gw("a").stats.msgsFiltered - filteredBefore).toBeLessThanOrEqual(1);
    // After the reload b re-advertises its interest without what the link can no longer carry.
    await converged();
    expect(gw("a").remote.sublist.hasInterest("later.x")).toBe(false);
    expect(gw("a").linkState("b")).toBe("up");

    await s.reload(loadConfig(configText(["a", "b"], exportA('"allowed.>", "later.>"')), { env: {} }));
    await converged();
    na.publish("later.x", sc.encode("4"));
    await waitUntil(() => later.length === 2, "later.x after loosening again");
    expect(later).toEqual(["later.x:1", "later.x:4"]);
  });

  // Regression (fixed; was `setFilters`): interest that the old filter kept from being advertised
  // is not advertised when a reload loosens the filter; the peer learns it only when that subscription next
  // changes (or the link is re-established and the peer had forgotten the origin), so messages for a newly
  // allowed subject are silently not forwarded. Fix: when a session's inbound filter changes, re-send this
  // region's interest over it (bump localSeq and flood a fresh own snapshot, or a dedicated "refresh" snapshot
  // the peer applies even at an equal sequence) and the relayed origins' snapshots likewise.
  it("a loosened filter lets messages flow for a subscription made while it was filtered", async () => {
    const s = await start(["a", "b"], exportA('"allowed.>"'));
    const na = await client("a");
    const nb = await client("b");
    const fresh = collect(nb, "fresh.x");
    await nb.flush();
    await converged();
    expect(gw("a").remote.sublist.hasInterest("fresh.x")).toBe(false);
    await s.reload(loadConfig(configText(["a", "b"], exportA('"allowed.>", "fresh.>"')), { env: {} }));
    await waitUntil(
      () => {
        na.publish("fresh.x", sc.encode("f"));
        return fresh.length > 0;
      },
      "fresh.x to flow after loosening",
      2000,
    );
  });
});

/**
 * The region monitor's JSON endpoints on a running chain a - b - c (b->c exports only `allowed.>` and
 * `*.one`-style interest crosses it), following real state changes: subscriptions, a cut link.
 */
import { afterEach, describe, expect, it } from "vitest";
import { waitUntil } from "../helpers/regions.js";
import { collect, type Kit, startKit, waitForAsync } from "./kit.js";

let kit: Kit | undefined;

afterEach(async () => {
  await kit?.close();
  kit = undefined;
});

const CHAIN =
  "  - between: [a, b]\n    token: t\n" +
  '  - between: [b, c]\n    token: t\n    export:\n      b: ["allowed.>"]\n';

interface OriginView {
  origin: string;
  applied: boolean;
  epoch: number | null;
  seq: number | null;
  reachable: boolean;
  next_hop: string | null;
  hops: number | null;
  num_entries: number;
  entries: { subject: string; queue: string | null; weight: number }[];
}

interface LinkJson {
  peer: string;
  state: string;
  direction: string | null;
  configured: boolean;
  rtt_ms: number | null;
  msgs_sent: number;
  msgs_received: number;
  last_loss: { state: string; cause: string } | null;
  filters: { outbound: { export: string[] | null; import: string[] | null } };
}

interface Verdict {
  region: string;
  verdict: string;
  reason: string;
  path?: string[];
  link?: string;
  list?: string;
  queues?: string[];
}

async function origins(k: Kit, region: string, query = ""): Promise<OriginView[]> {
  return (await k.json(region, `/interestz${query}`)).body["origins"] as OriginView[];
}

async function links(k: Kit, region: string): Promise<LinkJson[]> {
  return (await k.json(region, "/linkz")).body["links"] as LinkJson[];
}

async function explainz(k: Kit, region: string, subject: string, from?: string): Promise<Verdict[]> {
  const q = `subject=${encodeURIComponent(subject)}${from === undefined ? "" : `&from=${from}`}`;
  const r = await k.json(region, `/explainz?${q}`);
  expect(r.status).toBe(200);
  return r.body["regions"] as Verdict[];
}

const byRegion = (vs: Verdict[]) => Object.fromEntries(vs.map((v) => [v.region, v]));

describe("region monitor", () => {
  it("/healthz, /varz, /connz, /subsz, /linkz and the index", async () => {
    kit = await startKit(["a", "b", "c"], CHAIN);
    for (const r of ["a", "b", "c"]) {
      await waitUntil(() => kit!.gw(r).topology.reachableRegions().length === 2, `${r} to reach all`);
    }
    await kit.converged();
    expect(await kit.json("b", "/healthz")).toEqual({ status: 200, body: { status: "ok" } });
    const nc = await kit.client("b");
    collect(nc, "x.y");
    await nc.flush();

    const varz = (await kit.json("b", "/varz")).body;
    expect(varz["server_name"]).toBe("b");
    expect(varz["connections"]).toBe(1);
    expect(varz["subscriptions"]).toBe(1);
    expect(varz["gateway"]).toMatchObject({ region: "b", links_up: 2, reachable_regions: ["a", "c"] });
    const connz = (await kit.json("b", "/connz")).body;
    expect(connz["num_connections"]).toBe(1);
    expect((await kit.json("b", "/subsz")).body["num_subscriptions"]).toBe(1);

    const l = await links(kit, "b");
    expect(l.map((x) => [x.peer, x.state, x.direction, x.configured])).toEqual([
      ["a", "up", "accept", true],
      ["c", "up", "dial", true],
    ]);
    await waitUntil(() => kit!.gw("b").linkView("c")?.rttMicros !== undefined, "an RTT");
    expect((await links(kit, "b"))[1]!.rtt_ms).toBeGreaterThan(0);
    expect(l[1]!.filters.outbound).toEqual({ export: ["allowed.>"], import: null });

    const index = await kit.json("b", "/");
    expect(index.body["endpoints"]).toContain("/explainz");
    expect(index.body["endpoints"]).toContain("/topologyz");
    // A browser gets the dashboard: self-contained, allowed to talk to this monitor only.
    const page = await fetch(`${kit.system.monitorUrl("b")}/`, { headers: { accept: "text/html,*/*" } });
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await page.text();
    expect(html).toContain('<svg id="graph"');
    expect(html).toContain('fetch("topologyz"');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect((await kit.json("b", "/nope")).status).toBe(404);
    expect((await kit.json("b", "/explainz")).status).toBe(400);
    expect((await kit.json("b", "/explainz?subject=a.*")).status).toBe(400);
    expect((await kit.json("b", "/explainz?subject=a.b&from=zz")).status).toBe(400);
    expect((await kit.json("b", "/interestz?limit=-1")).status).toBe(400);
  });

  it("/interestz shows a new subscription in the other regions with a higher sequence", async () => {
    kit = await startKit(["a", "b", "c"], CHAIN);
    await kit.converged();
    const before = (await origins(kit, "a", "?origin=c"))[0]!;
    expect(before).toMatchObject({ origin: "c", applied: true, reachable: true, next_hop: "b", hops: 2 });
    expect(before.entries).toEqual([]);

    const nc = await kit.client("c");
    collect(nc, "allowed.orders");
    nc.subscribe("allowed.work", { queue: "workers" });
    await nc.flush();
    await kit.converged();
    const after = (await origins(kit, "a", "?origin=c"))[0]!;
    expect(after.seq).toBeGreaterThan(before.seq!);
    expect(after.epoch).toBe(before.epoch);
    expect(after.entries).toEqual(
      expect.arrayContaining([
        { subject: "allowed.orders", queue: null, weight: 1 },
        { subject: "allowed.work", queue: "workers", weight: 1 },
      ]),
    );
    expect(after.num_entries).toBe(2);
    // c's own view of itself: local, at its local sequence.
    const own = (await origins(kit, "c", "?origin=c"))[0]!;
    expect(own).toMatchObject({ origin: "c", applied: true, seq: after.seq, num_entries: 2 });
    // limit cuts the list, not the count.
    const cut = (await origins(kit, "a", "?origin=c&limit=1"))[0]!;
    expect(cut).toMatchObject({ num_entries: 2, truncated: true });
    expect(cut.entries).toHaveLength(1);
  });

  it("/explainz: delivered, no interest, filtered by a link, served elsewhere, no path", async () => {
    kit = await startKit(["a", "b", "c"], CHAIN);
    const nc = await kit.client("c");
    collect(nc, "*.one"); // advertised past b->c, since it overlaps allowed.>
    nc.subscribe("allowed.jobs", { queue: "q" });
    const na = await kit.client("a");
    na.subscribe("allowed.jobs", { queue: "q" });
    await nc.flush();
    await na.flush();
    await kit.converged();

    let v = byRegion(await explainz(kit, "a", "allowed.one"));
    expect(v["a"]).toMatchObject({ verdict: "no interest" });
    expect(v["b"]).toMatchObject({ verdict: "no interest", path: ["a", "b"] });
    expect(v["c"]).toMatchObject({ verdict: "delivered", path: ["a", "b", "c"] });

    v = byRegion(await explainz(kit, "a", "secret.one"));
    expect(v["c"]).toMatchObject({
      verdict: "filtered",
      reason: "filtered by link b->c (export list)",
      link: "b->c",
      list: "export",
    });
    // The same question asked of b, for a message published in b: same answer from another view.
    v = byRegion(await explainz(kit, "b", "secret.one", "b"));
    expect(v["c"]!.reason).toBe("filtered by link b->c (export list)");

    // A queue group with a member in the publishing region is served there.
    v = byRegion(await explainz(kit, "b", "allowed.jobs", "a"));
    expect(v["a"]).toMatchObject({ verdict: "delivered", queues: ["q"] });
    expect(v["c"]).toMatchObject({
      verdict: "served elsewhere",
      reason: "queue group q in a (local member)",
    });
    // Published in b: a and c are both one hop away, so either may serve it (shared by members).
    v = byRegion(await explainz(kit, "b", "allowed.jobs"));
    expect(v["b"]).toMatchObject({ verdict: "no interest" });
    expect([v["a"]!.verdict, v["c"]!.verdict]).toContain("delivered");

    // Cut b - c: c has no path any more (from a's view, once the topology says so). a holds c's interest
    // for its outbox's max age, so a message for c is parked, not lost; from b's view too.
    await kit.gw("b").dropLink("c");
    await kit.gw("c").dropLink("b");
    await waitUntil(() => !kit!.gw("a").topology.reachable("c"), "c unreachable from a");
    v = byRegion(await explainz(kit, "a", "allowed.one"));
    expect(v["c"]!.verdict).toBe("parked");
    expect(v["c"]!.reason).toMatch(
      /^no path from a to c now: parked in its outbox \(0 waiting\) until it is reachable again, for at most 60 s$/,
    );
    // Asked about a publish in b (another region), a can only say there is no path.
    v = byRegion(await explainz(kit, "a", "allowed.one", "b"));
    expect(v["c"]).toMatchObject({ verdict: "no path", reason: "no path from b to c" });
  });

  it("a cut link: /linkz shows it, /healthz goes 503 naming it, and recovers on redial", async () => {
    kit = await startKit(["a", "b", "c"], CHAIN);
    await kit.converged();
    // b drops its link to c for good (b dialed it: dropping stops the dialer; c does not redial).
    await kit.gw("b").dropLink("c");
    await waitUntil(() => kit!.gw("c").linkState("b") === undefined, "c to see the link go");
    const lb = await links(kit, "b");
    expect(lb.find((l) => l.peer === "c")).toMatchObject({
      state: "closed",
      direction: null,
      last_loss: { state: "closed", cause: "closed by this side: 1000 dialer stopped" },
    });
    const hb = await kit.json("b", "/healthz");
    expect(hb.status).toBe(503);
    expect(hb.body).toEqual({
      status: "unavailable",
      reasons: ["link to c is closed: closed by this side: 1000 dialer stopped"],
    });
    const hc = await kit.json("c", "/healthz");
    expect(hc.status).toBe(503);
    expect(hc.body["reasons"]).toEqual(["link to b is down: closed by peer: 1000 dialer stopped"]);
    const lc = await links(kit, "c");
    expect(lc[0]).toMatchObject({ peer: "b", state: "down", configured: true });
    // a's own link is fine, and c is simply unreachable: a is ready.
    await waitUntil(() => !kit!.gw("a").topology.reachable("c"), "c unreachable from a");
    expect((await kit.json("a", "/healthz")).status).toBe(200);

    // Redial (config unchanged): everything is ready again.
    const cUrl = kit.system.regions.get("c")!.gatewayUrl!;
    kit.gw("b").dial({ url: cUrl, region: "c", token: "t" });
    await waitUntil(() => kit!.gw("b").linkState("c") === "up", "b - c up again");
    await kit.converged();
    await waitForAsync(async () => (await kit!.json("c", "/healthz")).status === 200, "c healthy again");
    expect((await kit.json("b", "/healthz")).body).toEqual({ status: "ok" });
    expect((await links(kit, "b")).find((l) => l.peer === "c")).toMatchObject({ state: "up" });
  });
});

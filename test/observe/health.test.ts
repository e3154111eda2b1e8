/**
 * Readiness and interest convergence, driven step by step by a hand-written link peer (the real link
 * handshake, then protocol ops sent by hand): a link still syncing, a reachable region whose interest is
 * unknown, a gap in an origin's sequence. /healthz names each cause, the per-link interest lag and learned
 * entries follow, and everything is ready once the snapshots arrive.
 */
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type RegionObserver, startObserver } from "../../src/observe/index.js";
import { type RunningRegion, startRegion } from "../../src/region/region.js";
import { LinkPeer } from "../helpers/link-peer.js";
import { waitUntil } from "../helpers/regions.js";
import { waitForAsync } from "./kit.js";
import { parseExposition, sampleValue } from "./prom-text.js";

const TOKEN = "health-test-token";
const logger = pino({ level: process.env.BH_TEST_LOG ?? "silent" });
const EP = 0x0bad_0001;
const EZ = 0x0bad_0002;

let region: RunningRegion | undefined;
let observer: RegionObserver | undefined;
let peer: LinkPeer | undefined;

afterEach(async () => {
  await peer?.close().catch(() => {});
  peer = undefined;
  await observer?.close();
  observer = undefined;
  await region?.close();
  region = undefined;
});

const entry = (subject: string) => ({ subject, queue: "", weight: 1 });

describe("readiness and interest convergence", () => {
  it("a syncing link, an unknown origin and a sequence gap each make /healthz 503 with the cause", async () => {
    region = await startRegion({
      name: "r",
      broker: { host: "127.0.0.1", port: 0 },
      gateway: { token: TOKEN, listen: { host: "127.0.0.1", port: 0 } },
      logger,
    });
    observer = await startObserver({ region, logger, monitor: { host: "127.0.0.1", port: 0 } });
    const base = observer.monitorUrl!;
    const r = region;
    const healthz = async () => {
      const res = await fetch(`${base}/healthz`);
      return { status: res.status, body: (await res.json()) as { status: string; reasons?: string[] } };
    };
    const metric = async (name: string, labels: Record<string, string>) =>
      sampleValue(parseExposition(await (await fetch(`${base}/metrics`)).text()), name, labels) ?? Number.NaN;
    const lag = () => metric("bridgehead_link_interest_lag_seconds", { peer: "p" });
    const learned = () => metric("bridgehead_link_interest_entries", { peer: "p" });

    // No link configured or known: nothing to wait for.
    expect(await healthz()).toEqual({ status: 200, body: { status: "ok" } });

    // 1. Handshake done, the peer's own snapshot not sent: the link is syncing.
    peer = await LinkPeer.connect({
      url: r.gatewayUrl!,
      region: "p",
      token: TOKEN,
      expectRegion: "r",
      logger,
    });
    const p = peer;
    await waitUntil(() => r.gateway.linkState("p") === "syncing", "the link to sync");
    expect(await healthz()).toEqual({
      status: 503,
      body: {
        status: "unavailable",
        reasons: ["link to p is syncing", "interest of p not applied yet (reachable via p)"],
      },
    });
    await waitForAsync(async () => (await lag()) > 0, "the interest lag to show");
    const linkz = (await (await fetch(`${base}/linkz`)).json()) as {
      links: { peer: string; state: string; interest: { awaited_since: string | null; lag_s: number } }[];
    };
    expect(linkz.links[0]).toMatchObject({ peer: "p", state: "syncing" });
    expect(linkz.links[0]!.interest.awaited_since).not.toBeNull();

    // 2. The peer says it is linked to z, sends its own snapshot (the link goes up) but not z's.
    const from = p.mark();
    p.topology("p", EP, 1, [
      { region: "r", rttMicros: 100 },
      { region: "z", rttMicros: 100 },
    ]);
    p.topology("z", EZ, 1, [{ region: "p", rttMicros: 100 }]);
    p.snapshot("p", EP, 0, [entry("p.one"), entry("p.two")]);
    await waitUntil(() => r.gateway.linkState("p") === "up", "the link up");
    await waitUntil(() => r.gateway.topology.reachable("z"), "z reachable through p");
    const h2 = await healthz();
    expect(h2.status).toBe(503);
    expect(h2.body.reasons).toContain("interest of z not applied yet (reachable via p)");
    expect(await learned()).toBe(2);
    // r asks p for z's interest; until it comes the link's lag counts.
    await p.waitFor("resync", (op) => op.origin === "z", { from });
    await waitForAsync(async () => (await lag()) > 0, "the lag of the unanswered resync");

    // 3. z's interest arrives through p: ready, nothing awaited.
    p.snapshot("z", EZ, 3, [entry("z.one")]);
    await waitForAsync(async () => (await healthz()).status === 200, "r to be ready");
    expect(await lag()).toBe(0);
    expect(await learned()).toBe(3);
    expect(await metric("bridgehead_interest_synced", { origin: "z" })).toBe(1);

    // 4. A gap in z's sequence (4 is missing): r asks for a snapshot and is not ready until it comes.
    const gapFrom = p.mark();
    p.delta("z", EZ, 5, 1, "z.more");
    await p.waitFor("resync", (op) => op.origin === "z", { from: gapFrom });
    const h4 = await healthz();
    expect(h4.status).toBe(503);
    expect(h4.body.reasons).toEqual([
      expect.stringMatching(/^link to p is waiting for interest \(a snapshot asked for \d+ ms ago\)$/),
    ]);
    await waitForAsync(async () => (await lag()) > 0, "the lag of the gap");
    p.snapshot("z", EZ, 5, [entry("z.one"), entry("z.more")]);
    await waitForAsync(async () => (await healthz()).status === 200, "r ready again");
    expect(await lag()).toBe(0);
    expect(await learned()).toBe(4);
  });
});

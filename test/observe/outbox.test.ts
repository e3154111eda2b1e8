/**
 * A link whose path stops draining (a TCP proxy between a and b stops reading): the outbox metrics (the
 * link's real send queue: frames and bytes handed to its socket and not yet taken by the kernel) and
 * /linkz grow, /explainz says `outbox full` past the link's `outbox.max_bytes`, and everything goes back
 * to empty, with messages flowing to b, once the path drains again. How many of the burst arrive is not
 * asserted: a bounded outbox may shed some by its drop policy, and that is not what this test is about.
 */
import { connect, type NatsConnection } from "nats";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { type RunningSystem, startSystem } from "../../src/runtime/system.js";
import { waitUntil } from "../helpers/regions.js";
import { collect, waitForAsync } from "./kit.js";
import { parseExposition, sampleValue } from "./prom-text.js";
import { StallProxy } from "./stall-proxy.js";

let system: RunningSystem | undefined;
let proxy: StallProxy | undefined;
const clients: NatsConnection[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await system?.close();
  system = undefined;
  await proxy?.close();
  proxy = undefined;
});

const MAX_BYTES = 1024 * 1024;

function configText(proxyPort: number): string {
  const r = (name: string, extra = "") =>
    `  - name: ${name}\n    broker: { listen: 127.0.0.1:0 }\n    gateway: { listen: 127.0.0.1:0${extra} }\n    monitor: { listen: 127.0.0.1:0 }\n`;
  return (
    "regions:\n" +
    r("a") +
    r("b", `, url: "ws://127.0.0.1:${proxyPort}/bridgehead/v1"`) +
    "links:\n  - between: [a, b]\n    token: t\n    outbox: { max_bytes: 1MiB }\n"
  );
}

async function metric(sys: RunningSystem, name: string, labels: Record<string, string>): Promise<number> {
  const res = await fetch(`${sys.monitorUrl("a")}/metrics`);
  return sampleValue(parseExposition(await res.text()), name, labels) ?? Number.NaN;
}

interface Verdict {
  region: string;
  verdict: string;
  reason: string;
  link?: string;
  outbox?: { bytes: number; frames: number; max_bytes: number };
}

async function explainB(sys: RunningSystem): Promise<Verdict> {
  const res = await fetch(`${sys.monitorUrl("a")}/explainz?subject=big.x`);
  const body = (await res.json()) as { regions: Verdict[] };
  return body.regions.find((v) => v.region === "b")!;
}

describe("outbox: a link whose path does not drain", () => {
  it("outbox frames and bytes grow, /explainz says outbox full, and both clear when it drains", async () => {
    proxy = await StallProxy.start();
    system = await startSystem(loadConfig(configText(proxy.port), { env: {} }), pino({ level: "silent" }));
    const sys = system;
    const gwB = sys.regions.get("b")!.gateway.address!;
    proxy.target = { host: gwB.host, port: gwB.port };
    const gwA = sys.regions.get("a")!.gateway;
    await waitUntil(() => gwA.linkState("b") === "up", "a -> b up through the proxy");

    const nb = await connect({ servers: sys.regions.get("b")!.clientUrl });
    const na = await connect({ servers: sys.regions.get("a")!.clientUrl });
    clients.push(na, nb);
    const got = collect(nb, "big.>");
    await nb.flush();
    await waitUntil(
      () => gwA.appliedSeq("b")?.seq === sys.regions.get("b")!.gateway.localSeq,
      "b's interest",
    );
    expect((await explainB(sys)).verdict).toBe("delivered");
    expect(await metric(sys, "bridgehead_link_outbox_bytes", { peer: "b" })).toBe(0);

    proxy.pause();
    const payload = new Uint8Array(64 * 1024).fill(120);
    const N = 320; // 20 MiB: more than the kernel buffers on both sides of the stalled proxy hold
    for (let i = 0; i < N; i++) na.publish("big.x", payload);
    await na.flush();

    // The heartbeat gives up on a link that does not drain for 6 s: everything below fits well inside.
    await waitForAsync(
      async () => (await metric(sys, "bridgehead_link_outbox_bytes", { peer: "b" })) >= MAX_BYTES,
      "a's send queue to b to pass 1 MiB",
      4000,
    );
    expect(await metric(sys, "bridgehead_link_outbox_frames", { peer: "b" })).toBeGreaterThan(0);
    const linkz = (await (await fetch(`${sys.monitorUrl("a")}/linkz`)).json()) as {
      links: { peer: string; outbox: { frames: number; bytes: number; max_bytes: number } }[];
    };
    const out = linkz.links.find((l) => l.peer === "b")!.outbox;
    expect(out.bytes).toBeGreaterThanOrEqual(MAX_BYTES);
    expect(out.frames).toBeGreaterThan(0);
    expect(out.max_bytes).toBe(MAX_BYTES);
    const full = await explainB(sys);
    expect(full).toMatchObject({ verdict: "outbox full", link: "a->b" });
    expect(full.reason).toMatch(/^outbox full on link a->b: \d+ bytes queued \(full at 1048576\)$/);
    expect(full.outbox!.max_bytes).toBe(MAX_BYTES);

    proxy.resume();
    await waitUntil(() => got.length > 0, "messages flowing to b again", 10_000);
    await waitForAsync(
      async () =>
        (await metric(sys, "bridgehead_link_outbox_bytes", { peer: "b" })) === 0 &&
        (await metric(sys, "bridgehead_link_outbox_frames", { peer: "b" })) === 0,
      "a's send queue to drain",
    );
    expect((await explainB(sys)).verdict).toBe("delivered");
    expect(gwA.linkState("b")).toBe("up");
  });
});

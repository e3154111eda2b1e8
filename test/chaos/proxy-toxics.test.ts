/**
 * Each toxic measured on real TCP streams through the fault proxy (client → proxy → echo/scripted server on
 * 127.0.0.1). Timing windows are wide on purpose: the lower bounds prove the toxic acted, the upper bounds only
 * catch "never happened" on a busy 2-core machine. Measured figures are printed for the record.
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { ToxiproxyServer } from "../../src/chaos/proxy/index.js";
import {
  connectTo,
  http,
  json,
  now,
  portOf,
  type Recorder,
  roundTrip,
  startApi,
  startEcho,
  startTcp,
  stopAll,
  waitFor,
} from "./proxy-kit.js";

afterEach(stopAll);

function report(what: string, value: unknown): void {
  process.stdout.write(`[toxic figures] ${what}: ${JSON.stringify(value)}\n`);
}

async function proxyTo(api: ToxiproxyServer, upstreamPort: number, name = "p"): Promise<number> {
  const r = await http(
    api.url,
    "POST",
    "/proxies",
    JSON.stringify({ name, listen: "127.0.0.1:0", upstream: `127.0.0.1:${upstreamPort}` }),
  );
  expect(r.status).toBe(201);
  return portOf(json<{ listen: string }>(r).listen);
}

async function addToxic(api: ToxiproxyServer, body: Record<string, unknown>, proxy = "p"): Promise<void> {
  const r = await http(api.url, "POST", `/proxies/${proxy}/toxics`, JSON.stringify(body));
  expect(r.status, r.text).toBe(200);
}

async function removeToxic(api: ToxiproxyServer, name: string, proxy = "p"): Promise<void> {
  const r = await http(api.url, "DELETE", `/proxies/${proxy}/toxics/${name}`);
  expect(r.status, r.text).toBe(204);
}

async function updateToxic(api: ToxiproxyServer, name: string, body: Record<string, unknown>): Promise<void> {
  const r = await http(api.url, "PATCH", `/proxies/p/toxics/${name}`, JSON.stringify(body));
  expect(r.status, r.text).toBe(200);
}

/** A proxy in front of an echo server, plus a connected client that has done one warm-up round trip. */
async function echoSetup(): Promise<{ api: ToxiproxyServer; port: number; client: Recorder }> {
  const api = await startApi();
  const echo = await startEcho();
  const port = await proxyTo(api, echo.port);
  const client = await connectTo(port);
  await roundTrip(client);
  return { api, port, client };
}

async function median(samples: Promise<number>[] | number[]): Promise<number> {
  const values = (await Promise.all(samples)).sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
}

async function roundTrips(client: Recorder, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await roundTrip(client));
  return out;
}

describe("latency", () => {
  it("200 ms downstream adds about 200 ms to a round trip; upstream latency stacks", async () => {
    const { api, client } = await echoSetup();
    const base = await median(await roundTrips(client, 3));
    await addToxic(api, { type: "latency", attributes: { latency: 200 } });
    const down = await roundTrip(client);
    await addToxic(api, { type: "latency", stream: "upstream", attributes: { latency: 100 } });
    const both = await roundTrip(client);
    report("latency", { baseMs: base, down200Ms: down, down200up100Ms: both });
    expect(down).toBeGreaterThanOrEqual(190);
    expect(down).toBeLessThan(600);
    expect(both).toBeGreaterThanOrEqual(290);
    expect(both).toBeLessThan(800);
  });

  it("jitter spreads the delay around the latency", async () => {
    const { api, client } = await echoSetup();
    await addToxic(api, { type: "latency", attributes: { latency: 100, jitter: 80 } });
    const samples = await roundTrips(client, 12);
    const min = Math.min(...samples);
    const max = Math.max(...samples);
    report("jitter 100±80", { minMs: min, maxMs: max, samples: samples.map(Math.round) });
    // Every sample within latency ± jitter (plus scheduling slack), and clearly not all the same.
    expect(min).toBeGreaterThanOrEqual(18);
    expect(max).toBeLessThan(600);
    expect(max - min).toBeGreaterThanOrEqual(40);
  });

  it("delays are pipelined: each write is delayed by the latency, not by the writes before it", async () => {
    const { api, client } = await echoSetup();
    await addToxic(api, { type: "latency", attributes: { latency: 600 } });
    const base = client.bytes;
    const sentA = now();
    client.socket.write("a");
    await new Promise((r) => setTimeout(r, 100));
    const sentB = now();
    client.socket.write("b");
    const a = (await client.waitBytes(base + 1, 5000)) - sentA;
    const b = (await client.waitBytes(base + 2, 5000)) - sentB;
    report("pipelined latency 600, writes 100 ms apart", {
      firstMs: a,
      secondMs: b,
      apartMs: Math.round(sentB - sentA),
    });
    expect(client.data.subarray(-2).toString()).toBe("ab");
    expect(a).toBeGreaterThanOrEqual(590);
    expect(b).toBeGreaterThanOrEqual(590);
    // Cumulative delays would put the second byte a full latency after the first one's arrival (b ≈ 1100).
    expect(b).toBeLessThan(900);
  });

  it("removing a latency toxic delivers its buffered data at once", async () => {
    const { api, client } = await echoSetup();
    await addToxic(api, { type: "latency", attributes: { latency: 3000 } });
    const start = now();
    const before = client.bytes;
    client.socket.write("held");
    await new Promise((r) => setTimeout(r, 50));
    expect((await http(api.url, "POST", "/reset")).status).toBe(204);
    const at = await client.waitBytes(before + 4, 5000);
    report("latency flushed on reset", { afterMs: at - start });
    expect(at - start).toBeLessThan(2000);
    expect(client.closedAt).toBeUndefined();
  });
});

describe("bandwidth", () => {
  it("caps a download at the rate (100 KB/s, 1 KB = 1000 B)", async () => {
    const api = await startApi();
    const total = 120_000;
    const payload = randomBytes(total);
    const source = await startTcp((s) => s.write(payload));
    const port = await proxyTo(api, source.port);
    await addToxic(api, { type: "bandwidth", attributes: { rate: 100 } });
    const client = await connectTo(port);
    const start = client.connectedAt!;
    const done = await client.waitBytes(total, 10_000);
    const rate = total / ((done - start) / 1000);
    report("bandwidth 100 KB/s", {
      bytes: total,
      ms: Math.round(done - start),
      bytesPerSec: Math.round(rate),
    });
    expect(client.data.equals(payload)).toBe(true);
    expect(rate).toBeGreaterThan(70_000);
    expect(rate).toBeLessThan(130_000);
  });

  it("an upstream bandwidth toxic leaves downloads alone", async () => {
    const api = await startApi();
    const payload = randomBytes(200_000);
    const source = await startTcp((s) => s.write(payload));
    const port = await proxyTo(api, source.port);
    await addToxic(api, { type: "bandwidth", stream: "upstream", attributes: { rate: 10 } });
    const client = await connectTo(port);
    const done = await client.waitBytes(payload.length, 10_000);
    report("upstream bandwidth, download", { ms: Math.round(done - client.connectedAt!) });
    expect(done - client.connectedAt!).toBeLessThan(1000);
  });

  it("rate 0 stalls the stream", async () => {
    const { api, client } = await echoSetup();
    await addToxic(api, { type: "bandwidth", attributes: { rate: 0 } });
    const before = client.bytes;
    client.socket.write("x");
    await new Promise((r) => setTimeout(r, 500));
    expect(client.bytes).toBe(before);
    await removeToxic(api, "bandwidth_downstream");
    await client.waitBytes(before + 1, 3000);
  });
});

describe("slow_close", () => {
  it("data passes at once; the close is held back for the delay", async () => {
    const api = await startApi();
    const source = await startTcp((s) => {
      s.write("bye");
      setTimeout(() => s.end(), 50);
    });
    const port = await proxyTo(api, source.port);
    await addToxic(api, { type: "slow_close", attributes: { delay: 500 } });
    const client = await connectTo(port);
    const dataAt = await client.waitBytes(3, 3000);
    const closedAt = await client.waitClosed(5000);
    const start = client.connectedAt!;
    report("slow_close 500", { dataMs: Math.round(dataAt - start), closeMs: Math.round(closedAt - start) });
    expect(dataAt - start).toBeLessThan(400);
    expect(closedAt - start).toBeGreaterThanOrEqual(500);
    expect(closedAt - start).toBeLessThan(2000);
  });

  it("without the toxic the close follows the server's at once", async () => {
    const api = await startApi();
    const source = await startTcp((s) => {
      s.write("bye");
      setTimeout(() => s.end(), 50);
    });
    const port = await proxyTo(api, source.port);
    const client = await connectTo(port);
    const closedAt = await client.waitClosed(5000);
    expect(closedAt - client.connectedAt!).toBeLessThan(400);
  });
});

describe("timeout", () => {
  it("drops data and closes the connection after the timeout", async () => {
    const { api, client } = await echoSetup();
    await addToxic(api, { type: "timeout", attributes: { timeout: 500 } });
    const before = client.bytes;
    const start = now();
    client.socket.write("lost");
    const closedAt = await client.waitClosed(5000);
    report("timeout 500", { closeMs: Math.round(closedAt - start) });
    expect(client.bytes).toBe(before);
    expect(closedAt - start).toBeGreaterThanOrEqual(450);
    expect(closedAt - start).toBeLessThan(2000);
    expect(client.error).toBeUndefined();
  });

  it("timeout 0 holds the connection open with no data until the toxic is removed", async () => {
    const { api, client } = await echoSetup();
    await addToxic(api, { type: "timeout", attributes: { timeout: 0 } });
    const before = client.bytes;
    client.socket.write("held");
    await new Promise((r) => setTimeout(r, 700));
    expect(client.bytes).toBe(before);
    expect(client.closedAt).toBeUndefined();
    const removed = now();
    await removeToxic(api, "timeout_downstream");
    const closedAt = await client.waitClosed(3000);
    report("timeout 0 removed", { closeAfterRemoveMs: Math.round(closedAt - removed) });
    expect(closedAt - removed).toBeLessThan(1000);
  });
});

describe("durations beyond Node's timer range", () => {
  it("a timeout or latency over 2^31 ms waits instead of firing at once", async () => {
    const { api, client } = await echoSetup();
    await addToxic(api, { type: "latency", attributes: { latency: 3_000_000_000 } });
    await addToxic(api, { type: "timeout", stream: "upstream", attributes: { timeout: 3_000_000_000 } });
    const before = client.bytes;
    client.socket.write("x");
    await new Promise((r) => setTimeout(r, 300));
    expect(client.bytes).toBe(before);
    expect(client.closedAt).toBeUndefined();
  });
});

describe("reset_peer", () => {
  it("resets the connection (ECONNRESET) on the first data when present at connect", async () => {
    const api = await startApi();
    const echo = await startEcho();
    const port = await proxyTo(api, echo.port);
    await addToxic(api, { type: "reset_peer", attributes: { timeout: 0 } });
    const client = await connectTo(port);
    const start = now();
    client.socket.write("boom");
    await client.waitClosed(3000);
    report("reset_peer 0", { errorCode: client.error?.code, closeMs: Math.round(client.closedAt! - start) });
    expect(client.error?.code).toBe("ECONNRESET");
    expect(client.bytes).toBe(0);
  });

  it("waits the timeout after the first data before the reset", async () => {
    const api = await startApi();
    const echo = await startEcho();
    const port = await proxyTo(api, echo.port);
    await addToxic(api, { type: "reset_peer", stream: "upstream", attributes: { timeout: 300 } });
    const client = await connectTo(port);
    const start = now();
    client.socket.write("boom");
    const closedAt = await client.waitClosed(3000);
    report("reset_peer 300 upstream", {
      errorCode: client.error?.code,
      closeMs: Math.round(closedAt - start),
    });
    expect(client.error?.code).toBe("ECONNRESET");
    expect(closedAt - start).toBeGreaterThanOrEqual(280);
    expect(closedAt - start).toBeLessThan(2000);
  });

  it("added to an open connection it closes with a plain FIN, as Toxiproxy does", async () => {
    const { api, client } = await echoSetup();
    await addToxic(api, { type: "reset_peer", attributes: { timeout: 0 } });
    client.socket.write("boom");
    await client.waitClosed(3000);
    expect(client.error).toBeUndefined();
    expect(client.endedAt).toBeDefined();
  });
});

describe("slicer", () => {
  it("splits the stream into small pieces; every byte arrives intact and in order", async () => {
    const api = await startApi();
    const payload = randomBytes(8_000);
    const source = await startTcp((s) => s.write(payload));
    const port = await proxyTo(api, source.port);
    await addToxic(api, {
      type: "slicer",
      attributes: { average_size: 100, size_variation: 10, delay: 2000 },
    });
    const client = await connectTo(port);
    await client.waitBytes(payload.length, 10_000);
    const sizes = client.chunks.map((c) => c.data.length);
    report("slicer 100/10/2ms on 8000 B", {
      reads: sizes.length,
      maxRead: Math.max(...sizes),
      ms: Math.round(client.chunks.at(-1)!.at - client.connectedAt!),
    });
    expect(client.data.equals(payload)).toBe(true);
    // 8000 B in pieces of at most 110 B is at least 73 pieces; reads may merge a few on a busy machine.
    expect(sizes.length).toBeGreaterThanOrEqual(20);
    expect(Math.min(...sizes)).toBeLessThanOrEqual(110);
  });
  it("waits `delay` µs after each piece (1000 B at 100/10/20 ms is about 16 pieces over 300 ms)", async () => {
    const api = await startApi();
    const payload = randomBytes(1000);
    const source = await startTcp((s) => s.write(payload));
    const port = await proxyTo(api, source.port);
    await addToxic(api, {
      type: "slicer",
      attributes: { average_size: 100, size_variation: 10, delay: 20_000 },
    });
    const client = await connectTo(port);
    const done = await client.waitBytes(payload.length, 10_000);
    const sizes = client.chunks.map((c) => c.data.length);
    report("slicer 100/10/20ms on 1000 B", {
      reads: sizes.length,
      sizes,
      ms: Math.round(done - client.connectedAt!),
    });
    expect(client.data.equals(payload)).toBe(true);
    expect(sizes.length).toBeGreaterThanOrEqual(8);
    expect(done - client.connectedAt!).toBeGreaterThanOrEqual(200);
    expect(done - client.connectedAt!).toBeLessThan(3000);
  });
});

describe("limit_data", () => {
  it("passes exactly N bytes, then closes", async () => {
    const api = await startApi();
    const payload = randomBytes(1000);
    const source = await startTcp((s) => s.write(payload));
    const port = await proxyTo(api, source.port);
    await addToxic(api, { type: "limit_data", attributes: { bytes: 300 } });
    const client = await connectTo(port);
    await client.waitClosed(3000);
    report("limit_data 300 of 1000", { received: client.bytes });
    expect(client.bytes).toBe(300);
    expect(client.data.equals(payload.subarray(0, 300))).toBe(true);
  });

  it("counts from when it was added (bytes sent before do not count)", async () => {
    const { api, client } = await echoSetup();
    const before = client.bytes;
    await addToxic(api, { type: "limit_data", attributes: { bytes: 10 } });
    await roundTrip(client, Buffer.from("12345678"));
    client.socket.write("abcde");
    await client.waitClosed(3000);
    expect(client.bytes - before).toBe(10);
  });
});

describe("toxicity and direction", () => {
  it("toxicity 0 never applies", async () => {
    const api = await startApi();
    const echo = await startEcho();
    const port = await proxyTo(api, echo.port);
    await addToxic(api, { type: "latency", toxicity: 0, attributes: { latency: 400 } });
    const rtts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await connectTo(port);
      rtts.push(await roundTrip(c));
      c.socket.destroy();
    }
    report("toxicity 0, latency 400", { rttsMs: rtts.map(Math.round) });
    expect(Math.max(...rtts)).toBeLessThan(300);
  });

  it("a toxicity update 0 → 1 applies to an open connection", async () => {
    const { api, client } = await echoSetup();
    await addToxic(api, { type: "latency", toxicity: 0, attributes: { latency: 300 } });
    expect(await roundTrip(client)).toBeLessThan(250);
    await updateToxic(api, "latency_downstream", { toxicity: 1 });
    expect(await roundTrip(client)).toBeGreaterThanOrEqual(290);
  });

  it("downstream toxics delay server → client only, upstream toxics client → server only", async () => {
    const api = await startApi();
    const arrivals: number[] = [];
    const server = await startTcp((s: Socket) => {
      s.write("hello");
      s.on("data", () => arrivals.push(now()));
    });
    const port = await proxyTo(api, server.port);

    await addToxic(api, { type: "latency", stream: "downstream", attributes: { latency: 300 } });
    let c = await connectTo(port);
    const greetDown = (await c.waitBytes(5, 3000)) - c.connectedAt!;
    let sent = now();
    c.socket.write("x");
    await waitFor(() => arrivals.length === 1, 3000, "the server to get the byte");
    const upWithDown = arrivals[0]! - sent;
    c.socket.destroy();
    await removeToxic(api, "latency_downstream");

    await addToxic(api, { type: "latency", stream: "upstream", attributes: { latency: 300 } });
    c = await connectTo(port);
    const greetUp = (await c.waitBytes(5, 3000)) - c.connectedAt!;
    sent = now();
    c.socket.write("x");
    await waitFor(() => arrivals.length === 2, 3000, "the server to get the byte");
    const upWithUp = arrivals[1]! - sent;
    report("direction", { greetDown, upWithDown, greetUp, upWithUp });

    expect(greetDown).toBeGreaterThanOrEqual(290);
    expect(upWithDown).toBeLessThan(250);
    expect(greetUp).toBeLessThan(250);
    expect(upWithUp).toBeGreaterThanOrEqual(290);
  });
});

describe("live changes and proxy state", () => {
  it("adding, updating and removing a toxic affects an already open connection", async () => {
    const { api, client } = await echoSetup();
    const base = await roundTrip(client);
    await addToxic(api, { type: "latency", attributes: { latency: 250 } });
    const added = await roundTrip(client);
    await updateToxic(api, "latency_downstream", { attributes: { latency: 50 } });
    const updated = await roundTrip(client);
    await removeToxic(api, "latency_downstream");
    const removed = await roundTrip(client);
    report("live toxic changes", { base, added, updated, removed });
    expect(added).toBeGreaterThanOrEqual(240);
    expect(updated).toBeGreaterThanOrEqual(45);
    expect(updated).toBeLessThan(added);
    expect(removed).toBeLessThan(200);
    expect(client.closedAt).toBeUndefined();
  });

  it("disabling a proxy closes its connections and refuses new ones; enabling brings it back", async () => {
    const { api, port, client } = await echoSetup();
    const off = await http(api.url, "POST", "/proxies/p", JSON.stringify({ enabled: false }));
    expect(off.status).toBe(200);
    expect(json<{ enabled: boolean }>(off).enabled).toBe(false);
    await client.waitClosed(3000);
    expect(client.error).toBeUndefined();
    await expect(connectTo(port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    const on = await http(api.url, "PATCH", "/proxies/p", JSON.stringify({ enabled: true }));
    expect(on.status).toBe(200);
    expect(portOf(json<{ listen: string }>(on).listen)).toBe(port);
    const again = await connectTo(port);
    expect(await roundTrip(again)).toBeLessThan(1000);
  });

  it("deleting a proxy closes its connections", async () => {
    const { api, port, client } = await echoSetup();
    expect((await http(api.url, "DELETE", "/proxies/p")).status).toBe(204);
    await client.waitClosed(3000);
    await expect(connectTo(port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("a failed upstream dial closes the client with no data", async () => {
    const api = await startApi();
    const gone = await startTcp(() => {});
    const deadPort = gone.port;
    await new Promise<void>((r) => gone.server.close(() => r()));
    const port = await proxyTo(api, deadPort);
    const client = await connectTo(port);
    await client.waitClosed(3000);
    expect(client.bytes).toBe(0);
  });

  it("toxics are kept while disabled and apply after re-enabling", async () => {
    const { api, port } = await echoSetup();
    await addToxic(api, { type: "latency", attributes: { latency: 200 } });
    await http(api.url, "POST", "/proxies/p", JSON.stringify({ enabled: false }));
    await http(api.url, "POST", "/proxies/p", JSON.stringify({ enabled: true }));
    const c = await connectTo(port);
    expect(await roundTrip(c)).toBeGreaterThanOrEqual(190);
  });
});

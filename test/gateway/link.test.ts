import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket, { type ClientOptions, type RawData, WebSocketServer } from "ws";
import { Backoff } from "../../src/gateway/backoff.js";
import {
  checkHello,
  type Link,
  type LinkCloseInfo,
  LinkDialer,
  type LinkDialerOptions,
  LinkListener,
  type LinkListenerOptions,
  type LinkState,
  linkUrl,
  truncateCloseReason,
} from "../../src/gateway/link.js";
import { BridgeheadError } from "../../src/util/errors.js";
import type { Logger } from "../../src/util/logger.js";

const HOST = "127.0.0.1";
const TOKEN = "tok-Zq81-secret-do-not-leak";
const WRONG_TOKEN = "tok-Wr0ng-guess-also-secret";

// ---- helpers ---------------------------------------------------------------------------------------------

const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      await fn?.();
    } catch {
      // best effort: one failing cleanup must not keep the others from running
    }
  }
});

/** Polls `cond` until it holds or the deadline passes. */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A pino logger whose JSON lines land in an array. */
function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: "debug" }, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

function parsed(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function startListener(
  over: Partial<LinkListenerOptions> = {},
): Promise<{ listener: LinkListener; port: number; lines: string[]; links: Link[] }> {
  const { logger, lines } = captureLogger();
  const listener = new LinkListener({
    region: "us-east",
    token: TOKEN,
    host: HOST,
    port: 0,
    isLinked: () => false,
    logger,
    ...over,
  });
  cleanups.push(() => listener.close());
  const links: Link[] = [];
  listener.onLink((l) => links.push(l));
  const { port } = await listener.listen();
  return { listener, port, lines, links };
}

interface DialerHarness {
  dialer: LinkDialer;
  lines: string[];
  links: Link[];
  states: LinkState[];
  closes: LinkCloseInfo[];
}

function startDialer(port: number, over: Partial<LinkDialerOptions> = {}): DialerHarness {
  const { logger, lines } = captureLogger();
  const dialer = new LinkDialer({
    region: "eu-west",
    token: TOKEN,
    url: linkUrl(HOST, port),
    logger,
    backoff: { initialMs: 10, maxMs: 50 },
    ...over,
  });
  cleanups.push(() => dialer.stop());
  const h: DialerHarness = { dialer, lines, links: [], states: [], closes: [] };
  dialer.onLink((l) => h.links.push(l));
  dialer.onState((s) => h.states.push(s));
  dialer.onClose((c) => h.closes.push(c));
  dialer.start();
  return h;
}

interface RawPeer {
  ws: WebSocket;
  messages: { data: Buffer; isBinary: boolean }[];
  /** Payloads of the pings this peer received. */
  pings: Buffer[];
  close: { code: number; reason: string } | undefined;
  opened: Promise<void>;
}

function watchRaw(ws: WebSocket): RawPeer {
  const peer: RawPeer = { ws, messages: [], pings: [], close: undefined, opened: Promise.resolve() };
  ws.on("ping", (data: Buffer) => void peer.pings.push(data));
  ws.on("message", (data: RawData, isBinary: boolean) => {
    peer.messages.push({ data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), isBinary });
  });
  ws.on("close", (code: number, reason: Buffer) => {
    peer.close = { code, reason: reason.toString() };
  });
  ws.on("error", () => {});
  return peer;
}

function rawClient(port: number, opts: ClientOptions = {}): RawPeer {
  const ws = new WebSocket(linkUrl(HOST, port), opts);
  cleanups.push(() => ws.terminate());
  const peer = watchRaw(ws);
  peer.opened = new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return peer;
}

function hello(fields: Record<string, unknown> = {}): string {
  return JSON.stringify({
    type: "hello",
    protocol: 1,
    region: "raw-peer",
    token: TOKEN,
    features: [],
    ...fields,
  });
}

/** A hand-driven listener (plain ws server): answers the hello as told, optionally never pongs. */
async function rawServer(
  opts: { autoPong?: boolean; answer?: string | undefined } = {},
): Promise<{ port: number; peers: RawPeer[] }> {
  const wss = new WebSocketServer({ host: HOST, port: 0, autoPong: opts.autoPong ?? true });
  const peers: RawPeer[] = [];
  wss.on("connection", (ws) => {
    const peer = watchRaw(ws);
    peers.push(peer);
    ws.once("message", () => {
      if (opts.answer !== undefined) ws.send(opts.answer);
    });
  });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const p of peers) p.ws.terminate();
        wss.close(() => resolve());
      }),
  );
  const addr = wss.address();
  if (addr === null || typeof addr === "string") throw new Error("unexpected address");
  return { port: addr.port, peers };
}

function closeOf(peer: RawPeer): { code: number; reason: string } {
  if (!peer.close) throw new Error("not closed");
  return peer.close;
}

// ---- backoff ---------------------------------------------------------------------------------------------

describe("Backoff", () => {
  it("uses the protocol defaults: 100 ms doubling up to 10 s", () => {
    const b = new Backoff({ random: () => 0.999999 });
    const delays = Array.from({ length: 10 }, () => b.next());
    expect(delays).toEqual([99, 199, 399, 799, 1599, 3199, 6399, 9999, 9999, 9999]);
    expect(b.attempt).toBe(10);
  });

  it("draws the delay uniformly below the ceiling (full jitter)", () => {
    const values = [0, 0.5, 0.25, 0.5];
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => values.shift() ?? 0 });
    expect([b.next(), b.next(), b.next(), b.next()]).toEqual([0, 100, 100, 400]);
  });

  it("resets to the first step", () => {
    const b = new Backoff({ random: () => 0.5 });
    b.next();
    b.next();
    b.next();
    b.reset();
    expect(b.attempt).toBe(0);
    expect(b.next()).toBe(50);
  });

  it("never exceeds maxMs, even after very many retries", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 10_000, random: () => 0.999999 });
    for (let i = 0; i < 5000; i++) b.next();
    expect(b.next()).toBe(9999);
    expect(b.ceiling(100_000)).toBe(10_000);
  });

  it("tolerates a misbehaving random source", () => {
    for (const r of [Number.NaN, -1, 1, 7, Number.POSITIVE_INFINITY]) {
      const d = new Backoff({ initialMs: 100, maxMs: 100, random: () => r }).next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(100);
    }
  });

  it("rejects nonsensical options", () => {
    expect(() => new Backoff({ initialMs: 0 })).toThrow(/initialMs/);
    expect(() => new Backoff({ initialMs: 100, maxMs: 50 })).toThrow(/maxMs/);
    expect(() => new Backoff({ factor: 0.5 })).toThrow(/factor/);
  });
});

// ---- hello checks (pure) ---------------------------------------------------------------------------------

describe("checkHello", () => {
  const want = { localRegion: "us-east", token: TOKEN, isLinked: (r: string) => r === "ap-south" };

  it("accepts a good hello and fills in missing features", () => {
    const v = checkHello(
      JSON.stringify({ type: "hello", protocol: 1, region: "eu-west", token: TOKEN }),
      want,
    );
    expect(v).toEqual({
      ok: true,
      hello: { type: "hello", protocol: 1, region: "eu-west", token: TOKEN, features: [] },
    });
  });

  it.each([
    ["{nope", 4000, "bad handshake: not valid JSON"],
    ["[1,2]", 4000, "bad handshake: not a JSON object"],
    ["null", 4000, "bad handshake: not a JSON object"],
    [hello({ type: "helo" }), 4000, "bad handshake: not a hello"],
    [hello({ protocol: "1" }), 4000, "bad handshake: missing or invalid protocol"],
    [hello({ protocol: 1.5 }), 4000, "bad handshake: missing or invalid protocol"],
    [
      hello({ protocol: 2, region: { v2: true } }),
      4003,
      "incompatible protocol version 2, this side speaks 1",
    ],
    [hello({ region: undefined }), 4000, "bad handshake: missing or invalid region"],
    [hello({ region: "bad region\n" }), 4000, "bad handshake: missing or invalid region"],
    [hello({ region: "x".repeat(65) }), 4000, "bad handshake: missing or invalid region"],
    [hello({ token: 42 }), 4000, "bad handshake: missing or invalid token"],
    [hello({ features: [1] }), 4000, "bad handshake: invalid features"],
    [hello({ token: WRONG_TOKEN }), 4001, "authentication failed"],
    [hello({ token: "" }), 4001, "authentication failed"],
    [hello({ region: "us-east" }), 4002, "duplicate region name us-east: it is this region's own name"],
    [hello({ region: "ap-south" }), 4002, "duplicate region ap-south: already linked"],
    [`{"type":"hello","pad":"${"x".repeat(5000)}"}`, 4000, "bad handshake: hello larger than 4096 bytes"],
  ])("refuses %s", (text, code, reason) => {
    const v = checkHello(text, want);
    expect(v).toMatchObject({ ok: false, code, reason });
    if (!v.ok) {
      expect(v.reason).not.toContain(TOKEN);
      expect(v.reason).not.toContain(WRONG_TOKEN);
    }
  });

  it("checks the token before the region, so unauthenticated peers learn nothing about regions", () => {
    const v = checkHello(hello({ region: "us-east", token: WRONG_TOKEN }), want);
    expect(v).toMatchObject({ ok: false, code: 4001 });
  });

  it("refuses an unexpected region on the dialer side", () => {
    const v = checkHello(hello({ region: "eu-west" }), { ...want, expectRegion: "eu-central" });
    expect(v).toMatchObject({
      ok: false,
      code: 4002,
      reason: "unexpected region eu-west: expected eu-central",
    });
  });

  it("cuts close reasons to the 123 bytes a close frame carries", () => {
    expect(truncateCloseReason("short")).toBe("short");
    const long = truncateCloseReason("é".repeat(200));
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(123);
    expect(long.endsWith("...")).toBe(true);
  });
});

describe("constructor checks", () => {
  const { logger } = captureLogger();
  const base = { region: "eu-west", token: TOKEN, logger };
  it.each([
    [{ url: "http://127.0.0.1:1/bridgehead/v1" }, /ws:\/\/ or wss:\/\//],
    [{ url: "not a url" }, /invalid link URL/],
    [{ url: "ws://127.0.0.1:1/bridgehead/v1", region: "bad name" }, /invalid region name/],
    [{ url: "ws://127.0.0.1:1/bridgehead/v1", token: "" }, /token/],
    [{ url: "ws://127.0.0.1:1/bridgehead/v1", heartbeatMs: 0 }, /heartbeatMs/],
  ])("LinkDialer refuses %o", (over, message) => {
    expect(() => new LinkDialer({ ...base, ...over })).toThrow(BridgeheadError);
    expect(() => new LinkDialer({ ...base, ...over })).toThrow(message);
  });

  it("a listener cannot take a port in use", async () => {
    const l = await startListener();
    const other = new LinkListener({
      region: "us-east",
      token: TOKEN,
      host: HOST,
      port: l.port,
      isLinked: () => false,
      logger,
    });
    cleanups.push(() => other.close());
    await expect(other.listen()).rejects.toThrow(/EADDRINUSE/);
  });
});

// ---- live links ------------------------------------------------------------------------------------------

describe("Link over WebSocket", () => {
  it("links two regions: states, byte-exact frames both ways, RTT", async () => {
    const l = await startListener({ heartbeatMs: 100 });
    const listenerStates: LinkState[] = [];
    const listenerFrames: Buffer[] = [];
    l.listener.onLink((link) => {
      listenerStates.push(link.state);
      link.onState((s) => listenerStates.push(s));
      link.onFrame((f) => listenerFrames.push(f));
    });
    const d = startDialer(l.port, { expectRegion: "us-east", heartbeatMs: 100 });
    const dialerFrames: Buffer[] = [];
    d.dialer.onLink((link) => link.onFrame((f) => dialerFrames.push(f)));

    await waitFor(() => d.links.length === 1 && l.links.length === 1, "both sides linked");
    const dl = d.links[0]!;
    const ll = l.links[0]!;
    expect(d.states).toEqual(["connecting", "syncing"]);
    expect(listenerStates).toEqual(["syncing"]);
    expect(dl.state).toBe("syncing");
    expect(dl.peerRegion).toBe("us-east");
    expect(ll.peerRegion).toBe("eu-west");
    expect(dl.direction).toBe("dial");
    expect(ll.direction).toBe("accept");
    expect(d.dialer.attempts).toBe(0);
    // The listener side logged its own way through connecting -> syncing.
    const msgs = parsed(l.lines).map((e) => e["msg"]);
    expect(msgs.indexOf("link connecting")).toBeLessThan(msgs.indexOf("link syncing"));

    dl.markUp();
    ll.markUp();
    expect(dl.state).toBe("up");
    expect(ll.state).toBe("up");
    expect(d.dialer.state).toBe("up");
    expect(listenerStates).toEqual(["syncing", "up"]);

    // Random bodies behind a header without flags: flag bit 0 would mark a compressed frame (feature deflate).
    const unflagged = (b: Buffer) => {
      b[1] = 0;
      return b;
    };
    const toListener = [
      Buffer.from([1, 0, 3]),
      Buffer.alloc(0),
      unflagged(randomBytes(1024 * 1024)),
      Buffer.from("x"),
    ];
    const toDialer = [unflagged(randomBytes(1024 * 1024)), Buffer.from([0xff, 0x00, 0xfe])];
    for (const f of toListener) expect(dl.send(f)).toBe(true);
    for (const f of toDialer) expect(ll.send(f)).toBe(true);
    expect(dl.bufferedAmount).toBeGreaterThanOrEqual(0);
    await waitFor(() => listenerFrames.length === toListener.length, "frames at the listener");
    await waitFor(() => dialerFrames.length === toDialer.length, "frames at the dialer");
    for (const [i, f] of toListener.entries()) expect(listenerFrames[i]!.equals(f)).toBe(true);
    for (const [i, f] of toDialer.entries()) expect(dialerFrames[i]!.equals(f)).toBe(true);

    await waitFor(() => (dl.rttMicros ?? 0) > 0 && (ll.rttMicros ?? 0) > 0, "RTT on both sides");
    expect(Number.isInteger(dl.rttMicros)).toBe(true);
    // Heartbeats kept the link up through the 1 MiB transfer.
    expect(dl.state).toBe("up");
    expect(ll.state).toBe("up");

    // No frame or payload ever shows up in the logs.
    for (const line of [...l.lines, ...d.lines]) expect(line.length).toBeLessThan(2000);
  });

  it("refuses a wrong token with 4001 and never logs or sends the token", async () => {
    const l = await startListener();
    const d = startDialer(l.port, { token: WRONG_TOKEN, backoff: { initialMs: 1000, maxMs: 1000 } });
    await waitFor(() => d.closes.length >= 1, "the dialer's attempt to end");
    expect(d.closes[0]).toEqual({ code: 4001, reason: "authentication failed", by: "peer" });
    expect(d.links).toEqual([]);
    expect(d.dialer.state).toBe("down");
    await waitFor(() => parsed(l.lines).some((e) => e["msg"] === "link refused"), "the refusal log");
    const refusals = parsed(l.lines).filter((e) => e["msg"] === "link refused");
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ code: 4001, reason: "authentication failed", region: "us-east" });
    expect(l.links).toEqual([]);
    const dialerWarnings = parsed(d.lines).filter((e) => e["level"] === 40);
    expect(dialerWarnings).toMatchObject([
      { msg: "link attempt failed", code: 4001, reason: "authentication failed", by: "peer", attempts: 1 },
    ]);
    for (const line of [...l.lines, ...d.lines]) {
      expect(line).not.toContain(TOKEN);
      expect(line).not.toContain(WRONG_TOKEN);
    }
  });

  it("refuses a region that is already linked (4002)", async () => {
    const l = await startListener({ isLinked: (r) => r === "eu-west" });
    const d = startDialer(l.port, { backoff: { initialMs: 1000, maxMs: 1000 } });
    await waitFor(() => d.closes.length >= 1, "refusal");
    expect(d.closes[0]).toEqual({
      code: 4002,
      reason: "duplicate region eu-west: already linked",
      by: "peer",
    });
  });

  it("refuses the listener's own region name (4002)", async () => {
    const l = await startListener();
    const d = startDialer(l.port, { region: "us-east", backoff: { initialMs: 1000, maxMs: 1000 } });
    await waitFor(() => d.closes.length >= 1, "refusal");
    expect(d.closes[0]).toEqual({
      code: 4002,
      reason: "duplicate region name us-east: it is this region's own name",
      by: "peer",
    });
  });

  it("the dialer refuses a listener that is not the region it expects (4002)", async () => {
    const l = await startListener();
    const peerStates: LinkState[] = [];
    l.listener.onLink((link) => link.onState((s) => peerStates.push(s)));
    const d = startDialer(l.port, { expectRegion: "us-west", backoff: { initialMs: 1000, maxMs: 1000 } });
    await waitFor(() => d.closes.length >= 1, "refusal");
    expect(d.closes[0]).toEqual({
      code: 4002,
      reason: "unexpected region us-east: expected us-west",
      by: "local",
    });
    expect(d.links).toEqual([]);
    // The listener had accepted the hello; it sees the dialer's close.
    await waitFor(() => peerStates.includes("down"), "listener side down");
    expect(l.links[0]?.closeInfo).toEqual({
      code: 4002,
      reason: "unexpected region us-east: expected us-west",
      by: "peer",
    });
  });

  it("refuses an incompatible protocol version (4003)", async () => {
    const l = await startListener();
    const raw = rawClient(l.port);
    await raw.opened;
    raw.ws.send(hello({ protocol: 99 }));
    await waitFor(() => raw.close !== undefined, "close");
    expect(closeOf(raw)).toEqual({
      code: 4003,
      reason: "incompatible protocol version 99, this side speaks 1",
    });
    expect(raw.messages).toEqual([]); // no hello (and so no token) came back
  });

  it.each([
    ["not JSON", "hello there", "bad handshake: not valid JSON"],
    ["not a hello", JSON.stringify({ type: "subscribe" }), "bad handshake: not a hello"],
    [
      "missing token",
      JSON.stringify({ type: "hello", protocol: 1, region: "x" }),
      "bad handshake: missing or invalid token",
    ],
  ])("refuses a bad hello (%s) with 4000", async (_name, text, reason) => {
    const l = await startListener();
    const raw = rawClient(l.port);
    await raw.opened;
    raw.ws.send(text);
    await waitFor(() => raw.close !== undefined, "close");
    expect(closeOf(raw)).toEqual({ code: 4000, reason });
  });

  it("closes with 4000 when no hello comes in time (listener side)", async () => {
    const l = await startListener({ handshakeTimeoutMs: 100 });
    const raw = rawClient(l.port);
    await raw.opened;
    await waitFor(() => raw.close !== undefined, "close");
    expect(closeOf(raw)).toEqual({ code: 4000, reason: "handshake timeout" });
    const refusals = parsed(l.lines).filter((e) => e["msg"] === "link refused");
    expect(refusals).toMatchObject([{ code: 4000, reason: "handshake timeout" }]);
  });

  it("closes with 4000 when the listener never answers the hello (dialer side)", async () => {
    const srv = await rawServer({ answer: undefined });
    const d = startDialer(srv.port, { handshakeTimeoutMs: 100, backoff: { initialMs: 1000, maxMs: 1000 } });
    await waitFor(() => d.closes.length >= 1, "the attempt to end");
    expect(d.closes[0]).toEqual({ code: 4000, reason: "handshake timeout", by: "local" });
    await waitFor(() => srv.peers[0]?.close !== undefined, "raw server sees the close");
    expect(closeOf(srv.peers[0]!)).toEqual({ code: 4000, reason: "handshake timeout" });
    // The raw server got the dialer's hello as text JSON first.
    const first = srv.peers[0]!.messages[0]!;
    expect(first.isBinary).toBe(false);
    expect(JSON.parse(first.data.toString())).toEqual({
      type: "hello",
      protocol: 1,
      region: "eu-west",
      token: TOKEN,
      features: ["ack", "deflate"],
    });
  });

  it("closes with 4000 on binary garbage before the hello, and keeps serving", async () => {
    const l = await startListener();
    const raw = rawClient(l.port);
    await raw.opened;
    raw.ws.send(randomBytes(4096));
    await waitFor(() => raw.close !== undefined, "close");
    expect(closeOf(raw)).toEqual({
      code: 4000,
      reason: "bad handshake: expected a text hello, got a binary message",
    });
    const d = startDialer(l.port);
    await waitFor(() => d.links.length === 1, "a good dialer still links");
  });

  it("survives non-WebSocket garbage and broken WebSocket framing on the port", async () => {
    const l = await startListener();
    // 1. Not HTTP at all.
    await new Promise<void>((resolve) => {
      const s = connect(l.port, HOST, () => s.write(randomBytes(2048)));
      s.on("error", () => {});
      s.on("close", () => resolve());
      s.on("data", () => {});
    });
    // 2. A valid upgrade, then bytes that are not WebSocket frames (unmasked, bad opcodes...).
    await new Promise<void>((resolve) => {
      const s = connect(l.port, HOST, () =>
        s.write(
          "GET /bridgehead/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        ),
      );
      let upgraded = false;
      s.on("data", (chunk: Buffer) => {
        if (!upgraded && chunk.toString("latin1").startsWith("HTTP/1.1 101")) {
          upgraded = true;
          s.write(Buffer.from([0x8f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
        }
      });
      s.on("error", () => {});
      s.on("close", () => resolve());
    });
    // 3. Wrong path and plain HTTP.
    const wrong = new WebSocket(`ws://${HOST}:${l.port}/elsewhere`);
    cleanups.push(() => wrong.terminate());
    const wrongError = await new Promise<string>((resolve) => wrong.once("error", (e) => resolve(e.message)));
    expect(wrongError).toMatch(/404/);
    const res = await fetch(`http://${HOST}:${l.port}/bridgehead/v1`);
    expect(res.status).toBe(426);
    await res.text();

    const d = startDialer(l.port);
    await waitFor(() => d.links.length === 1, "a good dialer still links");
  });

  it("closes with 4000 on a text message after the handshake; binary frames reach onFrame", async () => {
    const l = await startListener();
    const frames: Buffer[] = [];
    l.listener.onLink((link) => link.onFrame((f) => frames.push(f)));
    const raw = rawClient(l.port);
    await raw.opened;
    raw.ws.send(hello());
    await waitFor(() => raw.messages.length >= 1, "the listener's hello");
    const answer = JSON.parse(raw.messages[0]!.data.toString()) as Record<string, unknown>;
    expect(answer).toMatchObject({ type: "hello", protocol: 1, region: "us-east" });
    raw.ws.send(Buffer.from([1, 2, 3]));
    await waitFor(() => frames.length === 1, "the frame");
    expect(frames[0]).toEqual(Buffer.from([1, 2, 3]));
    raw.ws.send("a text message");
    await waitFor(() => raw.close !== undefined, "close");
    expect(closeOf(raw)).toEqual({ code: 4000, reason: "protocol error: text message after the handshake" });
    expect(l.links[0]?.state).toBe("down");
  });

  it("drops a peer whose message exceeds maxPayload, without harm", async () => {
    const l = await startListener({ maxPayload: 1024 });
    const raw = rawClient(l.port);
    await raw.opened;
    raw.ws.send(hello());
    await waitFor(() => l.links.length === 1, "link");
    raw.ws.send(Buffer.alloc(4096));
    await waitFor(() => raw.close !== undefined, "close");
    expect(closeOf(raw).code).toBe(1009);
    await waitFor(() => l.links[0]?.state === "down", "listener side down");
    expect(l.links[0]?.closeInfo?.by).toBe("transport");
  });

  it("closes a link whose frame handler throws (1011) instead of crashing", async () => {
    const l = await startListener();
    l.listener.onLink((link) =>
      link.onFrame(() => {
        throw new Error("handler bug");
      }),
    );
    const d = startDialer(l.port, { backoff: { initialMs: 1000, maxMs: 1000 } });
    await waitFor(() => d.links.length === 1, "link");
    d.links[0]!.send(Buffer.from([9]));
    await waitFor(() => d.closes.length === 1, "close");
    expect(d.closes[0]).toEqual({ code: 1011, reason: "internal error", by: "peer" });
  });

  it("reconnects with a new Link after losses, with growing backoff delays", async () => {
    const first = await startListener();
    const port = first.port;
    const backoff = new Backoff({ initialMs: 10, maxMs: 80, random: () => 0.99 });
    const next = vi.spyOn(backoff, "next");
    const d = startDialer(port, { backoff });
    d.dialer.onLink((link) => link.markUp());
    await waitFor(() => d.links.length === 1, "first link");
    const link1 = d.links[0]!;
    expect(backoff.attempt).toBe(0);

    // 1. The listener closes the link on purpose: listener side `closed`, dialer side `down`, then a redial.
    first.links[0]!.close(1000, "bye");
    expect(first.links[0]!.state).toBe("closed");
    await waitFor(() => d.links.length === 2, "second link");
    expect(link1.state).toBe("down");
    expect(link1.closeInfo).toEqual({ code: 1000, reason: "bye", by: "peer" });
    expect(d.links[1]).not.toBe(link1);
    expect(d.links[1]!.state).toBe("up");
    expect(backoff.attempt).toBe(0); // reset once the new link was up

    // 2. The whole listener goes away: the dialer keeps trying, with growing delays.
    next.mockClear();
    await first.listener.close();
    expect(first.links[1]!.state).toBe("closed");
    await waitFor(() => d.dialer.attempts >= 5, "several failed attempts");
    expect(d.links[1]!.closeInfo).toEqual({ code: 1001, reason: "listener closing", by: "peer" });
    expect(["down", "connecting"]).toContain(d.dialer.state);
    const delays = next.mock.results.map((r) => r.value as number);
    expect(delays.slice(0, 5)).toEqual([9, 19, 39, 79, 79]);
    expect(d.closes.slice(-3).every((c) => c.code === 1006 && c.by === "transport")).toBe(true);

    // 3. Back on the same port: a third link comes up and the attempt counter resets.
    const second = await startListener({ port });
    await waitFor(() => d.links.length === 3, "third link");
    expect(d.dialer.attempts).toBe(0);
    expect(new Set(d.links).size).toBe(3);
    await waitFor(() => second.links.length === 1, "listener sees it");
    expect(d.dialer.state).toBe("up");

    // Through the whole outage the dialer warned once about the refused connections, not once per attempt.
    const warned = parsed(d.lines).filter((e) => e["msg"] === "link attempt failed" && e["level"] === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({
      code: 1006,
      by: "transport",
      reason: expect.stringMatching(/ECONNREFUSED/),
    });
    expect(parsed(d.lines).filter((e) => e["msg"] === "link attempt failed").length).toBeGreaterThanOrEqual(
      5,
    );
    for (const line of d.lines) expect(line).not.toContain(TOKEN);
  });

  it("stop() closes the link (1000) for good and stops redialing", async () => {
    const l = await startListener();
    const d = startDialer(l.port);
    await waitFor(() => d.links.length === 1 && l.links.length === 1, "link");
    await d.dialer.stop();
    expect(d.dialer.state).toBe("closed");
    expect(d.links[0]!.state).toBe("closed");
    await waitFor(() => l.links[0]!.state === "down", "listener side down");
    expect(l.links[0]!.closeInfo).toEqual({ code: 1000, reason: "dialer stopped", by: "peer" });
    expect(d.links[0]!.send(Buffer.from([1]))).toBe(false);
    expect(d.dialer.attempts).toBe(0);
  });

  it("keeps a link whose peer answers pings up, pinging with 8-byte timestamps", async () => {
    const srv = await rawServer({ answer: hello({ region: "us-east" }) });
    const d = startDialer(srv.port, { heartbeatMs: 10, missedPongs: 5 });
    await waitFor(() => d.links.length === 1, "link");
    await waitFor(() => (srv.peers[0]?.pings.length ?? 0) >= 15, "15 pings answered");
    expect(d.links[0]!.state).toBe("syncing");
    expect(d.closes).toEqual([]);
    for (const p of srv.peers[0]!.pings) expect(p.length).toBe(8);
    expect(d.links[0]!.rttMicros).toBeGreaterThan(0);
  });

  it("closes a dialer's link with 4004 when the peer stops answering pings", async () => {
    const srv = await rawServer({ autoPong: false, answer: hello({ region: "us-east" }) });
    const d = startDialer(srv.port, {
      heartbeatMs: 30,
      missedPongs: 3,
      backoff: { initialMs: 5000, maxMs: 5000 },
    });
    await waitFor(() => d.links.length === 1, "link");
    const started = Date.now();
    await waitFor(() => d.closes.length === 1, "heartbeat timeout", 3000);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(d.closes[0]).toEqual({ code: 4004, reason: "heartbeat timeout", by: "local" });
    expect(d.links[0]!.state).toBe("down");
    await waitFor(() => srv.peers[0]?.close !== undefined, "raw server sees the close");
    expect(closeOf(srv.peers[0]!)).toEqual({ code: 4004, reason: "heartbeat timeout" });
    const down = parsed(d.lines).filter((e) => e["msg"] === "link down");
    expect(down).toMatchObject([
      { code: 4004, reason: "heartbeat timeout", region: "eu-west", peer: "us-east" },
    ]);
  });

  it("closes an accepted link with 4004 when the dialer stops answering pings", async () => {
    const l = await startListener({ heartbeatMs: 30, missedPongs: 2 });
    const raw = rawClient(l.port, { autoPong: false });
    await raw.opened;
    raw.ws.send(hello());
    await waitFor(() => raw.close !== undefined, "close", 3000);
    expect(closeOf(raw)).toEqual({ code: 4004, reason: "heartbeat timeout" });
    expect(l.links[0]?.closeInfo).toEqual({ code: 4004, reason: "heartbeat timeout", by: "local" });
  });

  it("a dialer whose peer vanishes without a close frame goes down and redials", async () => {
    const srv = await rawServer({ answer: hello({ region: "us-east" }) });
    const d = startDialer(srv.port, { backoff: { initialMs: 10, maxMs: 20 } });
    await waitFor(() => d.links.length === 1, "link");
    srv.peers[0]!.ws.terminate();
    await waitFor(() => d.links.length === 2, "relinked");
    expect(d.links[0]!.closeInfo).toMatchObject({ code: 1006 });
  });
});

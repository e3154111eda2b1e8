/**
 * Link batch compression (src/gateway/compression.ts, the `deflate` feature in link.ts): frames round-trip
 * byte-exact, only pay when they shrink, inflation is bounded (a bomb closes the link with a reason), bad
 * compressed data is a typed error and never anything else, and two real links negotiate it.
 */

import { deflateRawSync } from "node:zlib";
import fc from "fast-check";
import { connect } from "nats";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { FrameEncoder } from "../../src/gateway/codec.js";
import {
  CompressionError,
  compressFrame,
  FLAG_DEFLATE,
  inflateFrame,
  isCompressed,
  MIN_COMPRESS_BYTES,
} from "../../src/gateway/compression.js";
import { type Link, LinkDialer, LinkListener, linkUrl } from "../../src/gateway/link.js";
import { startRegion } from "../../src/region/region.js";

const logger = pino({ level: process.env.BH_TEST_LOG ?? "silent" });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
});

/** A frame of `n` MSG ops with JSON-like payloads, as the gateway would send them. */
function jsonFrame(n: number, seed = 0): Buffer {
  const enc = new FrameEncoder({ maxFrameBytes: 1 << 20 });
  for (let i = 0; i < n; i++) {
    const body = JSON.stringify({
      orderId: seed + i,
      customer: `c-${(seed + i) % 97}`,
      status: "created",
      items: [1, 2, 3],
    });
    const payload = Buffer.from(body);
    enc.msg("us-east", seed + i + 1, `orders.eu.${i % 7}`, "", -1, payload, 0, payload.length, [
      { region: "eu-west", queues: [] },
    ]);
  }
  return Buffer.concat(enc.take());
}

describe("compressFrame / inflateFrame", () => {
  it("round-trips frames byte-exact and sets the flag only when the frame shrinks", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.nat(), (n, seed) => {
        const frame = jsonFrame(n, seed);
        const out = compressFrame(frame);
        if (out === frame) {
          expect(isCompressed(out)).toBe(false);
          return;
        }
        expect(out[1]! & FLAG_DEFLATE).toBe(FLAG_DEFLATE);
        expect(out.length).toBeLessThan(frame.length);
        expect(inflateFrame(out, 1 << 20).equals(frame)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("pays on JSON batches: a 200-message frame shrinks to under a third", () => {
    const frame = jsonFrame(200);
    const out = compressFrame(frame);
    expect(out.length * 3).toBeLessThan(frame.length);
  });

  it("leaves small and incompressible frames alone", () => {
    const small = jsonFrame(1);
    expect(small.length).toBeLessThan(MIN_COMPRESS_BYTES);
    expect(compressFrame(small)).toBe(small);
    const random = Buffer.concat([
      Buffer.from([1, 0]),
      Buffer.from(Array.from({ length: 4096 }, () => Math.floor(Math.random() * 256))),
    ]);
    expect(compressFrame(random)).toBe(random);
  });

  it("refuses a bomb before spending the memory: a frame that would inflate past the limit", () => {
    const bomb = Buffer.concat([
      Buffer.from([1, FLAG_DEFLATE]),
      deflateRawSync(Buffer.alloc(64 * 1024 * 1024)),
    ]);
    expect(bomb.length).toBeLessThan(100 * 1024);
    expect(() => inflateFrame(bomb, 1024 * 1024)).toThrow(CompressionError);
    expect(() => inflateFrame(bomb, 1024 * 1024)).toThrow(/inflates past the 1048576-byte frame limit/);
  });

  it("turns any bad compressed data into a CompressionError, nothing else", () => {
    const good = compressFrame(jsonFrame(100));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (bytes, at, b) => {
          const candidates = [
            Buffer.concat([Buffer.from([1, FLAG_DEFLATE]), Buffer.from(bytes)]),
            (() => {
              const m = Buffer.from(good);
              m[2 + (at % (m.length - 2))] = b;
              return m;
            })(),
            good.subarray(0, 2 + (at % (good.length - 2))),
          ];
          for (const c of candidates) {
            try {
              inflateFrame(c, 1 << 20);
            } catch (err) {
              expect(err).toBeInstanceOf(CompressionError);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("links with compression", () => {
  async function pair(mode: "on" | "off"): Promise<{ accepted: Link; dialed: Link }> {
    const listener = new LinkListener({
      region: "us-east",
      token: "t",
      host: "127.0.0.1",
      port: 0,
      isLinked: () => false,
      logger,
      compression: mode,
    });
    cleanups.push(() => listener.close());
    let accepted: Link | undefined;
    listener.onLink((l) => {
      accepted = l;
    });
    const { port } = await listener.listen();
    const dialer = new LinkDialer({
      region: "eu-west",
      token: "t",
      url: linkUrl("127.0.0.1", port),
      logger,
      compression: mode,
    });
    cleanups.push(() => dialer.stop());
    let dialed: Link | undefined;
    dialer.onLink((l) => {
      dialed = l;
    });
    dialer.start();
    const deadline = Date.now() + 5000;
    while (accepted?.state !== "syncing" || dialed?.state !== "syncing") {
      if (Date.now() > deadline) throw new Error("link not established");
      await new Promise((r) => setTimeout(r, 5));
    }
    return { accepted: accepted!, dialed: dialed! };
  }

  it("negotiates `deflate`, sends compressed batches and delivers the frames exactly as sent", async () => {
    const { accepted, dialed } = await pair("on");
    expect(dialed.peerFeatures).toContain("deflate");
    const got: Buffer[] = [];
    accepted.onFrame((f) => got.push(Buffer.from(f)));
    const frames = [jsonFrame(200, 1), jsonFrame(1, 2), jsonFrame(500, 3)];
    for (const f of frames) expect(dialed.send(f)).toBe(true);
    const deadline = Date.now() + 5000;
    while (got.length < frames.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(got.map((f) => f.toString("hex"))).toEqual(frames.map((f) => f.toString("hex")));
    expect(dialed.compression.frames).toBe(2); // the 1-message frame is too small to pay
    expect(dialed.compression.bytesOut * 3).toBeLessThan(dialed.compression.bytesIn);
  });

  it("with compression off sends frames as they are", async () => {
    const { accepted, dialed } = await pair("off");
    const got: Buffer[] = [];
    accepted.onFrame((f) => got.push(Buffer.from(f)));
    dialed.send(jsonFrame(200));
    const deadline = Date.now() + 5000;
    while (got.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(got).toHaveLength(1);
    expect(dialed.compression.frames).toBe(0);
  });

  it("a compressed frame that does not inflate closes the link with 4000 and the reason", async () => {
    const listener = new LinkListener({
      region: "us-east",
      token: "t",
      host: "127.0.0.1",
      port: 0,
      isLinked: () => false,
      logger,
    });
    cleanups.push(() => listener.close());
    const { port } = await listener.listen();
    const ws = new WebSocket(linkUrl("127.0.0.1", port));
    cleanups.push(() => ws.terminate());
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on("error", () => {});
    await new Promise<void>((resolve) => ws.once("open", () => resolve()));
    ws.send(JSON.stringify({ type: "hello", protocol: 1, region: "raw", token: "t", features: ["deflate"] }));
    await new Promise<void>((resolve) => ws.once("message", () => resolve()));
    ws.send(Buffer.from([1, FLAG_DEFLATE, 0xde, 0xad, 0xbe, 0xef]), { binary: true });
    const c = await closed;
    expect(c.code).toBe(4000);
    expect(c.reason).toMatch(/^bad frame: compressed frame does not inflate/);
  });
});

describe("regions linked with compression on", () => {
  it("carry JSON traffic byte-exact and in order while the link sends compressed batches", async () => {
    const start = (name: string) =>
      startRegion({
        name,
        broker: { host: "127.0.0.1", port: 0 },
        gateway: { token: "t", listen: { host: "127.0.0.1", port: 0 }, compression: () => "on" },
        logger,
      });
    const a = await start("a");
    cleanups.push(() => a.close());
    const b = await start("b");
    cleanups.push(() => b.close());
    a.gateway.dial({ url: b.gatewayUrl!, region: "b" });
    const na = await connect({ servers: a.clientUrl });
    cleanups.push(() => na.close());
    const nb = await connect({ servers: b.clientUrl });
    cleanups.push(() => nb.close());
    const got: string[] = [];
    nb.subscribe("orders.>", { callback: (_e, m) => got.push(new TextDecoder().decode(m.data)) });
    await nb.flush();
    const deadline = Date.now() + 10_000;
    while (!a.gateway.remote.sublist.hasInterest("orders.x") && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const sent: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const body = JSON.stringify({
        orderId: i,
        customer: `c-${i % 97}`,
        status: "created",
        items: [1, 2, 3],
      });
      sent.push(body);
      na.publish(`orders.${i % 5}`, body);
    }
    await na.flush();
    while (got.length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual(sent);
    const c = a.gateway.linkView("b")!.compression;
    expect(c.mode).toBe("on");
    expect(c.frames).toBeGreaterThan(0);
    expect(c.bytesOut * 2).toBeLessThan(c.bytesIn);
  });
});

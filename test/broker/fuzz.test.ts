/**
 * Random and mutated protocol bytes thrown at a running broker: it must never crash, must close or answer
 * each bad connection, and must keep serving a healthy client throughout.
 */
import net from "node:net";
import fc from "fast-check";
import { connect, type NatsConnection, StringCodec } from "nats";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../src/broker/index.js";

const sc = StringCodec();

const VALID_OPS = [
  'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n',
  "SUB fuzz.> 1\r\n",
  "SUB fuzz.* q 2\r\n",
  "PUB fuzz.a 5\r\nhello\r\n",
  "PUB fuzz.b _INBOX.x 3\r\nabc\r\n",
  "HPUB fuzz.c 12 17\r\nNATS/1.0\r\n\r\nhello\r\n",
  "UNSUB 1 3\r\n",
  "UNSUB 2\r\n",
  "PING\r\n",
  "PONG\r\n",
];

/** Send bytes on a fresh connection, then wait until the server closes it or a short quiet period ends. */
function throwAt(port: number, chunks: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    const done = () => {
      clearTimeout(t);
      s.destroy();
      resolve();
    };
    // Bounded: a connection the server keeps open (valid input) is dropped by us after 300 ms.
    const t = setTimeout(done, 300);
    s.on("error", done);
    s.on("close", done);
    s.on("data", () => {});
    s.on("connect", () => {
      for (const c of chunks) s.write(c);
    });
  });
}

describe("broker fuzz", () => {
  let broker: RunningBroker;
  let healthy: NatsConnection;
  let probe: NatsConnection;

  beforeAll(async () => {
    broker = await startBroker(
      { host: "127.0.0.1", port: 0, maxPayload: 4096, maxControlLine: 256 },
      pino({ level: "silent" }),
    );
    healthy = await connect({ servers: broker.url });
    probe = await connect({ servers: broker.url });
  });

  afterAll(async () => {
    await healthy?.close();
    await probe?.close();
    await broker?.close();
  });

  async function stillServing(): Promise<void> {
    const sub = healthy.subscribe("health.check", { max: 1 });
    await healthy.flush();
    probe.publish("health.check", sc.encode("ok"));
    for await (const m of sub) expect(sc.decode(m.data)).toBe("ok");
  }

  it("survives random bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async (bytes) => {
        await throwAt(broker.port, [Buffer.from(bytes)]);
      }),
      { numRuns: 60 },
    );
    await stillServing();
  });

  it("survives mutated valid streams split at random points", async () => {
    const stream = fc
      .array(fc.constantFrom(...VALID_OPS), { minLength: 1, maxLength: 12 })
      .map((ops) => Buffer.from(ops.join("")));
    const mutation = fc.record({
      at: fc.nat(),
      kind: fc.constantFrom("flip", "delete", "insert", "truncate", "duplicate"),
      byte: fc.integer({ min: 0, max: 255 }),
    });
    await fc.assert(
      fc.asyncProperty(
        stream,
        fc.array(mutation, { maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        async (base, muts, cuts) => {
          let buf = base;
          for (const m of muts) {
            const at = buf.length === 0 ? 0 : m.at % buf.length;
            if (m.kind === "flip")
              buf = Buffer.concat([buf.subarray(0, at), Buffer.from([m.byte]), buf.subarray(at + 1)]);
            else if (m.kind === "delete") buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)]);
            else if (m.kind === "insert")
              buf = Buffer.concat([buf.subarray(0, at), Buffer.from([m.byte]), buf.subarray(at)]);
            else if (m.kind === "truncate") buf = buf.subarray(0, at);
            else buf = Buffer.concat([buf, buf.subarray(at)]);
          }
          const points = [...new Set(cuts.map((c) => (buf.length ? c % buf.length : 0)))].sort(
            (a, b) => a - b,
          );
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const p of points) {
            if (p > prev) chunks.push(buf.subarray(prev, p));
            prev = Math.max(prev, p);
          }
          chunks.push(buf.subarray(prev));
          await throwAt(broker.port, chunks);
        },
      ),
      { numRuns: 80 },
    );
    await stillServing();
  });

  it("survives oversized sizes, huge lines and abrupt resets", async () => {
    await throwAt(broker.port, [Buffer.from("PUB x 999999999\r\n")]);
    await throwAt(broker.port, [Buffer.from(`SUB ${"a".repeat(10_000)}`)]);
    await throwAt(broker.port, [Buffer.from("PUB x 100\r\nonly-part")]);
    await throwAt(broker.port, [Buffer.from("CONNECT {not json}\r\n")]);
    await throwAt(broker.port, [Buffer.from('CONNECT {"verbose":"yes"}\r\n')]);
    await throwAt(broker.port, [Buffer.from("CONNECT [1,2]\r\n")]);
    expect(broker.server.clients.size).toBeLessThanOrEqual(2);
    await stillServing();
  });
});

/**
 * Fake NATS servers that measure the load generator itself (the "load generator ceiling" rows):
 *
 * - `sink`: accepts the publisher, sends INFO, answers the PING that ends a handshake or a flush with PONG
 *   (it only looks at the last 6 bytes of each chunk) and otherwise reads and drops everything. The
 *   publisher's rate into it is the most the publisher can offer any server.
 * - `firehose`: accepts the subscriber, answers its handshake PING, then on `go` writes `count` MSG frames
 *   from one pre-built Buffer as fast as the socket takes them, with one PING injected half way through
 *   (checking that the subscriber's byte counting survives it and that it answers PONG). The subscriber's
 *   rate from it is the most the subscriber can count.
 */
import { createServer, type Socket } from "node:net";
import { makePayload, repeatOp } from "../protocol.js";
import { nextControl, runWorker, send, type WorkerConfigBase } from "./common.js";

export interface FakeServerConfig extends WorkerConfigBase {
  readonly mode: "sink" | "firehose";
  /** firehose: subject and payload size of the MSG frames. */
  readonly subject?: string;
  readonly payloadSize?: number;
}

export interface FirehoseResult {
  readonly sent: number;
  readonly elapsedNs: number;
  readonly pongAfterInjectedPing: boolean;
}

const INFO = `INFO {"server_id":"bench-fake","server_name":"bench-fake","version":"0.0.0","proto":1,"host":"127.0.0.1","max_payload":1048576,"headers":false}\r\n`;
const PING_TAIL = Buffer.from("PING\r\n");
const PONG_TAIL = Buffer.from("PONG\r\n");

/** Calls `onTail` when a chunk (together with the previous chunk's tail) ends with `tail`. */
function tailWatcher(tail: Buffer, onTail: () => void): (d: Buffer) => void {
  let prev = Buffer.alloc(0);
  return (d) => {
    const end = d.length >= tail.length ? d.subarray(d.length - tail.length) : Buffer.concat([prev, d]);
    if (end.length >= tail.length && end.subarray(end.length - tail.length).equals(tail)) onTail();
    prev = Buffer.from(end.subarray(Math.max(0, end.length - tail.length)));
  };
}

runWorker<FakeServerConfig>("fake-server", async (cfg) => {
  let client: Socket | undefined;
  let bytesIn = 0;
  let pongs = 0;
  let clientPingsAnswered = 0;
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    client = sock;
    sock.write(INFO);
    const onPing = tailWatcher(PING_TAIL, () => {
      clientPingsAnswered++;
      sock.write("PONG\r\n");
    });
    const onPong = tailWatcher(PONG_TAIL, () => {
      pongs++;
    });
    sock.on("data", (d: Buffer) => {
      bytesIn += d.length;
      onPing(d);
      if (cfg.mode === "firehose") onPong(d);
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("no listening address");
  const stop = nextControl("stop");
  await send({ type: "ready", port: addr.port });

  if (cfg.mode === "firehose") {
    const go = await Promise.race([nextControl("go"), stop]);
    if (go.type === "go") {
      const sock = client;
      if (!sock) throw new Error("firehose: no subscriber connected");
      const count = go.count ?? 0;
      const payload = makePayload(cfg.payloadSize ?? 16);
      const frame = Buffer.concat([
        Buffer.from(`MSG ${cfg.subject ?? "bench.x"} 1 ${payload.length}\r\n`),
        payload,
        Buffer.from("\r\n"),
      ]);
      const { batch, opLen, ops } = repeatOp(frame);
      const start = process.hrtime.bigint();
      let sent = 0;
      let injected = false;
      const pongsBefore = pongs;
      while (sent < count) {
        // Half way, or at the latest before the last batch.
        if (!injected && (sent >= count / 2 || sent + ops >= count)) {
          sock.write("PING\r\n");
          injected = true;
        }
        const k = Math.min(ops, count - sent);
        const ok = sock.write(k === ops ? batch : batch.subarray(0, k * opLen));
        sent += k;
        if (!ok) await new Promise((r) => sock.once("drain", r));
      }
      await new Promise<void>((r) => sock.write(Buffer.alloc(0), () => r()));
      const elapsedNs = Number(process.hrtime.bigint() - start);
      // The subscriber answers the injected PING once it has read past it.
      const deadline = Date.now() + 5000;
      while (injected && pongs === pongsBefore && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 5));
      const result: FirehoseResult = {
        sent,
        elapsedNs,
        pongAfterInjectedPing: !injected || pongs > pongsBefore,
      };
      await send({ type: "result", data: { ...result } });
    }
  }
  await stop;
  await send({ type: "result", data: { bytesIn, clientPingsAnswered } });
  client?.destroy();
  server.close();
});

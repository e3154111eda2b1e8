/**
 * Request/reply requester: `SUB <inbox> 1` once, then one request at a time — `PUB <subject> <inbox> <n>`
 * with a sequence number in the payload — timing each round trip with `process.hrtime.bigint()` until the
 * matching reply arrives. The first `warmup` round trips are not recorded.
 */
import { makePayload, NatsConn, pubOp } from "../protocol.js";
import { nextControl, runWorker, send, type WorkerConfigBase } from "./common.js";

export interface RequesterConfig extends WorkerConfigBase {
  readonly host: string;
  readonly port: number;
  readonly subject: string;
  readonly inbox: string;
  readonly payloadSize: number;
  readonly warmup: number;
  readonly count: number;
  readonly timeLimitMs: number;
  /** A single request unanswered for this long fails the run. */
  readonly replyTimeoutMs: number;
}

export interface RequesterResult {
  /** Round-trip times in microseconds, in the order measured. */
  readonly samplesUs: number[];
  readonly timeLimited: boolean;
  readonly elapsedMs: number;
}

runWorker<RequesterConfig>("requester", async (cfg) => {
  const conn = await NatsConn.open(cfg.host, cfg.port, `SUB ${cfg.inbox} 1\r\n`);
  const size = Math.max(cfg.payloadSize, 12);
  const base = makePayload(size);
  await send({ type: "ready" });
  await nextControl("go");

  const total = cfg.warmup + cfg.count;
  const samples = new Float64Array(cfg.count);
  const start = process.hrtime.bigint();
  const limitNs = BigInt(cfg.timeLimitMs) * 1_000_000n;
  let seq = 0;
  let t0 = 0n;
  let timeLimited = false;
  let expected = "";

  const done = new Promise<void>((resolve, reject) => {
    let watchdog: NodeJS.Timeout | undefined;
    const sendNext = () => {
      const payload = Buffer.from(base);
      expected = String(seq).padStart(12, "0");
      payload.write(expected, 0, "latin1");
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(
        () => reject(new Error(`no reply to request ${seq} within ${cfg.replyTimeoutMs} ms`)),
        cfg.replyTimeoutMs,
      );
      t0 = process.hrtime.bigint();
      conn.socket.write(pubOp(cfg.subject, payload, cfg.inbox));
    };
    conn.onMsg = (_subject, _sid, _reply, payload) => {
      const t1 = process.hrtime.bigint();
      if (payload.toString("latin1", 0, 12) !== expected) {
        if (watchdog) clearTimeout(watchdog);
        reject(
          new Error(`reply out of order: got ${payload.toString("latin1", 0, 12)}, expected ${expected}`),
        );
        return;
      }
      if (seq >= cfg.warmup) samples[seq - cfg.warmup] = Number(t1 - t0) / 1000;
      seq++;
      if (seq >= total || t1 - start > limitNs) {
        timeLimited = seq < total;
        if (watchdog) clearTimeout(watchdog);
        resolve();
        return;
      }
      sendNext();
    };
    conn.socket.once("close", () => {
      if (watchdog) clearTimeout(watchdog);
      reject(conn.closed ?? new Error("connection closed"));
    });
    sendNext();
  });
  await done;
  const measured = Math.max(0, seq - cfg.warmup);
  const result: RequesterResult = {
    samplesUs: Array.from(samples.subarray(0, measured)),
    timeLimited,
    elapsedMs: Number(process.hrtime.bigint() - start) / 1e6,
  };
  await send({ type: "result", data: { ...result } });
  conn.close();
});

/**
 * Throughput publisher: connects (raw protocol), reports `ready`, and on `go` writes one pre-built ~1 MiB
 * Buffer of identical `PUB` ops (or, with `payloadKind: "json"`, of distinct JSON documents) over and over (respecting backpressure) until `count` messages are sent
 * or the time limit passes; then PING/PONG so the server has processed every PUB, and reports.
 */
import {
  cpuMsSince,
  distinctPubBatch,
  jsonPayloads,
  makePayload,
  NatsConn,
  pubOp,
  repeatOp,
} from "../protocol.js";
import { nextControl, runWorker, send, type WorkerConfigBase } from "./common.js";

export interface PublisherConfig extends WorkerConfigBase {
  readonly host: string;
  readonly port: number;
  readonly subject: string;
  readonly payloadSize: number;
  readonly count: number;
  readonly timeLimitMs: number;
  /** `json`: distinct JSON documents of `payloadSize` bytes (jsonPayloads) instead of identical bytes. */
  readonly payloadKind?: "fixed" | "json";
}

export interface PublisherResult {
  readonly published: number;
  readonly elapsedNs: number;
  /** From the first write to the PONG after the last PUB. */
  readonly publishRate: number;
  readonly timeLimited: boolean;
  readonly cpuMs: number;
  readonly writes: number;
  readonly drainWaits: number;
}

runWorker<PublisherConfig>("publisher", async (cfg) => {
  const conn = await NatsConn.open(cfg.host, cfg.port);
  const {
    batch,
    opLen,
    ops: perBatch,
  } = cfg.payloadKind === "json"
    ? distinctPubBatch(
        cfg.subject,
        jsonPayloads(cfg.payloadSize, Math.max(1, Math.floor((1 << 20) / cfg.payloadSize))),
      )
    : repeatOp(pubOp(cfg.subject, makePayload(cfg.payloadSize)));
  await send({ type: "ready" });
  await nextControl("go");

  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const limitNs = BigInt(cfg.timeLimitMs) * 1_000_000n;
  let sent = 0;
  let writes = 0;
  let drainWaits = 0;
  let timeLimited = false;
  while (sent < cfg.count) {
    if (process.hrtime.bigint() - start > limitNs) {
      timeLimited = true;
      break;
    }
    const k = Math.min(perBatch, cfg.count - sent);
    const ok = conn.socket.write(k === perBatch ? batch : batch.subarray(0, k * opLen));
    sent += k;
    writes++;
    if (!ok) {
      drainWaits++;
      await conn.drained();
    }
  }
  await conn.flush();
  const elapsedNs = Number(process.hrtime.bigint() - start);
  const result: PublisherResult = {
    published: sent,
    elapsedNs,
    publishRate: sent / (elapsedNs / 1e9),
    timeLimited,
    cpuMs: cpuMsSince(cpu0),
    writes,
    drainWaits,
  };
  if (conn.lastError) throw new Error(`server sent -ERR ${conn.lastError}`);
  await send({ type: "result", data: { ...result } });
  conn.close();
});

/**
 * Throughput subscriber: `CONNECT`, `SUB <subject> 1`, PING; reports `ready` after the PONG (the server has
 * registered the interest). Then counts delivered MSG frames with {@link MsgCounter} and timestamps the
 * first and the last chunk that completed messages. It finishes when the count the orchestrator announces
 * (`expect`, = what the publisher got acknowledged) has arrived, or when nothing arrived for `idleMs`
 * after that announcement (loss), or when the server closes the connection (e.g. slow consumer).
 *
 * With `probe` (cross-region cases) it also subscribes to the probe subject (sid 2) and, before `ready`,
 * publishes probes from a connection to the other region until one arrives here: then the interest has
 * crossed the gateway. It unsubscribes the probe (UNSUB + PING/PONG, so no probe can follow) and forgets
 * the probe messages it counted before reporting `ready`.
 */
import { connect } from "node:net";
import { MsgCounter } from "../msg-counter.js";
import { cpuMsSince, type ProbeConfig, type ProbeStats, probeUntilDelivered } from "../protocol.js";
import { nextControl, runWorker, send, type WorkerConfigBase } from "./common.js";

export interface SubscriberConfig extends WorkerConfigBase {
  readonly host: string;
  readonly port: number;
  readonly subject: string;
  /** Stop waiting this long after `expect` if no message arrived in the meantime. */
  readonly idleMs: number;
  /** Stop waiting this long after `expect` even if messages are still arriving. */
  readonly drainLimitMs: number;
  /** Wait until a message published on another server reaches this subscription before `ready`. */
  readonly probe?: ProbeConfig;
  /** Payloads differ per message (JSON documents): compare only MSG headers. */
  readonly varyingPayloads?: boolean;
}

export interface SubscriberResult {
  readonly received: number;
  /** Messages completed by chunks after the first one, over the time from the first chunk to the last. */
  readonly deliveredRate: number;
  readonly firstToLastNs: number;
  readonly frameLen: number;
  /** Frames compared byte for byte with the first one (one per chunk). */
  readonly framesCompared: number;
  readonly chunks: number;
  readonly pingsAnswered: number;
  /** CPU used and wall time from the first delivered chunk to the end. */
  readonly cpuMs: number;
  readonly wallMs: number;
  /** Why it stopped early, if it did. */
  readonly problem?: string;
}

runWorker<SubscriberConfig>("subscriber", async (cfg) => {
  const socket = connect({ host: cfg.host, port: cfg.port, noDelay: true });
  let onInfo: () => void = () => {};
  let onPong: () => void = () => {};
  let lastErr: string | undefined;
  let pingsAnswered = 0;
  const counter = new MsgCounter(
    {
      onPing: () => {
        pingsAnswered++;
        socket.write("PONG\r\n");
      },
      onPong: () => onPong(),
      onInfo: () => onInfo(),
      onErr: (m) => {
        lastErr = m;
      },
    },
    cfg.varyingPayloads === true,
  );

  let first = 0n;
  let cpu0 = process.cpuUsage();
  let wall0 = process.hrtime.bigint();
  let firstCount = 0;
  let last = 0n;
  let chunks = 0;
  let problem: string | undefined;
  let wake: () => void = () => {};
  let onCount: () => void = () => {};
  let target = Number.POSITIVE_INFINITY;
  socket.on("data", (d: Buffer) => {
    chunks++;
    const before = counter.count;
    try {
      counter.push(d);
    } catch (e) {
      problem = `protocol error: ${e instanceof Error ? e.message : String(e)}`;
      socket.destroy();
      wake();
      return;
    }
    if (counter.count !== before) {
      last = process.hrtime.bigint();
      if (first === 0n) {
        first = last;
        firstCount = counter.count;
        cpu0 = process.cpuUsage();
        wall0 = last;
      }
      if (counter.count >= target) wake();
      onCount();
    }
  });
  let closed = false;
  socket.on("error", (e) => {
    problem ??= `socket error: ${e.message}`;
  });
  socket.on("close", () => {
    closed = true;
    problem ??= `connection closed by server${lastErr ? `: -ERR ${lastErr}` : ""}`;
    onInfo();
    onPong();
    wake();
  });

  await new Promise<void>((resolve) => {
    onInfo = resolve;
  });
  if (closed) throw new Error(problem);
  await new Promise<void>((resolve) => {
    onPong = resolve;
    socket.write(
      `CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nSUB ${cfg.subject} 1\r\n${
        cfg.probe ? `SUB ${cfg.probe.subject} 2\r\n` : ""
      }PING\r\n`,
    );
  });
  if (closed) throw new Error(problem);
  onPong = () => {};
  let probe: ProbeStats | undefined;
  if (cfg.probe) {
    // Nothing is published on the measured subject yet, so whatever the counter sees now is a probe.
    const arrived = new Promise<void>((resolve) => {
      onCount = resolve;
    });
    probe = await probeUntilDelivered(cfg.probe, arrived);
    onCount = () => {};
    await new Promise<void>((resolve) => {
      onPong = resolve;
      socket.write("UNSUB 2\r\nPING\r\n");
    });
    if (closed) throw new Error(problem);
    onPong = () => {};
    // Between reads (this runs after the data handler returned): start counting from scratch.
    counter.reset();
    first = 0n;
    last = 0n;
    firstCount = 0;
    chunks = 0;
  }
  await send({ type: "ready", ...(probe ? { probe } : {}) });

  const { count } = await nextControl("expect");
  target = count;
  // Wait for the rest, or for the stream to go idle (messages lost), or for the connection to end.
  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    wake = () => {
      if (timer) clearInterval(timer);
      resolve();
    };
    if (counter.count >= target || closed) return wake();
    let seen = counter.count;
    let idleSince = Date.now();
    const expectedAt = idleSince;
    timer = setInterval(() => {
      if (Date.now() - expectedAt > cfg.drainLimitMs) {
        problem ??= `still ${target - counter.count} messages short ${cfg.drainLimitMs} ms after the publisher finished`;
        wake();
      } else if (counter.count !== seen) {
        seen = counter.count;
        idleSince = Date.now();
      } else if (Date.now() - idleSince > cfg.idleMs) {
        problem ??= `stream idle for ${cfg.idleMs} ms with ${target - counter.count} messages missing`;
        wake();
      }
    }, 50);
  });
  const firstToLastNs = Number(last - first);
  const result: SubscriberResult = {
    received: counter.count,
    deliveredRate: firstToLastNs > 0 ? (counter.count - firstCount) / (firstToLastNs / 1e9) : 0,
    firstToLastNs,
    frameLen: counter.frameLen,
    framesCompared: counter.framesCompared,
    chunks,
    pingsAnswered,
    cpuMs: cpuMsSince(cpu0),
    wallMs: Number(process.hrtime.bigint() - wall0) / 1e6,
    ...(problem && counter.count < target ? { problem } : {}),
  };
  await send({ type: "result", data: { ...result } });
  socket.destroy();
});

/**
 * Request/reply responder: `SUB <subject> 1`, and for every request `MSG <subject> 1 <reply> <n>` publishes
 * the payload back to `<reply>`. Runs until `stop` (or its hard timeout).
 *
 * With `probe` (cross-region cases) it also subscribes to the probe subject (sid 2) and, before `ready`,
 * publishes probes from a connection to the other region until one arrives here (the interest has crossed
 * the gateway), then unsubscribes it.
 */
import { NatsConn, type ProbeConfig, type ProbeStats, probeUntilDelivered, pubOp } from "../protocol.js";
import { nextControl, runWorker, send, type WorkerConfigBase } from "./common.js";

export interface ResponderConfig extends WorkerConfigBase {
  readonly host: string;
  readonly port: number;
  readonly subject: string;
  /** Wait until a request published on another server reaches this subscription before `ready`. */
  readonly probe?: ProbeConfig;
}

runWorker<ResponderConfig>("responder", async (cfg) => {
  const conn = await NatsConn.open(
    cfg.host,
    cfg.port,
    `SUB ${cfg.subject} 1\r\n${cfg.probe ? `SUB ${cfg.probe.subject} 2\r\n` : ""}`,
  );
  let replied = 0;
  let noReply = 0;
  let onProbe: () => void = () => {};
  conn.onMsg = (_subject, sid, reply, payload) => {
    if (sid === "2") {
      onProbe();
      return;
    }
    if (!reply) {
      noReply++;
      return;
    }
    conn.socket.write(pubOp(reply, payload));
    replied++;
  };
  const stop = nextControl("stop");
  let probe: ProbeStats | undefined;
  if (cfg.probe) {
    probe = await probeUntilDelivered(
      cfg.probe,
      new Promise<void>((resolve) => {
        onProbe = resolve;
      }),
    );
    conn.socket.write("UNSUB 2\r\n");
    await conn.flush();
  }
  await send({ type: "ready", ...(probe ? { probe } : {}) });
  await Promise.race([
    stop,
    new Promise<void>((_, reject) => conn.socket.once("close", () => reject(conn.closed))),
  ]);
  await send({ type: "result", data: { replied, noReply } });
  conn.close();
});

/**
 * Shared scaffolding of a benchmark worker (a process forked by bench/main with an IPC channel).
 * The config arrives as JSON in argv[2]. A worker always ends on its own: a hard timeout from the config,
 * the IPC channel closing (orchestrator gone), or its result having been sent.
 */
import type { ControlMessage, WorkerMessage } from "../protocol.js";

export interface WorkerConfigBase {
  /** The worker exits with code 3 after this long, whatever it is doing. */
  readonly hardTimeoutMs: number;
}

export function send(msg: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

/** Resolves with the next control message of `type` from the orchestrator. */
export function nextControl<T extends ControlMessage["type"]>(
  type: T,
): Promise<Extract<ControlMessage, { type: T }>> {
  return new Promise((resolve) => {
    const onMsg = (m: ControlMessage) => {
      if (m.type !== type) return;
      process.off("message", onMsg);
      resolve(m as Extract<ControlMessage, { type: T }>);
    };
    process.on("message", onMsg);
  });
}

export function runWorker<C extends WorkerConfigBase>(name: string, body: (cfg: C) => Promise<void>): void {
  const cfg = JSON.parse(process.argv[2] ?? "{}") as C;
  const hard = setTimeout(() => {
    process.stderr.write(`bench worker ${name}: hard timeout after ${cfg.hardTimeoutMs} ms, exiting\n`);
    process.exit(3);
  }, cfg.hardTimeoutMs || 60_000);
  hard.unref();
  // The orchestrator went away (crashed or killed): nothing left to report to.
  process.on("disconnect", () => process.exit(4));
  body(cfg).then(
    () => process.exit(0),
    async (e: unknown) => {
      await send({ type: "error", message: e instanceof Error ? e.message : String(e) });
      process.exit(1);
    },
  );
}

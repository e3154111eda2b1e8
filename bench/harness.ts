/**
 * Process management for the benchmark: forks workers (compiled `dist/bench/workers/*.js`), starts servers
 * through the test harness, and guarantees that every child and server is killed — at the end of each
 * case run, on error, on timeout, and when the orchestrator itself exits or is interrupted.
 */
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type RunningServer, type ServerKind, startServer } from "../test/helpers/servers.js";
import type { ControlMessage, WorkerMessage } from "./protocol.js";

export type WorkerName = "publisher" | "subscriber" | "responder" | "requester" | "fake-server" | "region";

export interface ForkOptions {
  /** Node flags for the worker (e.g. `--cpu-prof`). */
  readonly execArgv?: readonly string[];
  /** How long `close()` waits for the worker to exit on its own after `stop` (default 2000 ms). */
  readonly stopGraceMs?: number;
}

/** Every live child process (workers and servers), for the last-resort kill on exit. */
const live = new Set<ChildProcess>();
let exitHooksInstalled = false;

function killAllNow(): void {
  for (const c of live) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  live.clear();
}

/** Kill every child and server when the process exits for any reason (including Ctrl-C). */
export function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on("exit", killAllNow);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, killing ${live.size} child process(es)\n`);
      killAllNow();
      process.exit(130);
    });
  }
}

export class WorkerHandle {
  private readonly queue: WorkerMessage[] = [];
  private waiter: (() => void) | undefined;
  private exitInfo: string | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly name: WorkerName,
    readonly child: ChildProcess,
    readonly stopGraceMs = 2000,
  ) {
    // IPC write errors (EPIPE from a worker that is exiting) must not crash the orchestrator.
    child.on("error", () => {});
    child.on("message", (m: WorkerMessage) => {
      this.queue.push(m);
      this.waiter?.();
    });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        live.delete(child);
        this.exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
        this.waiter?.();
        resolve();
      });
    });
  }

  /** Best effort: a worker that already exited (or is exiting) just does not get it. */
  send(msg: ControlMessage): void {
    if (this.exitInfo || !this.child.connected) return;
    this.child.send(msg, (err) => {
      if (err) this.sendErrors++;
    });
  }

  sendErrors = 0;

  /** The next message of `type` (earlier messages of other types are skipped); rejects on `error`. */
  async waitFor<T extends WorkerMessage["type"]>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<WorkerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.queue.shift();
      if (m) {
        if (m.type === "error") throw new Error(`${this.name}: ${m.message}`);
        if (m.type === type) return m as Extract<WorkerMessage, { type: T }>;
        continue;
      }
      if (this.exitInfo) throw new Error(`${this.name} ${this.exitInfo} before sending '${type}'`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no '${type}' within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }

  /** Wait up to `graceMs` for the worker to exit on its own, then SIGKILL it. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const t = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/**
 * Everything one case run starts. `close()` stops all of it; the orchestrator calls it in `finally`,
 * also when the run timed out.
 */
export class RunScope {
  private readonly workers: WorkerHandle[] = [];
  private readonly servers: RunningServer[] = [];

  /** Fork `dist/bench/workers/<name>.js` with `config` (JSON in argv[2]). */
  fork(name: WorkerName, config: object, options: ForkOptions = {}): WorkerHandle {
    const path = fileURLToPath(new URL(`./workers/${name}.js`, import.meta.url));
    const child = fork(path, [JSON.stringify(config)], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      ...(options.execArgv ? { execArgv: [...process.execArgv, ...options.execArgv] } : {}),
    });
    live.add(child);
    const h = new WorkerHandle(name, child, options.stopGraceMs);
    this.workers.push(h);
    return h;
  }

  async startServer(kind: ServerKind, config: string): Promise<RunningServer> {
    const s = await startServer(kind, config);
    live.add(s.process);
    s.process.once("exit", () => live.delete(s.process));
    this.servers.push(s);
    return s;
  }

  private readonly deferred: (() => Promise<unknown>)[] = [];

  /** Run `fn` when the scope closes (after workers and servers): e.g. an in-process fault proxy. */
  defer(fn: () => Promise<unknown>): void {
    this.deferred.push(fn);
  }

  async close(): Promise<void> {
    for (const w of this.workers) w.send({ type: "stop" });
    await Promise.all(this.workers.map((w) => w.stop(w.stopGraceMs)));
    await Promise.all(this.servers.map((s) => s.stop().catch(() => s.process.kill("SIGKILL"))));
    for (const fn of this.deferred.splice(0).reverse()) await fn().catch(() => {});
  }
}

/** CPU time (user+system) in ms a process has used so far, from /proc (Linux); undefined elsewhere. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(rest[11]) + Number(rest[12]);
    return Number.isFinite(ticks) ? ticks * 10 : undefined; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

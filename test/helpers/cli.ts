/**
 * Running the `bridgehead` command in tests: spawn it (output captured, every process tracked so
 * {@link killAllCli} stops what a test left running), run it to completion with a deadline, and poll for a
 * condition while failing early if the process exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { BRIDGEHEAD_BIN } from "./servers.js";

export interface CliProcess {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  /** Variables set (a string) or removed (undefined) on top of this process's environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
}

const running = new Set<CliProcess>();

export function spawnBridgehead(args: readonly string[], options: SpawnOptions = {}): CliProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const child = spawn(process.execPath, [BRIDGEHEAD_BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  const out = { stdout: "", stderr: "" };
  child.stdout?.on("data", (d: Buffer) => {
    out.stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out.stderr += d.toString();
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  const proc = { child, out, closed };
  running.add(proc);
  void closed.then(() => running.delete(proc));
  return proc;
}

/** SIGKILL every bridgehead process still running and wait until they are gone (afterEach). */
export async function killAllCli(): Promise<void> {
  const procs = [...running];
  for (const p of procs)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.closed));
}

export async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run to completion within `timeoutMs`. */
export async function runBridgehead(args: readonly string[], timeoutMs: number, options: SpawnOptions = {}) {
  const p = spawnBridgehead(args, options);
  const { code, signal } = await withDeadline(p.closed, timeoutMs, `bridgehead ${args.join(" ")}`);
  return { code, signal, stdout: p.out.stdout, stderr: p.out.stderr };
}

/** Poll `fn` until it returns something other than undefined; fail early if `proc` exits. */
export async function waitForValue<T>(
  fn: () => T | undefined,
  what: string,
  options: { readonly proc?: CliProcess | undefined; readonly timeoutMs?: number | undefined } = {},
): Promise<T> {
  const { proc } = options;
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (proc !== undefined && proc.child.exitCode !== null) {
      throw new Error(
        `process exited (${proc.child.exitCode}) while waiting for ${what}: ${proc.out.stderr}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${proc ? `\nstdout: ${proc.out.stdout}\nstderr: ${proc.out.stderr}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

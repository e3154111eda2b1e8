/**
 * Starts a NATS server process for interop tests and benchmarks: Debian's `nats-server`, or Bridgehead's
 * drop-in `bridgehead broker`. Both get the same nats-server config file; ports are picked by the server
 * itself (`listen: 127.0.0.1:-1`) and read back from the ports file it writes, so no two runs collide.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export type ServerKind = "nats-server" | "bridgehead";

/** The repository root, found from this file whether it runs from test/ or dist/test/. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = resolve(dir, "..");
  return dir;
}

export const BRIDGEHEAD_BIN = join(repoRoot(), "bin", "bridgehead.js");

export interface RunningServer {
  readonly kind: ServerKind;
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

let cachedAvailable: boolean | undefined;

/** True when a `nats-server` binary is on PATH. */
export function natsServerAvailable(): boolean {
  if (cachedAvailable === undefined) {
    try {
      execFileSync("nats-server", ["--version"], { stdio: "ignore" });
      cachedAvailable = true;
    } catch {
      cachedAvailable = false;
    }
  }
  return cachedAvailable;
}

/**
 * Start nats-server with `extraConfig` appended to a config that listens on 127.0.0.1 with a free port.
 * Resolves once the server has written its ports file (it is then accepting connections).
 */
export async function startServer(
  kind: ServerKind,
  extraConfig = "",
  timeoutMs = 10_000,
): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), "bh-nats-"));
  const conf = join(dir, "server.conf");
  writeFileSync(conf, `listen: 127.0.0.1:-1\nports_file_dir: "${dir}"\n${extraConfig}\n`);
  const child =
    kind === "nats-server"
      ? spawn("nats-server", ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] })
      : spawn(process.execPath, [BRIDGEHEAD_BIN, "broker", "-c", conf], {
          stdio: ["ignore", "ignore", "pipe"],
        });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const portsFile = join(dir, `nats-server_${child.pid}.ports`);
  const deadline = Date.now() + timeoutMs;
  let port = 0;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${kind} exited early: ${stderr}`);
    if (existsSync(portsFile)) {
      try {
        const ports = JSON.parse(readFileSync(portsFile, "utf8")) as { nats: string[] };
        const first = ports.nats[0];
        if (first) {
          port = Number(new URL(first).port);
          break;
        }
      } catch {
        // file written but not complete yet: retry
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!port) {
    child.kill("SIGKILL");
    throw new Error(`${kind} did not start within ${timeoutMs} ms: ${stderr}`);
  }
  return {
    kind,
    host: "127.0.0.1",
    port,
    url: `nats://127.0.0.1:${port}`,
    process: child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Convenience for `startServer("nats-server", ...)`. */
export function startNatsServer(extraConfig = "", timeoutMs = 10_000): Promise<RunningServer> {
  return startServer("nats-server", extraConfig, timeoutMs);
}

/** The server kinds a comparison test should run against: bridgehead always, nats-server when installed. */
export function availableServerKinds(): ServerKind[] {
  return natsServerAvailable() ? ["nats-server", "bridgehead"] : ["bridgehead"];
}

const KNOWN_KINDS: readonly ServerKind[] = ["nats-server", "bridgehead"];

/**
 * The server kinds the comparison suites run against: `available` (by default `availableServerKinds()`), unless
 * `BH_KINDS` (comma-separated, e.g. `BH_KINDS=nats-server` to validate against nats-server alone) says otherwise.
 */
export function selectedKinds(available: readonly ServerKind[] = availableServerKinds()): ServerKind[] {
  const env = process.env.BH_KINDS?.trim();
  if (!env) return [...available];
  const wanted = env
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const w of wanted) {
    if (!KNOWN_KINDS.includes(w as ServerKind)) throw new Error(`BH_KINDS: unknown server kind "${w}"`);
  }
  return wanted as ServerKind[];
}

/**
 * `bridgehead toxiproxy` as a child process (`node bin/bridgehead.js`, so `npm run build` first): it prints
 * its URL, serves the API (driven here with toxiproxy-node-client and raw HTTP), and stops cleanly on SIGTERM
 * and SIGINT, closing its proxies. Children are killed in afterEach; waits poll with a deadline.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Toxiproxy } from "toxiproxy-node-client";
import { afterEach, describe, expect, it } from "vitest";
import { BRIDGEHEAD_BIN } from "../helpers/servers.js";
import { connectTo, portOf, roundTrip, startEcho, startTcp, stopAll, waitFor } from "./proxy-kit.js";

interface Cli {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

const children = new Set<Cli>();
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children) if (c.exit === undefined) c.child.kill("SIGKILL");
  await Promise.all([...children].map((c) => c.exited));
  children.clear();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  await stopAll();
});

function spawnCli(args: readonly string[]): Cli {
  const child = spawn(process.execPath, [BRIDGEHEAD_BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, BRIDGEHEAD_LOG_LEVEL: "info", BRIDGEHEAD_LOG_FORMAT: "json" },
  });
  const out = { stdout: "", stderr: "" };
  child.stdout?.on("data", (d: Buffer) => {
    out.stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out.stderr += d.toString();
  });
  const cli: Cli = {
    child,
    out,
    exit: undefined,
    exited: new Promise((resolve) => {
      child.once("close", (code, signal) => {
        cli.exit = { code, signal };
        resolve({ code, signal });
      });
    }),
  };
  children.add(cli);
  return cli;
}

/** Start on 127.0.0.1 with a free port and read the URL it prints. */
async function startCli(extra: readonly string[] = []): Promise<{ cli: Cli; url: string }> {
  const cli = spawnCli(["toxiproxy", "--host", "127.0.0.1", "--port", "0", ...extra]);
  const url = await waitFor(
    () => {
      if (cli.exit) throw new Error(`exited early: ${JSON.stringify(cli.exit)}\n${cli.out.stderr}`);
      return /API listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(cli.out.stdout)?.[1];
    },
    15_000,
    "the URL on stdout",
  );
  return { cli, url };
}

function logLines(cli: Cli): Record<string, unknown>[] {
  return cli.out.stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("bridgehead toxiproxy", () => {
  it("serves the API on the printed URL, applies toxics, and stops cleanly on SIGTERM", async () => {
    const { cli, url } = await startCli();
    const version = await fetch(`${url}/version`);
    expect(await version.text()).toBe('{"version": "2.12.0"}\n');

    const echo = await startEcho();
    const toxiproxy = new Toxiproxy(url);
    const proxy = await toxiproxy.createProxy({
      name: "echo",
      listen: "127.0.0.1:0",
      upstream: `127.0.0.1:${echo.port}`,
    });
    const client = await connectTo(portOf(proxy.listen));
    await roundTrip(client);
    await proxy.addToxic({
      name: "slow",
      type: "latency",
      stream: "downstream",
      toxicity: 1,
      attributes: { latency: 200, jitter: 0 },
    });
    expect(await roundTrip(client)).toBeGreaterThanOrEqual(190);

    cli.child.kill("SIGTERM");
    const exit = await cli.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    // The proxy went with it: its connection is closed and its port refuses.
    await client.waitClosed(3000);
    await expect(connectTo(portOf(proxy.listen))).rejects.toMatchObject({ code: "ECONNREFUSED" });
    const logs = logLines(cli);
    expect(logs.some((l) => l["msg"] === "Starting Toxiproxy HTTP server")).toBe(true);
    expect(logs.some((l) => l["msg"] === "shutting down" && l["signal"] === "SIGTERM")).toBe(true);
    expect(logs.at(-1)).toMatchObject({ msg: "stopped", code: 0 });
  });

  it("stops cleanly on SIGINT", async () => {
    const { cli } = await startCli();
    cli.child.kill("SIGINT");
    expect(await cli.exited).toEqual({ code: 0, signal: null });
  });

  it("--config creates proxies at start-up (the /populate format)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bh-toxiproxy-"));
    dirs.push(dir);
    const file = join(dir, "proxies.json");
    writeFileSync(
      file,
      JSON.stringify([
        { name: "a", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" },
        { name: "b", listen: "127.0.0.1:0", upstream: "127.0.0.1:9", enabled: false },
      ]),
    );
    const { cli, url } = await startCli(["--config", file]);
    const all = await new Toxiproxy(url).getAll();
    expect(Object.keys(all).sort()).toEqual(["a", "b"]);
    expect(all["b"]?.enabled).toBe(false);
    cli.child.kill("SIGTERM");
    expect((await cli.exited).code).toBe(0);
  });

  it("a port in use or an invalid port exits 1 with the reason", async () => {
    const taken = await startTcp(() => {});
    const busy = spawnCli(["toxiproxy", "--host", "127.0.0.1", "--port", String(taken.port)]);
    expect((await busy.exited).code).toBe(1);
    expect(busy.out.stderr).toContain(`listen tcp 127.0.0.1:${taken.port}: bind: address already in use`);

    const bad = spawnCli(["toxiproxy", "--port", "http"]);
    expect((await bad.exited).code).toBe(1);
    expect(bad.out.stderr).toContain('invalid port "http"');
  });

  it("is listed in the program's help", async () => {
    const help = spawnCli(["--help"]);
    expect((await help.exited).code).toBe(0);
    expect(help.out.stdout).toMatch(/toxiproxy \[options\]\s+run the Toxiproxy-compatible fault proxy/);
  });
});

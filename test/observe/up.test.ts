/**
 * `bridgehead up config/multi-region.yaml`, run as a child process (`npm run build` first) with the file's
 * addresses moved to port 0: every region's monitor serves the dashboard, readiness, the JSON endpoints
 * and Prometheus metrics, each describing the running three-region mesh. The process is stopped with
 * SIGINT and must exit cleanly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfigFile } from "../../src/config/load.js";
import { waitUntil } from "../helpers/regions.js";
import { BRIDGEHEAD_BIN } from "../helpers/servers.js";
import { waitForAsync } from "./kit.js";
import { parseExposition, sampleValue } from "./prom-text.js";

const REPO = resolve(import.meta.dirname, "../..");
const SHIPPED = join(REPO, "config", "multi-region.yaml");

let child: ChildProcess | undefined;
let dir: string | undefined;

afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child!.once("close", r));
    child.kill("SIGKILL");
    await gone;
  }
  child = undefined;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("bridgehead up config/multi-region.yaml", () => {
  it("every region's monitor port serves the dashboard, /healthz, the JSON endpoints and /metrics", async () => {
    if (!existsSync(join(REPO, "dist", "src", "cli", "main.js")))
      throw new Error("dist/ is missing: run `npm run build` before these tests");
    // The shipped file gives every region a monitor.
    const shipped = loadConfigFile(SHIPPED, { env: {} }).config;
    expect(shipped.regions.every((r) => r.monitor !== undefined)).toBe(true);
    const names = shipped.regions.map((r) => r.name);

    dir = mkdtempSync(join(tmpdir(), "bh-up-"));
    const file = join(dir, "multi-region.yaml");
    writeFileSync(file, readFileSync(SHIPPED, "utf8").replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:0"));
    const env = { ...process.env };
    delete env.BRIDGEHEAD_LOG_LEVEL;
    const proc = spawn(process.execPath, [BRIDGEHEAD_BIN, "up", file], {
      stdio: ["ignore", "pipe", "pipe"],
      env,
      cwd: dir,
    });
    child = proc;
    const out = { stdout: "", stderr: "" };
    proc.stdout.on("data", (d: Buffer) => {
      out.stdout += d.toString();
    });
    proc.stderr.on("data", (d: Buffer) => {
      out.stderr += d.toString();
    });
    const closed = new Promise<number | null>((r) => proc.once("close", (code) => r(code)));
    await waitUntil(() => /^links: 3\/3 up$/m.test(out.stdout), `links up (stderr: ${out.stderr})`, 15_000);

    // REGION CLIENTS GATEWAY MONITOR
    const monitors = new Map<string, string>();
    for (const line of out.stdout.split("\n")) {
      const cols = line.trim().split(/\s+/);
      if (cols.length === 4 && names.includes(cols[0]!) && cols[1]!.startsWith("nats://"))
        monitors.set(cols[0]!, cols[3]!);
    }
    expect([...monitors.keys()].sort()).toEqual([...names].sort());

    for (const [region, base] of monitors) {
      expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const page = await fetch(`${base}/`);
      expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(await page.text()).toContain("Bridgehead");
      await waitForAsync(async () => (await fetch(`${base}/healthz`)).status === 200, `${region} ready`);
      const json = async (path: string) => {
        const res = await fetch(`${base}${path}`);
        expect(res.status, path).toBe(200);
        return (await res.json()) as Record<string, unknown>;
      };
      expect((await json("/varz"))["server_name"]).toBe(region);
      expect(await json("/connz")).toHaveProperty("num_connections");
      expect(await json("/subsz")).toHaveProperty("num_subscriptions");
      const links = (await json("/linkz"))["links"] as { peer: string; state: string }[];
      expect(links.map((l) => l.state)).toEqual(["up", "up"]);
      expect(((await json("/interestz"))["origins"] as unknown[]).length).toBe(3);
      const topo = await json("/topologyz");
      expect((topo["regions"] as unknown[]).length).toBe(3);
      expect((topo["links"] as { status: string }[]).map((l) => l.status)).toEqual(["up", "up", "up"]);
      const explained = await json(`/explainz?subject=orders.created&from=${region}`);
      expect((explained["regions"] as unknown[]).length).toBe(3);
      const metrics = parseExposition(await (await fetch(`${base}/metrics`)).text());
      for (const peer of names.filter((n) => n !== region)) {
        expect(sampleValue(metrics, "bridgehead_link_up", { region, peer }), `${region} -> ${peer}`).toBe(1);
      }
    }
    // Logs on stderr are JSON lines (not a terminal), with the region bound.
    const firstLine = JSON.parse(out.stderr.split("\n")[0]!) as Record<string, unknown>;
    expect(firstLine).toHaveProperty("level");
    expect(out.stderr).toMatch(/"region":"us-east".*"msg":"monitor listening"/);

    proc.kill("SIGINT");
    expect(await closed).toBe(0);
  });
});

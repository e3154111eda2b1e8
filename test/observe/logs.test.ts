/**
 * Logs are events, not traffic: one JSON line per link state change, refusal or failed-dial cause, with
 * the region (and peer) bound; drops are aggregated (a line when a drop counter first moves, then at most
 * one per 10 s with the count), never one per message.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "nats";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type RunningRegion, startRegion } from "../../src/region/region.js";
import { prettyDestination, prettyLine } from "../../src/util/log-pretty.js";
import { isPretty } from "../../src/util/logger.js";
import { waitUntil } from "../helpers/regions.js";
import { collect, type Kit, sc, startKit } from "./kit.js";

type Line = Record<string, unknown> & { msg: string; level: number };

let kit: Kit | undefined;
let extra: RunningRegion | undefined;

afterEach(async () => {
  await extra?.close();
  extra = undefined;
  await kit?.close();
  kit = undefined;
});

function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level: "info" }, { write: (s: string) => lines.push(JSON.parse(s) as Line) });
  return { logger, lines };
}

const INFO = 30;
const WARN = 40;
const of = (lines: Line[], fields: Record<string, unknown>) =>
  lines.filter((l) => Object.entries(fields).every(([k, v]) => l[k] === v));

async function publishMany(nc: NatsConnection, subject: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) nc.publish(subject, sc.encode(`${i}`));
  await nc.flush();
}

describe("logs", () => {
  it("link state changes: one line per change per side, with region, peer and cause", async () => {
    const { logger, lines } = capture();
    kit = await startKit(["a", "b"], "  - between: [a, b]\n    token: t\n", { logger });
    for (const [region, peer] of [
      ["a", "b"],
      ["b", "a"],
    ]) {
      expect(of(lines, { region, peer, msg: "link syncing" }), `${region} syncing`).toHaveLength(1);
      expect(of(lines, { region, peer, msg: "link up" }), `${region} up`).toHaveLength(1);
    }
    // Only the link's own line says "link up": nothing else repeats it.
    expect(of(lines, { msg: "link up" })).toHaveLength(2);

    await kit.gw("a").dropLink("b");
    await waitUntil(() => of(lines, { region: "b", msg: "link down" }).length === 1, "b to log the loss");
    expect(of(lines, { region: "a", peer: "b", msg: "link closed" })).toEqual([
      expect.objectContaining({ state: "closed", code: 1000, reason: "dialer stopped", by: "local" }),
    ]);
    expect(of(lines, { region: "b", peer: "a", msg: "link down" })).toEqual([
      // An orderly close (1000) is info; an error code would be a warning.
      expect.objectContaining({ level: INFO, code: 1000, reason: "dialer stopped", by: "peer" }),
    ]);
    // The gateway notes once, per side, that the session is gone (its routing view changed).
    expect(of(lines, { region: "a", peer: "b", msg: "link lost" })).toHaveLength(1);
    expect(of(lines, { region: "b", peer: "a", msg: "link lost" })).toHaveLength(1);
  });

  it("a refused dial: the listener logs each refusal, the dialer warns once per distinct cause", async () => {
    const { logger, lines } = capture();
    kit = await startKit(["a", "b"], "  - between: [a, b]\n    token: t\n", { logger });
    extra = await startRegion({
      name: "x",
      broker: { host: "127.0.0.1", port: 0 },
      gateway: { token: "wrong" },
      logger,
    });
    extra.gateway.dial({ url: kit.system.regions.get("b")!.gatewayUrl!, region: "b" });
    await waitUntil(
      () => of(lines, { region: "b", msg: "link refused" }).length >= 3,
      "three refused attempts",
    );
    const refusals = of(lines, { region: "b", msg: "link refused" });
    for (const r of refusals)
      expect(r).toMatchObject({ level: WARN, code: 4001, reason: "authentication failed" });
    expect(JSON.stringify(lines)).not.toContain("wrong");
    const failed = of(lines, { region: "x", peer: "b", msg: "link attempt failed" });
    expect(failed.filter((l) => l.level === WARN)).toHaveLength(1);
    expect(failed[0]).toMatchObject({ code: 4001, reason: "authentication failed", by: "peer" });
  });

  it("drops: one warning when the counter first moves, then aggregated, never per message", async () => {
    const { logger, lines } = capture();
    kit = await startKit(["a", "b"], '  - between: [a, b]\n    token: t\n    export:\n      a: ["ok.>"]\n', {
      logger,
    });
    const na = await kit.client("a");
    const nb = await kit.client("b");
    collect(nb, ">"); // interest a cannot serve for secret.*: every such publish is filtered in a
    await nb.flush();
    await kit.converged();
    await publishMany(na, "secret.x", 200);
    await waitUntil(() => kit!.gw("a").stats.msgsFiltered === 200, "200 drops");
    await waitUntil(() => of(lines, { msg: "messages dropped" }).length === 1, "the first drop warning");
    await publishMany(na, "secret.y", 200);
    await waitUntil(() => kit!.gw("a").stats.msgsFiltered === 400, "400 drops");
    // Two more checks pass (one a second): still the one line, the 10 s window is not over.
    await new Promise((r) => setTimeout(r, 2100));
    expect(of(lines, { msg: "messages dropped" })).toHaveLength(1);
    // Closing reports what is left.
    await kit.close();
    kit = undefined;
    const dropped = of(lines, { msg: "messages dropped" });
    expect(dropped).toHaveLength(2);
    for (const l of dropped) {
      expect(l).toMatchObject({ level: WARN, region: "a", reason: "filtered" });
      expect(l["cause"]).toMatch(/export or import list/);
    }
    expect(dropped.reduce((n, l) => n + (l["dropped"] as number), 0)).toBe(400);
    expect(dropped[1]!["total"]).toBe(400);
  });
});

describe("log format", () => {
  it("auto is readable on a terminal and JSON otherwise; json and pretty force it", () => {
    vi.stubEnv("BRIDGEHEAD_LOG_FORMAT", undefined);
    try {
      expect(isPretty("auto", true)).toBe(true);
      expect(isPretty("auto", false)).toBe(false);
      expect(isPretty("json", true)).toBe(false);
      expect(isPretty("pretty", false)).toBe(true);
      vi.stubEnv("BRIDGEHEAD_LOG_FORMAT", "json");
      expect(isPretty("auto", true)).toBe(false);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("a readable line: time, level, region -> peer, message, then the other fields; errors with their stack", () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.now(),
      pid: 7,
      name: "bridgehead",
      region: "a",
      peer: "b",
      msg: "link down",
      code: 1006,
      reason: "connection lost",
      by: "transport",
    });
    expect(prettyLine(line, false)).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} WARN {2}\[a → b\] link down {2}code=1006 reason="connection lost" by=transport$/,
    );
    const err = prettyLine(
      JSON.stringify({ level: 50, msg: "boom", err: { message: "bad", stack: "Error: bad\n    at x" } }),
      false,
    );
    expect(err.split("\n")).toEqual([expect.stringMatching(/ERROR boom$/), "    Error: bad", "        at x"]);
    expect(prettyLine("not json\n", false)).toBe("not json");
  });

  it("pino writes through the readable destination, with the region and peer bindings", () => {
    const dir = mkdtempSync(join(tmpdir(), "bh-log-"));
    const file = join(dir, "log.txt");
    const fd = openSync(file, "w");
    try {
      const log = pino({ level: "info" }, prettyDestination(fd, false)).child({ region: "us-east" });
      log.info({ peer: "eu-west", state: "up" }, "link up");
      log.debug("not shown");
    } finally {
      closeSync(fd);
    }
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    rmSync(dir, { recursive: true, force: true });
    expect(lines).toEqual([expect.stringMatching(/ INFO {2}\[us-east → eu-west\] link up {2}state=up$/)]);
  });
});

/**
 * The command line of chaos mode and scenarios, as child processes (`node bin/bridgehead.js`, so `npm run
 * build` first): `bridgehead chaos run` on a tiny scenario (exit 0 and a report when expectations hold, 1
 * and the failed expectation when one does not, 2 with file:line:column for a bad file), `bridgehead up
 * --chaos` (proxies named <dialer>-><listener>, embedded or TOXIPROXY_URL), plus the scenario loader's
 * positioned errors and the config's `chaos` block in-process. Children are killed in afterEach.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Toxiproxy } from "toxiproxy-node-client";
import { afterEach, describe, expect, it } from "vitest";
import { startToxiproxyServer, type ToxiproxyServer } from "../../src/chaos/proxy/index.js";
import { loadScenario, ScenarioError } from "../../src/chaos/scenario/index.js";
import { ConfigError } from "../../src/config/errors.js";
import { loadConfig } from "../../src/config/load.js";
import { BRIDGEHEAD_BIN } from "../helpers/servers.js";
import { TWO_REGIONS, tempDir } from "./scenario-kit.js";

interface Cli {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly exited: Promise<number | null>;
}

const children: Cli[] = [];
const cleanups: (() => void | Promise<void>)[] = [];

afterEach(async () => {
  for (const c of children)
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
  await Promise.all(children.splice(0).map((c) => c.exited));
  for (const f of cleanups.splice(0)) await f();
});

function spawnCli(args: readonly string[], env: Record<string, string | undefined> = {}): Cli {
  const child = spawn(process.execPath, [BRIDGEHEAD_BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TOXIPROXY_URL: undefined, BRIDGEHEAD_LOG_FORMAT: "json", ...env },
  });
  const out = { stdout: "", stderr: "" };
  child.stdout?.on("data", (d: Buffer) => {
    out.stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out.stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  const cli = { child, out, exited };
  children.push(cli);
  return cli;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A scenario dir with topology.yaml and scenario.yaml; returns the scenario path. */
function scenarioFile(body: string, topology = TWO_REGIONS): { file: string; dir: string } {
  const t = tempDir();
  cleanups.push(() => t.remove());
  writeFileSync(join(t.dir, "topology.yaml"), topology);
  const file = join(t.dir, "scenario.yaml");
  writeFileSync(file, body);
  return { file, dir: t.dir };
}

const tiny = (expectations: string) => `name: tiny
topology: topology.yaml
duration: 1500ms
fault_margin: 0ms
link_heartbeat: 300ms
workload:
  subscribers: [{ region: b, subject: "t.>" }]
  publishers: [{ region: a, subject: t.x, rate: 50 }]
timeline:
  - { at: 400ms, action: toxic, link: [a, b], toxic: latency, attributes: { latency: 100 }, duration: 600ms }
expect:
${expectations}
`;

describe("bridgehead chaos run", () => {
  it("runs a scenario, shows progress and a summary, writes result.json and a self-contained report.html, exits 0", async () => {
    const { file, dir } = scenarioFile(tiny("  max_loss: 0\n  latency: { p99: 200ms }"));
    const out = join(dir, "out");
    const cli = spawnCli(["chaos", "run", file, "--out", out]);
    expect(await cli.exited).toBe(0);
    const stdout = cli.out.stdout;
    expect(stdout).toContain("scenario tiny: topology");
    expect(stdout).toMatch(/ 0\.4s {2}\+ fault {2}latency 100ms on a <-> b/);
    expect(stdout).toMatch(/- fault {2}latency 100ms on a <-> b/);
    expect(stdout).toMatch(/run {4}sent \d+ {2}delivered \d+/);
    expect(stdout).toMatch(/EXPECTATION +LIMIT +MEASURED +RESULT/);
    expect(stdout).toMatch(/max_loss +<= 0 +0 \(0\.00% of \d+\) +pass/);
    expect(stdout).toContain("PASSED: 4 expectation(s) held");
    const result = JSON.parse(readFileSync(join(out, "result.json"), "utf8")) as {
      passed: boolean;
      totals: { lost: number; messagesSent: number };
      faults: { label: string; targets: string[] }[];
    };
    expect(result.passed).toBe(true);
    expect(result.totals.lost).toBe(0);
    expect(result.totals.messagesSent).toBeGreaterThanOrEqual(70);
    expect(result.faults.map((f) => [f.label, f.targets])).toEqual([
      ["latency 100ms on a <-> b", ["a->b upstream", "a->b downstream"]],
    ]);
    const html = readFileSync(join(out, "report.html"), "utf8");
    expect(html).toContain("PASSED");
    expect((html.match(/<svg /g) ?? []).length).toBeGreaterThanOrEqual(3);
    expect(html).toContain('class="fault"');
    // Self-contained: no scripts, no stylesheets or images fetched from anywhere.
    expect(html).not.toMatch(/<script|<link |src=|href=|@import|url\(/i);
    expect(existsSync(join(out, "bridgehead.log"))).toBe(true);
  });

  it("exits 1 and names the expectation that failed (and still writes the report)", async () => {
    const { file, dir } = scenarioFile(tiny("  max_loss: 0\n  latency_during_faults: { p50: 5ms }"));
    const out = join(dir, "out");
    const cli = spawnCli(["chaos", "run", file, "--out", out]);
    expect(await cli.exited).toBe(1);
    expect(cli.out.stdout).toMatch(/latency_during_faults\.p50 +<= 5 ms +[\d.]+ ms \(\d+ samples\) +FAIL/);
    expect(cli.out.stderr).toMatch(
      /FAILED: 1 of 4 expectation\(s\) did not hold: latency_during_faults\.p50 \(limit <= 5 ms, measured \d+/,
    );
    expect(JSON.parse(readFileSync(join(out, "result.json"), "utf8")).passed).toBe(false);
    expect(readFileSync(join(out, "report.html"), "utf8")).toContain("FAILED");
  });

  it("exits 2 with every problem of a bad scenario file at file:line:column", async () => {
    const { file } = scenarioFile(`topology: topology.yaml
duration: 2s
workload:
  publishers: [{ region: zz, subject: t.x, rate: 10 }]
timeline:
  - { at: 1s, action: toxic, link: [a, b], direction: b->c, toxic: latency, attributes: { latency: 10 } }
`);
    const cli = spawnCli(["chaos", "run", file]);
    expect(await cli.exited).toBe(2);
    expect(cli.out.stderr).toBe(
      `2 problems in the scenario:
  ${file}:4:26: workload.publishers[0].region: unknown region 'zz' (topology regions: a, b)
  ${file}:6:55: timeline[0].direction: direction must go between the link's regions: a->b, b->a or both
`,
    );
    expect(cli.out.stdout).toBe("");
  });
});

describe("scenario files", () => {
  const load = (body: string, topology = TWO_REGIONS) => {
    const { file } = scenarioFile(body, topology);
    try {
      loadScenario(readFileSync(file, "utf8"), { file });
    } catch (err) {
      if (err instanceof ScenarioError)
        return err.problems.map((p) => `${p.line}:${p.column}: ${p.path}: ${p.message}`);
      throw err;
    }
    return [];
  };
  const base =
    "topology: topology.yaml\nduration: 3s\nworkload:\n  publishers: [{ region: a, subject: t.x, rate: 10 }]\n";

  it("accepts a valid scenario and fills in the defaults", () => {
    const { file } = scenarioFile(
      `${base}timeline:\n  - { at: 1s, action: partition, link: [b, a], duration: 500ms }\n`,
    );
    const s = loadScenario(readFileSync(file, "utf8"), { file });
    expect(s.name).toBe("scenario");
    expect(s.topology.config.regions.map((r) => r.name)).toEqual(["a", "b"]);
    expect(s.scenario).toMatchObject({
      duration: 3000,
      drain: 5000,
      bucket: 250,
      fault_margin: 500,
      free_ports: true,
      expect: { max_duplicates: 0, interest_consistent: true },
      timeline: [{ at: 1000, action: "partition", link: ["b", "a"], duration: 500 }],
    });
    expect(s.scenario.workload.publishers[0]).toMatchObject({ size: 16 });
  });

  it("reports unknown keys with a suggestion, bad values with what was found, and cross-checks with the topology", () => {
    expect(
      load(`${base}timeline:
  - { at: 1s, action: toxic, link: [a, b], toxic: latency, atributes: { latency: 10 } }
  - { at: 1s, action: toxic, link: [a, b], toxic: bandwidth, attributes: { rat: 10 } }
  - { at: 1s, action: explode }
  - { at: 10, action: heal }
expect:
  max_loss: "5 percent"
`),
    ).toEqual([
      "6:60: timeline[0].atributes: unknown key 'atributes'; did you mean 'attributes'? (known here: at, action, link, direction, toxic, attributes, toxicity, duration, region)",
      "6:5: timeline[0].attributes: a latency toxic needs the attribute 'latency'",
      "7:81: timeline[1].attributes.rat: unknown attribute 'rat' for a bandwidth toxic (known: rate)",
      "7:74: timeline[1].attributes: a bandwidth toxic needs the attribute 'rate'",
      '8:23: timeline[2].action: expected an action: toxic, partition, kill, restart or heal, found "explode"',
      "9:11: timeline[3].at: expected string, found 10",
      '11:13: expect.max_loss: expected a count (0, 10) or a percentage ("0.5%"), found "5 percent"',
    ]);
  });

  it("checks links, regions, the order of kills and restarts, and offsets against the topology", () => {
    expect(
      load(
        `${base}timeline:
  - { at: 1s, action: toxic, link: [a, c], toxic: latency, attributes: { latency: 10 } }
  - { at: 1s, action: restart, region: b }
  - { at: 1s, action: kill, region: b }
  - { at: 2s, action: kill, region: b }
  - { at: 4s, action: heal }
`,
        TWO_REGIONS,
      ),
    ).toEqual([
      "6:40: timeline[0].link[1]: unknown region 'c' (topology regions: a, b)",
      "7:40: timeline[1].region: region 'b' is not killed then (restart follows a kill without a duration)",
      "9:37: timeline[3].region: region 'b' is already killed then",
      "10:11: timeline[4].at: the fault starts after the workload ends (duration 3000 ms)",
    ]);
    const three = `regions:
  - { name: a, broker: { listen: 127.0.0.1:0 }, gateway: { listen: 127.0.0.1:0 } }
  - { name: b, broker: { listen: 127.0.0.1:0 }, gateway: { listen: 127.0.0.1:0 } }
  - { name: c, broker: { listen: 127.0.0.1:0 }, gateway: { listen: 127.0.0.1:0 } }
links:
  - { between: [a, b], token: t }
  - { between: [b, c], token: t }
`;
    expect(load(`${base}timeline:\n  - { at: 1s, action: partition, link: [a, c] }\n`, three)).toEqual([
      "6:40: timeline[0].link: no link between a and c in the topology (links: a <-> b, b <-> c)",
    ]);
  });

  it("points at the topology key when the topology cannot be read, and into the topology file for its own problems", () => {
    const missing = load(
      "topology: nope.yaml\nduration: 1s\nworkload: { publishers: [{ region: a, subject: x, rate: 1 }] }\n",
    );
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatch(/^1:11: topology: cannot read the config file: ENOENT/);
    const { file, dir } = scenarioFile(
      "topology: topology.yaml\nduration: 1s\nworkload: { publishers: [{ region: a, subject: x, rate: 1 }] }\n",
      "regions:\n  - { name: a, gateway: { listen: nowhere } }\n",
    );
    try {
      loadScenario(readFileSync(file, "utf8"), { file });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ScenarioError);
      expect((err as ScenarioError).message).toBe(
        `${join(dir, "topology.yaml")}:2:35: regions[0].gateway.listen: expected host:port, e.g. 127.0.0.1:4222, found "nowhere"`,
      );
    }
    expect(load("topology: [unclosed\n")[0]).toMatch(/^2:1: : /);
  });
});

describe("chaos mode in the config and in bridgehead up", () => {
  it("validates the chaos block with positions and suggestions", () => {
    const regions = "regions:\n  - { name: a, gateway: { listen: 127.0.0.1:0 } }\n";
    const ok = loadConfig(`${regions}chaos: { enabled: true, heartbeat: 250ms }\n`);
    expect(ok.config.chaos).toEqual({ enabled: true, listen: "127.0.0.1", heartbeat: 250 });
    expect(loadConfig(regions).config.chaos).toEqual({ enabled: false, listen: "127.0.0.1" });
    try {
      loadConfig(`${regions}chaos:\n  enabeld: true\n  toxiproxy_url: localhost:8474\n  heartbeat: 10ms\n`, {
        file: "bh.yaml",
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect(
        (err as ConfigError).problems.map((p) => `${p.line}:${p.column}: ${p.path}: ${p.message}`),
      ).toEqual([
        '5:18: chaos.toxiproxy_url: expected http://host:port, e.g. http://127.0.0.1:8474, found "localhost:8474"',
        '6:14: chaos.heartbeat: expected whole milliseconds, at least 50ms, found "10ms"',
        "4:3: chaos.enabeld: unknown key 'enabeld'; did you mean 'enabled'? (known here: enabled, toxiproxy_url, listen, heartbeat)",
      ]);
    }
  });

  it("up --chaos starts the embedded Toxiproxy and prints each link's proxy, named <dialer>-><listener>", async () => {
    const { dir } = scenarioFile("");
    const cli = spawnCli(["up", "--chaos", join(dir, "topology.yaml")]);
    await waitFor(() => cli.out.stdout.includes("Ctrl-C"), "up to print its tables");
    expect(cli.out.stdout).toContain("links: 1/1 up");
    expect(cli.out.stdout).toMatch(
      /chaos mode: links dial through the Toxiproxy at http:\/\/127\.0\.0\.1:\d+ \(embedded\); proxies are named <dialer>-><listener>, upstream = dialer->listener\nPROXY +LISTEN +UPSTREAM\na->b +127\.0\.0\.1:\d+ +127\.0\.0\.1:\d+\n/,
    );
    cli.child.kill("SIGINT");
    expect(await cli.exited).toBe(0);
  });

  it("with TOXIPROXY_URL, up --chaos creates its proxies on that Toxiproxy and deletes them when it stops", async () => {
    const server: ToxiproxyServer = await startToxiproxyServer({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => server.close());
    const client = new Toxiproxy(server.url);
    const { dir } = scenarioFile("");
    const cli = spawnCli(["up", "--chaos", join(dir, "topology.yaml")], { TOXIPROXY_URL: server.url });
    await waitFor(() => cli.out.stdout.includes("Ctrl-C"), "up to print its tables");
    expect(cli.out.stdout).toContain(`the Toxiproxy at ${server.url} (external)`);
    expect(cli.out.stdout).toContain("links: 1/1 up");
    const proxies = await client.getAll();
    expect(Object.keys(proxies)).toEqual(["a->b"]);
    // Its upstream is b's gateway (the listener), as the region table shows it.
    const p = proxies["a->b"]!;
    const gatewayOfB = /^b +nats:\/\/\S+ +ws:\/\/(\S+)\/bridgehead\/v1/m.exec(cli.out.stdout)?.[1];
    expect(p.upstream).toBe(gatewayOfB);
    expect(p.enabled).toBe(true);
    expect(cli.out.stdout).toMatch(
      new RegExp(`a->b +${p.listen.replace(/\./g, "\\.")} +${p.upstream.replace(/\./g, "\\.")}`),
    );
    cli.child.kill("SIGINT");
    expect(await cli.exited).toBe(0);
    expect(Object.keys(await client.getAll())).toEqual([]);
  });
});

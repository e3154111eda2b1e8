/**
 * `bridgehead check`, `bridgehead up` and `bridgehead node`, run as child processes (`node bin/bridgehead.js`,
 * so `npm run build` first). Everything listens on 127.0.0.1. In `up` every region runs in one process and a
 * link is dialed at the running peer's real address, so port 0 works everywhere; with `node` the dialing
 * process derives the URL from the config, so the dialed gateway gets a concrete free port. Conditions are
 * polled with deadlines; every process is killed in afterEach.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect, type NatsConnection, StringCodec } from "nats";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type CliProcess,
  killAllCli,
  runBridgehead,
  spawnBridgehead,
  waitForValue,
  withDeadline,
} from "../helpers/cli.js";

const sc = StringCodec();
const REPO = resolve(import.meta.dirname, "../..");

const dirs: string[] = [];
const connections: NatsConnection[] = [];

beforeAll(() => {
  if (!existsSync(join(REPO, "dist", "src", "cli", "main.js"))) {
    throw new Error("dist/ is missing: run `npm run build` before these tests");
  }
});

afterEach(async () => {
  for (const nc of connections.splice(0)) await nc.close().catch(() => {});
  await killAllCli();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** `bridgehead ARGS` in `cwd`; the config's logging.level decides (BRIDGEHEAD_LOG_LEVEL is removed). */
const spawnCli = (args: readonly string[], cwd = REPO): CliProcess =>
  spawnBridgehead(args, { cwd, env: { BRIDGEHEAD_LOG_LEVEL: undefined } });

const runCli = (args: readonly string[], timeoutMs = 10_000) =>
  runBridgehead(args, timeoutMs, { cwd: REPO, env: { BRIDGEHEAD_LOG_LEVEL: undefined } });

const waitFor = <T>(fn: () => T | undefined, what: string, proc?: CliProcess, timeoutMs?: number) =>
  waitForValue(fn, what, { proc, timeoutMs });

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "bh-system-cli-"));
  dirs.push(d);
  return d;
}

function writeConfig(text: string): string {
  const file = join(tmp(), "bridgehead.yaml");
  writeFileSync(file, text);
  return file;
}

/** A port nothing listens on right now (bound to 0, read back, closed). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res, rej) => srv.once("error", rej).listen(0, "127.0.0.1", res));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

/** Resolves true when `port` can be bound on 127.0.0.1 (nothing holds it any more). */
async function portIsFree(port: number): Promise<boolean> {
  const srv = createServer();
  const ok = await new Promise<boolean>((res) => {
    srv.once("error", () => res(false));
    srv.listen(port, "127.0.0.1", () => res(true));
  });
  if (ok) await new Promise<void>((res) => srv.close(() => res()));
  return ok;
}

interface RegionRow {
  readonly name: string;
  readonly client: string;
  readonly gateway: string;
  readonly monitor: string;
}

/** The region table `up`/`node` prints, once it (and, unless told otherwise, the links line) is out. */
function regionTable(stdout: string, withLinks = true): RegionRow[] | undefined {
  if (withLinks && !/^links: \d+\/\d+ up$/m.test(stdout)) return undefined;
  const lines = stdout.split("\n");
  const head = lines.findIndex((l) => /^REGION\s+CLIENTS\s+GATEWAY\s+MONITOR$/.test(l));
  if (head < 0) return undefined;
  const rows: RegionRow[] = [];
  for (const l of lines.slice(head + 1)) {
    const cells = l.split(/\s+/);
    if (cells.length !== 4 || !cells[1]!.startsWith("nats://")) break;
    rows.push({ name: cells[0]!, client: cells[1]!, gateway: cells[2]!, monitor: cells[3]! });
  }
  return rows;
}

const portOf = (url: string) => Number(new URL(url).port);

async function natsClient(url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url });
  connections.push(nc);
  return nc;
}

/** Publish on `pub` until `sub`'s subscription to `subject` receives one (interest takes a moment to spread). */
async function expectFlow(pub: NatsConnection, sub: NatsConnection, subject: string, proc?: CliProcess) {
  const got: string[] = [];
  const s = sub.subscribe(subject, { callback: (_e, m) => got.push(sc.decode(m.data)) });
  await sub.flush();
  try {
    let n = 0;
    await waitFor(
      () => {
        pub.publish(subject, sc.encode(`m${n++}`));
        return got.length > 0 ? true : undefined;
      },
      `a message on ${subject} to cross regions`,
      proc,
    );
  } finally {
    s.unsubscribe();
  }
}

async function stop(p: CliProcess): Promise<number | null> {
  p.child.kill("SIGTERM");
  const { code } = await withDeadline(p.closed, 10_000, "the process to stop");
  return code;
}

const TWO_REGIONS = (gatewayB = 0) =>
  [
    "regions:",
    "  - name: a",
    "    broker: { listen: 127.0.0.1:0 }",
    "    gateway: { listen: 127.0.0.1:0 }",
    "    monitor: { listen: 127.0.0.1:0 }",
    "  - name: b",
    "    broker: { listen: 127.0.0.1:0 }",
    `    gateway: { listen: 127.0.0.1:${gatewayB} }`,
    "links:",
    "  - between: [a, b]",
    "    token: cli-test-token",
    "",
  ].join("\n");

describe("bridgehead check", () => {
  it("a valid file: exit 0 and one summary line", async () => {
    const r = await runCli(["check", "config/multi-region.yaml"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      "config/multi-region.yaml: ok: 3 region(s) (us-east, eu-west, ap-south), 3 link(s)\n",
    );
    expect(r.stderr).toBe("");
  });

  it("an invalid file: exit 1 and every problem on stderr with file:line:column", async () => {
    const file = writeConfig(
      [
        "regions:",
        "  - name: a.b", // 2
        "    gateway: { listen: 127.0.0.1:7001, lisen: x }", // 3
        "  - name: c",
        "    gateway: { listen: 127.0.0.1:7001 }", // 5
        "links:",
        "  - between: [a.b, zz]", // 7
        "    token: do-not-print-me",
        "",
      ].join("\n"),
    );
    const r = await runCli(["check", file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^\d+ problems in the config:$/);
    expect(r.stderr).toContain(`${file}:2:11: regions[0].name: region names are 1-63 letters`);
    expect(r.stderr).toContain(
      `${file}:3:40: regions[0].gateway.lisen: unknown key 'lisen'; did you mean 'listen'?`,
    );
    expect(r.stderr).toContain(`${file}:7:20: links[0].between[1]: unknown region 'zz'`);
    expect(r.stderr).toContain(`${file}:5:24: regions[1].gateway.listen: 127.0.0.1:7001 is already used`);
    expect(r.stderr).toContain(`${file}:4:5: regions[1].broker.listen: 127.0.0.1:4222 is already used`);
    expect(r.stderr).not.toContain("do-not-print-me");
    expect(lines.slice(1).every((l) => l.startsWith(`  ${file}:`))).toBe(true);
  });

  it("a missing file: exit 1", async () => {
    const r = await runCli(["check", join(tmp(), "nope.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nope\.yaml: cannot read the config file: ENOENT/);
  });

  it("--help of check, up and node", async () => {
    const check = await runCli(["check", "--help"]);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/^Usage: bridgehead check \[options\] \[file\]/);
    expect(check.stdout).toContain("validate a config file");
    const up = await runCli(["up", "--help"]);
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/^Usage: bridgehead up \[options\] \[file\]/);
    expect(up.stdout).toContain('(default: "bridgehead.yaml")');
    const node = await runCli(["node", "--help"]);
    expect(node.code).toBe(0);
    expect(node.stdout).toMatch(/^Usage: bridgehead node \[options\] \[file\]/);
    expect(node.stdout).toContain("--region <name>");
  });
});

describe("bridgehead up", () => {
  it("prints the region table and links, carries messages between regions, stops on SIGTERM", async () => {
    const file = writeConfig(TWO_REGIONS());
    const p = spawnCli(["up", file]);
    const rows = await waitFor(() => regionTable(p.out.stdout), "the region table", p);
    expect(rows.map((r) => r.name)).toEqual(["a", "b"]);
    for (const r of rows) {
      expect(r.client).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
      expect(r.gateway).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/bridgehead\/v1$/);
    }
    expect(rows[0]!.monitor).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(rows[1]!.monitor).toBe("-");
    expect(p.out.stdout).toContain("links: 1/1 up\n  a <-> b: up\n");
    expect(p.out.stderr).not.toContain("cli-test-token");

    // The monitor answers.
    const health = await fetch(`${rows[0]!.monitor}/healthz`);
    expect(health.status).toBe(200);

    const na = await natsClient(rows[0]!.client);
    const nb = await natsClient(rows[1]!.client);
    await expectFlow(nb, na, "cli.b-to-a", p);
    await expectFlow(na, nb, "cli.a-to-b", p);
    for (const nc of connections.splice(0)) await nc.close();

    expect(await stop(p)).toBe(0);
    expect(p.out.stderr).toContain('"msg":"stopping"');
    const ports = rows
      .flatMap((r) => [r.client, r.gateway, ...(r.monitor === "-" ? [] : [r.monitor])])
      .map(portOf);
    for (const port of ports) expect(await portIsFree(port), `port ${port}`).toBe(true);
  });

  it("an invalid config: exit 1 before anything listens", async () => {
    const file = writeConfig("regions:\n  - name: a\n    gateway: { listen: 127.0.0.1:99999 }\n");
    const r = await runCli(["up", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `${file}:3:24: regions[0].gateway.listen: port must be 0-65535, found "127.0.0.1:99999"\n`,
    );
    expect(r.stdout).toBe("");
  });

  it("a port already in use: exit 1 with the address", async () => {
    const blocker = createServer();
    await new Promise<void>((res) => blocker.listen(0, "127.0.0.1", res));
    const port = (blocker.address() as { port: number }).port;
    try {
      const file = writeConfig(TWO_REGIONS(port));
      const r = await runCli(["up", file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `bridgehead: link listener: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
      );
      expect(r.stdout).toBe("");
    } finally {
      await new Promise<void>((res) => blocker.close(() => res()));
    }
  });
});

describe("bridgehead node", () => {
  it("two regions in two processes, linked together", async () => {
    const gatewayB = await freePort();
    const file = writeConfig(TWO_REGIONS(gatewayB));
    // b first: a dials b's configured address. b prints its table at once, then waits (up to 5 s) for links.
    const pb = spawnCli(["node", file, "--region", "b"]);
    const rowsB = await waitFor(() => regionTable(pb.out.stdout, false), "b's region table", pb);
    expect(rowsB.map((r) => r.name)).toEqual(["b"]);
    expect(rowsB[0]!.gateway).toBe(`ws://127.0.0.1:${gatewayB}/bridgehead/v1`);
    const pa = spawnCli(["node", file, "--region", "a"]);
    const rowsA = await waitFor(() => regionTable(pa.out.stdout), "a's region table", pa);
    expect(rowsA.map((r) => r.name)).toEqual(["a"]);
    expect(pa.out.stdout).toContain("links: 1/1 up\n  a <-> b: up\n");
    await waitFor(() => (pb.out.stdout.includes("links: 1/1 up\n") ? true : undefined), "b's links line", pb);

    const na = await natsClient(rowsA[0]!.client);
    const nb = await natsClient(rowsB[0]!.client);
    await expectFlow(na, nb, "node.a-to-b", pa);
    await expectFlow(nb, na, "node.b-to-a", pb);
    for (const nc of connections.splice(0)) await nc.close();

    expect(await stop(pa)).toBe(0);
    expect(await stop(pb)).toBe(0);
    expect(await portIsFree(gatewayB)).toBe(true);
  });

  it("an unknown region: exit 1 with a clear message", async () => {
    const file = writeConfig(TWO_REGIONS());
    const r = await runCli(["node", file, "--region", "nosuch"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("bridgehead: no region named 'nosuch' in the config (regions: a, b)");
    expect(r.stdout).toBe("");
  });

  it("--region is required", async () => {
    const r = await runCli(["node", writeConfig(TWO_REGIONS())]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("required option '--region <name>' not specified");
  });
});

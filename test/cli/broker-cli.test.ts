/**
 * The `bridgehead` CLI, run as a child process (`node bin/bridgehead.js`, so `npm run build` first), plus unit
 * tests of the broker command's helpers. Processes are stopped in afterEach; conditions are polled with a
 * deadline, never slept on.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection, StringCodec } from "nats";
import { afterEach, describe, expect, it } from "vitest";
import {
  advertisedHosts,
  normalizeBrokerArgs,
  portsFileContent,
  portsFilePath,
  resolveBrokerOptions,
} from "../../src/cli/broker-command.js";
import { packageVersion } from "../../src/cli/main.js";
import {
  type CliProcess,
  killAllCli,
  runBridgehead,
  spawnBridgehead,
  waitForValue,
  withDeadline,
} from "../helpers/cli.js";
import { startServer } from "../helpers/servers.js";

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

const dirs: string[] = [];
const connections: NatsConnection[] = [];

/** `bridgehead ARGS` at log level info, plus `env`. */
const spawnCli = (args: readonly string[], env: Record<string, string> = {}): CliProcess =>
  spawnBridgehead(args, { env: { BRIDGEHEAD_LOG_LEVEL: "info", ...env } });

/** Run to completion. */
const runCli = (args: readonly string[], timeoutMs = 15_000) =>
  runBridgehead(args, timeoutMs, { env: { BRIDGEHEAD_LOG_LEVEL: "info" } });

const waitFor = <T>(fn: () => T | undefined, what: string, timeoutMs?: number, proc?: CliProcess) =>
  waitForValue(fn, what, { proc, timeoutMs });

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), "bh-cli-"));
  dirs.push(dir);
  return dir;
}

function writeConf(dir: string, text: string, name = "server.conf"): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

interface PortsFile {
  nats: string[];
  monitoring?: string[];
}

function readPortsFile(path: string): PortsFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as PortsFile;
  } catch {
    return undefined;
  }
}

/** Start `bridgehead broker ...args` and wait for its ports file in `dir`. */
async function startCliBroker(dir: string, args: readonly string[], env: Record<string, string> = {}) {
  const proc = spawnCli(["broker", ...args], env);
  const portsPath = portsFilePath(dir, proc.child.pid);
  const ports = await waitFor(() => readPortsFile(portsPath), `ports file ${portsPath}`, 10_000, proc);
  const first = ports.nats[0]!;
  return { proc, ports, portsPath, url: first, port: Number(new URL(first).port) };
}

/**
 * `bridgehead broker` from flags alone: loopback, a port the system picks, the ports file in a fresh temp dir,
 * then `extra` flags.
 */
function startFlagBroker(...extra: string[]) {
  const dir = tmp();
  return startCliBroker(dir, ["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", dir, ...extra]);
}

async function natsConnect(opts: Parameters<typeof connect>[0]): Promise<NatsConnection> {
  const nc = await connect({ reconnect: false, timeout: 3000, ...opts });
  connections.push(nc);
  return nc;
}

async function roundTrip(nc: NatsConnection, subject = "cli.test"): Promise<string> {
  const sc = StringCodec();
  const sub = nc.subscribe(subject, { max: 1 });
  await nc.flush();
  nc.publish(subject, sc.encode("hello via bridgehead"));
  for await (const m of sub) return sc.decode(m.data);
  throw new Error("subscription ended without a message");
}

/** Structured log lines written to stderr. */
function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

afterEach(async () => {
  for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
  await killAllCli();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("bridgehead CLI (no broker needed)", () => {
  it("--version prints the package version", async () => {
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`bridgehead v${VERSION}\n`);
    expect(packageVersion()).toBe(VERSION);
  });

  it("broker --version and -v print the broker version", async () => {
    for (const flag of ["--version", "-v"]) {
      const r = await runCli(["broker", flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`bridgehead-broker: v${VERSION} (nats-server 2.9 compatible)\n`);
    }
  });

  it("--help lists the broker command; broker --help lists nats-server's flags", async () => {
    const top = await runCli(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("broker");
    const r = await runCli(["broker", "--help"]);
    expect(r.code).toBe(0);
    for (const flag of [
      "-a, --addr <host>",
      "--net",
      "-p, --port <port>",
      "--user <user>",
      "--pass <password>",
      "--auth <token>",
      "-m, --http_port <port>",
      "-c, --config <file>",
      "-n, --name <name>",
      "--server_name",
      "--ports_file_dir <dir>",
      "-v, --version",
      "-D, --debug",
      "-V, --trace",
      "-DV",
      "-l, --log <file>",
    ]) {
      expect(r.stdout).toContain(flag);
    }
  });

  it("a syntax error exits 1 naming file:line:col", async () => {
    const dir = tmp();
    const file = writeConf(dir, `ports_file_dir: "${dir}"\nauthorization {\n  user: a\n  password: b`);
    const r = await runCli(["broker", "-c", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${file}:4:14: expected '}' to close the block opened at 2:15, found end of file`,
    );
    expect(existsSync(portsFilePath(dir))).toBe(false);
  });

  it("invalid values exit 1 and are all listed", async () => {
    const dir = tmp();
    const file = writeConf(
      dir,
      [
        "listen: 127.0.0.1:-1",
        "port: 99999",
        "authorization {",
        "  users: [ { user: a, password: b }, { user: c } ]",
        "}",
        'ping_interval: "2 minutes"',
        "max_payload: -1",
        "jetstream {}",
      ].join("\n"),
    );
    const r = await runCli(["broker", "-c", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("4 configuration errors");
    expect(r.stderr).toContain(`${file}:2:7: port: 99999 is out of range (-1 to 65535)`);
    expect(r.stderr).toContain(`${file}:4:38: authorization.users[1]: user "c" needs a password`);
    expect(r.stderr).toContain(`${file}:6:16: ping_interval:`);
    expect(r.stderr).toContain(`${file}:7:14: max_payload: a size cannot be negative (-1)`);
  });

  it("a missing config file exits 1", async () => {
    const r = await runCli(["broker", "-c", "/nonexistent/bridgehead.conf"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("/nonexistent/bridgehead.conf: cannot read configuration file");
  });

  it("-t checks the configuration, warns about unsupported keys and exits 0", async () => {
    const dir = tmp();
    const file = writeConf(
      dir,
      "listen: 127.0.0.1:-1\njetstream { store_dir: /tmp/js }\ncluster { name: c }\n",
    );
    const r = await runCli(["broker", "-t", "-c", file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `${file}:2:1: 'jetstream' is not supported by bridgehead broker and is ignored`,
    );
    expect(r.stderr).toContain(`${file}:3:1: 'cluster' is not supported by bridgehead broker and is ignored`);
    expect(r.stderr).toContain(`configuration ${file} is valid`);
  });

  it("accepts nats-server's Go-style flags and debug/trace flags with a warning", async () => {
    const dir = tmp();
    const file = writeConf(dir, "port: 4222\n");
    const r = await runCli(["broker", "-config", file, "-t", "-DV", "-l", join(dir, "x.log"), "-p=-1"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("-D/--debug is accepted for nats-server compatibility and ignored");
    expect(r.stderr).toContain("-V/--trace is accepted for nats-server compatibility and ignored");
    expect(r.stderr).toContain("-l/--log is ignored");
  });

  it("rejects unknown flags with commander's usage error (exit 1)", async () => {
    const r = await runCli(["broker", "--jetstream-please"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: unknown option '--jetstream-please'");
  });

  it("rejects bad flag values with exit 1", async () => {
    const r = await runCli(["broker", "-p", "http", "--user", "u"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--port: expected a port number (-1 to 65535), found "http"');
    expect(r.stderr).toContain("--user: --user needs --pass");
  });
});

describe("broker command helpers", () => {
  it("normalizes Go-style flags as nats-server reads them", () => {
    expect(
      normalizeBrokerArgs(["-config", "x.conf", "-port", "5", "-DV", "-p=7", "--user", "-config"]),
    ).toEqual(["--config", "x.conf", "--port", "5", "-DV", "-p", "7", "--user", "-config"]);
    expect(normalizeBrokerArgs(["-js", "--", "-config"])).toEqual(["-js", "--", "-config"]);
  });

  it("lets flags override the config file, with nats-server's port conventions", () => {
    const dir = tmp();
    const file = writeConf(
      dir,
      "listen: 0.0.0.0:4333\nhttp_port: 8222\nserver_name: file\nauthorization { token: t }\n",
    );
    expect(resolveBrokerOptions({ config: file }).options).toEqual({
      host: "0.0.0.0",
      port: 4333,
      httpPort: 8222,
      serverName: "file",
      auth: { token: "t" },
    });
    expect(
      resolveBrokerOptions({
        config: file,
        addr: "127.0.0.1",
        port: "-1",
        http_port: "0",
        name: "flag",
        auth: "t2",
      }).options,
    ).toEqual({ host: "127.0.0.1", port: 0, serverName: "flag", auth: { token: "t2" } });
    expect(
      resolveBrokerOptions({ net: "10.0.0.1", port: "0", server_name: "n", http_port: "-1" }).options,
    ).toEqual({
      host: "10.0.0.1",
      port: 4222,
      serverName: "n",
      httpPort: 0,
    });
    expect(resolveBrokerOptions({ user: "u", pass: "p", ports_file_dir: "/tmp/d" }).options).toEqual({
      auth: { users: [{ user: "u", password: "p" }] },
      portsFileDir: "/tmp/d",
    });
    expect(() => resolveBrokerOptions({ config: file, user: "u", pass: "p" })).toThrow(
      "--user: cannot have both a token and users",
    );
  });

  it("writes the ports file as nats-server does", () => {
    expect(portsFileContent("127.0.0.1", 4222)).toEqual({ nats: ["nats://127.0.0.1:4222"] });
    expect(portsFileContent("::1", 4222, { host: "127.0.0.1", port: 8222 })).toEqual({
      nats: ["nats://[::1]:4222"],
      monitoring: ["http://127.0.0.1:8222"],
    });
    const any = advertisedHosts("0.0.0.0");
    expect(any[0]).toBe("127.0.0.1");
    expect(any.every((h) => !h.includes(":"))).toBe(true);
    expect(portsFilePath("/d", 42)).toBe("/d/nats-server_42.ports");
  });
});

// These start a real broker through the CLI (they need src/broker's startBroker).
describe("bridgehead broker (running)", () => {
  it("starts from a config, writes the ports file, logs 'listening', serves clients, stops on SIGTERM", async () => {
    const dir = tmp();
    const file = writeConf(dir, `listen: 127.0.0.1:-1\nports_file_dir: "${dir}"\n`);
    const b = await startCliBroker(dir, ["-c", file]);
    expect(b.ports).toEqual({ nats: [`nats://127.0.0.1:${b.port}`] });
    expect(b.port).toBeGreaterThan(0);
    const listening = await waitFor(
      () => logLines(b.proc.out.stderr).find((l) => l["msg"] === "listening"),
      "the 'listening' log line",
    );
    expect(listening["url"]).toBe(`nats://127.0.0.1:${b.port}`);

    const nc = await natsConnect({ servers: b.url });
    expect(await roundTrip(nc)).toBe("hello via bridgehead");
    await nc.close();

    b.proc.child.kill("SIGTERM");
    const { code } = await withDeadline(b.proc.closed, 10_000, "broker exit after SIGTERM");
    expect(code).toBe(0);
    expect(existsSync(b.portsPath)).toBe(false);
  });

  it("stops cleanly on SIGINT", async () => {
    const b = await startFlagBroker();
    b.proc.child.kill("SIGINT");
    const { code, signal } = await withDeadline(b.proc.closed, 10_000, "broker exit after SIGINT");
    expect({ code, signal, stderr: b.proc.out.stderr }).toEqual({
      code: 0,
      signal: null,
      stderr: expect.any(String),
    });
    expect(existsSync(b.portsPath)).toBe(false);
  });

  it("starts from flags alone (-a, -p -1, --ports_file_dir, --name)", async () => {
    const b = await startFlagBroker("--name", "cli-node");
    expect(b.ports.nats).toEqual([`nats://127.0.0.1:${b.port}`]);
    const nc = await natsConnect({ servers: b.url });
    expect(nc.info?.server_name).toBe("cli-node");
    expect(await roundTrip(nc)).toBe("hello via bridgehead");
  });

  it("flags override the config file", async () => {
    const dir = tmp();
    const file = writeConf(dir, `listen: 127.0.0.1:-1\nports_file_dir: "${dir}"\nserver_name: from-file\n`);
    const b = await startCliBroker(dir, ["-c", file, "--server_name", "from-flag"]);
    const nc = await natsConnect({ servers: b.url });
    expect(nc.info?.server_name).toBe("from-flag");
  });

  it("--user/--pass require those credentials", async () => {
    const b = await startFlagBroker("--user", "alice", "--pass", "s3cret");
    await expect(natsConnect({ servers: b.url })).rejects.toThrow(/authorization/i);
    await expect(natsConnect({ servers: b.url, user: "alice", pass: "wrong" })).rejects.toThrow(
      /authorization/i,
    );
    const nc = await natsConnect({ servers: b.url, user: "alice", pass: "s3cret" });
    expect(await roundTrip(nc)).toBe("hello via bridgehead");
  });

  it("--auth requires the token", async () => {
    const b = await startFlagBroker("--auth", "t0ken");
    await expect(natsConnect({ servers: b.url, token: "nope" })).rejects.toThrow(/authorization/i);
    const nc = await natsConnect({ servers: b.url, token: "t0ken" });
    expect(await roundTrip(nc)).toBe("hello via bridgehead");
  });

  it("config authorization users are enforced", async () => {
    const dir = tmp();
    const file = writeConf(
      dir,
      `listen: 127.0.0.1:-1\nports_file_dir: "${dir}"\nauthorization { users: [ { user: a, password: pa }, { user: b, password: pb } ] }\n`,
    );
    const b = await startCliBroker(dir, ["-c", file]);
    await expect(natsConnect({ servers: b.url, user: "a", pass: "pb" })).rejects.toThrow(/authorization/i);
    const nc = await natsConnect({ servers: b.url, user: "b", pass: "pb" });
    expect(await roundTrip(nc)).toBe("hello via bridgehead");
  });

  it("-m -1 starts monitoring and lists it in the ports file", async () => {
    const b = await startFlagBroker("-m", "-1");
    expect(b.ports.monitoring).toHaveLength(1);
    const mon = new URL(b.ports.monitoring![0]!);
    expect(mon.hostname).toBe("127.0.0.1");
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        const s = createConnection({ host: mon.hostname, port: Number(mon.port) }, () => {
          s.destroy();
          resolve();
        });
        s.once("error", reject);
      }),
      5000,
      "a TCP connection to the monitoring port",
    );
  });

  it("warns about unsupported keys but starts", async () => {
    const dir = tmp();
    const file = writeConf(
      dir,
      `listen: 127.0.0.1:-1\nports_file_dir: "${dir}"\njetstream { store_dir: "${dir}/js" }\nleafnodes { listen: 127.0.0.1:-1 }\n`,
    );
    const b = await startCliBroker(dir, ["-c", file]);
    expect(b.proc.out.stderr).toContain(
      `${file}:3:1: 'jetstream' is not supported by bridgehead broker and is ignored`,
    );
    expect(b.proc.out.stderr).toContain(
      `${file}:4:1: 'leafnodes' is not supported by bridgehead broker and is ignored`,
    );
    const nc = await natsConnect({ servers: b.url });
    expect(await roundTrip(nc)).toBe("hello via bridgehead");
  });

  it("exits 1 when the port is taken", async () => {
    const first = await startFlagBroker();
    const r = await runCli(["broker", "-a", "127.0.0.1", "-p", String(first.port)]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("cannot start broker");
  });

  it("works with the shared test harness (startServer('bridgehead'))", async () => {
    const server = await startServer("bridgehead", "jetstream {}");
    try {
      const nc = await natsConnect({ servers: server.url });
      expect(await roundTrip(nc)).toBe("hello via bridgehead");
      await nc.close();
    } finally {
      await server.stop();
    }
    expect(server.process.exitCode).toBe(0);
  });
});

/**
 * Hot reload of `bridgehead up` (child process; `npm run build` first): links added and removed by rewriting
 * the file, an invalid edit rejected while the process keeps serving, SIGHUP, and a log-level change. The
 * gateway state is not exposed over HTTP, so links are observed through the process's JSON logs (stderr) and
 * through messages crossing regions. Every listener is 127.0.0.1:0: in `up` a link is dialed at the running
 * peer's real address. Conditions are polled with deadlines; every process is killed in afterEach.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect, type NatsConnection, StringCodec } from "nats";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, killAllCli, spawnBridgehead, waitForValue } from "../helpers/cli.js";

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

/** `bridgehead up FILE`; the config's logging.level decides (BRIDGEHEAD_LOG_LEVEL is removed). */
const spawnUp = (file: string): CliProcess =>
  spawnBridgehead(["up", file], { env: { BRIDGEHEAD_LOG_LEVEL: undefined } });

const waitFor = <T>(fn: () => T | undefined, what: string, proc: CliProcess, timeoutMs?: number) =>
  waitForValue(fn, what, { proc, timeoutMs });

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "bh-system-reload-"));
  dirs.push(d);
  return d;
}

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [k: string]: unknown;
}

/** The JSON log lines on stderr so far. */
function logs(p: CliProcess): LogLine[] {
  return p.out.stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);
}

/** Wait for the next log line (after the first `skip`) matching `pred`. */
function nextLog(p: CliProcess, skip: number, pred: (l: LogLine) => boolean, what: string): Promise<LogLine> {
  return waitFor(() => logs(p).slice(skip).find(pred), what, p);
}

/** Client URL per region, from the table `up` prints. */
function clientUrls(stdout: string): Map<string, string> | undefined {
  if (!/^links: \d+\/\d+ up$/m.test(stdout)) return undefined;
  const m = new Map<string, string>();
  for (const [, name, url] of stdout.matchAll(/^(\S+)\s+(nats:\/\/\S+)\s/gm)) m.set(name!, url!);
  return m;
}

async function clients(p: CliProcess): Promise<Map<string, NatsConnection>> {
  const urls = await waitFor(() => clientUrls(p.out.stdout), "the region table", p);
  const m = new Map<string, NatsConnection>();
  for (const [name, url] of urls) {
    const nc = await connect({ servers: url });
    connections.push(nc);
    m.set(name, nc);
  }
  return m;
}

/** Publish on `pub` until `sub` receives on `subject` (interest and links take a moment). */
async function expectFlow(
  pub: NatsConnection,
  sub: NatsConnection,
  subject: string,
  p: CliProcess,
): Promise<void> {
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
      `a message on ${subject}`,
      p,
    );
  } finally {
    s.unsubscribe();
  }
}

function config(links: readonly (readonly [string, string])[], extra = ""): string {
  const regions = ["a", "b", "c"]
    .map((r) => `  - name: ${r}\n    broker: { listen: 127.0.0.1:0 }\n    gateway: { listen: 127.0.0.1:0 }\n`)
    .join("");
  const ls = links.map(([x, y]) => `  - between: [${x}, ${y}]\n    token: reload-token-${x}${y}\n`).join("");
  return `${extra}regions:\n${regions}links:\n${ls}`;
}

const isReloaded = (l: LogLine) => l.msg === "config reloaded";

describe("bridgehead up: reload when the file changes", () => {
  it("adds and removes links, rejects an invalid edit and keeps serving", async () => {
    const dir = tmp();
    const file = join(dir, "bridgehead.yaml");
    writeFileSync(
      file,
      config([
        ["a", "b"],
        ["b", "c"],
      ]),
    );
    const p = spawnUp(file);
    const nc = await clients(p);
    expect(p.out.stdout).toContain("links: 2/2 up\n");
    const [na, nb, ncc] = [nc.get("a")!, nc.get("b")!, nc.get("c")!];
    await expectFlow(na, ncc, "r.a-to-c.1", p); // through b

    // Add a <-> c.
    let mark = logs(p).length;
    writeFileSync(
      file,
      config([
        ["a", "b"],
        ["b", "c"],
        ["a", "c"],
      ]),
    );
    const added = await nextLog(p, mark, isReloaded, "the reload that adds a <-> c");
    expect(added).toMatchObject({ linksAdded: ["a <-> c"], linksRemoved: [], needsRestart: [] });
    await nextLog(p, mark, (l) => l.msg === "link up" && l.region === "a" && l.peer === "c", "a <-> c up");

    // Remove b <-> c: c is now reached from b through a only.
    mark = logs(p).length;
    writeFileSync(
      file,
      config([
        ["a", "b"],
        ["a", "c"],
      ]),
    );
    const removed = await nextLog(p, mark, isReloaded, "the reload that removes b <-> c");
    expect(removed).toMatchObject({ linksAdded: [], linksRemoved: ["b <-> c"], needsRestart: [] });
    await nextLog(
      p,
      mark,
      (l) => l.msg === "link lost" && l.region === "b" && l.peer === "c",
      "b <-> c lost",
    );
    await expectFlow(na, ncc, "r.a-to-c.2", p);
    await expectFlow(nb, ncc, "r.b-to-c.2", p); // transit through a now
    await expectFlow(ncc, nb, "r.c-to-b.2", p);

    // An invalid edit: rejected with its problems, the running config stays.
    mark = logs(p).length;
    writeFileSync(
      file,
      config(
        [
          ["a", "b"],
          ["a", "c"],
        ],
        "linkz: []\n",
      ),
    );
    const rejected = await nextLog(
      p,
      mark,
      (l) => l.msg === "config reload rejected: the running config stays",
      "the rejected reload",
    );
    expect(rejected).toMatchObject({ level: 50, why: "file changed" });
    expect(rejected.problems).toEqual([
      `${file}:1:1: linkz: unknown key 'linkz'; did you mean 'links'? (known here: logging, metrics, regions, links, chaos)`,
    ]);
    expect(p.out.stderr).not.toMatch(/reload-token-/);
    await expectFlow(nb, ncc, "r.b-to-c.3", p);
    expect(logs(p).slice(mark).filter(isReloaded)).toEqual([]);
    expect(p.child.exitCode).toBeNull();

    // A region setting changed: reported as needing a restart, links still applied.
    mark = logs(p).length;
    writeFileSync(
      file,
      config([
        ["a", "b"],
        ["a", "c"],
      ]).replace(
        "  - name: c\n    broker: { listen: 127.0.0.1:0 }",
        "  - name: c\n    broker: { listen: 127.0.0.1:0, max_payload: 1MB }",
      ),
    );
    const restart = await nextLog(p, mark, isReloaded, "the reload with a region change");
    expect(restart).toMatchObject({
      linksAdded: [],
      linksRemoved: [],
      needsRestart: ["region c settings changed"],
    });
    await nextLog(
      p,
      mark,
      (l) => l.msg === "some changes need a restart and were not applied",
      "the warning",
    );
  });
});

describe("bridgehead up: SIGHUP and the log level", () => {
  it("SIGHUP reloads (the file watcher sees nothing here) and a new logging.level applies", async () => {
    // The config path is a symlink into another directory: writing the target changes no entry of the
    // watched directory, so only SIGHUP can make the process read the new content.
    const real = join(tmp(), "real");
    mkdirSync(real);
    const target = join(real, "config.yaml");
    const file = join(tmp(), "bridgehead.yaml");
    const links = [
      ["a", "b"],
      ["b", "c"],
    ] as const;
    writeFileSync(target, config(links, "logging: { level: info }\n"));
    symlinkSync(target, file);
    const p = spawnUp(file);
    const nc = await clients(p);
    expect(logs(p).some((l) => l.level < 30)).toBe(false);

    // Invalid content + SIGHUP: rejected, and the log says why it reloaded.
    let mark = logs(p).length;
    writeFileSync(target, config(links, "logging: { level: chatty }\n"));
    p.child.kill("SIGHUP");
    const rejected = await nextLog(
      p,
      mark,
      (l) => l.msg.startsWith("config reload rejected"),
      "the SIGHUP reload",
    );
    expect(rejected).toMatchObject({ why: "SIGHUP" });
    expect(rejected.problems).toEqual([
      `${file}:1:19: logging.level: expected one of "trace", "debug", "info", "warn", "error", "fatal", found "chatty"`,
    ]);

    // Valid content with level debug + SIGHUP: applied; debug lines appear (a client closing is one).
    mark = logs(p).length;
    writeFileSync(target, config(links, "logging: { level: debug }\n"));
    p.child.kill("SIGHUP");
    await nextLog(p, mark, isReloaded, "the SIGHUP reload to debug");
    const extra = await connect({
      servers: (await waitFor(() => clientUrls(p.out.stdout), "urls", p)).get("b")!,
    });
    await extra.close();
    await nextLog(p, mark, (l) => l.level === 20, "a debug line");
    await expectFlow(nc.get("a")!, nc.get("c")!, "hup.a-to-c", p);
    expect(p.child.exitCode).toBeNull();

    // And up to warn: info lines stop. The reload's own summary is info, so it is not logged; a region change
    // in the same edit makes the reload log a warning we can wait for.
    mark = logs(p).length;
    writeFileSync(
      target,
      config(links, "logging: { level: warn }\n").replace(
        "name: c\n    broker: { listen: 127.0.0.1:0 }",
        "name: c\n    broker: { listen: 127.0.0.1:0, max_payload: 2MB }",
      ),
    );
    p.child.kill("SIGHUP");
    await nextLog(
      p,
      mark,
      (l) => l.msg === "some changes need a restart and were not applied",
      "the warning",
    );
    const after = logs(p).slice(mark);
    expect(after.filter((l) => l.level <= 30)).toEqual([]);
  });
});

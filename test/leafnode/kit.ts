/**
 * Real nats-server clusters for the leafnode tests: every server on 127.0.0.1 with ports picked free up
 * front (the leafnode port is not in nats-server's ports file, and a restarted node must come back on the
 * same ports so its routes re-form). Readiness is read from the server's log, never waited for blindly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { type Logger, pino } from "pino";
import {
  type RunningLeafnodeRegion,
  type RunningRegion,
  startLeafnodeRegion,
  startRegion,
} from "../../src/region/region.js";

export const logger: Logger = pino({ level: process.env.BH_TEST_LOG ?? "silent" });

export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Ports free right now (all held open together, so they are distinct). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<import("node:net").Server>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    return typeof a === "object" && a !== null ? a.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface NatsNode {
  readonly name: string;
  readonly clientUrl: string;
  readonly leafUrl: string;
  running(): boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Resolves once the route to the other node is up (clusters of two). */
  routed(): Promise<void>;
}

export interface NatsCluster {
  readonly name: string;
  readonly nodes: readonly NatsNode[];
  readonly leafUrls: string[];
  close(): Promise<void>;
}

interface NodePorts {
  client: number;
  cluster: number;
  leaf: number;
}

export async function startNatsCluster(
  name: string,
  size: number,
  opts: { user?: string; password?: string } = {},
): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), `bh-leaf-${name}-`));
  const flat = await freePorts(size * 3);
  const ports: NodePorts[] = Array.from({ length: size }, (_, i) => ({
    client: flat[i * 3]!,
    cluster: flat[i * 3 + 1]!,
    leaf: flat[i * 3 + 2]!,
  }));
  const auth =
    opts.user === undefined
      ? ""
      : `, authorization { user: "${opts.user}", password: "${opts.password ?? ""}" }`;
  const nodes = ports.map((p, i) => {
    const serverName = `${name}-${i}`;
    const routes = ports
      .filter((_, j) => j !== i)
      .map((o) => `"nats-route://127.0.0.1:${o.cluster}"`)
      .join(", ");
    const conf = join(dir, `${serverName}.conf`);
    writeFileSync(
      conf,
      [
        `server_name: ${serverName}`,
        `listen: 127.0.0.1:${p.client}`,
        `leafnodes { listen: 127.0.0.1:${p.leaf}${auth} }`,
        size > 1 ? `cluster { name: ${name}, listen: 127.0.0.1:${p.cluster}, routes: [${routes}] }` : "",
        "",
      ].join("\n"),
    );
    return new Node(serverName, conf, p, size > 1);
  });
  try {
    await Promise.all(nodes.map((n) => n.start()));
    if (size > 1) await Promise.all(nodes.map((n) => n.routed()));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  return {
    name,
    nodes,
    leafUrls: nodes.map((n) => n.leafUrl),
    async close() {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

class Node implements NatsNode {
  readonly clientUrl: string;
  readonly leafUrl: string;
  private child: ChildProcess | undefined;
  private log = "";

  constructor(
    readonly name: string,
    private readonly conf: string,
    ports: NodePorts,
    private readonly clustered: boolean,
  ) {
    this.clientUrl = `nats://127.0.0.1:${ports.client}`;
    this.leafUrl = `nats-leaf://127.0.0.1:${ports.leaf}`;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null;
  }

  async start(): Promise<void> {
    this.log = "";
    const child = spawn("nats-server", ["-c", this.conf], { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    child.stderr?.on("data", (d: Buffer) => {
      this.log += d.toString();
    });
    await waitUntil(
      () => {
        if (child.exitCode !== null) throw new Error(`${this.name} exited: ${this.log}`);
        return this.log.includes("Server is ready");
      },
      `${this.name} ready`,
      10_000,
    );
  }

  /** The route to the other node is up (clusters of two). */
  routed(): Promise<void> {
    return waitUntil(
      () => !this.clustered || this.log.includes("Route connection created"),
      `${this.name} routed`,
    );
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }
}

/** A nats-server-backed region: the gateway plus its leafnode adapter, fast timings for tests. */
export function leafRegion(
  name: string,
  urls: readonly string[],
  extra: { user?: string; password?: string } = {},
): Promise<RunningLeafnodeRegion> {
  return startLeafnodeRegion({
    name,
    leafnode: {
      urls,
      ...extra,
      backoff: { initialMs: 50, maxMs: 500 },
      handshakeTimeoutMs: 3000,
      pingIntervalMs: 1000,
    },
    gateway: { token: "t", listen: { host: "127.0.0.1", port: 0 }, heartbeatMs: 500, advertiseMs: 1000 },
    logger,
  });
}

export function embeddedRegion(name: string): Promise<RunningRegion> {
  return startRegion({
    name,
    broker: { host: "127.0.0.1", port: 0 },
    gateway: { token: "t", listen: { host: "127.0.0.1", port: 0 }, heartbeatMs: 500, advertiseMs: 1000 },
    logger,
  });
}

/** Clients opened by a test, closed by `closeAll`. */
export class Clients {
  private readonly all: NatsConnection[] = [];

  async open(url: string | string[], opts: { reconnect?: boolean } = {}): Promise<NatsConnection> {
    const nc = await connect({
      servers: url,
      reconnect: opts.reconnect ?? true,
      reconnectTimeWait: 100,
      maxReconnectAttempts: -1,
    });
    this.all.push(nc);
    return nc;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.all.splice(0).map((nc) => nc.close().catch(() => {})));
  }
}

export interface Received {
  readonly subject: string;
  readonly data: string;
  readonly id: string | undefined;
}

/** Messages of one subscription, collected as they arrive; canaries of `probe` are kept apart. */
export interface Collected {
  readonly msgs: Received[];
  /** Canaries received, in total and per subject. */
  probes: number;
  readonly probeSubjects: Map<string, number>;
  unsubscribe(): void;
}

export function collect(nc: NatsConnection, subject: string, queue?: string): Collected {
  const out: Collected = {
    msgs: [],
    probes: 0,
    probeSubjects: new Map(),
    unsubscribe: () => sub.unsubscribe(),
  };
  const sub = nc.subscribe(subject, queue === undefined ? {} : { queue });
  (async () => {
    for await (const m of sub) {
      const data = new TextDecoder().decode(m.data);
      if (data === PROBE) {
        out.probes++;
        out.probeSubjects.set(m.subject, (out.probeSubjects.get(m.subject) ?? 0) + 1);
      } else out.msgs.push({ subject: m.subject, data, id: m.headers?.get("Msg-Id") || undefined });
    }
  })().catch(() => {});
  return out;
}

const PROBE = "__probe__";

/**
 * Publish canaries on `subject` until `seen()`: interest crosses routes, leafnode connections and links
 * asynchronously, and the only proof the whole path is in place is a message that made it.
 */
export async function probe(
  nc: NatsConnection,
  subject: string,
  seen: () => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!seen()) {
    if (Date.now() > deadline) throw new Error(`no probe on ${subject} arrived within ${timeoutMs} ms`);
    nc.publish(subject, new TextEncoder().encode(PROBE));
    await nc.flush();
    const until = Date.now() + 100;
    while (!seen() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  }
}

/** Count occurrences per value. */
export function counts(values: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

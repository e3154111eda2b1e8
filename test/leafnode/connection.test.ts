/**
 * The leafnode connection against a scripted hub (a TCP server speaking the hub side as nats-server does,
 * protocol reference §2.1 and §2.11), for what a healthy nats-server never does on cue: stop answering
 * PINGs (stale detection), report a loop, be the wrong kind of port. Also: CONNECT carries credentials,
 * PINGs are answered, and a refused URL fails over to the next at once.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { LeafConnection, type LeafHandlers } from "../../src/region/leafnode/connection.js";
import { freePorts, logger, waitUntil } from "./kit.js";

interface HubConn {
  readonly socket: Socket;
  readonly lines: string[];
  readonly openedAt: number;
}

/** A hub that performs the handshake and then does what the test's `behave` says with each line. */
class ScriptedHub {
  readonly conns: HubConn[] = [];
  private server: Server | undefined;
  port = 0;

  constructor(
    private readonly opts: {
      /** The first INFO; default a leafnode port's. */
      info?: object;
      /** Answer PINGs after the handshake's; default true. */
      answerPings?: () => boolean;
      /** Sent right after the connect_info INFO. */
      afterConnect?: string;
    } = {},
  ) {}

  async start(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const a = server.address();
    this.port = typeof a === "object" && a !== null ? a.port : 0;
  }

  get url(): string {
    return `nats-leaf://127.0.0.1:${this.port}`;
  }

  private accept(socket: Socket): void {
    const conn: HubConn = { socket, lines: [], openedAt: Date.now() };
    this.conns.push(conn);
    socket.on("error", () => {});
    const info = this.opts.info ?? {
      server_id: "FAKE",
      client_id: 7,
      leafnode_urls: [`127.0.0.1:${this.port}`],
    };
    socket.write(`INFO ${JSON.stringify(info)} \r\n`);
    let buf = "";
    let pings = 0;
    socket.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (let nl = buf.indexOf("\r\n"); nl >= 0; nl = buf.indexOf("\r\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        conn.lines.push(line);
        if (line.startsWith("CONNECT ")) {
          socket.write(
            `INFO {"server_id":"FAKE","client_id":7,"connect_info":true,"remote_account":"$G"} \r\nLS+ hub.sub\r\nLS+ hub.q g 3\r\n${this.opts.afterConnect ?? ""}`,
          );
        } else if (line === "PING") {
          pings++;
          if (pings === 1 || (this.opts.answerPings?.() ?? true)) socket.write("PONG\r\n");
        }
      }
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise((r) => this.server?.close(r));
  }
}

function recorder(): LeafHandlers & { events: string[] } {
  const events: string[] = [];
  return {
    events,
    onReady: () => events.push("ready"),
    onSynced: () => events.push("synced"),
    onOp: (op) =>
      events.push(op.type === "sub" ? `sub ${op.subject} ${op.queue ?? "-"} ${op.weight}` : op.type),
    onDown: (cause) => events.push(`down ${cause}`),
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(hub: ScriptedHub): Promise<ScriptedHub> {
  await hub.start();
  cleanups.push(() => hub.close());
  return hub;
}

function leaf(
  urls: string[],
  h: LeafHandlers,
  extra: Partial<ConstructorParameters<typeof LeafConnection>[0]> = {},
) {
  const c = new LeafConnection(
    { urls, region: "x", logger, backoff: { initialMs: 20, maxMs: 50 }, pingIntervalMs: 50, ...extra },
    h,
  );
  cleanups.push(() => c.close());
  c.start();
  return c;
}

describe("leafnode connection against a scripted hub", () => {
  it("handshakes with credentials, reports the snapshot, answers PINGs, and fails over past a refused URL", async () => {
    const hub = await started(new ScriptedHub());
    const [closed] = await freePorts(1);
    const h = recorder();
    const c = leaf([`nats-leaf://127.0.0.1:${closed}`, hub.url], h, { user: "u", password: "p w" });
    await waitUntil(() => c.state === "up", "up");
    expect(c.url).toBe(hub.url);
    expect(c.stats.failures).toBe(1);
    expect(h.events.slice(0, 4)).toEqual(["ready", "sub hub.sub - 1", "sub hub.q g 3", "synced"]);
    const connect = JSON.parse(hub.conns[0]!.lines[0]!.slice("CONNECT ".length)) as Record<string, unknown>;
    expect(connect).toMatchObject({
      name: "bridgehead-x",
      cluster: "bridgehead-x",
      headers: true,
      user: "u",
      pass: "p w",
    });
    expect(connect).not.toHaveProperty("lang");
    hub.conns[0]!.socket.write("PING\r\n");
    await waitUntil(() => hub.conns[0]!.lines.filter((l) => l === "PONG").length === 1, "PONG from the leaf");
    // Keepalive PINGs go out and are answered: the connection stays.
    await waitUntil(() => hub.conns[0]!.lines.filter((l) => l === "PING").length >= 4, "keepalive pings");
    expect(c.state).toBe("up");
    expect(hub.conns).toHaveLength(1);
  });

  it("drops a stale connection (PINGs unanswered) and redials", async () => {
    let answer = true;
    const hub = await started(new ScriptedHub({ answerPings: () => answer }));
    const h = recorder();
    const c = leaf([hub.url], h);
    await waitUntil(() => c.state === "up", "up");
    answer = false;
    await waitUntil(() => h.events.some((e) => e.startsWith("down")), "stale connection dropped", 5000);
    answer = true;
    await waitUntil(() => hub.conns.length === 2 && c.state === "up", "redialed");
    expect(c.stats).toMatchObject({ connects: 2, disconnects: 1 });
  });

  it("refuses a port that is not a leafnode port", async () => {
    const hub = await started(
      new ScriptedHub({ info: { server_id: "CLIENTPORT", client_id: 3, headers: true } }),
    );
    const h = recorder();
    const c = leaf([hub.url], h);
    await waitUntil(() => c.stats.failures >= 2, "two refusals");
    expect(h.events).toEqual([]);
    expect(hub.conns.every((x) => x.lines.length === 0)).toBe(true);
  });

  it("waits loopDelayMs before redialing after the hub reports a loop", async () => {
    const hub = await started(
      new ScriptedHub({
        afterConnect: `-ERR 'Loop detected for leafnode account="$G". Delaying attempt to reconnect for 30s'\r\n`,
      }),
    );
    const c = leaf([hub.url], recorder(), { loopDelayMs: 300 });
    await waitUntil(() => hub.conns.length === 2, "redial after the loop delay", 5000);
    expect(hub.conns[1]!.openedAt - hub.conns[0]!.openedAt).toBeGreaterThanOrEqual(290);
    await c.close();
    expect(c.state).toBe("closed");
  });
});

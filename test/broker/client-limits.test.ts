/**
 * The official `nats` client against each server kind: limits and resilience. max_payload as announced in INFO
 * and enforced by the client, reconnect to a restarted server on the same port (subscriptions re-established),
 * and a slow consumer being cut off by the server. Every test must pass unchanged against nats-server 2.9.10
 * and `bridgehead broker`.
 *
 * `BH_KINDS=nats-server` (comma-separated) restricts the kinds, e.g. to validate against nats-server alone.
 */
import type { Socket } from "node:net";
import {
  type ConnectionOptions,
  ErrorCode,
  Events,
  headers,
  type Msg,
  type NatsError,
  type Status,
} from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { barrier, collector, sc, statusLog, trackedConnect, unique, within } from "../helpers/client-kit.js";
import { type RunningServer, selectedKinds, startServer } from "../helpers/servers.js";

describe.each(selectedKinds())("nats client limits and resilience against %s", (kind) => {
  const client = trackedConnect();
  let servers: RunningServer[] = [];

  async function start(conf = ""): Promise<RunningServer> {
    const s = await startServer(kind, conf);
    servers.push(s);
    return s;
  }

  afterAll(async () => {
    const all = servers;
    servers = [];
    await Promise.all(all.map((s) => s.stop()));
  });

  describe("max_payload", () => {
    let server: RunningServer;
    beforeAll(async () => {
      server = await start("max_payload: 1024");
    });

    it("announces max_payload in INFO", async () => {
      const nc = await client(server);
      expect(nc.info?.max_payload).toBe(1024);
    });

    it("the client refuses to publish more than max_payload; up to the limit goes through", async () => {
      const [sub, pub] = [await client(server), await client(server)];
      const subject = `${unique()}.mp`;
      const col = collector();
      sub.subscribe(subject, { callback: col.callback });
      await sub.flush();

      const tooBig = (n: number, opts = {}) => {
        try {
          pub.publish(subject, new Uint8Array(n), opts);
          return undefined;
        } catch (e) {
          return (e as NatsError).code;
        }
      };
      expect(tooBig(2048)).toBe(ErrorCode.MaxPayloadExceeded);
      expect(tooBig(1025)).toBe(ErrorCode.MaxPayloadExceeded);
      expect(tooBig(1024)).toBeUndefined();
      // headers count towards the limit
      const h = headers();
      h.set("X-Pad", "p");
      expect(tooBig(1024, { headers: h })).toBe(ErrorCode.MaxPayloadExceeded);
      const hlen = (h as unknown as { encode(): Uint8Array }).encode().length;
      expect(tooBig(1024 - hlen, { headers: h })).toBeUndefined();

      await barrier(pub, sub);
      expect(col.msgs.map((m) => m.data.length)).toEqual([1024, 1024 - hlen]);
      expect(col.msgs[1]!.headers?.get("X-Pad")).toBe("p");
      expect(pub.isClosed()).toBe(false);
      expect(sub.isClosed()).toBe(false);
    });

    it("a request above max_payload is refused locally and the connection stays usable", async () => {
      const [svc, req] = [await client(server), await client(server)];
      const subject = `${unique()}.mpreq`;
      svc.subscribe(subject, { callback: (_e, m) => m.respond(m.data) });
      await svc.flush();
      let code: string | undefined;
      try {
        await req.request(subject, new Uint8Array(2048), { timeout: 1000 });
      } catch (e) {
        code = (e as NatsError).code;
      }
      expect(code).toBe(ErrorCode.MaxPayloadExceeded);
      const ok = await req.request(subject, new Uint8Array(1000), { timeout: 2000 });
      expect(ok.data.length).toBe(1000);
    });
  });

  describe("reconnect", () => {
    it("re-establishes subscriptions after the server restarts on the same port", async () => {
      const first = await start();
      const port = first.port;
      const opts: ConnectionOptions = {
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 50,
        reconnectJitter: 0,
        reconnectJitterTLS: 0,
      };
      const [sub, pub] = [await client(first, opts), await client(first, opts)];
      const firstServerId = sub.info?.server_id;
      const [subLog, pubLog] = [statusLog(sub), statusLog(pub)];
      const p = unique();
      const plain = collector();
      const queued = collector();
      const limited = collector();
      sub.subscribe(`${p}.plain`, { callback: plain.callback });
      sub.subscribe(`${p}.*`, { queue: "q", callback: queued.callback });
      sub.subscribe(`${p}.limited`, { max: 3, callback: limited.callback });
      sub.subscribe(`${p}.svc`, { callback: (_e, m) => m.respond(sc.encode(`re:${sc.decode(m.data)}`)) });
      await sub.flush();
      pub.publish(`${p}.plain`, sc.encode("before"));
      pub.publish(`${p}.limited`, sc.encode("L0"));
      await barrier(pub, sub);
      expect(plain.msgs.length).toBe(1);
      expect(limited.msgs.length).toBe(1);

      await first.stop();
      const isDisconnect = (s: Status) => s.type === Events.Disconnect;
      await subLog.waitFor(isDisconnect, 5000);
      await pubLog.waitFor(isDisconnect, 5000);

      const second = await start(`listen: 127.0.0.1:${port}`);
      expect(second.port).toBe(port);
      const isReconnect = (s: Status) => s.type === Events.Reconnect;
      await subLog.waitFor(isReconnect, 10_000);
      await pubLog.waitFor(isReconnect, 10_000);
      expect(sub.isClosed()).toBe(false);
      expect(sub.info?.server_id).toBeDefined();
      expect(sub.info?.server_id).not.toBe(firstServerId);

      // (nats.js 2.29 clears its outbound buffer on every dial, so publishes made while disconnected are
      // lost: not asserted.) The subscriber re-sent its SUBs before this flush's PING.
      await sub.flush();
      for (let i = 0; i < 5; i++) {
        pub.publish(`${p}.plain`, sc.encode(`after${i}`));
        pub.publish(`${p}.limited`, sc.encode(`L${i + 1}`));
      }
      await barrier(pub, sub);
      expect(plain.msgs.map((m) => sc.decode(m.data))).toEqual([
        "before",
        "after0",
        "after1",
        "after2",
        "after3",
        "after4",
      ]);
      // the queue sub on p.* (its only member) saw every publish to p.plain and p.limited
      expect(queued.msgs.length).toBe(2 + 10);
      // the client re-sends a plain SUB (no UNSUB max) and enforces the remaining budget (3 - 1) itself
      expect(limited.msgs.map((m) => sc.decode(m.data))).toEqual(["L0", "L1", "L2"]);
      const reply: Msg = await pub.request(`${p}.svc`, sc.encode("x"), { timeout: 2000 });
      expect(sc.decode(reply.data)).toBe("re:x");
    });

    it("without reconnect, a server stop closes the connection and closed() resolves", async () => {
      const server = await start();
      const nc = await client(server);
      await nc.flush();
      await server.stop();
      const result = await within(nc.closed(), 5000, "closed() after server stop");
      // a clean server shutdown is not reported as an error by the client
      expect(result).toBeUndefined();
      expect(nc.isClosed()).toBe(true);
    });
  });

  describe("slow consumer", () => {
    let server: RunningServer;
    beforeAll(async () => {
      // nats-server refuses max_pending below max_payload, so both are set
      server = await start("max_pending: 65536\nmax_payload: 65536");
    });

    it("the server refuses to start when max_payload exceeds max_pending", async () => {
      // nats-server: "max_payload (1048576) cannot be higher than max_pending (65536)"
      await expect(start("max_pending: 65536")).rejects.toThrow(/exited early.*max_payload/s);
    });

    it("cuts off a subscriber that stops reading; the publisher and other connections stay up", async () => {
      const [slow, pub] = [await client(server), await client(server)];
      const subject = `${unique()}.flood`;
      const slowCol = collector();
      slow.subscribe(subject, { callback: slowCol.callback });
      await slow.flush();
      const slowLog = statusLog(slow);

      // The client always reads eagerly, so stop reading at the socket (a test-only reach into the
      // transport): the server's pending bytes for this connection can then only grow.
      const socket = (slow as unknown as { protocol: { transport: { socket: Socket } } }).protocol.transport
        .socket;
      socket.pause();
      const chunk = new Uint8Array(32 * 1024);
      const n = 512; // 16 MiB: far more than the kernel socket buffers can absorb
      for (let i = 0; i < n; i++) pub.publish(subject, chunk);
      // once the publisher's PING is answered the server has tried to queue all of it for `slow`
      await within(pub.flush(), 10_000, "publisher flush");
      socket.resume();
      await slowLog.waitFor((s) => s.type === Events.Disconnect, 5000);
      await within(slow.closed(), 5000, "slow consumer closed");
      expect(slowCol.msgs.length).toBeLessThan(n);
      // nats-server 2.9.10 just closes a slow consumer: no -ERR reaches the client
      expect(slowLog.events.filter((s) => s.type === Events.Error)).toEqual([]);

      // the publisher is unaffected, and a new subscriber gets traffic normally
      const other = await client(server);
      const otherCol = collector();
      other.subscribe(subject, { callback: otherCol.callback });
      await other.flush();
      pub.publish(subject, sc.encode("after"));
      await barrier(pub, other);
      expect(otherCol.msgs.map((m) => sc.decode(m.data))).toEqual(["after"]);
      expect(pub.isClosed()).toBe(false);
    });
  });
});

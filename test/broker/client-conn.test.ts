/**
 * The official `nats` client against each server kind: connection-level features. INFO as the client sees it,
 * flush and RTT, verbose/pedantic clients, auto-unsubscribe (UNSUB <sid> <max>), subscription and connection
 * drain, close. Every test must pass unchanged against nats-server 2.9.10 and `bridgehead broker`.
 *
 * `BH_KINDS=nats-server` (comma-separated) restricts the kinds, e.g. to validate against nats-server alone.
 */
import { type ConnectionOptions, ErrorCode, Events, type NatsError } from "nats";
import { describe, expect, it } from "vitest";
import { barrier, collector, iterate, sc, trackedConnect, unique, within } from "../helpers/client-kit.js";
import { useServer } from "../helpers/server-hooks.js";
import { selectedKinds } from "../helpers/servers.js";

describe.each(selectedKinds())("nats client connection features against %s", (kind) => {
  const server = useServer(kind);
  const connectTracked = trackedConnect();
  const client = (opts: ConnectionOptions = {}) => connectTracked(server(), opts);

  describe("INFO, flush and RTT", () => {
    it("exposes the INFO fields the client relies on", async () => {
      const nc = await client();
      const info = nc.info;
      expect(info).toBeDefined();
      if (!info) return;
      expect(typeof info.server_id).toBe("string");
      expect(info.server_id.length).toBeGreaterThan(0);
      expect(info.proto).toBe(1);
      expect(info.headers).toBe(true);
      expect(info.max_payload).toBe(1024 * 1024);
      // the client parses `version` as semver and gates features (headers, no_responders) on it
      expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
      const [major, minor] = info.version.split(".").map(Number) as [number, number];
      expect(major > 2 || (major === 2 && minor >= 2)).toBe(true);
      expect(info.port).toBe(server().port);
      expect(typeof info.client_id).toBe("number");
      expect(info.auth_required ?? false).toBe(false);
      expect(nc.getServer()).toBe(`127.0.0.1:${server().port}`);
    });

    it("assigns each connection its own client_id", async () => {
      const [a, b] = [await client(), await client()];
      expect(a.info?.client_id).not.toBe(b.info?.client_id);
      expect(a.info?.server_id).toBe(b.info?.server_id);
    });

    it("answers flush() and rtt(), also many in parallel", async () => {
      const nc = await client();
      await within(nc.flush(), 2000, "flush");
      const rtt = await within(nc.rtt(), 2000, "rtt");
      expect(Number.isFinite(rtt)).toBe(true);
      expect(rtt).toBeGreaterThanOrEqual(0);
      expect(rtt).toBeLessThan(1000);
      await within(Promise.all(Array.from({ length: 200 }, () => nc.flush())), 5000, "200 parallel flushes");
    });

    it("counts messages and bytes in the client's stats consistently with what was sent", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.stats`;
      sub.subscribe(subject);
      await sub.flush();
      for (let i = 0; i < 10; i++) pub.publish(subject, new Uint8Array(100));
      await barrier(pub, sub);
      expect(pub.stats().outMsgs).toBe(10);
      expect(pub.stats().outBytes).toBe(1000);
      expect(sub.stats().inMsgs).toBe(10);
      expect(sub.stats().inBytes).toBe(1000);
    });

    it("works for verbose and pedantic clients (+OK after each op)", async () => {
      const nc = await client({ verbose: true, pedantic: true });
      const subject = `${unique()}.verbose`;
      const col = collector();
      nc.subscribe(subject, { callback: col.callback });
      for (let i = 0; i < 5; i++) nc.publish(subject, sc.encode(String(i)));
      await within(nc.flush(), 2000, "flush");
      await col.waitFor(5);
      expect(col.msgs.map((m) => sc.decode(m.data))).toEqual(["0", "1", "2", "3", "4"]);
      nc.subscribe(`${subject}.svc`, {
        callback: (_err, m) => m.respond(sc.encode(`re:${sc.decode(m.data)}`)),
      });
      const reply = await nc.request(`${subject}.svc`, sc.encode("r"), { timeout: 2000 });
      expect(sc.decode(reply.data)).toBe("re:r");
      expect(nc.isClosed()).toBe(false);
    });

    it("keeps the connection open after an invalid subscription subject (async -ERR only)", async () => {
      const nc = await client();
      const errors: string[] = [];
      let sawError: () => void = () => undefined;
      const firstError = new Promise<void>((resolve) => {
        sawError = resolve;
      });
      (async () => {
        for await (const s of nc.status()) {
          if (s.type === Events.Error) {
            errors.push(String(s.data));
            sawError();
          }
        }
      })().catch(() => undefined);
      const bad = collector();
      // nats-server answers `-ERR 'Invalid Subject'` and keeps the connection
      nc.subscribe(`${unique()}..bad`, { callback: bad.callback });
      await within(nc.flush(), 2000, "flush after bad SUB");
      await within(firstError, 2000, "async error for the invalid subject");
      expect(nc.isClosed()).toBe(false);
      const subject = `${unique()}.good`;
      const col = collector();
      nc.subscribe(subject, { callback: col.callback });
      nc.publish(subject, sc.encode("ok"));
      await col.waitFor(1);
      expect(errors).toEqual([ErrorCode.ProtocolError]);
      expect(bad.msgs).toEqual([]);
    });
  });

  describe("auto-unsubscribe (UNSUB max)", () => {
    it("sub.unsubscribe(2) then 5 publishes: exactly 2 delivered and the iterator ends", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.max2`;
      const s = sub.subscribe(subject);
      s.unsubscribe(2);
      await sub.flush();
      for (let i = 0; i < 5; i++) pub.publish(subject, sc.encode(String(i)));
      const got = await iterate(s, 5000, "max 2");
      expect(got.map((m) => sc.decode(m.data))).toEqual(["0", "1"]);
      expect(s.isClosed()).toBe(true);
      await barrier(pub, sub);
      // the server itself stopped after 2 (the client would also drop extras, so count the wire)
      expect(sub.stats().inMsgs).toBe(2);
    });

    it("subscribe({max: 3}) delivers exactly 3", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.max3`;
      const s = sub.subscribe(subject, { max: 3 });
      await sub.flush();
      for (let i = 0; i < 10; i++) pub.publish(subject, sc.encode(String(i)));
      const got = await iterate(s, 5000, "max 3");
      expect(got.map((m) => sc.decode(m.data))).toEqual(["0", "1", "2"]);
      expect(s.getReceived()).toBe(3);
      await barrier(pub, sub);
      expect(sub.stats().inMsgs).toBe(3);
    });

    it("a max at or below what was already received unsubscribes at once", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.maxlow`;
      const col = collector();
      const s = sub.subscribe(subject, { callback: col.callback });
      await sub.flush();
      for (let i = 0; i < 3; i++) pub.publish(subject, sc.encode(String(i)));
      await col.waitFor(3);
      s.unsubscribe(2);
      await sub.flush();
      for (let i = 3; i < 6; i++) pub.publish(subject, sc.encode(String(i)));
      await barrier(pub, sub);
      expect(col.msgs.length).toBe(3);
      expect(sub.stats().inMsgs).toBe(3);
    });

    it("counts per subscription: a sibling subscription on the same subject is unaffected", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.maxsib`;
      const limited = collector();
      const unlimited = collector();
      sub.subscribe(subject, { max: 2, callback: limited.callback });
      sub.subscribe(subject, { callback: unlimited.callback });
      await sub.flush();
      for (let i = 0; i < 6; i++) pub.publish(subject, sc.encode(String(i)));
      await barrier(pub, sub);
      expect(limited.msgs.length).toBe(2);
      expect(unlimited.msgs.length).toBe(6);
      expect(sub.stats().inMsgs).toBe(8);
    });

    it("a plain unsubscribe stops delivery; the server no longer sends anything", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.unsub`;
      const col = collector();
      const s = sub.subscribe(subject, { callback: col.callback });
      await sub.flush();
      pub.publish(subject, sc.encode("before"));
      await barrier(pub, sub);
      s.unsubscribe();
      await sub.flush();
      pub.publish(subject, sc.encode("after"));
      await barrier(pub, sub);
      expect(col.msgs.map((m) => sc.decode(m.data))).toEqual(["before"]);
      expect(sub.stats().inMsgs).toBe(1);
    });
  });

  describe("drain and close", () => {
    it("sub.drain() delivers what was in flight, then closes the subscription", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.subdrain`;
      const col = collector();
      const s = sub.subscribe(subject, { callback: col.callback });
      await sub.flush();
      const n = 2000;
      for (let i = 0; i < n; i++) pub.publish(subject, sc.encode(String(i)));
      // once the publisher's PING is answered, the server has queued all n for the subscriber
      await within(pub.flush(), 5000, "publisher flush");
      await within(s.drain(), 5000, "sub drain");
      expect(col.msgs.length).toBe(n);
      expect(col.msgs.map((m) => Number(sc.decode(m.data)))).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(s.isClosed()).toBe(true);
      await within(s.closed, 1000, "sub.closed");
      // nothing more arrives after the drain
      pub.publish(subject, sc.encode("late"));
      await barrier(pub, sub);
      expect(col.msgs.length).toBe(n);
      expect(sub.stats().inMsgs).toBe(n);
      expect(sub.isClosed()).toBe(false);
    });

    it("sub.drain() ends an iterator subscription after the in-flight messages", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.iterdrain`;
      const s = sub.subscribe(subject);
      await sub.flush();
      for (let i = 0; i < 100; i++) pub.publish(subject, sc.encode(String(i)));
      await within(pub.flush(), 5000, "publisher flush");
      const done = iterate(s, 5000, "drained iterator");
      await within(s.drain(), 5000, "sub drain");
      expect((await done).length).toBe(100);
    });

    it("nc.drain() on a subscriber delivers in-flight messages to every subscription and closes", async () => {
      const [sub, pub] = [await client(), await client()];
      const p = unique();
      const a = collector();
      const b = collector();
      sub.subscribe(`${p}.a`, { callback: a.callback });
      sub.subscribe(`${p}.*`, { callback: b.callback });
      await sub.flush();
      const n = 1000;
      for (let i = 0; i < n; i++) pub.publish(`${p}.a`, sc.encode(String(i)));
      await within(pub.flush(), 5000, "publisher flush");
      await within(sub.drain(), 5000, "connection drain");
      expect(a.msgs.length).toBe(n);
      expect(b.msgs.length).toBe(n);
      expect(sub.isClosed()).toBe(true);
      await expect(within(sub.closed(), 2000, "closed()")).resolves.toBeUndefined();
    });

    it("nc.drain() on a publisher flushes everything it published before closing", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.pubdrain`;
      const col = collector();
      sub.subscribe(subject, { callback: col.callback });
      await sub.flush();
      const n = 5000;
      for (let i = 0; i < n; i++) pub.publish(subject, sc.encode(String(i)));
      await within(pub.drain(), 5000, "publisher drain");
      await col.waitFor(n, 5000);
      await sub.flush();
      expect(col.msgs.length).toBe(n);
      expect(pub.isClosed()).toBe(true);
      await expect(within(pub.closed(), 2000, "closed()")).resolves.toBeUndefined();
    });

    it("close() resolves closed() without error, and the server forgets the subscriptions", async () => {
      const [nc, pub] = [await client(), await client()];
      const subject = `${unique()}.close`;
      nc.subscribe(subject);
      await nc.flush();
      await within(nc.close(), 2000, "close");
      await expect(within(nc.closed(), 2000, "closed()")).resolves.toBeUndefined();
      // The server notices the closed socket asynchronously; soon it has no interest left, so a request to
      // the subject gets no responders. Bounded retries: each silent attempt times out after 200 ms.
      const deadline = Date.now() + 3000;
      let code: string | undefined;
      while (code !== ErrorCode.NoResponders && Date.now() < deadline) {
        code = await pub.request(subject, sc.encode("x"), { timeout: 200 }).then(
          () => "answered",
          (e: NatsError) => e.code,
        );
      }
      expect(code).toBe(ErrorCode.NoResponders);
    });
  });
});

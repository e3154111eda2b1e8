/**
 * The official `nats` client against each server kind: request/reply. `nc.request` (muxed and not),
 * `requestMany`, reply subjects, concurrency, and the no-responders status (HMSG `NATS/1.0 503`) that the
 * server generates itself. Every test must pass unchanged against nats-server 2.9.10 and `bridgehead broker`.
 *
 * `BH_KINDS=nats-server` (comma-separated) restricts the kinds, e.g. to validate against nats-server alone.
 */
import {
  type ConnectionOptions,
  Empty,
  ErrorCode,
  headers,
  type Msg,
  type NatsConnection,
  type NatsError,
  RequestStrategy,
} from "nats";
import { describe, expect, it } from "vitest";
import { barrier, collector, iterate, sc, trackedConnect, unique, within } from "../helpers/client-kit.js";
import { useServer } from "../helpers/server-hooks.js";
import { selectedKinds } from "../helpers/servers.js";

describe.each(selectedKinds())("nats client request/reply against %s", (kind) => {
  const server = useServer(kind);
  const connectTracked = trackedConnect();
  const client = (opts: ConnectionOptions = {}) => connectTracked(server(), opts);

  /** Subscribes an echo-style responder (`<tag>:<request>`) and waits until the server has the SUB. */
  async function responder(nc: NatsConnection, subject: string, tag: string, queue?: string): Promise<Msg[]> {
    const seen: Msg[] = [];
    nc.subscribe(subject, {
      queue,
      callback: (err, m) => {
        if (err) return;
        seen.push(m);
        const h = headers();
        h.set("X-Responder", tag);
        const reqH = m.headers?.get("X-Req");
        if (reqH) h.set("X-Req-Echo", reqH);
        m.respond(sc.encode(`${tag}:${sc.decode(m.data)}`), { headers: h });
      },
    });
    await nc.flush();
    return seen;
  }

  it("nc.request gets the responder's answer; the responder sees a reply subject", async () => {
    const [svc, req] = [await client(), await client()];
    const subject = `${unique()}.svc`;
    const seen = await responder(svc, subject, "r1");
    const reply = await req.request(subject, sc.encode("ping"), { timeout: 2000 });
    expect(sc.decode(reply.data)).toBe("r1:ping");
    expect(reply.headers?.get("X-Responder")).toBe("r1");
    expect(seen.length).toBe(1);
    const m = seen[0]!;
    expect(m.subject).toBe(subject);
    expect(m.reply).toMatch(/^_INBOX\./);
    // the reply arrived on the requester's inbox, not on the service subject
    expect(reply.subject).toBe(m.reply);
  });

  it("carries request headers to the responder and reply headers back", async () => {
    const [svc, req] = [await client(), await client()];
    const subject = `${unique()}.svc`;
    const seen = await responder(svc, subject, "h");
    const h = headers();
    h.set("X-Req", "abc");
    h.append("X-Multi", "1");
    h.append("X-Multi", "2");
    const reply = await req.request(subject, sc.encode("x"), { timeout: 2000, headers: h });
    expect(seen[0]!.headers?.values("X-Multi")).toEqual(["1", "2"]);
    expect(reply.headers?.get("X-Req-Echo")).toBe("abc");
    expect(reply.headers?.hasError).toBe(false);
  });

  it("works with noMux (a dedicated inbox subscription per request)", async () => {
    const [svc, req] = [await client(), await client()];
    const subject = `${unique()}.svc`;
    const seen = await responder(svc, subject, "nm");
    const reply = await req.request(subject, sc.encode("one"), { timeout: 2000, noMux: true });
    expect(sc.decode(reply.data)).toBe("nm:one");
    expect(reply.subject).toBe(seen[0]!.reply);
  });

  it("works with the responder on the requester's own connection", async () => {
    const nc = await client();
    const subject = `${unique()}.self`;
    await responder(nc, subject, "self");
    const reply = await nc.request(subject, sc.encode("me"), { timeout: 2000 });
    expect(sc.decode(reply.data)).toBe("self:me");
  });

  it("answers 100 concurrent requests (and 20 noMux ones) each with its own reply", async () => {
    const [svc, req] = [await client(), await client()];
    const subject = `${unique()}.svc`;
    await responder(svc, subject, "c");
    const muxed = Array.from({ length: 100 }, (_, i) =>
      req.request(subject, sc.encode(`m${i}`), { timeout: 5000 }).then((m) => sc.decode(m.data)),
    );
    const dedicated = Array.from({ length: 20 }, (_, i) =>
      req.request(subject, sc.encode(`d${i}`), { timeout: 5000, noMux: true }).then((m) => sc.decode(m.data)),
    );
    const replies = await within(Promise.all([...muxed, ...dedicated]), 8000, "concurrent requests");
    expect(replies).toEqual([
      ...Array.from({ length: 100 }, (_, i) => `c:m${i}`),
      ...Array.from({ length: 20 }, (_, i) => `c:d${i}`),
    ]);
  });

  it("spreads requests over a queue group of responders, one reply per request", async () => {
    const responders = [await client(), await client(), await client()];
    const req = await client();
    const subject = `${unique()}.svc`;
    const seen = await Promise.all(responders.map((nc, i) => responder(nc, subject, `q${i}`, "workers")));
    const replies = await within(
      Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          req.request(subject, sc.encode(String(i)), { timeout: 5000 }).then((m) => sc.decode(m.data)),
        ),
      ),
      8000,
      "queue requests",
    );
    replies.forEach((r, i) => {
      expect(r).toMatch(new RegExp(`^q[012]:${i}$`));
    });
    expect(seen.reduce((n, s) => n + s.length, 0)).toBe(60);
    for (const s of seen) expect(s.length).toBeGreaterThan(0);
  });

  it("requestMany collects one reply from each of several responders", async () => {
    const responders = [await client(), await client(), await client()];
    const req = await client();
    const subject = `${unique()}.many`;
    await Promise.all(responders.map((nc, i) => responder(nc, subject, `m${i}`)));
    const it = await req.requestMany(subject, sc.encode("all"), {
      strategy: RequestStrategy.Count,
      maxMessages: 3,
      maxWait: 5000,
    });
    const replies = await iterate(it, 6000, "requestMany");
    expect(replies.map((m) => sc.decode(m.data)).sort()).toEqual(["m0:all", "m1:all", "m2:all"]);
  });

  it("requestMany to a queue group gets exactly one reply", async () => {
    const responders = [await client(), await client(), await client()];
    const req = await client();
    const subject = `${unique()}.manyq`;
    await Promise.all(responders.map((nc, i) => responder(nc, subject, `m${i}`, "g")));
    const it = await req.requestMany(subject, sc.encode("one"), {
      strategy: RequestStrategy.Timer,
      maxWait: 300,
    });
    const replies = await iterate(it, 3000, "requestMany");
    expect(replies.length).toBe(1);
    expect(sc.decode(replies[0]!.data)).toMatch(/^m[012]:one$/);
  });

  it("delivers an explicit reply subject on the message, and respond() publishes to it", async () => {
    const [svc, pub, listener] = [await client(), await client(), await client()];
    const p = unique();
    const replySubject = `${p}.custom.reply`;
    const replies = collector();
    listener.subscribe(replySubject, { callback: replies.callback });
    await listener.flush();
    const seen = await responder(svc, `${p}.svc`, "x");
    pub.publish(`${p}.svc`, sc.encode("hi"), { reply: replySubject });
    pub.publish(`${p}.svc`, sc.encode("no-reply"));
    await replies.waitFor(1);
    await barrier(pub, svc);
    await barrier(svc, listener);
    expect(seen.map((m) => m.reply)).toEqual([replySubject, ""]);
    expect(replies.msgs.map((m) => sc.decode(m.data))).toEqual(["x:hi"]);
    expect(replies.msgs[0]!.subject).toBe(replySubject);
  });

  it("round-trips large request and reply payloads", async () => {
    const [svc, req] = [await client(), await client()];
    const subject = `${unique()}.big`;
    svc.subscribe(subject, { callback: (_err, m) => m.respond(m.data.slice().reverse()) });
    await svc.flush();
    const body = new Uint8Array(700 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const reply = await req.request(subject, body, { timeout: 5000 });
    expect(Buffer.from(reply.data).equals(Buffer.from(body.slice().reverse()))).toBe(true);
  });

  describe("no responders", () => {
    it("rejects a request to a subject nobody subscribes, with 503, well before the timeout", async () => {
      const req = await client();
      const started = Date.now();
      const err = await req.request(`${unique()}.nobody`, sc.encode("?"), { timeout: 5000 }).then(
        () => undefined,
        (e: NatsError) => e,
      );
      const elapsed = Date.now() - started;
      expect(err).toBeDefined();
      expect(err?.code).toBe(ErrorCode.NoResponders);
      expect(elapsed).toBeLessThan(1000);
    });

    it("also for noMux requests and requests with headers", async () => {
      const req = await client();
      const h = headers();
      h.set("X", "y");
      for (const opts of [{ noMux: true }, { headers: h }, { noMux: true, headers: h }]) {
        const started = Date.now();
        await expect(
          req.request(`${unique()}.nobody`, Empty, { timeout: 5000, ...opts }),
          JSON.stringify(Object.keys(opts)),
        ).rejects.toMatchObject({ code: ErrorCode.NoResponders });
        expect(Date.now() - started).toBeLessThan(1000);
      }
    });

    it("after the only responder unsubscribed", async () => {
      const [svc, req] = [await client(), await client()];
      const subject = `${unique()}.gone`;
      const s = svc.subscribe(subject, { callback: (_e, m) => m.respond(Empty) });
      await svc.flush();
      await req.request(subject, Empty, { timeout: 2000 });
      s.unsubscribe();
      await svc.flush();
      await expect(req.request(subject, Empty, { timeout: 5000 })).rejects.toMatchObject({
        code: ErrorCode.NoResponders,
      });
    });

    it("is not reported when a subscriber exists but stays silent: the request times out instead", async () => {
      const [silent, req] = [await client(), await client()];
      const subject = `${unique()}.silent`;
      const got = collector();
      silent.subscribe(subject, { callback: got.callback });
      silent.subscribe(`${subject}.q`, { queue: "g", callback: got.callback });
      await silent.flush();
      for (const s of [subject, `${subject}.q`]) {
        const started = Date.now();
        await expect(req.request(s, Empty, { timeout: 300 })).rejects.toMatchObject({
          code: ErrorCode.Timeout,
        });
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      }
      expect(got.msgs.length).toBe(2);
    });

    it("a 503 for one request does not disturb other requests in flight on the same connection", async () => {
      const [svc, req] = [await client(), await client()];
      const subject = `${unique()}.ok`;
      await responder(svc, subject, "ok");
      const results = await Promise.allSettled([
        req.request(subject, sc.encode("1"), { timeout: 2000 }),
        req.request(`${unique()}.nobody`, Empty, { timeout: 2000 }),
        req.request(subject, sc.encode("2"), { timeout: 2000 }),
      ]);
      expect(results[0].status === "fulfilled" && sc.decode(results[0].value.data)).toBe("ok:1");
      expect(results[1].status === "rejected" && (results[1].reason as NatsError).code).toBe(
        ErrorCode.NoResponders,
      );
      expect(results[2].status === "fulfilled" && sc.decode(results[2].value.data)).toBe("ok:2");
    });
  });
});

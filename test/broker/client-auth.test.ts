/**
 * The official `nats` client against each server kind: authentication (token, user list, single user) and
 * per-user permissions (publish/subscribe deny, allow lists, allow_responses), as configured in the
 * nats-server config file. Every test must pass unchanged against nats-server 2.9.10 and `bridgehead broker`.
 *
 * `BH_KINDS=nats-server` (comma-separated) restricts the kinds, e.g. to validate against nats-server alone.
 */
import {
  type ConnectionOptions,
  connect,
  Empty,
  ErrorCode,
  Events,
  type Msg,
  type NatsConnection,
  type NatsError,
  nuid,
  type Status,
} from "nats";
import { describe, expect, it } from "vitest";
import { barrier, collector, sc, statusLog, trackedConnect, within } from "../helpers/client-kit.js";
import { useServer } from "../helpers/server-hooks.js";
import { selectedKinds } from "../helpers/servers.js";

/** connect() that is expected to fail: returns the error (bounded in time). */
async function connectError(opts: ConnectionOptions): Promise<NatsError> {
  const started = Date.now();
  const result = await within(
    connect({ reconnect: false, timeout: 3000, ...opts }).then(
      async (nc) => {
        await nc.close();
        return undefined;
      },
      (e: NatsError) => e,
    ),
    5000,
    "failing connect",
  );
  if (!result) throw new Error(`connect unexpectedly succeeded with ${JSON.stringify(opts)}`);
  // rejected by the server promptly, not by the client's own connect timeout
  expect(Date.now() - started).toBeLessThan(2500);
  return result;
}

// ---- the suite ----------------------------------------------------------------------------------------

describe.each(selectedKinds())("nats client auth against %s", (kind) => {
  const client = trackedConnect();

  /** Proves a connection is fully usable: a round trip through the server on its own subscription. */
  async function usable(nc: NatsConnection): Promise<void> {
    const subject = `ok.${nuid.next()}`;
    const col = collector();
    const sub = nc.subscribe(subject, { callback: col.callback });
    nc.publish(subject, sc.encode("ping"));
    await col.waitFor(1, 3000, "self round trip");
    sub.unsubscribe();
  }

  describe("token", () => {
    const server = useServer(kind, "authorization { token: s3cr3t }");

    it("accepts the right token and announces auth_required", async () => {
      const nc = await client(server(), { token: "s3cr3t" });
      expect(nc.info?.auth_required).toBe(true);
      await usable(nc);
    });

    it("rejects a wrong token with AUTHORIZATION_VIOLATION", async () => {
      const err = await connectError({ servers: server().url, token: "wrong" });
      expect(err.code).toBe(ErrorCode.AuthorizationViolation);
    });

    it("rejects a missing token with AUTHORIZATION_VIOLATION", async () => {
      const err = await connectError({ servers: server().url });
      expect(err.code).toBe(ErrorCode.AuthorizationViolation);
    });

    it("rejects user/password credentials when a token is configured", async () => {
      const err = await connectError({ servers: server().url, user: "s3cr3t", pass: "s3cr3t" });
      expect(err.code).toBe(ErrorCode.AuthorizationViolation);
    });
  });

  describe("users list", () => {
    const server = useServer(
      kind,
      "authorization { users = [ {user: a, password: b}, {user: c, password: d} ] }",
    );

    it("accepts every configured user, and they can talk to each other", async () => {
      const a = await client(server(), { user: "a", pass: "b" });
      const c = await client(server(), { user: "c", pass: "d" });
      expect(a.info?.auth_required).toBe(true);
      await usable(a);
      await usable(c);
      const subject = `x.${nuid.next()}`;
      const col = collector();
      c.subscribe(subject, { callback: col.callback });
      await c.flush();
      a.publish(subject, sc.encode("from a"));
      await col.waitFor(1);
      expect(sc.decode(col.msgs[0]!.data)).toBe("from a");
    });

    it("rejects a wrong password, an unknown user, another user's password, and no credentials", async () => {
      for (const creds of [
        { user: "a", pass: "x" },
        { user: "a", pass: "d" },
        { user: "zz", pass: "b" },
        { user: "a" },
        {},
        { token: "b" },
      ]) {
        const err = await connectError({ servers: server().url, ...creds });
        expect(err.code, JSON.stringify(creds)).toBe(ErrorCode.AuthorizationViolation);
      }
    });
  });

  describe("single user", () => {
    const server = useServer(kind, "authorization { user: u, password: p }");

    it("accepts the configured user", async () => {
      const nc = await client(server(), { user: "u", pass: "p" });
      expect(nc.info?.auth_required).toBe(true);
      await usable(nc);
    });

    it("rejects a wrong password, a wrong user and no credentials", async () => {
      for (const creds of [{ user: "u", pass: "x" }, { user: "x", pass: "p" }, {}]) {
        const err = await connectError({ servers: server().url, ...creds });
        expect(err.code, JSON.stringify(creds)).toBe(ErrorCode.AuthorizationViolation);
      }
    });
  });

  describe("permissions", () => {
    const server = useServer(
      kind,
      `authorization {
  users = [
    { user: admin, password: adminpw }
    { user: limited, password: limpw, permissions: {
        publish: { deny: ["secret.>", "forbidden"] }
        subscribe: { deny: ["hidden.>"] }
    } }
    { user: narrow, password: narrowpw, permissions: {
        publish: { allow: ["pub.ok.>", "_INBOX.>"] }
        subscribe: { allow: ["sub.ok.>", "_INBOX.>"] }
    } }
    { user: svc, password: svcpw, permissions: {
        subscribe: ["svc.>"]
        allow_responses: true
    } }
  ]
}`,
    );

    const admin = () => client(server(), { user: "admin", pass: "adminpw" });
    const limited = () => client(server(), { user: "limited", pass: "limpw" });
    const narrow = () => client(server(), { user: "narrow", pass: "narrowpw" });
    const svc = () => client(server(), { user: "svc", pass: "svcpw" });
    const isPermError = (s: Status) => s.type === Events.Error && s.data === ErrorCode.PermissionsViolation;

    it("a denied publish raises an async permissions error, is not delivered, and the connection stays usable", async () => {
      const [adm, lim] = [await admin(), await limited()];
      const log = statusLog(lim);
      const id = nuid.next();
      const col = collector();
      adm.subscribe(`secret.${id}`, { callback: col.callback });
      adm.subscribe(`open.${id}`, { callback: col.callback });
      await adm.flush();

      lim.publish(`secret.${id}`, sc.encode("leak"));
      const ev = await log.waitFor(isPermError);
      expect(ev.permissionContext).toEqual({ operation: "publish", subject: `secret.${id}` });
      lim.publish(`open.${id}`, sc.encode("fine"));
      await barrier(lim, adm);
      expect(col.msgs.map((m) => m.subject)).toEqual([`open.${id}`]);
      expect(lim.isClosed()).toBe(false);
      await usable(lim);
      // a literal deny entry works too
      lim.publish("forbidden", Empty);
      await log.waitFor((s) => isPermError(s) && s.permissionContext?.subject === "forbidden");
      expect(log.events.filter(isPermError).map((s) => s.permissionContext?.subject)).toEqual([
        `secret.${id}`,
        "forbidden",
      ]);
    });

    it("a denied subscription errors the subscription callback, receives nothing, and the connection stays usable", async () => {
      const [adm, lim] = [await admin(), await limited()];
      const log = statusLog(lim);
      const id = nuid.next();
      const col = collector();
      const sub = lim.subscribe(`hidden.${id}`, { callback: col.callback });
      await lim.flush();
      const ev = await log.waitFor(isPermError);
      expect(ev.permissionContext).toEqual({ operation: "subscription", subject: `hidden.${id}` });
      expect(col.errors.map((e) => e.code)).toEqual([ErrorCode.PermissionsViolation]);
      expect(sub.isClosed()).toBe(true);

      adm.publish(`hidden.${id}`, sc.encode("nope"));
      await barrier(adm, lim);
      expect(col.msgs.length).toBe(0);
      expect(lim.stats().inMsgs).toBe(0);
      expect(lim.isClosed()).toBe(false);
      await usable(lim);
    });

    it("a denied subscription ends an iterator subscription with the permissions error", async () => {
      const lim = await limited();
      const sub = lim.subscribe(`hidden.${nuid.next()}`);
      const outcome = await within(
        (async () => {
          for await (const _m of sub) {
            // nothing must arrive
          }
          return undefined;
        })().then(
          (v) => v,
          (e: NatsError) => e,
        ),
        3000,
        "iterator of a denied subscription",
      );
      expect(outcome?.code).toBe(ErrorCode.PermissionsViolation);
      await usable(lim);
    });

    it("a denied queue subscription errors that subscription only (the error names the queue)", async () => {
      const lim = await limited();
      const log = statusLog(lim);
      const id = nuid.next();
      const denied = collector();
      const allowed = collector();
      lim.subscribe(`hidden.${id}`, { queue: "q1", callback: denied.callback });
      const ok = lim.subscribe(`open.${id}`, { queue: "q1", callback: allowed.callback });
      await lim.flush();
      const ev = await log.waitFor(isPermError);
      expect(ev.permissionContext).toMatchObject({ operation: "subscription", subject: `hidden.${id}` });
      expect(denied.errors.map((e) => e.code)).toEqual([ErrorCode.PermissionsViolation]);
      expect(denied.errors[0]?.message).toContain('using queue "q1"');
      expect(allowed.errors).toEqual([]);
      expect(ok.isClosed()).toBe(false);
      lim.publish(`open.${id}`, sc.encode("q"));
      await allowed.waitFor(1);
    });

    it("a denied wildcard subscription is rejected even though part of it is allowed", async () => {
      const lim = await limited();
      const log = statusLog(lim);
      const col = collector();
      lim.subscribe("hidden.*", { callback: col.callback });
      await lim.flush();
      await log.waitFor(isPermError);
      expect(col.errors.length).toBe(1);
    });

    it("allow lists: only allowed subjects can be published and subscribed", async () => {
      const [adm, nar] = [await admin(), await narrow()];
      const log = statusLog(nar);
      const id = nuid.next();
      const seenByAdmin = collector();
      adm.subscribe(`pub.>`, { callback: seenByAdmin.callback });
      await adm.flush();

      nar.publish(`pub.ok.${id}`, sc.encode("allowed"));
      nar.publish(`pub.no.${id}`, sc.encode("denied"));
      const okSub = collector();
      const noSub = collector();
      nar.subscribe(`sub.ok.${id}`, { callback: okSub.callback });
      nar.subscribe(`sub.no.${id}`, { callback: noSub.callback });
      await nar.flush();
      await barrier(nar, adm);

      expect(seenByAdmin.msgs.map((m) => m.subject)).toEqual([`pub.ok.${id}`]);
      const perm = (await log.waitForCount(isPermError, 2)).map((s) => s.permissionContext);
      expect(perm).toEqual([
        { operation: "publish", subject: `pub.no.${id}` },
        { operation: "subscription", subject: `sub.no.${id}` },
      ]);
      adm.publish(`sub.ok.${id}`, sc.encode("a"));
      adm.publish(`sub.no.${id}`, sc.encode("b"));
      await barrier(adm, nar);
      expect(okSub.msgs.map((m) => sc.decode(m.data))).toEqual(["a"]);
      expect(noSub.msgs.length).toBe(0);
      expect(noSub.errors.map((e) => e.code)).toEqual([ErrorCode.PermissionsViolation]);
    });

    it("a request to a subject the user may not publish rejects with a permissions error", async () => {
      const lim = await limited();
      const started = Date.now();
      await expect(lim.request(`secret.${nuid.next()}`, Empty, { timeout: 3000 })).rejects.toMatchObject({
        code: ErrorCode.PermissionsViolation,
      });
      expect(Date.now() - started).toBeLessThan(2000);
      await usable(lim);
    });

    it("allow_responses lets a responder reply to requests it received, and nothing else", async () => {
      const [adm, responder] = [await admin(), await svc()];
      const log = statusLog(responder);
      const id = nuid.next();
      responder.subscribe(`svc.${id}`, {
        callback: (_err, m: Msg) => {
          m.respond(sc.encode(`re:${sc.decode(m.data)}`));
        },
      });
      await responder.flush();
      for (let i = 0; i < 3; i++) {
        const reply = await adm.request(`svc.${id}`, sc.encode(String(i)), { timeout: 2000 });
        expect(sc.decode(reply.data)).toBe(`re:${i}`);
      }
      // allow_responses without a publish block turns ordinary publishing off
      const col = collector();
      adm.subscribe(`other.${id}`, { callback: col.callback });
      await adm.flush();
      responder.publish(`other.${id}`, sc.encode("not a reply"));
      const ev = await log.waitFor(isPermError);
      expect(ev.permissionContext).toEqual({ operation: "publish", subject: `other.${id}` });
      await barrier(responder, adm);
      expect(col.msgs.length).toBe(0);
      // and publishing to some other inbox it was never asked on is denied as well
      const inbox = `_INBOX.${nuid.next()}`;
      adm.subscribe(inbox, { callback: col.callback });
      await adm.flush();
      responder.publish(inbox, sc.encode("unsolicited"));
      const denied = await log.waitForCount(isPermError, 2);
      expect(denied[1]?.permissionContext).toEqual({ operation: "publish", subject: inbox });
      await barrier(responder, adm);
      expect(col.msgs.length).toBe(0);
      // subscribing outside its allow list is denied (the -ERR precedes the PONG, so flush suffices)
      const out = collector();
      responder.subscribe(`elsewhere.${id}`, { callback: out.callback });
      await responder.flush();
      expect(out.errors.map((e) => e.code)).toEqual([ErrorCode.PermissionsViolation]);
      expect(responder.isClosed()).toBe(false);
    });

    it("the responses allowed by allow_responses are single-use (max 1 per request)", async () => {
      const [adm, responder] = [await admin(), await svc()];
      const log = statusLog(responder);
      const id = nuid.next();
      responder.subscribe(`svc.${id}`, {
        callback: (_err, m: Msg) => {
          m.respond(sc.encode("first"));
          m.respond(sc.encode("second"));
        },
      });
      await responder.flush();
      const inbox = `_INBOX.${nuid.next()}`;
      const col = collector();
      adm.subscribe(inbox, { callback: col.callback });
      await adm.flush();
      adm.publish(`svc.${id}`, Empty, { reply: inbox });
      await col.waitFor(1);
      await log.waitFor(isPermError);
      await barrier(responder, adm);
      expect(col.msgs.map((m) => sc.decode(m.data))).toEqual(["first"]);
    });
  });
});

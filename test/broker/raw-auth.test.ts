/**
 * Raw-socket authentication and authorization tests: token, user/password and users-list auth, the auth
 * timeout, and per-user publish/subscribe permissions including allow_responses, with the exact -ERR texts
 * of nats-server 2.9.10 (Go's %q quoting of subjects included), against every server kind, then a check that
 * all kinds produced the same transcripts.
 *
 * Expectations were captured from Debian's nats-server 2.9.10. `BH_KINDS=nats-server` restricts the kinds.
 */
import { describe, expect, it } from "vitest";
import { connectRaw, INFO_LINE, infoProblems, type RawClient, transcripts } from "../helpers/raw-client.js";
import { describeTranscriptCheck, expectClosedAfter, rawComparison } from "../helpers/raw-kit.js";
import { useServer } from "../helpers/server-hooks.js";

const { kinds, book } = rawComparison();

const AUTH_VIOLATION = "-ERR 'Authorization Violation'\r\n";

const connectLine = (fields: Record<string, unknown>) => `CONNECT ${JSON.stringify(fields)}\r\n`;

describe.each(kinds)("raw auth against %s", (kind) => {
  /** Credential checks shared by the auth configs: good ones get +OK, bad ones the violation and a close. */
  function credentialCases(
    conf: string,
    good: Record<string, unknown>[],
    bad: [string, Record<string, unknown>][],
  ) {
    const server = useServer(kind, conf);
    const raw = () => connectRaw(server().port);

    it("INFO has auth_required:true", async () => {
      const c = await raw();
      expect(infoProblems(c.info, { port: server().port, maxPayload: 1048576, authRequired: true })).toEqual(
        [],
      );
    });

    it.each(good.map((g) => [JSON.stringify(g), g] as const))(
      "good credentials %s: +OK, then a working connection",
      async (label, creds) => {
        const c = await raw();
        c.send(connectLine({ verbose: true, ...creds }));
        c.send("SUB foo 1\r\nPUB foo 2\r\nhi\r\n");
        await c.sync();
        expect(c.transcript()).toBe(`${INFO_LINE}+OK\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n`);
        book.record(kind, `${conf} good ${label}`, c.transcript());
      },
    );

    it.each(bad)("%s ⇒ -ERR 'Authorization Violation' and close", async (scenario, creds) => {
      const c = await raw();
      c.send(connectLine({ verbose: true, ...creds }));
      await expectClosedAfter(c, AUTH_VIOLATION);
      book.record(kind, `${conf} bad ${scenario}`, c.transcript());
    });

    it.each([
      ["PING", "PING\r\n"],
      ["SUB", "SUB foo 1\r\n"],
      ["PUB", "PUB foo 2\r\nhi\r\n"],
    ])("%s before CONNECT ⇒ -ERR 'Authorization Violation' and close", async (scenario, line) => {
      const c = await raw();
      c.send(line);
      await expectClosedAfter(c, AUTH_VIOLATION);
      book.record(kind, `${conf} ${scenario} before CONNECT`, c.transcript());
    });
  }

  describe("authorization { token: s3cr3t }", () => {
    credentialCases(
      "authorization { token: s3cr3t }",
      [{ auth_token: "s3cr3t" }],
      [
        ["wrong token", { auth_token: "nope" }],
        ["no credentials", {}],
        ["user/pass instead of the token", { user: "s3cr3t", pass: "s3cr3t" }],
      ],
    );
  });

  describe("authorization { user: a, password: b }", () => {
    credentialCases(
      "authorization { user: a, password: b }",
      [{ user: "a", pass: "b" }],
      [
        ["wrong password", { user: "a", pass: "x" }],
        ["wrong user", { user: "x", pass: "b" }],
        ["no password", { user: "a" }],
        ["no credentials", {}],
        ["a token instead", { auth_token: "b" }],
      ],
    );
  });

  describe("authorization { users = [a/b, c/d] }", () => {
    credentialCases(
      "authorization { users = [ {user: a, password: b}, {user: c, password: d} ] }",
      [
        { user: "a", pass: "b" },
        { user: "c", pass: "d" },
      ],
      [
        ["a with c's password", { user: "a", pass: "d" }],
        ["c with a's password", { user: "c", pass: "b" }],
        ["unknown user", { user: "e", pass: "b" }],
      ],
    );
  });

  describe("authorization { token: x, timeout: 1 }", () => {
    const server = useServer(kind, "authorization { token: x, timeout: 1 }");
    const raw = () => connectRaw(server().port);

    it("no CONNECT within the timeout ⇒ -ERR 'Authentication Timeout' and close; a client that connected stays", async ({
      task,
    }) => {
      const good = await raw();
      good.send(connectLine({ verbose: false, auth_token: "x" }));
      await good.sync();
      const started = Date.now();
      const silent = await raw();
      const partial = await raw();
      partial.send("CONN"); // an unfinished CONNECT does not stop the timer
      await Promise.all([silent.waitClosed(6000), partial.waitClosed(6000)]);
      // the timer is 1 s; allow for a coarse clock but not for an immediate close
      expect(Date.now() - started).toBeGreaterThanOrEqual(700);
      expect(silent.transcript()).toBe(`${INFO_LINE}-ERR 'Authentication Timeout'\r\n`);
      expect(partial.transcript()).toBe(`${INFO_LINE}-ERR 'Authentication Timeout'\r\n`);
      // by now the good client has been connected for longer than the timeout
      await good.sync();
      expect(good.isClosed).toBe(false);
      book.record(kind, task.name, transcripts({ silent, partial }));
    });
  });

  describe("no authorization", () => {
    const server = useServer(kind);

    it("PING, SUB and PUB before CONNECT are accepted, credentials are ignored", async ({ task }) => {
      const c = await connectRaw(server().port);
      c.send("PING\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\n");
      await c.sync();
      c.send(connectLine({ verbose: true, user: "who", pass: "ever", auth_token: "t" }));
      await c.sync();
      expect(c.transcript()).toBe(
        `${INFO_LINE}PONG\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n+OK\r\nPONG\r\n`,
      );
      expect("auth_required" in c.info).toBe(false);
      book.record(kind, task.name, c.transcript());
    });
  });

  describe("permissions", () => {
    const conf =
      "authorization { users = [ " +
      '{user: a, password: b, permissions: { publish: { allow: ["pub.>", "_INBOX.>"] , deny: ["pub.secret"] }, subscribe: { allow: ["sub.*"], deny: ["sub.x"] } } }, ' +
      '{user: r, password: r, permissions: { subscribe: "svc.>", publish: { deny: ">" }, allow_responses: true } }, ' +
      // an unrestricted user to watch what is (not) delivered
      "{user: u, password: u} ] }";
    const server = useServer(kind, conf);
    async function login(
      user: string,
      pass: string,
      extra: Record<string, unknown> = {},
    ): Promise<RawClient> {
      const c = await connectRaw(server().port, { name: user });
      c.send(connectLine({ verbose: false, user, pass, ...extra }));
      await c.sync();
      return c;
    }
    const pubDenied = (s: string) => `-ERR 'Permissions Violation for Publish to "${s}"'\r\n`;
    const subDenied = (s: string) => `-ERR 'Permissions Violation for Subscription to "${s}"'\r\n`;

    it("denied SUB and PUB get the exact -ERR, the connection stays open, denied messages are not delivered", async ({
      task,
    }) => {
      const watcher = await login("u", "u");
      watcher.send("SUB > 1\r\n");
      await watcher.sync();
      const a = await login("a", "b");
      a.send("SUB sub.ok 1\r\nSUB sub.x 2\r\nSUB sub.x q 3\r\nSUB other 4\r\nSUB sub.x.y 5\r\nSUB > 6\r\n");
      a.send("PUB pub.secret 1\r\ns\r\nPUB pub.ok 1\r\no\r\nPUB nope 1\r\nn\r\nPUB _INBOX.a 1\r\ni\r\n");
      a.send("PUB pub.secret.more 1\r\nm\r\n");
      await a.sync();
      await watcher.sync();
      expect(a.transcript()).toBe(
        `${INFO_LINE}PONG\r\n${subDenied("sub.x")}` +
          `-ERR 'Permissions Violation for Subscription to "sub.x" using queue "q"'\r\n` +
          `${subDenied("other")}${subDenied("sub.x.y")}${subDenied(">")}` +
          `${pubDenied("pub.secret")}${pubDenied("nope")}PONG\r\n`,
      );
      expect(a.isClosed).toBe(false);
      expect(watcher.msgs.map((m) => m.raw.toString("latin1"))).toEqual([
        "MSG pub.ok 1 1\r\no\r\n",
        "MSG _INBOX.a 1 1\r\ni\r\n",
        "MSG pub.secret.more 1 1\r\nm\r\n",
      ]);
      book.record(kind, task.name, transcripts({ a, watcher }));
    });

    it("verbose: a denied SUB or PUB gets only the -ERR, an allowed one +OK", async ({ task }) => {
      const a = await login("a", "b", { verbose: true });
      a.send("SUB sub.x 1\r\nSUB sub.ok 2\r\nPUB pub.secret 1\r\ns\r\nPUB pub.ok 1\r\no\r\n");
      await a.sync();
      expect(a.transcript()).toBe(
        `${INFO_LINE}+OK\r\nPONG\r\n${subDenied("sub.x")}+OK\r\n${pubDenied("pub.secret")}+OK\r\nPONG\r\n`,
      );
      book.record(kind, task.name, a.transcript());
    });

    it("a wildcard sub that the allow list matches gets no message on a denied subject", async ({ task }) => {
      const a = await login("a", "b");
      // `sub.>` is allowed: the allow pattern `sub.*` matches the token `>` (nats-server matches the sub's
      // subject against the allow list as if it were literal)
      a.send("SUB sub.* 5\r\nSUB sub.> 6\r\nSUB sub.y q 9\r\n");
      await a.sync();
      const u = await login("u", "u");
      u.send("PUB sub.x 1\r\nx\r\nPUB sub.y 1\r\ny\r\n");
      await u.sync();
      await a.sync();
      expect(a.framesOf("-ERR")).toEqual([]);
      const got = a.msgs.map((m) => m.raw.toString("latin1")).sort();
      expect(got).toEqual(["MSG sub.y 5 1\r\ny\r\n", "MSG sub.y 6 1\r\ny\r\n", "MSG sub.y 9 1\r\ny\r\n"]);
      book.record(kind, task.name, got.join(""));
    });

    it("the pedantic subject check comes before the permission check", async ({ task }) => {
      const a = await login("a", "b");
      a.send("PUB pub.> 1\r\nz\r\nPUB pub.* 1\r\nz\r\nPUB no.* 1\r\nz\r\n");
      await a.sync();
      expect(a.transcript()).toBe(
        `${INFO_LINE}PONG\r\n${"-ERR 'Invalid Publish Subject'\r\n".repeat(2)}` +
          `-ERR 'Invalid Publish Subject'\r\n${pubDenied("no.*")}PONG\r\n`,
      );
      book.record(kind, task.name, a.transcript());
    });

    it("subjects in permission errors are quoted like Go's %q", async ({ task }) => {
      const a = await login("a", "b");
      // [subject bytes (latin1 string), quoted form as nats-server prints it]
      const cases: [string, string][] = [
        ['a"b\\c', '"a\\"b\\\\c"'],
        ["caf\xc3\xa9", '"caf\xc3\xa9"'], // valid UTF-8 is printed as is
        ["x\x01y", '"x\\x01y"'],
        ["\xff\xfe", '"\\xff\\xfe"'], // invalid UTF-8 bytes
        ["z\x7f", '"z\\x7f"'],
        ["e\xe2\x80\x8bz", '"e\\u200bz"'], // U+200B is not printable
        ["u\xc2\xa0v", '"u\\u00a0v"'], // nor is U+00A0
      ];
      for (const [subject] of cases) a.send(`PUB ${subject} 1\r\nq\r\nSUB ${subject} 9\r\n`);
      await a.sync();
      const expected = cases
        .map(
          ([, q]) =>
            `-ERR 'Permissions Violation for Publish to ${q}'\r\n` +
            `-ERR 'Permissions Violation for Subscription to ${q}'\r\n`,
        )
        .join("");
      expect(a.transcript()).toBe(`${INFO_LINE}PONG\r\n${expected}PONG\r\n`);
      book.record(kind, task.name, a.transcript());
    });

    it("allow_responses: one reply per request received, a second publish to the reply is denied", async ({
      task,
    }) => {
      const r = await login("r", "r");
      r.send("SUB svc.> 1\r\nSUB other 2\r\nPUB svc.x 1\r\nx\r\n");
      await r.sync();
      expect(r.transcript()).toBe(`${INFO_LINE}PONG\r\n${subDenied("other")}${pubDenied("svc.x")}PONG\r\n`);
      const u = await login("u", "u");
      u.send("SUB _INBOX.u.> 1\r\nPUB svc.req _INBOX.u.1 4\r\nping\r\nPUB svc.req _INBOX.u.2 4\r\nping\r\n");
      await u.sync();
      await r.waitForCount("MSG", 2);
      expect(r.msgs.map((m) => m.raw.toString("latin1"))).toEqual([
        "MSG svc.req 1 _INBOX.u.1 4\r\nping\r\n",
        "MSG svc.req 1 _INBOX.u.2 4\r\nping\r\n",
      ]);
      r.send("PUB _INBOX.u.1 4\r\npong\r\nPUB _INBOX.u.2 5\r\npong2\r\nPUB _INBOX.u.1 5\r\nagain\r\n");
      await r.sync();
      await u.sync();
      expect(r.transcript()).toBe(
        `${INFO_LINE}PONG\r\n${subDenied("other")}${pubDenied("svc.x")}PONG\r\n` +
          "MSG svc.req 1 _INBOX.u.1 4\r\nping\r\nMSG svc.req 1 _INBOX.u.2 4\r\nping\r\n" +
          `${pubDenied("_INBOX.u.1")}PONG\r\n`,
      );
      expect(u.msgs.map((m) => m.raw.toString("latin1"))).toEqual([
        "MSG _INBOX.u.1 1 4\r\npong\r\n",
        "MSG _INBOX.u.2 1 5\r\npong2\r\n",
      ]);
      expect(r.isClosed).toBe(false);
      book.record(kind, task.name, transcripts({ r, u }));
    });
  });
});

describeTranscriptCheck({ kinds, book });

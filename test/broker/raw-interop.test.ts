/**
 * Raw-socket protocol tests: the exact bytes nats-server 2.9.10 sends for INFO, CONNECT options, framing,
 * protocol errors, subject errors and the max_payload / max_control_line limits, checked against every server
 * kind, then a check that all kinds produced the same normalised transcript per scenario.
 *
 * Expectations were captured from Debian's nats-server 2.9.10 (see /work/shared/reference/nats-protocol-2.9.md
 * §1; where the two disagree, these tests follow the real server).
 *
 * `BH_KINDS=nats-server` (comma-separated) restricts the kinds, e.g. to validate against nats-server alone.
 */
import { describe, expect, it } from "vitest";
import { connectRaw, INFO_LINE, infoProblems } from "../helpers/raw-client.js";
import {
  describeTranscriptCheck,
  expectClosedAfter,
  QUIET,
  QUIET_HEADERS,
  rawComparison,
} from "../helpers/raw-kit.js";
import { useServer } from "../helpers/server-hooks.js";

const { kinds, book } = rawComparison();

const ERR_UNKNOWN_OP = "-ERR 'Unknown Protocol Operation'\r\n";

describe.each(kinds)("raw client protocol against %s", (kind) => {
  describe("default config", () => {
    const server = useServer(kind);
    const raw = () => connectRaw(server().port);

    it("INFO on connect: `INFO {json} \\r\\n` with the 2.9.10 keys", async ({ task }) => {
      const c = await raw();
      const first = c.frames[0]!;
      expect(first.op).toBe("INFO");
      expect(c.text.startsWith("INFO {")).toBe(true);
      expect(first.raw.toString("latin1").endsWith("} \r\n")).toBe(true);
      expect(infoProblems(c.info, { port: server().port, maxPayload: 1048576, authRequired: false })).toEqual(
        [],
      );
      // nothing else is sent on connect
      await c.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}PONG\r\n`);
      book.record(kind, task.name, c.transcript());
    });

    it("each connection gets its own client_id and the same server_id", async () => {
      const [a, b] = [await raw(), await raw()];
      expect(a.info.client_id).not.toBe(b.info.client_id);
      expect(a.info.server_id).toBe(b.info.server_id);
    });

    it("without auth, PING, SUB and PUB before CONNECT are accepted (verbose by default)", async ({
      task,
    }) => {
      const c = await raw();
      c.send("PING\r\n");
      await c.waitFor("PONG\r\n");
      c.send("SUB foo 1\r\nPUB foo 2\r\nhi\r\n");
      await c.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}PONG\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n`);
      book.record(kind, task.name, c.transcript());
    });

    it("CONNECT without a verbose key is answered with +OK (verbose defaults to true)", async ({ task }) => {
      const c = await raw();
      c.send('CONNECT {}\r\nCONNECT {"lang":"raw","version":"0.0.1","name":"x"}\r\n');
      await c.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}+OK\r\n+OK\r\nPONG\r\n`);
      book.record(kind, task.name, c.transcript());
    });

    it("verbose: +OK after CONNECT, SUB, PUB, UNSUB and UNSUB of an unknown sid, none after PING", async ({
      task,
    }) => {
      const c = await raw();
      c.send('CONNECT {"verbose":true}\r\n');
      c.send("SUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nUNSUB 99\r\nPUB foo 2\r\nhi\r\nPING\r\n");
      await c.waitFor("PONG\r\n");
      expect(c.transcript()).toBe(
        `${INFO_LINE}+OK\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\n+OK\r\n+OK\r\n+OK\r\nPONG\r\n`,
      );
      book.record(kind, task.name, c.transcript());
    });

    it("verbose:false: no +OK at all", async ({ task }) => {
      const c = await raw();
      c.send(`${QUIET}SUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nUNSUB 99\r\n`);
      await c.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}MSG foo 1 2\r\nhi\r\nPONG\r\n`);
      book.record(kind, task.name, c.transcript());
    });

    it("ops are case-insensitive", async ({ task }) => {
      const c = await raw();
      c.send('connect {"verbose":false,"headers":true}\r\n');
      c.send("sub foo 1\r\npub foo 2\r\nhi\r\nSuB bar 2\r\nPuB bar 1\r\nb\r\n");
      c.send("hpub foo 12 14\r\nNATS/1.0\r\n\r\nhh\r\nuNsUb 2\r\npub bar 1\r\nx\r\nping\r\n");
      await c.waitFor("PONG\r\n");
      c.send("PinG\r\n");
      await c.waitForCount("PONG", 2);
      expect(c.transcript()).toBe(
        `${INFO_LINE}MSG foo 1 2\r\nhi\r\nMSG bar 2 1\r\nb\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhh\r\nPONG\r\nPONG\r\n`,
      );
      book.record(kind, task.name, c.transcript());
    });

    it("fields are separated by tabs and runs of spaces; trailing blanks are ignored", async ({ task }) => {
      const c = await raw();
      c.send(`${QUIET}SUB\ttab  1\r\nPUB   tab\t 3\r\nabc\r\n`);
      c.send("PUB tab \t reply.to\t\t3\r\nabc\r\nSUB foo 2  \r\nPUB foo 1 \r\na\r\nPING \r\nPING\t\r\n");
      await c.waitForCount("PONG", 2);
      expect(c.transcript()).toBe(
        `${INFO_LINE}MSG tab 1 3\r\nabc\r\nMSG tab 1 reply.to 3\r\nabc\r\nMSG foo 2 1\r\na\r\nPONG\r\nPONG\r\n`,
      );
      book.record(kind, task.name, c.transcript());
    });

    it("control lines may end with a bare \\n", async ({ task }) => {
      const c = await raw();
      c.send('CONNECT {"verbose":false}\nSUB nl 1\nPUB nl 2\nhi\r\nPUB nl r 1\nx\r\nPING\n');
      await c.waitFor("PONG\r\n");
      expect(c.transcript()).toBe(`${INFO_LINE}MSG nl 1 2\r\nhi\r\nMSG nl 1 r 1\r\nx\r\nPONG\r\n`);
      book.record(kind, task.name, c.transcript());
    });

    it("a session written one byte at a time gives the same bytes", async ({ task }) => {
      const c = await raw();
      const session =
        'CONNECT {"verbose":false,"headers":true}\r\nSUB foo 1\r\nPUB foo r 5\r\nhello\r\n' +
        "HPUB foo 22 27\r\nNATS/1.0\r\nX-Key: v\r\n\r\nhello\r\nPUB foo 4\r\na\r\nb\r\nPING\r\n";
      for (const ch of session) {
        c.send(ch);
        await new Promise((r) => setImmediate(r)); // separate writes, so the server sees split reads
      }
      await c.waitFor("PONG\r\n");
      expect(c.transcript()).toBe(
        `${INFO_LINE}MSG foo 1 r 5\r\nhello\r\nHMSG foo 1 22 27\r\nNATS/1.0\r\nX-Key: v\r\n\r\nhello\r\n` +
          "MSG foo 1 4\r\na\r\nb\r\nPONG\r\n",
      );
      book.record(kind, task.name, c.transcript());
    });

    describe("protocol errors close the connection", () => {
      // [scenario, bytes sent, what follows INFO before the close]
      const cases: [string, string, string][] = [
        ["payload longer than its size", "PUB foo 2\r\nhello\r\n", ERR_UNKNOWN_OP],
        ["payload followed by LF without CR", "PUB foo 2\r\nhi\nPING\r\n", ERR_UNKNOWN_OP],
        ["payload followed by CR without LF", "PUB foo 2\r\nhi\rPING\r\n", ERR_UNKNOWN_OP],
        ["bare LF framing around a payload", "PUB foo 2\nhi\n", ERR_UNKNOWN_OP],
        ["unknown op", "FOO bar\r\n", ERR_UNKNOWN_OP],
        ["MSG sent by a client", "MSG foo 1 1\r\na\r\n", ERR_UNKNOWN_OP],
        ["empty line", "\r\nPING\r\n", ERR_UNKNOWN_OP],
        ["blank before the op", " PING\r\n", ERR_UNKNOWN_OP],
        ["PUB without arguments", "PUB\r\n", ERR_UNKNOWN_OP],
        ["SUB without arguments", "SUB\r\n", ERR_UNKNOWN_OP],
        ["UNSUB without arguments", "UNSUB\r\n", ERR_UNKNOWN_OP],
        ["non-numeric PUB size (no -ERR)", "PUB foo x\r\n", ""],
        ["negative PUB size (no -ERR)", "PUB foo -1\r\n", ""],
        ["PUB with one argument (no -ERR)", "PUB foo\r\n", ""],
        ["PUB with four arguments (no -ERR)", "PUB a b c 1\r\n", ""],
        ["SUB with one argument (no -ERR)", "SUB foo\r\n", ""],
        ["SUB with four arguments (no -ERR)", "SUB a b c d\r\n", ""],
        ["UNSUB with three arguments (no -ERR)", "UNSUB 1 2 3\r\n", ""],
        ["HPUB without headers:true (no -ERR)", `${QUIET}HPUB foo 12 14\r\n`, ""],
        ["HPUB header size above total size (no -ERR)", `${QUIET_HEADERS}HPUB foo 10 5\r\n`, ""],
        ["HPUB non-numeric sizes (no -ERR)", `${QUIET_HEADERS}HPUB foo x 5\r\n`, ""],
        ["CONNECT with invalid JSON (no -ERR)", "CONNECT {bad\r\n", ""],
        ["CONNECT without JSON (no -ERR)", "CONNECT\r\n", ""],
        ["CONNECT with a wrongly typed field (no -ERR)", 'CONNECT {"verbose":"yes"}\r\n', ""],
        ["-ERR sent by a client (no -ERR)", "-ERR 'x'\r\nPING\r\n", ""],
      ];
      it.each(cases)("%s", async (scenario, input, expected) => {
        const c = await raw();
        c.send(input);
        await expectClosedAfter(c, expected);
        book.record(kind, `close: ${scenario}`, c.transcript());
      });
    });

    describe("lenient inputs nats-server accepts", () => {
      // [scenario, bytes sent (no CONNECT, so verbose), what follows INFO]
      const cases: [string, string, string][] = [
        ["PONG from a client is ignored", "PONG\r\nPING\r\n", "PONG\r\n"],
        ["+OK from a client is ignored", "+OK\r\nPING\r\n", "PONG\r\n"],
        ["INFO from a client is ignored", "INFO {}\r\nPING\r\n", "PONG\r\n"],
        ["PING with trailing bytes is answered", "PINGX\r\nPING 12345\r\n", "PONG\r\nPONG\r\n"],
        ["CONNECT without a blank before the JSON", "CONNECT{}\r\nPING\r\n", "+OK\r\nPONG\r\n"],
        ["CONNECT with trailing blanks", "CONNECT {}  \r\nPING\r\n", "+OK\r\nPONG\r\n"],
        [
          "UNSUB with a non-numeric max removes the sub at once",
          "SUB foo 1\r\nUNSUB 1 x\r\nPUB foo 1\r\na\r\nPING\r\n",
          "+OK\r\n+OK\r\n+OK\r\nPONG\r\n",
        ],
        ["UNSUB of a non-numeric unknown sid", "UNSUB x\r\nPING\r\n", "+OK\r\nPONG\r\n"],
        [
          "UNSUB with max 0 removes the sub at once",
          "SUB foo 1\r\nUNSUB 1 0\r\nPUB foo 1\r\na\r\nPING\r\n",
          "+OK\r\n+OK\r\n+OK\r\nPONG\r\n",
        ],
      ];
      it.each(cases)("%s", async (scenario, input, expected) => {
        const c = await raw();
        c.send(input);
        await c.waitFor("PONG\r\n");
        await c.sync();
        expect(c.transcript()).toBe(`${INFO_LINE}${expected}PONG\r\n`);
        expect(c.isClosed).toBe(false);
        book.record(kind, `lenient: ${scenario}`, c.transcript());
      });
    });

    describe("CONNECT options", () => {
      const errors: [string, string, string][] = [
        ["protocol 2", '{"protocol":2}', "invalid client protocol"],
        ["protocol -1", '{"protocol":-1}', "invalid client protocol"],
        ["no_responders without headers", '{"no_responders":true}', "no responders requires headers support"],
        [
          "no_responders with headers:false",
          '{"no_responders":true,"headers":false}',
          "no responders requires headers support",
        ],
        ["account", '{"account":"A"}', "Authorization Violation"],
        ["new_account", '{"new_account":true}', "Authorization Violation"],
      ];
      it.each(errors)("%s ⇒ -ERR and close", async (scenario, json, text) => {
        const c = await raw();
        c.send(`CONNECT ${json}\r\n`);
        await expectClosedAfter(c, `-ERR '${text}'\r\n`);
        book.record(kind, `connect error: ${scenario}`, c.transcript());
      });

      it("protocol 0 and 1 are accepted", async ({ task }) => {
        const c0 = await raw();
        c0.send('CONNECT {"protocol":0}\r\n');
        const c1 = await raw();
        c1.send('CONNECT {"protocol":1,"headers":true,"no_responders":true}\r\n');
        await Promise.all([c0.sync(), c1.sync()]);
        expect(c0.transcript()).toBe(`${INFO_LINE}+OK\r\nPONG\r\n`);
        expect(c1.transcript()).toBe(`${INFO_LINE}+OK\r\nPONG\r\n`);
        book.record(kind, task.name, c0.transcript() + c1.transcript());
      });
    });

    describe("subjects", () => {
      it("SUB to an invalid subject ⇒ -ERR 'Invalid Subject', the connection stays open", async ({
        task,
      }) => {
        const c = await raw();
        c.send(`${QUIET}SUB foo..bar 1\r\nSUB foo.>.bar 2\r\nSUB .foo 3\r\nSUB foo. 4\r\nSUB >.foo 5\r\n`);
        c.send("SUB foo.* 6\r\nPUB foo.x 1\r\na\r\nPUB foo..bar 1\r\nb\r\n");
        await c.sync();
        expect(c.transcript()).toBe(
          `${INFO_LINE}${"-ERR 'Invalid Subject'\r\n".repeat(5)}MSG foo.x 6 1\r\na\r\n` +
            "-ERR 'Invalid Publish Subject'\r\nPONG\r\n",
        );
        expect(c.isClosed).toBe(false);
        book.record(kind, task.name, c.transcript());
      });

      it("verbose: an invalid SUB gets the -ERR and no +OK", async ({ task }) => {
        const c = await raw();
        c.send('CONNECT {"verbose":true}\r\nSUB foo..bar 1\r\n');
        await c.sync();
        expect(c.transcript()).toBe(`${INFO_LINE}+OK\r\n-ERR 'Invalid Subject'\r\nPONG\r\n`);
        book.record(kind, task.name, c.transcript());
      });

      it("pedantic (the default): PUB to a wildcard or empty-token subject ⇒ -ERR, the message is still delivered", async ({
        task,
      }) => {
        const c = await raw();
        c.send(`${QUIET}SUB foo.* 1\r\nPUB foo.* 2\r\nhi\r\nPUB foo..x 2\r\nhi\r\nPUB foo.> 2\r\nho\r\n`);
        await c.sync();
        expect(c.transcript()).toBe(
          `${INFO_LINE}-ERR 'Invalid Publish Subject'\r\nMSG foo.* 1 2\r\nhi\r\n` +
            "-ERR 'Invalid Publish Subject'\r\n-ERR 'Invalid Publish Subject'\r\nMSG foo.> 1 2\r\nho\r\nPONG\r\n",
        );
        expect(c.isClosed).toBe(false);
        book.record(kind, task.name, c.transcript());
      });

      it("pedantic and verbose: the -ERR comes before the PUB's +OK", async ({ task }) => {
        const c = await raw();
        c.send('CONNECT {"verbose":true,"pedantic":true}\r\nSUB foo.* 1\r\nPUB foo.* 2\r\nhi\r\n');
        await c.sync();
        expect(c.transcript()).toBe(
          `${INFO_LINE}+OK\r\n+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\nMSG foo.* 1 2\r\nhi\r\nPONG\r\n`,
        );
        book.record(kind, task.name, c.transcript());
      });

      it("pedantic:false: no error; `foo.*` is matched as a token, an empty token matches nothing", async ({
        task,
      }) => {
        const c = await raw();
        c.send('CONNECT {"verbose":false,"pedantic":false}\r\nSUB foo.* 1\r\nSUB > 2\r\nSUB foo.bar 3\r\n');
        c.send("PUB foo.* 2\r\nhi\r\nPUB foo..x 2\r\nno\r\nPUB .foo 2\r\nno\r\n");
        await c.sync();
        // the order of deliveries to several matching subs of one connection is not specified: compare sorted
        const lines = c.msgs.map((m) => m.raw.toString("latin1")).sort();
        expect(lines).toEqual(["MSG foo.* 1 2\r\nhi\r\n", "MSG foo.* 2 2\r\nhi\r\n"]);
        expect(c.framesOf("-ERR")).toEqual([]);
        book.record(kind, task.name, lines.join(""));
      });
    });
  });

  describe("max_payload: 100", () => {
    const server = useServer(kind, "max_payload: 100");
    const raw = () => connectRaw(server().port);

    it("INFO announces max_payload 100", async () => {
      const c = await raw();
      expect(infoProblems(c.info, { port: server().port, maxPayload: 100, authRequired: false })).toEqual([]);
    });

    it("PUB of exactly max_payload bytes is delivered", async ({ task }) => {
      const c = await raw();
      const body = "p".repeat(100);
      c.send(`${QUIET}SUB foo 1\r\nPUB foo 100\r\n${body}\r\nPUB foo r 100\r\n${body}\r\n`);
      await c.sync();
      expect(c.transcript()).toBe(
        `${INFO_LINE}MSG foo 1 100\r\n${body}\r\nMSG foo 1 r 100\r\n${body}\r\nPONG\r\n`,
      );
      book.record(kind, task.name, c.transcript());
    });

    it.each([
      ["PUB foo 101", "PUB foo 101\r\n"],
      ["PUB with reply", "PUB foo bar 101\r\n"],
      ["PUB far above the limit", "PUB foo 1048577\r\n"],
    ])("%s ⇒ -ERR 'Maximum Payload Violation' and close, before any payload", async (scenario, line) => {
      const c = await raw();
      c.send(QUIET + line); // no payload is ever sent: the check is on the control line
      await expectClosedAfter(c, "-ERR 'Maximum Payload Violation'\r\n");
      book.record(kind, `max_payload: ${scenario}`, c.transcript());
    });

    it("HPUB: the total size counts; 100 in total is delivered", async ({ task }) => {
      const c = await raw();
      const hdr = "NATS/1.0\r\nX-Key: v\r\n\r\n"; // 22 bytes
      const body = "b".repeat(78);
      c.send(`${QUIET_HEADERS}SUB foo 1\r\nHPUB foo 22 100\r\n${hdr}${body}\r\n`);
      await c.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}HMSG foo 1 22 100\r\n${hdr}${body}\r\nPONG\r\n`);
      book.record(kind, task.name, c.transcript());
    });

    it("HPUB with a total of 101 ⇒ -ERR 'Maximum Payload Violation' and close", async ({ task }) => {
      const c = await raw();
      c.send(`${QUIET_HEADERS}HPUB foo 22 101\r\n`);
      await expectClosedAfter(c, "-ERR 'Maximum Payload Violation'\r\n");
      book.record(kind, task.name, c.transcript());
    });
  });

  describe("max_control_line: 64", () => {
    const server = useServer(kind, "max_control_line: 64");
    const raw = () => connectRaw(server().port);
    const ERR = "-ERR 'maximum control line exceeded'\r\n";

    it("a 64-byte argument is accepted, 65 bytes ⇒ -ERR and close (the op itself does not count)", async ({
      task,
    }) => {
      const c = await raw();
      const subj64 = "s".repeat(62); // "SUB " + 62 + " 1": 64 bytes of arguments
      c.send(`${QUIET}SUB ${subj64} 1\r\nPUB ${subj64} 1\r\nx\r\n`);
      await c.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}MSG ${subj64} 1 1\r\nx\r\nPONG\r\n`);
      c.send(`SUB ${subj64} 11\r\n`);
      await expectClosedAfter(c, `MSG ${subj64} 1 1\r\nx\r\nPONG\r\n${ERR}`);
      book.record(kind, task.name, c.transcript());
    });

    it.each([
      ["PUB", `PUB ${"p".repeat(70)} 1\r\n`],
      ["HPUB", `HPUB ${"h".repeat(70)} 12 14\r\n`],
      ["UNSUB", `UNSUB ${"9".repeat(70)}\r\n`],
      ["CONNECT (also counted)", `CONNECT {"verbose":false,"name":"${"n".repeat(60)}"}\r\n`],
    ])("an over-long %s line ⇒ -ERR and close", async (scenario, line) => {
      const c = await raw();
      c.send(line);
      await expectClosedAfter(c, ERR);
      book.record(kind, `max_control_line: ${scenario}`, c.transcript());
    });

    it("an over-long line that never ends (no CRLF), sent in pieces ⇒ -ERR and close", async ({ task }) => {
      const c = await raw();
      c.send(QUIET);
      await c.sync();
      c.send(`SUB ${"a".repeat(40)}`);
      await new Promise((r) => setImmediate(r)); // a separate write: the server sees the line in two reads
      c.send("b".repeat(40));
      await expectClosedAfter(c, `PONG\r\n${ERR}`);
      book.record(kind, task.name, c.transcript());
    });

    it("a PING line with a long tail is not limited; payloads above max_control_line are fine", async ({
      task,
    }) => {
      const c = await raw();
      const body = "0123456789".repeat(20);
      c.send(`${QUIET}SUB foo 1\r\nPUB foo 200\r\n${body}\r\nPING ${"z".repeat(80)}\r\n`);
      await c.waitFor("PONG\r\n");
      expect(c.transcript()).toBe(`${INFO_LINE}MSG foo 1 200\r\n${body}\r\nPONG\r\n`);
      book.record(kind, task.name, c.transcript());
    });
  });
});

describeTranscriptCheck({ kinds, book });

/**
 * Raw-socket delivery tests: PUB/MSG and HPUB/HMSG bytes, header stripping for clients without headers,
 * echo, auto-unsubscribe, duplicate sids, queue groups and the no-responders status message, checked
 * byte for byte against every server kind, then a check that all kinds produced the same transcripts.
 *
 * Expectations were captured from Debian's nats-server 2.9.10 (reference: /work/shared/reference/
 * nats-protocol-2.9.md §1.3-1.9). `BH_KINDS=nats-server` restricts the kinds.
 */
import { describe, expect, it } from "vitest";
import { connectRaw, INFO_LINE, type RawClient, transcripts } from "../helpers/raw-client.js";
import { describeTranscriptCheck, QUIET, QUIET_HEADERS, rawComparison } from "../helpers/raw-kit.js";
import { useServer } from "../helpers/server-hooks.js";

const { kinds, book } = rawComparison();

const NO_RESPONDERS = 'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n';
const HDR = "NATS/1.0\r\nX-Key: v\r\n\r\n"; // 22 bytes, the reference's header block

/** Syncs each client in turn: after `pub`'s PONG the server has queued every delivery it caused. */
async function syncAll(...clients: RawClient[]): Promise<void> {
  for (const c of clients) await c.sync();
}

describe.each(kinds)("raw delivery against %s", (kind) => {
  const server = useServer(kind);
  /** A connected client that has sent `connect` and had it processed. */
  async function client(connect = QUIET, name?: string): Promise<RawClient> {
    const c = await connectRaw(server().port, { name });
    c.send(connect);
    await c.sync();
    return c;
  }

  describe("PUB and MSG", () => {
    it("with and without reply, empty and CRLF-containing payloads", async ({ task }) => {
      const [sub, pub] = [await client(QUIET, "sub"), await client(QUIET, "pub")];
      sub.send("SUB foo 1\r\n");
      await sub.sync();
      pub.send(
        "PUB foo 5\r\nhello\r\nPUB foo my.reply 5\r\nhello\r\nPUB foo 0\r\n\r\nPUB foo 4\r\na\r\nb\r\n",
      );
      await syncAll(pub, sub);
      expect(sub.transcript()).toBe(
        `${INFO_LINE}PONG\r\nPONG\r\nMSG foo 1 5\r\nhello\r\nMSG foo 1 my.reply 5\r\nhello\r\nMSG foo 1 0\r\n\r\n` +
          "MSG foo 1 4\r\na\r\nb\r\nPONG\r\n",
      );
      expect(pub.transcript()).toBe(`${INFO_LINE}PONG\r\nPONG\r\n`);
      book.record(kind, task.name, transcripts({ sub, pub }));
    });

    it("the MSG carries the subscriber's sid and subject as published, for wildcard subs too", async ({
      task,
    }) => {
      const [sub, pub] = [await client(QUIET, "sub"), await client(QUIET, "pub")];
      sub.send("SUB foo.* 42\r\n");
      await sub.sync();
      pub.send(
        "PUB foo.bar 1\r\nx\r\nPUB foo.baz inbox.1 1\r\ny\r\nPUB foo 1\r\nn\r\nPUB foo.bar.baz 1\r\nn\r\n",
      );
      await syncAll(pub, sub);
      expect(sub.transcript()).toBe(
        `${INFO_LINE}PONG\r\nPONG\r\nMSG foo.bar 42 1\r\nx\r\nMSG foo.baz 42 inbox.1 1\r\ny\r\nPONG\r\n`,
      );
      book.record(kind, task.name, transcripts({ sub, pub }));
    });
  });

  describe("HPUB and HMSG", () => {
    it("exact HMSG bytes, with and without reply, and a header-only message", async ({ task }) => {
      const [sub, pub] = [await client(QUIET_HEADERS, "sub"), await client(QUIET_HEADERS, "pub")];
      sub.send("SUB foo 1\r\n");
      await sub.sync();
      pub.send(`HPUB foo 22 27\r\n${HDR}hello\r\nHPUB foo r 22 27\r\n${HDR}hello\r\n`);
      pub.send("HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n");
      await syncAll(pub, sub);
      expect(sub.transcript()).toBe(
        `${INFO_LINE}PONG\r\nPONG\r\nHMSG foo 1 22 27\r\n${HDR}hello\r\nHMSG foo 1 r 22 27\r\n${HDR}hello\r\n` +
          "HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\n\r\nPONG\r\n",
      );
      book.record(kind, task.name, transcripts({ sub, pub }));
    });

    it("a subscriber without headers:true gets MSG with the header block stripped", async ({ task }) => {
      const [sub, pub] = [await client(QUIET, "sub"), await client(QUIET_HEADERS, "pub")];
      sub.send("SUB foo 1\r\n");
      await sub.sync();
      pub.send(`HPUB foo 22 27\r\n${HDR}hello\r\nHPUB foo r 22 27\r\n${HDR}hello\r\n`);
      pub.send("HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n");
      await syncAll(pub, sub);
      expect(sub.transcript()).toBe(
        `${INFO_LINE}PONG\r\nPONG\r\nMSG foo 1 5\r\nhello\r\nMSG foo 1 r 5\r\nhello\r\nMSG foo 1 0\r\n\r\nPONG\r\n`,
      );
      book.record(kind, task.name, transcripts({ sub, pub }));
    });

    it("a PUB reaches a headers subscriber as plain MSG", async ({ task }) => {
      const [sub, pub] = [await client(QUIET_HEADERS, "sub"), await client(QUIET, "pub")];
      sub.send("SUB foo 1\r\n");
      await sub.sync();
      pub.send("PUB foo 2\r\nhi\r\n");
      await syncAll(pub, sub);
      expect(sub.transcript()).toBe(`${INFO_LINE}PONG\r\nPONG\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n`);
      book.record(kind, task.name, transcripts({ sub, pub }));
    });
  });

  describe("echo", () => {
    it("echo:false: a client does not get its own publishes, others do", async ({ task }) => {
      const self = await client('CONNECT {"verbose":false,"echo":false}\r\n', "self");
      const other = await client(QUIET, "other");
      self.send("SUB foo 1\r\n");
      other.send("SUB foo 1\r\n");
      await syncAll(self, other);
      self.send("PUB foo 2\r\nhi\r\n");
      await syncAll(self, other);
      expect(self.transcript()).toBe(`${INFO_LINE}PONG\r\nPONG\r\nPONG\r\n`);
      expect(other.transcript()).toBe(`${INFO_LINE}PONG\r\nPONG\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n`);
      // ...but it still gets what others publish
      other.send("PUB foo 2\r\nyo\r\n");
      await syncAll(other, self);
      expect(self.transcript()).toBe(`${INFO_LINE}PONG\r\nPONG\r\nPONG\r\nMSG foo 1 2\r\nyo\r\nPONG\r\n`);
      book.record(kind, task.name, transcripts({ self, other }));
    });

    it("echo by default: a client gets its own publishes", async ({ task }) => {
      const c = await client();
      c.send("SUB foo 1\r\nPUB foo 2\r\nhi\r\n");
      await c.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}PONG\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n`);
      book.record(kind, task.name, c.transcript());
    });
  });

  describe("UNSUB", () => {
    it("UNSUB 1 2 then 3 publishes: exactly 2 delivered, then the sub is gone", async ({ task }) => {
      const [sub, pub] = [await client(QUIET, "sub"), await client(QUIET, "pub")];
      sub.send("SUB foo 1\r\nUNSUB 1 2\r\n");
      await sub.sync();
      pub.send("PUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n");
      await syncAll(pub, sub);
      expect(sub.transcript()).toBe(
        `${INFO_LINE}PONG\r\nPONG\r\nMSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n`,
      );
      // the sid is free again: the sub was removed, not just muted
      sub.send("SUB bar 1\r\n");
      await sub.sync();
      pub.send("PUB foo 1\r\nd\r\nPUB bar 1\r\ne\r\n");
      await syncAll(pub, sub);
      expect(sub.msgs.map((m) => m.raw.toString("latin1"))).toEqual([
        "MSG foo 1 1\r\na\r\n",
        "MSG foo 1 1\r\nb\r\n",
        "MSG bar 1 1\r\ne\r\n",
      ]);
      book.record(kind, task.name, transcripts({ sub, pub }));
    });

    it("a max at or below the count already delivered removes the sub at once", async ({ task }) => {
      const c = await client();
      c.send("SUB foo 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nUNSUB 1 2\r\nPUB foo 1\r\nc\r\n");
      c.send("SUB bar 3\r\nPUB bar 1\r\nd\r\nUNSUB 3 1\r\nPUB bar 1\r\ne\r\n");
      await c.sync();
      expect(c.transcript()).toBe(
        `${INFO_LINE}PONG\r\nMSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nMSG bar 3 1\r\nd\r\nPONG\r\n`,
      );
      book.record(kind, task.name, c.transcript());
    });

    it("UNSUB of an unknown sid is silently accepted (and +OK when verbose)", async ({ task }) => {
      const quiet = await client();
      quiet.send("UNSUB 77\r\nUNSUB 78 5\r\n");
      await quiet.sync();
      expect(quiet.transcript()).toBe(`${INFO_LINE}PONG\r\nPONG\r\n`);
      const verbose = await client('CONNECT {"verbose":true}\r\n');
      verbose.send("UNSUB 77\r\nUNSUB 78 5\r\n");
      await verbose.sync();
      expect(verbose.transcript()).toBe(`${INFO_LINE}+OK\r\nPONG\r\n+OK\r\n+OK\r\nPONG\r\n`);
      expect(quiet.isClosed || verbose.isClosed).toBe(false);
      book.record(kind, task.name, transcripts({ quiet, verbose }));
    });
  });

  describe("duplicate sid", () => {
    it("a second SUB with a used sid is ignored (+OK when verbose): one delivery, the new subject gets none", async ({
      task,
    }) => {
      const c = await client('CONNECT {"verbose":true}\r\n');
      c.send("SUB foo 1\r\nSUB foo 1\r\nSUB bar 1\r\nPUB foo 1\r\na\r\nPUB bar 1\r\nb\r\n");
      await c.sync();
      expect(c.transcript()).toBe(
        `${INFO_LINE}+OK\r\nPONG\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\nMSG foo 1 1\r\na\r\n+OK\r\nPONG\r\n`,
      );
      book.record(kind, task.name, c.transcript());
    });
  });

  describe("queue groups", () => {
    it("a plain sub gets every message; each group delivers each message to exactly one member", async ({
      task,
    }) => {
      const N = 60;
      const plain = await client(QUIET, "plain");
      plain.send("SUB work 1\r\n");
      const g1 = await Promise.all([1, 2, 3].map((i) => client(QUIET, `g1-${i}`)));
      const g2 = await Promise.all([1, 2].map((i) => client(QUIET, `g2-${i}`)));
      for (const m of g1) m.send("SUB work g1 5\r\n");
      for (const m of g2) m.send("SUB work g2 6\r\n");
      await syncAll(plain, ...g1, ...g2);
      const pub = await client(QUIET, "pub");
      for (let i = 0; i < N; i++) {
        const body = `m${i}`;
        pub.send(`PUB work ${body.length}\r\n${body}\r\n`);
      }
      await syncAll(pub, plain, ...g1, ...g2);
      const bodies = (cs: RawClient[]) =>
        cs.flatMap((c) => c.msgs.map((m) => m.payload?.toString("latin1") ?? "")).sort();
      const all = Array.from({ length: N }, (_, i) => `m${i}`).sort();
      expect(bodies([plain])).toEqual(all);
      expect(bodies(g1)).toEqual(all); // every message once, none twice
      expect(bodies(g2)).toEqual(all);
      // every member is eligible: with 60 messages spread at random, each gets some (p(miss) < 1e-10)
      for (const m of [...g1, ...g2]) expect(m.msgs.length, m.name).toBeGreaterThan(0);
      // deliveries keep the member's own sid
      expect(new Set(g1.flatMap((c) => c.msgs.map((m) => m.line.split(" ")[2])))).toEqual(new Set(["5"]));
      expect(g1.every((c) => c.msgs.every((m) => m.line === `MSG work 5 ${m.size}`))).toBe(true);
      book.record(
        kind,
        task.name,
        `plain=${plain.msgs.length} g1=${bodies(g1).length} g2=${bodies(g2).length} members>0`,
      );
    });

    it("a queue member and a plain sub on the same connection both get the message", async ({ task }) => {
      const c = await client();
      c.send("SUB work q 1\r\nPUB work 1\r\nx\r\n");
      await c.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}PONG\r\nMSG work 1 1\r\nx\r\nPONG\r\n`);
      c.send("SUB work 2\r\nPUB work 1\r\ny\r\n");
      await c.sync();
      const second = c.msgs
        .slice(1)
        .map((m) => m.raw.toString("latin1"))
        .sort();
      expect(second).toEqual(["MSG work 1 1\r\ny\r\n", "MSG work 2 1\r\ny\r\n"]);
      book.record(kind, task.name, second.join(""));
    });
  });

  describe("no responders", () => {
    const STATUS_503 = (subject: string, sid: string) =>
      `HMSG ${subject} ${sid} 16 16\r\nNATS/1.0 503\r\n\r\n\r\n`;

    it("a request to a subject nobody subscribes ⇒ the 503 status on the publisher's own reply sub", async ({
      task,
    }) => {
      const c = await client(NO_RESPONDERS);
      c.send("SUB _INBOX.x 7\r\nPUB nobody _INBOX.x 2\r\nhi\r\n");
      await c.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}PONG\r\n${STATUS_503("_INBOX.x", "7")}PONG\r\n`);
      // HPUB requests too, and a wildcard reply sub answers with its own sid
      c.send(`UNSUB 7\r\nSUB _INBOX.> 8\r\nHPUB nobody _INBOX.y 22 27\r\n${HDR}hello\r\n`);
      await c.sync();
      expect(c.transcript()).toBe(
        `${INFO_LINE}PONG\r\n${STATUS_503("_INBOX.x", "7")}PONG\r\n${STATUS_503("_INBOX.y", "8")}PONG\r\n`,
      );
      book.record(kind, task.name, c.transcript());
    });

    it("verbose: the PUB's +OK comes before the 503", async ({ task }) => {
      const c = await client('CONNECT {"verbose":true,"headers":true,"no_responders":true}\r\n');
      c.send("SUB _INBOX.x 7\r\nPUB nobody _INBOX.x 2\r\nhi\r\n");
      await c.sync();
      expect(c.transcript()).toBe(
        `${INFO_LINE}+OK\r\nPONG\r\n+OK\r\n+OK\r\n${STATUS_503("_INBOX.x", "7")}PONG\r\n`,
      );
      book.record(kind, task.name, c.transcript());
    });

    it("two reply subs of the publisher match: one 503, not two", async ({ task }) => {
      const c = await client(NO_RESPONDERS);
      c.send("SUB _INBOX.x 7\r\nSUB _INBOX.> 8\r\nPUB nobody _INBOX.x 2\r\nhi\r\n");
      await c.sync();
      expect(c.msgs.length).toBe(1);
      expect(["7", "8"]).toContain(c.msgs[0]?.sid);
      expect(c.msgs[0]?.raw.toString("latin1")).toBe(STATUS_503("_INBOX.x", c.msgs[0]?.sid ?? "?"));
      book.record(kind, task.name, "one 503");
    });

    it("nothing when a subscriber exists, when the reply is subscribed only by someone else, without a reply, without no_responders, or with only a queue sub on the reply", async ({
      task,
    }) => {
      const c = await client(NO_RESPONDERS, "requester");
      const other = await client(QUIET, "other");
      other.send("SUB svc 1\r\nSUB _INBOX.other 2\r\n");
      await other.sync();
      c.send("SUB _INBOX.x 7\r\nPUB svc _INBOX.x 2\r\nhi\r\n"); // a responder exists
      c.send("PUB nobody _INBOX.other 2\r\nhi\r\n"); // the reply is someone else's
      c.send("PUB nobody 2\r\nhi\r\n"); // no reply
      c.send("SUB _INBOX.q q 9\r\nPUB nobody _INBOX.q 2\r\nhi\r\n"); // only a queue sub on the reply
      await syncAll(c, other);
      const plain = await client(QUIET_HEADERS, "plain"); // headers but no no_responders
      plain.send("SUB _INBOX.p 1\r\nPUB nobody _INBOX.p 2\r\nhi\r\n");
      await plain.sync();
      expect(c.transcript()).toBe(`${INFO_LINE}PONG\r\nPONG\r\n`);
      expect(other.transcript()).toBe(`${INFO_LINE}PONG\r\nPONG\r\nMSG svc 1 _INBOX.x 2\r\nhi\r\nPONG\r\n`);
      expect(plain.transcript()).toBe(`${INFO_LINE}PONG\r\nPONG\r\n`);
      book.record(kind, task.name, transcripts({ c, other, plain }));
    });
  });
});

describeTranscriptCheck({ kinds, book });

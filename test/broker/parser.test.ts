import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ClientParser,
  type ClientParserHandler,
  ParseFailure,
  type PubArgs,
  parseSize,
  splitArgs,
} from "../../src/broker/parser.js";

/** Records every callback as a line, so whole streams can be compared. */
class Recorder implements ClientParserHandler {
  events: string[] = [];
  onConnect(json: string): boolean {
    this.events.push(`CONNECT ${json}`);
    return true;
  }
  onPubArgs(pa: PubArgs): boolean {
    this.events.push(`ARGS ${pa.subject} ${pa.reply ?? "-"} ${pa.hdr} ${pa.size}`);
    return true;
  }
  onMsg(pa: PubArgs, buf: Buffer, start: number, end: number): boolean {
    this.events.push(`MSG ${pa.subject} ${buf.toString("latin1", start, end)}`);
    return true;
  }
  onSub(subject: string, queue: string | undefined, sid: string): boolean {
    this.events.push(`SUB ${subject} ${queue ?? "-"} ${sid}`);
    return true;
  }
  onUnsub(sid: string, max: number | undefined): boolean {
    this.events.push(`UNSUB ${sid} ${max ?? "-"}`);
    return true;
  }
  onPing(): boolean {
    this.events.push("PING");
    return true;
  }
  onPong(): boolean {
    this.events.push("PONG");
    return true;
  }
  onClientErr(): void {
    this.events.push("ERR client");
  }
  onParseError(failure: ParseFailure, _detail: string): void {
    this.events.push(`ERR ${failure}`);
  }
}

function parseChunks(chunks: Buffer[], mcl = 4096): string[] {
  const r = new Recorder();
  const p = new ClientParser(r, mcl);
  for (const c of chunks) p.parse(c);
  return r.events;
}

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (c <= prev || c >= buf.length) continue;
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

const STREAM = Buffer.from(
  'CONNECT {"verbose":false,"headers":true}\r\n' +
    "SUB foo.* 1\r\n" +
    "sub\tbar  q1 \t 2\r\n" +
    "PUB foo.a 5\r\nhello\r\n" +
    "PUB foo.b reply.x 0\r\n\r\n" +
    "HPUB foo.c 22 27\r\nNATS/1.0\r\nX-Key: v\r\n\r\nhello\r\n" +
    "PING\r\nPONG\r\n" +
    "UNSUB 1 5\r\nUNSUB 2\r\n" +
    "pub foo.d 3\nabc\r\n" +
    "+OK\r\nINFO {}\r\n" +
    "PUB big 300\r\n" +
    "x".repeat(300) +
    "\r\n",
);

describe("ClientParser", () => {
  const whole = parseChunks([STREAM]);

  it("parses every op of a well-formed stream", () => {
    expect(whole).toEqual([
      'CONNECT {"verbose":false,"headers":true}',
      "SUB foo.* - 1",
      "SUB bar q1 2",
      "ARGS foo.a - -1 5",
      "MSG foo.a hello",
      "ARGS foo.b reply.x -1 0",
      "MSG foo.b ",
      "ARGS foo.c - 22 27",
      "MSG foo.c NATS/1.0\r\nX-Key: v\r\n\r\nhello",
      "PING",
      "PONG",
      "UNSUB 1 5",
      "UNSUB 2 -",
      "ARGS foo.d - -1 3",
      "MSG foo.d abc",
      "ARGS big - -1 300",
      `MSG big ${"x".repeat(300)}`,
    ]);
  });

  it("gives the same events when the input is split at any single byte", () => {
    for (let cut = 1; cut < STREAM.length; cut++) {
      expect(parseChunks(splitAt(STREAM, [cut])), `split at ${cut}`).toEqual(whole);
    }
  });

  it("gives the same events when the input is fed one byte at a time", () => {
    const bytes = [...STREAM].map((b) => Buffer.from([b]));
    expect(parseChunks(bytes)).toEqual(whole);
  });

  it("gives the same events for random splits (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: STREAM.length - 1 }), { maxLength: 40 }), (cuts) => {
        expect(parseChunks(splitAt(STREAM, cuts))).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses an unknown op at its first bad byte, before any line end", () => {
    expect(parseChunks([Buffer.from("PUX")])).toEqual([`ERR ${ParseFailure.UnknownOp}`]);
    expect(parseChunks([Buffer.from(" PING\r\n")])).toEqual([`ERR ${ParseFailure.UnknownOp}`]);
    expect(parseChunks([Buffer.from("MSG foo 1 1\r\n")])).toEqual([`ERR ${ParseFailure.UnknownOp}`]);
  });

  it("refuses a payload not followed by CRLF", () => {
    expect(parseChunks([Buffer.from("PUB foo 2\r\nhello\r\n")])).toEqual([
      "ARGS foo - -1 2",
      `ERR ${ParseFailure.UnknownOp}`,
    ]);
  });

  it("treats malformed arguments as BadArgs (closed without -ERR)", () => {
    for (const line of [
      "PUB foo x\r\n",
      "PUB foo\r\n",
      "PUB a b c 1\r\n",
      "HPUB foo 10 5\r\n",
      "SUB foo\r\n",
      "UNSUB 1 2 3\r\n",
    ]) {
      expect(parseChunks([Buffer.from(line)]), line).toEqual([`ERR ${ParseFailure.BadArgs}`]);
    }
  });

  it("enforces max_control_line on complete and on partial lines", () => {
    const long = `SUB ${"a".repeat(100)} 1`;
    expect(parseChunks([Buffer.from(`${long}\r\n`)], 64)).toEqual([`ERR ${ParseFailure.MaxControlLine}`]);
    // No line end at all: refused once the partial line exceeds the limit, without waiting for more.
    expect(parseChunks([Buffer.from(long)], 64)).toEqual([`ERR ${ParseFailure.MaxControlLine}`]);
    // Trickling in small pieces is caught too.
    const pieces = splitAt(Buffer.from(long), [10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(parseChunks(pieces, 64)).toEqual([`ERR ${ParseFailure.MaxControlLine}`]);
  });

  it("accepts a non-numeric UNSUB max as 'none' (nats-server's parseSize gives -1)", () => {
    expect(parseChunks([Buffer.from("UNSUB 1 x\r\n")])).toEqual(["UNSUB 1 -1"]);
  });

  it("stops at a client's -ERR (nats-server closes such a connection)", () => {
    expect(parseChunks([Buffer.from("-ERR 'boom'\r\nPING\r\n")])).toEqual(["ERR client"]);
  });

  it("reports ops before CONNECT as an auth failure while awaiting CONNECT", () => {
    const r = new Recorder();
    const p = new ClientParser(r, 4096);
    p.awaitingConnect = true;
    p.parse(Buffer.from("PING\r\n"));
    expect(r.events).toEqual([`ERR ${ParseFailure.AuthRequired}`]);
  });

  it("ignores input after a failure", () => {
    const r = new Recorder();
    const p = new ClientParser(r, 4096);
    p.parse(Buffer.from("XYZ\r\n"));
    p.parse(Buffer.from("PING\r\n"));
    expect(r.events).toEqual([`ERR ${ParseFailure.UnknownOp}`]);
  });

  it("never throws and never loops on arbitrary bytes (fuzz)", () => {
    const tokens = [
      "PUB ",
      "HPUB ",
      "SUB ",
      "UNSUB ",
      "PING",
      "PONG",
      "CONNECT ",
      "\r\n",
      "\n",
      " ",
      "\t",
      "foo",
      "5",
      "22",
      "-1",
      "999999999",
      "hello",
      "{}",
      "*",
      ">",
      "+OK",
      "-ERR x",
      "INFO {}",
    ];
    const piece = fc.oneof(
      fc.constantFrom(...tokens),
      fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a).toString("latin1")),
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 40 }),
        fc.array(fc.nat(200), { maxLength: 6 }),
        (parts, cuts) => {
          const buf = Buffer.from(parts.join(""), "latin1");
          const events = parseChunks(splitAt(buf, cuts));
          // At most one failure, and it is the last event.
          const errs = events.filter((e) => e.startsWith("ERR"));
          expect(errs.length).toBeLessThanOrEqual(1);
          if (errs.length === 1) expect(events.at(-1)).toBe(errs[0]);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("parseSize / splitArgs", () => {
  it("accepts only up to nine decimal digits, like nats-server", () => {
    expect(parseSize("0")).toBe(0);
    expect(parseSize("123456789")).toBe(123456789);
    expect(parseSize("1234567890")).toBe(-1);
    expect(parseSize("")).toBe(-1);
    expect(parseSize("-1")).toBe(-1);
    expect(parseSize("1a")).toBe(-1);
  });
  it("splits on runs of spaces and tabs", () => {
    expect(splitArgs(" a\t b  c ")).toEqual(["a", "b", "c"]);
    expect(splitArgs("")).toEqual([]);
  });
});

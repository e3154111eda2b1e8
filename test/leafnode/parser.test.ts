/**
 * The hub-side protocol parser: every op nats-server 2.9.10 sends a leaf (the transcripts of the protocol
 * reference §2), split at every byte, and random or mutated bytes, which may only ever raise
 * LeafProtocolError. The encoder's LMSG/HMSG are parsed back as a round trip.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeMsg, encodeSub, encodeUnsub } from "../../src/region/leafnode/encoder.js";
import { type HubOp, LeafParser, LeafProtocolError } from "../../src/region/leafnode/parser.js";
import { parseLeafUrl } from "../../src/region/leafnode/url.js";

/** What nats-server sent a leaf on the wire (protocol reference §2.1, §2.3, §2.5, §2.7). */
const TRANSCRIPT = Buffer.from(
  [
    'INFO {"server_id":"NDQSC4","server_name":"hub1","version":"2.9.10","proto":1,"headers":true,"auth_required":true,"max_payload":1048576,"client_id":4,"nonce":"zTHF","info_on_connect":true,"leafnode_urls":["127.0.0.1:27422"]} \r\n',
    'INFO {"server_id":"NDQSC4","client_id":4,"info_on_connect":true,"connect_info":true,"leafnode_urls":["127.0.0.1:27422"],"remote_account":"$G"} \r\n',
    "LS+ $SYS.REQ.ACCOUNT.PING.STATZ\r\n",
    "LS+ $LDS.Id12hwgXXhbKxhUcHfD83T\r\n",
    "PING\r\n",
    "LS+ foo\r\nLS+ bar q1 1\r\nLS+ bar q1 2\r\nLS+ wc.*\r\nls+ wc.>\r\n",
    "LMSG foo 5\r\nhello\r\n",
    "LMSG foo my.reply 5\r\nhello\r\n",
    "HMSG foo 22 27\r\nNATS/1.0\r\nX-Key: v\r\n\r\nhello\r\n",
    "LMSG lq | q1 5\r\nhello\r\n",
    "LMSG lq + rep.1 q1 q2 5\r\nhello\r\n",
    "HMSG lq + rep.2 q1 22 27\r\nNATS/1.0\r\nX-Key: v\r\n\r\nhello\r\n",
    "LMSG empty 0\r\n\r\n",
    "LS- bar q1\r\nLS-\tfoo\r\n",
    "PONG\r\n+OK\r\n",
    "-ERR 'Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s'\r\n",
  ].join(""),
);

interface Seen {
  type: string;
  [k: string]: unknown;
}

function norm(op: HubOp): Seen {
  if (op.type === "msg") return { ...op, payload: op.payload.toString("latin1") };
  if (op.type === "info") return { type: "info", id: op.info.client_id, ci: op.info.connect_info ?? false };
  return { ...op };
}

function parseAll(chunks: Buffer[]): Seen[] {
  const out: Seen[] = [];
  const p = new LeafParser((op) => out.push(norm(op)));
  for (const c of chunks) p.push(c);
  expect(p.buffered).toBe(0);
  return out;
}

describe("leafnode parser", () => {
  const whole = parseAll([TRANSCRIPT]);

  it("parses what nats-server sends a leaf", () => {
    expect(whole.map((o) => o.type)).toEqual([
      "info",
      "info",
      "sub",
      "sub",
      "ping",
      "sub",
      "sub",
      "sub",
      "sub",
      "sub",
      "msg",
      "msg",
      "msg",
      "msg",
      "msg",
      "msg",
      "msg",
      "unsub",
      "unsub",
      "pong",
      "ok",
      "err",
    ]);
    expect(whole[1]).toEqual({ type: "info", id: 4, ci: true });
    expect(whole[7]).toEqual({ type: "sub", subject: "bar", queue: "q1", weight: 2 });
    expect(whole[10]).toEqual({
      type: "msg",
      subject: "foo",
      reply: undefined,
      queues: [],
      hdr: 0,
      payload: "hello",
    });
    expect(whole[11]).toMatchObject({ reply: "my.reply", queues: [] });
    expect(whole[12]).toMatchObject({ hdr: 22, payload: "NATS/1.0\r\nX-Key: v\r\n\r\nhello" });
    expect(whole[13]).toMatchObject({ subject: "lq", reply: undefined, queues: ["q1"] });
    expect(whole[14]).toMatchObject({ reply: "rep.1", queues: ["q1", "q2"] });
    expect(whole[15]).toMatchObject({ reply: "rep.2", queues: ["q1"], hdr: 22 });
    expect(whole[16]).toMatchObject({ subject: "empty", payload: "" });
    expect(whole[17]).toEqual({ type: "unsub", subject: "bar", queue: "q1" });
    expect(whole[18]).toEqual({ type: "unsub", subject: "foo", queue: undefined });
    expect(whole[21]).toMatchObject({ message: expect.stringContaining("Loop detected") });
  });

  it("gives the same ops however the bytes are split (every split point, and byte by byte)", () => {
    for (let i = 0; i <= TRANSCRIPT.length; i++) {
      expect(parseAll([TRANSCRIPT.subarray(0, i), TRANSCRIPT.subarray(i)])).toEqual(whole);
    }
    const bytes = [...TRANSCRIPT].map((b) => Buffer.from([b]));
    expect(parseAll(bytes)).toEqual(whole);
  });

  it("splits randomly into many chunks with the same result", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(TRANSCRIPT.length), { maxLength: 20 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of points) {
          chunks.push(TRANSCRIPT.subarray(prev, c));
          prev = c;
        }
        chunks.push(TRANSCRIPT.subarray(prev));
        expect(parseAll(chunks)).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  it("refuses malformed ops with LeafProtocolError", () => {
    for (const bad of [
      "LMSG foo x\r\n",
      "LMSG foo\r\n",
      "LMSG foo a b 5\r\n",
      "HMSG foo 10 5\r\n",
      "LS+ a b\r\n",
      "LS+ a q 0\r\n",
      "LS- a b c\r\n",
      "INFO nope\r\n",
      "INFO [1]\r\n",
      "WHAT\r\n",
      "\r\n",
      "LMSG foo 3\r\nabcX\r\n",
    ]) {
      expect(() => new LeafParser(() => {}).push(Buffer.from(bad)), bad).toThrow(LeafProtocolError);
    }
    const p = new LeafParser(() => {}, { maxControlLine: 16 });
    expect(() => p.push(Buffer.from("LS+ a.very.long.subject.without.end"))).toThrow(LeafProtocolError);
    const q = new LeafParser(() => {}, { maxPayload: 4 });
    expect(() => q.push(Buffer.from("LMSG foo 5\r\n"))).toThrow(LeafProtocolError);
  });

  it("random and mutated bytes raise nothing but LeafProtocolError", () => {
    const typedOnly = (chunks: Uint8Array[]) => {
      const p = new LeafParser(() => {}, { maxControlLine: 4096, maxPayload: 1 << 20 });
      try {
        for (const c of chunks) p.push(Buffer.from(c));
      } catch (err) {
        if (!(err instanceof LeafProtocolError)) throw err;
      }
    };
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), typedOnly), {
      numRuns: 500,
    });
    fc.assert(
      fc.property(fc.nat(TRANSCRIPT.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
        const m = Buffer.from(TRANSCRIPT);
        m[at] = byte;
        typedOnly([m]);
      }),
      { numRuns: 1000 },
    );
  });

  it("parses back what the encoder writes", () => {
    const payload = Buffer.from("xxNATS/1.0\r\nA: b\r\n\r\nbodyxx");
    const cases: [string, string | undefined, string[], number][] = [
      ["a.b", undefined, [], 0],
      ["a.b", "r.1", [], 0],
      ["a.b", undefined, ["q1", "q2"], 0],
      ["a.b", "r.1", ["q1"], 0],
      ["a.b", "r.2", ["q1"], 18],
      ["a.b", undefined, [], 18],
    ];
    const wire = Buffer.concat(
      cases.map(([s, r, q, h]) => encodeMsg(s, r, q, h, payload, 2, payload.length - 2)),
    );
    const got = parseAll([wire]);
    expect(got).toEqual(
      cases.map(([subject, reply, queues, hdr]) => ({
        type: "msg",
        subject,
        reply,
        queues,
        hdr,
        payload: "NATS/1.0\r\nA: b\r\n\r\nbody",
      })),
    );
    expect(encodeSub("a", "q", 3)).toBe("LS+ a q 3\r\n");
    expect(encodeUnsub("a", undefined)).toBe("LS- a\r\n");
  });

  it("parses leafnode URLs and refuses what the adapter cannot dial", () => {
    expect(parseLeafUrl("nats-leaf://u:p%40ss@10.0.0.1:7422")).toEqual({
      host: "10.0.0.1",
      port: 7422,
      url: "nats-leaf://10.0.0.1:7422",
      user: "u",
      password: "p@ss",
    });
    expect(parseLeafUrl("nats://[::1]:7422").host).toBe("::1");
    expect(() => parseLeafUrl("tls://h:7422")).toThrow(/TLS/);
    expect(() => parseLeafUrl("http://h:7422")).toThrow(/nats-leaf/);
    expect(() => parseLeafUrl("nats-leaf://h")).toThrow(/port/);
    expect(() => parseLeafUrl("nats-leaf://u:secret@h")).toThrow(/u:\*\*\*@h/);
  });
});

describe("leafnode parser: large payloads in many chunks", () => {
  it("gathers a payload split into many chunks and joins it once", () => {
    const body = Buffer.alloc(300_000, 0x61);
    const wire = Buffer.concat([
      Buffer.from(`LMSG big ${body.length}\r\n`),
      body,
      Buffer.from("\r\nPING\r\n"),
    ]);
    const got: HubOp[] = [];
    const p = new LeafParser((op) => got.push(op));
    for (let i = 0; i < wire.length; i += 1000) {
      p.push(wire.subarray(i, i + 1000));
      if (i + 1000 < wire.length - 20) expect(got).toHaveLength(0);
    }
    expect(got.map((o) => o.type)).toEqual(["msg", "ping"]);
    const m = got[0] as Extract<HubOp, { type: "msg" }>;
    expect(m.payload.equals(body)).toBe(true);
    expect(p.buffered).toBe(0);
  });
});

/**
 * A hand-written link peer for protocol tests: it dials a region's gateway listener with a real
 * `LinkDialer` (so the handshake and heartbeats are the real ones), then speaks the binary protocol by hand
 * with `FrameEncoder` and `decodeFrame` — no Gateway behind it. Every op the region sends is recorded in
 * order (payloads copied), so a test can wait for one and check what came before it.
 *
 * By default the peer does not redial: when its link ends, the dialer is stopped and `ended` resolves with
 * how the link ended.
 */
import { pino } from "pino";
import { decodeFrame, FrameEncoder, type InterestEntryWire, type LinkOp } from "../../src/gateway/codec.js";
import { type Link, type LinkCloseInfo, LinkDialer } from "../../src/gateway/link.js";
import type { Logger } from "../../src/util/logger.js";

export type OpOf<K extends LinkOp["type"]> = Extract<LinkOp, { type: K }>;

export interface LinkPeerOptions {
  /** ws://host:port/bridgehead/v1 of the region's gateway. */
  readonly url: string;
  /** The region this peer claims to be. */
  readonly region: string;
  readonly token: string;
  /** The region expected at the URL (refused with 4002 otherwise). */
  readonly expectRegion?: string;
  readonly logger?: Logger;
  /** How long `connect` waits for the handshake. Default 5000 ms. */
  readonly timeoutMs?: number;
}

export class LinkPeer {
  /** Every op received on this peer's link, in order. */
  readonly ops: LinkOp[] = [];
  /** Every binary frame received, in order (copies). */
  readonly frames: Buffer[] = [];
  /** Resolves when the link ends (or a dial attempt fails before it is established). */
  readonly ended: Promise<LinkCloseInfo>;
  /** Frames that did not decode (the region sent something malformed: a test failure). */
  readonly badFrames: { frame: Buffer; error: unknown }[] = [];

  private readonly encoder = new FrameEncoder();
  /** Origin sequence of the next MSG this peer originates (numbered like a real region: 1, 2, 3, …). */
  private originSeq = 0;
  private link: Link | undefined;
  private resolveEnded: (info: LinkCloseInfo) => void = () => {};

  private constructor(
    private readonly dialer: LinkDialer,
    readonly region: string,
  ) {
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
  }

  /** Dials and resolves once the handshake is done (the link is `syncing`); rejects if it is refused. */
  static async connect(o: LinkPeerOptions): Promise<LinkPeer> {
    const dialer = new LinkDialer({
      region: o.region,
      token: o.token,
      url: o.url,
      ...(o.expectRegion === undefined ? {} : { expectRegion: o.expectRegion }),
      logger: o.logger ?? pino({ level: process.env.BH_TEST_LOG ?? "silent" }),
    });
    const peer = new LinkPeer(dialer, o.region);
    const established = new Promise<Link>((resolve, reject) => {
      dialer.onLink((link) => {
        peer.link = link;
        link.onFrame((frame) => peer.onFrame(frame));
        resolve(link);
      });
      dialer.onClose((info) => {
        // One link per peer: no redial.
        void dialer.stop();
        peer.resolveEnded(info);
        reject(new Error(`link refused or lost before the handshake: ${info.code} ${info.reason}`));
      });
    });
    established.catch(() => {}); // raced below; a late rejection must not go unhandled
    dialer.start();
    const timeoutMs = o.timeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        established,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no handshake within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      await dialer.stop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return peer;
  }

  /** The peer's link (after `connect`). */
  get current(): Link {
    if (this.link === undefined) throw new Error("not connected");
    return this.link;
  }

  /** The number of ops received so far: pass it as `from` to wait only for later ones. */
  mark(): number {
    return this.ops.length;
  }

  /** Ops of one type received so far (from index `from`). */
  received<K extends LinkOp["type"]>(type: K, from = 0): OpOf<K>[] {
    return this.ops.slice(from).filter((op): op is OpOf<K> => op.type === type);
  }

  /** Waits for the first op at index >= `from` of `type` that satisfies `pred`. */
  async waitFor<K extends LinkOp["type"]>(
    type: K,
    pred: (op: OpOf<K>) => boolean = () => true,
    opts: { from?: number; timeoutMs?: number; what?: string } = {},
  ): Promise<OpOf<K>> {
    const from = opts.from ?? 0;
    const timeoutMs = opts.timeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.ops.length; i++) {
        const op = this.ops[i]!;
        if (op.type === type && pred(op as OpOf<K>)) return op as OpOf<K>;
      }
      if (this.badFrames.length > 0)
        throw new Error(`the region sent a malformed frame: ${String(this.badFrames[0]!.error)}`);
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${opts.what ?? type} (got ${this.ops
            .slice(from)
            .map((o) => o.type)
            .join(", ")})`,
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  // ---- sending ------------------------------------------------------------------------------------------

  /** Encode ops with the peer's encoder and send them as one or more frames at once. */
  send(write: (enc: FrameEncoder) => void): void {
    write(this.encoder);
    for (const frame of this.encoder.take()) this.sendRaw(frame);
  }

  /** Send bytes as one binary WebSocket message, malformed or not. */
  sendRaw(frame: Buffer): void {
    if (!this.current.send(frame)) throw new Error(`link is ${this.current.state}: frame not sent`);
  }

  snapshot(origin: string, epoch: number, seq: number, entries: readonly InterestEntryWire[]): void {
    this.send((e) => e.snapshot(origin, epoch, seq, entries));
  }

  delta(
    origin: string,
    epoch: number,
    seq: number,
    action: 1 | 2 | 3 | 4,
    subject: string,
    queue = "",
    weight = action === 3 || action === 4 ? 0 : 1,
  ): void {
    this.send((e) => e.delta(origin, epoch, seq, action, subject, queue, weight));
  }

  topology(
    origin: string,
    epoch: number,
    seq: number,
    neighbors: readonly { region: string; rttMicros: number }[],
  ) {
    this.send((e) => e.topology(origin, epoch, seq, neighbors));
  }

  resync(origin: string): void {
    this.send((e) => e.resync(origin));
  }

  /** One MSG op; `payload` is headers (if `hdrLen >= 0`) then body. */
  msg(
    subject: string,
    payload: Buffer,
    dests: readonly { region: string; queues: readonly string[] }[],
    opts: { reply?: string; hdrLen?: number; origin?: string; originSeq?: number } = {},
  ): void {
    this.send((e) =>
      e.msg(
        opts.origin ?? this.region,
        opts.originSeq ?? ++this.originSeq,
        subject,
        opts.reply ?? "",
        opts.hdrLen ?? -1,
        payload,
        0,
        payload.length,
        dests,
      ),
    );
  }

  /** ACK: `count` MSG ops of this link received so far. */
  ack(count: number): void {
    this.send((e) => e.ack(count));
  }

  /** Stop: close the link (1000) and wait until the socket is gone. */
  async close(): Promise<void> {
    await this.dialer.stop();
  }

  private onFrame(frame: Buffer): void {
    const copy = Buffer.from(frame);
    this.frames.push(copy);
    try {
      for (const op of decodeFrame(copy)) this.ops.push(op);
    } catch (error) {
      this.badFrames.push({ frame: copy, error });
    }
  }
}

/** NATS headers block (`NATS/1.0\r\n` + lines + blank line) followed by `body`, and the header length. */
export function withHeaders(
  headers: Record<string, string>,
  body: Buffer,
): { payload: Buffer; hdrLen: number } {
  const lines = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  const hdr = Buffer.from(`NATS/1.0\r\n${lines}\r\n`, "latin1");
  return { payload: Buffer.concat([hdr, body]), hdrLen: hdr.length };
}

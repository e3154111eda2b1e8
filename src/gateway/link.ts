/**
 * Gateway links (docs/link-protocol.md §1–§2): one WebSocket connection between two regions.
 *
 * - `Link` is one connection, from dial/accept to its end: JSON hello handshake, then opaque binary frames
 *   both ways, WebSocket ping/pong heartbeats that also measure the RTT. A `Link` object never comes back:
 *   once `down` or `closed` it is finished, and a reconnect makes a new one.
 * - `LinkListener` accepts links on `ws://host:port/bridgehead/v1`.
 * - `LinkDialer` keeps one outbound link to a URL alive, redialing with backoff after every loss.
 *
 * Frames are Buffers the link never looks into (the codec is someone else's business). Nothing here throws
 * out of a socket or timer callback: anything unexpected closes the link (1011) and is logged once.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import WebSocket, { type RawData, WebSocketServer } from "ws";
import { BridgeheadError } from "../util/errors.js";
import type { Logger } from "../util/logger.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import {
  CompressionError,
  type CompressionMode,
  compressFrame,
  inflateFrame,
  isCompressed,
} from "./compression.js";

/** The one HTTP path links are served on. */
export const LINK_PATH = "/bridgehead/v1";
/** The link protocol version this side speaks. */
export const LINK_PROTOCOL_VERSION = 1;

/** Close codes of docs/link-protocol.md §1–§2, plus the standard ones the link uses. */
export const LinkCloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  INTERNAL_ERROR: 1011,
  PROTOCOL_ERROR: 4000,
  AUTH_FAILED: 4001,
  DUPLICATE_REGION: 4002,
  INCOMPATIBLE_PROTOCOL: 4003,
  HEARTBEAT_TIMEOUT: 4004,
} as const;

export const LINK_DEFAULTS = {
  heartbeatMs: 2000,
  missedPongs: 3,
  handshakeTimeoutMs: 5000,
  /** Largest accepted WebSocket message (one frame). */
  maxPayload: 64 * 1024 * 1024,
  /** After sending a close frame, how long to wait for the peer's before dropping the socket. */
  closeGraceMs: 1000,
} as const;

/** A hello larger than this is refused before it is parsed. */
const MAX_HELLO_BYTES = 4096;
/** RFC 6455: a close frame's reason is at most 123 bytes of UTF-8. */
const MAX_CLOSE_REASON_BYTES = 123;
/** Region names: ASCII, short enough to fit in close reasons and log lines (doc §1). */
const REGION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export type LinkState = "connecting" | "syncing" | "up" | "down" | "closed";
export type LinkDirection = "dial" | "accept";

/** How a link ended. `by`: who decided — this side, the peer (its close frame), or the transport. */
export interface LinkCloseInfo {
  readonly code: number;
  readonly reason: string;
  readonly by: "local" | "peer" | "transport";
}

/** Timing and size knobs; the defaults are the protocol's (LINK_DEFAULTS). Tests shrink them. */
export interface LinkTuning {
  heartbeatMs?: number;
  missedPongs?: number;
  handshakeTimeoutMs?: number;
  maxPayload?: number;
  closeGraceMs?: number;
}

type Tuning = Required<LinkTuning>;

function tuning(t: LinkTuning): Tuning {
  const out: Tuning = {
    heartbeatMs: t.heartbeatMs ?? LINK_DEFAULTS.heartbeatMs,
    missedPongs: t.missedPongs ?? LINK_DEFAULTS.missedPongs,
    handshakeTimeoutMs: t.handshakeTimeoutMs ?? LINK_DEFAULTS.handshakeTimeoutMs,
    maxPayload: t.maxPayload ?? LINK_DEFAULTS.maxPayload,
    closeGraceMs: t.closeGraceMs ?? LINK_DEFAULTS.closeGraceMs,
  };
  for (const [key, value] of Object.entries(out)) {
    if (!(Number.isSafeInteger(value) && value > 0)) {
      throw new BridgeheadError(`link option ${key} must be a positive integer, got ${value}`);
    }
  }
  return out;
}

function checkRegionName(region: string): void {
  if (!REGION_NAME.test(region)) {
    throw new BridgeheadError(
      `invalid region name ${JSON.stringify(region)}: 1-64 ASCII letters, digits, '.', '_' or '-'`,
    );
  }
}

function checkToken(token: string): void {
  if (token.length === 0) throw new BridgeheadError("the link token must not be empty");
}

// ---------------------------------------------------------------------------------------------------------
// Listener sets

type Unsubscribe = () => void;

/** A tiny typed listener set. A throwing listener is reported and does not stop the others. */
class Listeners<A extends unknown[]> {
  private readonly entries = new Set<{ fn: (...args: A) => void }>();

  add(fn: (...args: A) => void): Unsubscribe {
    const entry = { fn };
    this.entries.add(entry);
    return () => {
      this.entries.delete(entry);
    };
  }

  /** Returns the first error a listener threw, if any. */
  emit(...args: A): unknown {
    let failure: unknown;
    for (const entry of [...this.entries]) {
      try {
        entry.fn(...args);
      } catch (err) {
        failure ??= err;
      }
    }
    return failure;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Handshake

export interface Hello {
  type: "hello";
  protocol: number;
  region: string;
  token: string;
  features: string[];
}

/**
 * The token a link must present: one for every peer, or looked up by the region the peer claims (one
 * token per configured link; `undefined` for a region with no link configured, which fails like a wrong
 * token so an unauthenticated peer learns nothing about which regions exist).
 */
export type LinkToken = string | ((peerRegion: string) => string | undefined);

/** What a side expects of the hello it receives. */
export interface HelloExpectation {
  localRegion: string;
  token: LinkToken;
  /** Dialer only: the region the URL should lead to. */
  expectRegion?: string | undefined;
  /** True when a link to that region is already established (syncing or up). */
  isLinked?: ((region: string) => boolean) | undefined;
}

export type HelloVerdict =
  | { ok: true; hello: Hello }
  | { ok: false; code: number; reason: string; hello?: Hello | undefined };

function sha256(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

function bad(what: string): HelloVerdict {
  return { ok: false, code: LinkCloseCode.PROTOCOL_ERROR, reason: `bad handshake: ${what}` };
}

/**
 * Checks a received hello in the order of docs/link-protocol.md §1. Reasons never contain the token (nor
 * any other text of the message except a validated region name and an integer protocol number).
 */
export function checkHello(text: string, want: HelloExpectation): HelloVerdict {
  if (Buffer.byteLength(text, "utf8") > MAX_HELLO_BYTES)
    return bad(`hello larger than ${MAX_HELLO_BYTES} bytes`);
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return bad("not valid JSON");
  }
  if (typeof msg !== "object" || msg === null || Array.isArray(msg)) return bad("not a JSON object");
  const m = msg as Record<string, unknown>;
  if (m["type"] !== "hello") return bad("not a hello");
  const protocol = m["protocol"];
  if (typeof protocol !== "number" || !Number.isSafeInteger(protocol))
    return bad("missing or invalid protocol");
  // Before the other fields: a future version may shape its hello differently and must still learn why.
  if (protocol !== LINK_PROTOCOL_VERSION) {
    return {
      ok: false,
      code: LinkCloseCode.INCOMPATIBLE_PROTOCOL,
      reason: `incompatible protocol version ${protocol}, this side speaks ${LINK_PROTOCOL_VERSION}`,
    };
  }
  const region = m["region"];
  if (typeof region !== "string" || !REGION_NAME.test(region)) return bad("missing or invalid region");
  const token = m["token"];
  if (typeof token !== "string") return bad("missing or invalid token");
  const features = m["features"] ?? [];
  if (!Array.isArray(features) || !features.every((f): f is string => typeof f === "string")) {
    return bad("invalid features");
  }
  const hello: Hello = { type: "hello", protocol, region, token, features };
  // Constant-time comparison of fixed-length digests: neither content nor length leaks through timing.
  const expected = typeof want.token === "string" ? want.token : want.token(region);
  const matches = timingSafeEqual(sha256(token), sha256(expected ?? ""));
  if (expected === undefined || expected === "" || !matches) {
    return { ok: false, code: LinkCloseCode.AUTH_FAILED, reason: "authentication failed" };
  }
  if (region === want.localRegion) {
    return {
      ok: false,
      code: LinkCloseCode.DUPLICATE_REGION,
      reason: `duplicate region name ${region}: it is this region's own name`,
      hello,
    };
  }
  if (want.expectRegion !== undefined && region !== want.expectRegion) {
    return {
      ok: false,
      code: LinkCloseCode.DUPLICATE_REGION,
      reason: `unexpected region ${region}: expected ${want.expectRegion}`,
      hello,
    };
  }
  if (want.isLinked?.(region)) {
    return {
      ok: false,
      code: LinkCloseCode.DUPLICATE_REGION,
      reason: `duplicate region ${region}: already linked`,
      hello,
    };
  }
  return { ok: true, hello };
}

/**
 * Features this side announces. `ack`: it sends ACK ops for the MSG ops it receives, so the sender may keep
 * unacknowledged frames for replay (docs/link-protocol.md §3, §7). `deflate`: it accepts frames whose ops
 * are compressed (header flag bit 0); a side compresses only towards a peer that announced it.
 */
export const FEATURES: string[] = ["ack", "deflate"];

function helloText(region: string, token: string, features: readonly string[]): string {
  const hello: Hello = {
    type: "hello",
    protocol: LINK_PROTOCOL_VERSION,
    region,
    token,
    features: [...features],
  };
  return JSON.stringify(hello);
}

/** Cuts a close reason to the 123 bytes a close frame can carry, on a character boundary. */
export function truncateCloseReason(reason: string): string {
  if (Buffer.byteLength(reason, "utf8") <= MAX_CLOSE_REASON_BYTES) return reason;
  let out = "";
  let bytes = 0;
  for (const ch of reason) {
    const n = Buffer.byteLength(ch, "utf8");
    if (bytes + n > MAX_CLOSE_REASON_BYTES - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}...`;
}

function isValidCloseCode(code: number): boolean {
  return (
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
      (code >= 3000 && code <= 4999))
  );
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------------------
// Link

/** @internal What LinkListener / LinkDialer hand a new Link. */
export interface LinkInit {
  ws: WebSocket;
  direction: LinkDirection;
  localRegion: string;
  /** A dialer's link sends this string; an accepted link checks the peer's against it. */
  token: LinkToken;
  expectRegion?: string | undefined;
  isLinked?: ((region: string) => boolean) | undefined;
  logger: Logger;
  /** Where the socket goes to / comes from, for logs (`host:port` or the URL). */
  remote: string;
  tuning: Tuning;
  /** What this side announces in its hello; default FEATURES. */
  features?: readonly string[] | undefined;
  /** Whether frames sent are compressed (towards a peer that accepts `deflate`); default off. */
  compression?: CompressionMode | undefined;
}

/** Compression on a link's sending side: frames compressed and bytes before and after. */
export interface CompressionStats {
  mode: CompressionMode;
  frames: number;
  bytesIn: number;
  bytesOut: number;
}

/** `auto` compresses while this much waits in the socket (the link is the bottleneck)... */
const AUTO_BUFFERED_BYTES = 64 * 1024;
/** ...or while the round trip is this long (a WAN path, where bandwidth is scarce): microseconds. */
const AUTO_RTT_MICROS = 10_000;

/** One established or establishing link to one peer region. */
export class Link {
  readonly localRegion: string;
  readonly direction: LinkDirection;
  readonly remote: string;
  /** Resolves once the underlying socket is fully closed (never rejects). */
  readonly finished: Promise<void>;

  private readonly ws: WebSocket;
  private readonly token: LinkToken;
  private readonly expectRegion: string | undefined;
  private readonly isLinked: ((region: string) => boolean) | undefined;
  private readonly tuning: Tuning;
  private readonly features: readonly string[];
  /** Compression of what this side sends (the peer's `deflate` feature decides if it may). */
  readonly compression: CompressionStats;
  private readonly baseLogger: Logger;
  private log: Logger;

  private _state: LinkState = "connecting";
  private _peerRegion: string | undefined;
  private _peerFeatures: readonly string[] = [];
  private _rttMicros: number | undefined;
  private _closeInfo: LinkCloseInfo | undefined;
  /** The first socket error, reported as the cause when the socket then closes. */
  private transportError: string | undefined;
  private socketClosed = false;
  /** Send stamps (performance.now()) of pings not answered yet, oldest first. */
  private readonly pings: number[] = [];
  /**
   * When anything last arrived from the peer (frame, ping or pong; performance.now()). A pong can be late
   * because our own ping waits behind data on a saturated link; traffic from the peer still proves it alive.
   */
  private lastHeardAt = 0;
  /** Frames handed to the socket whose write has not completed (monitoring: the link's send queue). */
  private _pendingFrames = 0;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private resolveFinished: () => void = () => {};

  private readonly frameListeners = new Listeners<[Buffer]>();
  private readonly stateListeners = new Listeners<[LinkState, string | undefined]>();
  private readonly rttListeners = new Listeners<[number]>();

  /** @internal Links are made by LinkListener and LinkDialer. */
  constructor(init: LinkInit) {
    this.ws = init.ws;
    this.direction = init.direction;
    this.localRegion = init.localRegion;
    this.token = init.token;
    this.expectRegion = init.expectRegion;
    this.isLinked = init.isLinked;
    this.remote = init.remote;
    this.tuning = init.tuning;
    this.features = init.features ?? FEATURES;
    this.compression = { mode: init.compression ?? "off", frames: 0, bytesIn: 0, bytesOut: 0 };
    this.baseLogger = init.logger;
    this.log = init.logger.child({
      region: this.localRegion,
      peer: init.expectRegion ?? init.remote,
      remote: init.remote,
    });
    this.finished = new Promise<void>((resolve) => {
      this.resolveFinished = resolve;
    });

    const ws = this.ws;
    ws.binaryType = "nodebuffer";
    ws.on("open", () => this.guard(() => this.onOpen()));
    ws.on("message", (data: RawData, isBinary: boolean) => this.guard(() => this.onMessage(data, isBinary)));
    ws.on("pong", (data: Buffer) => this.guard(() => this.onPong(data)));
    ws.on("ping", () => {
      this.lastHeardAt = performance.now();
    });
    ws.on("error", (err: Error) => this.guard(() => this.onError(err)));
    ws.on("close", (code: number, reason: Buffer) => this.guard(() => this.onSocketClose(code, reason)));

    this.handshakeTimer = setTimeout(
      () => this.guard(() => this.refuse(LinkCloseCode.PROTOCOL_ERROR, "handshake timeout")),
      this.tuning.handshakeTimeoutMs,
    );
    this.handshakeTimer.unref();
    this.log.debug({ direction: this.direction }, "link connecting");
  }

  get state(): LinkState {
    return this._state;
  }

  /** The peer's region, known once the handshake is done. */
  get peerRegion(): string | undefined {
    return this._peerRegion;
  }

  /** The features the peer announced in its hello. */
  get peerFeatures(): readonly string[] {
    return this._peerFeatures;
  }

  /** Latest round-trip time measured by a heartbeat ping, in microseconds (undefined before the first pong). */
  get rttMicros(): number | undefined {
    return this._rttMicros;
  }

  /** Bytes queued in the socket, not yet handed to the kernel: the backpressure gauge for senders. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Frames sent and not yet handed to the kernel (the count behind `bufferedAmount`). */
  get pendingFrames(): number {
    return this._pendingFrames;
  }

  /** How the link ended; set once the state is `down` or `closed`. */
  get closeInfo(): LinkCloseInfo | undefined {
    return this._closeInfo;
  }

  /** Calls `cb` with every binary frame received while `syncing` or `up`. Subscribe inside `onLink`. */
  onFrame(cb: (frame: Buffer) => void): Unsubscribe {
    return this.frameListeners.add(cb);
  }

  /** Calls `cb` on every state change; `cause` says why (for `down` / `closed`: code and reason). */
  onState(cb: (state: LinkState, cause?: string) => void): Unsubscribe {
    return this.stateListeners.add(cb);
  }

  /** Calls `cb` with every RTT measured by a heartbeat pong, in microseconds (for metrics). */
  onRtt(cb: (rttMicros: number) => void): Unsubscribe {
    return this.rttListeners.add(cb);
  }

  /** Sends one binary frame. False (and nothing sent) unless the link is `syncing` or `up`. */
  send(frame: Buffer): boolean {
    if ((this._state !== "syncing" && this._state !== "up") || this.ws.readyState !== WebSocket.OPEN) {
      return false;
    }
    try {
      const out = this.compressing() ? compressFrame(frame) : frame;
      if (out !== frame) {
        const c = this.compression;
        c.frames++;
        c.bytesIn += frame.length;
        c.bytesOut += out.length;
      }
      // The callback runs once the write completes (or fails when the socket ends): what is between is
      // the link's real send queue, which the monitor reports as its outbox depth.
      this._pendingFrames++;
      this.ws.send(out, { binary: true }, () => {
        this._pendingFrames--;
      });
      return true;
    } catch {
      this._pendingFrames = Math.max(0, this._pendingFrames - 1);
      return false;
    }
  }

  /** Set how this side compresses what it sends from now on (per link configuration, reload). */
  setCompression(mode: CompressionMode): void {
    this.compression.mode = mode;
  }

  /** Whether the next frame sent is compressed: the peer accepts it and the mode (or, for auto, the path) asks for it. */
  private compressing(): boolean {
    const mode = this.compression.mode;
    if (mode === "off" || !this._peerFeatures.includes("deflate")) return false;
    if (mode === "on") return true;
    return this.ws.bufferedAmount > AUTO_BUFFERED_BYTES || (this._rttMicros ?? 0) > AUTO_RTT_MICROS;
  }

  /** The gateway's initial sync is done: `syncing` → `up`. Does nothing in any other state. */
  markUp(): void {
    if (this._state === "syncing") this.enter("up");
  }

  /**
   * Closes the link on purpose: state `closed`. Use 1000/1001 for orderly ends and the 4xxx codes of the
   * protocol for errors found above the link (e.g. 4000 with a FrameError's reason). A LinkDialer redials
   * after its link is closed unless the dialer itself is stopped.
   */
  close(code: number, reason: string): void {
    if (!isValidCloseCode(code)) throw new BridgeheadError(`invalid WebSocket close code ${code}`);
    if (this.isFinal()) return;
    this.end("closed", { code, reason: truncateCloseReason(reason), by: "local" });
  }

  // ---- internals -----------------------------------------------------------------------------------------

  private isFinal(): boolean {
    return this._state === "down" || this._state === "closed";
  }

  /** Runs a socket/timer callback; whatever it throws becomes a 1011 close, never an uncaught exception. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      try {
        this.log.error({ err }, "link internal error");
        if (!this.isFinal()) {
          this.end("down", { code: LinkCloseCode.INTERNAL_ERROR, reason: "internal error", by: "local" });
        }
      } catch {
        this.ws.terminate();
      }
    }
  }

  private onOpen(): void {
    if (this.direction !== "dial" || this._state !== "connecting") return;
    // Dialers are always built with a string token (LinkDialerOptions.token).
    this.ws.send(
      helloText(this.localRegion, typeof this.token === "string" ? this.token : "", this.features),
    );
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.isFinal()) return;
    this.lastHeardAt = performance.now();
    if (this._state === "connecting") {
      if (isBinary) {
        this.refuse(
          LinkCloseCode.PROTOCOL_ERROR,
          "bad handshake: expected a text hello, got a binary message",
        );
        return;
      }
      const buf = toBuffer(data);
      if (buf.length > MAX_HELLO_BYTES) {
        this.refuse(
          LinkCloseCode.PROTOCOL_ERROR,
          `bad handshake: hello larger than ${MAX_HELLO_BYTES} bytes`,
        );
        return;
      }
      this.onHello(buf.toString("utf8"));
      return;
    }
    if (!isBinary) {
      this.end("down", {
        code: LinkCloseCode.PROTOCOL_ERROR,
        reason: "protocol error: text message after the handshake",
        by: "local",
      });
      return;
    }
    let frame = toBuffer(data);
    if (isCompressed(frame)) {
      try {
        frame = inflateFrame(frame, this.tuning.maxPayload);
      } catch (err) {
        if (!(err instanceof CompressionError)) throw err;
        this.end("down", {
          code: LinkCloseCode.PROTOCOL_ERROR,
          reason: `bad frame: ${err.message}`,
          by: "local",
        });
        return;
      }
    }
    const failure = this.frameListeners.emit(frame);
    if (failure !== undefined) {
      // A frame handler that throws has left the gateway's view of this peer unknown: start over.
      this.log.error({ err: failure }, "link frame handler threw");
      if (!this.isFinal()) {
        this.end("down", { code: LinkCloseCode.INTERNAL_ERROR, reason: "internal error", by: "local" });
      }
    }
  }

  private onHello(text: string): void {
    let verdict: HelloVerdict;
    try {
      verdict = checkHello(text, {
        localRegion: this.localRegion,
        token: this.token,
        expectRegion: this.expectRegion,
        isLinked: this.isLinked,
      });
    } catch (err) {
      // Only the caller's isLinked can throw here.
      this.log.error({ err }, "link isLinked callback threw");
      this.refuse(LinkCloseCode.INTERNAL_ERROR, "internal error");
      return;
    }
    if (!verdict.ok) {
      this.refuse(verdict.code, verdict.reason, verdict.hello?.region);
      return;
    }
    const { hello } = verdict;
    this._peerRegion = hello.region;
    this._peerFeatures = Object.freeze([...hello.features]);
    this.log = this.baseLogger.child({ region: this.localRegion, peer: hello.region, remote: this.remote });
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    // The answer goes out before anything an onLink listener sends; it carries the token the peer proved
    // it knows (per-link tokens: the one configured for that peer).
    if (this.direction === "accept") this.ws.send(helloText(this.localRegion, hello.token, this.features));
    this.startHeartbeat();
    this.enter("syncing");
  }

  private startHeartbeat(): void {
    // Ping at once so the RTT is known early, then every heartbeatMs.
    this.sendPing();
    this.heartbeatTimer = setInterval(() => this.guard(() => this.heartbeat()), this.tuning.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private heartbeat(): void {
    if (this._state !== "syncing" && this._state !== "up") return;
    if (
      this.pings.length >= this.tuning.missedPongs &&
      performance.now() - this.lastHeardAt >= this.tuning.missedPongs * this.tuning.heartbeatMs
    ) {
      this.end("down", { code: LinkCloseCode.HEARTBEAT_TIMEOUT, reason: "heartbeat timeout", by: "local" });
      return;
    }
    this.sendPing();
  }

  private sendPing(): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const stamp = performance.now();
    const payload = Buffer.allocUnsafe(8);
    payload.writeDoubleBE(stamp, 0);
    this.pings.push(stamp);
    this.ws.ping(payload);
  }

  private onPong(data: Buffer): void {
    if (this._state !== "syncing" && this._state !== "up") return;
    this.lastHeardAt = performance.now();
    if (data.length !== 8) return; // unsolicited or foreign pong: allowed by RFC 6455, ignored
    const stamp = data.readDoubleBE(0);
    const i = this.pings.indexOf(stamp);
    if (i < 0) return;
    // Pongs come in order: anything older than this one will not be answered any more.
    this.pings.splice(0, i + 1);
    this._rttMicros = Math.max(1, Math.round((performance.now() - stamp) * 1000));
    const failure = this.rttListeners.emit(this._rttMicros);
    if (failure !== undefined) this.log.error({ err: failure }, "link RTT listener threw");
  }

  private onError(err: Error): void {
    this.transportError ??= err.message;
  }

  private onSocketClose(code: number, reasonBuf: Buffer): void {
    this.socketClosed = true;
    this.stopTimers();
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    if (!this.isFinal()) {
      const info: LinkCloseInfo =
        this.transportError !== undefined
          ? { code, reason: this.transportError, by: "transport" }
          : { code, reason: reasonBuf.toString("utf8"), by: "peer" };
      this.setFinal("down", info, false);
    }
    this.resolveFinished();
  }

  /** Handshake refusal: logged once as a refusal (with the claimed region when known), then `down`. */
  private refuse(code: number, reason: string, claimedRegion?: string): void {
    if (this.isFinal()) return;
    const info: LinkCloseInfo = { code, reason, by: "local" };
    this.closeSocket(code, reason);
    this.setFinal("down", info, true, claimedRegion);
  }

  /** Ends the link from this side: close frame out, state `down` or `closed`. */
  private end(state: "down" | "closed", info: LinkCloseInfo): void {
    this.closeSocket(info.code, info.reason);
    this.setFinal(state, info, false);
  }

  private closeSocket(code: number, reason: string): void {
    this.stopTimers();
    if (this.socketClosed) return;
    try {
      this.ws.close(code, truncateCloseReason(reason));
    } catch {
      this.ws.terminate();
      return;
    }
    // A peer that does not answer the close frame (it is likely dead) is dropped after a short grace.
    this.graceTimer ??= setTimeout(() => this.ws.terminate(), this.tuning.closeGraceMs);
    this.graceTimer.unref();
  }

  private stopTimers(): void {
    clearTimeout(this.handshakeTimer);
    clearInterval(this.heartbeatTimer);
    this.handshakeTimer = undefined;
    this.heartbeatTimer = undefined;
  }

  private setFinal(
    state: "down" | "closed",
    info: LinkCloseInfo,
    refusal: boolean,
    claimedRegion?: string,
  ): void {
    this._closeInfo = info;
    const cause = `${info.by === "local" ? "closed by this side" : info.by === "peer" ? "closed by peer" : "connection lost"}: ${info.code} ${info.reason}`;
    const fields = { state, code: info.code, reason: info.reason, by: info.by };
    if (this.direction === "dial" && this._peerRegion === undefined) {
      // A dial attempt that never got established: the LinkDialer reports it (once per distinct cause).
      this.log.debug(fields, refusal ? "link refused" : `link ${state}`);
    } else if (refusal) {
      this.log.warn(claimedRegion === undefined ? fields : { ...fields, claimedRegion }, "link refused");
    } else {
      const quiet = info.code === LinkCloseCode.NORMAL || info.code === LinkCloseCode.GOING_AWAY;
      if (quiet) this.log.info(fields, `link ${state}`);
      else this.log.warn(fields, `link ${state}`);
    }
    this.enter(state, cause, false);
  }

  private enter(state: LinkState, cause?: string, log = true): void {
    this._state = state;
    if (log) this.log.info({ state }, `link ${state}`);
    const failure = this.stateListeners.emit(state, cause);
    if (failure !== undefined) this.log.error({ err: failure }, "link state listener threw");
  }
}

// ---------------------------------------------------------------------------------------------------------
// Listener

export interface LinkListenerOptions extends LinkTuning {
  region: string;
  /** One token for every peer, or the token of the link configured with each peer region. */
  token: LinkToken;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** True when a link to `region` is already established (syncing or up): such a hello gets 4002. */
  isLinked(region: string): boolean;
  logger: Logger;
  /** What links announce in their hello; default FEATURES. */
  features?: readonly string[] | undefined;
  /** Compression of what accepted links send; default off. */
  compression?: CompressionMode | undefined;
}

/** Accepts links: an HTTP server whose path /bridgehead/v1 upgrades to WebSocket. */
export class LinkListener {
  private readonly opts: LinkListenerOptions;
  private readonly tuning: Tuning;
  private readonly log: Logger;
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private closing = false;
  private readonly links = new Set<Link>();
  private readonly linkListeners = new Listeners<[Link]>();

  constructor(opts: LinkListenerOptions) {
    checkRegionName(opts.region);
    if (typeof opts.token === "string") checkToken(opts.token);
    this.opts = opts;
    this.tuning = tuning(opts);
    this.log = opts.logger.child({ region: opts.region });
  }

  /** Fires after a successful handshake (link state `syncing`). */
  onLink(cb: (link: Link) => void): Unsubscribe {
    return this.linkListeners.add(cb);
  }

  /** Starts listening; resolves with the bound address (the real port when `port` was 0). */
  async listen(): Promise<{ host: string; port: number }> {
    if (this.server || this.closing) throw new BridgeheadError("LinkListener.listen() may be called once");
    const server = createServer((req, res) => {
      const onPath = pathOf(req) === LINK_PATH;
      res.writeHead(onPath ? 426 : 404, { "content-type": "text/plain", connection: "close" });
      res.end(onPath ? "WebSocket upgrade required\n" : "not found\n");
    });
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.tuning.maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
    });
    wss.on("error", (err) => this.log.error({ err }, "link listener error"));
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.onUpgrade(wss, req, socket, head);
      } catch (err) {
        this.log.error({ err }, "link upgrade failed");
        socket.destroy();
      }
    });
    this.server = server;
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new BridgeheadError(`link listener: ${err.message}`, { cause: err }));
      server.once("error", onError);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off("error", onError);
        resolve();
      });
    });
    server.on("error", (err) => this.log.error({ err }, "link listener error"));
    const addr = server.address() as AddressInfo;
    this.log.info({ host: addr.address, port: addr.port, path: LINK_PATH }, "link listener listening");
    return { host: addr.address, port: addr.port };
  }

  private onUpgrade(wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => {}); // a reset during the upgrade must not become an uncaught error
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (pathOf(req) !== LINK_PATH) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.closing) {
        ws.terminate();
        return;
      }
      const link = new Link({
        ws,
        direction: "accept",
        localRegion: this.opts.region,
        token: this.opts.token,
        isLinked: (region) => this.opts.isLinked(region),
        logger: this.opts.logger,
        remote: `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`,
        tuning: this.tuning,
        features: this.opts.features,
        compression: this.opts.compression,
      });
      this.links.add(link);
      void link.finished.then(() => this.links.delete(link));
      link.onState((state) => {
        if (state !== "syncing") return;
        const failure = this.linkListeners.emit(link);
        if (failure !== undefined) this.log.error({ err: failure }, "link listener onLink callback threw");
      });
    });
  }

  /** Stops accepting, closes every link (1001, state `closed`) and resolves once all sockets are gone. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.server;
    if (!server) return;
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const links = [...this.links];
    for (const link of links) link.close(LinkCloseCode.GOING_AWAY, "listener closing");
    await Promise.all(links.map((l) => l.finished));
    server.closeAllConnections();
    this.wss?.close();
    await serverClosed;
    this.log.info("link listener closed");
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

// ---------------------------------------------------------------------------------------------------------
// Dialer

export interface LinkDialerOptions extends LinkTuning {
  region: string;
  token: string;
  /** `ws(s)://host:port/bridgehead/v1` */
  url: string;
  /** The region the URL must lead to; another one is refused with 4002. */
  expectRegion?: string;
  /** Like LinkListenerOptions.isLinked, checked on the listener's hello. */
  isLinked?: (region: string) => boolean;
  logger: Logger;
  /** A Backoff instance (tests inject one) or its options. Default: 100 ms to 10 s, factor 2, full jitter. */
  backoff?: Backoff | BackoffOptions;
  /** What links announce in their hello; default FEATURES. */
  features?: readonly string[] | undefined;
  /** Compression of what the dialed link sends; default off. */
  compression?: CompressionMode | undefined;
}

/** The URL of the link endpoint of a listener at host:port. */
export function linkUrl(host: string, port: number, secure = false): string {
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${secure ? "wss" : "ws"}://${h}:${port}${LINK_PATH}`;
}

/**
 * Keeps one outbound link to a URL alive: dials, handshakes, and after every loss (or refusal) redials after
 * a backoff delay, until stopped. The backoff goes back to its first step once a link reaches `up`.
 */
export class LinkDialer {
  private readonly opts: LinkDialerOptions;
  private readonly tuning: Tuning;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly logUrl: string;
  private running = false;
  private link: Link | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private _state: LinkState = "closed";
  private _attempts = 0;
  /** Code, origin and reason of the last failed attempt, to warn once per distinct cause. */
  private lastFailure: string | undefined;
  private readonly linkListeners = new Listeners<[Link]>();
  private readonly stateListeners = new Listeners<[LinkState, string | undefined]>();
  private readonly closeListeners = new Listeners<[LinkCloseInfo]>();

  constructor(opts: LinkDialerOptions) {
    checkRegionName(opts.region);
    checkToken(opts.token);
    if (opts.expectRegion !== undefined) checkRegionName(opts.expectRegion);
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new BridgeheadError(`invalid link URL ${JSON.stringify(opts.url)}`);
    }
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      throw new BridgeheadError(`invalid link URL ${JSON.stringify(opts.url)}: must be ws:// or wss://`);
    }
    this.opts = opts;
    this.tuning = tuning(opts);
    this.backoff = opts.backoff instanceof Backoff ? opts.backoff : new Backoff(opts.backoff);
    // For logs: never any user:password part of the URL.
    url.username = "";
    url.password = "";
    this.logUrl = url.href;
    this.log = opts.logger.child({ region: opts.region, peer: opts.expectRegion ?? this.logUrl });
  }

  /** `closed` before start() and after stop(); `down` while waiting to redial; else the current link's state. */
  get state(): LinkState {
    return this._state;
  }

  /** Dial attempts since the last successful handshake (the one in progress included; 0 while linked). */
  get attempts(): number {
    return this._attempts;
  }

  /** The current link, if any (possibly still connecting, or finished while a redial is pending). */
  get current(): Link | undefined {
    return this.link;
  }

  /** Fires for each established link (state `syncing`); a reconnect brings a new Link object. */
  onLink(cb: (link: Link) => void): Unsubscribe {
    return this.linkListeners.add(cb);
  }

  onState(cb: (state: LinkState, cause?: string) => void): Unsubscribe {
    return this.stateListeners.add(cb);
  }

  /** Fires whenever a link or a dial attempt ends (refusals and connection failures included). */
  onClose(cb: (info: LinkCloseInfo) => void): Unsubscribe {
    return this.closeListeners.add(cb);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.backoff.reset();
    this._attempts = 0;
    this.lastFailure = undefined;
    this.dial();
  }

  /** Stops redialing and closes the current link (1000); resolves once its socket is gone. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const link = this.link;
    if (link && link.state !== "down" && link.state !== "closed") {
      link.close(LinkCloseCode.NORMAL, "dialer stopped");
    }
    this.setState("closed", "stopped");
    if (link) await link.finished;
  }

  private dial(): void {
    this.retryTimer = undefined;
    if (!this.running) return;
    this._attempts++;
    this.setState("connecting");
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url, {
        maxPayload: this.tuning.maxPayload,
        perMessageDeflate: false,
        // RFC 6455 masks client frames so a browser's traffic cannot poison intermediary caches; between
        // two gateways a zero mask is as good, and ws then sends frames without copying and XOR-ing them.
        generateMask: (mask: Buffer) => {
          mask.fill(0);
        },
        handshakeTimeout: this.tuning.handshakeTimeoutMs,
        followRedirects: false,
      });
    } catch (err) {
      const info: LinkCloseInfo = { code: 1006, reason: errorMessage(err), by: "transport" };
      this.afterLoss(info, `connection lost: ${info.reason}`, false);
      return;
    }
    const link = new Link({
      ws,
      direction: "dial",
      localRegion: this.opts.region,
      token: this.opts.token,
      expectRegion: this.opts.expectRegion,
      isLinked: this.opts.isLinked,
      logger: this.opts.logger,
      remote: this.logUrl,
      tuning: this.tuning,
      features: this.opts.features,
      compression: this.opts.compression,
    });
    this.link = link;
    link.onState((state, cause) => this.onLinkState(link, state, cause));
  }

  private onLinkState(link: Link, state: LinkState, cause: string | undefined): void {
    if (link !== this.link) return;
    switch (state) {
      case "syncing": {
        this._attempts = 0;
        this.lastFailure = undefined;
        this.setState("syncing");
        const failure = this.linkListeners.emit(link);
        if (failure !== undefined) this.log.error({ err: failure }, "link dialer onLink callback threw");
        break;
      }
      case "up":
        this.backoff.reset();
        this.setState("up");
        break;
      case "down":
      case "closed": {
        const info = link.closeInfo ?? { code: 1006, reason: cause ?? "unknown", by: "transport" };
        this.afterLoss(info, cause, link.peerRegion !== undefined);
        break;
      }
      default:
        break;
    }
  }

  private afterLoss(info: LinkCloseInfo, cause: string | undefined, established: boolean): void {
    if (this.running) this.setState("down", cause);
    if (!established && this.running) {
      // One warning per distinct failure, not one per attempt through a long outage.
      const key = `${info.code} ${info.by} ${info.reason}`;
      const fields = { code: info.code, reason: info.reason, by: info.by, attempts: this._attempts };
      if (key === this.lastFailure) this.log.debug(fields, "link attempt failed");
      else this.log.warn(fields, "link attempt failed");
      this.lastFailure = key;
    }
    const failure = this.closeListeners.emit(info);
    if (failure !== undefined) this.log.error({ err: failure }, "link dialer onClose callback threw");
    if (!this.running || this.retryTimer !== undefined) return; // stopped (or restarted) by a listener
    const delay = this.backoff.next();
    this.log.debug({ delayMs: delay, attempts: this._attempts }, "link redial scheduled");
    this.retryTimer = setTimeout(() => this.dial(), delay);
  }

  private setState(state: LinkState, cause?: string): void {
    if (state === this._state) return;
    this._state = state;
    const failure = this.stateListeners.emit(state, cause);
    if (failure !== undefined) this.log.error({ err: failure }, "link dialer state listener threw");
  }
}

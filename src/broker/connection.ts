/**
 * One client connection: the CONNECT handshake and auth, its subscriptions, its coalesced outbound
 * buffer with the slow-consumer limit, and keepalive. Protocol decisions (which -ERR, close or stay open)
 * follow nats-server 2.9.10's client.go; routing a publish to subscribers is the server's job.
 */
import type { Socket } from "node:net";
import { isValidLiteralSubject } from "../interest/subject.js";
import { Outbound } from "./outbound.js";
import { ClientParser, type ClientParserHandler, ParseFailure, type PubArgs } from "./parser.js";
import { ClientPermissions } from "./permissions.js";
import { ErrText, errLine, MAX_CLIENT_PROTOCOL, OK, PermText, PING, PONG } from "./protocol.js";
import type { BrokerServer } from "./server.js";
import { Subscription } from "./subscription.js";

/** Why a connection closed, as nats-server names it in /connz. */
export type CloseReason =
  | "Client Closed"
  | "Server Shutdown"
  | "Parse Error"
  | "Protocol Violation"
  | "Authentication Failure"
  | "Authentication Timeout"
  | "Maximum Payload Exceeded"
  | "Maximum Control Line Exceeded"
  | "Slow Consumer (Pending Bytes)"
  | "Slow Consumer (Write Deadline)"
  | "Stale Connection"
  | "Bad Client Protocol Version"
  | "No Responders Requires Headers"
  | "Write Error"
  | "Read Error";

interface ReplyPermit {
  n: number;
  expires: number;
}

const _MSG = Buffer.from("MSG ");
const HMSG = Buffer.from("HMSG ");
const NO_RESPONDERS_TAIL = Buffer.from(" 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
const REPLY_PERMITS_MAX = 4096;

export class ClientConnection implements ClientParserHandler {
  readonly parser: ClientParser;
  readonly out = new Outbound();
  readonly subs = new Map<string, Subscription>();
  readonly startedAt = Date.now();

  // CONNECT options; defaults are nats-server's (a missing verbose/pedantic/echo means true).
  verbose = true;
  pedantic = true;
  echo = true;
  headers = false;
  noResponders = false;
  protocol = 0;
  name = "";
  lang = "";
  version = "";
  user: string | undefined;
  permissions: ClientPermissions | undefined;
  private replyPermits: Map<string, ReplyPermit> | undefined;

  inMsgs = 0;
  inBytes = 0;
  outMsgs = 0;
  outBytes = 0;
  lastActivity = Date.now();

  closed = false;
  closeReason: CloseReason | undefined;
  /** True while queued in the server's flush list. */
  dirty = false;
  private pingsOut = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  /** Bytes the socket still held after the last flush. */
  private socketBacklog = 0;
  /** When the socket last refused more data without draining (0 = not stalled). */
  private stalledSince = 0;
  private authenticated: boolean;

  constructor(
    readonly server: BrokerServer,
    readonly socket: Socket,
    readonly cid: number,
  ) {
    this.parser = new ClientParser(this, server.options.maxControlLine);
    this.authenticated = !server.auth.required;
    this.parser.awaitingConnect = server.auth.required;
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? "";
  }

  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }

  get pendingBytes(): number {
    return this.out.pending + this.socket.writableLength;
  }

  start(): void {
    const s = this.socket;
    s.setNoDelay(true);
    s.on("data", (chunk: Buffer) => this.onData(chunk));
    s.on("drain", () => {
      this.stalledSince = 0;
      this.socketBacklog = 0;
    });
    s.on("error", () => this.close("Read Error"));
    s.on("close", () => this.close("Client Closed"));
    this.sendRaw(Buffer.from(`INFO ${this.server.infoFor(this)} \r\n`));
    if (this.server.auth.required) {
      this.authTimer = setTimeout(() => {
        if (!this.authenticated) this.fail(ErrText.authTimeout, "Authentication Timeout");
      }, this.server.auth.timeoutMs);
    }
    const first = Math.min(2000, this.server.options.pingIntervalMs);
    this.schedulePing(first + Math.floor(Math.random() * first * 0.2));
    this.server.flushSoon(this);
  }

  private onData(chunk: Buffer): void {
    this.lastActivity = Date.now();
    this.parser.parse(chunk);
  }

  // ---- parser callbacks -------------------------------------------------------------------------------

  onConnect(json: string): boolean {
    let opts: unknown;
    try {
      opts = JSON.parse(json);
    } catch {
      this.close("Parse Error");
      return false;
    }
    if (typeof opts !== "object" || opts === null || Array.isArray(opts)) {
      this.close("Parse Error");
      return false;
    }
    const o = opts as Record<string, unknown>;
    // Go's json.Unmarshal refuses a field of the wrong type; so do we, and close the same way.
    const bool = (k: string, cur: boolean): boolean | null =>
      o[k] === undefined || o[k] === null ? cur : typeof o[k] === "boolean" ? (o[k] as boolean) : null;
    const str = (k: string, cur: string): string | null =>
      o[k] === undefined || o[k] === null ? cur : typeof o[k] === "string" ? (o[k] as string) : null;
    const verbose = bool("verbose", this.verbose);
    const pedantic = bool("pedantic", this.pedantic);
    const echo = bool("echo", this.echo);
    const headers = bool("headers", this.headers);
    const noResponders = bool("no_responders", this.noResponders);
    const name = str("name", this.name);
    const lang = str("lang", this.lang);
    const version = str("version", this.version);
    const proto = o["protocol"] ?? this.protocol;
    if (
      verbose === null ||
      pedantic === null ||
      echo === null ||
      headers === null ||
      noResponders === null ||
      name === null ||
      lang === null ||
      version === null ||
      typeof proto !== "number" ||
      !Number.isInteger(proto)
    ) {
      this.close("Parse Error");
      return false;
    }
    Object.assign(this, {
      verbose,
      pedantic,
      echo,
      headers,
      noResponders,
      name,
      lang,
      version,
      protocol: proto,
    });

    const auth = this.server.auth.authenticate({
      user: o["user"],
      pass: o["pass"],
      auth_token: o["auth_token"],
    });
    if (!auth.ok) {
      this.server.log.warn(
        { cid: this.cid, ip: this.remoteAddress, user: o["user"] },
        "authentication failed",
      );
      return this.fail(ErrText.authViolation, "Authentication Failure");
    }
    if ((typeof o["account"] === "string" && o["account"] !== "") || o["new_account"] === true) {
      return this.fail(ErrText.authViolation, "Authentication Failure");
    }
    if (proto < 0 || proto > MAX_CLIENT_PROTOCOL) {
      return this.fail(ErrText.badClientProtocol, "Bad Client Protocol Version");
    }
    if (noResponders && !headers) {
      return this.fail(ErrText.noRespondersNeedsHeaders, "No Responders Requires Headers");
    }
    this.user = auth.user;
    this.permissions = auth.permissions ? new ClientPermissions(auth.permissions) : undefined;
    this.authenticated = true;
    this.parser.awaitingConnect = false;
    if (this.authTimer) {
      clearTimeout(this.authTimer);
      this.authTimer = undefined;
    }
    if (this.verbose) this.sendRaw(OK);
    return true;
  }

  onPubArgs(pa: PubArgs): boolean {
    if (pa.hdr >= 0 && !this.headers) {
      // nats-server closes without an -ERR (ErrMsgHeadersNotSupported).
      this.close("Protocol Violation");
      return false;
    }
    if (pa.size > this.server.options.maxPayload) {
      return this.fail(ErrText.maxPayload, "Maximum Payload Exceeded");
    }
    if (this.pedantic && !isValidLiteralSubject(pa.subject)) {
      this.sendErr(ErrText.invalidPublishSubject);
    }
    return true;
  }

  onMsg(pa: PubArgs, buf: Buffer, start: number, end: number): boolean {
    this.inMsgs++;
    this.inBytes += end - start;
    const subject = pa.subject;
    // nats-server order: a denied publish gets only the -ERR; an allowed one gets +OK before delivery.
    if (this.permissions !== undefined && !this.permissions.canPublish(subject) && !this.usePermit(subject)) {
      this.sendErr(PermText.publish(subject));
      return true;
    }
    if (this.verbose) this.sendRaw(OK);
    const delivered = this.server.publish(this, subject, pa.reply, pa.hdr, buf, start, end);
    if (!delivered && pa.reply !== undefined && this.noResponders) this.sendNoResponders(pa.reply);
    return !this.closed;
  }

  onSub(subject: string, queue: string | undefined, sid: string): boolean {
    const perms = this.permissions;
    if (perms !== undefined && !perms.canSubscribe(subject)) {
      this.sendErr(
        queue === undefined ? PermText.subscribe(subject) : PermText.queueSubscribe(subject, queue),
      );
      return true;
    }
    const max = this.server.options.maxSubscriptions;
    if (max > 0 && this.subs.size >= max) {
      this.sendErr(ErrText.maxSubscriptions);
      if (this.verbose) this.sendRaw(OK);
      return true;
    }
    if (!this.subs.has(sid)) {
      const sub = new Subscription(this, subject, queue, sid);
      if (!this.server.addSubscription(sub)) {
        this.sendErr(ErrText.invalidSubject);
        return true;
      }
      if (perms?.needsDeliveryFilter(subject)) sub.denyFilter = true;
      this.subs.set(sid, sub);
    }
    if (this.verbose) this.sendRaw(OK);
    return true;
  }

  onUnsub(sid: string, max: number | undefined): boolean {
    const sub = this.subs.get(sid);
    if (sub !== undefined) {
      // A max that is not a number counts as none: nats-server's parseSize gives -1, which unsubscribes.
      if (max !== undefined && max > 0 && max > sub.delivered) sub.max = max;
      else this.removeSubscription(sub);
    }
    if (this.verbose) this.sendRaw(OK);
    return true;
  }

  onClientErr(): void {
    // A client reporting an error to the server: nats-server logs it and closes the connection.
    this.close("Parse Error");
  }

  onPing(): boolean {
    this.sendRaw(PONG);
    return true;
  }

  onPong(): boolean {
    this.pingsOut = 0;
    return true;
  }

  onParseError(failure: ParseFailure, detail: string): void {
    this.server.log.debug({ cid: this.cid, failure, detail }, "client protocol error");
    switch (failure) {
      case ParseFailure.UnknownOp:
        this.fail(ErrText.unknownOp, "Parse Error");
        break;
      case ParseFailure.AuthRequired:
        this.fail(ErrText.authViolation, "Authentication Failure");
        break;
      case ParseFailure.MaxControlLine:
        this.fail(ErrText.maxControlLine, "Maximum Control Line Exceeded");
        break;
      case ParseFailure.BadArgs:
        this.close("Protocol Violation");
        break;
    }
  }

  // ---- delivery -----------------------------------------------------------------------------------------

  /**
   * Queue one message for this client: payload `src[start, end)`, `hdr` the header length or -1. A client
   * that did not ask for headers gets a headers message as MSG with the header block stripped, as
   * nats-server does.
   */
  writeMsg(
    sub: Subscription,
    subject: string,
    reply: string | undefined,
    hdr: number,
    src: Buffer,
    start: number,
    end: number,
  ): void {
    if (hdr >= 0 && !this.headers) {
      start += hdr;
      hdr = -1;
    }
    const out = this.out;
    out.msg(subject, sub.sidBytes, reply, hdr, src, start, end);
    this.outMsgs++;
    this.outBytes += end - start;
    if (reply !== undefined && this.permissions?.responses !== undefined) this.grantPermit(reply);
    if (!this.dirty) this.server.flushSoon(this);
    // The socket's backlog is sampled at each flush: reading it per message costs more than it tells.
    if (out.pending + this.socketBacklog > this.server.options.maxPendingBytes) {
      this.slowConsumer("Slow Consumer (Pending Bytes)");
    }
  }

  private sendNoResponders(reply: string): void {
    const result = this.server.sublist.match(reply);
    for (const sub of result.plain) {
      if (sub.client !== this) continue;
      const out = this.out;
      out.bytes(HMSG);
      out.ascii(reply);
      out.ascii(` ${sub.sid}`);
      out.bytes(NO_RESPONDERS_TAIL);
      this.server.flushSoon(this);
      return;
    }
  }

  // ---- allow_responses ----------------------------------------------------------------------------------

  private grantPermit(reply: string): void {
    const resp = this.permissions?.responses;
    if (resp === undefined) return;
    let permits = this.replyPermits;
    if (permits === undefined) {
      permits = new Map();
      this.replyPermits = permits;
    }
    if (permits.size >= REPLY_PERMITS_MAX) this.prunePermits(permits);
    permits.set(reply, { n: 0, expires: resp.expiresMs > 0 ? Date.now() + resp.expiresMs : 0 });
  }

  private usePermit(subject: string): boolean {
    const permits = this.replyPermits;
    const resp = this.permissions?.responses;
    if (permits === undefined || resp === undefined) return false;
    const p = permits.get(subject);
    if (p === undefined) return false;
    if (p.expires !== 0 && Date.now() > p.expires) {
      permits.delete(subject);
      return false;
    }
    p.n++;
    if (resp.maxMsgs > 0 && p.n >= resp.maxMsgs) permits.delete(subject);
    return true;
  }

  private prunePermits(permits: Map<string, ReplyPermit>): void {
    const now = Date.now();
    for (const [k, p] of permits) if (p.expires !== 0 && now > p.expires) permits.delete(k);
    // Still full of live permits: drop the oldest half rather than grow without bound.
    if (permits.size >= REPLY_PERMITS_MAX) {
      let drop = permits.size / 2;
      for (const k of permits.keys()) {
        if (drop-- <= 0) break;
        permits.delete(k);
      }
    }
  }

  // ---- subscriptions ------------------------------------------------------------------------------------

  removeSubscription(sub: Subscription): void {
    if (sub.closed) return;
    sub.closed = true;
    this.subs.delete(sub.sid);
    this.server.removeSubscription(sub);
  }

  // ---- writing, keepalive, closing ----------------------------------------------------------------------

  sendRaw(b: Buffer): void {
    if (this.closed) return;
    this.out.bytes(b);
    this.server.flushSoon(this);
  }

  sendErr(text: string): void {
    this.sendRaw(errLine(text));
  }

  /** Write queued bytes to the socket: one write (or one corked batch) per flush. */
  flush(): void {
    this.dirty = false;
    if (this.socket.destroyed) {
      this.out.discard();
      return;
    }
    const chunks = this.out.take();
    if (chunks.length === 0) return;
    let ok = true;
    if (chunks.length === 1) {
      ok = this.socket.write(chunks[0]!);
    } else {
      this.socket.cork();
      for (const c of chunks) ok = this.socket.write(c);
      this.socket.uncork();
    }
    if (!ok && this.stalledSince === 0) this.stalledSince = Date.now();
    this.socketBacklog = this.socket.writableLength;
    if (this.socketBacklog > this.server.options.maxPendingBytes)
      this.slowConsumer("Slow Consumer (Pending Bytes)");
  }

  private schedulePing(ms: number): void {
    this.pingTimer = setTimeout(() => this.onPingTimer(), ms);
    this.pingTimer.unref();
  }

  private onPingTimer(): void {
    if (this.closed) return;
    const interval = this.server.options.pingIntervalMs;
    const now = Date.now();
    if (this.stalledSince !== 0 && now - this.stalledSince > this.server.options.writeDeadlineMs) {
      this.slowConsumer("Slow Consumer (Write Deadline)");
      return;
    }
    // Like nats-server, skip the PING when the client showed activity within the interval.
    if (now - this.lastActivity >= interval || this.pingsOut > 0) {
      if (this.pingsOut + 1 > this.server.options.pingMax) {
        this.fail(ErrText.staleConnection, "Stale Connection");
        return;
      }
      this.pingsOut++;
      this.sendRaw(PING);
    }
    this.schedulePing(interval);
  }

  /** The write deadline, checked more often than the ping interval while the socket is stalled. */
  checkWriteDeadline(now: number): void {
    if (this.stalledSince !== 0 && now - this.stalledSince > this.server.options.writeDeadlineMs) {
      this.slowConsumer("Slow Consumer (Write Deadline)");
    }
  }

  private slowConsumer(reason: CloseReason): void {
    if (this.closed) return;
    this.server.log.warn(
      { cid: this.cid, ip: this.remoteAddress, pendingBytes: this.pendingBytes, reason },
      "slow consumer detected",
    );
    this.server.stats.slowConsumers++;
    // The client is not reading: nothing more can be said to it, so drop the queue and the socket now.
    this.out.discard();
    this.close(reason, true);
  }

  /** Send `-ERR '<text>'`, then close. Returns false for use as a parser callback result. */
  private fail(text: string, reason: CloseReason): false {
    this.sendErr(text);
    this.close(reason);
    return false;
  }

  close(reason: CloseReason, abort = false): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    if (this.pingTimer) clearTimeout(this.pingTimer);
    if (this.authTimer) clearTimeout(this.authTimer);
    for (const sub of this.subs.values()) {
      sub.closed = true;
      this.server.removeSubscription(sub);
    }
    this.subs.clear();
    this.server.onClientClosed(this);
    if (abort) {
      this.socket.destroy();
      return;
    }
    // Let a final -ERR reach the client, then close; a peer that does not read is cut off soon after.
    this.flush();
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 1000);
    t.unref();
  }
}

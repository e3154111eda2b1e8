/**
 * What the adapter sends a hub, as the leaf side of a leafnode connection (protocol reference §2.1
 * CONNECT, §2.3 LS+/LS-, §2.5 LMSG/HMSG). Pure functions returning bytes; the connection batches them.
 */

/** The CONNECT of a soliciting leaf (`leafConnectInfo` in nats-server). */
export interface LeafConnectInfo {
  readonly version: string;
  readonly server_id: string;
  readonly name: string;
  /** Never the hub's own cluster name, or the hub refuses the connection. */
  readonly cluster: string;
  readonly user?: string;
  readonly pass?: string;
}

const CRLF = Buffer.from("\r\n");

export const PING = Buffer.from("PING\r\n");
export const PONG = Buffer.from("PONG\r\n");

export function encodeConnect(info: LeafConnectInfo): Buffer {
  // tls_required is always sent by real leafs; headers: true so the hub sends HMSG rather than strip them.
  const body = {
    version: info.version,
    tls_required: false,
    server_id: info.server_id,
    name: info.name,
    cluster: info.cluster,
    headers: true,
    ...(info.user !== undefined ? { user: info.user } : {}),
    ...(info.pass !== undefined ? { pass: info.pass } : {}),
  };
  return Buffer.from(`CONNECT ${JSON.stringify(body)}\r\n`);
}

/** `LS+ subject` or `LS+ subject queue weight` (the weight is absolute, not a delta). */
export function encodeSub(subject: string, queue: string | undefined, weight = 1): string {
  return queue === undefined ? `LS+ ${subject}\r\n` : `LS+ ${subject} ${queue} ${weight}\r\n`;
}

export function encodeUnsub(subject: string, queue: string | undefined): string {
  return queue === undefined ? `LS- ${subject}\r\n` : `LS- ${subject} ${queue}\r\n`;
}

/**
 * One message for the hub. With queue groups the hub delivers to plain subscribers and to one member of
 * each listed group; without, to plain subscribers only ("the sender picks", §2.6). The payload is copied:
 * the caller's buffer is only valid during its call.
 */
export function encodeMsg(
  subject: string,
  reply: string | undefined,
  queues: readonly string[],
  hdr: number,
  buf: Buffer,
  start: number,
  end: number,
): Buffer {
  const total = end - start;
  let head = hdr > 0 ? `HMSG ${subject}` : `LMSG ${subject}`;
  if (queues.length > 0) {
    head += reply === undefined ? " |" : ` + ${reply}`;
    for (const q of queues) head += ` ${q}`;
  } else if (reply !== undefined) {
    head += ` ${reply}`;
  }
  head += hdr > 0 ? ` ${hdr} ${total}\r\n` : ` ${total}\r\n`;
  const out = Buffer.allocUnsafe(Buffer.byteLength(head) + total + 2);
  const n = out.write(head);
  buf.copy(out, n, start, end);
  CRLF.copy(out, n + total);
  return out;
}

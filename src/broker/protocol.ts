/**
 * The NATS client protocol's fixed texts, exactly as nats-server 2.9.10 sends them (server/client.go,
 * server/errors.go). Clients and test suites match on these bytes, so they live in one place.
 */

export const PING = Buffer.from("PING\r\n");
export const PONG = Buffer.from("PONG\r\n");
export const OK = Buffer.from("+OK\r\n");
export const CRLF = Buffer.from("\r\n");

/** The status message core NATS itself generates: `NATS/1.0 503` with an empty body. */
export const NO_RESPONDERS_HEADER = Buffer.from("NATS/1.0 503\r\n\r\n");

/** `-ERR` texts. Names follow nats-server's error variables. */
export const ErrText = {
  unknownOp: "Unknown Protocol Operation",
  maxControlLine: "maximum control line exceeded",
  maxPayload: "Maximum Payload Violation",
  invalidSubject: "Invalid Subject",
  invalidPublishSubject: "Invalid Publish Subject",
  authViolation: "Authorization Violation",
  authTimeout: "Authentication Timeout",
  badClientProtocol: "invalid client protocol",
  noRespondersNeedsHeaders: "no responders requires headers support",
  staleConnection: "Stale Connection",
  maxSubscriptions: "maximum subscriptions exceeded",
} as const;

/** `-ERR '<text>'` for a wire-string text (latin1: subjects inside keep their exact bytes). */
export function errLine(text: string): Buffer {
  return Buffer.from(`-ERR '${text}'\r\n`, "latin1");
}

/**
 * Go's `%q` applied to a wire string (latin1: one char per byte), as nats-server formats subjects in
 * permission errors: valid UTF-8 runes that Go considers printable stay as they are, other runes become
 * `\uXXXX` / `\UXXXXXXXX`, invalid bytes `\xNN`. Returns a wire string (UTF-8 bytes as latin1 chars).
 */
export function goQuote(wire: string): string {
  const bytes = Buffer.from(wire, "latin1");
  let out = '"';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      const esc = ASCII_ESCAPES[b];
      if (esc !== undefined) out += esc;
      else if (b < 0x20 || b === 0x7f) out += `\\x${hex2(b)}`;
      else out += String.fromCharCode(b);
      continue;
    }
    const len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
    const rune = len > 0 && i + len <= bytes.length ? decodeRune(bytes, i, len) : -1;
    if (rune < 0) {
      out += `\\x${hex2(b)}`;
      i++;
      continue;
    }
    if (PRINTABLE.test(String.fromCodePoint(rune))) out += bytes.toString("latin1", i, i + len);
    else if (rune < 0x10000) out += `\\u${rune.toString(16).padStart(4, "0")}`;
    else out += `\\U${rune.toString(16).padStart(8, "0")}`;
    i += len;
  }
  return `${out}"`;
}

const ASCII_ESCAPES: Record<number, string> = {
  7: "\\a",
  8: "\\b",
  12: "\\f",
  10: "\\n",
  13: "\\r",
  9: "\\t",
  11: "\\v",
  34: '\\"',
  92: "\\\\",
};

/** Go's strconv.IsPrint outside ASCII: letters, marks, numbers, punctuation and symbols. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function hex2(b: number): string {
  return b.toString(16).padStart(2, "0");
}

/** Decode one UTF-8 sequence of `len` bytes at `i`; -1 when it is not valid (bad continuation, overlong, surrogate). */
function decodeRune(bytes: Buffer, i: number, len: number): number {
  const b0 = bytes[i]!;
  let r = len === 2 ? b0 & 0x1f : len === 3 ? b0 & 0x0f : b0 & 0x07;
  for (let k = 1; k < len; k++) {
    const c = bytes[i + k]!;
    if ((c & 0xc0) !== 0x80) return -1;
    r = (r << 6) | (c & 0x3f);
  }
  const min = len === 2 ? 0x80 : len === 3 ? 0x800 : 0x10000;
  if (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) return -1;
  return r;
}

export const PermText = {
  publish: (subject: string) => `Permissions Violation for Publish to ${goQuote(subject)}`,
  subscribe: (subject: string) => `Permissions Violation for Subscription to ${goQuote(subject)}`,
  queueSubscribe: (subject: string, queue: string) =>
    `Permissions Violation for Subscription to ${goQuote(subject)} using queue ${goQuote(queue)}`,
} as const;

/** The version our INFO advertises: the nats-server protocol level we implement. */
export const COMPATIBLE_SERVER_VERSION = "2.9.10";

/** Client protocol levels accepted in CONNECT (nats-server's ClientProtoZero..ClientProtoInfo). */
export const MAX_CLIENT_PROTOCOL = 1;

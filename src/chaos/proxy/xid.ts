/**
 * Request ids in the format Toxiproxy puts in `X-Toxiproxy-Request-Id` (rs/xid): 12 bytes — seconds, a machine
 * id, the pid and a counter — in lowercase base32hex, 20 characters. Tools that parse or log the header see the
 * same shape as with the real server.
 */
import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuv";
const machine = randomBytes(3);
let counter = randomBytes(3).readUIntBE(0, 3);

function encode(id: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of id) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  // 96 bits leave 1 bit over: xid pads it as the high bit of a last digit.
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function newRequestId(): string {
  const id = Buffer.alloc(12);
  id.writeUInt32BE(Math.floor(Date.now() / 1000) >>> 0, 0);
  machine.copy(id, 4);
  id.writeUInt16BE(process.pid & 0xffff, 7);
  counter = (counter + 1) & 0xffffff;
  id.writeUIntBE(counter, 9, 3);
  return encode(id);
}

/**
 * Batch compression of link frames (docs/link-protocol.md §3, feature `deflate`). A whole frame's ops are
 * compressed at once with raw DEFLATE (node:zlib: nothing to install, fast at level 1), and flag bit 0 of
 * the frame header says so; single messages are never compressed on their own, so repetition across the
 * messages of a batch (subjects, JSON keys, headers) is what pays.
 *
 * Inflating is bounded: a frame that would inflate past the link's frame size limit is refused before the
 * memory is spent (zlib's `maxOutputLength`), so a compression bomb costs the receiver nothing but the
 * link, which closes with the reason.
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { BridgeheadError } from "../util/errors.js";

/** Header flag: the ops after the 2-byte header are raw-DEFLATE compressed. */
export const FLAG_DEFLATE = 0x01;
const HEADER_BYTES = 2;

/** Frames smaller than this are sent as they are: the saving would not pay for the work. */
export const MIN_COMPRESS_BYTES = 512;

/** What a link does with its outgoing frames. `auto`: compress while the link is slow or far (see Link). */
export type CompressionMode = "off" | "on" | "auto";

/** A compressed frame that cannot be inflated, or would inflate past the limit. */
export class CompressionError extends BridgeheadError {
  override readonly name = "CompressionError";
}

/**
 * `frame` with its ops compressed and flag bit 0 set, or `frame` itself when compressing does not make it
 * smaller (random or already compressed payloads).
 */
export function compressFrame(frame: Buffer): Buffer {
  if (frame.length < MIN_COMPRESS_BYTES) return frame;
  const body = deflateRawSync(frame.subarray(HEADER_BYTES), { level: 1 });
  if (body.length + HEADER_BYTES >= frame.length) return frame;
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out[0] = frame[0]!;
  out[1] = frame[1]! | FLAG_DEFLATE;
  body.copy(out, HEADER_BYTES);
  return out;
}

export function isCompressed(frame: Buffer): boolean {
  return frame.length >= HEADER_BYTES && (frame[1]! & FLAG_DEFLATE) !== 0;
}

/**
 * The frame as it was before `compressFrame`: header with the flag cleared, ops inflated. Throws a
 * CompressionError when the data is not valid raw DEFLATE or the frame would exceed `maxBytes`.
 */
export function inflateFrame(frame: Buffer, maxBytes: number): Buffer {
  let body: Buffer;
  try {
    // The default finish mode makes a truncated stream an error, not a silently shorter frame.
    body = inflateRawSync(frame.subarray(HEADER_BYTES), {
      maxOutputLength: Math.max(1, maxBytes - HEADER_BYTES),
    });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ERR_BUFFER_TOO_LARGE") {
      throw new CompressionError(`compressed frame inflates past the ${maxBytes}-byte frame limit`);
    }
    throw new CompressionError(`compressed frame does not inflate: ${(err as Error).message}`);
  }
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out[0] = frame[0]!;
  out[1] = frame[1]! & ~FLAG_DEFLATE;
  body.copy(out, HEADER_BYTES);
  return out;
}

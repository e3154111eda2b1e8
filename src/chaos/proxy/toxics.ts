/**
 * The toxic types of Toxiproxy 2.12, one pipe loop each. A pipe reads chunks from its stub until the stream
 * ends (`null`: close the stub and return) or it is interrupted (return at once, handing over anything held so
 * no data is lost). Times are milliseconds except the slicer's delay (microseconds); bandwidth is KB/s with
 * 1 KB = 1000 B. Attribute values are integers.
 */
import {
  type Attributes,
  type Chunk,
  INTERRUPTED,
  noopPipe,
  now,
  TIMED_OUT,
  type ToxicKind,
} from "./link.js";

function attr(a: Attributes, key: string): number {
  return a[key] ?? 0;
}

/** Go's `rand.Intn(n)` (0 for n ≤ 0, where Go would panic). */
function randIntn(n: number): number {
  return n > 0 ? Math.floor(Math.random() * n) : 0;
}

const noop: ToxicKind = {
  type: "noop",
  goName: "NoopToxic",
  attributes: [],
  bufferSize: 0,
  pipe: (stub) => noopPipe(stub),
};

/** Each chunk leaves at its receive time + latency ± jitter; delays are pipelined, order is kept. */
const latency: ToxicKind = {
  type: "latency",
  goName: "LatencyToxic",
  attributes: ["latency", "jitter"],
  bufferSize: 1024,
  async pipe(stub, a) {
    const base = attr(a, "latency");
    const jitter = attr(a, "jitter");
    const delay = () => base + (jitter > 0 ? randIntn(jitter * 2) - jitter : 0);
    for (;;) {
      const c = await stub.recv();
      if (c === INTERRUPTED || c === TIMED_OUT) return;
      if (c === null) {
        stub.close();
        return;
      }
      const sleep = delay() - (now() - c.ts);
      if (await stub.sleep(sleep)) {
        await stub.send(c); // interrupted: pass it on without the delay
        return;
      }
      c.ts += sleep;
      await stub.send(c);
    }
  },
};

/** Sleeps len/rate ms per chunk; chunks above rate×100 bytes go out in rate×100-byte pieces every 100 ms. */
const bandwidth: ToxicKind = {
  type: "bandwidth",
  goName: "BandwidthToxic",
  attributes: ["rate"],
  bufferSize: 0,
  async pipe(stub, a) {
    // A negative rate panics a real Toxiproxy; here it stalls the stream like rate 0.
    const rate = Math.max(0, attr(a, "rate"));
    const slice = rate * 100;
    let sleep = 0;
    for (;;) {
      const c = await stub.recv();
      if (c === INTERRUPTED || c === TIMED_OUT) return;
      if (c === null) {
        stub.close();
        return;
      }
      sleep = rate <= 0 ? 0 : sleep + c.data.length / rate;
      let data = c.data;
      while (data.length > slice) {
        if (await stub.sleep(100)) {
          await stub.send({ data, ts: c.ts });
          return;
        }
        await stub.send({ data: data.subarray(0, slice), ts: c.ts });
        data = data.subarray(slice);
        sleep -= 100;
      }
      const start = now();
      const rest: Chunk = { data, ts: c.ts };
      if (await stub.sleep(sleep)) {
        await stub.send(rest);
        return;
      }
      // Timers overshoot: take the overshoot off the next sleep so the average rate is exact.
      sleep -= now() - start;
      await stub.send(rest);
    }
  },
};

/** Data passes untouched; the end of the stream is held back for `delay` ms. */
const slowClose: ToxicKind = {
  type: "slow_close",
  goName: "SlowCloseToxic",
  attributes: ["delay"],
  bufferSize: 0,
  async pipe(stub, a) {
    for (;;) {
      const c = await stub.recv();
      if (c === INTERRUPTED || c === TIMED_OUT) return;
      if (c === null) {
        if (await stub.sleep(attr(a, "delay"))) return;
        stub.close();
        return;
      }
      await stub.send(c);
    }
  },
};

/**
 * Drops all data. With timeout > 0 the stream ends after `timeout` ms without incoming data (each chunk
 * restarts the clock); with 0 it never ends on its own. Removing the toxic ends the stream.
 */
const timeout: ToxicKind = {
  type: "timeout",
  goName: "TimeoutToxic",
  attributes: ["timeout"],
  bufferSize: 0,
  closesOnRemove: true,
  async pipe(stub, a) {
    const ms = attr(a, "timeout");
    for (;;) {
      const c = await stub.recv(ms > 0 ? ms : undefined);
      if (c === INTERRUPTED) return;
      if (c === null || c === TIMED_OUT) {
        stub.close();
        return;
      }
      // data dropped on the floor
    }
  },
};

/**
 * Waits for the first chunk (or the end of the stream), drops it, waits `timeout` ms, then ends the stream.
 * Connections opened while it is in the chain get linger 0, so that end is a TCP RST.
 */
const resetPeer: ToxicKind = {
  type: "reset_peer",
  goName: "ResetToxic",
  attributes: ["timeout"],
  bufferSize: 0,
  resetsPeer: true,
  async pipe(stub, a) {
    const c = await stub.recv();
    if (c === INTERRUPTED || c === TIMED_OUT) return;
    await stub.sleepThrough(attr(a, "timeout"));
    stub.close();
  },
};

/**
 * Splits each chunk in halves (mid ± random variation) until every piece is at most
 * average_size + size_variation bytes, and waits `delay` µs after each piece.
 */
export function slicePoints(length: number, averageSize: number, sizeVariation: number): number[] {
  const points: number[] = [];
  // Go recurses forever on average_size 0 and panics when the variation pushes mid out of range; here a piece
  // is never under 1 byte and mid stays inside the piece.
  const limit = Math.max(1, averageSize + Math.max(0, sizeVariation));
  const variation = Math.max(0, sizeVariation);
  const split = (start: number, end: number) => {
    if (end - start <= limit) {
      points.push(start, end);
      return;
    }
    let mid = start + Math.floor((end - start) / 2) + (randIntn(variation * 2) - variation);
    mid = Math.min(end - 1, Math.max(start + 1, mid));
    split(start, mid);
    split(mid, end);
  };
  split(0, length);
  return points;
}

const slicer: ToxicKind = {
  type: "slicer",
  goName: "SlicerToxic",
  attributes: ["average_size", "size_variation", "delay"],
  bufferSize: 0,
  async pipe(stub, a) {
    const delayMs = attr(a, "delay") / 1000;
    // Node timers have 1 ms granularity while the delay is in µs: pieces are paced against a running
    // deadline, so 20 µs apart averages 20 µs instead of rounding every wait up to 1 ms.
    let due = now();
    for (;;) {
      const c = await stub.recv();
      if (c === INTERRUPTED || c === TIMED_OUT) return;
      if (c === null) {
        stub.close();
        return;
      }
      due = Math.max(due, now());
      const points = slicePoints(c.data.length, attr(a, "average_size"), attr(a, "size_variation"));
      for (let i = 1; i < points.length; i += 2) {
        await stub.send({ data: c.data.subarray(points[i - 1], points[i]), ts: c.ts });
        due += delayMs;
        if (await stub.sleep(due - now())) {
          await stub.send({ data: c.data.subarray(points[i]), ts: c.ts });
          return;
        }
      }
    }
  },
};

interface LimitState {
  transmitted: number;
}

/** Passes `bytes` bytes per connection and direction (counted from when it was added), then ends the stream. */
const limitData: ToxicKind = {
  type: "limit_data",
  goName: "LimitDataToxic",
  attributes: ["bytes"],
  bufferSize: 0,
  newState: (): LimitState => ({ transmitted: 0 }),
  async pipe(stub, a) {
    const state = stub.state as LimitState;
    const limit = attr(a, "bytes");
    let remaining = limit - state.transmitted;
    for (;;) {
      const c = await stub.recv();
      if (c === INTERRUPTED || c === TIMED_OUT) return;
      if (c === null) {
        stub.close();
        return;
      }
      remaining = Math.max(0, remaining);
      const out = remaining < c.data.length ? { data: c.data.subarray(0, remaining), ts: c.ts } : c;
      if (out.data.length > 0) {
        await stub.send(out);
        state.transmitted += out.data.length;
      }
      remaining = limit - state.transmitted;
      if (remaining <= 0) {
        stub.close();
        return;
      }
    }
  },
};

/** Every toxic type a client can create, by its `type` name. */
export const TOXIC_KINDS: ReadonlyMap<string, ToxicKind> = new Map(
  [latency, bandwidth, slowClose, timeout, resetPeer, slicer, limitData, noop].map((k) => [k.type, k]),
);

export const NOOP_KIND: ToxicKind = noop;

/**
 * Shared plumbing for the suites that drive the official `nats` client against each server kind
 * (test/broker/client-*.test.ts): bounded waits, message collectors, delivery barriers, status-event logs and
 * connections that are closed after every test. Nothing here sleeps: every wait has a deadline.
 */
import {
  type ConnectionOptions,
  connect,
  type Msg,
  type NatsConnection,
  type NatsError,
  nuid,
  type Status,
  StringCodec,
} from "nats";
import { afterEach } from "vitest";
import type { RunningServer } from "./servers.js";

export const sc = StringCodec();

/** A subject prefix unique to the calling test, so tests never see each other's traffic. */
export const unique = (): string => `t${nuid.next()}`;

/** Rejects if `p` does not settle within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms} ms: ${typeof what === "string" ? what : what()}`));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** `connect` to a test server with defaults for tests; see `trackedConnect`. */
export type ConnectTo = (server: RunningServer, opts?: ConnectionOptions) => Promise<NatsConnection>;

/**
 * Returns a `connect` for the enclosing describe block whose connections are all closed after each test
 * (it registers the `afterEach`), so no connection outlives its test. Reconnect is off unless `opts` turns it on.
 */
export function trackedConnect(): ConnectTo {
  let open: NatsConnection[] = [];
  afterEach(async () => {
    const conns = open;
    open = [];
    await Promise.all(conns.map((nc) => nc.close().catch(() => undefined)));
  });
  return async (server, opts = {}) => {
    const nc = await connect({ servers: server.url, reconnect: false, ...opts });
    open.push(nc);
    return nc;
  };
}

/** A subscription callback that records messages and lets a test wait (bounded) for a count. */
export function collector() {
  const msgs: Msg[] = [];
  const errors: NatsError[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const wake = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (msgs.length >= w.n) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };
  return {
    msgs,
    errors,
    callback: (err: NatsError | null, m: Msg) => {
      if (err) errors.push(err);
      else msgs.push(m);
      wake();
    },
    async waitFor(n: number, ms = 5000, what = "messages"): Promise<void> {
      if (msgs.length >= n) return;
      await within(
        new Promise<void>((resolve) => waiters.push({ n, resolve })),
        ms,
        () => `${what}: got ${msgs.length} of ${n}`,
      );
    },
  };
}

/**
 * After this resolves, everything `pub` published before the call has been processed by the server and every
 * resulting delivery to `subs` has reached their callbacks (the server answers each PING after what it already
 * queued for that connection). This is how a test proves that nothing more will arrive, without sleeping.
 */
export async function barrier(pub: NatsConnection, ...subs: NatsConnection[]): Promise<void> {
  await within(pub.flush(), 5000, "publisher flush");
  await within(Promise.all(subs.map((s) => s.flush())), 5000, "subscriber flush");
}

/**
 * Drains an async iterable of messages (an iterator subscription, a `requestMany` result) into an array; fails
 * if it has not ended within `ms`.
 */
export async function iterate(sub: AsyncIterable<Msg>, ms: number, what: string): Promise<Msg[]> {
  const out: Msg[] = [];
  await within(
    (async () => {
      for await (const m of sub) out.push(m);
    })(),
    ms,
    () => `${what}: iterator still open after ${out.length} messages`,
  );
  return out;
}

/** Records the connection's async status events (errors from -ERR, disconnects...). */
export function statusLog(nc: NatsConnection) {
  const events: Status[] = [];
  const waiters: { ready: () => boolean; resolve: () => void }[] = [];
  (async () => {
    for await (const s of nc.status()) {
      events.push(s);
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i]!;
        if (w.ready()) {
          waiters.splice(i, 1);
          w.resolve();
        }
      }
    }
  })().catch(() => undefined);
  const until = (ready: () => boolean, ms: number): Promise<void> => {
    if (ready()) return Promise.resolve();
    return within(
      new Promise<void>((resolve) => waiters.push({ ready, resolve })),
      ms,
      () => `status events; saw ${JSON.stringify(events)}`,
    );
  };
  return {
    events,
    /** Resolves with the first event (already seen or future) matching `pred`. */
    async waitFor(pred: (s: Status) => boolean, ms = 3000): Promise<Status> {
      await until(() => events.some(pred), ms);
      return events.find(pred)!;
    },
    /** Resolves with all matching events once there are at least `n`. */
    async waitForCount(pred: (s: Status) => boolean, n: number, ms = 3000): Promise<Status[]> {
      await until(() => events.filter(pred).length >= n, ms);
      return events.filter(pred);
    },
  };
}

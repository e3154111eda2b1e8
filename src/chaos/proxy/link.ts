/**
 * The data plane of one direction of one proxied connection, modelled on Toxiproxy's links:
 *
 *     source socket → reader → [noop stub] → [toxic stub] → … → writer → destination socket
 *
 * Stubs are joined by bounded channels ({@link Chan}); a stub runs one toxic's `pipe` loop, which takes chunks
 * from its input and puts (possibly delayed, sliced, dropped) chunks on its output. A full channel blocks the
 * stub before it, and in the end the reader, which pauses its socket: that is the backpressure that lets a
 * bandwidth toxic cap bytes per second without buffering the stream. Toxics are added, updated and removed on
 * live links by interrupting the stubs concerned and rewiring channels, with nothing dropped on the floor.
 */

/** 0 = upstream (client → server), 1 = downstream (server → client); the order toxics are listed in. */
export type Direction = 0 | 1;
export const UPSTREAM: Direction = 0;
export const DOWNSTREAM: Direction = 1;

/** A piece of the stream with the time it was read (ms, `performance.now()` clock). */
export interface Chunk {
  readonly data: Buffer;
  ts: number;
}

/** A chunk, or `null` for the end of the stream (a closed channel). */
export type Item = Chunk | null;

export function now(): number {
  return performance.now();
}

/** Go's `rand.Float32()`: uniform in [0, 1) with float32 granularity. */
export function randFloat32(): number {
  return Math.floor(Math.random() * 16_777_216) / 16_777_216;
}

/** A Go-like channel of chunks: `capacity` 0 is a rendezvous, closing it makes receivers get `null`. */
export class Chan {
  private readonly buf: Chunk[] = [];
  private readonly receivers: ((item: Item) => void)[] = [];
  private readonly senders: { readonly item: Chunk; readonly done: () => void }[] = [];
  private isClosed = false;

  constructor(readonly capacity: number) {}

  /** Buffered chunks (Go's `len(ch)`). */
  get length(): number {
    return this.buf.length;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Hand over or buffer a chunk if that can be done now. A closed channel swallows it. */
  trySend(item: Chunk): boolean {
    if (this.isClosed) return true;
    const receiver = this.receivers.shift();
    if (receiver) {
      receiver(item);
      return true;
    }
    if (this.buf.length < this.capacity) {
      this.buf.push(item);
      return true;
    }
    return false;
  }

  /** Send, calling `done` once taken. Returns a function that withdraws the send, or undefined if done. */
  sendCb(item: Chunk, done: () => void): (() => void) | undefined {
    if (this.trySend(item)) {
      done();
      return undefined;
    }
    const entry = { item, done };
    this.senders.push(entry);
    return () => {
      const i = this.senders.indexOf(entry);
      if (i >= 0) this.senders.splice(i, 1);
    };
  }

  send(item: Chunk): Promise<void> {
    return new Promise((resolve) => {
      this.sendCb(item, resolve);
    });
  }

  tryRecv(): { readonly item: Item } | undefined {
    const buffered = this.buf.shift();
    if (buffered !== undefined) {
      const sender = this.senders.shift();
      if (sender) {
        this.buf.push(sender.item);
        sender.done();
      }
      return { item: buffered };
    }
    const sender = this.senders.shift();
    if (sender) {
      sender.done();
      return { item: sender.item };
    }
    if (this.isClosed) return { item: null };
    return undefined;
  }

  /** Receive, calling `cb` with the item. Returns a function that withdraws the receive, or undefined if done. */
  recvCb(cb: (item: Item) => void): (() => void) | undefined {
    const got = this.tryRecv();
    if (got) {
      cb(got.item);
      return undefined;
    }
    this.receivers.push(cb);
    return () => {
      const i = this.receivers.indexOf(cb);
      if (i >= 0) this.receivers.splice(i, 1);
    };
  }

  recv(): Promise<Item> {
    return new Promise((resolve) => {
      this.recvCb(resolve);
    });
  }

  /** End of stream: waiting receivers get `null`; blocked senders are released (their chunks dropped). */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const r of this.receivers.splice(0)) r(null);
    for (const s of this.senders.splice(0)) s.done();
  }
}

/** Node's timers fire at once past 2^31-1 ms; toxic attributes are int64 milliseconds, so re-arm in steps. */
const MAX_TIMER_MS = 2_147_483_647;

/** `setTimeout` for any duration; returns the cancel function. */
export function after(ms: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = (left: number) => {
    timer = setTimeout(
      () => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()),
      Math.min(Math.max(0, left), MAX_TIMER_MS),
    );
  };
  arm(ms);
  return () => clearTimeout(timer);
}

export const INTERRUPTED: unique symbol = Symbol("interrupted");
export const TIMED_OUT: unique symbol = Symbol("timed out");

/** Attribute values of a toxic, all integers. */
export type Attributes = Readonly<Record<string, number>>;

/** What a toxic type provides: its attributes (in JSON order) and its pipe loop. */
export interface ToxicKind {
  readonly type: string;
  /** The Go struct name, used in error texts (`LatencyToxic`). */
  readonly goName: string;
  readonly attributes: readonly string[];
  /** Capacity of the channel in front of the stub (Go's `GetBufferSize`, 0 if none). */
  readonly bufferSize: number;
  /** Per-link state, created when the toxic joins a link (limit_data's byte count). */
  readonly newState?: () => unknown;
  /** Sets linger 0 on both sockets of connections opened while it is in the chain (reset_peer). */
  readonly resetsPeer?: boolean;
  /** Removing it closes the stub (and so the connection), as removing a timeout toxic does. */
  readonly closesOnRemove?: boolean;
  pipe(stub: ToxicStub, attributes: Attributes): Promise<void>;
}

/** A toxic as configured on a proxy (Go's ToxicWrapper). */
export interface ToxicWrapper {
  readonly name: string;
  readonly kind: ToxicKind;
  /** `stream` as sent by the client (echoed verbatim). */
  readonly stream: string;
  readonly direction: Direction;
  toxicity: number;
  attributes: Attributes;
  /** Position in its direction's chain; 0 is the hidden noop. */
  index: number;
}

/**
 * Where one toxic runs on one link. Mirrors Go's ToxicStub: `recv`/`sleep` are the toxic's select points and
 * also take interrupts; `send` is not interruptible (a toxic always finishes handing over what it holds).
 */
export class ToxicStub {
  state: unknown;
  private isClosed = false;
  private killed = false;
  private pendingInterrupt: { readonly consumed: () => void; readonly refused: () => void } | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly killHooks = new Set<() => void>();

  constructor(
    readonly input: Chan,
    public output: Chan,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  private takeInterrupt(): boolean {
    if (this.killed) return true;
    const p = this.pendingInterrupt;
    if (!p) return false;
    this.pendingInterrupt = undefined;
    p.consumed();
    return true;
  }

  private select<T>(arm: (settle: (v: T) => void) => () => void): Promise<T | typeof INTERRUPTED> {
    if (this.takeInterrupt()) return Promise.resolve(INTERRUPTED);
    return new Promise((resolve) => {
      let done = false;
      let disarm: (() => void) | undefined;
      const settle = (v: T | typeof INTERRUPTED) => {
        if (done) return;
        done = true;
        this.wake = undefined;
        disarm?.();
        resolve(v);
      };
      disarm = arm(settle);
      if (done) {
        disarm();
        return;
      }
      this.wake = () => {
        if (this.takeInterrupt()) settle(INTERRUPTED);
      };
    });
  }

  /** `select { case <-Interrupt: case c := <-Input: [case <-time.After(timeoutMs):] }` */
  recv(timeoutMs?: number): Promise<Item | typeof INTERRUPTED | typeof TIMED_OUT> {
    return this.select<Item | typeof TIMED_OUT>((settle) => {
      const cancel = this.input.recvCb(settle);
      const cancelTimer = timeoutMs === undefined ? undefined : after(timeoutMs, () => settle(TIMED_OUT));
      return () => {
        cancel?.();
        cancelTimer?.();
      };
    });
  }

  /** `select { case <-time.After(ms): case <-Interrupt: }`; true when interrupted. */
  async sleep(ms: number): Promise<boolean> {
    const r = await this.select<false>((settle) => {
      if (ms <= 0) {
        const imm = setImmediate(() => settle(false));
        return () => clearImmediate(imm);
      }
      return after(ms, () => settle(false));
    });
    return r === INTERRUPTED;
  }

  /** `<-time.After(ms)` outside a select: only the end of the link cuts it short. */
  sleepThrough(ms: number): Promise<void> {
    if (this.killed) return Promise.resolve();
    return new Promise((resolve) => {
      const hook = () => {
        cancel();
        resolve();
      };
      const cancel = after(ms, () => {
        this.killHooks.delete(hook);
        resolve();
      });
      this.killHooks.add(hook);
    });
  }

  /** `stub.Output <- c` */
  send(chunk: Chunk): Promise<void> {
    if (this.killed) return Promise.resolve();
    return new Promise((resolve) => {
      const hook = () => {
        cancel?.();
        resolve();
      };
      const cancel = this.output.sendCb(chunk, () => {
        this.killHooks.delete(hook);
        resolve();
      });
      if (cancel) this.killHooks.add(hook);
    });
  }

  /** Send with a deadline (Go's `WriteOutput`); false when it timed out and the chunk was dropped. */
  sendWithin(chunk: Chunk, ms: number): Promise<boolean> {
    if (this.killed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.killHooks.delete(hook);
        resolve(ok);
      };
      const hook = () => {
        cancel?.();
        finish(false);
      };
      const timer = setTimeout(hook, ms);
      const cancel = this.output.sendCb(chunk, () => finish(true));
      if (cancel) this.killHooks.add(hook);
    });
  }

  /** End this stub's output (the stream ends here); a pending interrupt is refused. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.output.close();
    const p = this.pendingInterrupt;
    this.pendingInterrupt = undefined;
    p?.refused();
  }

  /** Run a toxic here; toxicity decides once per run whether it is the real toxic or a noop. */
  run(toxic: ToxicWrapper): void {
    const active = randFloat32() < toxic.toxicity;
    const attributes = toxic.attributes;
    const pipe = active ? toxic.kind.pipe(this, attributes) : noopPipe(this);
    this.running = pipe.catch(() => {
      // A toxic failed (a bug, or an attribute value Go would crash on): end the stream rather than hang.
      this.close();
    });
  }

  /**
   * Stop the running toxic so it can be replaced (Go's `InterruptToxic`). Resolves true once it has returned,
   * false if the stub is closed.
   */
  interruptToxic(): Promise<boolean> {
    if (this.isClosed || this.killed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.pendingInterrupt = {
        consumed: () => {
          void this.running.then(() => resolve(true));
        },
        refused: () => resolve(false),
      };
      this.wake?.();
    });
  }

  /** The connection is gone: return from every wait at once, drop whatever is in hand. */
  kill(): void {
    if (this.killed) return;
    this.killed = true;
    const p = this.pendingInterrupt;
    this.pendingInterrupt = undefined;
    p?.refused();
    this.wake?.();
    for (const hook of [...this.killHooks]) hook();
    this.killHooks.clear();
  }
}

/** The noop toxic: every chunk through, unchanged. Also what an inactive toxic (toxicity) runs. */
export async function noopPipe(stub: ToxicStub): Promise<void> {
  for (;;) {
    const c = await stub.recv();
    if (c === INTERRUPTED || c === TIMED_OUT) return;
    if (c === null) {
      stub.close();
      return;
    }
    await stub.send(c);
  }
}

const PREV_DONE: unique symbol = Symbol("previous stub interrupted");

function recvOr(ch: Chan, other: Promise<void>): Promise<Item | typeof PREV_DONE> {
  return new Promise((resolve) => {
    let done = false;
    const cancel = ch.recvCb((item) => {
      if (done) return;
      done = true;
      resolve(item);
    });
    if (done) return;
    void other.then(() => {
      if (done) return;
      done = true;
      cancel?.();
      resolve(PREV_DONE);
    });
  });
}

/** One direction of one connection: the chain of stubs between the reader and the writer. */
export class ToxicLink {
  readonly stubs: ToxicStub[] = [];
  /** Where the reader puts chunks read from the source socket. */
  readonly input: Chan;
  /** Where the writer takes chunks for the destination socket. */
  readonly output: Chan;
  private readonly chans: Chan[] = [];

  constructor(
    readonly direction: Direction,
    chain: readonly ToxicWrapper[],
  ) {
    let last = this.chan(0);
    this.input = last;
    for (let i = 0; i < chain.length; i++) {
      const next = this.chan(i + 1 < chain.length ? chain[i + 1]!.kind.bufferSize : 0);
      this.stubs.push(new ToxicStub(last, next));
      last = next;
    }
    this.output = last;
  }

  private chan(capacity: number): Chan {
    const c = new Chan(capacity);
    this.chans.push(c);
    return c;
  }

  /** Start every stub with the toxic at its position. */
  start(chain: readonly ToxicWrapper[]): void {
    chain.forEach((toxic, i) => {
      const stub = this.stubs[i]!;
      if (toxic.kind.newState) stub.state = toxic.kind.newState();
      stub.run(toxic);
    });
  }

  /** Append a toxic at the end of the chain (`chain` already includes it). */
  async addToxic(toxic: ToxicWrapper, chain: readonly ToxicWrapper[]): Promise<void> {
    const i = this.stubs.length;
    const prev = this.stubs[i - 1]!;
    const newIn = this.chan(toxic.kind.bufferSize);
    const stub = new ToxicStub(newIn, prev.output);
    this.stubs.push(stub);
    if (await prev.interruptToxic()) {
      prev.output = newIn;
      if (toxic.kind.newState) stub.state = toxic.kind.newState();
      stub.run(toxic);
      const prevToxic = chain[i - 1];
      if (prevToxic) prev.run(prevToxic);
    } else {
      // The link has ended: keep the new stub consistent with it.
      stub.output = newIn;
      stub.close();
    }
  }

  /** Restart a toxic with new attributes or toxicity (a fresh toxicity draw, like Go). */
  async updateToxic(toxic: ToxicWrapper): Promise<void> {
    const stub = this.stubs[toxic.index];
    if (stub && (await stub.interruptToxic())) stub.run(toxic);
  }

  /**
   * Take a toxic out (`index` is its position before removal, `chain` is the chain without it). Whatever it
   * holds is passed on; a toxic with `closesOnRemove` ends the stream instead.
   */
  async removeToxic(toxic: ToxicWrapper, index: number, chain: readonly ToxicWrapper[]): Promise<void> {
    const stub = this.stubs[index];
    const prev = this.stubs[index - 1];
    if (!stub || !prev) return;
    if (!(await stub.interruptToxic())) return;
    if (toxic.kind.closesOnRemove) {
      stub.close();
      return;
    }
    // Interrupt the stub before it while passing on what it is still trying to hand over.
    const prevDone = prev.interruptToxic();
    let prevInterrupted = false;
    let stopped = false;
    const prevSettled = prevDone.then((ok) => {
      prevInterrupted = ok;
    });
    while (!prevInterrupted) {
      const r = stopped ? await stub.input.recv() : await recvOr(stub.input, prevSettled);
      if (r === PREV_DONE) {
        stopped = true;
        continue;
      }
      if (r === null) {
        stub.close();
        await prevSettled;
        return;
      }
      await stub.sendWithin(r, 5000);
    }
    while (stub.input.length > 0) {
      const got = stub.input.tryRecv();
      if (!got || got.item === null) break;
      await stub.sendWithin(got.item, 5000);
    }
    prev.output = stub.output;
    this.stubs.splice(index, 1);
    const prevToxic = chain[index - 1];
    if (prevToxic) prev.run(prevToxic);
  }

  /** Both sockets are closed: stop every stub and release every wait. */
  kill(): void {
    for (const stub of this.stubs) stub.kill();
    for (const c of this.chans) c.close();
  }
}

/**
 * Exponential backoff with full jitter (docs/link-protocol.md §2): the delay before retry `n` (counting from
 * 0) is uniform in `[0, min(maxMs, initialMs * factor^n))`. Pure apart from the random source, which is
 * injectable so tests can pin it.
 */
import { BridgeheadError } from "../util/errors.js";

export interface BackoffOptions {
  /** Ceiling of the first delay, in ms (default 100). */
  initialMs?: number;
  /** Largest ceiling, in ms (default 10 000). */
  maxMs?: number;
  /** Growth of the ceiling per retry (default 2). */
  factor?: number;
  /** Uniform source in [0, 1) (default `Math.random`). */
  random?: () => number;
}

export const BACKOFF_DEFAULTS = { initialMs: 100, maxMs: 10_000, factor: 2 } as const;

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  private readonly random: () => number;
  private retries = 0;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? BACKOFF_DEFAULTS.initialMs;
    this.maxMs = opts.maxMs ?? BACKOFF_DEFAULTS.maxMs;
    this.factor = opts.factor ?? BACKOFF_DEFAULTS.factor;
    this.random = opts.random ?? Math.random;
    if (!(Number.isFinite(this.initialMs) && this.initialMs > 0)) {
      throw new BridgeheadError(`backoff initialMs must be a positive number, got ${this.initialMs}`);
    }
    if (!(Number.isFinite(this.maxMs) && this.maxMs >= this.initialMs)) {
      throw new BridgeheadError(`backoff maxMs must be at least initialMs, got ${this.maxMs}`);
    }
    if (!(Number.isFinite(this.factor) && this.factor >= 1)) {
      throw new BridgeheadError(`backoff factor must be at least 1, got ${this.factor}`);
    }
  }

  /** How many delays `next()` has handed out since the last `reset()`. */
  get attempt(): number {
    return this.retries;
  }

  /** The upper bound of the delay for retry `n` (0-based): `min(maxMs, initialMs * factor^n)`. */
  ceiling(n: number): number {
    // factor^n overflows to Infinity for large n; min() then yields maxMs, which is what we want.
    return Math.min(this.maxMs, this.initialMs * this.factor ** Math.max(0, n));
  }

  /** The delay (whole ms) to wait before the next retry; each call moves one step up the ladder. */
  next(): number {
    const ceiling = this.ceiling(this.retries);
    this.retries++;
    let r = this.random();
    // A misbehaving source must not yield a negative, NaN or over-the-ceiling delay.
    if (!(r >= 0)) r = 0;
    if (r >= 1) r = 1 - Number.EPSILON;
    return Math.floor(r * ceiling);
  }

  /** Back to the first step (after a link proved healthy). */
  reset(): void {
    this.retries = 0;
  }
}

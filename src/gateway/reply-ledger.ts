/**
 * The routed reply subjects (`_GR_.<region>.<inbox>`) of requests this region has carried, so a reply can
 * pass link filters that would stop its plain subject (an `_INBOX.>` nobody lists in a filter), while a
 * publish that merely looks like a reply cannot: filters are applied to an unknown routed subject's real
 * (stripped) subject. Bounded in size and age, oldest dropped first.
 */
export class ReplyLedger {
  private readonly expiry = new Map<string, number>();

  constructor(
    private readonly maxEntries = 65_536,
    private readonly ttlMs = 10 * 60_000,
  ) {}

  /** A request carrying `reply` passed through this region. */
  record(reply: string, now = Date.now()): void {
    if (this.expiry.has(reply)) this.expiry.delete(reply); // re-insert: Map order is age order
    this.expiry.set(reply, now + this.ttlMs);
    if (this.expiry.size > this.maxEntries) {
      const oldest = this.expiry.keys().next().value;
      if (oldest !== undefined) this.expiry.delete(oldest);
    }
  }

  /** Was a request with this reply subject carried here, recently enough? */
  has(reply: string, now = Date.now()): boolean {
    const exp = this.expiry.get(reply);
    if (exp === undefined) return false;
    if (exp < now) {
      this.expiry.delete(reply);
      return false;
    }
    return true;
  }

  get size(): number {
    return this.expiry.size;
  }
}

import type { SubscriptionLike } from "../interest/sublist.js";
import type { ClientConnection } from "./connection.js";

/** One client subscription: what the sublist stores and what a delivery needs. */
export class Subscription implements SubscriptionLike {
  /** ` <sid> `, pre-encoded: it sits between subject and size in every MSG line for this sub. */
  readonly sidBytes: Buffer;
  /** Auto-unsubscribe after this many deliveries (UNSUB <sid> <max>); 0 = none. */
  max = 0;
  delivered = 0;
  closed = false;
  /** Wildcard subscription overlapping the user's subscribe deny list: filter each delivery. */
  denyFilter = false;

  constructor(
    readonly client: ClientConnection,
    readonly subject: string,
    readonly queue: string | undefined,
    readonly sid: string,
  ) {
    this.sidBytes = Buffer.from(` ${sid} `, "latin1");
  }
}

/**
 * The port between a gateway and "whatever broker this region runs". The gateway sees local interest
 * (a snapshot plus transitions), is offered every local publish, and injects messages that arrive from
 * other regions. It never reaches into a broker's internals, so an embedded broker and a nats-server
 * cluster reached over the leafnode protocol are interchangeable behind this interface.
 */
import type { InterestChange, InterestEntry } from "../interest/interest-set.js";

/**
 * Receives local publishes, after local delivery. The contract is the broker's `RemoteRouter`: return
 * true when the message went to another region (it counts as delivered for no-responders); the payload is
 * only valid during the call. Every adapter (embedded broker, nats-server leafnode) calls it the same way.
 */
export type { RemoteRouter as LocalPublishHandler } from "../broker/server.js";

import type { RemoteRouter as LocalPublishHandler } from "../broker/server.js";

/** A (subject, queue) that at least one other region wants. */
export interface RemoteInterestKey {
  readonly subject: string;
  readonly queue: string | undefined;
}

/** `add`: the first region came to want the key; `remove`: the last one stopped (weights are not tracked). */
export interface RemoteInterestChange extends RemoteInterestKey {
  readonly op: "add" | "remove";
}

/** What other regions want, aggregated over every origin: the gateway hands one to ports that need it. */
export interface RemoteInterestSource {
  snapshot(): RemoteInterestKey[];
  /** Transitions after the snapshot; returns an unsubscribe function. */
  onChange(listener: (change: RemoteInterestChange) => void): () => void;
}

export interface RegionPort {
  /**
   * Optional: observe what other regions want. A broker that is only offered the publishes it subscribed
   * to (a nats-server cluster over a leafnode) must subscribe there on their behalf; the embedded broker
   * offers every publish and does not implement it. Returns a function that stops watching.
   */
  watchRemoteInterest?(source: RemoteInterestSource): () => void;
  /** The region's current interest: one entry per (subject, queue) with its weight. */
  interestSnapshot(): InterestEntry[];
  /** Interest transitions (0->1, 1->0, queue weight changes); returns an unsubscribe function. */
  onInterest(listener: (change: InterestChange) => void): () => void;
  /** Install (or remove) the handler offered every local publish. */
  setPublishHandler(handler: LocalPublishHandler | undefined): void;
  /**
   * Deliver a message from another region to this region's plain subscribers and to one member of each
   * queue group in `queues`. Returns whether anyone got it.
   */
  inject(
    subject: string,
    reply: string | undefined,
    hdr: number,
    buf: Buffer,
    start: number,
    end: number,
    queues: readonly string[],
  ): boolean;
}

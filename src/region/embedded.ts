/** The region port over the embedded broker running in the same process. */

import type { BrokerServer } from "../broker/server.js";
import type { InterestChange, InterestEntry } from "../interest/interest-set.js";
import type { LocalPublishHandler, RegionPort } from "./port.js";

export class EmbeddedRegionPort implements RegionPort {
  constructor(readonly broker: BrokerServer) {}

  interestSnapshot(): InterestEntry[] {
    return this.broker.interestSnapshot();
  }

  onInterest(listener: (change: InterestChange) => void): () => void {
    return this.broker.onInterest(listener);
  }

  setPublishHandler(handler: LocalPublishHandler | undefined): void {
    this.broker.setRemoteRouter(handler);
  }

  inject(
    subject: string,
    reply: string | undefined,
    hdr: number,
    buf: Buffer,
    start: number,
    end: number,
    queues: readonly string[],
  ): boolean {
    return this.broker.inject(subject, reply, hdr, buf, start, end, queues);
  }
}

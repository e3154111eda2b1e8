/**
 * Per-message accounting. Every published message gets an id; at send time the recorder notes which
 * receivers must get it (subscribers whose subject matches and that are active then, and one member of each
 * matching queue group), and every delivery is matched against that. After the run, `analyze` turns this into
 * loss, duplicates, latency percentiles and per-bucket figures, split by whether a message was sent during a
 * fault window.
 */
import { subjectMatches } from "../../interest/subject.js";
import { type LatencyStats, latencyStats } from "./stats.js";

export interface ReceiverInfo {
  /** Unique key: one subscriber instance, or one queue group (subject + queue). */
  readonly key: string;
  readonly kind: "subscriber" | "queue";
  readonly region: string;
  readonly subject: string;
  readonly queue?: string;
  /** Active from/until (ms from the workload start); messages sent outside are not expected. */
  readonly from: number;
  readonly until: number;
}

/** A span of the run a fault affected: from its start to the moment the system had recovered from it. */
export interface ImpactWindow {
  readonly start: number;
  /** When the system was healthy again (or the fault's end when it never was). */
  readonly end: number;
}

interface SentMessage {
  readonly publisher: string;
  readonly at: number;
  readonly expected: readonly string[];
  /** receiver key -> first delivery time */
  readonly got: Map<string, number>;
}

interface RequestRecord {
  readonly requester: string;
  readonly at: number;
  done: number | undefined;
  outcome: RequestOutcome | undefined;
}

export type RequestOutcome = "ok" | "timeout" | "no_responders" | "error";

export interface DeliveryTotals {
  readonly messagesSent: number;
  readonly expectedDeliveries: number;
  readonly delivered: number;
  readonly lost: number;
  readonly lostOutsideFaults: number;
  readonly expectedOutsideFaults: number;
  readonly duplicates: number;
  /** Deliveries nobody expected (a late subscriber's first messages, a message still in flight at until). */
  readonly unexpected: number;
}

export interface RequestTotals {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly timeouts: number;
  readonly noResponders: number;
  readonly errors: number;
  readonly failedOutsideFaults: number;
  readonly latency: LatencyStats;
}

export interface Bucket {
  /** Start of the bucket, ms from the workload start. */
  readonly t: number;
  /** ms the bucket spans: the bucket size, less for the last one. */
  readonly width: number;
  /** Expected deliveries of messages sent in this bucket, and how many of them were lost. */
  readonly expected: number;
  readonly lost: number;
  /** Deliveries received in this bucket, and their latency. */
  readonly delivered: number;
  readonly latency: LatencyStats;
  readonly requestsOk: number;
  readonly requestsFailed: number;
}

export interface ReceiverSummary {
  readonly key: string;
  readonly kind: "subscriber" | "queue";
  readonly region: string;
  readonly subject: string;
  readonly expected: number;
  readonly received: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly latency: LatencyStats;
  /** Of messages sent outside / during fault windows. */
  readonly latencyOutsideFaults: LatencyStats;
  readonly latencyDuringFaults: LatencyStats;
}

/** A message one receiver got twice: which, and when (ms from the workload start). */
export interface DuplicateSample {
  readonly receiver: string;
  readonly id: string;
  readonly sentAt: number;
  readonly firstAt: number;
  readonly againAt: number;
}

const MAX_DUPLICATE_SAMPLES = 20;

export interface Analysis {
  readonly totals: DeliveryTotals;
  readonly requests: RequestTotals;
  readonly latency: {
    readonly all: LatencyStats;
    readonly outsideFaults: LatencyStats;
    readonly duringFaults: LatencyStats;
  };
  readonly receivers: readonly ReceiverSummary[];
  readonly publishers: readonly { readonly name: string; readonly sent: number }[];
  readonly buckets: readonly Bucket[];
  /** The first duplicates seen (at most 20), to tell a replay from a routing bug. */
  readonly duplicateSamples: readonly DuplicateSample[];
}

export interface RecorderOptions {
  /** A message sent this long before a window counts as sent during it. */
  readonly faultMargin: number;
  /** Receivers starting after 0 expect messages only this long after their start. */
  readonly interestGrace: number;
}

export class Recorder {
  private readonly receivers = new Map<string, ReceiverInfo>();
  private readonly messages = new Map<string, SentMessage>();
  private readonly requests: RequestRecord[] = [];
  private readonly duplicates = new Map<string, number>();
  private readonly sentBy = new Map<string, number>();
  private readonly duplicateSamples: DuplicateSample[] = [];
  private unexpected = 0;
  private delivered = 0;
  private outstandingCount = 0;
  /** When the last expected delivery arrived (ms from the workload start). */
  lastDeliveryAt = 0;

  constructor(private readonly options: RecorderOptions) {}

  addReceiver(r: ReceiverInfo): void {
    const prev = this.receivers.get(r.key);
    // Members of one queue group may come from several specs: the group is active whenever one of them is.
    this.receivers.set(
      r.key,
      prev === undefined
        ? r
        : { ...prev, from: Math.min(prev.from, r.from), until: Math.max(prev.until, r.until) },
    );
  }

  sent(publisher: string, id: string, subject: string, at: number): void {
    const expected: string[] = [];
    for (const r of this.receivers.values()) {
      const from = r.from > 0 ? r.from + this.options.interestGrace : r.from;
      if (at >= from && at < r.until && subjectMatches(r.subject, subject)) expected.push(r.key);
    }
    this.messages.set(id, { publisher, at, expected, got: new Map() });
    this.sentBy.set(publisher, (this.sentBy.get(publisher) ?? 0) + 1);
    this.outstandingCount += expected.length;
  }

  received(receiver: string, id: string, at: number): void {
    const m = this.messages.get(id);
    if (m === undefined) {
      this.unexpected++;
      return;
    }
    if (m.got.has(receiver)) {
      this.duplicate(receiver, id, at);
      return;
    }
    m.got.set(receiver, at);
    if (!m.expected.includes(receiver)) {
      this.unexpected++;
      return;
    }
    this.delivered++;
    this.outstandingCount--;
    this.lastDeliveryAt = at;
  }

  requestStarted(requester: string, at: number): RequestRecord {
    const r: RequestRecord = { requester, at, done: undefined, outcome: undefined };
    this.requests.push(r);
    return r;
  }

  requestDone(r: RequestRecord, outcome: RequestOutcome, at: number): void {
    r.outcome = outcome;
    r.done = at;
  }

  /** Expected deliveries not received yet. */
  outstanding(): number {
    return this.outstandingCount;
  }

  pendingRequests(): number {
    return this.requests.filter((r) => r.outcome === undefined).length;
  }

  /** Running totals for progress lines. */
  counts(): {
    sent: number;
    delivered: number;
    duplicates: number;
    requests: number;
    requestsFailed: number;
  } {
    let dups = 0;
    for (const d of this.duplicates.values()) dups += d;
    return {
      sent: this.messages.size,
      delivered: this.delivered,
      duplicates: dups,
      requests: this.requests.length,
      requestsFailed: this.requests.filter((r) => r.outcome !== undefined && r.outcome !== "ok").length,
    };
  }

  analyze(windows: readonly ImpactWindow[], bucketMs: number, endMs: number): Analysis {
    const margin = this.options.faultMargin;
    const inFault = (at: number) => windows.some((w) => at >= w.start - margin && at < w.end);
    const nBuckets = Math.max(1, Math.ceil(endMs / bucketMs));
    const b = Array.from({ length: nBuckets }, () => ({
      expected: 0,
      lost: 0,
      delivered: 0,
      lat: [] as number[],
      ok: 0,
      failed: 0,
    }));
    const bucketOf = (at: number) => b[Math.min(nBuckets - 1, Math.max(0, Math.floor(at / bucketMs)))]!;
    const all: number[] = [];
    const outside: number[] = [];
    const during: number[] = [];
    const perReceiver = new Map<
      string,
      { expected: number; received: number; lat: number[]; outside: number[]; during: number[] }
    >();
    for (const k of this.receivers.keys()) {
      perReceiver.set(k, { expected: 0, received: 0, lat: [], outside: [], during: [] });
    }
    let expected = 0;
    let lost = 0;
    let lostOutside = 0;
    let expectedOutside = 0;
    for (const m of this.messages.values()) {
      const fault = inFault(m.at);
      const sb = bucketOf(m.at);
      for (const k of m.expected) {
        expected++;
        sb.expected++;
        if (!fault) expectedOutside++;
        const pr = perReceiver.get(k)!;
        pr.expected++;
        const got = m.got.get(k);
        if (got === undefined) {
          lost++;
          sb.lost++;
          if (!fault) lostOutside++;
          continue;
        }
        const latency = got - m.at;
        pr.received++;
        pr.lat.push(latency);
        (fault ? pr.during : pr.outside).push(latency);
        all.push(latency);
        (fault ? during : outside).push(latency);
        const rb = bucketOf(got);
        rb.delivered++;
        rb.lat.push(latency);
      }
    }
    const reqLat: number[] = [];
    let ok = 0;
    let timeouts = 0;
    let noResponders = 0;
    let errors = 0;
    let failedOutside = 0;
    for (const r of this.requests) {
      const outcome = r.outcome ?? "timeout";
      const rb = bucketOf(r.at);
      if (outcome === "ok") {
        ok++;
        rb.ok++;
        reqLat.push((r.done ?? r.at) - r.at);
        continue;
      }
      rb.failed++;
      if (!inFault(r.at)) failedOutside++;
      if (outcome === "timeout") timeouts++;
      else if (outcome === "no_responders") noResponders++;
      else errors++;
    }
    let dups = 0;
    for (const d of this.duplicates.values()) dups += d;
    return {
      totals: {
        messagesSent: this.messages.size,
        expectedDeliveries: expected,
        delivered: expected - lost,
        lost,
        lostOutsideFaults: lostOutside,
        expectedOutsideFaults: expectedOutside,
        duplicates: dups,
        unexpected: this.unexpected,
      },
      requests: {
        sent: this.requests.length,
        ok,
        failed: this.requests.length - ok,
        timeouts,
        noResponders,
        errors,
        failedOutsideFaults: failedOutside,
        latency: latencyStats(reqLat),
      },
      latency: {
        all: latencyStats(all),
        outsideFaults: latencyStats(outside),
        duringFaults: latencyStats(during),
      },
      receivers: [...this.receivers.values()].map((r) => {
        const pr = perReceiver.get(r.key)!;
        return {
          key: r.key,
          kind: r.kind,
          region: r.region,
          subject: r.subject,
          expected: pr.expected,
          received: pr.received,
          lost: pr.expected - pr.received,
          duplicates: this.duplicates.get(r.key) ?? 0,
          latency: latencyStats(pr.lat),
          latencyOutsideFaults: latencyStats(pr.outside),
          latencyDuringFaults: latencyStats(pr.during),
        };
      }),
      publishers: [...this.sentBy].map(([name, sent]) => ({ name, sent })),
      duplicateSamples: this.duplicateSamples.map((d) => ({
        ...d,
        sentAt: Math.round(d.sentAt),
        firstAt: Math.round(d.firstAt),
        againAt: Math.round(d.againAt),
      })),
      buckets: b.map((x, i) => ({
        t: i * bucketMs,
        width: Math.min(bucketMs, endMs - i * bucketMs),
        expected: x.expected,
        lost: x.lost,
        delivered: x.delivered,
        latency: latencyStats(x.lat),
        requestsOk: x.ok,
        requestsFailed: x.failed,
      })),
    };
  }

  private duplicate(receiver: string, id: string, at: number): void {
    this.duplicates.set(receiver, (this.duplicates.get(receiver) ?? 0) + 1);
    const m = this.messages.get(id);
    if (this.duplicateSamples.length < MAX_DUPLICATE_SAMPLES && m !== undefined) {
      this.duplicateSamples.push({
        receiver,
        id,
        sentAt: m.at,
        firstAt: m.got.get(receiver) ?? at,
        againAt: at,
      });
    }
  }
}

/**
 * The shape of a chaos scenario file (docs/chaos.md, "Scenarios"): a topology, a workload, a timeline of
 * faults and the expectations the run is judged by. Checks that need the topology (regions and links exist,
 * restarts follow kills) are in checks.ts.
 */
import { z } from "zod";
import { duration, REGION_NAME } from "../../config/schema.js";
import { isValidLiteralSubject, isValidSubject } from "../../interest/subject.js";

const regionName = z.string().regex(REGION_NAME, { message: "expected a region name" });
const subjectPattern = z.string().refine(isValidSubject, {
  message: "not a valid subject (tokens separated by '.', '*' one token, '>' last)",
});
const literalSubject = z.string().refine(isValidLiteralSubject, {
  message: "expected a subject without wildcards (publishers publish to one subject)",
});
const positiveRate = z.number().positive().max(100_000);
const count = z.number().int().min(1).max(1000).default(1);

/** A loss limit: a number of deliveries (`0`, `10`) or a share of the expected ones (`"0.5%"`). */
export const lossLimit = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^\d+(\.\d+)?%$/, { message: 'expected a count (0, 10) or a percentage ("0.5%")' }),
]);

const window = {
  /** Offset from the workload start when this client starts; default 0. */
  from: duration.optional(),
  /** Offset when it stops; default the end of the workload. */
  until: duration.optional(),
};

const subscriber = z.strictObject({
  name: z.string().min(1).optional(),
  region: regionName,
  subject: subjectPattern,
  count,
  ...window,
});

const queueWorker = z.strictObject({
  name: z.string().min(1).optional(),
  region: regionName,
  subject: subjectPattern,
  queue: z.string().regex(/^[^\s]+$/, { message: "expected a queue group name without spaces" }),
  count,
  /** Answer requests (messages with a reply subject); default true. */
  reply: z.boolean().default(true),
  ...window,
});

const publisher = z.strictObject({
  name: z.string().min(1).optional(),
  region: regionName,
  subject: literalSubject,
  /** Messages per second. */
  rate: positiveRate,
  /** Payload bytes (headers carry the message id and send time on top). */
  size: z.number().int().min(0).max(1_048_576).default(16),
  ...window,
});

const requester = z.strictObject({
  name: z.string().min(1).optional(),
  region: regionName,
  subject: literalSubject,
  rate: positiveRate,
  size: z.number().int().min(0).max(1_048_576).default(16),
  timeout: duration.default(1000),
  ...window,
});

const workload = z.strictObject({
  subscribers: z.array(subscriber).default([]),
  queue_workers: z.array(queueWorker).default([]),
  publishers: z.array(publisher).default([]),
  requesters: z.array(requester).default([]),
});

/** The Toxiproxy toxics and their attributes (integers, in Toxiproxy's units). */
export const TOXIC_ATTRIBUTES = {
  latency: { required: ["latency"], optional: ["jitter"] },
  bandwidth: { required: ["rate"], optional: [] },
  slow_close: { required: ["delay"], optional: [] },
  timeout: { required: ["timeout"], optional: [] },
  reset_peer: { required: [], optional: ["timeout"] },
  slicer: { required: ["average_size"], optional: ["size_variation", "delay"] },
  limit_data: { required: ["bytes"], optional: [] },
} as const satisfies Record<string, { required: readonly string[]; optional: readonly string[] }>;

export type ToxicType = keyof typeof TOXIC_ATTRIBUTES;
const TOXIC_TYPES = Object.keys(TOXIC_ATTRIBUTES) as [ToxicType, ...ToxicType[]];

const linkRef = z.tuple([regionName, regionName]);
const at = duration;

const toxicStep = z
  .strictObject({
    at,
    action: z.literal("toxic"),
    /** The link, by its two regions in either order. */
    link: linkRef,
    /** `a->b`: only traffic from a to b; `both` (default): both ways. */
    direction: z
      .string()
      .regex(/^(both|[A-Za-z0-9][A-Za-z0-9_-]*->[A-Za-z0-9][A-Za-z0-9_-]*)$/, {
        message: 'expected "both" or "<from>-><to>", e.g. us-east->eu-west',
      })
      .default("both"),
    toxic: z.enum(TOXIC_TYPES),
    attributes: z.record(z.string(), z.number().int().nonnegative()).default({}),
    /** Share of connections affected (Toxiproxy draws once per connection and direction). */
    toxicity: z.number().min(0).max(1).default(1),
    duration: duration.optional(),
  })
  .superRefine((s, ctx) => {
    const spec = TOXIC_ATTRIBUTES[s.toxic];
    const known: readonly string[] = [...spec.required, ...spec.optional];
    for (const k of Object.keys(s.attributes)) {
      if (!known.includes(k)) {
        ctx.addIssue({
          code: "custom",
          path: ["attributes", k],
          message: `unknown attribute '${k}' for a ${s.toxic} toxic (known: ${known.join(", ") || "none"})`,
        });
      }
    }
    for (const k of spec.required) {
      if (!(k in s.attributes)) {
        ctx.addIssue({
          code: "custom",
          path: ["attributes"],
          message: `a ${s.toxic} toxic needs the attribute '${k}'`,
        });
      }
    }
    if (s.toxic === "slicer" && s.attributes["average_size"] === 0) {
      ctx.addIssue({ code: "custom", path: ["attributes", "average_size"], message: "must be at least 1" });
    }
  });

const partitionStep = z
  .strictObject({
    at,
    action: z.literal("partition"),
    /** Cut every link of this region... */
    region: regionName.optional(),
    /** ...or this one link. */
    link: linkRef.optional(),
    duration: duration.optional(),
  })
  .refine((s) => (s.region === undefined) !== (s.link === undefined), {
    message: "a partition names exactly one of region or link",
  });

const killStep = z.strictObject({
  at,
  action: z.literal("kill"),
  region: regionName,
  /** Restart after this long; without it, a later restart or heal step brings the region back. */
  duration: duration.optional(),
});

const restartStep = z.strictObject({ at, action: z.literal("restart"), region: regionName });
const healStep = z.strictObject({ at, action: z.literal("heal") });

export const step = z.discriminatedUnion("action", [
  toxicStep,
  partitionStep,
  killStep,
  restartStep,
  healStep,
]);

const latencyLimits = z
  .strictObject({
    p50: duration.optional(),
    p90: duration.optional(),
    p99: duration.optional(),
    max: duration.optional(),
  })
  .refine((l) => Object.keys(l).length > 0, { message: "name at least one of p50, p90, p99, max" });

const expectations = z.strictObject({
  max_loss: lossLimit.optional(),
  max_loss_outside_faults: lossLimit.optional(),
  max_duplicates: z.number().int().nonnegative().default(0),
  max_request_failures: lossLimit.optional(),
  /** After every heal (a fault ending, a restart): links up and interest the same everywhere within this. */
  convergence_after_heal: duration.optional(),
  /** Latency percentiles of messages sent outside fault windows. */
  latency: latencyLimits.optional(),
  latency_during_faults: latencyLimits.optional(),
  /** At the end, every region holds exactly the interest every other region has (no stale entries). */
  interest_consistent: z.boolean().default(true),
});

export const scenario = z
  .strictObject({
    name: z.string().min(1).optional(),
    description: z.string().optional(),
    /** The topology (a Bridgehead config file), relative to the scenario file. */
    topology: z.string().min(1),
    /** Run every region on free ports instead of the topology's (default), so a run never clashes. */
    free_ports: z.boolean().default(true),
    /** Link heartbeat interval during the run (chaos.heartbeat); shorter detects dead links sooner. */
    link_heartbeat: duration
      .refine((ms) => Number.isInteger(ms) && ms >= 50, {
        message: "expected whole milliseconds, at least 50ms",
      })
      .optional(),
    /** How long publishers and requesters run; timeline offsets are from their start. */
    duration,
    /** After the workload: how long to wait for messages still in flight and for the system to settle. */
    drain: duration.default(5000),
    /** Width of a time bucket in the charts and the per-bucket figures. */
    bucket: duration.default(250),
    /** A message sent this long before a fault starts counts as sent during it (it may be in flight). */
    fault_margin: duration.default(500),
    /** Messages sent this long after a late subscriber starts are not expected yet (interest travels). */
    interest_grace: duration.default(1000),
    workload,
    timeline: z.array(step).default([]),
    expect: expectations.default({ max_duplicates: 0, interest_consistent: true }),
  })
  .refine((s) => s.duration > 0, { message: "duration must be more than 0", path: ["duration"] });

export type Scenario = z.output<typeof scenario>;
export type Step = z.output<typeof step>;
export type ToxicStep = Extract<Step, { action: "toxic" }>;
export type PartitionStep = Extract<Step, { action: "partition" }>;
export type KillStep = Extract<Step, { action: "kill" }>;
export type Expectations = z.output<typeof expectations>;
export type LatencyLimits = z.output<typeof latencyLimits>;
export type LossLimit = z.output<typeof lossLimit>;
export type SubscriberSpec = z.output<typeof subscriber>;
export type QueueWorkerSpec = z.output<typeof queueWorker>;
export type PublisherSpec = z.output<typeof publisher>;
export type RequesterSpec = z.output<typeof requester>;

/** Keys allowed at each place, for "did you mean" suggestions (`*` = any list index). */
export const SCENARIO_KEYS: readonly [string, readonly string[]][] = [
  [
    "",
    [
      "name",
      "description",
      "topology",
      "free_ports",
      "link_heartbeat",
      "duration",
      "drain",
      "bucket",
      "fault_margin",
      "interest_grace",
      "workload",
      "timeline",
      "expect",
    ],
  ],
  ["workload", ["subscribers", "queue_workers", "publishers", "requesters"]],
  ["workload.subscribers.*", ["name", "region", "subject", "count", "from", "until"]],
  ["workload.queue_workers.*", ["name", "region", "subject", "queue", "count", "reply", "from", "until"]],
  ["workload.publishers.*", ["name", "region", "subject", "rate", "size", "from", "until"]],
  ["workload.requesters.*", ["name", "region", "subject", "rate", "size", "timeout", "from", "until"]],
  [
    "timeline.*",
    ["at", "action", "link", "direction", "toxic", "attributes", "toxicity", "duration", "region"],
  ],
  [
    "expect",
    [
      "max_loss",
      "max_loss_outside_faults",
      "max_duplicates",
      "max_request_failures",
      "convergence_after_heal",
      "latency",
      "latency_during_faults",
      "interest_consistent",
    ],
  ],
  ["expect.latency", ["p50", "p90", "p99", "max"]],
  ["expect.latency_during_faults", ["p50", "p90", "p99", "max"]],
];

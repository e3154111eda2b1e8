/**
 * The shape of a Bridgehead YAML file: regions, the links between them, logging and metrics. The schema
 * checks each value on its own; cross-checks that need the whole file (unknown regions, duplicate
 * links, connectivity, address clashes) are in validate.ts.
 */
import { z } from "zod";
import { isValidSubject } from "../interest/subject.js";

/** Region names become subject tokens (`_GR_.<region>.`) and metric labels: letters, digits, - and _. */
export const REGION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d{1,5})$/;

export const hostPort = z
  .string()
  .regex(HOST_PORT, { message: "expected host:port, e.g. 127.0.0.1:4222" })
  // Only judged once the shape is right, so "localhost" gets one error, not two.
  .refine((s) => !HOST_PORT.test(s) || Number(HOST_PORT.exec(s)?.[2]) <= 65535, {
    message: "port must be 0-65535",
  });

const subject = z.string().refine(isValidSubject, {
  message: "not a valid subject (tokens separated by '.', '*' one token, '>' last)",
});

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/;

/** `500ms`, `30s`, `5m`, `1h` → milliseconds. */
export const duration = z
  .string()
  .regex(DURATION, { message: "expected a duration like 500ms, 30s, 5m or 1h" })
  .transform((s) => {
    const [, n, unit] = DURATION.exec(s)!;
    return Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as "ms" | "s" | "m" | "h"];
  });

/** `1048576`, `64KiB`, `10MB` → bytes. */
export const size = z
  .union([
    z.number().int().nonnegative(),
    z.string().regex(SIZE, { message: "expected a size like 65536, 64KiB or 10MB" }),
  ])
  .transform((v) => {
    if (typeof v === "number") return v;
    const [, n, unit] = SIZE.exec(v)!;
    const mult: Record<string, number> = {
      B: 1,
      KB: 1e3,
      KiB: 1024,
      MB: 1e6,
      MiB: 1024 ** 2,
      GB: 1e9,
      GiB: 1024 ** 3,
    };
    return Math.round(Number(n) * mult[unit ?? "B"]!);
  });

const user = z.strictObject({
  user: z.string().min(1),
  password: z.string().min(1),
});

const auth = z.strictObject({
  token: z.string().min(1).optional(),
  users: z.array(user).min(1).optional(),
  timeout: duration.optional(),
});

const embeddedBroker = z.strictObject({
  type: z.literal("embedded").default("embedded"),
  listen: hostPort.default("127.0.0.1:4222"),
  auth: auth.optional(),
  max_payload: size.optional(),
});

/** A region whose broker is an existing nats-server cluster, reached over its leafnode port. */
const natsBroker = z.strictObject({
  type: z.literal("nats"),
  urls: z
    .array(
      z.string().regex(/^(nats-leaf|nats|tls):\/\/.+:\d+$/, { message: "expected nats-leaf://host:port" }),
    )
    .min(1),
  user: z.string().optional(),
  password: z.string().optional(),
});

export const region = z.strictObject({
  name: z.string().regex(REGION_NAME, {
    message: "region names are 1-63 letters, digits, '-' or '_' (they become subject tokens)",
  }),
  broker: z
    .preprocess(
      (v) => (v !== null && typeof v === "object" && !("type" in v) ? { ...v, type: "embedded" } : v),
      z.discriminatedUnion("type", [embeddedBroker, natsBroker]),
    )
    .default({ type: "embedded", listen: "127.0.0.1:4222" }),
  gateway: z.strictObject({
    listen: hostPort,
    /** The URL other regions dial; default ws://<listen>/bridgehead/v1. */
    url: z
      .string()
      .regex(/^wss?:\/\/.+/, { message: "expected ws://host:port/bridgehead/v1" })
      .optional(),
  }),
  monitor: z.strictObject({ listen: hostPort }).optional(),
});

const filterMap = z.record(z.string(), z.array(subject).min(1));

export const link = z
  .strictObject({
    /** Two regions; the first dials the second. */
    between: z.tuple([z.string(), z.string()]),
    token: z.string().min(1).optional(),
    token_file: z.string().min(1).optional(),
    /** Per region: subjects that may leave that region over this link. */
    export: filterMap.optional(),
    /** Per region: subjects that region accepts over this link. */
    import: filterMap.optional(),
    outbox: z
      .strictObject({
        max_bytes: size.optional(),
        max_messages: z.number().int().positive().optional(),
        max_age: duration.optional(),
        drop: z.enum(["oldest", "newest"]).optional(),
      })
      .optional(),
    /** Batch compression of the frames each end sends (towards a peer that accepts it); default off. */
    compression: z.enum(["off", "on", "auto"]).default("off"),
  })
  .refine((l) => (l.token === undefined) !== (l.token_file === undefined), {
    message: "a link needs exactly one of token or token_file",
  });

/**
 * Chaos mode: every link dials through a Toxiproxy proxy named `<dialer>-><listener>`, so faults can be
 * injected per link and per direction (docs/chaos.md).
 */
export const chaos = z.strictObject({
  enabled: z.boolean().default(false),
  /** An external Toxiproxy; unset = start the embedded one. The TOXIPROXY_URL variable wins over it. */
  toxiproxy_url: z
    .string()
    .regex(/^https?:\/\/[^\s/]+(:\d+)?\/?$/, {
      message: "expected http://host:port, e.g. http://127.0.0.1:8474",
    })
    .optional(),
  /** The host proxies listen on; each proxy gets a free port there. */
  listen: z
    .string()
    .regex(/^[^\s:[\]]+$|^\[[0-9A-Fa-f:.]+\]$/, { message: "expected a host without a port, e.g. 127.0.0.1" })
    .default("127.0.0.1"),
  /** Link heartbeat interval in chaos mode (a link is declared dead after 3 missed); default the link's 2s. */
  heartbeat: duration
    .refine((ms) => Number.isInteger(ms) && ms >= 50, {
      message: "expected whole milliseconds, at least 50ms",
    })
    .optional(),
});

export const config = z.strictObject({
  logging: z
    .strictObject({
      level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
      format: z.enum(["auto", "json", "pretty"]).default("auto"),
    })
    .default({ level: "info", format: "auto" }),
  metrics: z.strictObject({ enabled: z.boolean().default(true) }).default({ enabled: true }),
  regions: z.array(region).min(1),
  links: z.array(link).default([]),
  chaos: chaos.default({ enabled: false, listen: "127.0.0.1" }),
});

export type BridgeheadConfig = z.output<typeof config>;
export type RegionConfig = z.output<typeof region>;
export type LinkConfig = z.output<typeof link>;
export type ChaosConfig = z.output<typeof chaos>;

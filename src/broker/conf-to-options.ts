/**
 * Maps a parsed nats-server configuration onto {@link BrokerOptions}, for the keys that matter to core NATS.
 *
 * Semantics follow nats-server 2.9 where they are defined: keys are case-insensitive; `port: -1` picks a
 * free port and `port: 0` means the default 4222; `http_port: 0` means no monitoring; sizes may carry
 * suffixes; `ping_interval`/`write_deadline` are Go durations ("2m", "500ms"), a bare number being seconds
 * (with a warning, as nats-server); `max_payload` may not exceed `max_pending`.
 *
 * Keys the broker does not implement are accepted with a warning. Invalid values are collected and reported
 * together in one {@link NatsConfError}, each naming `file:line:col` and the key path.
 */

import {
  type ConfContainer,
  type ConfEntryInfo,
  type ConfObject,
  type ConfPosition,
  type ConfValue,
  formatConfPosition,
  isConfObject,
  isParsedNatsConf,
  NatsConfError,
  type NatsConfParseOptions,
  type NatsConfProblem,
  type ParsedNatsConf,
  parseNatsConfFile,
} from "./nats-conf.js";
import {
  type AuthOptions,
  type BrokerOptions,
  DEFAULT_BROKER_OPTIONS,
  type ResponsePermission,
  type SubjectPermission,
  type UserEntry,
  type UserPermissions,
} from "./options.js";

export interface ConfConversion {
  readonly options: Partial<BrokerOptions>;
  /** Formatted `file:line:col: text`, parse warnings included. */
  readonly warnings: string[];
}

type Mutable<T> = { -readonly [K in keyof T]?: T[K] };

/** nats-server's MAX_PAYLOAD_MAX_SIZE: above this it warns that payloads are discouraged. */
const LARGE_PAYLOAD_WARNING = 8 * 1024 * 1024;
const INT32_MAX = 2 ** 31 - 1;

/** Top-level keys of nats-server 2.9 that this broker does not implement (warned about, then ignored). */
const KNOWN_UNSUPPORTED = new Set([
  "accounts",
  "allow_non_tls",
  "client_advertise",
  "cluster",
  "connect_error_reports",
  "debug",
  "default_js_domain",
  "disable_sublist_cache",
  "gateway",
  "http_base_path",
  "https",
  "https_port",
  "jetstream",
  "lame_duck_duration",
  "lame_duck_grace_period",
  "leaf",
  "leafnodes",
  "log_file",
  "log_size_limit",
  "logfile",
  "logtime",
  "logtime_utc",
  "max_closed_clients",
  "max_conn",
  "max_connections",
  "max_traced_msg_len",
  "mqtt",
  "no_auth_user",
  "no_header_support",
  "no_sublist_cache",
  "no_system_account",
  "nkey",
  "ocsp",
  "ocsp_cache",
  "operator",
  "operators",
  "pid_file",
  "pidfile",
  "prof_port",
  "reconnect_error_reports",
  "remote_syslog",
  "resolver",
  "resolver_preload",
  "resolver_tls",
  "server_tags",
  "syslog",
  "system",
  "system_account",
  "tls",
  "trace",
  "trace_verbose",
  "trusted",
  "trusted_keys",
  "websocket",
  "ws",
]);

/** Convert a parsed configuration. Throws {@link NatsConfError} listing every invalid value. */
export function confToBrokerOptions(conf: ParsedNatsConf | ConfObject, file?: string): ConfConversion {
  const parsed = isParsedNatsConf(conf) ? conf : undefined;
  const tree = parsed ? parsed.tree : (conf as ConfObject);
  const c = new Converter(parsed, file ?? parsed?.file);
  c.convert(tree);
  if (c.problems.length > 0) throw new NatsConfError(c.problems);
  return { options: c.options, warnings: [...(parsed?.warnings ?? []), ...c.warnings] };
}

/** Read, parse and convert a configuration file. Throws {@link NatsConfError}. */
export function loadNatsConfFile(
  path: string,
  options: Omit<NatsConfParseOptions, "file" | "readInclude"> = {},
): ConfConversion & { readonly conf: ParsedNatsConf } {
  const conf = parseNatsConfFile(path, options);
  return { ...confToBrokerOptions(conf), conf };
}

// ---------------------------------------------------------------------------------------------------------

/** Where a value lives: its container and key (for positions) and its path (for messages). */
interface Ctx {
  readonly container: ConfContainer | undefined;
  readonly key: string | number;
  readonly path: string;
}

function childPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  const name = /^[A-Za-z0-9_$-]+$/.test(key) ? key : JSON.stringify(key);
  return parent ? `${parent}.${name}` : name;
}

function child(container: ConfContainer, key: string | number, parentPath: string): Ctx {
  return { container, key, path: childPath(parentPath, key) };
}

function describe(v: ConfValue): string {
  if (typeof v === "string")
    return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)})`;
  if (typeof v === "number") return `a number (${v})`;
  if (typeof v === "boolean") return `a boolean (${v})`;
  if (Array.isArray(v)) return "a list";
  return "a block";
}

/** Go's time.ParseDuration, in milliseconds; a string is an error message. */
export function parseGoDuration(text: string): number | string {
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    "\u00b5s": 1e-3,
    "\u03bcs": 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let s = text;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") return `invalid duration ${JSON.stringify(text)}`;
  let total = 0;
  while (s !== "") {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s);
    const whole = m?.[1] ?? "";
    const frac = m?.[2];
    if (whole === "" && (frac === undefined || frac === ""))
      return `invalid duration ${JSON.stringify(text)}`;
    s = s.slice(m?.[0].length ?? 0);
    const u = /^[^\d.]+/.exec(s)?.[0];
    if (u === undefined) return `missing unit in duration ${JSON.stringify(text)}`;
    const factor = Object.hasOwn(units, u) ? units[u] : undefined;
    if (factor === undefined) {
      return `unknown unit ${JSON.stringify(u)} in duration ${JSON.stringify(text)} (use ns, us, ms, s, m or h)`;
    }
    s = s.slice(u.length);
    total += Number(`${whole || "0"}.${frac || "0"}`) * factor;
  }
  return sign * total;
}

/** Go's net.SplitHostPort. */
function splitHostPort(s: string): { host: string; port: string } | undefined {
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0 || s[end + 1] !== ":") return undefined;
    return { host: s.slice(1, end), port: s.slice(end + 2) };
  }
  const colon = s.lastIndexOf(":");
  if (colon < 0) return undefined;
  const host = s.slice(0, colon);
  if (host.includes(":")) return undefined;
  return { host, port: s.slice(colon + 1) };
}

/** nats-server's subject check for permissions: no empty tokens, no blanks, `>` only last. */
export function isValidPermissionSubject(subject: string): boolean {
  if (subject === "" || /\s/.test(subject)) return false;
  const tokens = subject.split(".");
  return tokens.every((t, i) => t !== "" && (t !== ">" || i === tokens.length - 1));
}

const SIZE_TEXT = /^(\d+)\s*(k|kb|ki|kib|m|mb|mi|mib|g|gb|gi|gib|t|tb|ti|tib)?$/i;

class Converter {
  readonly problems: NatsConfProblem[] = [];
  readonly warnings: string[] = [];
  readonly options: Mutable<BrokerOptions> = {};

  constructor(
    private readonly parsed: ParsedNatsConf | undefined,
    private readonly file: string | undefined,
  ) {}

  // --- reporting -----------------------------------------------------------------------------------------

  private info(ctx: Ctx): ConfEntryInfo | undefined {
    return ctx.container ? this.parsed?.info(ctx.container, ctx.key) : undefined;
  }

  private position(ctx: Ctx, at: "key" | "value"): ConfPosition | undefined {
    const info = this.info(ctx);
    return at === "key" ? (info?.key ?? info?.value) : info?.value;
  }

  error(ctx: Ctx, message: string, at: "key" | "value" = "value"): undefined {
    const p = this.position(ctx, at);
    this.problems.push({
      file: p?.file ?? this.file,
      ...(p ? { line: p.line, column: p.column } : {}),
      path: ctx.path,
      message,
    });
    return undefined;
  }

  warn(ctx: Ctx, message: string): void {
    const where = formatConfPosition(this.position(ctx, "key"), this.file);
    this.warnings.push(where ? `${where}: ${message}` : message);
  }

  private expected(ctx: Ctx, what: string, v: ConfValue): undefined {
    return this.error(ctx, `expected ${what}, found ${describe(v)}`);
  }

  // --- typed readers (undefined after recording an error) -------------------------------------------------

  string(ctx: Ctx, v: ConfValue): string | undefined {
    return typeof v === "string" ? v : this.expected(ctx, "a string", v);
  }

  /** A string, or a number written bare (e.g. a numeric password or user name). */
  stringish(ctx: Ctx, v: ConfValue): string | undefined {
    if (typeof v === "number" && Number.isFinite(v)) {
      const raw = this.info(ctx)?.raw;
      return raw ?? String(v);
    }
    return this.string(ctx, v);
  }

  integer(ctx: Ctx, v: ConfValue, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    if (typeof v !== "number" || !Number.isInteger(v)) return this.expected(ctx, "an integer", v);
    if (v < min || v > max) {
      return this.error(ctx, `${v} is out of range (${min} to ${max === INT32_MAX ? "2147483647" : max})`);
    }
    return v;
  }

  /** A byte count: integer (suffixes already applied by the parser) or a string such as "1MB". */
  size(ctx: Ctx, v: ConfValue, max = Number.MAX_SAFE_INTEGER): number | undefined {
    let n: number | undefined;
    if (typeof v === "number") n = v;
    else if (typeof v === "string") {
      const m = SIZE_TEXT.exec(v.trim());
      if (!m) return this.expected(ctx, "a size in bytes such as 1048576 or 1MB", v);
      const suffix = (m[2] ?? "").toLowerCase();
      const letter = suffix[0] ?? "";
      const power = " kmgt".indexOf(letter);
      const base = suffix.length > 1 ? 1024 : 1000;
      n = Number(m[1]) * (letter ? base ** power : 1);
    } else return this.expected(ctx, "a size in bytes", v);
    if (!Number.isInteger(n)) return this.expected(ctx, "a whole number of bytes", v);
    if (n < 0) return this.error(ctx, `a size cannot be negative (${n})`);
    if (n > max) return this.error(ctx, `${n} is too big (at most ${max})`);
    return n;
  }

  /** A Go duration string, or a number of seconds (warned about as nats-server does). Milliseconds. */
  duration(ctx: Ctx, v: ConfValue): number | undefined {
    if (typeof v === "string") {
      const ms = parseGoDuration(v);
      if (typeof ms === "string") return this.error(ctx, ms);
      if (ms < 0) return this.error(ctx, `a duration cannot be negative (${v})`);
      return ms;
    }
    if (typeof v === "number" && Number.isFinite(v)) {
      if (v < 0) return this.error(ctx, `a duration cannot be negative (${v})`);
      const raw = this.info(ctx)?.raw;
      const hint =
        raw !== undefined && /[a-z]/i.test(raw)
          ? `; note that unquoted ${raw} is the number ${v} (a size), write "${raw}" in quotes for a duration`
          : "";
      this.warn(
        ctx,
        `${ctx.path} should be a duration string such as "2m" or "30s"; ${v} is taken as seconds${hint}`,
      );
      return v * 1000;
    }
    return this.expected(ctx, 'a duration such as "2m", "30s" or "500ms"', v);
  }

  /** A port number: -1 (pick a free port) to 65535. */
  port(ctx: Ctx, v: ConfValue): number | undefined {
    return this.integer(ctx, v, -1, 65535);
  }

  /** `host:port` or a bare port. */
  hostPort(ctx: Ctx, v: ConfValue): { host?: string; port: number } | undefined {
    if (typeof v === "number") {
      const port = this.port(ctx, v);
      return port === undefined ? undefined : { port };
    }
    if (typeof v !== "string") return this.expected(ctx, 'an address "host:port" or a port number', v);
    const hp = splitHostPort(v);
    if (!hp) return this.error(ctx, `could not parse address ${JSON.stringify(v)}: expected host:port`);
    if (!/^-?\d+$/.test(hp.port)) return this.error(ctx, `could not parse port ${JSON.stringify(hp.port)}`);
    const port = Number(hp.port);
    if (port < -1 || port > 65535) return this.error(ctx, `port ${port} is out of range (-1 to 65535)`);
    return hp.host === "" ? { port } : { host: hp.host, port };
  }

  object(ctx: Ctx, v: ConfValue): ConfObject | undefined {
    return isConfObject(v) ? v : this.expected(ctx, "a block { ... }", v);
  }

  // --- mapping -------------------------------------------------------------------------------------------

  convert(tree: ConfObject): void {
    const o = this.options;
    for (const key of Object.keys(tree)) {
      const v = tree[key]!;
      const ctx = child(tree, key, "");
      switch (key.toLowerCase()) {
        case "listen": {
          const hp = this.hostPort(ctx, v);
          if (hp) {
            if (hp.host !== undefined) o.host = hp.host;
            o.port = clientPort(hp.port);
          }
          break;
        }
        case "host":
        case "net": {
          const host = this.string(ctx, v);
          if (host !== undefined) o.host = host;
          break;
        }
        case "port": {
          const port = this.port(ctx, v);
          if (port !== undefined) o.port = clientPort(port);
          break;
        }
        case "http": {
          const hp = this.hostPort(ctx, v);
          if (hp) {
            if (hp.host !== undefined) o.httpHost = hp.host;
            setHttpPort(o, hp.port);
          }
          break;
        }
        case "http_host": {
          const host = this.string(ctx, v);
          if (host !== undefined) o.httpHost = host;
          break;
        }
        case "http_port":
        case "monitor_port": {
          const port = this.port(ctx, v);
          if (port !== undefined) setHttpPort(o, port);
          break;
        }
        case "server_name": {
          const name = this.stringish(ctx, v);
          if (name !== undefined) o.serverName = name;
          break;
        }
        case "authorization": {
          const block = this.object(ctx, v);
          if (block) {
            const auth = this.authorization(block, ctx.path);
            if (auth) o.auth = auth;
            else delete o.auth;
          }
          break;
        }
        case "max_payload": {
          const n = this.size(ctx, v, INT32_MAX);
          if (n !== undefined) {
            o.maxPayload = n === 0 ? DEFAULT_BROKER_OPTIONS.maxPayload : n;
            if (n > LARGE_PAYLOAD_WARNING) {
              this.warn(
                ctx,
                `max_payload over 8 MB (${n}) is generally discouraged and could lead to poor performance`,
              );
            }
          }
          break;
        }
        case "max_control_line": {
          const n = this.size(ctx, v, INT32_MAX);
          if (n !== undefined) o.maxControlLine = n === 0 ? DEFAULT_BROKER_OPTIONS.maxControlLine : n;
          break;
        }
        case "max_pending": {
          const n = this.size(ctx, v);
          if (n !== undefined) o.maxPendingBytes = n === 0 ? DEFAULT_BROKER_OPTIONS.maxPendingBytes : n;
          break;
        }
        case "ping_interval": {
          const ms = this.duration(ctx, v);
          if (ms !== undefined) o.pingIntervalMs = ms === 0 ? DEFAULT_BROKER_OPTIONS.pingIntervalMs : ms;
          break;
        }
        case "ping_max":
        case "max_pings_out": {
          const n = this.integer(ctx, v, 0);
          if (n !== undefined) o.pingMax = n === 0 ? DEFAULT_BROKER_OPTIONS.pingMax : n;
          break;
        }
        case "write_deadline": {
          const ms = this.duration(ctx, v);
          if (ms !== undefined) o.writeDeadlineMs = ms === 0 ? DEFAULT_BROKER_OPTIONS.writeDeadlineMs : ms;
          break;
        }
        case "max_subscriptions":
        case "max_subs": {
          const n = this.integer(ctx, v, 0);
          if (n !== undefined) o.maxSubscriptions = n;
          break;
        }
        case "ports_file_dir": {
          const dir = this.string(ctx, v);
          if (dir !== undefined) o.portsFileDir = dir;
          break;
        }
        default:
          this.unsupported(tree, key, ctx);
      }
    }

    const payload = o.maxPayload ?? DEFAULT_BROKER_OPTIONS.maxPayload;
    const pending = o.maxPendingBytes ?? DEFAULT_BROKER_OPTIONS.maxPendingBytes;
    if (payload > pending) {
      const payloadKey = Object.keys(tree).find((k) => k.toLowerCase() === "max_payload");
      const ctx =
        payloadKey !== undefined ? child(tree, payloadKey, "") : { container: tree, key: "", path: "" };
      this.error(ctx, `max_payload (${payload}) cannot be higher than max_pending (${pending})`);
    }
  }

  private unsupported(container: ConfObject, key: string, ctx: Ctx): void {
    if (this.parsed?.isUsedAsVariable(container, key)) return;
    if (KNOWN_UNSUPPORTED.has(key.toLowerCase())) {
      this.warn(ctx, `'${ctx.path}' is not supported by bridgehead broker and is ignored`);
    } else {
      this.warn(ctx, `'${ctx.path}' is not a known nats-server option and is ignored`);
    }
  }

  private authorization(block: ConfObject, path: string): AuthOptions | undefined {
    // `value` is undefined when the entry is present but invalid (already reported).
    let user: { ctx: Ctx; value: string | undefined } | undefined;
    let password: { ctx: Ctx; value: string | undefined } | undefined;
    let token: { ctx: Ctx; value: string | undefined } | undefined;
    let users: { ctx: Ctx; value: UserEntry[] } | undefined;
    let permissions: UserPermissions | undefined;
    let timeoutSec: number | undefined;

    for (const key of Object.keys(block)) {
      const v = block[key]!;
      const ctx = child(block, key, path);
      switch (key.toLowerCase()) {
        case "user":
        case "username": {
          user = { ctx, value: this.stringish(ctx, v) };
          break;
        }
        case "password":
        case "pass": {
          password = { ctx, value: this.password(ctx, v) };
          break;
        }
        case "token": {
          token = { ctx, value: this.password(ctx, v) };
          break;
        }
        case "timeout": {
          if (typeof v === "number") {
            if (!Number.isFinite(v) || v < 0)
              this.error(ctx, `timeout must be a positive number of seconds (${v})`);
            else timeoutSec = v;
          } else if (typeof v === "string") {
            const ms = this.duration(ctx, v);
            if (ms !== undefined) timeoutSec = ms / 1000;
          } else this.expected(ctx, "a number of seconds", v);
          break;
        }
        case "users": {
          const list = this.users(ctx, v);
          if (list) users = { ctx, value: list };
          break;
        }
        case "permissions":
        case "permission":
        case "default_permissions":
        case "default_permission": {
          const p = this.permissions(ctx, v);
          if (p) permissions = p;
          break;
        }
        default:
          if (!this.parsed?.isUsedAsVariable(block, key)) {
            this.warn(ctx, `'${ctx.path}' is not supported by bridgehead broker and is ignored`);
          }
      }
    }

    if ((user || password) && users) {
      this.error(users.ctx, "cannot have a single user/password and a users array", "key");
    }
    if (token && users) this.error(users.ctx, "cannot have a token and a users array", "key");
    if (token && (user || password)) this.error(token.ctx, "cannot have a user/password and a token", "key");
    if (user && !password) {
      this.error(user.ctx, `${path}.password is required with ${path}.user`, "key");
    }
    if (password && !user) this.error(password.ctx, `${path}.user is required with ${path}.password`, "key");

    const auth: Mutable<AuthOptions> = {};
    if (user?.value !== undefined && password?.value !== undefined) {
      auth.users = [{ user: user.value, password: password.value, ...(permissions ? { permissions } : {}) }];
    } else if (users) {
      auth.users = permissions
        ? users.value.map((u) => (u.permissions ? u : { ...u, permissions: permissions as UserPermissions }))
        : users.value;
    }
    if (token?.value !== undefined) {
      auth.token = token.value;
      if (permissions) auth.tokenPermissions = permissions;
    }
    if (timeoutSec !== undefined) auth.timeoutSec = timeoutSec;
    return auth.users || auth.token !== undefined || auth.timeoutSec !== undefined ? auth : undefined;
  }

  /** A password or token: plain text only (bcrypt hashes cannot be checked by this broker). */
  private password(ctx: Ctx, v: ConfValue): string | undefined {
    const s = this.stringish(ctx, v);
    if (s !== undefined && /^\$2[aby]\$/.test(s)) {
      return this.error(
        ctx,
        "bcrypt-hashed passwords are not supported by bridgehead broker; use the plain text",
      );
    }
    return s;
  }

  private users(ctx: Ctx, v: ConfValue): UserEntry[] | undefined {
    if (!Array.isArray(v)) return this.expected(ctx, "a list of users [ { user: ..., password: ... } ]", v);
    const out: UserEntry[] = [];
    const seen = new Map<string, string>();
    let ok = true;
    v.forEach((item, index) => {
      const ictx = child(v, index, ctx.path);
      const entry = this.object(ictx, item);
      if (!entry) {
        ok = false;
        return;
      }
      let user: string | undefined;
      let password: string | undefined;
      let permissions: UserPermissions | undefined;
      let bad = false;
      for (const key of Object.keys(entry)) {
        const ev = entry[key]!;
        const ectx = child(entry, key, ictx.path);
        switch (key.toLowerCase()) {
          case "user":
          case "username":
            user = this.stringish(ectx, ev);
            if (user === undefined) bad = true;
            break;
          case "password":
          case "pass":
            password = this.password(ectx, ev);
            if (password === undefined) bad = true;
            break;
          case "permissions":
          case "permission":
            permissions = this.permissions(ectx, ev);
            if (permissions === undefined) bad = true;
            break;
          case "nkey":
            this.error(ectx, "nkey users are not supported by bridgehead broker", "key");
            bad = true;
            break;
          default:
            this.warn(ectx, `'${ectx.path}' is not supported by bridgehead broker and is ignored`);
        }
      }
      if (bad) {
        ok = false;
        return;
      }
      if (user === undefined) {
        ok = false;
        this.error(ictx, "a user entry needs a user");
        return;
      }
      if (password === undefined) {
        ok = false;
        this.error(ictx, `user ${JSON.stringify(user)} needs a password`);
        return;
      }
      const first = seen.get(user);
      if (first !== undefined) {
        ok = false;
        this.error(ictx, `duplicate user ${JSON.stringify(user)} (also ${first})`);
        return;
      }
      seen.set(user, ictx.path);
      out.push({ user, password, ...(permissions ? { permissions } : {}) });
    });
    return ok ? out : undefined;
  }

  private permissions(ctx: Ctx, v: ConfValue): UserPermissions | undefined {
    const block = this.object(ctx, v);
    if (!block) return undefined;
    const p: Mutable<UserPermissions> = {};
    let ok = true;
    for (const key of Object.keys(block)) {
      const pv = block[key]!;
      const pctx = child(block, key, ctx.path);
      switch (key.toLowerCase()) {
        case "publish":
        case "pub":
        case "import": {
          const sp = this.subjectPermission(pctx, pv);
          if (sp) p.publish = sp;
          else ok = false;
          break;
        }
        case "subscribe":
        case "sub":
        case "export": {
          const sp = this.subjectPermission(pctx, pv);
          if (sp) p.subscribe = sp;
          else ok = false;
          break;
        }
        case "allow_responses":
        case "allow_resp": {
          const rp = this.responsePermission(pctx, pv);
          if (rp === null) ok = false;
          else if (rp) p.allowResponses = rp;
          break;
        }
        default:
          ok = false;
          this.error(
            pctx,
            `unknown permission '${key}' (expected publish, subscribe or allow_responses)`,
            "key",
          );
      }
    }
    return ok ? p : undefined;
  }

  private subjects(ctx: Ctx, v: ConfValue): string[] | undefined {
    const list = typeof v === "string" ? [v] : Array.isArray(v) ? v : undefined;
    if (!list) return this.expected(ctx, "a subject or a list of subjects", v);
    const out: string[] = [];
    let ok = true;
    list.forEach((s, i) => {
      const sctx = typeof v === "string" ? ctx : child(v as ConfValue[], i, ctx.path);
      if (typeof s !== "string") {
        ok = false;
        this.expected(sctx, "a subject", s);
      } else if (!isValidPermissionSubject(s)) {
        ok = false;
        this.error(sctx, `subject ${JSON.stringify(s)} is not a valid subject`);
      } else out.push(s);
    });
    return ok ? out : undefined;
  }

  private subjectPermission(ctx: Ctx, v: ConfValue): SubjectPermission | undefined {
    if (!isConfObject(v)) {
      const allow = this.subjects(ctx, v);
      return allow ? { allow } : undefined;
    }
    const sp: Mutable<SubjectPermission> = {};
    let ok = true;
    for (const key of Object.keys(v)) {
      const kctx = child(v, key, ctx.path);
      const lower = key.toLowerCase();
      if (lower !== "allow" && lower !== "deny") {
        ok = false;
        this.error(
          kctx,
          `unknown field '${key}' in subject permissions, only 'allow' or 'deny' are permitted`,
          "key",
        );
        continue;
      }
      const list = this.subjects(kctx, v[key]!);
      if (!list) ok = false;
      else if (lower === "allow") sp.allow = list;
      else sp.deny = list;
    }
    return ok ? sp : undefined;
  }

  /** undefined = no permission (false), null = error. */
  private responsePermission(ctx: Ctx, v: ConfValue): ResponsePermission | undefined | null {
    if (typeof v === "boolean") return v ? { maxMsgs: 1, expiresMs: 0 } : undefined;
    if (!isConfObject(v)) {
      this.expected(ctx, "true, false or a block { max: N, expires: DURATION }", v);
      return null;
    }
    let maxMsgs = 1;
    let expiresMs = 0;
    let ok = true;
    for (const key of Object.keys(v)) {
      const kv = v[key]!;
      const kctx = child(v, key, ctx.path);
      switch (key.toLowerCase()) {
        case "max":
        case "max_msgs":
        case "max_messages":
        case "max_responses": {
          const n = this.integer(kctx, kv, 0);
          if (n === undefined) ok = false;
          else maxMsgs = n === 0 ? 1 : n;
          break;
        }
        case "expires":
        case "expiration":
        case "ttl": {
          const ms = this.duration(kctx, kv);
          if (ms === undefined) ok = false;
          else expiresMs = ms;
          break;
        }
        default:
          ok = false;
          this.error(kctx, `unknown field '${key}' in allow_responses (expected max or expires)`, "key");
      }
    }
    return ok ? { maxMsgs, expiresMs } : null;
  }
}

/** nats-server: -1 picks a free port (0 for the broker), 0 means the default 4222. */
function clientPort(port: number): number {
  if (port === -1) return 0;
  if (port === 0) return DEFAULT_BROKER_OPTIONS.port;
  return port;
}

/** nats-server: -1 picks a free port, 0 means no monitoring. */
function setHttpPort(o: Mutable<BrokerOptions>, port: number): void {
  if (port === 0) delete o.httpPort;
  else o.httpPort = port === -1 ? 0 : port;
}

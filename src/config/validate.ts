/**
 * Checks that need the whole file: every region named once, links between known regions and each pair
 * linked once, a connected topology, filters that name the link's own regions, no two listeners on one
 * address. Each problem carries the key path it is about; load.ts turns paths into line:column.
 */
import { LeafConfigError, parseLeafUrl } from "../region/leafnode/url.js";
import { formatPath, type Path } from "./errors.js";

/**
 * What the cross-checks read. They run on the raw parsed YAML too (when the schema found problems), so a
 * file's errors are all reported at once; every field is therefore checked for its type before use.
 */
interface Loose {
  readonly regions?: unknown;
  readonly links?: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const ADDR = /^.+:\d{1,5}$/;

export interface PathProblem {
  readonly path: Path;
  readonly message: string;
}

function portOf(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
}

function hostOf(hostPort: string): string {
  return hostPort.slice(0, hostPort.lastIndexOf(":"));
}

/** Two listeners clash when their ports match and their hosts overlap (a wildcard host overlaps all). */
function clash(a: string, b: string): boolean {
  if (portOf(a) === 0 || portOf(a) !== portOf(b)) return false;
  const wild = (h: string) => h === "0.0.0.0" || h === "::" || h === "[::]" || h === "*";
  return hostOf(a) === hostOf(b) || wild(hostOf(a)) || wild(hostOf(b));
}

export function crossCheck(cfg: Loose): PathProblem[] {
  const problems: PathProblem[] = [];
  const firstIndex = new Map<string, number>();
  const regions = list(cfg.regions).map(obj);
  const links = list(cfg.links).map(obj);
  regions.forEach((r, i) => {
    const name = str(r["name"]);
    if (name === undefined) return;
    const prev = firstIndex.get(name);
    if (prev !== undefined) {
      problems.push({
        path: ["regions", i, "name"],
        message: `duplicate region name '${name}' (also regions[${prev}])`,
      });
    } else {
      firstIndex.set(name, i);
    }
  });

  const pairs = new Map<string, number>();
  links.forEach((l, i) => {
    const between = list(l["between"]);
    const a = str(between[0]);
    const b = str(between[1]);
    if (a === undefined || b === undefined) return;
    for (const [k, name] of [
      [0, a],
      [1, b],
    ] as const) {
      if (!firstIndex.has(name)) {
        problems.push({
          path: ["links", i, "between", k],
          message: `unknown region '${name}' (regions: ${[...firstIndex.keys()].join(", ")})`,
        });
      }
    }
    if (a === b)
      problems.push({
        path: ["links", i, "between"],
        message: `a link needs two different regions, found '${a}' twice`,
      });
    const key = [a, b].sort().join("\u0000");
    const prev = pairs.get(key);
    if (prev !== undefined) {
      problems.push({
        path: ["links", i, "between"],
        message: `duplicate link ${a} <-> ${b} (also links[${prev}])`,
      });
    } else {
      pairs.set(key, i);
    }
    for (const dir of ["export", "import"] as const) {
      for (const region of Object.keys(obj(l[dir]))) {
        if (region !== a && region !== b) {
          problems.push({
            path: ["links", i, dir, region],
            message: `${dir} filters are keyed by one of the link's regions (${a}, ${b}), found '${region}'`,
          });
        }
      }
    }
  });

  // Connectivity: every region reachable from the first over the links.
  const names = [...firstIndex.keys()];
  if (names.length > 1) {
    const adj = new Map<string, string[]>(names.map((n) => [n, []]));
    for (const l of links) {
      const [a, b] = list(l["between"]).map(str);
      if (a === undefined || b === undefined) continue;
      adj.get(a)?.push(b);
      adj.get(b)?.push(a);
    }
    const seen = new Set<string>([names[0]!]);
    const todo = [names[0]!];
    while (todo.length > 0) {
      for (const n of adj.get(todo.pop()!) ?? []) {
        if (!seen.has(n)) {
          seen.add(n);
          todo.push(n);
        }
      }
    }
    const cut = names.filter((n) => !seen.has(n));
    if (cut.length > 0) {
      problems.push({
        path: ["links"],
        message: `the topology is not connected: ${cut.join(", ")} cannot be reached from ${names[0]} (add links)`,
      });
    }
  }

  // nats-server-backed regions: URLs the adapter can dial, credentials given whole.
  regions.forEach((r, i) => {
    const broker = obj(r["broker"]);
    if (broker["type"] === "nats") problems.push(...natsBrokerProblems(broker, ["regions", i, "broker"]));
  });

  // Listener addresses: broker, gateway and monitor of every region.
  const listeners: { path: Path; addr: string }[] = [];
  regions.forEach((r, i) => {
    const broker = obj(r["broker"]);
    const brokerListen = broker["type"] === "nats" ? undefined : (str(broker["listen"]) ?? "127.0.0.1:4222");
    for (const [key, addr] of [
      ["broker", brokerListen],
      ["gateway", str(obj(r["gateway"])["listen"])],
      ["monitor", str(obj(r["monitor"])["listen"])],
    ] as const) {
      if (addr !== undefined && ADDR.test(addr))
        listeners.push({ path: ["regions", i, key, "listen"], addr });
    }
  });
  listeners.forEach((l, i) => {
    const other = listeners.slice(0, i).find((o) => clash(o.addr, l.addr));
    if (other !== undefined) {
      problems.push({
        path: l.path,
        message: `${l.addr} is already used by ${formatPath(other.path)}`,
      });
    }
  });
  return problems;
}

/** A `type: nats` broker: each URL dialable (TLS refused), no duplicates, user and password together. */
function natsBrokerProblems(broker: Record<string, unknown>, at: Path): PathProblem[] {
  const out: PathProblem[] = [];
  const seen = new Map<string, number>();
  list(broker["urls"]).forEach((u, j) => {
    const raw = str(u);
    // The schema reports URLs of the wrong shape; this judges only the ones it let through.
    if (raw === undefined || !/^(nats-leaf|nats|tls):\/\/.+:\d+$/.test(raw)) return;
    try {
      const ep = parseLeafUrl(raw);
      const key = `${ep.host}:${ep.port}`;
      const prev = seen.get(key);
      if (prev !== undefined) {
        out.push({ path: [...at, "urls", j], message: `duplicate leafnode URL ${key} (also urls[${prev}])` });
      } else {
        seen.set(key, j);
      }
      if ((ep.user === undefined) !== (ep.password === undefined)) {
        out.push({ path: [...at, "urls", j], message: "credentials in a URL need both user and password" });
      }
    } catch (err) {
      if (!(err instanceof LeafConfigError)) throw err;
      out.push({ path: [...at, "urls", j], message: err.message });
    }
  });
  const user = str(broker["user"]);
  const password = str(broker["password"]);
  if (user !== undefined && password === undefined) {
    out.push({ path: [...at, "user"], message: "user needs a password (the hub's leafnodes authorization)" });
  }
  if (password !== undefined && user === undefined) {
    out.push({
      path: [...at, "password"],
      message: "password needs a user (the hub's leafnodes authorization)",
    });
  }
  if (user === "") out.push({ path: [...at, "user"], message: "user must not be empty" });
  return out;
}

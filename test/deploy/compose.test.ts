/**
 * docker-compose.multi-region.yml cannot be run here (no Docker engine), so this checks what would make it
 * fail where Docker exists: every region of config/compose.yaml has a gateway service running exactly that
 * region and two nats-server services its leafnode URLs name; the nats-server configs they mount exist and
 * pass the real `nats-server -t`; published ports, gateway URLs and the Toxiproxy URL agree with the config;
 * the config passes `bridgehead check`; the Dockerfile builds what the gateways run.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfigFile } from "../../src/config/load.js";
import { natsServerAvailable } from "../helpers/servers.js";

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, "../..");
const COMPOSE_FILE = join(REPO, "docker-compose.multi-region.yml");
const CONFIG_FILE = join(REPO, "config/compose.yaml");
const MOUNT = "/etc/bridgehead/compose.yaml";

interface Service {
  readonly build?: unknown;
  readonly image?: string;
  readonly command?: readonly string[];
  readonly ports?: readonly string[];
  readonly volumes?: readonly string[];
  readonly environment?: Readonly<Record<string, string>>;
  readonly depends_on?: readonly string[];
  readonly healthcheck?: { readonly test?: readonly string[] };
}

function compose(): Record<string, Service> {
  // `merge: true` resolves the `<<: *anchor` merge keys as Docker Compose does.
  const doc = parse(readFileSync(COMPOSE_FILE, "utf8"), { merge: true }) as {
    services?: Record<string, Service>;
  };
  expect(doc.services, "compose file has services").toBeDefined();
  return doc.services ?? {};
}

const portOf = (hostPort: string): number => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));

/** `host:container` port pairs of a service. */
function published(s: Service | undefined): [number, number][] {
  return (s?.ports ?? []).map((p) => {
    const [host, container] = p.split(":").map(Number);
    return [host!, container!];
  });
}

/** The file a service mounts at `target`, relative to the repo. */
function mountOf(s: Service | undefined, target: string): string | undefined {
  const v = (s?.volumes ?? []).find((m) => m.split(":")[1] === target);
  return v?.split(":")[0];
}

describe("docker-compose.multi-region.yml", () => {
  const loaded = loadConfigFile(CONFIG_FILE, { env: {} });
  const services = compose();
  const regions = loaded.config.regions;

  it("mounts a config of three nats-server-backed regions that loads without problems", () => {
    expect(regions.map((r) => r.name)).toEqual(["us-east", "eu-west", "ap-south"]);
    for (const r of regions) expect(r.broker.type).toBe("nats");
    expect(loaded.config.links).toHaveLength(3);
  });

  it("runs one gateway service per region, `node --region <its name>` on the mounted config", () => {
    for (const r of regions) {
      const s = services[r.name];
      expect(s, `service for region ${r.name}`).toBeDefined();
      expect(s?.command).toEqual(["node", "--region", r.name, MOUNT]);
      expect(mountOf(s, MOUNT)).toBe("./config/compose.yaml");
      expect(s?.build, `${r.name} builds the repo's Dockerfile`).toBe(".");
    }
  });

  it("backs each region with two nats-server services (official image) that its leafnode URLs name", async () => {
    for (const r of regions) {
      if (r.broker.type !== "nats") throw new Error(`${r.name} is not nats-backed`);
      const hosts = r.broker.urls.map((u) => new URL(u).hostname);
      expect(hosts).toEqual([`${r.name}-nats-1`, `${r.name}-nats-2`]);
      expect(services[r.name]?.depends_on).toEqual(expect.arrayContaining(hosts));
      for (const url of r.broker.urls) {
        const host = new URL(url).hostname;
        const s = services[host];
        expect(s, `service ${host}`).toBeDefined();
        expect(s?.image).toMatch(/^nats:2\.9/);
        expect(s?.environment?.["NATS_SERVER_NAME"]).toBe(host);
        const conf = mountOf(s, "/etc/nats/nats.conf");
        expect(conf, `${host} mounts its nats-server config`).toBe(`./config/nats/${r.name}.conf`);
        const file = join(REPO, conf!);
        expect(existsSync(file)).toBe(true);
        const text = readFileSync(file, "utf8");
        // The leafnode port the gateway dials, the cluster named after the region with routes to both servers,
        // and the leaf credentials the gateway uses.
        expect(text).toMatch(new RegExp(`leafnodes \\{[^}]*listen: 0\\.0\\.0\\.0:${new URL(url).port}`));
        expect(text).toContain(`name: ${r.name}`);
        for (const h of hosts) expect(text).toContain(`nats-route://${h}:6222`);
        expect(text).toContain(`user: ${r.broker.user}`);
        // The real engine accepts the file (with the variables compose sets).
        if (natsServerAvailable()) {
          const { stderr, stdout } = await run("nats-server", ["-t", "-c", file], {
            env: { ...process.env, NATS_SERVER_NAME: host, BRIDGEHEAD_LEAF_PASSWORD: "x" },
            timeout: 20_000,
          });
          expect(`${stdout}${stderr}`).toContain("is valid");
        }
      }
      // Clients reach the region through its first server, on a port of its own on the host.
      const clientPorts = published(services[hosts[0]!]).filter(([, c]) => c === 4222);
      expect(clientPorts, `${hosts[0]} publishes its client port`).toHaveLength(1);
    }
    const hostClientPorts = regions.map((r) => published(services[`${r.name}-nats-1`])[0]![0]);
    expect(new Set(hostClientPorts).size).toBe(regions.length);
  });

  it("publishes each gateway's link and monitor ports, advertises its URL by service name, health-checks /healthz", () => {
    for (const r of regions) {
      const s = services[r.name];
      const want = [portOf(r.gateway.listen), portOf(r.monitor?.listen ?? "")];
      for (const [host, container] of published(s)) expect(host).toBe(container);
      expect(
        published(s)
          .map(([, c]) => c)
          .sort(),
      ).toEqual(want.sort());
      expect(r.gateway.listen.startsWith("0.0.0.0:")).toBe(true);
      const url = new URL(r.gateway.url ?? "");
      expect(url.hostname).toBe(r.name);
      expect(Number(url.port)).toBe(portOf(r.gateway.listen));
      expect(s?.healthcheck?.test?.join(" ")).toContain(`http://127.0.0.1:${want[1]}/healthz`);
    }
  });

  it("routes every link through the real Toxiproxy service, whose API the gateways reach by name", () => {
    const chaos = loaded.config.chaos;
    expect(chaos.enabled).toBe(true);
    const api = new URL(chaos.toxiproxy_url ?? "");
    const t = services[api.hostname];
    expect(t?.image).toMatch(/^ghcr\.io\/shopify\/toxiproxy:2\.12/);
    expect(t?.command).toEqual(["-host", "0.0.0.0", "-port", api.port]);
    expect(published(t)).toContainEqual([Number(api.port), Number(api.port)]);
    // Proxies listen on all interfaces inside that container; dialers reach them through the API's host.
    expect(chaos.listen).toBe("0.0.0.0");
    for (const r of regions) expect(services[r.name]?.depends_on).toContain(api.hostname);
  });

  it("has a Dockerfile whose entrypoint is the bridgehead CLI", () => {
    const text = readFileSync(join(REPO, "Dockerfile"), "utf8");
    expect(text).toMatch(/ENTRYPOINT \["node", "\/app\/bin\/bridgehead\.js"\]/);
    expect(text).toContain("npm ci");
    expect(text).toContain("npm run build");
  });

  it("passes `bridgehead check` with the same config", async () => {
    const bin = join(REPO, "bin/bridgehead.js");
    const { stdout } = await run(process.execPath, [bin, "check", CONFIG_FILE], {
      cwd: REPO,
      timeout: 20_000,
    });
    expect(stdout).toContain("ok: 3 region(s) (us-east, eu-west, ap-south), 3 link(s)");
  });
});

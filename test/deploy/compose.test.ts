/**
 * docker-compose.multi-region.yml cannot be run here (no Docker engine), so this checks what would make it
 * fail where Docker exists: every region of config/compose.yaml has a service running exactly that region,
 * published ports and gateway URLs agree with the config, the mounted config is valid for our loader and for
 * `bridgehead check`, and the Dockerfile builds what the services run.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfigFile } from "../../src/config/load.js";

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
  readonly profiles?: readonly string[];
  readonly healthcheck?: { readonly test?: readonly string[] };
}

function compose(): Record<string, Service> {
  // `merge: true` resolves the `<<: *region` merge keys as Docker Compose does.
  const doc = parse(readFileSync(COMPOSE_FILE, "utf8"), { merge: true }) as {
    services?: Record<string, Service>;
  };
  expect(doc.services, "compose file has services").toBeDefined();
  return doc.services ?? {};
}

function portOf(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
}

describe("docker-compose.multi-region.yml", () => {
  const loaded = loadConfigFile(CONFIG_FILE, { env: {} });
  const services = compose();

  it("mounts a config that loads without problems (every variable at its default)", () => {
    expect(loaded.config.regions.map((r) => r.name)).toEqual(["us-east", "eu-west", "ap-south"]);
    expect(loaded.config.links).toHaveLength(3);
  });

  it("runs one service per region, each with `node --region <its name>` on the mounted config", () => {
    for (const r of loaded.config.regions) {
      const s = services[r.name];
      expect(s, `service for region ${r.name}`).toBeDefined();
      expect(s?.command).toEqual(["node", "--region", r.name, MOUNT]);
      expect(s?.volumes).toContain(`./config/compose.yaml:${MOUNT}:ro`);
      expect(s?.build, `${r.name} builds the repo's Dockerfile`).toBe(".");
    }
  });

  it("publishes each region's client, gateway and monitor ports, and health-checks its /healthz", () => {
    for (const r of loaded.config.regions) {
      const s = services[r.name];
      if (r.broker.type !== "embedded") throw new Error(`${r.name}: compose regions use the embedded broker`);
      const want = [r.broker.listen, r.gateway.listen, r.monitor?.listen].map((l) => {
        expect(l, `${r.name} listens`).toBeDefined();
        return portOf(l ?? "");
      });
      const published = (s?.ports ?? []).map((p) => {
        const [host, container] = p.split(":").map(Number);
        expect(host, `${r.name}: ${p} publishes the same port`).toBe(container);
        return container;
      });
      expect(published.sort()).toEqual(want.sort());
      for (const l of [r.broker.listen, r.gateway.listen, r.monitor?.listen ?? ""]) {
        expect(l.startsWith("0.0.0.0:"), `${r.name} binds ${l} on all interfaces inside its container`).toBe(
          true,
        );
      }
      expect(s?.healthcheck?.test?.join(" ")).toContain(`http://127.0.0.1:${want[2]}/healthz`);
    }
  });

  it("advertises gateway URLs by service name and port, so links resolve inside the compose network", () => {
    for (const r of loaded.config.regions) {
      const url = new URL(r.gateway.url ?? "");
      expect(url.hostname).toBe(r.name);
      expect(services[url.hostname], `a service named ${url.hostname}`).toBeDefined();
      expect(Number(url.port)).toBe(portOf(r.gateway.listen));
    }
  });

  it("keeps the real Toxiproxy behind the chaos profile", () => {
    const t = services.toxiproxy;
    expect(t?.image).toMatch(/^ghcr\.io\/shopify\/toxiproxy:2\.12/);
    expect(t?.profiles).toEqual(["chaos"]);
  });

  it("has a Dockerfile whose entrypoint is the bridgehead CLI", () => {
    const file = join(REPO, "Dockerfile");
    expect(existsSync(file)).toBe(true);
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(/ENTRYPOINT \["node", "\/app\/bin\/bridgehead\.js"\]/);
    expect(text).toContain("npm ci");
    expect(text).toContain("npm run build");
  });

  it("passes `bridgehead check` with the same config", async () => {
    const bin = join(REPO, "bin/bridgehead.js");
    const { stdout } = await promisify(execFile)(process.execPath, [bin, "check", CONFIG_FILE], {
      cwd: REPO,
      timeout: 20_000,
    });
    expect(stdout).toContain("us-east");
  });
});

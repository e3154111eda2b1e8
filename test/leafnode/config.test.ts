/**
 * `type: nats` regions from the YAML config: what `bridgehead check` refuses (URLs the adapter cannot dial,
 * half credentials), the example file, and `startSystem` running such a region against a real nats-server
 * whose leafnode port requires user/password, linked to an embedded region.
 */
import { resolve } from "node:path";
import { type NatsConnection, StringCodec } from "nats";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, formatProblem } from "../../src/config/errors.js";
import { loadConfig, loadConfigFile } from "../../src/config/load.js";
import { type RunningSystem, startSystem } from "../../src/runtime/system.js";
import { natsServerAvailable } from "../helpers/servers.js";
import { Clients, collect, type NatsCluster, probe, startNatsCluster, waitUntil } from "./kit.js";

const sc = StringCodec();

function yaml(broker: string, extra = ""): string {
  return [
    "regions:",
    "  - name: n",
    `    broker: ${broker}`,
    "    gateway: { listen: 127.0.0.1:0 }",
    "  - name: e",
    "    broker: { listen: 127.0.0.1:0 }",
    "    gateway: { listen: 127.0.0.1:0 }",
    "links:",
    "  - between: [n, e]",
    "    token: t",
    extra,
  ].join("\n");
}

function problems(text: string): string[] {
  try {
    loadConfig(text, { file: "bh.yaml", env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
}

describe("config: nats-server-backed regions", () => {
  it("check refuses what the adapter cannot dial, and half credentials", () => {
    expect(problems(yaml("{ type: nats, urls: [nats-leaf://h:7422, nats://h2:7422] }"))).toEqual([]);
    expect(problems(yaml("{ type: nats, urls: [tls://h:7422] }"))).toEqual([
      "bh.yaml:3:34: regions[0].broker.urls[0]: 'tls://h:7422': TLS leafnode connections are not supported",
    ]);
    expect(problems(yaml("{ type: nats, urls: [nats-leaf://h:70000] }"))).toEqual([
      "bh.yaml:3:34: regions[0].broker.urls[0]: 'nats-leaf://h:70000': expected host:port with a port 1-65535",
    ]);
    expect(problems(yaml("{ type: nats, urls: [nats-leaf://h:1, nats-leaf://h:1] }"))).toEqual([
      "bh.yaml:3:51: regions[0].broker.urls[1]: duplicate leafnode URL h:1 (also urls[0])",
    ]);
    expect(problems(yaml("{ type: nats, urls: [nats-leaf://h:1], user: u }"))).toEqual([
      "bh.yaml:3:58: regions[0].broker.user: user needs a password (the hub's leafnodes authorization)",
    ]);
    const hidden = problems(yaml("{ type: nats, urls: [tls://me:hunter2@h:1] }"));
    expect(hidden).toHaveLength(1);
    expect(hidden[0]).not.toContain("hunter2");
  });

  it("the example config/nats-regions.yaml loads", () => {
    const file = resolve(import.meta.dirname, "../../config/nats-regions.yaml");
    const loaded = loadConfigFile(file, { env: {} });
    const us = loaded.config.regions[0]!;
    expect(us.broker).toMatchObject({ type: "nats", user: "bridgehead", password: "s3cret" });
    expect(loaded.config.regions.map((r) => r.broker.type)).toEqual(["nats", "nats", "embedded"]);
  });
});

describe.skipIf(!natsServerAvailable())("startSystem with a nats broker", () => {
  const clients = new Clients();
  let system: RunningSystem | undefined;
  let nats: NatsCluster | undefined;
  afterEach(async () => {
    await clients.closeAll();
    await system?.close();
    await nats?.close();
    system = undefined;
    nats = undefined;
  });

  it("runs the region over the leafnode adapter with credentials, linked to an embedded region", async () => {
    nats = await startNatsCluster("cfg", 1, { user: "leaf", password: "pw" });
    const loaded = loadConfig(yaml(`{ type: nats, urls: [${nats.leafUrls[0]}], user: leaf, password: pw }`), {
      file: "bh.yaml",
      env: {},
    });
    system = await startSystem(loaded, pino({ level: process.env.BH_TEST_LOG ?? "silent" }));
    const n = system.leafnodeRegions.get("n")!;
    expect(system.regions.has("n")).toBe(false);
    expect(system.allRegions.get("n")).toBe(n);
    await waitUntil(() => n.port.state === "up" && n.gateway.linkState("e") === "up", "leaf and link up");
    const nc: NatsConnection = await clients.open(nats.nodes[0]!.clientUrl);
    const ec = await clients.open(system.regions.get("e")!.clientUrl);
    const got = collect(ec, "cfg.>");
    await ec.flush();
    await probe(nc, "cfg.probe", () => got.probes > 0);
    nc.publish("cfg.hello", sc.encode("hi"));
    await waitUntil(() => got.msgs.length === 1, "message at e");
    expect(got.msgs[0]!.data).toBe("hi");
  });

  it("serves the region monitor for a nats-backed region: health, links, interest, metrics; the broker tables are the cluster's", async () => {
    nats = await startNatsCluster("mon", 1);
    const loaded = loadConfig(
      yaml(`{ type: nats, urls: [${nats.leafUrls[0]}] }\n    monitor: { listen: 127.0.0.1:0 }`),
      { file: "bh.yaml", env: {} },
    );
    system = await startSystem(loaded, pino({ level: process.env.BH_TEST_LOG ?? "silent" }));
    const n = system.leafnodeRegions.get("n")!;
    await waitUntil(() => n.port.state === "up" && n.gateway.linkState("e") === "up", "leaf and link up");
    const base = system.monitorUrl("n")!;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const nc = await clients.open(nats.nodes[0]!.clientUrl);
    nc.subscribe("mon.watched");
    await nc.flush();
    await waitUntil(
      () => n.port.interestSnapshot().some((e) => e.subject === "mon.watched"),
      "the cluster's interest",
    );
    const get = async (path: string) => {
      const r = await fetch(base + path);
      return { status: r.status, text: await r.text() };
    };
    let health = await get("/healthz");
    for (let i = 0; i < 100 && health.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      health = await get("/healthz");
    }
    expect(health.status).toBe(200);
    const interest = JSON.parse((await get("/interestz?origin=n")).text) as {
      origins: { entries: { subject: string }[] }[];
    };
    expect(interest.origins[0]!.entries.map((e) => e.subject)).toContain("mon.watched");
    const links = JSON.parse((await get("/linkz")).text) as { links: { peer: string; state: string }[] };
    expect(links.links).toContainEqual(expect.objectContaining({ peer: "e", state: "up" }));
    const metrics = (await get("/metrics")).text;
    expect(metrics).toMatch(/^bridgehead_link_up\{[^}]*peer="e"[^}]*\} 1$/m);
    expect(metrics).not.toContain("bridgehead_broker_connections ");
    const varz = JSON.parse((await get("/varz")).text) as { server_name: string; broker: string };
    expect(varz.server_name).toBe("n");
    expect(varz.broker).toMatch(/nats-server cluster/);
    expect((await get("/connz")).status).toBe(501);
    expect((await get("/")).text).toContain("<svg");
  });

  it("keeps retrying, and never comes up, with a wrong password", async () => {
    nats = await startNatsCluster("cfgbad", 1, { user: "leaf", password: "pw" });
    const loaded = loadConfig(
      yaml(`{ type: nats, urls: [${nats.leafUrls[0]}], user: leaf, password: wrong }`),
      { file: "bh.yaml", env: {} },
    );
    system = await startSystem(loaded, pino({ level: process.env.BH_TEST_LOG ?? "silent" }));
    const n = system.leafnodeRegions.get("n")!;
    await waitUntil(() => n.port.connection.stats.failures >= 2, "two refused attempts");
    expect(n.port.connection.stats.connects).toBe(0);
    expect(n.port.state).not.toBe("up");
  });
});

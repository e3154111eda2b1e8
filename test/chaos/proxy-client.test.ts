/**
 * toxiproxy-node-client v4 driving the embedded fault proxy: every method of Toxiproxy, Proxy, Toxic and the
 * client's HttpClient, with the results the real server gives (the client's own jest specs are the acceptance
 * list in the reference). The TestHelper module is not used: it is hard-wired to http://localhost:8474.
 */
import {
  type Bandwidth,
  Proxy as ClientProxy,
  type ICreateToxicBody,
  type Latency,
  Toxic,
  Toxiproxy,
  ToxiproxyError,
} from "toxiproxy-node-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ToxiproxyServer } from "../../src/chaos/proxy/index.js";
import { connectTo, portOf, roundTrip, startApi, startEcho, stopAll } from "./proxy-kit.js";

let api: ToxiproxyServer;
let toxiproxy: Toxiproxy;

beforeEach(async () => {
  api = await startApi();
  toxiproxy = new Toxiproxy(api.url);
});
afterEach(stopAll);

/** The promise rejects with the client's error for HTTP status `status`. */
async function expectStatus(p: Promise<unknown>, status: number): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ToxiproxyError);
  expect((err as Error).message).toBe(`Request failed with status code ${status}`);
}

function latencyBody(latency: number, name = "latency_downstream"): ICreateToxicBody<Latency> {
  return { name, type: "latency", stream: "downstream", toxicity: 1, attributes: { latency, jitter: 0 } };
}

describe("Toxiproxy", () => {
  it("getVersion returns the raw version body", async () => {
    expect(await toxiproxy.getVersion()).toBe('{"version": "2.12.0"}\n');
  });

  it("createProxy returns a Proxy with the bound listen address; a duplicate is a 409", async () => {
    const proxy = await toxiproxy.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" });
    expect(proxy).toBeInstanceOf(ClientProxy);
    expect(proxy.name).toBe("p");
    expect(proxy.listen).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(proxy.upstream).toBe("127.0.0.1:9");
    expect(proxy.enabled).toBe(true);
    await expectStatus(
      toxiproxy.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" }),
      409,
    );
  });

  it("createProxy echoes an explicit listen address exactly", async () => {
    const probe = await toxiproxy.createProxy({
      name: "probe",
      listen: "127.0.0.1:0",
      upstream: "127.0.0.1:9",
    });
    const port = portOf(probe.listen);
    await probe.remove();
    const proxy = await toxiproxy.createProxy({
      name: "fixed",
      listen: `127.0.0.1:${port}`,
      upstream: "127.0.0.1:9",
    });
    expect(proxy.listen).toBe(`127.0.0.1:${port}`);
  });

  it("get returns a proxy, and a 404 for an unknown name", async () => {
    await toxiproxy.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" });
    const proxy = await toxiproxy.get("p");
    expect(proxy.toJson()).toMatchObject({ name: "p", upstream: "127.0.0.1:9", enabled: true });
    await expectStatus(toxiproxy.get("none"), 404);
  });

  it("getAll returns every proxy by name", async () => {
    expect(await toxiproxy.getAll()).toEqual({});
    await toxiproxy.createProxy({ name: "a", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" });
    await toxiproxy.createProxy({ name: "b", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" });
    const all = await toxiproxy.getAll();
    expect(Object.keys(all).sort()).toEqual(["a", "b"]);
    expect(all["a"]).toBeInstanceOf(ClientProxy);
  });

  it("populate creates proxies (localhost:0 included) and returns them by name", async () => {
    const proxies = await toxiproxy.populate([
      { name: "one", listen: "localhost:0", upstream: "127.0.0.1:9" },
      { name: "two", listen: "127.0.0.1:0", upstream: "127.0.0.1:9", enabled: false },
    ]);
    expect(Object.keys(proxies).sort()).toEqual(["one", "two"]);
    expect(proxies["one"]?.listen).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(proxies["two"]?.enabled).toBe(false);
  });

  it("populate([]) fails in the client exactly as against the real server (proxies: null)", async () => {
    await expect(toxiproxy.populate([])).rejects.toThrow(TypeError);
  });

  it("reset re-enables proxies and removes toxics", async () => {
    const proxy = await toxiproxy.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" });
    await proxy.addToxic(latencyBody(100));
    await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
    await expect(toxiproxy.reset()).resolves.toBeUndefined();
    const after = await toxiproxy.get("p");
    expect(after.enabled).toBe(true);
    await expectStatus(after.getToxic("latency_downstream"), 404);
  });

  it("getApi exposes the HTTP client (get, post, delete, getText)", async () => {
    const http = toxiproxy.getApi();
    expect((await http.get<Record<string, unknown>>(`${api.url}/proxies`)).data).toEqual({});
    const created = await http.post<{ name: string }>(`${api.url}/proxies`, {
      name: "raw",
      listen: "127.0.0.1:0",
      upstream: "127.0.0.1:9",
    });
    expect(created.data.name).toBe("raw");
    expect(await http.getText(`${api.url}/version`)).toContain("2.12.0");
    await http.delete(`${api.url}/proxies/raw`);
    await expectStatus(http.get(`${api.url}/proxies/raw`), 404);
    expect((await http.post(`${api.url}/reset`)).data).toBeUndefined();
  });

  it("network failures surface as ToxiproxyError with the original error", async () => {
    const dead = new Toxiproxy("http://127.0.0.1:1");
    const err = await dead.getVersion().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToxiproxyError);
    expect((err as Error).name).toBe("TypeError");
  });
});

describe("Proxy", () => {
  it("getToxiproxy, getHost, getPath and toJson describe the proxy", async () => {
    const proxy = await toxiproxy.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" });
    expect(proxy.getToxiproxy()).toBe(toxiproxy);
    expect(proxy.getHost()).toBe(api.url);
    expect(proxy.getPath()).toBe(`${api.url}/proxies/p`);
    // The client's toJson leaves toxics out, whatever the server sent.
    expect(proxy.toJson()).toEqual({
      name: "p",
      listen: proxy.listen,
      upstream: "127.0.0.1:9",
      enabled: true,
    });
  });

  it("update disables and re-enables; an unresolvable upstream is accepted", async () => {
    const echo = await startEcho();
    const proxy = await toxiproxy.createProxy({
      name: "p",
      listen: "127.0.0.1:0",
      upstream: `127.0.0.1:${echo.port}`,
    });
    const client = await connectTo(portOf(proxy.listen));
    await roundTrip(client);
    const off = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
    expect(off).toBeInstanceOf(ClientProxy);
    expect(off.enabled).toBe(false);
    await client.waitClosed(3000);
    const on = await off.update({ enabled: true, listen: proxy.listen, upstream: "somehost:12345" });
    expect(on.enabled).toBe(true);
    expect(on.upstream).toBe("somehost:12345");
    expect(on.listen).toBe(proxy.listen);
  });

  it("addToxic and getToxic return Toxic objects; defaults are latency_downstream / toxicity 1", async () => {
    const proxy = await toxiproxy.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" });
    const toxic = await proxy.addToxic(latencyBody(100));
    expect(toxic).toBeInstanceOf(Toxic);
    expect(toxic.toJson()).toEqual({
      name: "latency_downstream",
      type: "latency",
      stream: "downstream",
      toxicity: 1,
      attributes: { latency: 100, jitter: 0 },
    });
    const fetched = await proxy.getToxic<Latency>("latency_downstream");
    expect(fetched.attributes.latency).toBe(100);
    await expectStatus(proxy.addToxic(latencyBody(5)), 409);
    await expectStatus(proxy.getToxic("none"), 404);
    const bw = await proxy.addToxic<Bandwidth>({
      name: "bw",
      type: "bandwidth",
      stream: "upstream",
      toxicity: 0.5,
      attributes: { rate: 10 },
    });
    expect(bw.toJson()).toMatchObject({ stream: "upstream", toxicity: 0.5, attributes: { rate: 10 } });
    // "down" is in the client's ToxicType but not a toxic on the server.
    await expectStatus(
      proxy.addToxic({ name: "d", type: "down", stream: "downstream", toxicity: 1, attributes: {} }),
      400,
    );
  });

  it("remove deletes the proxy; removing again is a 404", async () => {
    const proxy = await toxiproxy.createProxy({ name: "p", listen: "127.0.0.1:0", upstream: "127.0.0.1:9" });
    await expect(proxy.remove()).resolves.toBeUndefined();
    await expectStatus(toxiproxy.get("p"), 404);
    await expectStatus(proxy.remove(), 404);
    expect(await toxiproxy.getAll()).toEqual({});
  });
});

describe("Toxic", () => {
  it("getPath, update (attributes only: toxicity kept) and remove", async () => {
    const echo = await startEcho();
    const proxy = await toxiproxy.createProxy({
      name: "p",
      listen: "127.0.0.1:0",
      upstream: `127.0.0.1:${echo.port}`,
    });
    const client = await connectTo(portOf(proxy.listen));
    const toxic = await proxy.addToxic({ ...latencyBody(250), toxicity: 1 });
    expect(toxic.getPath()).toBe(`${api.url}/proxies/p/toxics/latency_downstream`);
    expect(await roundTrip(client)).toBeGreaterThanOrEqual(240);

    const updated = await toxic.update({ ...latencyBody(30), toxicity: 1 });
    expect(updated).toBeInstanceOf(Toxic);
    expect(updated.attributes).toEqual({ latency: 30, jitter: 0 });
    expect(updated.toxicity).toBe(1);
    const rtt = await roundTrip(client);
    expect(rtt).toBeGreaterThanOrEqual(25);
    expect(rtt).toBeLessThan(240);

    await expect(updated.remove()).resolves.toBeUndefined();
    await expectStatus(proxy.getToxic("latency_downstream"), 404);
    await expectStatus(updated.remove(), 404);
    expect(await roundTrip(client)).toBeLessThan(200);
  });
});

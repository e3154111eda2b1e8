/**
 * The fault proxy's HTTP API over raw HTTP: status codes, content types, exact bodies and error texts as
 * Toxiproxy 2.12 answers them (../shared/reference/toxiproxy-api.md), plus a property test that random
 * request bodies never crash the server and always get Toxiproxy's JSON error shape.
 */
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  formatBound,
  formatTcpAddr,
  parsePort,
  resolveTcpAddr,
  splitHostPort,
} from "../../src/chaos/proxy/addr.js";
import { goFloat32, goString, parseFirstValue } from "../../src/chaos/proxy/gojson.js";
import type { ToxiproxyServer } from "../../src/chaos/proxy/index.js";
import { cleanPath } from "../../src/chaos/proxy/router.js";
import {
  connectTo,
  http,
  json,
  portOf,
  roundTrip,
  startApi,
  startEcho,
  startTcp,
  stopAll,
  waitFor,
} from "./proxy-kit.js";

interface ProxyJson {
  name: string;
  listen: string;
  upstream: string;
  enabled: boolean;
  toxics: ToxicJson[];
}
interface ToxicJson {
  name: string;
  type: string;
  stream: string;
  toxicity: number;
  attributes: Record<string, number>;
}

let api: ToxiproxyServer;
const post = (path: string, body?: string) => http(api.url, "POST", path, body);
const get = (path: string) => http(api.url, "GET", path);

/** A Go `http.Error` carrying Toxiproxy's `{"error":…,"status":…}`. */
function expectApiError(r: Awaited<ReturnType<typeof http>>, status: number, message: string): void {
  expect({ status: r.status, text: r.text }).toEqual({
    status,
    text: `${JSON.stringify({ error: message, status })}\n`,
  });
  expect(r.contentType).toBe("text/plain; charset=utf-8");
  expect(r.headers.get("x-content-type-options")).toBe("nosniff");
}

async function createProxy(name: string, extra: Record<string, unknown> = {}): Promise<ProxyJson> {
  const r = await post(
    "/proxies",
    JSON.stringify({ name, listen: "127.0.0.1:0", upstream: "127.0.0.1:9", ...extra }),
  );
  expect(r.status, r.text).toBe(201);
  return json<ProxyJson>(r);
}

beforeEach(async () => {
  api = await startApi();
});
afterEach(stopAll);

describe("router and middleware", () => {
  it("GET /version answers like Toxiproxy 2.12, with a request id", async () => {
    const r = await get("/version");
    expect(r.status).toBe(200);
    expect(r.contentType).toBe("application/json;charset=utf-8");
    expect(r.text).toBe('{"version": "2.12.0"}\n');
    expect(r.headers.get("x-toxiproxy-request-id")).toMatch(/^[0-9a-v]{20}$/);
  });

  it("unknown paths are Go's 404 page, without a request id", async () => {
    for (const path of [
      "/nope",
      "/proxies/",
      "/proxies/a%2Fb",
      "/proxies/a/b",
      "/metrics",
      "/proxies/p/toxics/",
    ]) {
      const r = await get(path);
      expect({ path, status: r.status, text: r.text }).toEqual({
        path,
        status: 404,
        text: "404 page not found\n",
      });
      expect(r.contentType).toBe("text/plain; charset=utf-8");
      expect(r.headers.get("x-toxiproxy-request-id")).toBeNull();
    }
  });

  it("a known path with the wrong method is 405 with an empty body", async () => {
    for (const [method, path] of [
      ["PUT", "/proxies"],
      ["DELETE", "/reset"],
      ["POST", "/version"],
      ["HEAD", "/version"],
      ["PUT", "/proxies/p/toxics/t"],
      ["GET", "/populate"],
    ] as const) {
      const r = await http(api.url, method, path);
      expect({ method, path, status: r.status, text: r.text, ct: r.contentType }).toEqual({
        method,
        path,
        status: 405,
        text: "",
        ct: null,
      });
    }
  });

  it("browsers are refused on matched routes", async () => {
    const r = await http(api.url, "GET", "/proxies", undefined, { "User-Agent": "Mozilla/5.0 (X11)" });
    expect(r.status).toBe(403);
    expect(r.text).toBe("User agent not allowed\n");
    expect(r.headers.get("x-toxiproxy-request-id")).toMatch(/^[0-9a-v]{20}$/);
  });

  it("an unclean path is redirected to the clean one; a query string is ignored", async () => {
    const r = await http(api.url, "GET", "//proxies?x=1");
    expect(r.status).toBe(301);
    expect(r.headers.get("location")).toBe("/proxies?x=1");
    expect((await get("/proxies?verbose=1")).text).toBe("{}");
    expect(cleanPath("/proxies/./a/../b/")).toBe("/proxies/b/");
    expect(cleanPath("/../..")).toBe("/");
  });
});

describe("proxies", () => {
  it("GET /proxies is {} when empty and a sorted map of proxy JSON otherwise", async () => {
    const empty = await get("/proxies");
    expect(empty.status).toBe(200);
    expect(empty.contentType).toBe("application/json");
    expect(empty.text).toBe("{}");
    const b = await createProxy("b");
    const a = await createProxy("a");
    const r = await get("/proxies");
    expect(Object.keys(json<Record<string, ProxyJson>>(r))).toEqual(["a", "b"]);
    expect(r.text).toBe(
      `{"a":{"name":"a","listen":"${a.listen}","upstream":"127.0.0.1:9","enabled":true,"Logger":{},"toxics":[]},` +
        `"b":{"name":"b","listen":"${b.listen}","upstream":"127.0.0.1:9","enabled":true,"Logger":{},"toxics":[]}}`,
    );
  });

  it("POST /proxies is 201 with the bound listen address and Go's field order", async () => {
    const r = await post("/proxies", '{"name":"p1","listen":"127.0.0.1:0","upstream":"127.0.0.1:20001"}');
    expect(r.status).toBe(201);
    expect(r.contentType).toBe("application/json");
    expect(r.text).toMatch(
      /^\{"name":"p1","listen":"127\.0\.0\.1:\d+","upstream":"127\.0\.0\.1:20001","enabled":true,"Logger":\{\},"toxics":\[\]\}$/,
    );
    expect(portOf(json<ProxyJson>(r).listen)).toBeGreaterThan(0);
  });

  it("localhost listens on 127.0.0.1; a disabled proxy keeps listen verbatim; upstream is not checked", async () => {
    const p = await createProxy("loc", { listen: "localhost:0", upstream: "no.such.host.invalid:1" });
    expect(p.listen).toMatch(/^127\.0\.0\.1:\d+$/);
    const off = await createProxy("off", { listen: "localhost:21111", enabled: false });
    expect(off.listen).toBe("localhost:21111");
    expect(off.enabled).toBe(false);
  });

  it("decodes like Go: keys case-insensitively, unknown fields ignored, only the first JSON value read", async () => {
    const r = await post(
      "/proxies",
      '{"NAME":"ci","Listen":"127.0.0.1:0","UPSTREAM":"127.0.0.1:9","extra":[1,2]} trailing garbage',
    );
    expect(r.status, r.text).toBe(201);
    expect(json<ProxyJson>(r).name).toBe("ci");
  });

  it("create errors in Toxiproxy's order and wording", async () => {
    expectApiError(await post("/proxies", ""), 400, "bad request body: EOF");
    expectApiError(await post("/proxies", "{"), 400, "bad request body: unexpected EOF");
    expectApiError(
      await post("/proxies", "nope"),
      400,
      "bad request body: invalid character 'o' in literal null (expecting 'u')",
    );
    expectApiError(
      await post("/proxies", "x"),
      400,
      "bad request body: invalid character 'x' looking for beginning of value",
    );
    expectApiError(
      await post("/proxies", '{"name":5}'),
      400,
      "bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string",
    );
    expectApiError(
      await post("/proxies", '{"name":"x","enabled":"yes"}'),
      400,
      "bad request body: json: cannot unmarshal string into Go struct field Proxy.enabled of type bool",
    );
    expectApiError(await post("/proxies", '{"upstream":"a:1"}'), 400, "missing required field: name");
    expectApiError(await post("/proxies", "null"), 400, "missing required field: name");
    expectApiError(
      await post("/proxies", '{"name":"x","Logger":5}'),
      400,
      "bad request body: json: cannot unmarshal number into Go struct field Proxy.Logger of type zerolog.Logger",
    );
    expectApiError(
      await post("/proxies", '{"name":"x","upstream":""}'),
      400,
      "missing required field: upstream",
    );
    await createProxy("dup");
    expectApiError(
      await post("/proxies", '{"name":"dup","listen":"127.0.0.1:0","upstream":"a:1"}'),
      409,
      "proxy already exists",
    );
  });

  it("listen failures are 500 with Go's error text", async () => {
    const taken = await startTcp(() => {});
    expectApiError(
      await post(
        "/proxies",
        JSON.stringify({ name: "b", listen: `127.0.0.1:${taken.port}`, upstream: "a:1" }),
      ),
      500,
      `listen tcp 127.0.0.1:${taken.port}: bind: address already in use`,
    );
    expectApiError(
      await post("/proxies", '{"name":"c","listen":"127.0.0.1:99999","upstream":"a:1"}'),
      500,
      "listen tcp: address 99999: invalid port",
    );
    expectApiError(
      await post("/proxies", '{"name":"d","listen":"notanaddress","upstream":"a:1"}'),
      500,
      "listen tcp: address notanaddress: missing port in address",
    );
    expect((await get("/proxies")).text).toBe("{}");
  });

  it("GET /proxies/{p} shows a proxy with its toxics; unknown is 404", async () => {
    await createProxy("p");
    await post("/proxies/p/toxics", '{"type":"latency","attributes":{"latency":5}}');
    const r = await get("/proxies/p");
    expect(r.status).toBe(200);
    expect(json<ProxyJson>(r).toxics).toEqual([
      {
        attributes: { latency: 5, jitter: 0 },
        name: "latency_downstream",
        type: "latency",
        stream: "downstream",
        toxicity: 1,
      },
    ]);
    expectApiError(await get("/proxies/none"), 404, "proxy not found");
  });

  it("POST and PATCH /proxies/{p} update with the current values as defaults; name is ignored", async () => {
    const p = await createProxy("p");
    const r = await http(api.url, "PATCH", "/proxies/p", '{"name":"other","upstream":"127.0.0.1:10"}');
    expect(r.status).toBe(200);
    const updated = json<ProxyJson>(r);
    expect(updated).toMatchObject({ name: "p", upstream: "127.0.0.1:10", enabled: true, listen: p.listen });
    const off = json<ProxyJson>(await post("/proxies/p", '{"enabled":false}'));
    expect(off).toMatchObject({ enabled: false, listen: p.listen, upstream: "127.0.0.1:10" });
    const on = json<ProxyJson>(await post("/proxies/p", "{}"));
    expect(on.enabled).toBe(false);
    expectApiError(await post("/proxies/none", "{}"), 404, "proxy not found");
    expectApiError(await post("/proxies/p", ""), 400, "bad request body: EOF");
    expectApiError(
      await post("/proxies/p", '{"listen":"notanaddress"}'),
      500,
      "address notanaddress: missing port in address",
    );
  });

  it("an update whose listen address is taken is a 500 and leaves the proxy disabled", async () => {
    await createProxy("p");
    const taken = await startTcp(() => {});
    expectApiError(
      await post("/proxies/p", JSON.stringify({ listen: `127.0.0.1:${taken.port}` })),
      500,
      `listen tcp 127.0.0.1:${taken.port}: bind: address already in use`,
    );
    expect(json<ProxyJson>(await get("/proxies/p"))).toMatchObject({
      enabled: false,
      listen: `127.0.0.1:${taken.port}`,
    });
  });

  it("changing the upstream closes open connections", async () => {
    const echo = await startEcho();
    const p = await createProxy("p", { upstream: `127.0.0.1:${echo.port}` });
    const client = await connectTo(portOf(p.listen));
    await roundTrip(client);
    const other = await startEcho();
    expect((await post("/proxies/p", JSON.stringify({ upstream: `127.0.0.1:${other.port}` }))).status).toBe(
      200,
    );
    await client.waitClosed(3000);
    // Stopped by the change, and started again because enabled stayed true, on the same address.
    const again = await connectTo(portOf(p.listen));
    expect(await roundTrip(again)).toBeLessThan(1000);
  });

  it("DELETE /proxies/{p} is 204 with no body; unknown is 404", async () => {
    await createProxy("p");
    const r = await http(api.url, "DELETE", "/proxies/p");
    expect({ status: r.status, text: r.text, ct: r.contentType }).toEqual({
      status: 204,
      text: "",
      ct: null,
    });
    expectApiError(await http(api.url, "DELETE", "/proxies/p"), 404, "proxy not found");
  });
});

describe("toxics", () => {
  beforeEach(async () => {
    await createProxy("p");
  });

  it("create answers 200 with every attribute of the type and Go's field order", async () => {
    const r = await post("/proxies/p/toxics", '{"type":"latency","attributes":{"latency":100,"bogus":3}}');
    expect(r.status).toBe(200);
    expect(r.contentType).toBe("application/json");
    expect(r.text).toBe(
      '{"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}',
    );
  });

  it("lists every type's attributes with defaults of 0", async () => {
    const want: Record<string, Record<string, number>> = {
      latency: { latency: 0, jitter: 0 },
      bandwidth: { rate: 0 },
      slow_close: { delay: 0 },
      timeout: { timeout: 0 },
      reset_peer: { timeout: 0 },
      slicer: { average_size: 0, size_variation: 0, delay: 0 },
      limit_data: { bytes: 0 },
      noop: {},
    };
    for (const [type, attributes] of Object.entries(want)) {
      const r = await post("/proxies/p/toxics", JSON.stringify({ type, name: type, toxicity: 0 }));
      expect(r.status, r.text).toBe(200);
      expect(json<ToxicJson>(r).attributes).toEqual(attributes);
    }
  });

  it("stream is parsed case-insensitively and echoed as sent; toxicity is a float32", async () => {
    const r = await post("/proxies/p/toxics", '{"type":"latency","stream":"UPSTREAM","toxicity":0.3}');
    expect(r.text).toBe(
      '{"attributes":{"latency":0,"jitter":0},"name":"latency_UPSTREAM","type":"latency","stream":"UPSTREAM","toxicity":0.3}',
    );
    const seven = await post("/proxies/p/toxics", '{"name":"t7","type":"noop","toxicity":7}');
    expect(json<ToxicJson>(seven).toxicity).toBe(7);
  });

  it("lists upstream toxics first, then downstream, each in insertion order", async () => {
    for (const [name, stream] of [
      ["d1", "downstream"],
      ["u1", "upstream"],
      ["d2", "downstream"],
      ["u2", "upstream"],
    ]) {
      await post("/proxies/p/toxics", JSON.stringify({ name, stream, type: "noop" }));
    }
    const r = await get("/proxies/p/toxics");
    expect(r.status).toBe(200);
    expect(json<ToxicJson[]>(r).map((t) => t.name)).toEqual(["u1", "u2", "d1", "d2"]);
    expect((await get("/proxies/none/toxics")).status).toBe(404);
  });

  it("create errors in Toxiproxy's order and wording", async () => {
    expectApiError(await post("/proxies/none/toxics", "{}"), 404, "proxy not found");
    expectApiError(await post("/proxies/p/toxics", ""), 400, "bad request body: EOF");
    expectApiError(
      await post("/proxies/p/toxics", '{"type":"latency","stream":""}'),
      400,
      "stream was invalid, can be either upstream or downstream",
    );
    expectApiError(
      await post("/proxies/p/toxics", '{"type":"nope","stream":"sideways"}'),
      400,
      "stream was invalid, can be either upstream or downstream",
    );
    for (const body of ['{"type":"down"}', "{}", '{"type":"nope"}']) {
      expectApiError(await post("/proxies/p/toxics", body), 400, "invalid toxic type");
    }
    expectApiError(
      await post("/proxies/p/toxics", '{"type":"latency","toxicity":"x"}'),
      400,
      "bad request body: json: cannot unmarshal string into Go struct field ToxicWrapper.toxicity of type float32",
    );
    expectApiError(
      await post("/proxies/p/toxics", '{"type":"latency","attributes":{"latency":"x"}}'),
      400,
      "bad request body: json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64",
    );
    expectApiError(
      await post("/proxies/p/toxics", '{"type":"latency","attributes":{"latency":1.5}}'),
      400,
      "bad request body: json: cannot unmarshal number 1.5 into Go struct field LatencyToxic.attributes.latency of type int64",
    );
    expectApiError(
      await post("/proxies/p/toxics", "[]"),
      400,
      "bad request body: json: cannot unmarshal array into Go value of type toxics.ToxicWrapper",
    );
    expectApiError(await post("/proxies/p/toxics", "null"), 400, "invalid toxic type");
    // Names are unique across both streams.
    expect((await post("/proxies/p/toxics", '{"name":"t","type":"latency"}')).status).toBe(200);
    expectApiError(
      await post("/proxies/p/toxics", '{"name":"t","type":"bandwidth","stream":"upstream"}'),
      409,
      "toxic already exists",
    );
  });

  it("toxics can be added to a disabled proxy", async () => {
    await post("/proxies/p", '{"enabled":false}');
    expect((await post("/proxies/p/toxics", '{"type":"timeout"}')).status).toBe(200);
  });

  it("show, update (attributes merged, toxicity kept unless given, name/type/stream ignored) and delete", async () => {
    await post(
      "/proxies/p/toxics",
      '{"type":"latency","toxicity":0.5,"attributes":{"latency":100,"jitter":10}}',
    );
    const shown = await get("/proxies/p/toxics/latency_downstream");
    expect(shown.status).toBe(200);
    expect(json<ToxicJson>(shown).toxicity).toBe(0.5);

    const u1 = await post(
      "/proxies/p/toxics/latency_downstream",
      '{"name":"renamed","type":"bandwidth","stream":"upstream","attributes":{"jitter":20}}',
    );
    expect(u1.status).toBe(200);
    expect(u1.text).toBe(
      '{"attributes":{"latency":100,"jitter":20},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.5}',
    );
    const u2 = await http(api.url, "PATCH", "/proxies/p/toxics/latency_downstream", '{"toxicity":null}');
    expect(json<ToxicJson>(u2).toxicity).toBe(0.5);
    const u3 = await http(api.url, "PATCH", "/proxies/p/toxics/latency_downstream", '{"toxicity":1}');
    expect(json<ToxicJson>(u3).toxicity).toBe(1);

    expectApiError(await post("/proxies/p/toxics/none", "garbage"), 404, "toxic not found");
    expectApiError(await post("/proxies/none/toxics/latency_downstream", "{}"), 404, "proxy not found");
    expectApiError(
      await post("/proxies/p/toxics/latency_downstream", "{"),
      400,
      "bad request body: unexpected EOF",
    );
    expectApiError(
      await post("/proxies/p/toxics/latency_downstream", '{"attributes":{"latency":-1.0}}'),
      400,
      "bad request body: json: cannot unmarshal number -1.0 into Go struct field LatencyToxic.attributes.latency of type int64",
    );

    const del = await http(api.url, "DELETE", "/proxies/p/toxics/latency_downstream");
    expect({ status: del.status, text: del.text }).toEqual({ status: 204, text: "" });
    expectApiError(await get("/proxies/p/toxics/latency_downstream"), 404, "toxic not found");
    expectApiError(
      await http(api.url, "DELETE", "/proxies/p/toxics/latency_downstream"),
      404,
      "toxic not found",
    );
  });
});

describe("reset and populate", () => {
  it("POST /reset enables every proxy and removes every toxic, keeping the proxies", async () => {
    const p = await createProxy("p");
    await createProxy("q", { enabled: false, listen: "127.0.0.1:0" });
    await post("/proxies/p/toxics", '{"type":"latency"}');
    await post("/proxies/p", '{"enabled":false}');
    const r = await post("/reset");
    expect({ status: r.status, text: r.text }).toEqual({ status: 204, text: "" });
    const all = json<Record<string, ProxyJson>>(await get("/proxies"));
    expect(all["p"]).toMatchObject({ enabled: true, listen: p.listen, toxics: [] });
    expect(all["q"]?.enabled).toBe(true);
  });

  it("POST /populate creates proxies, leaves unchanged ones (and their toxics) alone, replaces changed ones", async () => {
    const first = await post(
      "/populate",
      JSON.stringify([
        { name: "a", listen: "127.0.0.1:0", upstream: "127.0.0.1:1" },
        { name: "b", listen: "127.0.0.1:0", upstream: "127.0.0.1:2", enabled: false },
      ]),
    );
    expect(first.status).toBe(201);
    expect(first.contentType).toBe("application/json");
    const proxies = json<{ proxies: ProxyJson[] }>(first).proxies;
    expect(proxies.map((p) => [p.name, p.enabled])).toEqual([
      ["a", true],
      ["b", false],
    ]);
    const a = proxies[0]!;
    await post("/proxies/a/toxics", '{"type":"latency"}');

    const second = await post(
      "/populate",
      JSON.stringify([
        { name: "a", listen: a.listen, upstream: "127.0.0.1:1", enabled: false },
        { name: "b", listen: "127.0.0.1:0", upstream: "127.0.0.1:3" },
      ]),
    );
    expect(second.status).toBe(201);
    const [a2, b2] = json<{ proxies: ProxyJson[] }>(second).proxies;
    // Unchanged: enabled is not applied and the toxic survives.
    expect(a2).toMatchObject({ name: "a", enabled: true, listen: a.listen });
    expect(a2?.toxics).toHaveLength(1);
    // Changed upstream: a new proxy, started because enabled defaults to true.
    expect(b2).toMatchObject({ name: "b", enabled: true, upstream: "127.0.0.1:3" });

    // A started proxy has a real port, so ":0" always differs: re-created, toxics lost.
    const third = await post(
      "/populate",
      JSON.stringify([{ name: "a", listen: "127.0.0.1:0", upstream: "127.0.0.1:1" }]),
    );
    const [a3] = json<{ proxies: ProxyJson[] }>(third).proxies;
    expect(a3?.toxics).toEqual([]);
    expect(a3?.listen).not.toBe(a.listen);
  });

  it("populate quirks: [] gives proxies null; errors are JSON with the entries done so far", async () => {
    const empty = await post("/populate", "[]");
    expect({ status: empty.status, text: empty.text }).toEqual({ status: 201, text: '{"proxies":null}' });

    expect((await post("/populate", "null")).text).toBe('{"proxies":null}');
    const notArray = await post("/populate", "{}");
    expect(notArray.status).toBe(400);
    expect(notArray.contentType).toBe("application/json");
    expect(json<{ error: string; proxies: null }>(notArray).error).toMatch(
      /^bad request body: json: cannot unmarshal object into Go value of type \[\]struct \{/,
    );

    const missing = await post("/populate", '[{"name":"x","upstream":"a:1"},{"upstream":"b:1"}]');
    expect({ status: missing.status, text: missing.text }).toEqual({
      status: 400,
      text: '{"error":"missing required field: name at proxy 2","status":400,"proxies":null}',
    });
    const noUpstream = await post("/populate", '[{"name":"x"}]');
    expect(json<{ error: string }>(noUpstream).error).toBe("missing required field: upstream at proxy 1");
    expect((await get("/proxies")).text).toBe("{}");

    const taken = await startTcp(() => {});
    const partial = await post(
      "/populate",
      JSON.stringify([
        { name: "ok", listen: "127.0.0.1:0", upstream: "a:1" },
        { name: "bad", listen: `127.0.0.1:${taken.port}`, upstream: "a:1" },
        { name: "never", listen: "127.0.0.1:0", upstream: "a:1" },
      ]),
    );
    expect(partial.status).toBe(500);
    const body = json<{ error: string; status: number; proxies: ProxyJson[] }>(partial);
    expect(body.error).toBe(`listen tcp 127.0.0.1:${taken.port}: bind: address already in use`);
    expect(body.status).toBe(500);
    expect(body.proxies.map((p) => p.name)).toEqual(["ok"]);
    expect(Object.keys(json<Record<string, ProxyJson>>(await get("/proxies")))).toEqual(["ok"]);
  });
});

describe("/metrics", () => {
  it("with proxy metrics on, counts each direction's bytes when a connection ends", async () => {
    const withMetrics = await startApi({ proxyMetrics: true });
    const echo = await startEcho();
    const created = await http(
      withMetrics.url,
      "POST",
      "/proxies",
      JSON.stringify({ name: "m", listen: "127.0.0.1:0", upstream: `127.0.0.1:${echo.port}` }),
    );
    const listen = json<ProxyJson>(created).listen;
    const client = await connectTo(portOf(listen));
    await roundTrip(client, Buffer.from("12345"));
    client.socket.end();
    await client.waitClosed(3000);
    const labels = `listener="${listen}",proxy="m",upstream="127.0.0.1:${echo.port}"`;
    const want = [
      `toxiproxy_proxy_received_bytes_total{direction="upstream",${labels}} 5`,
      `toxiproxy_proxy_sent_bytes_total{direction="downstream",${labels}} 5`,
    ];
    const text = await waitFor(
      async () => {
        const r = await http(withMetrics.url, "GET", "/metrics");
        return want.every((w) => r.text.includes(w)) ? r : undefined;
      },
      3000,
      "the byte counters",
    );
    expect(text.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    // Registered without a method, like Toxiproxy's: any method is served.
    expect((await http(withMetrics.url, "POST", "/metrics")).status).toBe(200);
  });
});

describe("Go compatibility helpers", () => {
  it("split and format addresses like Go's net package", async () => {
    expect(splitHostPort("127.0.0.1:80")).toEqual({ host: "127.0.0.1", port: "80" });
    expect(splitHostPort("[::1]:80")).toEqual({ host: "::1", port: "80" });
    expect(() => splitHostPort("notanaddress")).toThrow("address notanaddress: missing port in address");
    expect(() => splitHostPort("a:b:c")).toThrow("address a:b:c: too many colons in address");
    expect(() => parsePort("99999")).toThrow("address 99999: invalid port");
    expect(formatBound("::", 5, true)).toBe("[::]:5");
    expect(formatBound("::1", 5, false)).toBe("[::1]:5");
    expect(formatTcpAddr({ ip: undefined, port: 7 })).toBe(":7");
    expect(await resolveTcpAddr("localhost:1")).toEqual({ ip: "127.0.0.1", port: 1 });
    expect(await resolveTcpAddr("")).toEqual({ ip: undefined, port: 0 });
  });

  it("encode like encoding/json", () => {
    expect(goFloat32(0.3)).toBe("0.3");
    expect(goFloat32(1)).toBe("1");
    expect(goFloat32(Math.fround(0.1))).toBe("0.1");
    expect(goString("<a&b>")).toBe('"\\u003ca\\u0026b\\u003e"');
    expect(parseFirstValue(new TextEncoder().encode("  "))).toEqual({ ok: false, error: "EOF" });
  });
});

describe("random request bodies (property)", () => {
  let shared: ToxiproxyServer;
  beforeAll(async () => {
    shared = await startApi();
    await http(
      shared.url,
      "POST",
      "/proxies",
      '{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:9"}',
    );
    await http(shared.url, "POST", "/proxies/p/toxics", '{"name":"t","type":"latency"}');
  });
  afterAll(async () => {
    await shared.close();
  });

  const anyValue = fc.jsonValue({ maxDepth: 1 });
  /** Almost-valid bodies (known keys, random values) reach the checks past decoding. */
  const structured = (listen: boolean) =>
    fc
      .record(
        {
          name: fc.oneof(fc.string({ maxLength: 8 }), anyValue),
          upstream: fc.oneof(fc.constant("127.0.0.1:9"), anyValue),
          type: fc.oneof(fc.constantFrom("latency", "bandwidth", "slicer", "down", "noop"), anyValue),
          stream: fc.oneof(fc.constantFrom("upstream", "downstream", "UP"), anyValue),
          toxicity: anyValue,
          enabled: anyValue,
          attributes: fc.jsonValue({ maxDepth: 2 }),
        },
        { requiredKeys: [] },
      )
      // Anything that could listen must stay on 127.0.0.1.
      .map((o) => JSON.stringify(listen ? { ...o, listen: "127.0.0.1:0" } : o));
  const random = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.json({ maxDepth: 3 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("latin1")),
  );
  // Go matches keys case-insensitively: a random body mentioning "listen" could move a proxy off 127.0.0.1.
  const noListen = random.filter((text) => !/listen/i.test(text));
  const cases = fc.oneof(
    fc.tuple(fc.constant("POST /proxies"), fc.oneof(noListen, structured(true))),
    fc.tuple(
      fc.constant("POST /populate"),
      fc.oneof(
        noListen,
        fc.array(structured(true), { maxLength: 3 }).map((a) => `[${a.join(",")}]`),
      ),
    ),
    fc.tuple(fc.constant("POST /proxies/p/toxics"), fc.oneof(random, structured(false))),
    fc.tuple(fc.constant("POST /proxies/p/toxics/t"), fc.oneof(random, structured(false))),
    fc.tuple(fc.constant("PATCH /proxies/p"), fc.oneof(noListen, structured(false))),
  );

  it("never crash the server and always get a status with Toxiproxy's JSON body", async () => {
    await fc.assert(
      fc.asyncProperty(cases, async ([endpoint, body]) => {
        const [method, path] = endpoint.split(" ") as [string, string];
        const r = await http(shared.url, method, path, body);
        expect([200, 201, 400, 404, 409, 500]).toContain(r.status);
        const parsed = JSON.parse(r.text) as Record<string, unknown>;
        if (r.status >= 400) {
          expect(typeof parsed["error"]).toBe("string");
          expect(parsed["status"]).toBe(r.status);
        }
        // Back to one proxy "p" with one toxic "t", in-process (a fuzzed name may not be addressable by URL).
        for (const proxy of shared.registry.all()) {
          if (proxy.name !== "p") await shared.registry.remove(proxy.name);
        }
        const p = shared.registry.get("p")!;
        for (const t of p.toxics.list()) if (t.name !== "t") await p.toxics.remove(t.name);
      }),
      { numRuns: 300 },
    );
    const v = await http(shared.url, "GET", "/version");
    expect(v.status).toBe(200);
  });
});

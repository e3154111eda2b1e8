/**
 * Request bodies decoded into the Go types Toxiproxy decodes them into, so that defaults, ignored fields and
 * error texts (`bad request body: …`, `missing required field: …`) come out as the real server's do.
 */
import type { ToxicInput } from "./collection.js";
import { badRequestBody, missingField } from "./errors.js";
import {
  type Decoded,
  type DecodedObject,
  decodeAs,
  GO_BOOL,
  GO_FLOAT32,
  GO_STRING,
  type GoField,
  type GoStructType,
  type GoType,
  type JValue,
  parseFirstValue,
} from "./gojson.js";
import type { ProxySpec } from "./registry.js";

/** zerolog.Logger: exported in Go's Proxy struct (hence `"Logger":{}`), but with no JSON fields of its own. */
const LOGGER: GoStructType = { k: "struct", name: "zerolog.Logger", fields: [] };

const PROXY_FIELDS: readonly GoField[] = [
  { key: "name", type: GO_STRING },
  { key: "listen", type: GO_STRING },
  { key: "upstream", type: GO_STRING },
  { key: "enabled", type: GO_BOOL },
  { key: "Logger", type: LOGGER },
];

const PROXY: GoStructType = { k: "struct", name: "toxiproxy.Proxy", fields: PROXY_FIELDS };

/** `[]struct { Proxy; Enabled *bool }`: the embedded Proxy's fields are promoted into an anonymous struct. */
const POPULATE: GoType = {
  k: "slice",
  name: '[]struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }',
  elem: {
    k: "struct",
    name: 'struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }',
    fields: PROXY_FIELDS,
  },
};

/** The first pass over a toxic body (Go's ToxicWrapper, attributes still a field-less NoopToxic). */
const TOXIC_WRAPPER: GoStructType = {
  k: "struct",
  name: "toxics.ToxicWrapper",
  fields: [
    { key: "attributes", type: { k: "struct", name: "toxics.NoopToxic", fields: [] } },
    { key: "name", type: GO_STRING },
    { key: "type", type: GO_STRING },
    { key: "stream", type: GO_STRING },
    { key: "toxicity", type: GO_FLOAT32 },
  ],
};

/** Parse a body like `json.NewDecoder(body).Decode`: 400 `bad request body: …` on a syntax error or EOF. */
export function parseBody(body: Uint8Array): JValue {
  const parsed = parseFirstValue(body);
  if (!parsed.ok) throw badRequestBody(parsed.error);
  return parsed.value;
}

function decodeOrThrow(value: JValue, type: GoType, into?: DecodedObject): Decoded | undefined {
  const { value: decoded, error } = decodeAs(value, type, into);
  if (error !== undefined) throw badRequestBody(error);
  return decoded;
}

function str(o: DecodedObject | undefined, key: string, fallback: string): string {
  const v = o?.[key];
  return typeof v === "string" ? v : fallback;
}

function bool(o: DecodedObject | undefined, key: string, fallback: boolean): boolean {
  const v = o?.[key];
  return typeof v === "boolean" ? v : fallback;
}

function asObject(d: Decoded | undefined): DecodedObject | undefined {
  return d !== undefined && typeof d === "object" && !Array.isArray(d) ? d : undefined;
}

/** `POST /proxies`: name and upstream required, enabled defaults to true, listen to "" (any address). */
export function decodeProxyCreate(body: Uint8Array): ProxySpec {
  const o = asObject(decodeOrThrow(parseBody(body), PROXY));
  const spec: ProxySpec = {
    name: str(o, "name", ""),
    listen: str(o, "listen", ""),
    upstream: str(o, "upstream", ""),
    enabled: bool(o, "enabled", true),
  };
  if (spec.name === "") throw missingField("name");
  if (spec.upstream === "") throw missingField("upstream");
  return spec;
}

/** `POST/PATCH /proxies/{p}`: every field defaults to the proxy's current value; `name` is ignored. */
export function decodeProxyUpdate(
  body: Uint8Array,
  current: { readonly listen: string; readonly upstream: string; readonly enabled: boolean },
): { listen: string; upstream: string; enabled: boolean } {
  const o = asObject(decodeOrThrow(parseBody(body), PROXY));
  return {
    listen: str(o, "listen", current.listen),
    upstream: str(o, "upstream", current.upstream),
    enabled: bool(o, "enabled", current.enabled),
  };
}

/** `POST /populate`: an array of proxy bodies, every entry checked before any is applied. */
export function decodePopulate(body: Uint8Array): ProxySpec[] {
  const decoded = decodeOrThrow(parseBody(body), POPULATE);
  const entries = Array.isArray(decoded) ? decoded : [];
  return entries.map((entry, i) => {
    const o = asObject(entry);
    const spec: ProxySpec = {
      name: str(o, "name", ""),
      listen: str(o, "listen", ""),
      upstream: str(o, "upstream", ""),
      enabled: bool(o, "enabled", true),
    };
    if (spec.name === "") throw missingField(`name at proxy ${i + 1}`);
    if (spec.upstream === "") throw missingField(`upstream at proxy ${i + 1}`);
    return spec;
  });
}

/** `POST /proxies/{p}/toxics`, first pass: stream defaults to downstream, toxicity to 1. */
export function decodeToxicCreate(body: Uint8Array): ToxicInput {
  const value = parseBody(body);
  const o = asObject(decodeOrThrow(value, TOXIC_WRAPPER));
  const toxicity = o?.["toxicity"];
  return {
    name: str(o, "name", ""),
    type: str(o, "type", ""),
    stream: str(o, "stream", "downstream"),
    toxicity: typeof toxicity === "number" ? toxicity : 1,
    body: value,
  };
}

/** `POST/PATCH /proxies/{p}/toxics/{t}`: parsed here, decoded by the collection against the toxic's type. */
export function parseToxicUpdate(body: Uint8Array): JValue {
  return parseBody(body);
}

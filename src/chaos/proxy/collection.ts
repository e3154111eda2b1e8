/**
 * A proxy's toxics (Go's ToxicCollection): one chain per direction, each starting with a hidden noop, and
 * the live links of the proxy's connections. Adding, updating and removing a toxic changes the chain and
 * every live link of that direction before the API call returns, one change at a time.
 */
import {
  badRequestBody,
  invalidStream,
  invalidToxicType,
  Mutex,
  toxicAlreadyExists,
  toxicNotFound,
} from "./errors.js";
import {
  type DecodedObject,
  decodeAs,
  GO_FLOAT32,
  GO_INT64,
  type GoStructType,
  type JValue,
} from "./gojson.js";
import {
  type Attributes,
  type Direction,
  DOWNSTREAM,
  type ToxicKind,
  ToxicLink,
  type ToxicWrapper,
  UPSTREAM,
} from "./link.js";
import { NOOP_KIND, TOXIC_KINDS } from "./toxics.js";

/** What `POST /proxies/{p}/toxics` decoded (before its attributes, which need the type). */
export interface ToxicInput {
  readonly name: string;
  readonly type: string;
  readonly stream: string;
  readonly toxicity: number;
  /** The whole request body, decoded again for the attributes once the type is known (as Go does). */
  readonly body: JValue;
}

/** Go's `stream.ParseDirection`: case-insensitive. */
export function parseDirection(stream: string): Direction | undefined {
  const s = stream.toLowerCase();
  if (s === "upstream") return UPSTREAM;
  if (s === "downstream") return DOWNSTREAM;
  return undefined;
}

function attributesType(kind: ToxicKind): GoStructType {
  return {
    k: "struct",
    name: `toxics.${kind.goName}`,
    fields: kind.attributes.map((key) => ({ key, type: GO_INT64 })),
  };
}

function withDefaults(kind: ToxicKind, values: DecodedObject | undefined): Attributes {
  const out: Record<string, number> = {};
  for (const key of kind.attributes) {
    const v = values?.[key];
    out[key] = typeof v === "number" ? v : 0;
  }
  return out;
}

function noopWrapper(direction: Direction): ToxicWrapper {
  return {
    name: "",
    kind: NOOP_KIND,
    stream: "",
    direction,
    toxicity: 0,
    attributes: {},
    index: 0,
  };
}

/** The links of one connection. */
export interface ConnectionLinks {
  readonly upstream: ToxicLink;
  readonly downstream: ToxicLink;
  /** A reset_peer toxic was in a chain when the links were made: close both sockets with RST. */
  readonly resetPeer: boolean;
}

export class ToxicCollection {
  private readonly chains: [ToxicWrapper[], ToxicWrapper[]] = [
    [noopWrapper(UPSTREAM)],
    [noopWrapper(DOWNSTREAM)],
  ];
  private readonly links = new Map<string, ToxicLink>();
  private readonly lock = new Mutex();

  /** Upstream toxics first, then downstream, each in insertion order. */
  list(): ToxicWrapper[] {
    return [...this.chains[UPSTREAM].slice(1), ...this.chains[DOWNSTREAM].slice(1)];
  }

  find(name: string): ToxicWrapper | undefined {
    return this.list().find((t) => t.name === name);
  }

  private linksOf(direction: Direction): ToxicLink[] {
    return [...this.links.values()].filter((l) => l.direction === direction);
  }

  /** Add a toxic, checking in Toxiproxy's order: stream, type, unique name, attributes. */
  add(input: ToxicInput): Promise<ToxicWrapper> {
    return this.lock.run(async () => {
      const direction = parseDirection(input.stream);
      if (direction === undefined) throw invalidStream();
      const name = input.name !== "" ? input.name : `${input.type}_${input.stream}`;
      const kind = TOXIC_KINDS.get(input.type);
      if (!kind) throw invalidToxicType();
      if (this.find(name)) throw toxicAlreadyExists();
      const bodyType: GoStructType = {
        k: "struct",
        name: 'struct { Attributes interface {} "json:\\"attributes\\"" }',
        fields: [{ key: "attributes", type: attributesType(kind) }],
      };
      const { value, error } = decodeAs(input.body, bodyType);
      if (error !== undefined) throw badRequestBody(error);
      const decoded = (value as DecodedObject | undefined)?.["attributes"] as DecodedObject | undefined;
      const chain = this.chains[direction];
      const toxic: ToxicWrapper = {
        name,
        kind,
        stream: input.stream,
        direction,
        toxicity: input.toxicity,
        attributes: withDefaults(kind, decoded),
        index: chain.length,
      };
      chain.push(toxic);
      await Promise.all(this.linksOf(direction).map((l) => l.addToxic(toxic, chain)));
      return toxic;
    });
  }

  /** Merge new attributes and/or toxicity into a toxic and restart it on every live link. */
  update(name: string, body: JValue): Promise<ToxicWrapper> {
    return this.lock.run(async () => {
      const toxic = this.find(name);
      if (!toxic) throw toxicNotFound();
      const bodyType: GoStructType = {
        k: "struct",
        name: 'struct { Attributes interface {} "json:\\"attributes\\""; Toxicity float32 "json:\\"toxicity\\"" }',
        fields: [
          { key: "attributes", type: attributesType(toxic.kind) },
          { key: "toxicity", type: GO_FLOAT32 },
        ],
      };
      const { value, error } = decodeAs(body, bodyType, { attributes: { ...toxic.attributes } });
      if (error !== undefined) throw badRequestBody(error);
      const decoded = value as DecodedObject | undefined;
      toxic.attributes = withDefaults(
        toxic.kind,
        (decoded?.["attributes"] as DecodedObject | undefined) ?? toxic.attributes,
      );
      const toxicity = decoded?.["toxicity"];
      if (typeof toxicity === "number") toxic.toxicity = toxicity;
      await Promise.all(this.linksOf(toxic.direction).map((l) => l.updateToxic(toxic)));
      return toxic;
    });
  }

  remove(name: string): Promise<void> {
    return this.lock.run(async () => {
      const toxic = this.find(name);
      if (!toxic) throw toxicNotFound();
      await this.removeLocked(toxic);
    });
  }

  /** Remove every toxic (live connections stay open, except those a removed timeout toxic closes). */
  reset(): Promise<void> {
    return this.lock.run(async () => {
      for (const chain of this.chains) {
        for (let t = chain[1]; t !== undefined; t = chain[1]) await this.removeLocked(t);
      }
    });
  }

  private async removeLocked(toxic: ToxicWrapper): Promise<void> {
    const chain = this.chains[toxic.direction];
    const index = toxic.index;
    chain.splice(index, 1);
    chain.forEach((t, i) => {
      t.index = i;
    });
    await Promise.all(this.linksOf(toxic.direction).map((l) => l.removeToxic(toxic, index, chain)));
    toxic.index = -1;
  }

  /** Make and start the two links of a new connection from the current chains. */
  startLinks(name: string): Promise<ConnectionLinks> {
    return this.lock.run(async () => {
      const upstream = new ToxicLink(UPSTREAM, this.chains[UPSTREAM]);
      const downstream = new ToxicLink(DOWNSTREAM, this.chains[DOWNSTREAM]);
      this.links.set(`${name}upstream`, upstream);
      this.links.set(`${name}downstream`, downstream);
      upstream.start(this.chains[UPSTREAM]);
      downstream.start(this.chains[DOWNSTREAM]);
      const resetPeer = this.chains.some((chain) => chain.some((t) => t.kind.resetsPeer === true));
      return { upstream, downstream, resetPeer };
    });
  }

  /** Forget a connection's links (it has ended). */
  removeLinks(name: string): void {
    this.links.delete(`${name}upstream`);
    this.links.delete(`${name}downstream`);
  }
}

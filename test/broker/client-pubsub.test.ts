/**
 * The official `nats` client against each server kind: publish/subscribe, payload fidelity, ordering,
 * wildcards, queue groups, headers and echo. Every test must pass unchanged against nats-server 2.9.10 and
 * against `bridgehead broker`: the client must not be able to tell them apart.
 *
 * `BH_KINDS=nats-server` (comma-separated) restricts the kinds, e.g. to validate against nats-server alone.
 */
import { randomBytes } from "node:crypto";
import { type ConnectionOptions, Empty, headers, type Msg } from "nats";
import { describe, expect, it } from "vitest";
import { barrier, collector, sc, trackedConnect, unique } from "../helpers/client-kit.js";
import { useServer } from "../helpers/server-hooks.js";
import { selectedKinds } from "../helpers/servers.js";

describe.each(selectedKinds())("nats client pub/sub against %s", (kind) => {
  const server = useServer(kind);
  const connectTracked = trackedConnect();
  const client = (opts: ConnectionOptions = {}) => connectTracked(server(), opts);

  it("delivers string payloads intact, including multi-byte UTF-8", async () => {
    const [sub, pub] = [await client(), await client()];
    const subject = `${unique()}.str`;
    const col = collector();
    sub.subscribe(subject, { callback: col.callback });
    await sub.flush();

    const texts = [
      "hello",
      "",
      "héllo wörld ☃ 🚀",
      "line1\r\nline2\r\n",
      "MSG foo 1 3\r\nbar\r\n",
      "x".repeat(5000),
    ];
    for (const t of texts) pub.publish(subject, sc.encode(t));
    await col.waitFor(texts.length);
    expect(col.msgs.map((m) => sc.decode(m.data))).toEqual(texts);
    expect(col.msgs.every((m) => m.subject === subject)).toBe(true);
    expect(col.msgs.every((m) => m.headers === undefined)).toBe(true);
  });

  it("delivers binary payloads byte-exact, from 0 bytes to exactly max_payload (1 MiB)", async () => {
    const [sub, pub] = [await client(), await client()];
    expect(pub.info?.max_payload).toBe(1024 * 1024);
    const subject = `${unique()}.bin`;
    const col = collector();
    sub.subscribe(subject, { callback: col.callback });
    await sub.flush();

    const sizes = [0, 1, 2, 3, 127, 4096, 65_535, 65_536, 65_537, 512 * 1024, 1024 * 1024 - 1, 1024 * 1024];
    const payloads = sizes.map((n) => new Uint8Array(randomBytes(n)));
    // CR/LF inside binary payloads must not confuse the framing.
    payloads.push(Uint8Array.from([13, 10, 13, 10, 0, 255, 13]));
    payloads.push(Empty);
    for (const p of payloads) pub.publish(subject, p);
    await col.waitFor(payloads.length, 15_000);
    expect(col.msgs.length).toBe(payloads.length);
    col.msgs.forEach((m, i) => {
      const want = payloads[i]!;
      expect(m.data.length, `payload #${i}`).toBe(want.length);
      expect(Buffer.from(m.data).equals(Buffer.from(want)), `payload #${i} bytes`).toBe(true);
    });
  });

  it("preserves order per publisher, also with two publishers interleaving", async () => {
    const [sub, a, b] = [await client(), await client(), await client()];
    const subject = `${unique()}.ord`;
    const col = collector();
    sub.subscribe(subject, { callback: col.callback });
    await sub.flush();

    const n = 2000;
    for (let i = 0; i < n; i++) {
      a.publish(subject, sc.encode(`a:${i}`));
      b.publish(subject, sc.encode(`b:${i}`));
    }
    await col.waitFor(2 * n, 10_000);
    const seen = col.msgs.map((m) => sc.decode(m.data));
    const fromA = seen.filter((s) => s.startsWith("a:"));
    const fromB = seen.filter((s) => s.startsWith("b:"));
    expect(fromA).toEqual(Array.from({ length: n }, (_, i) => `a:${i}`));
    expect(fromB).toEqual(Array.from({ length: n }, (_, i) => `b:${i}`));
  });

  it("matches * and > wildcards exactly as nats-server does, and nothing else", async () => {
    const [sub, pub] = [await client(), await client()];
    const p = unique();
    const q = `${p}q`; // shares a string prefix with p but is a different token
    const patterns = {
      literal: `${p}.a`,
      star: `${p}.*`,
      starMiddle: `${p}.*.c`,
      gt: `${p}.>`,
      gtDeep: `${p}.a.>`,
      starFirst: `*.a`,
      literalStarToken: `${p}.a*`, // `a*` is a literal token, not a wildcard
      all: ">",
    };
    const published = [
      p,
      `${p}.a`,
      `${p}.b`,
      `${p}.A`,
      `${p}.ab`,
      `${p}.a*`,
      `${p}.a.b`,
      `${p}.a.c`,
      `${p}.b.c`,
      `${p}.a.b.c`,
      `${q}.a`,
      `${q}`,
    ];
    const expected: Record<keyof typeof patterns, string[]> = {
      literal: [`${p}.a`],
      star: [`${p}.a`, `${p}.b`, `${p}.A`, `${p}.ab`, `${p}.a*`],
      starMiddle: [`${p}.a.c`, `${p}.b.c`],
      gt: published.filter((s) => s.startsWith(`${p}.`)),
      gtDeep: [`${p}.a.b`, `${p}.a.c`, `${p}.a.b.c`],
      starFirst: [`${p}.a`, `${q}.a`],
      literalStarToken: [`${p}.a*`],
      all: published,
    };

    const seen = new Map<string, string[]>();
    for (const [name, pattern] of Object.entries(patterns)) {
      const got: string[] = [];
      seen.set(name, got);
      sub.subscribe(pattern, {
        callback: (err, m) => {
          // `>` also sees traffic of other suites' connections on this server: keep only ours
          if (!err && (m.subject === p || m.subject.startsWith(`${p}.`) || m.subject.startsWith(q))) {
            got.push(m.subject);
          }
        },
      });
    }
    await sub.flush();
    for (const s of published) pub.publish(s, sc.encode(s));
    await barrier(pub, sub);

    for (const name of Object.keys(patterns) as (keyof typeof patterns)[]) {
      expect([...(seen.get(name) ?? [])].sort(), `${name}: ${patterns[name]}`).toEqual(
        [...expected[name]].sort(),
      );
    }
  });

  it("is case-sensitive and does not match partial tokens", async () => {
    const [sub, pub] = [await client(), await client()];
    const p = unique();
    const col = collector();
    sub.subscribe(`${p}.foo.*`, { callback: col.callback });
    sub.subscribe(`${p}.Foo`, { callback: col.callback });
    await sub.flush();
    for (const s of [`${p}.Foo.x`, `${p}.foo`, `${p}.foox.y`, `${p}.fo.x`, `${p}.foo.x.y`, `${p}.FOO`]) {
      pub.publish(s);
    }
    pub.publish(`${p}.foo.ok`);
    pub.publish(`${p}.Foo`);
    await barrier(pub, sub);
    expect(col.msgs.map((m) => m.subject)).toEqual([`${p}.foo.ok`, `${p}.Foo`]);
  });

  it("routes many distinct subjects to exactly their own subscriptions", async () => {
    const [sub, pub] = [await client(), await client()];
    const p = unique();
    const n = 1000;
    const got: string[][] = Array.from({ length: n }, () => []);
    for (let i = 0; i < n; i++) {
      sub.subscribe(`${p}.s${i}`, {
        callback: (err, m) => {
          if (!err) got[i]!.push(sc.decode(m.data));
        },
      });
    }
    await sub.flush();
    for (let i = 0; i < n; i++) pub.publish(`${p}.s${i}`, sc.encode(String(i)));
    await barrier(pub, sub);
    got.forEach((msgs, i) => {
      expect(msgs, `subject s${i}`).toEqual([String(i)]);
    });
  });

  it("fans out one message to every plain subscriber, including several on one connection", async () => {
    const [s1, s2, pub] = [await client(), await client(), await client()];
    const subject = `${unique()}.fan`;
    const cols = [collector(), collector(), collector(), collector()];
    s1.subscribe(subject, { callback: cols[0]!.callback });
    s1.subscribe(subject, { callback: cols[1]!.callback });
    s2.subscribe(subject, { callback: cols[2]!.callback });
    s2.subscribe(subject.replace(/\.fan$/, ".*"), { callback: cols[3]!.callback });
    await Promise.all([s1.flush(), s2.flush()]);
    for (let i = 0; i < 10; i++) pub.publish(subject, sc.encode(String(i)));
    await barrier(pub, s1, s2);
    for (const c of cols) {
      expect(c.msgs.map((m) => sc.decode(m.data))).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    }
  });

  describe("queue groups", () => {
    it("gives each message to exactly one member of each group; plain subscribers get all", async () => {
      const p = unique();
      const subject = `${p}.work`;
      const n = 200;
      const pub = await client();
      // group A: three members on three connections
      const groupA = await Promise.all([client(), client(), client()]);
      const colsA = groupA.map((nc) => {
        const c = collector();
        nc.subscribe(subject, { queue: "A", callback: c.callback });
        return c;
      });
      // group B: two members on one connection, on a wildcard subject
      const bConn = await client();
      const colsB = [collector(), collector()];
      for (const c of colsB) bConn.subscribe(`${p}.*`, { queue: "B", callback: c.callback });
      // a plain subscriber that is also a member of both groups on the same connection
      const plainConn = await client();
      const plain = collector();
      const alsoA = collector();
      const alsoB = collector();
      plainConn.subscribe(subject, { callback: plain.callback });
      plainConn.subscribe(subject, { queue: "A", callback: alsoA.callback });
      plainConn.subscribe(subject, { queue: "B", callback: alsoB.callback });
      await Promise.all([...groupA, bConn, plainConn].map((nc) => nc.flush()));

      for (let i = 0; i < n; i++) pub.publish(subject, sc.encode(`id-${i}`));
      await barrier(pub, ...groupA, bConn, plainConn);

      const ids = Array.from({ length: n }, (_, i) => `id-${i}`);
      const tally = (cols: ReturnType<typeof collector>[]) => {
        const count = new Map<string, number>();
        for (const c of cols) {
          for (const m of c.msgs) {
            const id = sc.decode(m.data);
            count.set(id, (count.get(id) ?? 0) + 1);
          }
        }
        return count;
      };
      const a = tally([...colsA, alsoA]);
      const b = tally([...colsB, alsoB]);
      for (const id of ids) {
        expect(a.get(id), `group A copies of ${id}`).toBe(1);
        expect(b.get(id), `group B copies of ${id}`).toBe(1);
      }
      expect(a.size).toBe(n);
      expect(b.size).toBe(n);
      expect(plain.msgs.map((m) => sc.decode(m.data))).toEqual(ids);
      // the distribution touches every member (random pick: P(a member gets none of 200) is negligible)
      for (const [i, c] of [...colsA, alsoA].entries())
        expect(c.msgs.length, `A member ${i}`).toBeGreaterThan(0);
      for (const [i, c] of [...colsB, alsoB].entries())
        expect(c.msgs.length, `B member ${i}`).toBeGreaterThan(0);
      // and is not grossly skewed to one member (expected 50 each for A, ~67 each for B)
      for (const c of [...colsA, alsoA]) expect(c.msgs.length).toBeLessThan(n * 0.6);
    });

    it("stops delivering to a member that unsubscribed; the rest of the group takes over", async () => {
      const subject = `${unique()}.q`;
      const pub = await client();
      const [m1, m2] = [await client(), await client()];
      const c1 = collector();
      const c2 = collector();
      const s1 = m1.subscribe(subject, { queue: "g", callback: c1.callback });
      m2.subscribe(subject, { queue: "g", callback: c2.callback });
      await Promise.all([m1.flush(), m2.flush()]);
      s1.unsubscribe();
      await m1.flush();
      for (let i = 0; i < 50; i++) pub.publish(subject, sc.encode(String(i)));
      await barrier(pub, m1, m2);
      expect(c1.msgs.length).toBe(0);
      expect(c2.msgs.length).toBe(50);
    });
  });

  describe("headers", () => {
    it("round-trips multi-value headers without a status line", async () => {
      const [sub, pub] = [await client(), await client()];
      expect(pub.info?.headers).toBe(true);
      const subject = `${unique()}.hdr`;
      const col = collector();
      sub.subscribe(subject, { callback: col.callback });
      await sub.flush();

      const h = headers();
      h.append("X-Multi", "one");
      h.append("X-Multi", "two");
      h.append("X-Multi", "three");
      h.set("X-Single", "value with spaces: and a colon");
      h.set("lower-case-key", "kept as is");
      h.set("X-Empty", "");
      pub.publish(subject, sc.encode("body"), { headers: h });
      // headers with an empty payload, and a plain message after them
      const h2 = headers();
      h2.set("Only", "headers");
      pub.publish(subject, Empty, { headers: h2 });
      pub.publish(subject, sc.encode("plain"));

      await col.waitFor(3);
      const [m1, m2, m3] = col.msgs as [Msg, Msg, Msg];
      expect(sc.decode(m1.data)).toBe("body");
      expect(m1.headers).toBeDefined();
      const rh = m1.headers!;
      expect(rh.hasError).toBe(false);
      expect(rh.code).toBe(0);
      expect(rh.values("X-Multi")).toEqual(["one", "two", "three"]);
      expect(rh.get("X-Single")).toBe("value with spaces: and a colon");
      expect(rh.get("lower-case-key")).toBe("kept as is");
      expect(rh.has("X-Empty")).toBe(true);
      expect(rh.get("X-Empty")).toBe("");
      expect(rh.keys().sort()).toEqual(["X-Empty", "X-Multi", "X-Single", "lower-case-key"].sort());
      expect(Array.from(rh)).toEqual(Array.from(h));

      expect(m2.data.length).toBe(0);
      expect(m2.headers?.get("Only")).toBe("headers");
      expect(sc.decode(m3.data)).toBe("plain");
      expect(m3.headers).toBeUndefined();
    });

    it("round-trips a header set with a status code and description", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.hdrstatus`;
      const col = collector();
      sub.subscribe(subject, { callback: col.callback });
      await sub.flush();
      const h = headers(409, "Conflict Here");
      h.set("K", "v");
      pub.publish(subject, sc.encode("x"), { headers: h });
      await col.waitFor(1);
      const rh = col.msgs[0]!.headers!;
      expect(rh.code).toBe(409);
      expect(rh.description).toBe("Conflict Here");
      expect(rh.hasError).toBe(true);
      expect(rh.get("K")).toBe("v");
    });

    it("delivers a large payload with headers byte-exact", async () => {
      const [sub, pub] = [await client(), await client()];
      const subject = `${unique()}.hdrbig`;
      const col = collector();
      sub.subscribe(subject, { callback: col.callback });
      await sub.flush();
      const body = new Uint8Array(randomBytes(512 * 1024));
      const h = headers();
      h.set("X-Len", String(body.length));
      pub.publish(subject, body, { headers: h });
      await col.waitFor(1);
      const m = col.msgs[0]!;
      expect(m.headers?.get("X-Len")).toBe(String(body.length));
      expect(Buffer.from(m.data).equals(Buffer.from(body))).toBe(true);
    });
  });

  describe("echo", () => {
    it("delivers a connection's own messages back to it by default", async () => {
      const nc = await client();
      const subject = `${unique()}.echo`;
      const col = collector();
      nc.subscribe(subject, { callback: col.callback });
      nc.publish(subject, sc.encode("mine"));
      await col.waitFor(1);
      expect(sc.decode(col.msgs[0]!.data)).toBe("mine");
    });

    it("with noEcho, a connection does not receive its own messages but does receive others'", async () => {
      const quiet = await client({ noEcho: true });
      const other = await client();
      const subject = `${unique()}.noecho`;
      const col = collector();
      const otherCol = collector();
      quiet.subscribe(subject, { callback: col.callback });
      other.subscribe(subject, { callback: otherCol.callback });
      await Promise.all([quiet.flush(), other.flush()]);
      quiet.publish(subject, sc.encode("from-quiet"));
      await barrier(quiet, other);
      other.publish(subject, sc.encode("from-other"));
      await barrier(other, quiet);
      expect(col.msgs.map((m) => sc.decode(m.data))).toEqual(["from-other"]);
      // the other connection (echo on) sees both, including its own
      expect(otherCol.msgs.map((m) => sc.decode(m.data))).toEqual(["from-quiet", "from-other"]);
    });
  });
});

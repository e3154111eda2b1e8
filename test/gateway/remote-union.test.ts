/**
 * The aggregated remote interest a region port can watch (RegionPort.watchRemoteInterest): one key per
 * (subject, queue) over every origin, reporting only 0->1 and 1->0, fed by RemoteInterest's snapshots,
 * deltas and forgets without flapping on unchanged entries.
 */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { Gateway } from "../../src/gateway/gateway.js";
import { RemoteInterest } from "../../src/gateway/remote-interest.js";
import type { RegionPort, RemoteInterestChange } from "../../src/region/port.js";

function watch(ri: RemoteInterest): RemoteInterestChange[] {
  const seen: RemoteInterestChange[] = [];
  ri.union.onChange((c) => seen.push(c));
  return seen;
}

const e = (subject: string, queue?: string, weight = 1) => ({ subject, queue, weight });

describe("remote interest union", () => {
  it("counts keys over origins and reports only the first and the last", () => {
    const ri = new RemoteInterest();
    const seen = watch(ri);
    ri.applySnapshot("a", 1, 1, [e("foo"), e("bar", "q", 2)]);
    ri.applySnapshot("b", 1, 1, [e("foo"), e("bar", "q", 5)]);
    expect(seen).toEqual([
      { op: "add", subject: "foo", queue: undefined },
      { op: "add", subject: "bar", queue: "q" },
    ]);
    expect(ri.union.count("foo", undefined)).toBe(2);
    // A weight change or a repeated snapshot with the same keys changes nothing.
    ri.applySnapshot("a", 1, 2, [e("foo"), e("bar", "q", 3)]);
    expect(ri.applyDelta("b", 1, 2, "update", e("bar", "q", 1))).toBe("applied");
    expect(seen).toHaveLength(2);
    // A snapshot that drops bar/q (b still wants it: no remove) and adds baz.>: one add.
    ri.applySnapshot("a", 1, 3, [e("foo"), e("baz.>")]);
    expect(seen.slice(2)).toEqual([{ op: "add", subject: "baz.>", queue: undefined }]);
    expect(ri.union.count("bar", "q")).toBe(1);
    expect(ri.applyDelta("b", 1, 3, "remove", e("bar", "q", 0))).toBe("applied");
    expect(seen.slice(3)).toEqual([{ op: "remove", subject: "bar", queue: "q" }]);
    ri.forget("a");
    expect(seen.slice(4)).toEqual([{ op: "remove", subject: "baz.>", queue: undefined }]);
    ri.forget("b");
    expect(seen.slice(5)).toEqual([{ op: "remove", subject: "foo", queue: undefined }]);
    expect(ri.union.snapshot()).toEqual([]);
  });

  it("a plain key and a queue key on one subject are distinct; deltas add and remove", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("a", 7, 0, []);
    const seen = watch(ri);
    expect(ri.applyDelta("a", 7, 1, "add", e("s"))).toBe("applied");
    expect(ri.applyDelta("a", 7, 2, "add", e("s", "g"))).toBe("applied");
    expect(ri.applyDelta("a", 7, 3, "skip", e(""))).toBe("applied");
    expect(ri.applyDelta("a", 7, 5, "remove", e("s"))).toBe("gap");
    expect(ri.union.snapshot()).toEqual([
      { subject: "s", queue: undefined },
      { subject: "s", queue: "g" },
    ]);
    expect(ri.applyDelta("a", 7, 4, "remove", e("s"))).toBe("applied");
    expect(seen.map((c) => `${c.op} ${c.subject} ${c.queue ?? "-"}`)).toEqual([
      "add s -",
      "add s g",
      "remove s -",
    ]);
  });
});

describe("gateway: the remote interest hook of the region port", () => {
  it("hands the union to a port that watches, and stops at close; a port without the hook is left alone", async () => {
    const seen: string[] = [];
    let stopped = 0;
    const port: RegionPort = {
      interestSnapshot: () => [],
      onInterest: () => () => {},
      setPublishHandler: () => {},
      inject: () => false,
      watchRemoteInterest(source) {
        for (const k of source.snapshot()) seen.push(`snap ${k.subject}`);
        const off = source.onChange((c) => seen.push(`${c.op} ${c.subject} ${c.queue ?? "-"}`));
        return () => {
          stopped++;
          off();
        };
      },
    };
    const gw = new Gateway(port, { region: "here", token: "t", logger: pino({ level: "silent" }) });
    gw.remote.applySnapshot("other", 1, 1, [e("before")]);
    await gw.start();
    gw.remote.applySnapshot("other", 1, 2, [e("before"), e("after", "q")]);
    gw.remote.forget("other");
    await gw.close();
    gw.remote.applySnapshot("other", 2, 1, [e("late")]);
    expect(seen).toEqual(["snap before", "add after q", "remove before -", "remove after q"]);
    expect(stopped).toBe(1);

    const { watchRemoteInterest: _none, ...plain } = port;
    const gw2 = new Gateway(plain, { region: "here", token: "t", logger: pino({ level: "silent" }) });
    await gw2.start();
    await gw2.close();
  });
});

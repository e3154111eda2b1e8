/**
 * Raw-socket keepalive and flow-control tests: server PINGs and the stale-connection close (ping_interval /
 * ping_max), and slow-consumer disconnection (max_pending), against every server kind, then a check that all
 * kinds produced the same transcripts.
 *
 * Expectations were captured from Debian's nats-server 2.9.10. `BH_KINDS=nats-server` restricts the kinds.
 */
import { describe, expect, it } from "vitest";
import { connectRaw, INFO_LINE, transcripts } from "../helpers/raw-client.js";
import { describeTranscriptCheck, QUIET, rawComparison } from "../helpers/raw-kit.js";
import { useServer } from "../helpers/server-hooks.js";

const { kinds, book } = rawComparison();

describe.each(kinds)("raw keepalive against %s", (kind) => {
  describe('ping_interval: "1s", ping_max: 2', () => {
    const server = useServer(kind, 'ping_interval: "1s"\nping_max: 2');

    it("a client that never answers gets 2 PINGs, then -ERR 'Stale Connection' and a close; one that answers stays", async ({
      task,
    }) => {
      const silent = await connectRaw(server().port, { autoPong: false, name: "silent" });
      const answering = await connectRaw(server().port, { autoPong: true, name: "answering" });
      silent.send(QUIET);
      answering.send(QUIET);
      // first PING after about 1 s (the interval, capped at 2 s), then one per interval: closed after ~3 s
      await Promise.all([silent.waitClosed(15_000), answering.waitForCount("PING", 3, 15_000)]);
      expect(silent.transcript()).toBe(`${INFO_LINE}PING\r\nPING\r\n-ERR 'Stale Connection'\r\n`);
      // the answering client has outlived the silent one's 3 intervals and still gets answers
      await answering.sync();
      expect(answering.isClosed).toBe(false);
      expect(answering.transcript()).toBe(`${INFO_LINE}PONG\r\n`); // answered PINGs are left out
      book.record(kind, task.name, transcripts({ silent, answering }));
    }, 30_000);
  });

  describe("max_pending: 65536", () => {
    // nats-server refuses to start when max_payload (default 1 MiB) is above max_pending, hence max_payload too
    const server = useServer(kind, "max_pending: 65536\nmax_payload: 32768");

    it("a subscriber that stops reading is disconnected (no -ERR); another subscriber and the publisher are not", async ({
      task,
    }) => {
      const PAYLOAD = 16 * 1024;
      const PER_ROUND = 2; // ≤ 2 messages (~32 KiB) pending for the reading subscriber: well under max_pending
      const ROUNDS = 512; // 16 MiB in all: several times what the kernel socket buffers of a paused reader hold
      const open = async (name: string) => {
        const c = await connectRaw(server().port, { name, keep: false });
        c.send(QUIET);
        return c;
      };
      const slow = await open("slow");
      const fast = await open("fast");
      const pub = await open("pub");
      slow.send("SUB big 1\r\n");
      fast.send("SUB big 1\r\n");
      await Promise.all([slow.sync(), fast.sync(), pub.sync()]);
      slow.pause();

      const body = Buffer.alloc(PAYLOAD, "x");
      const round = Buffer.concat(
        Array.from({ length: PER_ROUND }, () => [
          Buffer.from(`PUB big ${PAYLOAD}\r\n`),
          body,
          Buffer.from("\r\n"),
        ]).flat(),
      );
      for (let i = 1; i <= ROUNDS; i++) {
        pub.send(round);
        // pace on the reading subscriber so only the paused one can fall behind. nats-server 2.9.10 stalls
        // deliveries for its write deadline (10 s) once it has flagged the slow consumer: allow for that.
        await fast.waitForCount("MSG", i * PER_ROUND, 30_000);
      }
      await pub.sync();
      await fast.sync();
      slow.resume(); // read what the server had flushed to it before cutting it off, then the close
      await slow.waitClosed(30_000);

      const total = ROUNDS * PER_ROUND;
      expect(slow.count("MSG")).toBeLessThan(total);
      expect(slow.framesOf("-ERR")).toEqual([]); // nats-server does not tell a slow consumer why
      expect(fast.count("MSG")).toBe(total);
      expect(fast.msgs.every((m) => m.line === `MSG big 1 ${PAYLOAD}`)).toBe(true);
      expect(fast.isClosed).toBe(false);
      expect(pub.isClosed).toBe(false);
      expect(pub.framesOf("-ERR")).toEqual([]);
      book.record(
        kind,
        task.name,
        `slow closed=${slow.isClosed} errs=${slow.count("-ERR")}; fast msgs=${fast.count("MSG")}; pub open`,
      );
    }, 90_000);
  });
});

describeTranscriptCheck({ kinds, book });

/**
 * Runs a scenario in this process: a Toxiproxy (TOXIPROXY_URL or embedded), every region of the topology in
 * chaos mode, the workload, and the timeline of faults; then judges the run. Progress goes to `onEvent`;
 * the result is plain data (result.ts) for the JSON and HTML reports.
 *
 * Phases: starting (Toxiproxy, regions) -> warmup (links up, clients connected, interest converged) -> run
 * (workload and faults for `duration`) -> drain (faults still active are healed, in-flight messages and the
 * system settle, bounded by `drain`) -> report.
 */
import { performance } from "node:perf_hooks";
import { type Logger, pino } from "pino";
import { externalToxiproxyUrl, openToxiproxy, type ToxiproxyEndpoint } from "../links/index.js";
import { ScenarioCluster, ScenarioRunError } from "./cluster.js";
import { evaluate } from "./expectations.js";
import { type Fault, FaultInjector } from "./faults.js";
import type { LoadedScenario } from "./load.js";
import { Recorder } from "./recorder.js";
import type { FaultWindow, LinkResult, Recovery, ScenarioResult } from "./result.js";
import { planTimeline } from "./timeline.js";
import { Clock, Workload } from "./workload.js";

export type Phase = "starting" | "warmup" | "run" | "drain" | "report";

export type RunEvent =
  | { readonly type: "phase"; readonly phase: Phase; readonly elapsed: number }
  | { readonly type: "fault"; readonly action: "start" | "end"; readonly label: string; readonly at: number }
  | {
      readonly type: "recovered";
      readonly after: readonly string[];
      readonly at: number;
      readonly convergenceMs: number | null;
    }
  | {
      readonly type: "progress";
      /** Wall time since the run started, ms. */
      readonly elapsed: number;
      /** Workload time, ms. */
      readonly at: number;
      readonly phase: Phase;
      readonly active: readonly string[];
      readonly sent: number;
      readonly delivered: number;
      readonly outstanding: number;
      readonly duplicates: number;
      readonly requests: number;
      readonly requestsFailed: number;
      readonly linksUp: number;
      readonly links: number;
    };

export interface RunOptions {
  /** Logs of the regions, the proxy and the run (default: silent). */
  readonly logger?: Logger;
  readonly onEvent?: (e: RunEvent) => void;
  /** How often a progress event is sent, ms (default 1000). */
  readonly progressMs?: number;
  /** Environment for TOXIPROXY_URL (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Called after the drain, before anything stops: a look at the gateways' state (tests). */
  readonly inspect?: (cluster: ScenarioCluster) => void | Promise<void>;
}

/** Bounds of the set-up: a topology that cannot come up in this long will not come up. */
const WARMUP_TIMEOUT_MS = 20_000;
const POLL_MS = 25;
/** In the drain, no delivery for this long (and a healthy system) means what is missing is lost. */
const QUIET_MS = 1000;

/** A fault the Toxiproxy refused (or a region that would not restart) ends the run: it cannot be judged. */
async function guarded(what: string, act: () => Promise<void>): Promise<void> {
  try {
    await act();
  } catch (err) {
    if (err instanceof ScenarioRunError) throw err;
    throw new ScenarioRunError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

interface MutableWindow {
  id: number;
  label: string;
  kind: FaultWindow["kind"];
  start: number;
  end: number | undefined;
  recoveredAt: number | undefined;
  targets: string[];
}

function targetsOf(f: Fault): string[] {
  if (f.kind === "toxic") return f.targets.map((t) => `${t.proxy} ${t.stream}`);
  if (f.kind === "partition") return f.links.map((l) => `${l.dialer}->${l.listener}`);
  return [f.step.region];
}

export async function runScenario(loaded: LoadedScenario, options: RunOptions = {}): Promise<ScenarioResult> {
  const s = loaded.scenario;
  const logger = options.logger ?? pino({ level: "silent" });
  const emit = options.onEvent ?? (() => {});
  const startedAt = new Date();
  const wall0 = performance.now();
  const elapsed = () => performance.now() - wall0;
  let phase: Phase = "starting";
  const enter = (p: Phase) => {
    phase = p;
    emit({ type: "phase", phase: p, elapsed: elapsed() });
  };
  enter("starting");

  const clock = new Clock();
  const recorder = new Recorder({ faultMargin: s.fault_margin, interestGrace: s.interest_grace });
  const plan = planTimeline(s.timeline, loaded.topology.config);
  const windows = new Map<Fault, MutableWindow>();
  const recoveries: { at: number; after: string[]; convergenceMs: number | null; faults: MutableWindow[] }[] =
    [];
  const pending: typeof recoveries = [];
  const transitions = new Map<string, { at: number; up: boolean }[]>();

  let endpoint: ToxiproxyEndpoint | undefined;
  let cluster: ScenarioCluster | undefined;
  let workload: Workload | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  try {
    endpoint = await openToxiproxy(
      externalToxiproxyUrl(loaded.topology.config.chaos.toxiproxy_url, options.env),
      logger,
    );
    const c = await ScenarioCluster.start({
      topology: loaded.topology,
      toxiproxyUrl: endpoint.url,
      heartbeatMs: s.link_heartbeat,
      freePorts: s.free_ports,
      logger,
    });
    cluster = c;
    const injector = new FaultInjector(endpoint.client, c, logger.child({ component: "scenario" }));
    const links = c.links();
    for (const l of links) transitions.set(`${l.dialer}->${l.listener}`, []);

    const hasInterest = (region: string, subject: string, queue: string | undefined) =>
      c
        .region(region)
        ?.broker.interestSnapshot()
        .some((e) => e.subject === subject && e.queue === queue) ?? false;
    const healthy = () => c.problems().length === 0 && (workload?.ready(hasInterest) ?? true);
    const waitHealthy = async (what: string) => {
      const deadline = performance.now() + WARMUP_TIMEOUT_MS;
      while (!healthy()) {
        if (performance.now() > deadline) {
          throw new ScenarioRunError(
            `${what} within ${WARMUP_TIMEOUT_MS} ms: ${c.problems().slice(0, 5).join("; ") || "workload clients not connected or subscribed"}`,
          );
        }
        await sleep(POLL_MS);
      }
    };

    enter("warmup");
    await waitHealthy("the topology did not come up");
    const w = await Workload.connect({
      spec: s.workload,
      duration: s.duration,
      clientUrl: (r) => c.clientUrl(r),
      recorder,
      clock,
      logger,
    });
    workload = w;
    await waitHealthy("the workload's interest did not reach every region");

    // Sampling: link states, pending recoveries, progress.
    const sample = () => {
      const at = clock.now();
      for (const l of links) {
        const list = transitions.get(`${l.dialer}->${l.listener}`)!;
        const up = c.linkUp(l);
        if (list.length === 0 || list[list.length - 1]!.up !== up) list.push({ at: Math.round(at), up });
      }
      if (pending.length > 0 && healthy()) {
        for (const r of pending.splice(0)) {
          // From the same rounded instants as the fault windows, so both figures agree.
          r.convergenceMs = Math.round(at) - Math.round(r.at);
          for (const f of r.faults) f.recoveredAt ??= Math.round(at);
          emit({ type: "recovered", after: r.after, at, convergenceMs: r.convergenceMs });
        }
      }
    };
    const progress = () => {
      const k = recorder.counts();
      emit({
        type: "progress",
        elapsed: elapsed(),
        at: clock.now(),
        phase,
        active: injector.activeFaults().map((f) => f.label),
        sent: k.sent,
        delivered: k.delivered,
        outstanding: recorder.outstanding(),
        duplicates: k.duplicates,
        requests: k.requests,
        requestsFailed: k.requestsFailed,
        linksUp: links.filter((l) => c.linkUp(l)).length,
        links: links.length,
      });
    };

    const revert = async (faults: readonly Fault[], at: number) => {
      const ended: MutableWindow[] = [];
      for (const f of faults) {
        if (!injector.activeFaults().includes(f)) continue;
        emit({ type: "fault", action: "end", label: f.label, at });
        await guarded(`end ${f.label}`, () => injector.revert(f));
        const win = windows.get(f)!;
        win.end = Math.round(at);
        ended.push(win);
      }
      if (ended.length === 0) return;
      const r = { at, after: ended.map((x) => x.label), convergenceMs: null, faults: ended };
      recoveries.push(r);
      pending.push(r);
    };

    enter("run");
    w.start();
    const sampler = setInterval(sample, POLL_MS);
    progressTimer = setInterval(progress, options.progressMs ?? 1000);
    try {
      for (const ev of plan.events) {
        await sleep(ev.at - clock.now());
        const at = clock.now();
        if (ev.kind === "apply") {
          emit({ type: "fault", action: "start", label: ev.fault.label, at });
          await guarded(ev.fault.label, () => injector.apply(ev.fault));
          windows.set(ev.fault, {
            id: ev.fault.id,
            label: ev.fault.label,
            kind: ev.fault.kind,
            start: Math.round(at),
            end: undefined,
            recoveredAt: undefined,
            targets: targetsOf(ev.fault),
          });
        } else if (ev.kind === "revert") {
          await revert([ev.fault], at);
        } else if (ev.kind === "restart") {
          const kill = injector.activeFaults().find((f) => f.kind === "kill" && f.step.region === ev.region);
          if (kill !== undefined) await revert([kill], at);
        } else {
          await revert(injector.activeFaults(), at);
        }
      }
      await sleep(s.duration - clock.now());
      w.stopSenders();
      enter("drain");
      // Whatever is still broken is healed, so the end state (interest, links) can be judged.
      await revert(injector.activeFaults(), clock.now());
      const drainEnd = performance.now() + s.drain;
      while (performance.now() < drainEnd) {
        const quiet = clock.now() - Math.max(recorder.lastDeliveryAt, s.duration) >= QUIET_MS;
        const settled = recorder.outstanding() === 0 || quiet;
        if (pending.length === 0 && settled && recorder.pendingRequests() === 0 && healthy()) break;
        await sleep(POLL_MS);
      }
      await w.settle();
      sample();
    } finally {
      clearInterval(sampler);
      clearInterval(progressTimer);
    }
    progress();
    enter("report");

    const endMs = Math.round(clock.now());
    const problems = c.problems();
    await options.inspect?.(c);
    // A fault affects messages until the system has recovered from it; one it never recovered from, to the end.
    const impact = [...windows.values()].map((x) => ({ start: x.start, end: x.recoveredAt ?? endMs }));
    const analysis = recorder.analyze(impact, s.bucket, endMs);
    const recoveryList: Recovery[] = recoveries.map((r) => ({
      at: Math.round(r.at),
      after: r.after,
      convergenceMs: r.convergenceMs,
    }));
    const interest = { consistent: problems.length === 0, problems };
    const expectations = evaluate(s.expect, { ...analysis, recoveries: recoveryList, interest });
    const linkResults: LinkResult[] = links.map((l) => ({
      link: `${l.dialer}->${l.listener}`,
      established: c.established(l),
      upAtEnd: c.linkUp(l),
      transitions: transitions.get(`${l.dialer}->${l.listener}`)!,
    }));
    return {
      version: 1,
      scenario: {
        name: loaded.name,
        description: s.description,
        file: loaded.file,
        topology: loaded.topologyFile,
        durationMs: s.duration,
        bucketMs: s.bucket,
        faultMarginMs: s.fault_margin,
      },
      startedAt: startedAt.toISOString(),
      wallMs: Math.round(elapsed()),
      endMs,
      toxiproxy: { url: endpoint.url, embedded: endpoint.embedded },
      passed: expectations.every((e) => e.passed),
      expectations,
      ...analysis,
      faults: [...windows.values()].map((x) => ({
        ...x,
        convergenceMs: x.recoveredAt === undefined || x.end === undefined ? undefined : x.recoveredAt - x.end,
      })),
      recoveries: recoveryList,
      links: linkResults,
      interest,
    };
  } finally {
    clearInterval(progressTimer);
    await workload?.close();
    await cluster?.close();
    await endpoint?.close();
  }
}

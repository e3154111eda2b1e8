/** The JSON result of a scenario run (result.json), also what the HTML report is drawn from. */
import type { Analysis } from "./recorder.js";

export interface ExpectationResult {
  /** The key in the scenario's `expect` section, e.g. `max_loss` or `latency.p99`. */
  readonly name: string;
  readonly limit: string;
  readonly actual: string;
  readonly passed: boolean;
}

export interface FaultWindow {
  readonly id: number;
  readonly label: string;
  readonly kind: "toxic" | "partition" | "kill";
  /** ms from the workload start */
  readonly start: number;
  /** When the fault was undone (undefined: never, which a run does not leave). */
  readonly end: number | undefined;
  /** When the system was healthy again after the fault ended: links up, interest converged everywhere. */
  readonly recoveredAt: number | undefined;
  /** recoveredAt - end */
  readonly convergenceMs: number | undefined;
  /** Toxics: the proxies and streams. Partitions: the proxies disabled. Kills: the region. */
  readonly targets: readonly string[];
}

export interface Recovery {
  /** When faults ended (a duration ran out, a restart, a heal, the end of the workload). */
  readonly at: number;
  readonly after: readonly string[];
  /** Until links were up and interest converged everywhere; null when that did not happen before the end. */
  readonly convergenceMs: number | null;
}

export interface LinkResult {
  /** The proxy name, `<dialer>-><listener>`. */
  readonly link: string;
  /** Links the dialer's (current) gateway established over the run; more than 1 means it reconnected. */
  readonly established: number;
  readonly upAtEnd: boolean;
  /** Up/down changes as sampled during the run (ms from the workload start). */
  readonly transitions: readonly { readonly at: number; readonly up: boolean }[];
}

export interface ScenarioResult extends Analysis {
  readonly version: 1;
  readonly scenario: {
    readonly name: string;
    readonly description: string | undefined;
    readonly file: string | undefined;
    readonly topology: string;
    readonly durationMs: number;
    readonly bucketMs: number;
    readonly faultMarginMs: number;
  };
  readonly startedAt: string;
  /** Wall time of the whole run, set-up and drain included. */
  readonly wallMs: number;
  /** Workload time when the run ended (drain included); the charts' x axis. */
  readonly endMs: number;
  readonly toxiproxy: { readonly url: string; readonly embedded: boolean };
  readonly passed: boolean;
  readonly expectations: readonly ExpectationResult[];
  readonly faults: readonly FaultWindow[];
  readonly recoveries: readonly Recovery[];
  readonly links: readonly LinkResult[];
  /** Gateway state at the end: what keeps regions from agreeing on interest (empty = consistent). */
  readonly interest: { readonly consistent: boolean; readonly problems: readonly string[] };
}

/**
 * A scenario's timeline as a list of timed events: a fault starts, a fault ends (its duration is over), a
 * killed region restarts, everything heals. At one instant endings come before starts, so a fault can follow
 * another back to back.
 */
import type { BridgeheadConfig } from "../../config/schema.js";
import { type Fault, faultOf } from "./faults.js";
import type { Step } from "./schema.js";

export type TimelineEvent =
  | { readonly at: number; readonly kind: "apply"; readonly fault: Fault }
  | { readonly at: number; readonly kind: "revert"; readonly fault: Fault }
  /** Ends the active kill of `region`. */
  | { readonly at: number; readonly kind: "restart"; readonly region: string }
  /** Ends every active fault. */
  | { readonly at: number; readonly kind: "heal" };

export interface Plan {
  readonly faults: readonly Fault[];
  readonly events: readonly TimelineEvent[];
}

export function planTimeline(steps: readonly Step[], cfg: BridgeheadConfig): Plan {
  const faults: Fault[] = [];
  const events: { ev: TimelineEvent; order: number }[] = [];
  steps.forEach((step, i) => {
    switch (step.action) {
      case "restart":
        events.push({ ev: { at: step.at, kind: "restart", region: step.region }, order: 0 });
        return;
      case "heal":
        events.push({ ev: { at: step.at, kind: "heal" }, order: 0 });
        return;
      default: {
        const fault = faultOf(step, i, cfg);
        faults.push(fault);
        events.push({ ev: { at: step.at, kind: "apply", fault }, order: 1 });
        if (step.duration !== undefined) {
          events.push({ ev: { at: step.at + step.duration, kind: "revert", fault }, order: 0 });
        }
      }
    }
  });
  // Array.prototype.sort is stable: same time and rank keep file order.
  events.sort((a, b) => a.ev.at - b.ev.at || a.order - b.order);
  return { faults, events: events.map((e) => e.ev) };
}

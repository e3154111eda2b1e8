/**
 * Scenario checks that need the topology: regions and links exist, directions name a link's own regions,
 * faults happen while the workload runs, and kills and restarts alternate per region. Each problem carries
 * the key path it is about; load.ts turns paths into line:column.
 */

import type { BridgeheadConfig } from "../../config/schema.js";
import type { PathProblem } from "../../config/validate.js";
import type { Scenario } from "./schema.js";

/** The configured link between two regions (either order), as `[dialer, listener]`. */
export function findLink(cfg: BridgeheadConfig, a: string, b: string): readonly [string, string] | undefined {
  const l = cfg.links.find(
    (x) => (x.between[0] === a && x.between[1] === b) || (x.between[0] === b && x.between[1] === a),
  );
  return l?.between;
}

export function checkScenario(s: Scenario, topology: BridgeheadConfig): PathProblem[] {
  const problems: PathProblem[] = [];
  const regions = topology.regions.map((r) => r.name);
  const links = topology.links.map((l) => `${l.between[0]} <-> ${l.between[1]}`).join(", ") || "none";
  const knownRegion = (name: string, path: (string | number)[]) => {
    if (!regions.includes(name)) {
      problems.push({ path, message: `unknown region '${name}' (topology regions: ${regions.join(", ")})` });
      return false;
    }
    return true;
  };
  const knownLink = (pair: readonly [string, string], path: (string | number)[]) => {
    if (!knownRegion(pair[0], [...path, 0]) || !knownRegion(pair[1], [...path, 1])) return false;
    if (findLink(topology, pair[0], pair[1]) === undefined) {
      problems.push({
        path,
        message: `no link between ${pair[0]} and ${pair[1]} in the topology (links: ${links})`,
      });
      return false;
    }
    return true;
  };

  const w = s.workload;
  for (const [key, list] of [
    ["subscribers", w.subscribers],
    ["queue_workers", w.queue_workers],
    ["publishers", w.publishers],
    ["requesters", w.requesters],
  ] as const) {
    list.forEach((c, i) => {
      knownRegion(c.region, ["workload", key, i, "region"]);
      if (c.from !== undefined && c.until !== undefined && c.until <= c.from) {
        problems.push({ path: ["workload", key, i, "until"], message: "until must be later than from" });
      }
    });
  }
  if (w.publishers.length + w.requesters.length === 0) {
    problems.push({ path: ["workload"], message: "a workload needs at least one publisher or requester" });
  }

  const killed = new Set<string>();
  const order = s.timeline.map((step, i) => ({ step, i })).sort((a, b) => a.step.at - b.step.at || a.i - b.i);
  // Kills with a duration end on their own; track them so a second kill of a dead region is caught.
  const revivals: { at: number; region: string }[] = [];
  for (const { step, i } of order) {
    const path = ["timeline", i];
    for (const r of revivals.filter((x) => x.at <= step.at)) killed.delete(r.region);
    if (step.at > s.duration) {
      problems.push({
        path: [...path, "at"],
        message: `the fault starts after the workload ends (duration ${s.duration} ms)`,
      });
    }
    switch (step.action) {
      case "toxic": {
        if (!knownLink(step.link, [...path, "link"])) break;
        if (step.direction !== "both") {
          const [from, to] = step.direction.split("->");
          const ends = [step.link[0], step.link[1]];
          if (!ends.includes(from!) || !ends.includes(to!) || from === to) {
            problems.push({
              path: [...path, "direction"],
              message: `direction must go between the link's regions: ${ends[0]}->${ends[1]}, ${ends[1]}->${ends[0]} or both`,
            });
          }
        }
        break;
      }
      case "partition":
        if (step.region !== undefined) knownRegion(step.region, [...path, "region"]);
        if (step.link !== undefined) knownLink(step.link, [...path, "link"]);
        break;
      case "kill":
        if (!knownRegion(step.region, [...path, "region"])) break;
        if (killed.has(step.region)) {
          problems.push({
            path: [...path, "region"],
            message: `region '${step.region}' is already killed then`,
          });
        }
        killed.add(step.region);
        if (step.duration !== undefined) revivals.push({ at: step.at + step.duration, region: step.region });
        break;
      case "restart":
        if (!knownRegion(step.region, [...path, "region"])) break;
        if (!killed.has(step.region)) {
          problems.push({
            path: [...path, "region"],
            message: `region '${step.region}' is not killed then (restart follows a kill without a duration)`,
          });
        }
        killed.delete(step.region);
        break;
      case "heal":
        killed.clear();
        break;
    }
  }
  return problems;
}

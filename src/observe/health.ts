/**
 * Readiness of one region (/healthz): ready when every configured link of the region is up, no link waits
 * for an interest snapshot it asked for (a gap), and the interest of every region reachable from it has
 * been applied (a snapshot received), i.e. a message published here reaches every region it can reach.
 * A region cut off from some other region by a link elsewhere in the mesh is still ready: it cannot do
 * better, and its own links are fine.
 */
import type { RegionContext } from "./context.js";

export interface Health {
  readonly ok: boolean;
  /** Empty when ok; else one sentence per thing not ready. */
  readonly reasons: readonly string[];
}

export function health(ctx: RegionContext): Health {
  const gw = ctx.region.gateway;
  const reasons: string[] = [];
  for (const peer of [...new Set(ctx.configuredPeers())].sort()) {
    const v = gw.linkView(peer);
    const state = v?.state ?? "down";
    if (state === "up") {
      // Up, but an interest gap was found on it and the snapshot asked for has not come back yet.
      if (v?.interestAwaitedSince !== undefined)
        reasons.push(
          `link to ${peer} is waiting for interest (a snapshot asked for ${Date.now() - v.interestAwaitedSince} ms ago)`,
        );
      continue;
    }
    let why = `link to ${peer} is ${state}`;
    if (v === undefined) why += ": never established";
    else if (state !== "syncing" && v.lastLoss !== undefined) why += `: ${v.lastLoss.cause}`;
    if ((v?.dialAttempts ?? 0) > 1) why += ` (${v!.dialAttempts} dial attempts)`;
    reasons.push(why);
  }
  for (const origin of gw.topology.reachableRegions().sort()) {
    if (gw.appliedSeq(origin) !== undefined) continue;
    reasons.push(
      `interest of ${origin} not applied yet (reachable via ${gw.topology.nextHop(origin) ?? "?"})`,
    );
  }
  return { ok: reasons.length === 0, reasons };
}

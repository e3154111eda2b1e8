import { BridgeheadError } from "../../util/errors.js";

/** Chaos mode could not reach its Toxiproxy, or the Toxiproxy refused a request. */
export class ChaosError extends BridgeheadError {
  override readonly name = "ChaosError";
}

/** The message of an error from toxiproxy-node-client (or anything else thrown), for a ChaosError. */
export function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Base class of every error Bridgehead throws on purpose, so callers can tell ours from bugs. */
export class BridgeheadError extends Error {
  override readonly name: string = "BridgeheadError";
}

export {
  LeafConfigError,
  LeafConnection,
  type LeafConnectionOptions,
  type LeafEndpoint,
  type LeafState,
  parseLeafUrl,
} from "./connection.js";
export { HubInterest, isInternalSubject } from "./hub-interest.js";
export { type HubInfo, type HubOp, LeafParser, LeafProtocolError } from "./parser.js";
export { type LeafnodePortOptions, type LeafnodePortStats, LeafnodeRegionPort } from "./port.js";

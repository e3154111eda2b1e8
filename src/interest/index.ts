export { type InterestChange, type InterestEntry, InterestSet } from "./interest-set.js";
export {
  assertValidSubject,
  InvalidSubjectError,
  isValidLiteralSubject,
  isValidSubject,
  patternCovers,
  patternsIntersect,
  subjectHasWildcard,
  subjectMatches,
} from "./subject.js";
export { type MatchResult, Sublist, type SublistStats, type SubscriptionLike } from "./sublist.js";

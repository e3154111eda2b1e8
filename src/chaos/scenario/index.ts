/** Chaos scenarios: load a scenario file, run it, judge it, report it (docs/chaos.md, "Scenarios"). */
export { type LinkRef, ScenarioCluster, ScenarioRunError } from "./cluster.js";
export { renderHtml } from "./html.js";
export { type LoadedScenario, loadScenario, loadScenarioFile, ScenarioError } from "./load.js";
export { type WrittenReport, writeReport } from "./report.js";
export type { ExpectationResult, FaultWindow, LinkResult, Recovery, ScenarioResult } from "./result.js";
export { type Phase, type RunEvent, type RunOptions, runScenario } from "./runner.js";
export type { Scenario } from "./schema.js";

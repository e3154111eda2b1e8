/** Write a run's result.json and report.html into a directory. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderHtml } from "./html.js";
import type { ScenarioResult } from "./result.js";

export interface WrittenReport {
  readonly json: string;
  readonly html: string;
}

export function writeReport(result: ScenarioResult, dir: string): WrittenReport {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, "result.json");
  const html = join(dir, "report.html");
  writeFileSync(json, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(html, renderHtml(result));
  return { json, html };
}

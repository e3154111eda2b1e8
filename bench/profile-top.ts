/**
 * `node dist/bench/profile-top.js <file.cpuprofile>... [--top N]`: the functions with the most self time in
 * V8 CPU profiles (as written by `npm run bench -- --cpu-prof` for the region processes), one table per
 * file. Self time is the sum of the sample intervals whose innermost frame is that function; idle time
 * (`(idle)`) is left out of the percentages and shown on its own line.
 */
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { basename, dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const sourceMaps = new Map<string, SourceMap | null>();

/** The compiled file's source map (`<file>.map`, as tsc writes it), if there is one. */
function sourceMapOf(path: string): SourceMap | null {
  let m = sourceMaps.get(path);
  if (m === undefined) {
    m = null;
    if (existsSync(`${path}.map`)) {
      try {
        m = new SourceMap(JSON.parse(readFileSync(`${path}.map`, "utf8")));
      } catch {
        m = null;
      }
    }
    sourceMaps.set(path, m);
  }
  return m;
}

/** `src/x.ts:LINE` for compiled project code (through its source map), else the file and line as profiled. */
function where(url: string, line: number, column: number): string {
  if (url === "") return "";
  if (!url.startsWith("file://")) return `${url}:${line + 1}`;
  const path = fileURLToPath(url);
  const entry = sourceMapOf(path)?.findEntry(line, column);
  if (entry && "originalSource" in entry) {
    const src = entry.originalSource.startsWith("file://")
      ? fileURLToPath(entry.originalSource)
      : resolve(dirname(path), entry.originalSource);
    return `${relative(process.cwd(), src)}:${entry.originalLine + 1}`;
  }
  return `${relative(process.cwd(), path)}:${line + 1}`;
}

function top(file: string, n: number): string {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!);
    const dt = p.timeDeltas[i] ?? 0;
    if (!node) continue;
    const f = node.callFrame;
    if (f.functionName === "(idle)") {
      idle += dt;
      continue;
    }
    total += dt;
    const key = `${f.functionName || "(anonymous)"}\t${where(f.url, f.lineNumber, f.columnNumber)}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
  const lines = [
    `${basename(file)}: ${(total / 1000).toFixed(0)} ms busy, ${(idle / 1000).toFixed(0)} ms idle`,
    "| self ms | self % of busy | function | where |",
    "| ---: | ---: | --- | --- |",
    ...rows.map(([key, us]) => {
      const [fn, loc] = key.split("\t");
      return `| ${(us / 1000).toFixed(1)} | ${((us / Math.max(1, total)) * 100).toFixed(1)}% | \`${fn}\` | ${loc || "(native)"} |`;
    }),
  ];
  return lines.join("\n");
}

const args = process.argv.slice(2);
let n = 15;
const files: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "--top") n = Number(args[++i]);
  else files.push(a);
}
if (files.length === 0 || !Number.isInteger(n) || n < 1) {
  process.stderr.write("usage: node dist/bench/profile-top.js <file.cpuprofile>... [--top N]\n");
  process.exit(2);
}
process.stdout.write(`${files.map((f) => top(f, n)).join("\n\n")}\n`);

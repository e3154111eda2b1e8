/**
 * The `bridgehead` command line. `bin/bridgehead.js` calls {@link main} with `process.argv`.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { normalizeBrokerArgs, registerBrokerCommand } from "./broker-command.js";
import { registerChaosCommand } from "./chaos-command.js";
import { registerSystemCommands } from "./system-commands.js";
import { registerToxiproxyCommand } from "./toxiproxy-command.js";

/**
 * The version in Bridgehead's package.json, found by walking up from this module (works from src/cli/ and
 * from dist/src/cli/).
 */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, "utf8")) as { name?: unknown; version?: unknown };
        if (pkg.name === "bridgehead" && typeof pkg.version === "string") return pkg.version;
      } catch {
        // not ours or unreadable: keep looking
      }
    }
    const parent = resolve(dir, "..");
    if (parent === dir) return "0.0.0-unknown";
    dir = parent;
  }
}

export function buildProgram(version: string): Command {
  const program = new Command("bridgehead")
    .description("Bridgehead: a multi-region messaging gateway speaking the NATS client protocol")
    .version(`bridgehead v${version}`, "-v, --version", "print the version and exit")
    .exitOverride()
    // Program options only before the subcommand, so `broker -v` is the broker's own --version.
    .enablePositionalOptions()
    .showHelpAfterError("(add --help for usage)");
  registerBrokerCommand(program, version);
  registerSystemCommands(program);
  registerChaosCommand(program);
  registerToxiproxyCommand(program);
  return program;
}

/**
 * Run the CLI. Exit codes follow commander: 0 for --help/--version, 1 for usage errors; the broker sets 0 after
 * a clean shutdown and 1 for configuration or start-up errors (through `process.exitCode`).
 */
export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram(packageVersion());
  const args = [...argv.slice(0, 2), ...normalizeBrokerArgs(argv.slice(2))];
  try {
    await program.parseAsync(args, { from: "node" });
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed the help, version or error message.
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}

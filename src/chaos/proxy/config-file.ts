/**
 * toxiproxy-server's `-config file.json`: proxies created at start-up from a file in the `/populate` format.
 */
import { readFile } from "node:fs/promises";
import { decodePopulate } from "./bodies.js";
import { asApiError } from "./errors.js";
import type { ProxyRegistry } from "./registry.js";

/** The file could not be read or applied; the message says which and why. */
export class PopulateFileError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = "PopulateFileError";
  }
}

/** Apply a populate file to a registry; resolves with the number of proxies it now describes. */
export async function loadPopulateFile(registry: ProxyRegistry, path: string): Promise<number> {
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch (err) {
    throw new PopulateFileError(path, `cannot read ${path}: ${(err as Error).message}`);
  }
  let result: Awaited<ReturnType<ProxyRegistry["populate"]>>;
  try {
    result = await registry.populate(decodePopulate(body));
  } catch (err) {
    throw new PopulateFileError(path, `${path}: ${asApiError(err).message}`);
  }
  if (result.error) throw new PopulateFileError(path, `${path}: ${result.error.message}`);
  return result.proxies.length;
}

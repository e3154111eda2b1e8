/**
 * vitest hooks around `startServer`, kept apart from servers.ts because the benchmarks import that file
 * outside vitest.
 */
import { afterAll, beforeAll } from "vitest";
import { type RunningServer, type ServerKind, startServer } from "./servers.js";

/**
 * Starts one server of `kind` (with `conf` appended to its config) for the enclosing describe block: started
 * in `beforeAll`, stopped in `afterAll`. The returned getter throws when the server did not start.
 */
export function useServer(kind: ServerKind, conf = ""): () => RunningServer {
  let server: RunningServer | undefined;
  beforeAll(async () => {
    server = await startServer(kind, conf);
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error(`${kind} server did not start`);
    return server;
  };
}

/**
 * API errors with Toxiproxy's texts and status codes. Any other failure (a socket error) is answered 500 with
 * its own text, as Toxiproxy does with Go errors.
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export const badRequestBody = (detail: string): ApiError => new ApiError(`bad request body: ${detail}`, 400);
export const missingField = (field: string): ApiError =>
  new ApiError(`missing required field: ${field}`, 400);
export const proxyNotFound = (): ApiError => new ApiError("proxy not found", 404);
export const proxyAlreadyExists = (): ApiError => new ApiError("proxy already exists", 409);
export const invalidStream = (): ApiError =>
  new ApiError("stream was invalid, can be either upstream or downstream", 400);
export const invalidToxicType = (): ApiError => new ApiError("invalid toxic type", 400);
export const toxicAlreadyExists = (): ApiError => new ApiError("toxic already exists", 409);
export const toxicNotFound = (): ApiError => new ApiError("toxic not found", 404);

/** Thrown by `Proxy.start()` on a running proxy; `/reset` ignores it, like Toxiproxy. */
export class ProxyAlreadyStarted extends Error {
  constructor() {
    super("Proxy already started");
  }
}

/** Any error as an API error: ours keep their status, everything else is 500 with its message. */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(err instanceof Error ? err.message : String(err), 500);
}

/** Runs tasks one at a time, in call order (the Go code's mutexes). */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

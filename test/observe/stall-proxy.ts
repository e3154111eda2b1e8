/**
 * A TCP proxy on 127.0.0.1:0 whose client-to-upstream direction can be stalled: while paused it stops
 * reading from its clients, so their kernel buffers fill and the sender's WebSocket queues what it sends.
 * That is a link whose path does not drain, the thing outbox metrics and /explainz must show.
 * The upstream is set after start (the region behind it may listen on port 0); connections arriving
 * before that are dropped, and the dialer retries.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

export class StallProxy {
  target: { host: string; port: number } | undefined;
  private paused = false;
  private readonly clients = new Set<Socket>();
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<StallProxy> {
    const server = createServer();
    const proxy = new StallProxy(server);
    server.on("connection", (c) => proxy.accept(c));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get port(): number {
    const a = this.server.address();
    if (a === null || typeof a === "string") throw new Error("proxy not listening");
    return a.port;
  }

  /** Stop reading from clients: what they send piles up in their own buffers. */
  pause(): void {
    this.paused = true;
    for (const c of this.clients) c.pause();
  }

  resume(): void {
    this.paused = false;
    for (const c of this.clients) c.resume();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const t = this.target;
    if (t === undefined) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(t.port, t.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        this.sockets.delete(s);
        this.clients.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    this.clients.add(client);
    // Hand-wired instead of pipe(): pipe() resumes its source on drain, which would undo pause().
    client.on("data", (d: Buffer) => upstream.write(d));
    upstream.on("data", (d: Buffer) => client.write(d));
    if (this.paused) client.pause();
  }
}

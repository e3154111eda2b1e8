import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { confToBrokerOptions, loadNatsConfFile, parseGoDuration } from "../../src/broker/conf-to-options.js";
import {
  type ConfObject,
  type ConfValue,
  NatsConfError,
  type ParsedNatsConf,
  parseNatsConf,
  parseNatsConfFile,
} from "../../src/broker/nats-conf.js";
import { DEFAULT_BROKER_OPTIONS } from "../../src/broker/options.js";
import { natsServerAvailable } from "../helpers/servers.js";

const parse = (text: string, env: Record<string, string> = {}): ParsedNatsConf =>
  parseNatsConf(text, { file: "server.conf", env });
const tree = (text: string, env: Record<string, string> = {}): ConfObject => parse(text, env).tree;
const convert = (text: string, env: Record<string, string> = {}) => confToBrokerOptions(parse(text, env));
const options = (text: string) => convert(text).options;

function errorOf(fn: () => unknown): NatsConfError {
  try {
    fn();
  } catch (err) {
    if (err instanceof NatsConfError) return err;
    throw err;
  }
  throw new Error("expected a NatsConfError");
}
const parseError = (text: string, env: Record<string, string> = {}) => errorOf(() => parse(text, env));
const convertError = (text: string) => errorOf(() => convert(text));

const tmpDirs: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), "bh-conf-"));
  tmpDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe("nats-conf syntax", () => {
  it("accepts ':', '=' and whitespace as key separators", () => {
    expect(tree("a: 1\nb = 2\nc 3\nd:4\ne=5\nf   :   6\ng\t7")).toEqual({
      a: 1,
      b: 2,
      c: 3,
      d: 4,
      e: 5,
      f: 6,
      g: 7,
    });
  });

  it("accepts ';' and ',' as entry terminators", () => {
    expect(tree("a: 1; b: 2\nc: 3, d: 4;\ne: x;")).toEqual({ a: 1, b: 2, c: 3, d: 4, e: "x" });
  });

  it("parses nested blocks, with or without a separator, braces on the next line and trailing commas", () => {
    const text = [
      "outer {",
      "  inner: { x: 1, y: two, }",
      "  other = { z: true }",
      "  empty {}",
      "}",
      "allman",
      "{",
      "  k: v",
      "}",
      "tight{ k: 1 }",
    ].join("\n");
    expect(tree(text)).toEqual({
      outer: { inner: { x: 1, y: "two" }, other: { z: true }, empty: {} },
      allman: { k: "v" },
      tight: { k: 1 },
    });
  });

  it("parses arrays separated by commas and/or new lines, with comments, nesting and a trailing comma", () => {
    const text = [
      "a: [1, 2, 3]",
      "b: [",
      "  one # first",
      "  two, three",
      "  // a comment line",
      "  four,",
      "]",
      "c: [ [1, 2], [], { k: v } ]",
      "d: []",
      "e: [",
      '  { name: A, url: "nats://127.0.0.1:1" }',
      "  { name: B, url: 'nats://127.0.0.1:2' }",
      "]",
    ].join("\n");
    expect(tree(text)).toEqual({
      a: [1, 2, 3],
      b: ["one", "two", "three", "four"],
      c: [[1, 2], [], { k: "v" }],
      d: [],
      e: [
        { name: "A", url: "nats://127.0.0.1:1" },
        { name: "B", url: "nats://127.0.0.1:2" },
      ],
    });
  });

  it("skips '#' and '//' comments everywhere", () => {
    const text = [
      "# header",
      "// another header",
      "a: 1 # trailing",
      "b: 2 // trailing",
      "c { # after brace",
      "  # inside",
      "  d: 3 // inside",
      "}",
      "   # indented",
    ].join("\n");
    expect(tree(text)).toEqual({ a: 1, b: 2, c: { d: 3 } });
  });

  it("keeps '#' and '/' that are part of a bare value", () => {
    expect(tree("a: x#y\nb: /var/run/x\nc: nats://user:pass@host:4222/path?q=1")).toEqual({
      a: "x#y",
      b: "/var/run/x",
      c: "nats://user:pass@host:4222/path?q=1",
    });
  });

  it("decodes double-quoted escapes and keeps single-quoted text raw", () => {
    const t = tree(String.raw`a: "tab\there\nnl \"q\" back\\slash \x41\xe2\x82\xac"
b: 'raw \n \x41 "double"'
c: "multi
line"
d: ""
e: "with # and // and , ; } ]"`);
    expect(t).toEqual({
      a: 'tab\there\nnl "q" back\\slash A€',
      b: 'raw \\n \\x41 "double"',
      c: "multi\nline",
      d: "",
      e: "with # and // and , ; } ]",
    });
  });

  it("decodes escapes in bare strings too, as nats-server does", () => {
    expect(tree(String.raw`a: x\ty`)).toEqual({ a: "x\ty" });
  });

  it("accepts quoted keys", () => {
    expect(tree(`"my key": 1\n'other key' = 2\n"port": 3`)).toEqual({ "my key": 1, "other key": 2, port: 3 });
  });

  it("parses integers, negatives, floats and leading zeros", () => {
    expect(tree("a: 0\nb: 4222\nc: -1\nd: 1.5\ne: -0.25\nf: 007\ng: 9007199254740991")).toEqual({
      a: 0,
      b: 4222,
      c: -1,
      d: 1.5,
      e: -0.25,
      f: 7,
      g: 9007199254740991,
    });
  });

  it("applies size suffixes as nats-server: K/M/G/T are powers of 1000, KB/Ki/KiB powers of 1024", () => {
    const t = tree(
      [
        "k1: 1K",
        "k2: 2k",
        "kb: 64KB",
        "kb2: 1kb",
        "ki: 1Ki",
        "kib: 1KiB",
        "m: 1M",
        "mb: 1MB",
        "mb2: 8mb",
        "g: 1G",
        "gb: 1GB",
        "t: 1T",
        "tb: 1TB",
        "neg: -1k",
      ].join("\n"),
    );
    expect(t).toEqual({
      k1: 1000,
      k2: 2000,
      kb: 65536,
      kb2: 1024,
      ki: 1024,
      kib: 1024,
      m: 1_000_000,
      mb: 1_048_576,
      mb2: 8 * 1_048_576,
      g: 1e9,
      gb: 1024 ** 3,
      t: 1e12,
      tb: 1024 ** 4,
      neg: -1000,
    });
  });

  it("reads digit runs followed by other characters as strings (durations, addresses)", () => {
    expect(
      tree(
        [
          "a: 2s",
          "b: 500ms",
          "c: 2x30s",
          "d: 127.0.0.1:4222",
          "e: 127.0.0.1:-1",
          "f: 0.0.0.0:4222",
          "g: 1.2.3",
          "h: 4222:5",
          "i: 0x10",
          "j: 10abc",
          "k: 1kx",
          "l: localhost:4222",
          "m: 10.0.0.1",
        ].join("\n"),
      ),
    ).toEqual({
      a: "2s",
      b: "500ms",
      c: "2x30s",
      d: "127.0.0.1:4222",
      e: "127.0.0.1:-1",
      f: "0.0.0.0:4222",
      g: "1.2.3",
      h: "4222:5",
      i: "0x10",
      j: "10abc",
      k: "1kx",
      l: "localhost:4222",
      m: "10.0.0.1",
    });
  });

  it("reads booleans true/false/yes/no/on/off in any case; quoted ones stay strings", () => {
    expect(tree('a: true\nb: FALSE\nc: yes\nd: No\ne: on\nf: off\ng: "true"\nh: truex')).toEqual({
      a: true,
      b: false,
      c: true,
      d: false,
      e: true,
      f: false,
      g: "true",
      h: "truex",
    });
  });

  it("keeps ISO 8601 dates as strings", () => {
    expect(tree("a: 2016-05-04T18:53:41Z")).toEqual({ a: "2016-05-04T18:53:41Z" });
  });

  it("reads ( ... ) text blocks up to a ')' alone on a line", () => {
    expect(tree("a: (\nline 1\n  (nested) line 2\n)\nb: 1")).toEqual({
      a: "\nline 1\n  (nested) line 2",
      b: 1,
    });
  });

  it("accepts a configuration wrapped in braces (JSON style)", () => {
    expect(tree('{ "port": 4222, "http_port": 8222, "authorization": { "token": "t" } }')).toEqual({
      port: 4222,
      http_port: 8222,
      authorization: { token: "t" },
    });
  });

  it("handles CRLF and CR line endings, a BOM and an empty file", () => {
    expect(tree("\ufeffa: 1\r\nb: [1\r\n2]\rc: 3\r\n")).toEqual({ a: 1, b: [1, 2], c: 3 });
    expect(tree("")).toEqual({});
    expect(tree("   \n# only a comment\n")).toEqual({});
  });

  it("resolves $variables from enclosing blocks, then the environment", () => {
    const text = [
      "PASS: s3cret",
      "limit: 1MB",
      "authorization {",
      "  inner: local",
      "  user: $inner",
      "  password: $PASS",
      "  token2: $ENV_TOKEN",
      "}",
      "max_payload: $limit",
      "list: [$ENV_NUM, $ENV_BLOCK]",
    ].join("\n");
    const t = tree(text, { ENV_TOKEN: "from-env", ENV_NUM: "42", ENV_BLOCK: "{ a: 1 }" });
    expect(t["authorization"]).toEqual({
      inner: "local",
      user: "local",
      password: "s3cret",
      token2: "from-env",
    });
    expect(t["max_payload"]).toBe(1048576);
    expect(t["list"]).toEqual([42, { a: 1 }]);
  });

  it("keeps bcrypt hashes ($2a$...) as strings rather than variables", () => {
    expect(tree("p: $2a$11$abcdefghijklmnop")).toEqual({ p: "$2a$11$abcdefghijklmnop" });
  });

  it("lets the last of duplicate keys win, with a warning", () => {
    const p = parse("port: 1\nport: 2");
    expect(p.tree).toEqual({ port: 2 });
    expect(p.warnings).toEqual([
      "server.conf:2:1: 'port' is set again; this value replaces the earlier one (first set at 1:1)",
    ]);
  });

  it("stores keys such as __proto__ as plain entries", () => {
    const t = tree("__proto__: { polluted: true }\nconstructor: 1");
    expect(Object.keys(t)).toEqual(["__proto__", "constructor"]);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.getPrototypeOf(t)).toBe(Object.prototype);
  });

  it("records the position of every key and value", () => {
    const p = parse("port: 4222\nauth {\n  users: [\n    { user: a }\n    x\n  ]\n}\nlimit = 1MB");
    expect(p.info(p.tree, "port")).toEqual({
      key: { file: "server.conf", line: 1, column: 1 },
      value: { file: "server.conf", line: 1, column: 7 },
      raw: "4222",
    });
    expect(p.infoAt(["auth", "users"])?.key).toEqual({ file: "server.conf", line: 3, column: 3 });
    expect(p.infoAt(["auth", "users", 0])).toEqual({ value: { file: "server.conf", line: 4, column: 5 } });
    expect(p.infoAt(["auth", "users", 0, "user"])?.value).toEqual({
      file: "server.conf",
      line: 4,
      column: 13,
    });
    expect(p.infoAt(["auth", "users", 1])?.value).toEqual({ file: "server.conf", line: 5, column: 5 });
    expect(p.info(p.tree, "limit")?.raw).toBe("1MB");
    expect(p.infoAt(["nope"])).toBeUndefined();
  });

  it("counts columns in code points", () => {
    expect(parseError('ä: "€" x').column).toBe(8);
    expect(parseError('a: "😀" x').column).toBe(8);
  });

  it("reads include files relative to the including file", () => {
    const dir = tmp();
    writeFileSync(
      join(dir, "main.conf"),
      "port: 1\ninclude ./auth.conf\nhttp_port: 2\nnested { include 'sub/inner.conf' }\n",
    );
    writeFileSync(join(dir, "auth.conf"), "authorization { token: abc }\n");
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "sub", "inner.conf"), 'k: v\ninclude "deeper.conf"\n');
    writeFileSync(join(dir, "sub", "deeper.conf"), "d: 1\n");
    const p = parseNatsConfFile(join(dir, "main.conf"), { env: {} });
    expect(p.tree).toEqual({
      port: 1,
      authorization: { token: "abc" },
      http_port: 2,
      nested: { k: "v", d: 1 },
    });
    expect(p.info(p.tree, "authorization")?.key).toEqual({
      file: join(dir, "auth.conf"),
      line: 1,
      column: 1,
    });
  });

  it("reports include problems at the include directive", () => {
    const dir = tmp();
    const main = join(dir, "main.conf");
    writeFileSync(main, "port: 1\ninclude missing.conf\n");
    const e = errorOf(() => parseNatsConfFile(main, { env: {} }));
    expect(e.problems[0]).toMatchObject({ file: main, line: 2, column: 1 });
    expect(e.message).toContain("cannot read include file 'missing.conf'");

    writeFileSync(join(dir, "loop.conf"), "include loop.conf\n");
    expect(errorOf(() => parseNatsConfFile(join(dir, "loop.conf"))).message).toContain(
      "nested more than 10 deep",
    );

    writeFileSync(join(dir, "bad.conf"), "a {\n");
    writeFileSync(main, "include bad.conf\n");
    const inner = errorOf(() => parseNatsConfFile(main));
    expect(inner.problems[0]).toMatchObject({ file: join(dir, "bad.conf"), line: 2, column: 1 });

    expect(parseError("include foo.conf").message).toBe(
      "server.conf:1:1: 'include' is only supported when reading a configuration file",
    );
  });

  it("reports an unreadable configuration file as a NatsConfError", () => {
    const e = errorOf(() => parseNatsConfFile("/nonexistent/dir/server.conf"));
    expect(e.file).toBe("/nonexistent/dir/server.conf");
    expect(e.message).toContain("cannot read configuration file");
  });
});

describe("nats-conf syntax errors: exact positions", () => {
  const cases: [string, string][] = [
    [
      "authorization {\n  user: a\n  password: b",
      "server.conf:3:14: expected '}' to close the block opened at 1:15, found end of file",
    ],
    ["a: [1, 2", "server.conf:1:9: expected ']' to close the array opened at 1:4, found end of file"],
    ['a: "abc', `server.conf:1:8: expected '"' to close the string opened at 1:4, found end of file`],
    ["a: 'abc", `server.conf:1:8: expected "'" to close the string opened at 1:4, found end of file`],
    ["a: [1,,2]", "server.conf:1:7: expected an array item or ']', found ','"],
    ["a: [1 2]", "server.conf:1:7: expected ',' or ']' after an array item, found '2'"],
    ["a: 1 b: 2", "server.conf:1:6: expected a new line, ',' or ';' after the value of 'a', found 'b'"],
    ["a:\nb: 1", "server.conf:1:3: expected a value for 'a', found end of line"],
    ["port", "server.conf:1:5: expected a value for 'port', found end of file"],
    [
      "debug\ntrace: true",
      "server.conf:1:6: expected ':' or '=' and a value after 'debug', found end of line",
    ],
    ["a: }", "server.conf:1:4: expected a value for 'a', found '}'"],
    [
      String.raw`a: "x\qy"`,
      String.raw`server.conf:1:6: expected an escape sequence (\t, \n, \r, \", \\ or \xHH), found '\q'`,
    ],
    [
      String.raw`a: x\x4`,
      String.raw`server.conf:1:8: expected two hexadecimal digits after '\x', found end of file`,
    ],
    [
      String.raw`a: "\xZ1"`,
      String.raw`server.conf:1:7: expected two hexadecimal digits after '\x', found 'Z'`,
    ],
    ["a: -x", "server.conf:1:5: expected a digit after '-', found 'x'"],
    [
      "a: .5",
      "server.conf:1:4: expected a value (numbers start with a digit; quote strings that start with '.'), found '.'",
    ],
    ["a: 1.x", "server.conf:1:6: expected a digit after '.' in a number, found 'x'"],
    ["a: 1.5s", "server.conf:1:7: expected a new line, ',' or ';' after the value of 'a', found 's'"],
    ["a: 12-3", "server.conf:1:6: expected a date in full Zulu form (YYYY-MM-DDTHH:MM:SSZ), found '-'"],
    ["a: 1MB2", "server.conf:1:7: expected a new line, ',' or ';' after the value of 'a', found '2'"],
    ["a: 1kbb", "server.conf:1:5: expected a size suffix such as K, KB, Ki, KiB, M, MB, G, GB, found 'kbb'"],
    ["}", "server.conf:1:1: expected a key, found '}'"],
    [": 1", "server.conf:1:1: expected a key, found ':'"],
    ["x {\n  a: 1\n}\n}", "server.conf:4:1: expected a key, found '}'"],
    [
      "a: 99999999999999999999",
      "server.conf:1:4: integer '99999999999999999999' is out of range (at most 9007199254740991)",
    ],
    [
      "port: $NOPE",
      "server.conf:1:7: variable reference '$NOPE' is not defined in the file or the environment",
    ],
    ["a: $", "server.conf:1:4: '$' must be followed by a variable name"],
    ['"unterminated: 1', `server.conf:1:17: expected '"' to close the key opened at 1:1, found end of file`],
    [
      "a: (\nno end",
      "server.conf:2:7: expected ')' alone on a line to close the text block opened at 1:4, found end of file",
    ],
    ["a: 1\r\nb: [\r\n", "server.conf:3:1: expected ']' to close the array opened at 2:4, found end of file"],
    ["a: [1, }", "server.conf:1:8: expected a value, found '}'"],
    [
      "a: 1 \u0001",
      "server.conf:1:6: expected a new line, ',' or ';' after the value of 'a', found '\\u0001'",
    ],
    [
      "{ a: 1 } b: 2",
      "server.conf:1:10: expected end of file after the '}' that closes the whole configuration, found 'b'",
    ],
  ];

  it.each(cases)("%j", (text, message) => {
    const e = parseError(text);
    expect(e.message).toBe(message);
    expect(e.problems).toHaveLength(1);
  });

  it("exposes file, line, column, expected and found", () => {
    const e = parseError("authorization {\n  user: a\n  password: b");
    expect(e).toBeInstanceOf(NatsConfError);
    expect(e.name).toBe("NatsConfError");
    expect([e.file, e.line, e.column]).toEqual(["server.conf", 3, 14]);
    expect(e.expected).toBe("'}' to close the block opened at 1:15");
    expect(e.found).toBe("end of file");
  });

  it("omits the file name when none was given", () => {
    expect(errorOf(() => parseNatsConf("a: [", { env: {} })).message).toBe(
      "1:5: expected ']' to close the array opened at 1:4, found end of file",
    );
  });

  it("refuses absurd nesting instead of overflowing the stack", () => {
    expect(parseError(`a: ${"[".repeat(5000)}`).message).toContain("nested more than 128 deep");
    expect(parseError(`a: ${"{ b: ".repeat(5000)}`).message).toContain("nested more than 128 deep");
  });

  it("reports a bad environment value at the reference", () => {
    const e = parseError("port: $BAD", { BAD: "1 2" });
    expect(e.message).toBe(
      "server.conf:1:7: environment variable BAD does not hold a valid value: expected a new line, ',' or ';' after the value of 'pk', found '2'",
    );
    expect(parseError("a: $LOOP", { LOOP: "$LOOP" }).message).toContain("more than 8 deep");
  });
});

describe("confToBrokerOptions", () => {
  it("maps listen as host:port, a bare port, -1 (free port) and 0 (default port)", () => {
    expect(options("listen: 127.0.0.1:4333")).toEqual({ host: "127.0.0.1", port: 4333 });
    expect(options("listen: 4333")).toEqual({ port: 4333 });
    expect(options("listen: 127.0.0.1:-1")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(options('listen: ":5222"')).toEqual({ port: 5222 });
    expect(options('listen: "[::1]:5222"')).toEqual({ host: "::1", port: 5222 });
    expect(options("listen: 0.0.0.0:0")).toEqual({ host: "0.0.0.0", port: DEFAULT_BROKER_OPTIONS.port });
    expect(options("listen: localhost:4222")).toEqual({ host: "localhost", port: 4222 });
  });

  it("maps host/net and port; keys are case-insensitive and the later key wins", () => {
    expect(options("host: 127.0.0.1\nport: -1")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(options("net: 10.0.0.1\nPORT: 4999")).toEqual({ host: "10.0.0.1", port: 4999 });
    expect(options("listen: 127.0.0.1:1000\nport: 2000")).toEqual({ host: "127.0.0.1", port: 2000 });
    expect(options("port: 0")).toEqual({ port: 4222 });
  });

  it("maps http, http_host, http_port and monitor_port (0 = no monitoring, -1 = free port)", () => {
    expect(options("http: 127.0.0.1:8222")).toEqual({ httpHost: "127.0.0.1", httpPort: 8222 });
    expect(options("http: 8222")).toEqual({ httpPort: 8222 });
    expect(options("http: 127.0.0.1:-1")).toEqual({ httpHost: "127.0.0.1", httpPort: 0 });
    expect(options("http_port: 8223")).toEqual({ httpPort: 8223 });
    expect(options("monitor_port: -1\nhttp_host: 127.0.0.1")).toEqual({ httpPort: 0, httpHost: "127.0.0.1" });
    expect(options("http_port: 8222\nhttp_port: 0")).toEqual({});
  });

  it("maps server_name and ports_file_dir", () => {
    expect(options('server_name: "eu-west-1"\nports_file_dir: /tmp/x')).toEqual({
      serverName: "eu-west-1",
      portsFileDir: "/tmp/x",
    });
  });

  it("maps the limits, with size suffixes and size strings", () => {
    expect(
      options(
        "max_payload: 2MB\nmax_control_line: 8KB\nmax_pending: 128MB\nmax_subscriptions: 100\nping_max: 5",
      ),
    ).toEqual({
      maxPayload: 2 * 1048576,
      maxControlLine: 8192,
      maxPendingBytes: 128 * 1048576,
      maxSubscriptions: 100,
      pingMax: 5,
    });
    expect(options('max_payload: "512KB"\nmax_subs: 0')).toEqual({ maxPayload: 524288, maxSubscriptions: 0 });
    expect(options("max_payload: 0\nmax_control_line: 0\nmax_pending: 0\nping_max: 0")).toEqual({
      maxPayload: DEFAULT_BROKER_OPTIONS.maxPayload,
      maxControlLine: DEFAULT_BROKER_OPTIONS.maxControlLine,
      maxPendingBytes: DEFAULT_BROKER_OPTIONS.maxPendingBytes,
      pingMax: DEFAULT_BROKER_OPTIONS.pingMax,
    });
  });

  it("warns about payloads over 8 MB as nats-server does", () => {
    const r = convert("max_payload: 16MB");
    expect(r.options.maxPayload).toBe(16 * 1048576);
    expect(r.warnings).toEqual([
      "server.conf:1:1: max_payload over 8 MB (16777216) is generally discouraged and could lead to poor performance",
    ]);
  });

  it("maps ping_interval and write_deadline durations to milliseconds", () => {
    expect(options('ping_interval: "2m"\nwrite_deadline: "500ms"')).toEqual({
      pingIntervalMs: 120_000,
      writeDeadlineMs: 500,
    });
    expect(options("ping_interval: 30s\nwrite_deadline: 1h30m5s")).toEqual({
      pingIntervalMs: 30_000,
      writeDeadlineMs: 5_405_000,
    });
  });

  it("takes a bare number as seconds, with nats-server's warning", () => {
    const r = convert("ping_interval: 20");
    expect(r.options).toEqual({ pingIntervalMs: 20_000 });
    expect(r.warnings).toEqual([
      'server.conf:1:1: ping_interval should be a duration string such as "2m" or "30s"; 20 is taken as seconds',
    ]);
    const sized = convert("write_deadline: 2m");
    expect(sized.options).toEqual({ writeDeadlineMs: 2_000_000_000 });
    expect(sized.warnings[0]).toContain('unquoted 2m is the number 2000000 (a size), write "2m" in quotes');
  });

  it("maps authorization with a single user (user/username, password/pass) and timeout", () => {
    expect(options("authorization { user: alice, password: s3cret, timeout: 1.5 }")).toEqual({
      auth: { users: [{ user: "alice", password: "s3cret" }], timeoutSec: 1.5 },
    });
    expect(options('authorization { username: "bob", pass: 1234, timeout: "3s" }')).toEqual({
      auth: { users: [{ user: "bob", password: "1234" }], timeoutSec: 3 },
    });
  });

  it("maps a token, with permissions for token clients", () => {
    expect(options('authorization { token: "t0k" }')).toEqual({ auth: { token: "t0k" } });
    expect(
      options("authorization { token: t0k, permissions { publish: foo, subscribe: [bar, baz] } }"),
    ).toEqual({
      auth: {
        token: "t0k",
        tokenPermissions: { publish: { allow: ["foo"] }, subscribe: { allow: ["bar", "baz"] } },
      },
    });
  });

  it("maps users with every permission form", () => {
    const text = `
authorization {
  default_permissions { publish: "public.>" }
  users: [
    { user: a, password: pa, permissions: {
        publish: { allow: ["orders.*", "_INBOX.>"], deny: "orders.secret" }
        subscribe: { deny: ["admin.>"] }
        allow_responses: true
    } }
    { user: b, password: pb, permissions: { pub: "x", sub: "y", allow_responses: { max: 3, expires: "1m" } } }
    { user: c, password: pc, permissions: { allow_responses: false } }
    { user: d, password: pd }
  ]
}`;
    expect(options(text)).toEqual({
      auth: {
        users: [
          {
            user: "a",
            password: "pa",
            permissions: {
              publish: { allow: ["orders.*", "_INBOX.>"], deny: ["orders.secret"] },
              subscribe: { deny: ["admin.>"] },
              allowResponses: { maxMsgs: 1, expiresMs: 0 },
            },
          },
          {
            user: "b",
            password: "pb",
            permissions: {
              publish: { allow: ["x"] },
              subscribe: { allow: ["y"] },
              allowResponses: { maxMsgs: 3, expiresMs: 60_000 },
            },
          },
          { user: "c", password: "pc", permissions: {} },
          { user: "d", password: "pd", permissions: { publish: { allow: ["public.>"] } } },
        ],
      },
    });
  });

  it("gives a single user the block's permissions", () => {
    expect(options("authorization { user: u, password: p, permissions: { subscribe: x } }")).toEqual({
      auth: { users: [{ user: "u", password: "p", permissions: { subscribe: { allow: ["x"] } } }] },
    });
  });

  it("returns no auth for an empty authorization block", () => {
    expect(options("authorization {}")).toEqual({});
  });

  it("warns about unsupported keys with their position, and stays quiet about variables", () => {
    const text = [
      "listen: 127.0.0.1:4222",
      "SECRET: abc",
      "authorization { token: $SECRET }",
      "debug: true",
      "trace: false",
      "logtime: true",
      "jetstream { store_dir: /tmp/js }",
      "cluster { name: c1, listen: 127.0.0.1:6222 }",
      "gateway { name: A }",
      "leafnodes { listen: 127.0.0.1:7422 }",
      "websocket { port: 8080 }",
      "mqtt { port: 1883 }",
      "accounts { A: { users: [ {user: x, password: y} ] } }",
      "tls { cert_file: a.pem }",
      "log_file: /tmp/x.log",
      "pid_file: /tmp/x.pid",
      "frobnicate: 1",
    ].join("\n");
    const r = convert(text);
    expect(r.options).toEqual({ host: "127.0.0.1", port: 4222, auth: { token: "abc" } });
    const unsupported = [
      "debug",
      "trace",
      "logtime",
      "jetstream",
      "cluster",
      "gateway",
      "leafnodes",
      "websocket",
      "mqtt",
      "accounts",
      "tls",
      "log_file",
      "pid_file",
    ];
    expect(r.warnings).toEqual([
      ...unsupported.map(
        (k, i) => `server.conf:${i + 4}:1: '${k}' is not supported by bridgehead broker and is ignored`,
      ),
      "server.conf:17:1: 'frobnicate' is not a known nats-server option and is ignored",
    ]);
  });

  it("warns about unsupported keys inside authorization and user entries", () => {
    const r = convert("authorization {\n  token: t\n  auth_callout: {}\n}\n");
    expect(r.warnings).toEqual([
      "server.conf:3:3: 'authorization.auth_callout' is not supported by bridgehead broker and is ignored",
    ]);
    const u = convert("authorization { users: [ { user: a, password: b, account: ACC } ] }");
    expect(u.warnings).toEqual([
      "server.conf:1:50: 'authorization.users[0].account' is not supported by bridgehead broker and is ignored",
    ]);
  });

  it("passes the parser's warnings through", () => {
    expect(convert("port: 1\nport: 2").warnings).toEqual([
      "server.conf:2:1: 'port' is set again; this value replaces the earlier one (first set at 1:1)",
    ]);
  });

  it("accepts a hand-made tree without positions", () => {
    expect(confToBrokerOptions({ port: 5, authorization: { token: "x" } })).toEqual({
      options: { port: 5, auth: { token: "x" } },
      warnings: [],
    });
    const e = errorOf(() => confToBrokerOptions({ port: "x" }, "hand.conf"));
    expect(e.message).toBe('hand.conf: port: expected an integer, found a string ("x")');
  });

  it("loads a file in one step", () => {
    const dir = tmp();
    const file = join(dir, "s.conf");
    writeFileSync(file, "listen: 127.0.0.1:-1\njetstream {}\n");
    const r = loadNatsConfFile(file, { env: {} });
    expect(r.options).toEqual({ host: "127.0.0.1", port: 0 });
    expect(r.warnings).toEqual([
      `${file}:2:1: 'jetstream' is not supported by bridgehead broker and is ignored`,
    ]);
    expect(r.conf.file).toBe(file);
  });
});

describe("confToBrokerOptions: invalid values", () => {
  const cases: [string, string][] = [
    ['port: "4222"', 'server.conf:1:7: port: expected an integer, found a string ("4222")'],
    ["port: 70000", "server.conf:1:7: port: 70000 is out of range (-1 to 65535)"],
    ["port: -2", "server.conf:1:7: port: -2 is out of range (-1 to 65535)"],
    ["port: 1.5", "server.conf:1:7: port: expected an integer, found a number (1.5)"],
    [
      'listen: "127.0.0.1"',
      'server.conf:1:9: listen: could not parse address "127.0.0.1": expected host:port',
    ],
    ['listen: "127.0.0.1:abc"', 'server.conf:1:9: listen: could not parse port "abc"'],
    ['listen: "::1:4222"', 'server.conf:1:9: listen: could not parse address "::1:4222": expected host:port'],
    ["listen: 127.0.0.1:70000", "server.conf:1:9: listen: port 70000 is out of range (-1 to 65535)"],
    [
      "listen: [1]",
      'server.conf:1:9: listen: expected an address "host:port" or a port number, found a list',
    ],
    [
      "http: true",
      'server.conf:1:7: http: expected an address "host:port" or a port number, found a boolean (true)',
    ],
    ["http_port: 65536", "server.conf:1:12: http_port: 65536 is out of range (-1 to 65535)"],
    ["host: 5", "server.conf:1:7: host: expected a string, found a number (5)"],
    ["server_name: { a: 1 }", "server.conf:1:14: server_name: expected a string, found a block"],
    ["max_payload: -5", "server.conf:1:14: max_payload: a size cannot be negative (-5)"],
    [
      "max_payload: abc",
      'server.conf:1:14: max_payload: expected a size in bytes such as 1048576 or 1MB, found a string ("abc")',
    ],
    [
      "max_payload: 1.5",
      "server.conf:1:14: max_payload: expected a whole number of bytes, found a number (1.5)",
    ],
    ["max_payload: 4GB", "server.conf:1:14: max_payload: 4294967296 is too big (at most 2147483647)"],
    [
      "max_payload: 100MB",
      "server.conf:1:14: max_payload: max_payload (104857600) cannot be higher than max_pending (67108864)",
    ],
    [
      "max_payload: 2MB\nmax_pending: 1MB",
      "server.conf:1:14: max_payload: max_payload (2097152) cannot be higher than max_pending (1048576)",
    ],
    ["max_control_line: -1", "server.conf:1:19: max_control_line: a size cannot be negative (-1)"],
    ["max_pending: [1]", "server.conf:1:14: max_pending: expected a size in bytes, found a list"],
    [
      'ping_interval: "2x"',
      'server.conf:1:16: ping_interval: unknown unit "x" in duration "2x" (use ns, us, ms, s, m or h)',
    ],
    ['ping_interval: "-1s"', "server.conf:1:16: ping_interval: a duration cannot be negative (-1s)"],
    ['write_deadline: "5"', 'server.conf:1:17: write_deadline: missing unit in duration "5"'],
    [
      "write_deadline: yes",
      'server.conf:1:17: write_deadline: expected a duration such as "2m", "30s" or "500ms", found a boolean (true)',
    ],
    ["ping_max: -1", "server.conf:1:11: ping_max: -1 is out of range (0 to 9007199254740991)"],
    ["max_subs: -3", "server.conf:1:11: max_subs: -3 is out of range (0 to 9007199254740991)"],
    ["ports_file_dir: 5", "server.conf:1:17: ports_file_dir: expected a string, found a number (5)"],
    ["authorization: 5", "server.conf:1:16: authorization: expected a block { ... }, found a number (5)"],
    [
      "authorization { user: a }",
      "server.conf:1:17: authorization.user: authorization.password is required with authorization.user",
    ],
    [
      "authorization { password: a }",
      "server.conf:1:17: authorization.password: authorization.user is required with authorization.password",
    ],
    [
      "authorization { user: a, password: b, token: c }",
      "server.conf:1:39: authorization.token: cannot have a user/password and a token",
    ],
    [
      "authorization { timeout: -1, token: t }",
      "server.conf:1:26: authorization.timeout: timeout must be a positive number of seconds (-1)",
    ],
    [
      "authorization { users: { user: a } }",
      "server.conf:1:24: authorization.users: expected a list of users [ { user: ..., password: ... } ], found a block",
    ],
    [
      'authorization { users: [ "x" ] }',
      'server.conf:1:26: authorization.users[0]: expected a block { ... }, found a string ("x")',
    ],
    [
      "authorization { users: [ { password: p } ] }",
      "server.conf:1:26: authorization.users[0]: a user entry needs a user",
    ],
    [
      "authorization { users: [ { user: a, password: [p] } ] }",
      "server.conf:1:47: authorization.users[0].password: expected a string, found a list",
    ],
    [
      "authorization { users: [ { nkey: UABC } ] }",
      "server.conf:1:28: authorization.users[0].nkey: nkey users are not supported by bridgehead broker",
    ],
    [
      "authorization { user: a, password: $2a$11$xyz }",
      "server.conf:1:36: authorization.password: bcrypt-hashed passwords are not supported by bridgehead broker; use the plain text",
    ],
    [
      'authorization { users: [ {user: a, password: b, permissions: { publish: { allow: "a..b" } } } ] }',
      'server.conf:1:82: authorization.users[0].permissions.publish.allow: subject "a..b" is not a valid subject',
    ],
    [
      'authorization { users: [ {user: a, password: b, permissions: { publish: ["a.>.b", 3] } } ] }',
      'server.conf:1:74: authorization.users[0].permissions.publish[0]: subject "a.>.b" is not a valid subject\n  server.conf:1:83: authorization.users[0].permissions.publish[1]: expected a subject, found a number (3)',
    ],
    [
      'authorization { users: [ {user: a, password: b, permissions: { publish: { foo: "a" } } } ] }',
      "server.conf:1:75: authorization.users[0].permissions.publish.foo: unknown field 'foo' in subject permissions, only 'allow' or 'deny' are permitted",
    ],
    [
      "authorization { token: t, permissions: { admin: true } }",
      "server.conf:1:42: authorization.permissions.admin: unknown permission 'admin' (expected publish, subscribe or allow_responses)",
    ],
    [
      "authorization { token: t, permissions: { allow_responses: 1 } }",
      "server.conf:1:59: authorization.permissions.allow_responses: expected true, false or a block { max: N, expires: DURATION }, found a number (1)",
    ],
    [
      'authorization { token: t, permissions: { allow_responses: { max: -1, expires: "1x" } } }',
      'server.conf:1:66: authorization.permissions.allow_responses.max: -1 is out of range (0 to 9007199254740991)\n  server.conf:1:79: authorization.permissions.allow_responses.expires: unknown unit "x" in duration "1x" (use ns, us, ms, s, m or h)',
    ],
  ];

  it.each(cases)("%j", (text, message) => {
    const e = convertError(text);
    const expected = message.includes("\n")
      ? `${message.split("\n").length} configuration errors:\n  ${message}`
      : message;
    expect(e.message).toBe(expected);
  });

  it("refuses users together with a single user or a token", () => {
    expect(
      convertError("authorization { user: a, password: b, users: [ {user: c, password: d} ] }").message,
    ).toBe("server.conf:1:39: authorization.users: cannot have a single user/password and a users array");
    expect(convertError("authorization { token: a, users: [ {user: c, password: d} ] }").message).toBe(
      "server.conf:1:27: authorization.users: cannot have a token and a users array",
    );
    expect(
      convertError("authorization { users: [ {user: c, password: d}, {user: c, password: e} ] }").message,
    ).toBe('server.conf:1:50: authorization.users[1]: duplicate user "c" (also authorization.users[0])');
  });

  it("collects every error into one NatsConfError", () => {
    const text = [
      "port: abc",
      "authorization {",
      "  users: [",
      "    { user: a, password: ok }",
      "    { user: b, password: 5.5.5 }",
      "    { user: c }",
      "  ]",
      "}",
      "max_payload: -1",
      'ping_interval: "soon"',
      "jetstream: {}",
    ].join("\n");
    const e = convertError(text);
    expect(e.problems.map((p) => [p.line, p.column, p.path])).toEqual([
      [1, 7, "port"],
      [6, 5, "authorization.users[2]"],
      [9, 14, "max_payload"],
      [10, 16, "ping_interval"],
    ]);
    expect(e.message.split("\n")[0]).toBe("4 configuration errors:");
    expect(e.message).toContain('server.conf:6:5: authorization.users[2]: user "c" needs a password');
  });
});

describe("parseGoDuration", () => {
  it.each([
    ["0", 0],
    ["2s", 2000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1.5s", 1500],
    ["500ms", 500],
    ["250us", 0.25],
    ["250µs", 0.25],
    ["1000ns", 0.001],
    ["1h30m", 5_400_000],
    ["-2s", -2000],
    ["+2s", 2000],
    [".5s", 500],
  ] as const)("%s = %d ms", (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each(["", "5", "2x", "s", "1..5s", "-", "2 s"])("refuses %j", (text) => {
    expect(typeof parseGoDuration(text)).toBe("string");
  });
});

describe("realistic configurations", () => {
  it("parses the reference supercluster config (nats-protocol-2.9.md §4)", () => {
    const text = `server_name: srv-A
listen: 127.0.0.1:24241
http: 127.0.0.1:28241            # optional monitoring (/gatewayz?accs=1 shows interest_mode)
gateway {
  name: A
  listen: 127.0.0.1:27241
  gateways: [
    { name: A, url: "nats://127.0.0.1:27241" }     # own entry is ignored (kept so all 3 files share one list)
    { name: B, url: "nats://127.0.0.1:27242" }
    { name: C, url: "nats://127.0.0.1:27243" }
  ]
}
`;
    const p = parse(text);
    expect(p.tree).toEqual({
      server_name: "srv-A",
      listen: "127.0.0.1:24241",
      http: "127.0.0.1:28241",
      gateway: {
        name: "A",
        listen: "127.0.0.1:27241",
        gateways: [
          { name: "A", url: "nats://127.0.0.1:27241" },
          { name: "B", url: "nats://127.0.0.1:27242" },
          { name: "C", url: "nats://127.0.0.1:27243" },
        ],
      },
    });
    expect(confToBrokerOptions(p)).toEqual({
      options: {
        serverName: "srv-A",
        host: "127.0.0.1",
        port: 24241,
        httpHost: "127.0.0.1",
        httpPort: 28241,
      },
      warnings: ["server.conf:4:1: 'gateway' is not supported by bridgehead broker and is ignored"],
    });
  });

  it("parses a typical production config", () => {
    const text = `# Bridgehead region eu-west
server_name: "eu-west-1"
port: 4222
monitor_port: 8222
max_payload: 4MB
max_pending: 64MB
max_control_line: 4KB
ping_interval: "20s"
ping_max: 3
write_deadline: "2s"

authorization {
  timeout: 2
  ADMIN_PASS: "changeme"
  users = [
    { user: admin, password: $ADMIN_PASS }
    {
      user: svc
      password: "svc-pass"
      permissions {
        publish { allow: ["orders.>", "_INBOX.>"] }
        subscribe: ["orders.*", "_INBOX.>"]
        allow_responses: { max: 1, expires: "30s" }
      }
    }
  ]
}

debug: false
logtime: true
`;
    const r = convert(text);
    expect(r.options).toEqual({
      serverName: "eu-west-1",
      port: 4222,
      httpPort: 8222,
      maxPayload: 4 * 1048576,
      maxPendingBytes: 64 * 1048576,
      maxControlLine: 4096,
      pingIntervalMs: 20_000,
      pingMax: 3,
      writeDeadlineMs: 2000,
      auth: {
        timeoutSec: 2,
        users: [
          { user: "admin", password: "changeme" },
          {
            user: "svc",
            password: "svc-pass",
            permissions: {
              publish: { allow: ["orders.>", "_INBOX.>"] },
              subscribe: { allow: ["orders.*", "_INBOX.>"] },
              allowResponses: { maxMsgs: 1, expiresMs: 30_000 },
            },
          },
        ],
      },
    });
    expect(r.warnings).toEqual([
      "server.conf:29:1: 'debug' is not supported by bridgehead broker and is ignored",
      "server.conf:30:1: 'logtime' is not supported by bridgehead broker and is ignored",
    ]);
  });

  describe.skipIf(!natsServerAvailable())("agrees with `nats-server -t` on validity", () => {
    const samples: [string, boolean][] = [
      ["listen: 127.0.0.1:4222\nhttp_port: 8222\nmax_payload: 2MB\n", true],
      ["authorization { user: a, password: b, timeout: 1.5 }", true],
      [
        'authorization { users = [\n {user: a, password: b, permissions: {publish: {allow: ["x.>"], deny: "x.secret"}, subscribe: ["_INBOX.>"], allow_responses: {max: 2, expires: "1m"}}}\n {user: c, password: d}\n] }',
        true,
      ],
      ['port: 4222; server_name: "x"; ping_interval: "30s"; ping_max: 3; write_deadline: "5s"', true],
      ["# comment\n// comment\nport = 4222\nmax_pending: 64MB\nmax_control_line: 4KB\n", true],
      ['{ "port": 4222, "http_port": 8222 }', true],
      ['authorization\n{\n  token: "s3cr3t"\n}\n', true],
      ["listen: 127.0.0.1:-1\nhttp: 127.0.0.1:-1\n", true],
      ["authorization {\n user: a\n", false],
      ["port: [1, 2", false],
      ["port: 4222 server_name: x", false],
      [
        'authorization { users: [ {user: c, password: d, permissions: { publish: { allow: "a..b" } } } ] }',
        false,
      ],
      ['ping_interval: "2x"', false],
      ["authorization { user: a, pass: b, token: c }", false],
      ['listen: "127.0.0.1"', false],
      [String.raw`server_name: "a\qb"`, false],
      ["authorization { users: [ {password: c} ] }", false],
      ["port: $UNDEFINED_VARIABLE_FOR_TEST", false],
      ["max_payload: 1.5s", false],
    ];

    it.each(samples)("%j", (text, valid) => {
      const dir = tmp();
      const file = join(dir, "t.conf");
      writeFileSync(file, text);
      const natsServer = spawnSync("nats-server", ["-t", "-c", file], { encoding: "utf8", timeout: 10_000 });
      expect(natsServer.status === 0, natsServer.stderr).toBe(valid);
      let ours = true;
      try {
        loadNatsConfFile(file, { env: {} });
      } catch (err) {
        if (!(err instanceof NatsConfError)) throw err;
        ours = false;
      }
      expect(ours).toBe(valid);
    });
  });
});

// --- fuzzing ---------------------------------------------------------------------------------------------

/** Parse and convert; anything thrown other than a NatsConfError (or an internal-error one) fails. */
function mustOnlyThrowConfErrors(text: string): void {
  let parsed: ParsedNatsConf;
  try {
    parsed = parseNatsConf(text, { file: "fuzz.conf", env: { HOME: "/home/x", NUM: "1" } });
  } catch (err) {
    if (!(err instanceof NatsConfError)) throw err;
    if (err.message.includes("internal error")) throw err;
    expect(err.problems.length).toBeGreaterThan(0);
    return;
  }
  try {
    confToBrokerOptions(parsed);
  } catch (err) {
    if (!(err instanceof NatsConfError)) throw err;
  }
}

const SYNTAX_CHARS = [..."{}[]():=,;#/\"'\\$-.+0123456789kKmMgGbBiIeTt xyzatrueonfs_\t\n\r\u00e4\u20ac"];

const VALID_CONFIG = `# realistic
server_name: "eu-west-1"
listen: 127.0.0.1:-1
http: 127.0.0.1:8222
max_payload: 1MB
ping_interval: "20s"
authorization {
  timeout: 1.5
  users = [
    { user: a, password: "p\\tq", permissions: { publish: { allow: ["x.>"], deny: "x.y" }, allow_responses: true } }
    { user: b, password: 'raw', permissions { subscribe: [a, b.*] } }
  ]
}
jetstream { max_mem: 1G }
list: [1, 2.5, -3, yes, off, 2016-05-04T18:53:41Z, (
block
)
]
var: $NUM
`;

describe("fuzz: the parser only ever throws NatsConfError", () => {
  it("valid base config parses", () => {
    expect(() => parse(VALID_CONFIG, { NUM: "1" })).not.toThrow();
  });

  it("random unicode strings", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => mustOnlyThrowConfErrors(s)),
      { numRuns: 1500 },
    );
  });

  it("random strings of syntax characters", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...SYNTAX_CHARS), maxLength: 120 }), (s) =>
        mustOnlyThrowConfErrors(s),
      ),
      { numRuns: 4000 },
    );
  });

  it("mutated valid configs", () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
      fc.record({
        kind: fc.constant("insert" as const),
        at: fc.nat(),
        text: fc.string({ unit: fc.constantFrom(...SYNTAX_CHARS), minLength: 1, maxLength: 4 }),
      }),
      fc.record({ kind: fc.constant("swap" as const), at: fc.nat(), other: fc.nat() }),
      fc.record({
        kind: fc.constant("duplicate" as const),
        at: fc.nat(),
        len: fc.integer({ min: 1, max: 40 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (mutations) => {
        let s = VALID_CONFIG;
        for (const m of mutations) {
          const at = m.at % (s.length + 1);
          if (m.kind === "delete") s = s.slice(0, at) + s.slice(at + m.len);
          else if (m.kind === "insert") s = s.slice(0, at) + m.text + s.slice(at);
          else if (m.kind === "duplicate") s = s.slice(0, at) + s.slice(at, at + m.len) + s.slice(at);
          else {
            const b = m.other % (s.length + 1);
            const [x, y] = at < b ? [at, b] : [b, at];
            s = s.slice(0, x) + (s[y] ?? "") + s.slice(x + 1, y) + (s[x] ?? "") + s.slice(y + 1);
          }
        }
        mustOnlyThrowConfErrors(s);
      }),
      { numRuns: 3000 },
    );
  });
});

// --- round trip ------------------------------------------------------------------------------------------

function quote(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r")}"`;
}

function serialize(v: ConfValue, indent: string, sep: string): string {
  if (typeof v === "string") return quote(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => serialize(x, `${indent}  `, sep)).join(", ")}]`;
  const inner = Object.keys(v)
    .map((k) => `${indent}  ${quote(k)}${sep}${serialize(v[k]!, `${indent}  `, sep)}`)
    .join("\n");
  return `{\n${inner}\n${indent}}`;
}

describe("round trip: serialized trees parse back to the same tree", () => {
  // Quoted keys have no escapes (as in nats-server), so keep quotes and backslashes out of them.
  const key = fc
    .string({ minLength: 1, maxLength: 8 })
    .filter((k) => !/["\\\n\r]/.test(k) && k !== "__proto__");
  const { value } = fc.letrec<{ value: ConfValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.string({ maxLength: 12 }),
      fc.integer({ min: -1_000_000, max: 1_000_000 }),
      fc.boolean(),
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(key, tie("value"), { maxKeys: 4, noNullPrototype: true }),
    ),
  }));

  it("holds for random trees and separators", () => {
    fc.assert(
      fc.property(
        fc.dictionary(key, value, { maxKeys: 6, noNullPrototype: true }),
        fc.constantFrom(": ", " = ", " ", ":"),
        (t, sep) => {
          const text = Object.keys(t)
            .map((k) => `${quote(k)}${sep}${serialize(t[k]!, "", sep)}`)
            .join("\n");
          expect(parseNatsConf(text, { env: {} }).tree).toEqual(t);
        },
      ),
      { numRuns: 500 },
    );
  });
});

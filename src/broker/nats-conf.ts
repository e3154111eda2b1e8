/**
 * A parser for nats-server's configuration syntax (the `-c file.conf` format of nats-server 2.9).
 *
 * The format is relaxed: `key: value`, `key = value` and `key value` are all assignments; blocks `{}` nest;
 * arrays `[]` separate items by commas and/or new lines; `#` and `//` start comments; `,` and `;` may end an
 * entry. Values are quoted or bare strings, integers (with size suffixes: `1K` = 1000, `1KB`/`1Ki` = 1024, ...),
 * floats, booleans (`true/false/yes/no/on/off`), `$variables` (earlier keys of enclosing blocks, then the
 * environment) and `include file.conf` directives. A bare value that starts like a number but goes on with
 * other characters (`2s`, `127.0.0.1:4222`) is a string, as in nats-server; durations are therefore strings
 * and the option mapping converts them.
 *
 * The result is a plain tree plus a side table recording where every key and value came from, so that later
 * checks can name `file:line:column`. Lines and columns are 1-based; columns count code points.
 *
 * The parser never throws anything but {@link NatsConfError}, whatever the input.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { BridgeheadError } from "../util/errors.js";

export type ConfValue = string | number | boolean | ConfValue[] | ConfObject;
export interface ConfObject {
  [key: string]: ConfValue;
}
export type ConfContainer = ConfObject | ConfValue[];

export interface ConfPosition {
  /** The file the text came from (an include file, or `$NAME` for an environment variable's value). */
  readonly file?: string;
  readonly line: number;
  readonly column: number;
}

/** Where one entry of a block (or item of an array) was written. */
export interface ConfEntryInfo {
  /** Position of the key; absent for array items. */
  readonly key?: ConfPosition;
  /** Position of the value (of the `$reference` when the value came from a variable). */
  readonly value: ConfPosition;
  /** Source text of a scalar value, e.g. `2m` for the number 2000000. */
  readonly raw?: string;
  /** Set when the value came from `$name`. */
  readonly variable?: string;
}

export interface NatsConfProblem {
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /** Key path such as `authorization.users[1].password`, when the problem is about a value. */
  readonly path?: string;
  readonly message: string;
  readonly expected?: string;
  readonly found?: string;
}

/** `file:line:col: path: message` (parts that are unknown are left out). */
export function formatConfProblem(p: NatsConfProblem): string {
  let where = "";
  if (p.line !== undefined) where = `${p.file !== undefined ? `${p.file}:` : ""}${p.line}:${p.column ?? 1}`;
  else if (p.file !== undefined) where = p.file;
  const path = p.path ? `${p.path}: ` : "";
  return where ? `${where}: ${path}${p.message}` : `${path}${p.message}`;
}

/** `file:line:col` of a position (`line:col` when there is no file name). */
export function formatConfPosition(pos: ConfPosition | undefined, file?: string): string {
  if (!pos) return file ?? "";
  const f = pos.file ?? file;
  return `${f !== undefined ? `${f}:` : ""}${pos.line}:${pos.column}`;
}

/** A configuration that cannot be used: bad syntax, or (from the option mapping) bad values. */
export class NatsConfError extends BridgeheadError {
  override readonly name: string = "NatsConfError";
  readonly problems: readonly NatsConfProblem[];

  constructor(problems: readonly NatsConfProblem[]) {
    const list = problems.length > 0 ? problems : [{ message: "invalid configuration" }];
    super(
      list.length === 1
        ? formatConfProblem(list[0]!)
        : `${list.length} configuration errors:\n${list.map((p) => `  ${formatConfProblem(p)}`).join("\n")}`,
    );
    this.problems = list;
  }

  get file(): string | undefined {
    return this.problems[0]?.file;
  }
  get line(): number | undefined {
    return this.problems[0]?.line;
  }
  get column(): number | undefined {
    return this.problems[0]?.column;
  }
  get expected(): string | undefined {
    return this.problems[0]?.expected;
  }
  get found(): string | undefined {
    return this.problems[0]?.found;
  }
}

export interface NatsConfParseOptions {
  /** File name used in messages and as the base for relative `include` paths. */
  readonly file?: string;
  /** Environment for `$NAME` references not defined in the file. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Reads an `include`d file: `path` as written, `from` the including file. Without it, `include` is an error.
   * {@link parseNatsConfFile} supplies one that reads relative to the including file.
   */
  readonly readInclude?: (path: string, from: string | undefined) => { file: string; text: string };
}

export interface ParsedNatsConf {
  readonly tree: ConfObject;
  readonly file?: string;
  /** Non-fatal remarks from parsing, e.g. a key set twice; formatted `file:line:col: text`. */
  readonly warnings: readonly string[];
  /** Where `container[key]` was written. */
  info(container: ConfContainer, key: string | number): ConfEntryInfo | undefined;
  /** Where the entry at `path` (from the root) was written. */
  infoAt(path: readonly (string | number)[]): ConfEntryInfo | undefined;
  /** True when `container[key]` was referenced as `$key` (so it is a variable, not an option). */
  isUsedAsVariable(container: ConfObject, key: string): boolean;
}

const parsedConfs = new WeakSet<object>();

/** True for results of {@link parseNatsConf}, as opposed to hand-made trees. */
export function isParsedNatsConf(value: unknown): value is ParsedNatsConf {
  return typeof value === "object" && value !== null && parsedConfs.has(value);
}

/** Set `obj[key]` as an own enumerable property (safe for keys such as `__proto__`). */
export function setConfEntry(obj: ConfObject, key: string, value: ConfValue): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

export function isConfObject(v: ConfValue | undefined): v is ConfObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parse nats-server configuration text. Throws {@link NatsConfError} and nothing else. */
export function parseNatsConf(text: string, options: NatsConfParseOptions = {}): ParsedNatsConf {
  const shared: Shared = {
    infos: new WeakMap(),
    used: new WeakMap(),
    warnings: [],
    env: options.env ?? process.env,
    readInclude: options.readInclude,
  };
  let tree: ConfObject;
  try {
    tree = new Parser(String(text), options.file, shared, 0, 0).parseDocument();
  } catch (err) {
    if (err instanceof NatsConfError) throw err;
    if (err instanceof RangeError) {
      throw new NatsConfError([{ file: options.file, message: "configuration is nested too deeply" }]);
    }
    const msg = err instanceof Error ? err.message : String(err);
    throw new NatsConfError([{ file: options.file, message: `internal error while parsing: ${msg}` }]);
  }
  const result: ParsedNatsConf = {
    tree,
    file: options.file,
    warnings: shared.warnings,
    info: (container, key) => shared.infos.get(container)?.get(key),
    infoAt(path) {
      let container: ConfValue = tree;
      let info: ConfEntryInfo | undefined;
      for (const k of path) {
        if (typeof container !== "object" || container === null) return undefined;
        info = shared.infos.get(container)?.get(k);
        const next: ConfValue | undefined = Array.isArray(container)
          ? typeof k === "number"
            ? container[k]
            : undefined
          : typeof k === "string" && Object.hasOwn(container, k)
            ? container[k]
            : undefined;
        if (next === undefined) return undefined;
        container = next;
      }
      return info;
    },
    isUsedAsVariable: (container, key) => shared.used.get(container)?.has(key) ?? false,
  };
  parsedConfs.add(result);
  return result;
}

/** Read and parse a configuration file; `include`s are read relative to the including file. */
export function parseNatsConfFile(
  path: string,
  options: Omit<NatsConfParseOptions, "file" | "readInclude"> = {},
): ParsedNatsConf {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new NatsConfError([{ file: path, message: `cannot read configuration file: ${errorText(err)}` }]);
  }
  return parseNatsConf(text, {
    ...options,
    file: path,
    readInclude: (p, from) => {
      const file = isAbsolute(p) ? p : join(from !== undefined ? dirname(from) : ".", p);
      return { file, text: readFileSync(file, "utf8") };
    },
  });
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

// ---------------------------------------------------------------------------------------------------------

interface Shared {
  readonly infos: WeakMap<object, Map<string | number, ConfEntryInfo>>;
  readonly used: WeakMap<object, Set<string>>;
  readonly warnings: string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readInclude: NatsConfParseOptions["readInclude"];
}

interface Mark {
  readonly i: number;
  readonly line: number;
  readonly col: number;
}

interface ParsedValue {
  readonly value: ConfValue;
  readonly raw?: string;
  readonly variable?: string;
}

const MAX_NESTING = 128;
const MAX_INCLUDE_DEPTH = 10;
const MAX_ENV_DEPTH = 8;

const BOOLEANS: Readonly<Record<string, boolean>> = {
  true: true,
  yes: true,
  on: true,
  false: false,
  no: false,
  off: false,
};

const SIZE_SUFFIXES: Readonly<Record<string, number>> = (() => {
  const table: Record<string, number> = {};
  const letters = ["k", "m", "g", "t", "p", "e"];
  letters.forEach((l, n) => {
    table[l] = 1000 ** (n + 1);
    for (const s of ["b", "i", "ib"]) table[l + s] = 1024 ** (n + 1);
  });
  return table;
})();

function isBlank(c: string): boolean {
  return c === " " || c === "\t" || c === "\f" || c === "\v";
}
function isNL(c: string): boolean {
  return c === "\n" || c === "\r";
}
function isDigit(c: string): boolean {
  return c >= "0" && c <= "9" && c.length === 1;
}
function isSuffixLetter(c: string): boolean {
  return c.length === 1 && "kKmMgGtTpPeE".includes(c);
}
/** Characters that end a bare (unquoted) value. */
function endsBare(c: string): boolean {
  return c === "" || isNL(c) || isBlank(c) || c === "," || c === ";" || c === "]" || c === "}";
}
/** Characters after which digits are a number (anything else makes the value a string, as nats-server). */
function endsNumber(c: string): boolean {
  return endsBare(c);
}
/** Characters that end a bare key. */
function endsBareKey(c: string): boolean {
  return (
    c === "" ||
    isNL(c) ||
    isBlank(c) ||
    c === ":" ||
    c === "=" ||
    c === "{" ||
    c === "[" ||
    c === "}" ||
    c === "]" ||
    c === "," ||
    c === ";"
  );
}

function quoteChar(q: string): string {
  return q === "'" ? `"'"` : `'${q}'`;
}

function describeChar(c: string): string {
  if (c === "") return "end of file";
  if (isNL(c)) return "end of line";
  const cp = c.codePointAt(0) ?? 0;
  if (cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0) || (cp >= 0xd800 && cp <= 0xdfff)) {
    return `'\\u${cp.toString(16).padStart(4, "0")}'`;
  }
  return `'${c}'`;
}

class Parser {
  private i = 0;
  private line = 1;
  private col = 1;
  private depth = 0;
  /** Blocks and arrays being built, innermost last (for `$variable` lookup). */
  private readonly contexts: ConfContainer[] = [];

  constructor(
    private readonly src: string,
    private readonly file: string | undefined,
    private readonly shared: Shared,
    private readonly includeDepth: number,
    private readonly envDepth: number,
  ) {}

  parseDocument(): ConfObject {
    if (this.src.charCodeAt(0) === 0xfeff) this.i = 1;
    const root: ConfObject = {};
    this.contexts.push(root);
    this.skipTrivia();
    if (this.peek() === "{") {
      const open = this.pos();
      this.next();
      this.parseBody(root, open);
      this.skipTrivia();
      if (!this.atEnd()) this.fail("end of file after the '}' that closes the whole configuration");
    } else {
      this.parseBody(root, undefined);
    }
    this.contexts.pop();
    return root;
  }

  // --- low level -----------------------------------------------------------------------------------------

  private atEnd(): boolean {
    return this.i >= this.src.length;
  }

  /** The character (UTF-16 unit) at offset `k`, or "" at the end. */
  private peek(k = 0): string {
    return this.src[this.i + k] ?? "";
  }

  /** The whole code point at the cursor ("" at the end). */
  private peekCodePoint(): string {
    const cp = this.src.codePointAt(this.i);
    return cp === undefined ? "" : String.fromCodePoint(cp);
  }

  private next(): void {
    const c = this.src.charCodeAt(this.i);
    if (Number.isNaN(c)) return;
    if (c === 10) {
      this.i++;
      this.line++;
      this.col = 1;
      return;
    }
    if (c === 13) {
      this.i++;
      if (this.src.charCodeAt(this.i) === 10) this.i++;
      this.line++;
      this.col = 1;
      return;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = this.src.charCodeAt(this.i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        this.i += 2;
        this.col++;
        return;
      }
    }
    this.i++;
    this.col++;
  }

  private mark(): Mark {
    return { i: this.i, line: this.line, col: this.col };
  }

  private reset(m: Mark): void {
    this.i = m.i;
    this.line = m.line;
    this.col = m.col;
  }

  private pos(): ConfPosition {
    return this.file !== undefined
      ? { file: this.file, line: this.line, column: this.col }
      : { line: this.line, column: this.col };
  }

  private where(p: ConfPosition): string {
    return p.file !== undefined && p.file !== this.file
      ? `${p.file}:${p.line}:${p.column}`
      : `${p.line}:${p.column}`;
  }

  private fail(expected: string, found?: string, at?: ConfPosition): never {
    const f = found ?? describeChar(this.peekCodePoint());
    const p = at ?? this.pos();
    throw new NatsConfError([
      {
        file: p.file,
        line: p.line,
        column: p.column,
        message: `expected ${expected}, found ${f}`,
        expected,
        found: f,
      },
    ]);
  }

  private failWith(message: string, at?: ConfPosition): never {
    const p = at ?? this.pos();
    throw new NatsConfError([{ file: p.file, line: p.line, column: p.column, message }]);
  }

  private skipBlanks(): void {
    while (isBlank(this.peek())) this.next();
  }

  private atComment(): boolean {
    const c = this.peek();
    return c === "#" || (c === "/" && this.peek(1) === "/");
  }

  private skipComment(): void {
    while (!this.atEnd() && !isNL(this.peek())) this.next();
  }

  /** Skip blanks, new lines and comments. */
  private skipTrivia(): void {
    for (;;) {
      const c = this.peek();
      if (isBlank(c) || isNL(c)) this.next();
      else if (this.atComment()) this.skipComment();
      else return;
    }
  }

  private enter(at: ConfPosition): void {
    if (++this.depth > MAX_NESTING) {
      this.failWith(`blocks and arrays nested more than ${MAX_NESTING} deep`, at);
    }
  }

  private leave(): void {
    this.depth--;
  }

  // --- structure -----------------------------------------------------------------------------------------

  /** Entries up to `}` (when `open` is given) or the end of the text. */
  private parseBody(obj: ConfObject, open: ConfPosition | undefined): void {
    for (;;) {
      this.skipTrivia();
      if (this.atEnd()) {
        if (open) this.fail(`'}' to close the block opened at ${this.where(open)}`);
        return;
      }
      if (this.peek() === "}") {
        if (open) {
          this.next();
          return;
        }
        this.fail("a key");
      }
      this.parseEntry(obj, open !== undefined);
    }
  }

  private parseEntry(obj: ConfObject, inBlock: boolean): void {
    const keyPos = this.pos();
    const c = this.peek();
    let key: string;
    let quoted = false;
    if (c === '"' || c === "'") {
      key = this.readQuotedKey(c);
      quoted = true;
    } else if (endsBareKey(c) || c === "{" || c === "[") {
      this.fail("a key");
    } else {
      const start = this.i;
      while (!endsBareKey(this.peek())) this.next();
      key = this.src.slice(start, this.i);
    }

    if (!quoted && key.toLowerCase() === "include" && isBlank(this.peek())) {
      const m = this.mark();
      this.skipBlanks();
      const n = this.peek();
      if (n !== ":" && n !== "=") {
        this.parseInclude(obj, keyPos);
        this.afterValue(key, inBlock);
        return;
      }
      this.reset(m);
    }

    this.skipBlanks();
    let n = this.peek();
    if (n === ":" || n === "=") {
      this.next();
      this.skipBlanks();
      n = this.peek();
      if (n === "" || isNL(n)) this.fail(`a value for '${key}'`);
    } else if (isNL(n)) {
      // `key` then `{` on the next line (no separator) is a block, as in nats-server.
      const m = this.mark();
      while (isNL(this.peek()) || isBlank(this.peek())) this.next();
      if (this.peek() !== "{") {
        this.reset(m);
        this.fail(`':' or '=' and a value after '${key}'`);
      }
    }
    n = this.peek();
    if (n === "" || n === "}" || n === "," || n === ";" || n === "]") this.fail(`a value for '${key}'`);

    const valuePos = this.pos();
    const parsed = this.parseValue(false);
    this.setEntry(obj, key, parsed.value, {
      key: keyPos,
      value: valuePos,
      ...(parsed.raw !== undefined ? { raw: parsed.raw } : {}),
      ...(parsed.variable !== undefined ? { variable: parsed.variable } : {}),
    });
    this.afterValue(key, inBlock);
  }

  /** After an entry's value: blanks, then a new line, `,`, `;`, a comment, the block's `}` or the end. */
  private afterValue(key: string, inBlock: boolean): void {
    this.skipBlanks();
    const c = this.peek();
    if (c === "" || isNL(c) || this.atComment()) return;
    if (c === "," || c === ";") {
      this.next();
      return;
    }
    if (c === "}" && inBlock) return;
    this.fail(`a new line, ',' or ';' after the value of '${key}'`);
  }

  private readQuotedKey(q: string): string {
    const open = this.pos();
    this.next();
    const start = this.i;
    for (;;) {
      const c = this.peek();
      if (c === q) break;
      if (c === "" || isNL(c)) this.fail(`${quoteChar(q)} to close the key opened at ${this.where(open)}`);
      this.next();
    }
    const key = this.src.slice(start, this.i);
    this.next();
    return key;
  }

  private setEntry(obj: ConfObject, key: string, value: ConfValue, info: ConfEntryInfo): void {
    let infos = this.shared.infos.get(obj);
    if (!infos) {
      infos = new Map();
      this.shared.infos.set(obj, infos);
    }
    if (Object.hasOwn(obj, key)) {
      const prev = infos.get(key);
      const here = formatConfPosition(info.key ?? info.value);
      const before = prev ? ` (first set at ${this.where(prev.key ?? prev.value)})` : "";
      this.shared.warnings.push(
        `${here}: '${key}' is set again; this value replaces the earlier one${before}`,
      );
    }
    setConfEntry(obj, key, value);
    infos.set(key, info);
  }

  private parseValue(inArray: boolean): ParsedValue {
    const start = this.pos();
    const c = this.peek();
    switch (c) {
      case "{": {
        this.enter(start);
        this.next();
        const obj: ConfObject = {};
        this.contexts.push(obj);
        this.parseBody(obj, start);
        this.contexts.pop();
        this.leave();
        return { value: obj };
      }
      case "[":
        return { value: this.parseArray(start) };
      case '"':
        return this.readDoubleQuoted(start);
      case "'":
        return this.readSingleQuoted(start);
      case "(":
        return this.readBlockString(start);
      case "-":
        return this.readNumberish();
      case ".":
        return this.fail("a value (numbers start with a digit; quote strings that start with '.')");
      case ",":
      case ";":
      case "}":
        return this.fail("a value");
      case "]":
        return this.fail(inArray ? "an array item" : "a value");
      default:
        if (isDigit(c)) return this.readNumberish();
        return this.readBare(start);
    }
  }

  private parseArray(start: ConfPosition): ConfValue[] {
    this.enter(start);
    this.next();
    const arr: ConfValue[] = [];
    this.contexts.push(arr);
    let infos = this.shared.infos.get(arr);
    if (!infos) {
      infos = new Map();
      this.shared.infos.set(arr, infos);
    }
    const unclosed = () => `']' to close the array opened at ${this.where(start)}`;
    for (;;) {
      this.skipTrivia();
      const c = this.peek();
      if (c === "") this.fail(unclosed());
      if (c === "]") {
        this.next();
        break;
      }
      if (c === ",") this.fail("an array item or ']'");
      const valuePos = this.pos();
      const parsed = this.parseValue(true);
      infos.set(arr.length, {
        value: valuePos,
        ...(parsed.raw !== undefined ? { raw: parsed.raw } : {}),
        ...(parsed.variable !== undefined ? { variable: parsed.variable } : {}),
      });
      arr.push(parsed.value);
      this.skipBlanks();
      const n = this.peek();
      if (n === "") this.fail(unclosed());
      if (isNL(n) || this.atComment()) continue;
      if (n === ",") {
        this.next();
        continue;
      }
      if (n === "]") {
        this.next();
        break;
      }
      this.fail("',' or ']' after an array item");
    }
    this.contexts.pop();
    this.leave();
    return arr;
  }

  // --- scalars -------------------------------------------------------------------------------------------

  private readDoubleQuoted(open: ConfPosition): ParsedValue {
    const startIndex = this.i;
    this.next();
    const out = new StringBuilder();
    for (;;) {
      const c = this.peek();
      if (c === "") this.fail(`'"' to close the string opened at ${this.where(open)}`);
      if (c === '"') {
        this.next();
        break;
      }
      if (c === "\\") {
        this.readEscape(out);
        continue;
      }
      const m = this.i;
      this.next();
      out.text(this.src.slice(m, this.i));
    }
    return { value: out.done(), raw: this.src.slice(startIndex, this.i) };
  }

  private readSingleQuoted(open: ConfPosition): ParsedValue {
    const startIndex = this.i;
    this.next();
    const start = this.i;
    while (this.peek() !== "'") {
      if (this.atEnd()) this.fail(`"'" to close the string opened at ${this.where(open)}`);
      this.next();
    }
    const value = this.src.slice(start, this.i);
    this.next();
    return { value, raw: this.src.slice(startIndex, this.i) };
  }

  /** `( ... )` with the `)` alone on its line: everything in between, verbatim. */
  private readBlockString(open: ConfPosition): ParsedValue {
    this.next();
    const start = this.i;
    for (;;) {
      if (this.atEnd())
        this.fail(`')' alone on a line to close the text block opened at ${this.where(open)}`);
      const c = this.peek();
      if (isNL(c)) {
        const nl = c === "\r" && this.peek(1) === "\n" ? 2 : 1;
        const after = this.peek(nl + 1);
        if (this.peek(nl) === ")" && (after === "" || isNL(after))) {
          const value = this.src.slice(start, this.i);
          this.next();
          this.next();
          return { value };
        }
      }
      this.next();
    }
  }

  /** A backslash escape inside a double-quoted or bare string; the cursor is on the backslash. */
  private readEscape(out: StringBuilder): void {
    const at = this.pos();
    this.next();
    const e = this.peek();
    const simple: Record<string, string> = { t: "\t", n: "\n", r: "\r", '"': '"', "\\": "\\" };
    const mapped = simple[e];
    if (mapped !== undefined && Object.hasOwn(simple, e)) {
      this.next();
      out.text(mapped);
      return;
    }
    if (e === "x") {
      this.next();
      let h = "";
      for (let k = 0; k < 2; k++) {
        if (!/^[0-9a-fA-F]$/.test(this.peek())) this.fail("two hexadecimal digits after '\\x'");
        h += this.peek();
        this.next();
      }
      out.byte(Number.parseInt(h, 16));
      return;
    }
    this.fail(
      'an escape sequence (\\t, \\n, \\r, \\", \\\\ or \\xHH)',
      `'\\${e === "" || isNL(e) ? "" : this.peekCodePoint()}'`,
      at,
    );
  }

  private readBare(start: ConfPosition, from?: Mark): ParsedValue {
    if (from) this.reset(from);
    const startIndex = this.i;
    const out = new StringBuilder();
    let escaped = false;
    while (!endsBare(this.peek())) {
      if (this.peek() === "\\") {
        escaped = true;
        this.readEscape(out);
        continue;
      }
      const m = this.i;
      this.next();
      out.text(this.src.slice(m, this.i));
    }
    const raw = this.src.slice(startIndex, this.i);
    const text = out.done();
    if (!escaped) {
      const lower = text.toLowerCase();
      if (Object.hasOwn(BOOLEANS, lower)) return { value: BOOLEANS[lower]!, raw };
      if (text.startsWith("$") && !/^\$2[aby]\$/.test(text)) {
        return { ...this.resolveVariable(text.slice(1), start), raw };
      }
    }
    return { value: text, raw };
  }

  /**
   * Integers (optionally negative, with a size suffix), floats, `a.b.c.d:port` addresses and dates; a digit
   * run followed by other characters is a bare string, as in nats-server (`2s`, `10abc`, `4222:5`).
   */
  private readNumberish(): ParsedValue {
    const start = this.pos();
    const from = this.mark();
    const startIndex = this.i;
    let neg = false;
    if (this.peek() === "-") {
      neg = true;
      this.next();
      if (!isDigit(this.peek())) this.fail("a digit after '-'");
    }
    const digitsStart = this.i;
    while (isDigit(this.peek())) this.next();
    const digits = this.src.slice(digitsStart, this.i);
    const c = this.peek();

    if (c === ".") {
      this.next();
      if (!isDigit(this.peek())) this.fail("a digit after '.' in a number");
      while (isDigit(this.peek())) this.next();
      if (this.peek() === ".") {
        // More dots: an IP address, maybe with a port (127.0.0.1:4222).
        this.next();
        while (/^[0-9.:-]$/.test(this.peek())) this.next();
        const raw = this.src.slice(startIndex, this.i);
        return { value: raw, raw };
      }
      const raw = this.src.slice(startIndex, this.i);
      const value = Number(raw);
      if (!Number.isFinite(value)) this.failWith(`number '${raw}' is out of range`, start);
      return { value: value === 0 ? 0 : value, raw };
    }

    if (c === "-" && !neg) {
      if (digits.length !== 4) this.fail("a date in full Zulu form (YYYY-MM-DDTHH:MM:SSZ)");
      this.next();
      for (const f of "00-00T00:00:00Z") {
        const d = this.peek();
        if (f === "0" ? !isDigit(d) : d !== f) {
          this.fail(`${f === "0" ? "a digit" : `'${f}'`} in a date (YYYY-MM-DDTHH:MM:SSZ)`);
        }
        this.next();
      }
      const raw = this.src.slice(startIndex, this.i);
      return { value: raw, raw };
    }

    if (isSuffixLetter(c)) {
      const suffixStart = this.i;
      const suffixPos = this.pos();
      this.next();
      while (/^[bBiI]$/.test(this.peek())) this.next();
      const n = this.peek();
      if (endsNumber(n) || isDigit(n)) {
        const raw = this.src.slice(startIndex, this.i);
        const suffix = this.src.slice(suffixStart, this.i).toLowerCase();
        const mult = SIZE_SUFFIXES[suffix];
        if (mult === undefined) {
          this.fail(
            "a size suffix such as K, KB, Ki, KiB, M, MB, G, GB",
            `'${raw.slice(suffixStart - startIndex)}'`,
            suffixPos,
          );
        }
        const value = Number(digits) * mult * (neg ? -1 : 1);
        if (!Number.isSafeInteger(value)) {
          this.failWith(`number '${raw}' is out of range (at most ${Number.MAX_SAFE_INTEGER})`, start);
        }
        return { value: value === 0 ? 0 : value, raw };
      }
      if (neg) return this.fail("a new line, ',' or ';' after a number");
      return this.readBare(start, from);
    }

    if (!endsNumber(c)) {
      if (neg) return this.fail("a new line, ',' or ';' after a number");
      return this.readBare(start, from);
    }
    const raw = this.src.slice(startIndex, this.i);
    const value = Number(raw);
    if (!Number.isSafeInteger(value)) {
      this.failWith(`integer '${raw}' is out of range (at most ${Number.MAX_SAFE_INTEGER})`, start);
    }
    return { value: value === 0 ? 0 : value, raw };
  }

  // --- variables and includes ----------------------------------------------------------------------------

  private resolveVariable(name: string, at: ConfPosition): ParsedValue {
    if (name === "") this.failWith("'$' must be followed by a variable name", at);
    for (let k = this.contexts.length - 1; k >= 0; k--) {
      const ctx = this.contexts[k];
      if (ctx === undefined || Array.isArray(ctx)) continue;
      if (Object.hasOwn(ctx, name)) {
        let used = this.shared.used.get(ctx);
        if (!used) {
          used = new Set();
          this.shared.used.set(ctx, used);
        }
        used.add(name);
        return { value: ctx[name]!, variable: name };
      }
    }
    const envValue = Object.hasOwn(this.shared.env, name) ? this.shared.env[name] : undefined;
    if (typeof envValue !== "string") {
      this.failWith(`variable reference '$${name}' is not defined in the file or the environment`, at);
    }
    if (this.envDepth >= MAX_ENV_DEPTH) {
      this.failWith(`variable '$${name}' refers to variables more than ${MAX_ENV_DEPTH} deep`, at);
    }
    const sub = new Parser(
      `pk=${envValue}`,
      `$${name}`,
      { ...this.shared, readInclude: undefined },
      0,
      this.envDepth + 1,
    );
    let tree: ConfObject;
    try {
      tree = sub.parseDocument();
    } catch (err) {
      const inner = err instanceof NatsConfError ? (err.problems[0]?.message ?? err.message) : errorText(err);
      this.failWith(`environment variable ${name} does not hold a valid value: ${inner}`, at);
    }
    if (!Object.hasOwn(tree, "pk")) this.failWith(`environment variable ${name} does not hold a value`, at);
    return { value: tree["pk"]!, variable: name };
  }

  private parseInclude(obj: ConfObject, at: ConfPosition): void {
    this.skipBlanks();
    const c = this.peek();
    let path: string;
    if (c === '"' || c === "'") {
      const open = this.pos();
      this.next();
      const start = this.i;
      while (this.peek() !== c) {
        if (this.atEnd() || isNL(this.peek())) {
          this.fail(`${quoteChar(c)} to close the file name opened at ${this.where(open)}`);
        }
        this.next();
      }
      path = this.src.slice(start, this.i);
      this.next();
    } else if (c === "" || isNL(c) || c === "[" || c === "{" || c === "(" || c === "-" || isDigit(c)) {
      this.fail("a file name after 'include'");
    } else {
      const start = this.i;
      while (!endsBare(this.peek())) this.next();
      path = this.src.slice(start, this.i);
    }
    const read = this.shared.readInclude;
    if (!read) this.failWith("'include' is only supported when reading a configuration file", at);
    if (this.includeDepth >= MAX_INCLUDE_DEPTH) {
      this.failWith(`includes nested more than ${MAX_INCLUDE_DEPTH} deep (does a file include itself?)`, at);
    }
    let loaded: { file: string; text: string };
    try {
      loaded = read(path, this.file);
    } catch (err) {
      this.failWith(`cannot read include file '${path}': ${errorText(err)}`, at);
    }
    const sub = new Parser(
      String(loaded.text),
      loaded.file,
      this.shared,
      this.includeDepth + 1,
      this.envDepth,
    );
    const tree = sub.parseDocument();
    const infos = this.shared.infos.get(tree);
    for (const key of Object.keys(tree)) {
      this.setEntry(obj, key, tree[key]!, infos?.get(key) ?? { key: at, value: at });
    }
  }
}

/** Accumulates text and `\xHH` bytes (decoded as UTF-8 together). */
class StringBuilder {
  private parts: string[] = [];
  private bytes: number[] = [];

  text(s: string): void {
    this.flush();
    this.parts.push(s);
  }

  byte(b: number): void {
    this.bytes.push(b);
  }

  done(): string {
    this.flush();
    return this.parts.join("");
  }

  private flush(): void {
    if (this.bytes.length > 0) {
      this.parts.push(Buffer.from(this.bytes).toString("utf8"));
      this.bytes = [];
    }
  }
}

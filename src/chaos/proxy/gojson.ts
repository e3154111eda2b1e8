/**
 * Just enough of Go's `encoding/json` to answer like Toxiproxy does: request bodies are decoded the way a
 * `json.Decoder` does it (only the first JSON value is read, trailing bytes are ignored, keys match
 * case-insensitively, numbers are typed), and every failure carries Go's error text, e.g.
 * `invalid character 'x' looking for beginning of value`, `unexpected EOF`, or
 * `json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64`.
 * Output helpers encode strings and float32 values the way `json.Marshal` does.
 */

/** A parsed JSON value that keeps number literals as written (Go types them only when decoding). */
export type JValue =
  | { readonly t: "object"; readonly entries: readonly (readonly [string, JValue])[] }
  | { readonly t: "array"; readonly items: readonly JValue[] }
  | { readonly t: "string"; readonly v: string }
  | { readonly t: "number"; readonly raw: string }
  | { readonly t: "bool"; readonly v: boolean }
  | { readonly t: "null" };

export type ParseResult =
  | { readonly ok: true; readonly value: JValue }
  | { readonly ok: false; readonly error: string };

class GoSyntaxError extends Error {}

const SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const utf8 = new TextDecoder("utf-8");

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Go's `quoteChar`: how the scanner shows the offending byte. */
export function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return "'\"'";
  const named: Record<number, string> = {
    7: "\\a",
    8: "\\b",
    12: "\\f",
    10: "\\n",
    13: "\\r",
    9: "\\t",
    11: "\\v",
    92: "\\\\",
  };
  const n = named[c];
  if (n !== undefined) return `'${n}'`;
  // strconv.Quote of the rune U+00XX: printable runes as they are, the rest escaped.
  if (c < 0x20 || c === 0x7f) return `'\\x${c.toString(16).padStart(2, "0")}'`;
  if ((c >= 0x80 && c <= 0xa0) || c === 0xad) return `'\\u00${c.toString(16).padStart(2, "0")}'`;
  return `'${String.fromCharCode(c)}'`;
}

class Parser {
  private i = 0;
  constructor(private readonly b: Uint8Array) {}

  private fail(c: number, context: string): never {
    throw new GoSyntaxError(`invalid character ${quoteChar(c)} ${context}`);
  }

  private eof(): never {
    throw new GoSyntaxError("unexpected EOF");
  }

  private skipSpace(): void {
    while (this.i < this.b.length && SPACE.has(this.b[this.i]!)) this.i++;
  }

  /** The next non-space byte, or "unexpected EOF". */
  private peek(): number {
    this.skipSpace();
    const c = this.b[this.i];
    if (c === undefined) this.eof();
    return c;
  }

  first(): JValue {
    this.skipSpace();
    if (this.i >= this.b.length) throw new GoSyntaxError("EOF");
    return this.value();
  }

  private value(): JValue {
    const c = this.peek();
    if (c === 0x7b) return this.object();
    if (c === 0x5b) return this.array();
    if (c === 0x22) return { t: "string", v: this.string() };
    if (c === 0x74) return this.literal("true", { t: "bool", v: true });
    if (c === 0x66) return this.literal("false", { t: "bool", v: false });
    if (c === 0x6e) return this.literal("null", { t: "null" });
    if (c === 0x2d || isDigit(c)) return this.number();
    return this.fail(c, "looking for beginning of value");
  }

  private object(): JValue {
    this.i++;
    const entries: [string, JValue][] = [];
    if (this.peek() === 0x7d) {
      this.i++;
      return { t: "object", entries };
    }
    for (;;) {
      const k = this.peek();
      if (k !== 0x22) this.fail(k, "looking for beginning of object key string");
      const key = this.string();
      const colon = this.peek();
      if (colon !== 0x3a) this.fail(colon, "after object key");
      this.i++;
      entries.push([key, this.value()]);
      const next = this.peek();
      this.i++;
      if (next === 0x7d) return { t: "object", entries };
      if (next !== 0x2c) this.fail(next, "after object key:value pair");
    }
  }

  private array(): JValue {
    this.i++;
    const items: JValue[] = [];
    if (this.peek() === 0x5d) {
      this.i++;
      return { t: "array", items };
    }
    for (;;) {
      items.push(this.value());
      const next = this.peek();
      this.i++;
      if (next === 0x5d) return { t: "array", items };
      if (next !== 0x2c) this.fail(next, "after array element");
    }
  }

  private literal(word: string, value: JValue): JValue {
    this.i++;
    for (let k = 1; k < word.length; k++) {
      const c = this.b[this.i];
      if (c === undefined) this.eof();
      if (c !== word.charCodeAt(k)) this.fail(c, `in literal ${word} (expecting '${word[k]}')`);
      this.i++;
    }
    return value;
  }

  private number(): JValue {
    const start = this.i;
    const at = (): number => {
      const c = this.b[this.i];
      if (c === undefined) this.eof();
      return c;
    };
    if (this.b[this.i] === 0x2d) {
      this.i++;
      const c = at();
      if (!isDigit(c)) this.fail(c, "in numeric literal");
    }
    if (this.b[this.i] === 0x30) this.i++;
    else while (isDigit(this.b[this.i])) this.i++;
    if (this.b[this.i] === 0x2e) {
      this.i++;
      const c = at();
      if (!isDigit(c)) this.fail(c, "after decimal point in numeric literal");
      while (isDigit(this.b[this.i])) this.i++;
    }
    if (this.b[this.i] === 0x65 || this.b[this.i] === 0x45) {
      this.i++;
      let c = at();
      if (c === 0x2b || c === 0x2d) {
        this.i++;
        c = at();
      }
      if (!isDigit(c)) this.fail(c, "in exponent of numeric literal");
      while (isDigit(this.b[this.i])) this.i++;
    }
    return { t: "number", raw: String.fromCharCode(...this.b.subarray(start, this.i)) };
  }

  private string(): string {
    this.i++;
    let out = "";
    let runStart = this.i;
    const flush = () => {
      if (this.i > runStart) out += utf8.decode(this.b.subarray(runStart, this.i));
    };
    let pendingHigh: number | undefined;
    const pushUnit = (u: number | undefined) => {
      // Go turns a lone surrogate escape into U+FFFD.
      if (pendingHigh !== undefined) {
        if (u !== undefined && u >= 0xdc00 && u <= 0xdfff) {
          out += String.fromCharCode(pendingHigh, u);
          pendingHigh = undefined;
          return;
        }
        out += "\ufffd";
        pendingHigh = undefined;
      }
      if (u === undefined) return;
      if (u >= 0xd800 && u <= 0xdbff) pendingHigh = u;
      else if (u >= 0xdc00 && u <= 0xdfff) out += "\ufffd";
      else out += String.fromCharCode(u);
    };
    for (;;) {
      const c = this.b[this.i];
      if (c === undefined) this.eof();
      if (c === 0x22) {
        flush();
        pushUnit(undefined);
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail(c, "in string literal");
      if (c !== 0x5c) {
        if (pendingHigh !== undefined && this.i === runStart) pushUnit(undefined);
        this.i++;
        continue;
      }
      flush();
      this.i++;
      const e = this.b[this.i];
      if (e === undefined) this.eof();
      const simple: Record<number, string> = {
        34: '"',
        92: "\\",
        47: "/",
        98: "\b",
        102: "\f",
        110: "\n",
        114: "\r",
        116: "\t",
      };
      const s = simple[e];
      if (s !== undefined) {
        pushUnit(undefined);
        out += s;
        this.i++;
      } else if (e === 0x75) {
        this.i++;
        let code = 0;
        for (let k = 0; k < 4; k++) {
          const h = this.b[this.i];
          if (h === undefined) this.eof();
          if (!isHex(h)) this.fail(h, "in \\u hexadecimal character escape");
          code = code * 16 + Number.parseInt(String.fromCharCode(h), 16);
          this.i++;
        }
        pushUnit(code);
      } else {
        this.fail(e, "in string escape code");
      }
      runStart = this.i;
    }
  }
}

/**
 * Read the first JSON value of a request body like `json.NewDecoder(body).Decode(...)`: an empty body is
 * `EOF`, a truncated value `unexpected EOF`, bad bytes `invalid character …`; bytes after the value are ignored.
 */
export function parseFirstValue(body: Uint8Array): ParseResult {
  try {
    return { ok: true, value: new Parser(body).first() };
  } catch (err) {
    if (err instanceof GoSyntaxError) return { ok: false, error: err.message };
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Typed decoding

/** The Go types Toxiproxy decodes request bodies into. `name` is what Go's reflect prints. */
export type GoType =
  | { readonly k: "string" }
  | { readonly k: "bool" }
  | { readonly k: "int64" }
  | { readonly k: "float32" }
  | { readonly k: "struct"; readonly name: string; readonly fields: readonly GoField[] }
  | { readonly k: "slice"; readonly name: string; readonly elem: GoType };

export interface GoField {
  readonly key: string;
  readonly type: GoType;
}

export interface GoStructType {
  readonly k: "struct";
  /** `pkg.Type`, or the literal `struct { … }` text of an anonymous struct. */
  readonly name: string;
  readonly fields: readonly GoField[];
}

export const GO_STRING: GoType = { k: "string" };
export const GO_BOOL: GoType = { k: "bool" };
export const GO_INT64: GoType = { k: "int64" };
export const GO_FLOAT32: GoType = { k: "float32" };

/** A decoded value: objects become records of the fields that were present and not null. */
export type Decoded = string | boolean | number | DecodedObject | Decoded[];
export interface DecodedObject {
  readonly [key: string]: Decoded;
}

const MAX_FLOAT32 = 3.4028234663852886e38;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function typeString(t: GoType): string {
  return t.k === "struct" || t.k === "slice" ? t.name : t.k;
}

/** `Type.Name()` in Go: the bare type name, "" for an anonymous struct. */
function shortName(t: GoStructType): string {
  if (t.name.startsWith("struct")) return "";
  const dot = t.name.lastIndexOf(".");
  return dot >= 0 ? t.name.slice(dot + 1) : t.name;
}

interface Ctx {
  struct: GoStructType | undefined;
  fields: string[];
  error: string | undefined;
}

function typeError(ctx: Ctx, what: string, t: GoType): void {
  if (ctx.error !== undefined) return;
  ctx.error =
    ctx.struct !== undefined || ctx.fields.length > 0
      ? `json: cannot unmarshal ${what} into Go struct field ${ctx.struct ? shortName(ctx.struct) : ""}.${ctx.fields.join(".")} of type ${typeString(t)}`
      : `json: cannot unmarshal ${what} into Go value of type ${typeString(t)}`;
}

function kindName(v: JValue): string {
  return v.t === "bool" ? "bool" : v.t;
}

function findField(t: GoStructType, key: string): GoField | undefined {
  const exact = t.fields.find((f) => f.key === key);
  if (exact) return exact;
  const lower = key.toLowerCase();
  return t.fields.find((f) => f.key.toLowerCase() === lower);
}

function decodeValue(v: JValue, t: GoType, ctx: Ctx, into?: DecodedObject): Decoded | undefined {
  if (v.t === "null") return undefined;
  switch (t.k) {
    case "string":
      if (v.t === "string") return v.v;
      typeError(ctx, v.t === "number" ? "number" : kindName(v), t);
      return undefined;
    case "bool":
      if (v.t === "bool") return v.v;
      typeError(ctx, kindName(v), t);
      return undefined;
    case "int64":
      if (v.t === "number") {
        if (/^-?\d+$/.test(v.raw)) {
          const n = BigInt(v.raw);
          if (n >= INT64_MIN && n <= INT64_MAX) return Number(n);
        }
        typeError(ctx, `number ${v.raw}`, t);
        return undefined;
      }
      typeError(ctx, kindName(v), t);
      return undefined;
    case "float32":
      if (v.t === "number") {
        const n = Number(v.raw);
        if (Math.abs(n) <= MAX_FLOAT32) return Math.fround(n);
        typeError(ctx, `number ${v.raw}`, t);
        return undefined;
      }
      typeError(ctx, kindName(v), t);
      return undefined;
    case "slice": {
      if (v.t !== "array") {
        typeError(ctx, kindName(v), t);
        return undefined;
      }
      const out: Decoded[] = [];
      for (const item of v.items) {
        const d = decodeValue(item, t.elem, ctx);
        out.push(d ?? (t.elem.k === "struct" ? {} : ""));
      }
      return out;
    }
    case "struct": {
      if (v.t !== "object") {
        typeError(ctx, kindName(v), t);
        return undefined;
      }
      const out: Record<string, Decoded> = { ...(into ?? {}) };
      for (const [key, value] of v.entries) {
        const f = findField(t, key);
        if (!f) continue;
        const saved = { struct: ctx.struct, depth: ctx.fields.length };
        ctx.struct = t;
        ctx.fields.push(f.key);
        const prev = out[f.key];
        const d = decodeValue(
          value,
          f.type,
          ctx,
          f.type.k === "struct" && prev !== undefined && typeof prev === "object" && !Array.isArray(prev)
            ? prev
            : undefined,
        );
        if (d !== undefined) out[f.key] = d;
        ctx.struct = saved.struct;
        ctx.fields.length = saved.depth;
      }
      return out;
    }
  }
}

/**
 * Decode a parsed value into a Go type. Like Go, a mismatched value is skipped and decoding goes on; the
 * first mismatch is the error. `into` holds the current values of a struct (Go decodes into existing values,
 * which is how toxic updates merge attributes).
 */
export function decodeAs(
  v: JValue,
  t: GoType,
  into?: DecodedObject,
): { readonly value: Decoded | undefined; readonly error: string | undefined } {
  const ctx: Ctx = { struct: undefined, fields: [], error: undefined };
  const value = decodeValue(v, t, ctx, into);
  return { value, error: ctx.error };
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

/** A JSON string as `json.Marshal` writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped. */
export function goString(s: string): string {
  return JSON.stringify(s).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A float32 as `json.Marshal` writes it: the shortest decimal that reads back as the same float32. */
export function goFloat32(f: number): string {
  const v = Math.fround(f);
  if (!Number.isFinite(v)) return "null";
  if (v === 0) return "0";
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(v.toPrecision(p));
    if (Math.fround(candidate) === v) return formatGoFloat(candidate);
  }
  return formatGoFloat(v);
}

function formatGoFloat(n: number): string {
  // Go switches to exponent form below 1e-6 and from 1e21 on, written like JavaScript does (1e-7, 1e+21).
  const abs = Math.abs(n);
  return abs < 1e-6 || abs >= 1e21 ? n.toExponential() : String(n);
}

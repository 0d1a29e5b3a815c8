/**
 * Limits on what a consumer will parse, and JSON read deliberately: the same choices and the same
 * park reasons as the Python SDK (eventbus/_limits.py), so a message is refused alike everywhere.
 *
 * - Size: a body over `maxBodyBytes` (1 MiB) is `body_too_large`, before anything looks inside.
 * - Nesting: deeper than `maxDepth` (64) is `too_deep`, found on the raw bytes before parsing.
 * - UTF-8: malformed UTF-8, a byte order mark, lone surrogate escapes (`"\ud800"`) and numbers
 *   that overflow a double are `invalid_json`; input is never "repaired".
 * - Big integers: an integer outside the signed 64-bit range is `number_out_of_range`.
 *   `JSON.parse` would silently round it; Python and Go refuse it, so we do too. (Integers between
 *   2^53 and 2^63 are accepted as Python accepts them, and lose digits in a JavaScript number.)
 * - Duplicate keys: `{"a": 1, "a": 2}` is `duplicate_key`; parsers disagree on which value wins.
 *
 * The common path costs one parse, one walk over the parsed value and a count of `":` tokens;
 * only a suspicious body (a huge number, a key count that differs, a surrogate escape) is
 * re-read exactly by the small scanner below.
 */
import { ConfigurationError, EnvelopeError } from "./errors.js";

export interface InputLimits {
  readonly maxBodyBytes: number;
  readonly maxDepth: number;
  readonly rejectDuplicateKeys: boolean;
}

export const DEFAULT_LIMITS: InputLimits = Object.freeze({ maxBodyBytes: 1 << 20, maxDepth: 64, rejectDuplicateKeys: true });

export function inputLimits(overrides: Partial<InputLimits> = {}): InputLimits {
  const limits = { ...DEFAULT_LIMITS, ...overrides };
  if (!(limits.maxBodyBytes >= 1)) throw new ConfigurationError("maxBodyBytes must be positive");
  if (!(limits.maxDepth >= 1 && limits.maxDepth <= 1000)) throw new ConfigurationError("maxDepth must be between 1 and 1000");
  return Object.freeze(limits);
}

const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Deepest nesting of arrays and objects in `body`, ignoring brackets inside strings. */
export function nestingDepth(body: Uint8Array): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let at = 0; at < body.length; at++) {
    const byte = body[at];
    if (inString) {
      if (byte === BACKSLASH) at++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > deepest) deepest = depth;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) depth--;
  }
  return deepest;
}

/** Size and nesting, checked on the raw bytes before any parser runs. */
export function checkRaw(body: Uint8Array, limits: InputLimits = DEFAULT_LIMITS): EnvelopeError | undefined {
  if (body.length > limits.maxBodyBytes) {
    return new EnvelopeError("body_too_large", `body of ${body.length} bytes exceeds the limit of ${limits.maxBodyBytes}`);
  }
  const depth = nestingDepth(body);
  if (depth > limits.maxDepth) {
    return new EnvelopeError("too_deep", `JSON nested ${depth} levels deep exceeds the limit of ${limits.maxDepth}`);
  }
  return undefined;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const BIG = 2 ** 63;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
const SPACED_KEY_TOKEN = /"\s+:/;
const KEY_TOKEN = /"\s*:/g;

/** UTF-8 text of a body; malformed UTF-8 (or a BOM, kept so the parser refuses it) is `invalid_json`. */
export function decodeUtf8(body: Uint8Array): string {
  try {
    return utf8.decode(body);
  } catch {
    throw new EnvelopeError("invalid_json", "body is not valid UTF-8 JSON: malformed UTF-8");
  }
}

/** Parse a JSON body under `limits`; an EnvelopeError with a stable reason otherwise. */
export function loadJson(body: Uint8Array | string, limits: InputLimits = DEFAULT_LIMITS): unknown {
  const text = typeof body === "string" ? body : decodeUtf8(body);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new EnvelopeError("invalid_json", `body is not valid UTF-8 JSON: ${(error as Error).message}`);
  }
  let suspicious = SURROGATE_ESCAPE.test(text);
  if (typeof value === "number") suspicious ||= !(Math.abs(value) < BIG);
  else if (typeof value === "object" && value !== null) {
    const [keys, huge] = scan(value);
    suspicious ||= huge || (limits.rejectDuplicateKeys && keyTokens(text) !== keys);
  }
  if (suspicious) new ExactScanner(text, limits.rejectDuplicateKeys).value();
  return value;
}

/** (number of object keys, whether a number may be outside int64) in a parsed object or array. */
function scan(root: object): [number, boolean] {
  let keys = 0;
  let huge = false;
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop() as object;
    const children: unknown[] = Array.isArray(node) ? node : Object.values(node);
    if (!Array.isArray(node)) keys += children.length;
    for (const child of children) {
      if (typeof child === "string") continue;
      if (typeof child === "number") {
        if (!(Math.abs(child) < BIG)) huge = true;
      } else if (typeof child === "object" && child !== null) stack.push(child);
    }
  }
  return [keys, huge];
}

/** Count of key tokens (`"`, optional whitespace, `:`); a plain `":` count unless whitespace intervenes somewhere. */
function keyTokens(text: string): number {
  if (SPACED_KEY_TOKEN.test(text)) return text.match(KEY_TOKEN)?.length ?? 0;
  let count = 0;
  for (let at = text.indexOf('":'); at !== -1; at = text.indexOf('":', at + 2)) count++;
  return count;
}

/** A re-read of text `JSON.parse` accepted, keeping what it throws away: key order, integer digits. */
class ExactScanner {
  private at = 0;
  constructor(
    private readonly text: string,
    private readonly duplicates: boolean,
  ) {}

  value(): void {
    this.space();
    const char = this.text[this.at];
    if (char === "{") this.object();
    else if (char === "[") this.array();
    else if (char === '"') this.string();
    else if (char === "t" || char === "n") this.at += 4;
    else if (char === "f") this.at += 5;
    else this.number();
    this.space();
  }

  private space(): void {
    while (" \t\n\r".includes(this.text[this.at] ?? "x")) this.at++;
  }

  private object(): void {
    this.at++;
    const seen = new Set<string>();
    this.space();
    if (this.text[this.at] === "}") {
      this.at++;
      return;
    }
    for (;;) {
      this.space();
      const key = this.string();
      if (this.duplicates && seen.has(key)) {
        throw new EnvelopeError("duplicate_key", `JSON object has the key '${key}' more than once`);
      }
      seen.add(key);
      this.space();
      this.at++; // ':'
      this.value();
      if (this.text[this.at++] === "}") return;
    }
  }

  private array(): void {
    this.at++;
    this.space();
    if (this.text[this.at] === "]") {
      this.at++;
      return;
    }
    for (;;) {
      this.value();
      if (this.text[this.at++] === "]") return;
    }
  }

  private string(): string {
    const start = this.at++;
    while (this.text[this.at] !== '"') this.at += this.text[this.at] === "\\" ? 2 : 1;
    this.at++;
    const decoded = JSON.parse(this.text.slice(start, this.at)) as string;
    if (!(decoded as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      throw new EnvelopeError("invalid_json", "body is not valid UTF-8 JSON: a string holds a lone surrogate escape");
    }
    return decoded;
  }

  private number(): void {
    const start = this.at;
    while (this.at < this.text.length && "+-0123456789.eE".includes(this.text[this.at])) this.at++;
    const token = this.text.slice(start, this.at);
    if (/^-?\d+$/.test(token)) {
      const value = BigInt(token);
      if (value < INT64_MIN || value > INT64_MAX) {
        throw new EnvelopeError("number_out_of_range", `integer ${token.slice(0, 40)} does not fit in 64 bits`);
      }
    } else if (!Number.isFinite(Number(token))) {
      throw new EnvelopeError("invalid_json", `body is not valid UTF-8 JSON: number ${token.slice(0, 40)} overflows a double`);
    }
  }
}

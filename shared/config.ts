/**
 * Configuration helpers shared by server and client: declarative settings resolved as
 * env over file over default, with every bad key reported at once in a
 * {@linkcode ConfigError}.
 *
 * @module
 */
import { ConfigError } from "./errors.ts";
import { type Duration, parseDuration } from "./duration.ts";
import { type ActionLogger, LOG_LEVELS, LogAction, type LogLevelName } from "./log.ts";

/** Turns a raw value (file scalar or env string) into a typed one. */
export interface ValueParser<T> {
  /** What a valid value looks like, for error messages. */
  readonly expected: string;
  /** Returns the typed value, or `undefined` when the raw value is invalid. */
  readonly parse: (raw: unknown) => T | undefined;
}

/** One setting: where it lives in the file and the env, how to parse it, its default. */
export interface Setting<T> {
  /** The key in the config file, dotted for nested YAML (`loop.amount`). */
  readonly file?: string;
  /** The environment variable that overrides the file. */
  readonly env: string;
  /** How to parse it. */
  readonly parser: ValueParser<T>;
  /** Used when neither file nor env sets it; without one the setting is required. */
  readonly default?: T;
}

/** A record of settings; {@linkcode resolveSettings} maps it to a record of values. */
export type Settings = Readonly<Record<string, Setting<unknown>>>;

/** The resolved values of a {@linkcode Settings} record. */
export type Resolved<S extends Settings> = {
  readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never;
};

/** Where values come from. */
export interface ConfigSources {
  /** The config file's name, for messages. */
  readonly fileName: string;
  /** The file's values by (dotted) key. */
  readonly fileValues: ReadonlyMap<string, unknown>;
  /** The environment. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

function show(raw: unknown): string {
  return typeof raw === "string" ? `"${raw}"` : JSON.stringify(raw) ?? String(raw);
}

/**
 * Resolves every setting: env over file over default.
 *
 * @param settings The declared settings.
 * @param sources The file values and the environment.
 * @returns The typed values.
 * @throws {ConfigError} Listing every missing or invalid setting, one line each.
 */
export function resolveSettings<S extends Settings>(
  settings: S,
  sources: ConfigSources,
): Resolved<S> {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, setting] of Object.entries(settings)) {
    const envRaw = sources.env[setting.env];
    const fileRaw = setting.file === undefined ? undefined : sources.fileValues.get(setting.file);
    const [raw, origin] = envRaw !== undefined && envRaw !== ""
      ? [envRaw, `env ${setting.env}`]
      : [fileRaw, `${sources.fileName} key ${setting.file}`];
    if (raw === undefined || raw === null || raw === "") {
      if ("default" in setting) {
        values[name] = setting.default;
      } else {
        problems.push(
          `Missing config value ${
            setting.file ?? setting.env
          }: set it in ${sources.fileName} or env ${setting.env} (expected ${setting.parser.expected})`,
        );
      }
      continue;
    }
    const value = setting.parser.parse(raw);
    if (value === undefined) {
      problems.push(
        `Invalid config value ${show(raw)} from ${origin}: expected ${setting.parser.expected}`,
      );
    } else {
      values[name] = value;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values as Resolved<S>;
}

function asText(raw: unknown): string | undefined {
  if (typeof raw === "string") return raw.trim();
  if (typeof raw === "number" || typeof raw === "bigint" || typeof raw === "boolean") {
    return String(raw);
  }
  return undefined;
}

/**
 * A whole number within `[min, max]`.
 *
 * @param min The smallest valid value.
 * @param max The largest valid value.
 * @returns The parser.
 */
export function integer(min: number, max: number): ValueParser<number> {
  return {
    expected: `a whole number from ${min} to ${max}`,
    parse(raw) {
      const text = asText(raw);
      if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
      const n = Number(text);
      return n >= min && n <= max ? n : undefined;
    },
  };
}

/** A Go-style duration such as `100ms`, `5s` or `1m30s`. */
export const duration: ValueParser<Duration> = {
  expected: 'a duration such as "100ms", "5s" or "1m30s"',
  parse(raw) {
    const text = asText(raw);
    if (text === undefined) return undefined;
    try {
      return parseDuration(text);
    } catch {
      return undefined;
    }
  },
};

/** A log level name, case-insensitive; `WARN` is read as `WARNING`. */
export const logLevel: ValueParser<LogLevelName> = {
  expected: `one of ${LOG_LEVELS.join(", ")}`,
  parse(raw) {
    const text = asText(raw)?.toUpperCase();
    const name = text === "WARN" ? "WARNING" : text;
    return (LOG_LEVELS as readonly string[]).includes(name ?? "")
      ? name as LogLevelName
      : undefined;
  },
};

/**
 * One of a fixed set of words.
 *
 * @param choices The valid words.
 * @returns The parser.
 */
export function oneOf<const T extends string>(choices: readonly T[]): ValueParser<T> {
  return {
    expected: `one of ${choices.join(", ")}`,
    parse(raw) {
      const text = asText(raw)?.toLowerCase();
      return choices.find((choice) => choice === text);
    },
  };
}

/**
 * Non-empty text of at most `maxLength` characters.
 *
 * @param maxLength The longest valid text.
 * @returns The parser.
 */
export function text(maxLength = 4096): ValueParser<string> {
  return {
    expected: `non-empty text of at most ${maxLength} characters`,
    parse(raw) {
      const value = asText(raw);
      return value !== undefined && value.length > 0 && value.length <= maxLength
        ? value
        : undefined;
    },
  };
}

/** A network address and port. */
export interface HostPort {
  /** Host name or IP. */
  readonly hostname: string;
  /** TCP port. */
  readonly port: number;
  /** As written, for logs. */
  readonly text: string;
}

/** `host:port`, e.g. `server:12345`. */
export const hostPort: ValueParser<HostPort> = {
  expected: 'an address "host:port" with a port from 1 to 65535',
  parse(raw) {
    const value = asText(raw);
    const match = value?.match(/^\[?([^\s\]]+?)\]?:(\d{1,5})$/);
    if (!match) return undefined;
    const port = Number(match[2]);
    if (port < 1 || port > 65535) return undefined;
    return { hostname: match[1]!, port, text: value! };
  },
};

/** Where a program looks for its configuration. */
export interface ConfigSource {
  /** The environment. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The config file; otherwise the env var named by the program, then its default path. */
  readonly path?: string;
  /**
   * Receives each part of the file that was ignored (a typo'd key, a line that does not
   * parse), before the values are resolved, so a program can log them once logging is set
   * up, even when resolving then fails.
   */
  readonly onWarning?: (warning: ConfigWarning) => void;
}

/** A part of a config file that was ignored; the run goes on without it. */
export interface ConfigWarning {
  /** The config file. */
  readonly file: string;
  /** The line (INI files), when known. */
  readonly line?: number;
  /** The key as written; for a line that does not parse, its first word. */
  readonly key: string;
  /** The known key closest to it. */
  readonly closest: string;
  /** What is wrong with it. */
  readonly problem: string;
}

/**
 * The known key nearest to `key`: fewest single-character edits (insert, delete,
 * replace, swap two neighbours), letter case ignored; ties go to the first known key.
 */
function closestKey(key: string, known: readonly string[]): string {
  let best = known[0] ?? "";
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Optimal string alignment distance: Levenshtein plus swaps of adjacent characters. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = rows[i]!;
      const above = rows[i - 1]!;
      row[j] = Math.min(
        above[j]! + 1,
        row[j - 1]! + 1,
        above[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j]!, rows[i - 2]![j - 2]! + 1);
      }
    }
  }
  return rows[a.length]![b.length]!;
}

/** The file keys of `settings`, in declaration order. */
function fileKeys(settings: Settings): string[] {
  return Object.values(settings).flatMap((setting) => setting.file ?? []);
}

/**
 * Warnings for the keys of a config file that no setting reads (a YAML section holding
 * known keys, such as `loop`, is not one).
 *
 * @param settings The program's settings.
 * @param file The config file's name.
 * @param keys The file's (dotted) keys.
 * @returns One warning per unknown key, with the closest known key.
 */
export function unknownKeyWarnings(
  settings: Settings,
  file: string,
  keys: Iterable<string>,
): ConfigWarning[] {
  const known = fileKeys(settings);
  const warnings: ConfigWarning[] = [];
  for (const key of keys) {
    if (known.includes(key) || known.some((k) => k.startsWith(`${key}.`))) continue;
    warnings.push({ file, key, closest: closestKey(key, known), problem: "unknown key, ignored" });
  }
  return warnings;
}

/**
 * Warnings for the lines of an INI config file that the program ignores: lines that are
 * not `KEY = value`, unknown keys, and sections other than `[DEFAULT]` (whose keys no
 * setting reads). Comments (`;`, `#`) and blank lines are fine.
 *
 * @param settings The program's settings.
 * @param file The config file's name.
 * @param text The file's text.
 * @returns One warning per ignored line, with its number and the closest known key.
 */
export function iniWarnings(settings: Settings, file: string, text: string): ConfigWarning[] {
  const known = fileKeys(settings);
  const warnings: ConfigWarning[] = [];
  let section = "DEFAULT";
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith(";") || line.startsWith("#")) continue;
    const at = { file, line: index + 1 };
    if (line.startsWith("[") && line.endsWith("]")) {
      section = line.slice(1, -1).trim();
      if (section !== "DEFAULT") {
        const problem = "a section other than [DEFAULT], its keys are ignored";
        warnings.push({ ...at, key: line, closest: "[DEFAULT]", problem });
      }
      continue;
    }
    const equals = line.indexOf("=");
    const key = (equals === -1 ? line.split(/\s/)[0]! : line.slice(0, equals)).trim();
    if (key === "" || equals === -1) {
      const problem = "not a KEY = value line, ignored";
      warnings.push({ ...at, key: key || line, closest: closestKey(key, known), problem });
    } else if (section === "DEFAULT" && !known.includes(key)) {
      const problem = "unknown key, ignored";
      warnings.push({ ...at, key, closest: closestKey(key, known), problem });
    }
  }
  return warnings;
}

/**
 * Logs each warning as one WARNING line in the course's format:
 * `action: config_warning | result: fail | file: … | line: … | key: … | closest: … | detail: …`.
 *
 * @param log The program's logger.
 * @param warnings What the config loader reported.
 */
export function logConfigWarnings(log: ActionLogger, warnings: readonly ConfigWarning[]): void {
  for (const { file, line, key, closest, problem } of warnings) {
    log.warning(LogAction.CONFIG_WARNING, "fail", {
      file,
      ...(line === undefined ? {} : { line }),
      key,
      closest,
      detail: problem,
    });
  }
}

/**
 * Finds and reads a program's config file: `source.path`, else env `envVar`, else
 * `defaultPath` (which, unlike the others, may be missing).
 *
 * @param source The environment and an explicit path.
 * @param options The env var naming another file, and the default path.
 * @returns The path used and the file's text (`""` for a missing default file).
 * @throws {ConfigError} If a named file cannot be read.
 */
export function readConfigFile(
  source: ConfigSource,
  options: { readonly envVar: string; readonly defaultPath: string },
): { path: string; text: string } {
  const explicit = source.path ?? source.env[options.envVar];
  const path = explicit ?? options.defaultPath;
  return { path, text: readConfigText(path, explicit !== undefined) };
}

/**
 * Reads a config file's text; a missing file at the default path reads as empty (every
 * value then comes from env or defaults), at an explicit path it is an error.
 *
 * @param path The file to read.
 * @param explicit Whether the user named this path.
 * @returns The file's text, or `""`.
 * @throws {ConfigError} If the file cannot be read.
 */
export function readConfigText(path: string, explicit: boolean): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !explicit) return "";
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError([`Cannot read config file ${path}: ${reason}`], { cause: error });
  }
}

/**
 * Flattens nested objects into dotted keys: `{loop: {amount: 5}}` → `loop.amount`.
 *
 * @param value A parsed YAML document.
 * @returns The scalar leaves by dotted key.
 */
export function flattenKeys(value: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (node: unknown, prefix: string): void => {
    if (node !== null && typeof node === "object" && !Array.isArray(node)) {
      for (const [key, child] of Object.entries(node)) {
        walk(child, prefix === "" ? key : `${prefix}.${key}`);
      }
    } else if (prefix !== "") {
      out.set(prefix, node);
    }
  };
  walk(value, "");
  return out;
}

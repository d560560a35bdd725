/**
 * Configuration shared by server and client: declarative settings resolved as env over
 * file over default, every bad key reported at once in a {@linkcode ConfigError}, and a
 * warning for each part of the file that no setting reads.
 *
 * @module
 */
import { utf8Length, type ValueParser } from "./config_values.ts";
import { ConfigError, errorText } from "./errors.ts";
import { type ActionLogger, LogAction } from "./log.ts";

/** One setting: its key in the file (dotted for nested YAML), its env var, parser, default. */
export interface Setting<T> {
  readonly file: string;
  readonly env: string;
  readonly parser: ValueParser<T>;
  /** Used when neither file nor env sets it; without one the setting is required. */
  readonly default?: T;
}

/** A {@linkcode Setting}, e.g. `setting("id", "CLI_ID", integer(1, 9))`: no default, required. */
export function setting<T>(
  file: string,
  env: string,
  parser: ValueParser<T>,
  fallback?: T,
): Setting<T> {
  return fallback === undefined ? { file, env, parser } : { file, env, parser, default: fallback };
}

/** A record of settings; {@linkcode resolveSettings} maps it to a record of values. */
export type Settings = Readonly<Record<string, Setting<unknown>>>;

/** The resolved values of a {@linkcode Settings} record. */
export type Resolved<S extends Settings> = {
  readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never;
};

/** Where values come from: the file's name and values by (dotted) key, and the environment. */
export interface ConfigSources {
  readonly fileName: string;
  readonly fileValues: ReadonlyMap<string, unknown>;
  readonly env: Readonly<Record<string, string | undefined>>;
}

function show(raw: unknown, hidden = false): string {
  const text = typeof raw === "string" ? `"${raw}"` : JSON.stringify(raw) ?? String(raw);
  return hidden ? `(not shown, ${utf8Length(String(raw))} bytes)` : text;
}

/**
 * Resolves every setting: env over file over default (an empty value counts as unset).
 *
 * @throws {ConfigError} Listing every missing or invalid setting, one line each.
 */
export function resolveSettings<S extends Settings>(
  settings: S,
  sources: ConfigSources,
): Resolved<S> {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, { file, env, parser, ...rest }] of Object.entries(settings)) {
    const envRaw = sources.env[env];
    const [raw, origin] = envRaw !== undefined && envRaw !== ""
      ? [envRaw, `env ${env}`]
      : [sources.fileValues.get(file), `${sources.fileName} key ${file}`];
    if (raw === undefined || raw === null || raw === "") {
      if ("default" in rest) values[name] = rest.default;
      else {
        problems.push(
          `Missing config value ${file}: set it in ${sources.fileName} or env ${env} (expected ${parser.expected})`,
        );
      }
      continue;
    }
    const value = parser.parse(raw);
    if (value !== undefined) values[name] = value;
    else {problems.push(
        `Invalid config value ${
          show(raw, parser.hidden)
        } from ${origin}: expected ${parser.expected}`,
      );}
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values as Resolved<S>;
}

/** Where a program looks for its configuration. */
export interface ConfigSource {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The config file; otherwise the env var named by the program, then its default path. */
  readonly path?: string;
  /**
   * Hears of each ignored part of the file (a typo'd key, a line that does not parse)
   * before values are resolved, to log them once logging is set up, even if that fails.
   */
  readonly onWarning?: (warning: ConfigWarning) => void;
}

/**
 * A part of a config file that was ignored (the run goes on without it): its line (INI),
 * its key as written (for a line that does not parse, its first word), the known key
 * closest to it, and what is wrong with it.
 */
export interface ConfigWarning {
  readonly file: string;
  readonly line?: number;
  readonly key: string;
  readonly closest: string;
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
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i]!;
    const above = d[i - 1]!;
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        above[j]! + 1,
        row[j - 1]! + 1,
        above[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[a.length]![b.length]!;
}

function fileKeys(settings: Settings): string[] {
  return Object.values(settings).map((setting) => setting.file);
}

/**
 * Warnings for the keys of a config file that no setting reads (a YAML section holding
 * known keys, such as `loop`, is not one), each with the closest known key.
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
 * Warnings for the lines of an INI file that are ignored: not `KEY = value` (comments and
 * blank lines aside), unknown keys, sections other than `[DEFAULT]`; each with the closest key.
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

/** Logs each warning as one `config_warning` WARNING line: file, line, key, closest, detail. */
export function logConfigWarnings(log: ActionLogger, warnings: readonly ConfigWarning[]): void {
  for (const { file, line, key, closest, problem } of warnings) {
    const fields = { file, ...(line === undefined ? {} : { line }), key, closest, detail: problem };
    log.warning(LogAction.CONFIG_WARNING, "fail", fields);
  }
}

/**
 * Reads a config file's text; a missing file reads as empty at the default path, and is
 * an error at one the user named.
 *
 * @throws {ConfigError} If the file cannot be read.
 */
export function readConfigText(path: string, explicit: boolean): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !explicit) return "";
    throw new ConfigError([`Cannot read config file ${path}: ${errorText(error)}`], {
      cause: error,
    });
  }
}

/**
 * How a program finds its config file (the env var naming another one, e.g. `SERVER_CONFIG`, else
 * its default path) and reads its values by (dotted) key and what of it no setting reads.
 */
export interface ConfigFile {
  readonly envVar: string;
  readonly defaultPath: string;
  readonly read: (text: string, path: string) => {
    readonly values: ReadonlyMap<string, unknown>;
    readonly warnings: readonly ConfigWarning[];
  };
}

/**
 * Loads a program's settings: finds its file (`source.path`, else env `file.envVar`, else
 * `file.defaultPath`), tells `source.onWarning` what of it is ignored, and resolves env
 * over file over defaults; the file's path and values come along, for checks across them.
 *
 * @throws {ConfigError} Listing every bad or missing value, or why the file cannot be read.
 */
export function loadSettings<S extends Settings>(
  settings: S,
  source: ConfigSource,
  file: ConfigFile,
): { config: Resolved<S>; path: string; values: ReadonlyMap<string, unknown> } {
  const explicit = source.path ?? source.env[file.envVar];
  const path = explicit ?? file.defaultPath;
  const { values, warnings } = file.read(readConfigText(path, explicit !== undefined), path);
  for (const warning of warnings) source.onWarning?.(warning);
  const config = resolveSettings(settings, { fileName: path, fileValues: values, env: source.env });
  return { config, path, values };
}

/**
 * Flattens nested objects into dotted keys: `{loop: {amount: 5}}` → `loop.amount`.
 *
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

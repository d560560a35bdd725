/**
 * The server's configuration: `server/config.ini` (`[DEFAULT]` section), overridden by
 * environment variables of the same names, over defaults.
 *
 * @module
 */
import { parseINI } from "confbox/ini";
import {
  type ConfigSource,
  iniWarnings,
  loadSettings,
  type Resolved,
  setting,
} from "../shared/config.ts";
import {
  durationIn,
  integer,
  logLevel,
  oneOf,
  text,
  type ValueParser,
} from "../shared/config_values.ts";
import { MAX_SETTING_DURATION as MAX, parseDuration } from "../shared/duration.ts";
import { ConfigError } from "../shared/errors.ts";
import { FSYNC_POLICIES } from "./storage.ts";

/** Agency ids separated by spaces or commas, e.g. `4` or `2,4`. */
const agencyList: ValueParser<readonly number[]> = {
  expected: 'agency ids from 1 to 65535 separated by spaces or commas, e.g. "4" or "2,4"',
  parse(raw) {
    const text = typeof raw === "number" ? String(raw) : typeof raw === "string" ? raw : "";
    if (!/^\s*\d+(?:[\s,]+\d+)*\s*$/.test(text)) return undefined;
    const ids = [...new Set(text.trim().split(/[\s,]+/).map(Number))].sort((a, b) => a - b);
    return ids.every((id) => id >= 1 && id <= 65535) ? ids : undefined;
  },
};

/** The most session threads `SERVER_WORKERS` may ask for. */
export const MAX_WORKERS = 64;

/** One session thread per core (`navigator.hardwareConcurrency`), within 1..MAX_WORKERS. */
const DEFAULT_WORKERS = Math.min(MAX_WORKERS, Math.max(1, navigator.hardwareConcurrency || 1));

/** A setting whose INI key and env var have the same name, as every server setting does. */
function key<T>(name: string, parser: ValueParser<T>, fallback: T) {
  return setting(name, name, parser, fallback);
}

/**
 * Every server setting; its INI key is also its env var. Each duration has a range (0 only
 * where it is said what it means): the longest, 576h, stays under the 2³¹−1 ms a timer keeps,
 * and none is short enough to make a loop spin.
 */
const SERVER_SETTINGS = {
  port: key("SERVER_PORT", integer(0, 65535), 12345),
  ip: key("SERVER_IP", text(255), "server"),
  listenBacklog: key("SERVER_LISTEN_BACKLOG", integer(1, 65535), 5),
  logLevel: key("LOGGING_LEVEL", logLevel, "INFO"),
  agencies: key("SERVER_AGENCIES", integer(1, 65535), 5),
  storagePath: key("SERVER_STORAGE_PATH", text(4096), "./bets.csv"),
  listenAddress: key("SERVER_LISTEN_ADDRESS", text(255), "0.0.0.0"),
  fsync: key("SERVER_FSYNC", oneOf(FSYNC_POLICIES), "group"),
  maxConnections: key("SERVER_MAX_CONNECTIONS", integer(1, 100_000), 2048),
  idleTimeout: key(
    "SERVER_IDLE_TIMEOUT",
    durationIn("10ms", MAX, "no timeout"),
    parseDuration("30s"),
  ),
  maxFrameSize: key("SERVER_MAX_FRAME_SIZE", integer(64, 8192), 8192),
  // 0 would answer NOT_READY at once and the agency ask again at once: a loop, so refused.
  drawWait: key("SERVER_DRAW_WAIT", durationIn("10ms", "10m"), parseDuration("1s")),
  progressInterval: key("SERVER_PROGRESS_INTERVAL", durationIn("10ms", MAX), parseDuration("5s")),
  secretsPath: key("SERVER_SECRETS_PATH", text(4096), ""),
  excludedAgencies: key("SERVER_EXCLUDED_AGENCIES", agencyList, []),
  workers: key("SERVER_WORKERS", integer(1, MAX_WORKERS), DEFAULT_WORKERS),
};

/** The resolved server configuration. */
export type ServerConfig = Resolved<typeof SERVER_SETTINGS>;

/** `config.ini`'s values by key: `[DEFAULT]`'s and those before any section header alike. */
function iniValues(text: string): Map<string, unknown> {
  const { DEFAULT: section, ...top } = parseINI<Record<string, unknown>>(text);
  const own = section !== null && typeof section === "object" ? section : {};
  return new Map(Object.entries({ ...top, ...own }));
}

/**
 * Loads the server configuration (see `loadSettings`): env over `source.path`, else env
 * `SERVER_CONFIG`, else `server/config.ini`, over defaults.
 *
 * @throws {ConfigError} Listing every bad or missing value.
 */
export function loadServerConfig(source: ConfigSource): ServerConfig {
  const { config, path, values } = loadSettings(SERVER_SETTINGS, source, {
    envVar: "SERVER_CONFIG",
    defaultPath: "server/config.ini",
    read: (text, path) => ({
      values: iniValues(text),
      warnings: iniWarnings(SERVER_SETTINGS, path, text),
    }),
  });
  const problems: string[] = [];
  // Where a setting's value came from; an empty env var counts only when `empty` says so.
  const origin = (name: string, empty = false) => {
    const env = source.env[name];
    return env !== undefined && (empty || env !== "") ? `env ${name}` : `${path} key ${name}`;
  };
  // Resolution reads an empty value as unset; for the storage that would quietly mean
  // ./bets.csv, maybe another draw than the one meant.
  const storage = source.env["SERVER_STORAGE_PATH"] ?? values.get("SERVER_STORAGE_PATH");
  if (storage !== undefined && String(storage).trim() === "") {
    problems.push(
      `Invalid config value "" from ${origin("SERVER_STORAGE_PATH", true)}: expected the ` +
        "path of the bets file (leave the setting out for ./bets.csv)",
    );
  }
  const excluded = config.excludedAgencies;
  if (excluded.some((id) => id > config.agencies) || excluded.length === config.agencies) {
    const where = origin("SERVER_EXCLUDED_AGENCIES");
    problems.push(
      `Invalid config value "${excluded.join(" ")}" from ${where}: expected agency ids from 1 ` +
        `to ${config.agencies} (SERVER_AGENCIES), not all of them`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

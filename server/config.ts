/**
 * The server's configuration: `server/config.ini` (`[DEFAULT]` section), overridden by
 * environment variables of the same names, over defaults.
 *
 * @module
 */
import { parseINI } from "confbox/ini";
import {
  type ConfigSource,
  duration,
  iniWarnings,
  integer,
  logLevel,
  oneOf,
  readConfigFile,
  type Resolved,
  resolveSettings,
  text,
  type ValueParser,
} from "../shared/config.ts";
import { durationOf } from "../shared/duration.ts";
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

/** Every server setting: INI key = env var name. */
export const SERVER_SETTINGS = {
  port: { file: "SERVER_PORT", env: "SERVER_PORT", parser: integer(0, 65535), default: 12345 },
  ip: { file: "SERVER_IP", env: "SERVER_IP", parser: text(255), default: "server" },
  listenBacklog: {
    file: "SERVER_LISTEN_BACKLOG",
    env: "SERVER_LISTEN_BACKLOG",
    parser: integer(1, 65535),
    default: 5,
  },
  logLevel: { file: "LOGGING_LEVEL", env: "LOGGING_LEVEL", parser: logLevel, default: "INFO" },
  agencies: {
    file: "SERVER_AGENCIES",
    env: "SERVER_AGENCIES",
    parser: integer(1, 65535),
    default: 5,
  },
  storagePath: {
    file: "SERVER_STORAGE_PATH",
    env: "SERVER_STORAGE_PATH",
    parser: text(4096),
    default: "./bets.csv",
  },
  listenAddress: {
    file: "SERVER_LISTEN_ADDRESS",
    env: "SERVER_LISTEN_ADDRESS",
    parser: text(255),
    default: "0.0.0.0",
  },
  fsync: {
    file: "SERVER_FSYNC",
    env: "SERVER_FSYNC",
    parser: oneOf(FSYNC_POLICIES),
    default: "group",
  },
  maxConnections: {
    file: "SERVER_MAX_CONNECTIONS",
    env: "SERVER_MAX_CONNECTIONS",
    parser: integer(1, 100_000),
    default: 2048,
  },
  idleTimeout: {
    file: "SERVER_IDLE_TIMEOUT",
    env: "SERVER_IDLE_TIMEOUT",
    parser: duration,
    default: durationOf(30_000),
  },
  maxFrameSize: {
    file: "SERVER_MAX_FRAME_SIZE",
    env: "SERVER_MAX_FRAME_SIZE",
    parser: integer(64, 8192),
    default: 8192,
  },
  drawWait: {
    file: "SERVER_DRAW_WAIT",
    env: "SERVER_DRAW_WAIT",
    parser: duration,
    default: durationOf(1000),
  },
  progressInterval: {
    file: "SERVER_PROGRESS_INTERVAL",
    env: "SERVER_PROGRESS_INTERVAL",
    parser: duration,
    default: durationOf(5000),
  },
  secretsPath: {
    file: "SERVER_SECRETS_PATH",
    env: "SERVER_SECRETS_PATH",
    parser: text(4096),
    default: "",
  },
  excludedAgencies: {
    file: "SERVER_EXCLUDED_AGENCIES",
    env: "SERVER_EXCLUDED_AGENCIES",
    parser: agencyList,
    default: [] as readonly number[],
  },
} as const;

/** The resolved server configuration. */
export type ServerConfig = Resolved<typeof SERVER_SETTINGS>;

/** Where {@linkcode loadServerConfig} looks: `path`, else env `SERVER_CONFIG`, else `server/config.ini`. */
export type ServerConfigSource = ConfigSource;

/**
 * Loads the server configuration: env over `config.ini` over defaults. Lines of the file
 * it ignores go to `source.onWarning`.
 *
 * @param source The environment, file path and where warnings go.
 * @returns The validated configuration.
 * @throws {ConfigError} Listing every bad or missing value.
 */
export function loadServerConfig(source: ServerConfigSource): ServerConfig {
  const { path, text } = readConfigFile(source, {
    envVar: "SERVER_CONFIG",
    defaultPath: "server/config.ini",
  });
  for (const warning of iniWarnings(SERVER_SETTINGS, path, text)) source.onWarning?.(warning);
  const values = parseServerConfigFile(text, path);
  const config = resolveSettings(SERVER_SETTINGS, {
    fileName: path,
    fileValues: values,
    env: source.env,
  });
  const problems: string[] = [];
  const origin = (key: string) =>
    source.env[key] !== undefined && source.env[key] !== "" ? `env ${key}` : `${path} key ${key}`;
  // Resolution reads an empty value as unset; for the storage that would quietly mean
  // ./bets.csv, maybe another draw than the one meant.
  const storage = source.env["SERVER_STORAGE_PATH"] ?? values.get("SERVER_STORAGE_PATH");
  if (storage !== undefined && String(storage).trim() === "") {
    const where = source.env["SERVER_STORAGE_PATH"] !== undefined
      ? "env SERVER_STORAGE_PATH"
      : `${path} key SERVER_STORAGE_PATH`;
    problems.push(
      `Invalid config value "" from ${where}: expected the path of the bets file ` +
        "(leave the setting out for ./bets.csv)",
    );
  }
  const excluded = config.excludedAgencies;
  if (excluded.some((id) => id > config.agencies) || excluded.length === config.agencies) {
    problems.push(
      `Invalid config value "${excluded.join(" ")}" from ${
        origin("SERVER_EXCLUDED_AGENCIES")
      }: expected agency ids from 1 to ${config.agencies} (SERVER_AGENCIES), not all of them`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * Parses `config.ini` text into its values by key (`[DEFAULT]` and top-level keys alike).
 *
 * @param text The file's text.
 * @param path The file's name, for the error.
 * @returns Values by key.
 * @throws {ConfigError} If the text is not INI.
 */
export function parseServerConfigFile(text: string, path: string): Map<string, unknown> {
  let parsed: Record<string, unknown>;
  try {
    parsed = parseINI(text);
  } catch (error) {
    throw new ConfigError([`Cannot parse ${path}: ${String(error)}`], { cause: error });
  }
  // The parser puts keys before any section header at the top level and `[DEFAULT]` under its name.
  const section = parsed["DEFAULT"];
  const values = new Map<string, unknown>(Object.entries(parsed));
  values.delete("DEFAULT");
  if (section !== null && typeof section === "object") {
    for (const [key, value] of Object.entries(section)) values.set(key, value);
  }
  return values;
}

/**
 * The client's configuration: `client/config.yaml`, overridden by `CLI_*` environment
 * variables, over defaults.
 *
 * @module
 */
import { parseYAML } from "confbox/yaml";
import {
  type ConfigSource,
  duration,
  flattenKeys,
  hostPort,
  integer,
  logLevel,
  oneOf,
  readConfigFile,
  type Resolved,
  resolveSettings,
  text,
  unknownKeyWarnings,
} from "../shared/config.ts";
import { durationOf } from "../shared/duration.ts";
import { ConfigError } from "../shared/errors.ts";

/** What the client does: Part 1's echo loop, exercise 5's single bet, or an agency. */
export const CLIENT_MODES = ["agency", "bet", "echo"] as const;

/** Every client setting: YAML key and env override. */
export const CLIENT_SETTINGS = {
  id: { file: "id", env: "CLI_ID", parser: integer(1, 65535) },
  serverAddress: {
    file: "server.address",
    env: "CLI_SERVER_ADDRESS",
    parser: hostPort,
    default: { hostname: "server", port: 12345, text: "server:12345" },
  },
  loopAmount: {
    file: "loop.amount",
    env: "CLI_LOOP_AMOUNT",
    parser: integer(0, 1_000_000),
    default: 5,
  },
  loopPeriod: {
    file: "loop.period",
    env: "CLI_LOOP_PERIOD",
    parser: duration,
    default: durationOf(5000),
  },
  logLevel: { file: "log.level", env: "CLI_LOG_LEVEL", parser: logLevel, default: "INFO" },
  batchMaxAmount: {
    file: "batch.maxAmount",
    env: "CLI_BATCH_MAXAMOUNT",
    parser: integer(1, 65535),
    default: 100,
  },
  mode: { file: "mode", env: "CLI_MODE", parser: oneOf(CLIENT_MODES), default: "agency" },
  dataPath: { file: "data.path", env: "CLI_DATA_PATH", parser: text(4096), default: "" },
  window: { file: "batch.window", env: "CLI_BATCH_WINDOW", parser: integer(1, 1024), default: 64 },
  secret: { file: "secret", env: "CLI_SECRET", parser: text(255), default: "" },
  connectAttempts: {
    file: "connect.attempts",
    env: "CLI_CONNECT_ATTEMPTS",
    parser: integer(1, 1000),
    default: 10,
  },
  connectBackoff: {
    file: "connect.backoff",
    env: "CLI_CONNECT_BACKOFF",
    parser: duration,
    default: durationOf(100),
  },
  connectTimeout: {
    file: "connect.timeout",
    env: "CLI_CONNECT_TIMEOUT",
    parser: duration,
    default: durationOf(5000),
  },
  timeout: { file: "timeout", env: "CLI_TIMEOUT", parser: duration, default: durationOf(30_000) },
} as const;

/** The resolved client configuration; `dataPath` is filled in from the id. */
export type ClientConfig = Resolved<typeof CLIENT_SETTINGS>;

/** Where {@linkcode loadClientConfig} looks: `path`, else env `CLI_CONFIG`, else `client/config.yaml`. */
export type ClientConfigSource = ConfigSource;

/**
 * Loads the client configuration: env over `config.yaml` over defaults. Keys of the file
 * that no setting reads go to `source.onWarning`.
 *
 * @param source The environment, file path and where warnings go.
 * @returns The validated configuration.
 * @throws {ConfigError} Listing every bad or missing value.
 */
export function loadClientConfig(source: ClientConfigSource): ClientConfig {
  const { path, text } = readConfigFile(source, {
    envVar: "CLI_CONFIG",
    defaultPath: "client/config.yaml",
  });
  const fileValues = parseClientConfigFile(text, path);
  for (const warning of unknownKeyWarnings(CLIENT_SETTINGS, path, fileValues.keys())) {
    source.onWarning?.(warning);
  }
  const config = resolveSettings(CLIENT_SETTINGS, { fileName: path, fileValues, env: source.env });
  return config.dataPath === "" ? { ...config, dataPath: `.data/agency-${config.id}.csv` } : config;
}

/**
 * Parses `config.yaml` text into its values by dotted key (`loop.amount`).
 *
 * @param text The file's text.
 * @param path The file's name, for the error.
 * @returns Values by dotted key.
 * @throws {ConfigError} If the text is not YAML.
 */
export function parseClientConfigFile(text: string, path: string): Map<string, unknown> {
  try {
    // An empty file is an empty document (every value from env or defaults).
    return flattenKeys(text.trim() === "" ? {} : parseYAML(text));
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new ConfigError([`Cannot parse ${path}: ${reason}`], { cause: error });
  }
}

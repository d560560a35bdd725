/**
 * The client's configuration: `client/config.yaml`, overridden by `CLI_*` environment
 * variables, over defaults.
 *
 * @module
 */
import { parseYAML } from "confbox/yaml";
import {
  type ConfigSource,
  flattenKeys,
  loadSettings,
  type Resolved,
  setting,
  unknownKeyWarnings,
} from "../shared/config.ts";
import {
  durationIn,
  hostPort,
  integer,
  logLevel,
  oneOf,
  secret,
  text,
} from "../shared/config_values.ts";
import { MAX_SETTING_DURATION as MAX, parseDuration } from "../shared/duration.ts";
import { ConfigError, errorText } from "../shared/errors.ts";

/** What the client does: Part 1's echo loop, exercise 5's single bet, or an agency. */
export const CLIENT_MODES = ["agency", "bet", "echo"] as const;

/**
 * Every client setting: YAML key and env override. Each duration has a range (0 only where it
 * is said what it means): the longest, 576h, stays under the 2³¹−1 ms a timer keeps.
 */
const CLIENT_SETTINGS = {
  id: setting("id", "CLI_ID", integer(1, 65535)),
  serverAddress: setting(
    "server.address",
    "CLI_SERVER_ADDRESS",
    hostPort,
    hostPort.parse("server:12345")!,
  ),
  loopAmount: setting("loop.amount", "CLI_LOOP_AMOUNT", integer(0, 1_000_000), 5),
  loopPeriod: setting(
    "loop.period",
    "CLI_LOOP_PERIOD",
    durationIn("1ms", MAX, "no wait between messages"),
    parseDuration("5s"),
  ),
  logLevel: setting("log.level", "CLI_LOG_LEVEL", logLevel, "INFO"),
  batchMaxAmount: setting("batch.maxAmount", "CLI_BATCH_MAXAMOUNT", integer(1, 65535), 100),
  mode: setting("mode", "CLI_MODE", oneOf(CLIENT_MODES), "agency"),
  dataPath: setting("data.path", "CLI_DATA_PATH", text(4096), ""),
  window: setting("batch.window", "CLI_BATCH_WINDOW", integer(1, 1024), 128),
  secret: setting("secret", "CLI_SECRET", secret, ""),
  connectAttempts: setting("connect.attempts", "CLI_CONNECT_ATTEMPTS", integer(1, 1000), 10),
  connectBackoff: setting(
    "connect.backoff",
    "CLI_CONNECT_BACKOFF",
    // Waits double from here, capped at 5 s; 0 would retry without a pause.
    durationIn("1ms", "5s"),
    parseDuration("100ms"),
  ),
  connectTimeout: setting(
    "connect.timeout",
    "CLI_CONNECT_TIMEOUT",
    durationIn("10ms", MAX, "no timeout"),
    parseDuration("5s"),
  ),
  timeout: setting(
    "timeout",
    "CLI_TIMEOUT",
    durationIn("10ms", MAX, "no timeout"),
    parseDuration("30s"),
  ),
};

/** The resolved client configuration; `dataPath` is filled in from the id. */
export type ClientConfig = Resolved<typeof CLIENT_SETTINGS>;

/** `config.yaml`'s values by dotted key (`loop.amount`); an empty file has none. */
function yamlValues(text: string, path: string): Map<string, unknown> {
  try {
    return flattenKeys(text.trim() === "" ? {} : parseYAML(text));
  } catch (error) {
    const reason = errorText(error).split("\n")[0];
    throw new ConfigError([`Cannot parse ${path}: ${reason}`], { cause: error });
  }
}

/**
 * Loads the client configuration (see `loadSettings`): env over `source.path`, else env
 * `CLI_CONFIG`, else `client/config.yaml`, over defaults.
 *
 * @throws {ConfigError} Listing every bad or missing value.
 */
export function loadClientConfig(source: ConfigSource): ClientConfig {
  const { config } = loadSettings(CLIENT_SETTINGS, source, {
    envVar: "CLI_CONFIG",
    defaultPath: "client/config.yaml",
    read: (text, path) => {
      const values = yamlValues(text, path);
      return { values, warnings: unknownKeyWarnings(CLIENT_SETTINGS, path, values.keys()) };
    },
  });
  return config.dataPath === "" ? { ...config, dataPath: `.data/agency-${config.id}.csv` } : config;
}

/**
 * Per-agency secrets: a file of `<agency id> = <secret>` lines (`#` or `;` starts a comment line).
 * With no file configured, agencies are not authenticated (the course's behaviour).
 *
 * @module
 */
import { ConfigError, errorText } from "../shared/errors.ts";
import { MAX_SECRET_BYTES, utf8Length } from "../shared/config_values.ts";

/**
 * Reads the secrets file into secrets by agency id (1..agencies); none when `path` is `""`.
 *
 * @throws {ConfigError} If the file cannot be read or has a bad line.
 */
export async function loadSecrets(path: string, agencies: number): Promise<Map<number, string>> {
  const secrets = new Map<number, string>();
  if (path === "") return secrets;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = errorText(error);
    throw new ConfigError([`Cannot read secrets file ${path}: ${reason}`], { cause: error });
  }
  const problems: string[] = [];
  // Read line by line rather than with an INI parser: a secret must be kept verbatim,
  // and INI parsers strip inline `#`/`;` comments and turn `true` into a boolean.
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) continue;
    const eq = trimmed.indexOf("=");
    const key = (eq < 0 ? trimmed : trimmed.slice(0, eq)).trim();
    const value = eq < 0 ? "" : trimmed.slice(eq + 1).trim();
    const agency = Number(key);
    if (!/^\d+$/.test(key) || agency < 1 || agency > agencies) {
      problems.push(`Invalid key "${key}" in ${path}: expected an agency id from 1 to ${agencies}`);
    } else if (value.length === 0 || utf8Length(value) > MAX_SECRET_BYTES) {
      // Its length, never the secret: HELLO carries at most 255 bytes of it.
      problems.push(
        `Invalid secret for agency ${key} in ${path}: ${utf8Length(value)} bytes, expected 1 ` +
          `to ${MAX_SECRET_BYTES} bytes (UTF-8)`,
      );
    } else {
      secrets.set(agency, value);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return secrets;
}

const encoder = new TextEncoder();

/**
 * Whether a secret sent in HELLO is the configured one (`undefined` never matches), in a
 * time that does not depend on where they differ, so replies reveal nothing of a guess.
 */
export function secretMatches(expected: string | undefined, given: string): boolean {
  const want = encoder.encode(expected ?? "");
  const got = encoder.encode(given);
  let diff = want.length ^ got.length;
  for (let i = 0; i < got.length; i++) diff |= (want[i] ?? 0) ^ got[i]!;
  return expected !== undefined && diff === 0;
}

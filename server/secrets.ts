/**
 * Per-agency secrets: an INI-style file of `<agency id> = <secret>` lines. With no file
 * configured, agencies are not authenticated (the course's behaviour).
 *
 * @module
 */
import { parseINI } from "confbox/ini";
import { ConfigError } from "../shared/errors.ts";

/**
 * Reads the secrets file.
 *
 * @param path The file; `""` means no secrets.
 * @param agencies Valid ids are 1..agencies.
 * @returns Secrets by agency id (empty when `path` is `""`).
 * @throws {ConfigError} If the file cannot be read or has a bad line.
 */
export async function loadSecrets(path: string, agencies: number): Promise<Map<number, string>> {
  const secrets = new Map<number, string>();
  if (path === "") return secrets;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError([`Cannot read secrets file ${path}: ${reason}`], { cause: error });
  }
  const problems: string[] = [];
  for (const [key, value] of Object.entries(parseINI<Record<string, unknown>>(text))) {
    const agency = Number(key);
    if (!/^\d+$/.test(key) || agency < 1 || agency > agencies) {
      problems.push(`Invalid key "${key}" in ${path}: expected an agency id from 1 to ${agencies}`);
    } else if (typeof value !== "string" || value.length === 0 || value.length > 255) {
      problems.push(`Invalid secret for agency ${key} in ${path}: expected 1 to 255 characters`);
    } else {
      secrets.set(agency, value);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return secrets;
}

/**
 * Turns the errors of `node:util`'s `parseArgs` into the short detail the tools print
 * after "Cannot run …: ", one line and with the option quoted.
 *
 * @module
 */

/**
 * The detail of a `parseArgs` error: `unknown option "--x"`, `option "--x" needs a
 * value`, `unexpected argument (…)`, or else the first line of its message.
 *
 * @param error What `parseArgs` threw.
 * @returns One line, without a trailing period.
 *
 * @example Usage
 * ```ts
 * import { parseArgs } from "node:util";
 *
 * try {
 *   parseArgs({ args: ["--bogus"], options: {}, strict: true });
 * } catch (error) {
 *   parseArgsErrorDetail(error); // 'unknown option "--bogus"'
 * }
 * ```
 */
export function parseArgsErrorDetail(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  const option = /'(--?[\w-]+)/.exec(text)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) return `unknown option "${option}"`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option) {
    return `option "${option}" needs a value`;
  }
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    return `unexpected argument (${text.split("\n")[0]})`;
  }
  return text.split("\n")[0] ?? "";
}

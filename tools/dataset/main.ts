/**
 * The dataset CLI, `deno task dataset`:
 *
 * ```sh
 * deno task dataset generate [--agencies 5] [--bets-per-agency 20000] [--seed 42] \
 *   [--winner-share 0.001] [--out .data]
 * deno task dataset import dataset.zip [--out .data]
 * deno task dataset ensure [--agencies 5] [--out .data]
 * ```
 *
 * One summary line goes to stdout; bad input gets one line on stderr and exit code 2.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseArgsErrorDetail } from "../_parse_args.ts";
import { ensureDataset } from "./ensure.ts";
import { DatasetError } from "./errors.ts";
import type { DatasetSummary } from "./files.ts";
import { generateDataset } from "./generate.ts";
import { importDataset } from "./import.ts";
import { DATASET_DEFAULTS } from "./options.ts";

const USAGE = `Usage:
  deno task dataset generate [--agencies 5] [--bets-per-agency 20000] [--seed 42]
                             [--winner-share 0.001] [--out .data]
  deno task dataset import PATH.zip [--out .data]
  deno task dataset ensure [--agencies 5] [--out .data]`;

/** Rows from which `generate` reports progress on stderr. */
const PROGRESS_THRESHOLD = 200_000;

function parseInteger(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  // Range checks happen in the generator, which names the allowed range.
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new DatasetError(`Cannot run dataset: --${flag} must be a whole number, got "${raw}"`);
  }
  return Number(raw);
}

function parseShare(raw: string | undefined): number {
  if (raw === undefined) return DATASET_DEFAULTS.winnerShare;
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new DatasetError(
      `Cannot run dataset: --winner-share must be a number from 0 to 1, got "${raw}"`,
    );
  }
  return value;
}

function describe(summary: DatasetSummary, verb: string): string {
  const perAgency = summary.files.map((file) => `${file.agency}=${file.winners}`).join(", ");
  const removed = summary.removed.length > 0 ? `; removed stale ${summary.removed.join(", ")}` : "";
  return `dataset: ${verb} ${summary.files.length} files in ${summary.dir} (${summary.rows} rows; winners per agency: ${perAgency})${removed}`;
}

/** The flags of the command line, as `parseArgs` returns them. */
interface CliValues {
  readonly agencies?: string;
  readonly "bets-per-agency"?: string;
  readonly seed?: string;
  readonly "winner-share"?: string;
  readonly out?: string;
  readonly help?: boolean;
}

/** The flags each subcommand takes. */
const ALLOWED_FLAGS: Readonly<Record<string, readonly string[]>> = {
  generate: ["agencies", "bets-per-agency", "seed", "winner-share", "out"],
  import: ["out"],
  ensure: ["agencies", "out"],
};

/**
 * Parses `node:util` arguments, joining `--flag -3` into `--flag=-3` so a negative value
 * is reported as a bad value rather than a missing one.
 */
function parseCli(args: readonly string[]): { values: CliValues; positionals: string[] } {
  const valued = new Set(["agencies", "bets-per-agency", "seed", "winner-share", "out"]);
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (arg.startsWith("--") && valued.has(arg.slice(2)) && next && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  try {
    return parseArgs({
      args: joined,
      allowPositionals: true,
      strict: true,
      options: {
        agencies: { type: "string" },
        "bets-per-agency": { type: "string" },
        seed: { type: "string" },
        "winner-share": { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    throw new DatasetError(`Cannot run dataset: ${parseArgsErrorDetail(error)}`, { cause: error });
  }
}

/** Checks the subcommand, its flags and its positional arguments; returns the subcommand. */
function checkCommand(
  command: string | undefined,
  values: CliValues,
  rest: readonly string[],
): string {
  if (command === undefined) {
    throw new DatasetError(`Cannot run dataset: missing subcommand (generate, import or ensure)`);
  }
  const flags = ALLOWED_FLAGS[command];
  if (flags === undefined) {
    throw new DatasetError(
      `Cannot run dataset: unknown subcommand "${command}" (expected generate, import or ensure)`,
    );
  }
  for (const key of Object.keys(values)) {
    if (!flags.includes(key)) {
      throw new DatasetError(`Cannot run dataset ${command}: option "--${key}" does not apply`);
    }
  }
  const expectedPositionals = command === "import" ? 1 : 0;
  if (rest.length !== expectedPositionals) {
    throw new DatasetError(
      command === "import" && rest.length === 0
        ? `Cannot import dataset: missing the zip file to import`
        : `Cannot run dataset ${command}: unexpected argument "${rest[expectedPositionals]}"`,
    );
  }
  return command;
}

/** `generate`: progress on stderr for large datasets, then the summary line. */
async function runGenerate(values: CliValues, dir: string): Promise<void> {
  const agencies = parseInteger("agencies", values.agencies, DATASET_DEFAULTS.agencies);
  const betsPerAgency = parseInteger(
    "bets-per-agency",
    values["bets-per-agency"],
    DATASET_DEFAULTS.betsPerAgency,
  );
  const seed = parseInteger("seed", values.seed, DATASET_DEFAULTS.seed);
  const winnerShare = parseShare(values["winner-share"]);
  const large = agencies * betsPerAgency >= PROGRESS_THRESHOLD;
  const started = performance.now();
  const summary = await generateDataset({
    dir,
    agencies,
    betsPerAgency,
    seed,
    winnerShare,
    onProgress(file, total) {
      if (large) {
        console.error(
          `dataset: wrote ${file.path} (${file.agency}/${total}, ${file.rows} rows, ${file.winners} winners)`,
        );
      }
    },
  });
  if (large) {
    console.error(`dataset: done in ${Math.round(performance.now() - started)} ms`);
  }
  console.log(describe(summary, "generated"));
}

/** `ensure`: the summary when data was generated, else what was kept and what is missing. */
async function runEnsure(values: CliValues, dir: string): Promise<void> {
  const agencies = parseInteger("agencies", values.agencies, DATASET_DEFAULTS.agencies);
  const result = await ensureDataset(dir, agencies);
  if (result.summary) {
    console.log(describe(result.summary, "generated"));
    return;
  }
  console.log(`dataset: kept ${result.files.length} existing files in ${dir}`);
  if (result.missing.length > 0) {
    console.error(
      `dataset: warning: ${dir} has no file for agencies ${result.missing.join(", ")}`,
    );
  }
}

/**
 * Runs the CLI.
 *
 * @param args The command-line arguments.
 * @returns The exit code: 0, or 2 for bad input (after one line on stderr).
 *
 * @example Usage
 * ```ts
 * const code = await main(["generate", "--agencies", "2", "--out", "/tmp/data"]);
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  try {
    const { values, positionals } = parseCli(args);
    const [command, ...rest] = positionals;
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const dir = values.out ?? DATASET_DEFAULTS.dir;
    switch (checkCommand(command, values, rest)) {
      case "generate":
        await runGenerate(values, dir);
        break;
      case "import":
        console.log(describe(await importDataset(rest[0]!, { dir }), "imported"));
        break;
      default:
        await runEnsure(values, dir);
    }
    return 0;
  } catch (error) {
    if (
      error instanceof DatasetError || error instanceof RangeError ||
      error instanceof TypeError
    ) {
      console.error(error.message);
      return 2;
    }
    console.error(`Cannot run dataset: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

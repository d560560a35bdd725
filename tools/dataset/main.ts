/**
 * The dataset CLI, `deno task dataset generate|import` (`--help` lists the
 * options). One summary line goes to stdout; bad input gets one line on stderr and exit
 * code 2.
 *
 * @module
 */
import { integerArg, parseCommand, runMain, UsageError } from "../_cli.ts";
import { DATASET_DEFAULTS, type DatasetSummary, generateDataset, importDataset } from "./mod.ts";

const USAGE = `Usage:
  deno task dataset generate [--agencies 5] [--bets-per-agency 20000] [--seed 42]
                             [--winner-share 0.001] [--out .data]
  deno task dataset import PATH.zip [--out .data]`;

/** The defaults of the flags, as a command line gives them. */
const DEFAULT_ARGS = {
  agencies: String(DATASET_DEFAULTS.agencies),
  "bets-per-agency": String(DATASET_DEFAULTS.betsPerAgency),
  seed: String(DATASET_DEFAULTS.seed),
  "winner-share": String(DATASET_DEFAULTS.winnerShare),
  out: DATASET_DEFAULTS.dir,
};

/** The flags each subcommand takes. */
const FLAGS: ReadonlyMap<string, readonly string[]> = new Map([
  ["generate", ["agencies", "bets-per-agency", "seed", "winner-share", "out"]],
  ["import", ["out"]],
]);

function describe(summary: DatasetSummary, verb: string): string {
  const perAgency = summary.files.map((file) => `${file.agency}=${file.winners}`).join(", ");
  const removed = summary.removed.length > 0 ? `; removed stale ${summary.removed.join(", ")}` : "";
  return `dataset: ${verb} ${summary.files.length} files in ${summary.dir} (${summary.rows} rows; winners per agency: ${perAgency})${removed}`;
}

/**
 * Runs the CLI; returns the exit code.
 *
 * @throws {UsageError} For bad input: a bad command line, an option out of range, a
 *   missing zip.
 */
export async function main(args: readonly string[]): Promise<number> {
  // No defaults in the parser: `given` holds only the flags the command line gave.
  const parsed = parseCommand(args, {
    options: {
      agencies: { type: "string" },
      "bets-per-agency": { type: "string" },
      seed: { type: "string" },
      "winner-share": { type: "string" },
      out: { type: "string" },
    },
    commands: FLAGS,
    usage: USAGE,
    operands: new Map([["import", "one zip file"]]),
  });
  if (parsed === undefined) return 0;
  const { command, operand } = parsed;
  const values = { ...DEFAULT_ARGS, ...parsed.given };
  const dir = values.out;
  if (command === "import") {
    console.log(describe(await importDataset(operand!, dir), "imported"));
    return 0;
  }
  const agencies = integerArg("--agencies", values.agencies, 1, 10_000);
  const raw = values["winner-share"];
  const winnerShare = Number(raw);
  if (raw.trim() === "" || !(winnerShare >= 0 && winnerShare <= 1)) {
    throw new UsageError(`--winner-share must be a number from 0 to 1, not "${raw}"`);
  }
  const betsPerAgency = integerArg("--bets-per-agency", values["bets-per-agency"], 0, 1e7);
  const seed = integerArg("--seed", values.seed, 0, 0xffff_ffff);
  const summary = await generateDataset({ dir, agencies, betsPerAgency, seed, winnerShare });
  console.log(describe(summary, "generated"));
  return 0;
}

if (import.meta.main) await runMain("dataset", () => main(Deno.args));

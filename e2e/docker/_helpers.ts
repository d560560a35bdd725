/**
 * Helpers of the Docker end-to-end test: a scratch workspace (configs, agency data and
 * compose file outside the repository), container waits bounded in time, and containers'
 * log lines read (and checked) with the course's parsing rule.
 *
 * @module
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { type DatasetSummary, generateDataset, importDataset } from "../../tools/dataset/mod.ts";
import { run, runOrThrow } from "../../tools/_cli.ts";
import { type ComposeOptions, writeDeployment } from "../../tools/gen_compose.ts";
import { composeArgv, detectCompose, down, up, type UpOptions } from "../../tools/compose.ts";
import { COURSE_ZIP, HAS_COURSE_ZIP } from "../../testing/course_data.ts";
import type { LogAction } from "../../shared/log.ts";
import { type LogLine, parseLog } from "../../shared/log_line.ts";
import { logProblems } from "../lottery/_log_check.ts";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

export { COURSE_ZIP, HAS_COURSE_ZIP };

export type { LogLine };

/**
 * A container's whole log (stdout and stderr), as lines. Its stdout is checked first:
 * every line must parse by the course's rule into the fields that were logged.
 *
 * @param name The container.
 * @returns Its lines.
 * @throws {Error} Naming each stdout line the course's parser would misread.
 */
export async function logLines(name: string): Promise<string[]> {
  const result = await run(["docker", "logs", name], { timeoutMs: 30_000 });
  const problems = logProblems(result.stdout);
  if (problems.length > 0) {
    throw new Error(`${name} logged lines the course's parser misreads:\n${problems.join("\n")}`);
  }
  return (result.stdout + result.stderr).split("\n").filter((line) => line !== "");
}

/**
 * A container's action lines, optionally one action only.
 *
 * @param name The container.
 * @param action Keep only this action.
 * @returns The parsed lines, in order.
 */
export async function actions(name: string, action?: LogAction): Promise<LogLine[]> {
  return parseLog((await logLines(name)).join("\n"))
    .filter((line) => action === undefined || line.action === action);
}

/** A container's state. */
export interface ContainerState {
  /** `running`, `exited`, … */
  readonly status: string;
  /** Exit code (0 while running). */
  readonly exitCode: number;
  /** Health status, or `""` without a healthcheck. */
  readonly health: string;
  /** The id of the image it runs. */
  readonly image: string;
}

/**
 * Inspects a container.
 *
 * @param name The container.
 * @returns Its state.
 */
export async function inspect(name: string): Promise<ContainerState> {
  const format = "{{.State.Status}} {{.State.ExitCode}} " +
    "{{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.Image}}";
  const out = await runOrThrow(
    ["docker", "container", "inspect", "--format", format, name],
    `Cannot inspect ${name}`,
    { timeoutMs: 30_000 },
  );
  const [status = "", code = "", health = "", image = ""] = out.split(" ");
  return { status, exitCode: Number(code), health: health === "-" ? "" : health, image };
}

/**
 * Polls until `check` returns a value (not `undefined`), or throws after `timeoutMs`.
 *
 * @param what What is awaited, for the error.
 * @param check Returns the value once ready.
 * @param timeoutMs The bound.
 * @returns The value.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Waits until every named container has exited.
 *
 * @param names The containers.
 * @param timeoutMs The bound.
 * @returns Each container's exit code.
 */
export async function waitExited(
  names: readonly string[],
  timeoutMs: number,
): Promise<Map<string, number>> {
  return await waitFor(`${names.join(", ")} to exit`, async () => {
    const codes = new Map<string, number>();
    for (const name of names) {
      const state = await inspect(name);
      if (state.status !== "exited") return undefined;
      codes.set(name, state.exitCode);
    }
    return codes;
  }, timeoutMs);
}

/**
 * Names of the project's containers, running or not.
 *
 * @returns The names, sorted.
 */
export async function projectContainers(): Promise<string[]> {
  const out = await runOrThrow(
    [
      "docker",
      "ps",
      "-a",
      "--filter",
      "label=com.docker.compose.project=tp0",
      "--format",
      "{{.Names}}",
    ],
    "Cannot list the project's containers",
    { timeoutMs: 30_000 },
  );
  return out.split("\n").filter((name) => name !== "").sort();
}

/**
 * Image id of a tag.
 *
 * @param tag The image.
 * @returns Its id.
 */
export async function imageId(tag: string): Promise<string> {
  return await runOrThrow(
    ["docker", "image", "inspect", "--format", "{{.Id}}", tag],
    `Cannot inspect image ${tag}`,
  );
}

/** Rows and winners per agency id of a dataset written into a folder. */
function countsOf(summary: DatasetSummary): Map<number, { rows: number; winners: number }> {
  return new Map(summary.files.map((f) => [f.agency, { rows: f.rows, winners: f.winners }]));
}

/**
 * A scratch deployment folder: `server/config.ini`, `client/config.yaml`, `.data/` and
 * the compose file, so the test never touches the repository's own files.
 */
export class Workspace {
  /** The folder. */
  readonly dir: string;
  /** The compose file. */
  readonly file: string;

  /** @param dir An empty scratch folder. */
  constructor(dir: string) {
    this.dir = dir;
    this.file = `${dir}/docker-compose-dev.yaml`;
  }

  /**
   * Makes a workspace with the repository's config files and an empty `.data/`.
   *
   * @param at Its folder, made if missing (a new temporary folder by default).
   * @returns The workspace.
   */
  static async create(at?: string): Promise<Workspace> {
    const dir = at ?? await Deno.makeTempDir({ prefix: "tp0-docker-e2e-" });
    for (const folder of ["server", "client", ".data"]) {
      await Deno.mkdir(`${dir}/${folder}`, { recursive: true });
    }
    const workspace = new Workspace(dir);
    await workspace.resetConfigs();
    return workspace;
  }

  /** Puts back the repository's config files. */
  async resetConfigs(): Promise<void> {
    await this.writeConfig(
      "server/config.ini",
      await Deno.readTextFile(`${ROOT}server/config.ini`),
    );
    await this.writeConfig(
      "client/config.yaml",
      await Deno.readTextFile(`${ROOT}client/config.yaml`),
    );
  }

  /**
   * Replaces a config file the way editors do (new file, then rename), so only a
   * restart shows the change inside a container.
   *
   * @param name `server/config.ini` or `client/config.yaml`.
   * @param text The new content.
   */
  async writeConfig(name: string, text: string): Promise<void> {
    const path = `${this.dir}/${name}`;
    await Deno.writeTextFile(`${path}.new`, text);
    await Deno.chmod(`${path}.new`, 0o644);
    await Deno.rename(`${path}.new`, path);
  }

  /**
   * Edits a config file with string replacements, each of which must match.
   *
   * @param name `server/config.ini` or `client/config.yaml`.
   * @param edits `[pattern, replacement]` pairs.
   */
  async editConfig(name: string, edits: readonly [RegExp, string][]): Promise<void> {
    let text = await Deno.readTextFile(`${this.dir}/${name}`);
    for (const [pattern, replacement] of edits) {
      if (!pattern.test(text)) throw new Error(`${name} has no ${pattern}`);
      text = text.replace(pattern, replacement);
    }
    await this.writeConfig(name, text);
  }

  /**
   * Imports the course's dataset into `.data/` (`deno task dataset import`).
   *
   * @returns Rows and winners per agency id.
   */
  async extractCourseDataset(): Promise<Map<number, { rows: number; winners: number }>> {
    return countsOf(await importDataset(COURSE_ZIP, `${this.dir}/.data`));
  }

  /**
   * Generates agency CSVs into `.data/`.
   *
   * @param agencies How many agencies.
   * @param options Rows per agency, seed and share of winners.
   * @returns Rows and winners per agency id.
   */
  async generateData(
    agencies: number,
    options: { betsPerAgency: number; seed: number; winnerShare: number },
  ): Promise<Map<number, { rows: number; winners: number }>> {
    return countsOf(await generateDataset({ dir: `${this.dir}/.data`, agencies, ...options }));
  }

  /**
   * Writes the compose file.
   *
   * @param options Agency count and mode.
   */
  async generate(options: ComposeOptions): Promise<void> {
    await writeDeployment(this.file, options);
  }

  /**
   * `deno task up` without rebuilding (the images are built once per run).
   *
   * @param options Options of `up` (regenerate with these).
   * @returns What `up` said, line by line.
   */
  async up(options: Omit<UpOptions, "file" | "build" | "quiet" | "say"> = {}): Promise<string[]> {
    const said: string[] = [];
    await up({ ...options, file: this.file, build: false, quiet: true, say: (l) => said.push(l) });
    return said;
  }

  /** `deno task down --volumes`: no leftovers for the next step. */
  async down(): Promise<void> {
    await down({ file: this.file, timeoutSeconds: 10, volumes: true, quiet: true });
  }

  /**
   * Runs a Compose subcommand on this deployment.
   *
   * @param command The subcommand and its arguments.
   */
  async compose(command: readonly string[]): Promise<void> {
    const argv = composeArgv(await detectCompose(), { file: this.file, command });
    await runOrThrow(argv, `Cannot run compose ${command.join(" ")}`, { timeoutMs: 120_000 });
  }

  /** Removes the folder. */
  async remove(): Promise<void> {
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** The environment of the course's entry points: the pinned Deno first on PATH, as make finds it. */
const COURSE_ENV = { PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}` };

/**
 * Runs one of the course's entry points from the repository root, as a student types it:
 * `make <target> [VAR=value…]` or `./<script> [args…]`, capturing its output.
 *
 * @param argv The command, e.g. `["make", "docker-compose-up", "FILE=…"]`.
 * @returns Exit code and output.
 */
export async function course(
  argv: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return await run(argv, { cwd: ROOT, env: COURSE_ENV, timeoutMs: 600_000 });
}

/**
 * Runs a tool script as the tasks do, capturing its output.
 *
 * @param script Path under `tools/`, e.g. `validate_echo.ts`.
 * @param args Its arguments.
 * @returns Exit code and output.
 */
export async function runTool(
  script: string,
  args: readonly string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return await run([Deno.execPath(), "run", "-A", `${ROOT}tools/${script}`, ...args], {
    timeoutMs: 120_000,
  });
}

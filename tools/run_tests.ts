/**
 * Runs `deno test` and ends with one summary line, `N passed, N failed`, counted from
 * Deno's JUnit report. Top-level tests are counted; steps (`t.step`) are part of their
 * test, whose result already reflects them. Ignored tests count in neither number. A
 * module that fails to load, which the JUnit report leaves out, counts as one failure.
 *
 * ```sh
 * deno run -A tools/run_tests.ts tools/ server/ client/ shared/
 * ```
 *
 * The exit code is `deno test`'s.
 *
 * @module
 */
import { join } from "node:path";

/** One `<testcase>` of a JUnit report. */
export interface JUnitCase {
  /** The suite (test module), e.g. `./tools/dataset/main_test.ts`. */
  readonly suite: string;
  /** The test name; Deno names steps `parent > step`. */
  readonly name: string;
  /** `passed`, `failed` (a `<failure>` or `<error>`) or `skipped`. */
  readonly status: "passed" | "failed" | "skipped";
  /** Whether it is a step of another test case of the same suite. */
  readonly step: boolean;
}

/** Counts of a test run. */
export interface TestSummary {
  /** Top-level tests that passed. */
  readonly passed: number;
  /** Top-level tests that failed. */
  readonly failed: number;
  /** Top-level tests that were ignored. */
  readonly ignored: number;
  /** Names of the failed top-level tests, as `suite: name`. */
  readonly failures: readonly string[];
  /** Every test case, steps included. */
  readonly cases: readonly JUnitCase[];
}

const ENTITIES: Readonly<Record<string, string>> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (whole, entity: string) => {
    if (entity[0] === "#") {
      const code = entity[1] === "x" || entity[1] === "X"
        ? parseInt(entity.slice(2), 16)
        : parseInt(entity.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[entity] ?? whole;
  });
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return match ? unescapeXml(match[1]!) : undefined;
}

/**
 * Parses a JUnit XML report as Deno writes it (`deno test --junit-path`) and counts
 * top-level tests. A test case is a step when its name is another case's name of the
 * same suite followed by ` > `.
 *
 * @param xml The report.
 * @returns The counts and every case.
 * @throws {SyntaxError} If the text is not a JUnit report.
 *
 * @example Usage
 * ```ts
 * const { passed, failed } = parseJUnit(await Deno.readTextFile("report.xml"));
 * ```
 */
export function parseJUnit(xml: string): TestSummary {
  if (!/<testsuites[\s>]/.test(xml)) {
    throw new SyntaxError("Cannot parse JUnit report: no <testsuites> element");
  }
  const cases: JUnitCase[] = [];
  const suites = xml.matchAll(/<testsuite\s[^>]*?(?:\/>|>([\s\S]*?)<\/testsuite>)/g);
  for (const suiteMatch of suites) {
    const suite = attribute(suiteMatch[0], "name") ?? "";
    const body = suiteMatch[1] ?? "";
    const found: { name: string; status: JUnitCase["status"] }[] = [];
    for (const match of body.matchAll(/<testcase\s([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
      const inner = match[2] ?? "";
      const status = /<(?:failure|error)[\s>/]/.test(inner)
        ? "failed"
        : /<skipped[\s>/]/.test(inner)
        ? "skipped"
        : "passed";
      found.push({ name: attribute(` ${match[1]}`, "name") ?? "", status });
    }
    const names = new Set(found.map((entry) => entry.name));
    for (const { name, status } of found) {
      const cut = name.lastIndexOf(" > ");
      const step = cut > 0 && names.has(name.slice(0, cut));
      cases.push({ suite, name, status, step });
    }
  }
  const top = cases.filter((entry) => !entry.step);
  return {
    passed: top.filter((entry) => entry.status === "passed").length,
    failed: top.filter((entry) => entry.status === "failed").length,
    ignored: top.filter((entry) => entry.status === "skipped").length,
    failures: top.filter((entry) => entry.status === "failed").map((entry) =>
      `${entry.suite}: ${entry.name}`
    ),
    cases,
  };
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Finds the modules `deno test` reports as failing with an uncaught error (e.g. a throw at
 * module load); these do not appear in the JUnit report.
 *
 * @param output What `deno test` printed.
 * @returns The module names, e.g. `./tools/broken_test.ts`, each once.
 */
export function uncaughtModules(output: string): string[] {
  const text = output.replace(ANSI, "");
  return [...new Set([...text.matchAll(/^(\S+) \(uncaught error\)$/gm)].map((m) => m[1]!))];
}

/**
 * Formats the summary line.
 *
 * @param passed Tests that passed.
 * @param failed Tests that failed.
 * @returns E.g. `42 passed, 0 failed`.
 */
export function summaryLine(passed: number, failed: number): string {
  return `${passed} passed, ${failed} failed`;
}

/**
 * Copies a stream to a writer while keeping its text.
 *
 * @param stream The bytes, e.g. a child's stdout.
 * @param sink Where they are copied as they come, e.g. `Deno.stdout`.
 * @returns Everything that went through, as text.
 */
export async function tee(
  stream: ReadableStream<Uint8Array>,
  sink: { write(bytes: Uint8Array): Promise<number> },
): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    let written = 0;
    while (written < chunk.length) written += await sink.write(chunk.subarray(written));
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * Runs `deno test -A --parallel --junit-path=… <paths>`, streaming its output, then
 * prints notes and the summary line as the very last line.
 *
 * @param paths What to test; none means `deno test`'s own discovery.
 * @returns `deno test`'s exit code (non-zero when a test failed).
 */
export async function runTests(paths: readonly string[]): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "run_tests_" });
  const report = join(dir, "junit.xml");
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--parallel", `--junit-path=${report}`, ...paths],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const [output, errors, status] = await Promise.all([
      tee(child.stdout, Deno.stdout),
      tee(child.stderr, Deno.stderr),
      child.status,
    ]);

    let passed = 0;
    let failed = 0;
    let xml: string | undefined;
    try {
      xml = await Deno.readTextFile(report);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (xml === undefined) {
      console.log("run_tests: deno test wrote no JUnit report (it stopped before running tests)");
    } else {
      const summary = parseJUnit(xml);
      passed = summary.passed;
      failed = summary.failed;
      if (summary.ignored > 0) console.log(`run_tests: ${summary.ignored} ignored`);
      for (const name of summary.failures) console.log(`run_tests: failed: ${name}`);
    }
    const uncaught = uncaughtModules(output + errors);
    for (const name of uncaught) console.log(`run_tests: failed: ${name} (uncaught error)`);
    failed += uncaught.length;
    if (status.code !== 0 && failed === 0) {
      // Never print "0 failed" for a failing run (e.g. a type error stops deno test early).
      console.log(`run_tests: deno test exited with code ${status.code}; counted as 1 failure`);
      failed = 1;
    }
    console.log(summaryLine(passed, failed));
    return status.code;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  Deno.exit(await runTests(Deno.args));
}

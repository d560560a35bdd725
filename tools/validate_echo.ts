#!/usr/bin/env -S deno run -A
/**
 * Checks the running server's echo with busybox `nc` from a container on the compose network
 * (or the stack's overlay), printing exactly `action: test_echo_server | result: success` or
 * `result: fail`, within a bounded time even when the server never answers.
 *
 * @module
 */
import { integerArg, lastLine, parseCli, run, runMain, UsageError } from "./_cli.ts";
import { NETWORK_NAME } from "./gen_compose.ts";
import { assertDockerEngine, ensureNetcatImage } from "./images.ts";
import { networkKind } from "./swarm/cluster.ts";

/** The line printed when the echo matches. */
export const SUCCESS_LINE = "action: test_echo_server | result: success";

/** The line printed otherwise. */
export const FAIL_LINE = "action: test_echo_server | result: fail";

/**
 * Where and how {@linkcode validateEcho} probes: the Docker network to attach the netcat
 * container to, the server's name on it and its port, the seconds `nc` may wait for the
 * answer, and the line to send (no line break).
 */
export interface ProbeOptions {
  readonly network: string;
  readonly host: string;
  readonly port: number;
  readonly timeoutSeconds: number;
  readonly message: string;
}

/**
 * Returns the `docker run` argv of the netcat probe: container `name` (so it can be
 * removed if it hangs), from `image` (with `sh`, `nc` and `timeout`). The message travels
 * in an env var, so no shell quoting of user text is involved.
 */
export function probeArgv(name: string, image: string, options: ProbeOptions): string[] {
  const { network, host, port, timeoutSeconds, message } = options;
  return [
    ...["docker", "run", "--rm", "--name", name, "--network", network, "--env", `MSG=${message}`],
    ...[image, "sh", "-c", `printf '%s\\n' "$MSG" | timeout ${timeoutSeconds} nc ${host} ${port}`],
  ];
}

/** Whether what `nc` printed is the message sent, trailing whitespace stripped on both. */
export function echoMatches(sent: string, received: string): boolean {
  const strip = (text: string): string => text.replace(/\s+$/, "");
  return strip(sent) !== "" && strip(received) === strip(sent);
}

/**
 * Sends one line to the server with `nc` from a container on the compose network and
 * compares the answer: `undefined` when the echo matched, else why not. Never hangs: `nc`
 * gets `timeoutSeconds`, the container 20 s more.
 */
async function validateEcho(options: ProbeOptions): Promise<string | undefined> {
  await assertDockerEngine();
  const inspect = await run(["docker", "network", "inspect", options.network], {
    timeoutMs: 20_000,
  });
  if (inspect.code !== 0) return `network ${options.network} not found: is the deployment up?`;
  const name = `tp0-validate-echo-${crypto.randomUUID().slice(0, 8)}`;
  const result = await run(probeArgv(name, await ensureNetcatImage(), options), {
    timeoutMs: (options.timeoutSeconds + 20) * 1000,
  });
  if (result.timedOut) {
    await run(["docker", "rm", "--force", name], { timeoutMs: 20_000 });
    return "the netcat container did not finish in time";
  }
  if (echoMatches(options.message, result.stdout)) return undefined;
  const got = result.stdout === ""
    ? `no answer (${lastLine(result.stderr) || `nc exit code ${result.code}`})`
    : `answer ${JSON.stringify(result.stdout.slice(0, 200))}`;
  return `sent ${JSON.stringify(options.message)}, got ${got}`;
}

/** With `--swarm`: why the network is not the stack's overlay (which shares its name), if not. */
async function swarmProblem(swarm: boolean): Promise<string | undefined> {
  const kind = swarm ? await networkKind() : "stack";
  return kind === "none"
    ? `network ${NETWORK_NAME} not found: is the stack up? (deno task swarm up)`
    : kind === "compose"
    ? `network ${NETWORK_NAME} is the Compose deployment's, not the stack's overlay ` +
      "(deno task validate-echo without --swarm)"
    : undefined;
}

/**
 * The CLI: prints exactly one result line (a failure's reason on stderr); exit code 0 on
 * success, 1 on fail; a bad command line prints the fail line, then throws.
 *
 * @throws {UsageError} For a bad command line.
 */
export async function main(args: readonly string[]): Promise<number> {
  try {
    return await probe(args);
  } catch (error) {
    // The course's scripts read stdout for one of the two lines, whatever went wrong.
    if (error instanceof UsageError) console.log(FAIL_LINE);
    throw error;
  }
}

async function probe(args: readonly string[]): Promise<number> {
  const { values } = parseCli(args, {
    network: { type: "string", default: NETWORK_NAME },
    host: { type: "string", default: "server" },
    port: { type: "string", default: "12345" },
    timeout: { type: "string", default: "5" },
    message: { type: "string", default: `tp0 echo check ${crypto.randomUUID()}` },
    swarm: { type: "boolean", default: false },
  });
  if (/[\r\n]/.test(values.message)) throw new UsageError("--message must be a single line");
  if (values.message.trim() === "") throw new UsageError("--message must not be blank");
  const options: ProbeOptions = {
    network: values.network,
    host: values.host,
    port: integerArg("--port", values.port, 1, 65535),
    timeoutSeconds: integerArg("--timeout", values.timeout, 1, 300),
    message: values.message,
  };
  const problem = await swarmProblem(values.swarm).then((p) => p ?? validateEcho(options))
    .catch((error: Error) => error.message);
  console.log(problem === undefined ? SUCCESS_LINE : FAIL_LINE);
  if (problem !== undefined) console.error(`validate-echo: ${problem}`);
  return problem === undefined ? 0 : 1;
}

if (import.meta.main) await runMain("validate-echo", () => main(Deno.args));

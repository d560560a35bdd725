#!/usr/bin/env -S deno run -A
/**
 * Checks the running server's echo with netcat, from a container attached to the compose
 * network (no port is published and the host needs no `nc`):
 *
 * ```sh
 * deno task validate-echo
 * # action: test_echo_server | result: success
 * ```
 *
 * It sends one newline-terminated line to `server:12345` with busybox `nc` and prints
 * exactly `action: test_echo_server | result: success` when the same line comes back,
 * otherwise `action: test_echo_server | result: fail` (with the reason on stderr), within
 * a bounded time even when the server never answers. Exit code 0 on success, 1 on fail.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { assertDockerEngine, lastLine, run, runMain, ToolError } from "./_docker.ts";
import { ensureNetcatImage } from "./images.ts";
import { NETWORK_NAME } from "./gen_compose.ts";
import { stackNetworkProblem } from "./swarm/cluster.ts";

/** The line printed when the echo matches. */
export const SUCCESS_LINE = "action: test_echo_server | result: success";

/** The line printed otherwise. */
export const FAIL_LINE = "action: test_echo_server | result: fail";

/** Options of {@linkcode validateEcho}. */
export interface ValidateEchoOptions {
  /**
   * The Docker network to attach the netcat container to.
   * @default "tp0_testing_net"
   */
  readonly network?: string;
  /**
   * The server's name on that network.
   * @default "server"
   */
  readonly host?: string;
  /**
   * The server's port.
   * @default 12345
   */
  readonly port?: number;
  /**
   * Seconds `nc` may wait for the answer.
   * @default 5
   */
  readonly timeoutSeconds?: number;
  /**
   * The line to send (no line break).
   * @default a fresh `tp0 echo check <uuid>`
   */
  readonly message?: string;
  /**
   * The image with `sh`, `nc` and `timeout`.
   * @default found or built by `ensureNetcatImage()`
   */
  readonly image?: string;
}

/** The outcome of {@linkcode validateEcho}. */
export interface EchoResult {
  /** Whether the echo matched. */
  readonly ok: boolean;
  /** Why it failed, or what came back. */
  readonly detail: string;
}

/**
 * Returns the `docker run` argv of the netcat probe. The message travels in an env var,
 * so no shell quoting of user text is involved.
 *
 * @param name The probe container's name (so it can be removed if it hangs).
 * @param options Network, host, port, time limit, message, image (all resolved).
 * @returns The argv.
 *
 * @example Usage
 * ```ts
 * import { probeArgv } from "./validate_echo.ts";
 * const argv = probeArgv("probe", {
 *   network: "tp0_testing_net", host: "server", port: 12345,
 *   timeoutSeconds: 5, message: "hi", image: "tp0-busybox:local",
 * });
 * argv.includes("--publish"); // false: nothing is published
 * ```
 */
export function probeArgv(name: string, options: Required<ValidateEchoOptions>): string[] {
  return [
    "docker",
    "run",
    "--rm",
    "--name",
    name,
    "--network",
    options.network,
    "--env",
    `MSG=${options.message}`,
    options.image,
    "sh",
    "-c",
    `printf '%s\\n' "$MSG" | timeout ${options.timeoutSeconds} nc ${options.host} ${options.port}`,
  ];
}

/**
 * Judges the probe's output: the first line back must equal the line sent.
 *
 * @param sent The message sent (no line break).
 * @param received What `nc` printed.
 * @returns Whether the echo matched.
 *
 * @example Usage
 * ```ts
 * import { echoMatches } from "./validate_echo.ts";
 * echoMatches("hi", "hi\n"); // true
 * echoMatches("hi", "bye\n"); // false
 * ```
 */
export function echoMatches(sent: string, received: string): boolean {
  const newline = received.indexOf("\n");
  if (newline < 0) return false;
  return received.slice(0, newline).replace(/\r$/, "") === sent;
}

/**
 * The line to print for an outcome.
 *
 * @param ok Whether the echo matched.
 * @returns {@linkcode SUCCESS_LINE} or {@linkcode FAIL_LINE}.
 */
export function resultLine(ok: boolean): string {
  return ok ? SUCCESS_LINE : FAIL_LINE;
}

/**
 * Sends one line to the server with `nc` from a container on the compose network and
 * compares the answer. Never hangs: `nc` gets `timeoutSeconds`, the container 20 s more.
 *
 * @param options Network, host, port, time limit, message, image.
 * @returns Whether it matched, and why not.
 */
export async function validateEcho(options: ValidateEchoOptions = {}): Promise<EchoResult> {
  await assertDockerEngine();
  const network = options.network ?? NETWORK_NAME;
  const inspect = await run(["docker", "network", "inspect", network], { timeoutMs: 20_000 });
  if (inspect.code !== 0) {
    return { ok: false, detail: `network ${network} not found: is the deployment up?` };
  }
  const resolved: Required<ValidateEchoOptions> = {
    network,
    host: options.host ?? "server",
    port: options.port ?? 12345,
    timeoutSeconds: options.timeoutSeconds ?? 5,
    message: options.message ?? `tp0 echo check ${crypto.randomUUID()}`,
    image: options.image ?? await ensureNetcatImage(),
  };
  const name = `tp0-validate-echo-${crypto.randomUUID().slice(0, 8)}`;
  const result = await run(probeArgv(name, resolved), {
    timeoutMs: (resolved.timeoutSeconds + 20) * 1000,
  });
  if (result.timedOut) {
    await run(["docker", "rm", "--force", name], { timeoutMs: 20_000 });
    return { ok: false, detail: "the netcat container did not finish in time" };
  }
  if (echoMatches(resolved.message, result.stdout)) {
    return { ok: true, detail: `echoed ${JSON.stringify(resolved.message)}` };
  }
  const got = result.stdout === ""
    ? `no answer (${lastLine(result.stderr) || `nc exit code ${result.code}`})`
    : `answer ${JSON.stringify(result.stdout.slice(0, 200))}`;
  return { ok: false, detail: `sent ${JSON.stringify(resolved.message)}, got ${got}` };
}

/**
 * The CLI: `validate_echo.ts [--network N] [--host H] [--port P] [--timeout S] [--message M]
 * [--swarm]` (`--swarm`: the network must be the Swarm stack's overlay).
 * Prints exactly one result line on stdout; the reason of a failure goes to stderr.
 *
 * @param args Command-line arguments.
 * @returns 0 on success, 1 on fail.
 */
export async function main(args: readonly string[]): Promise<number> {
  let options: ValidateEchoOptions;
  let swarm = false;
  try {
    const { values } = parseArgs({
      args: [...args],
      options: {
        network: { type: "string", default: NETWORK_NAME },
        host: { type: "string", default: "server" },
        port: { type: "string", default: "12345" },
        timeout: { type: "string", default: "5" },
        message: { type: "string" },
        swarm: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    swarm = values.swarm;
    const port = Number(values.port);
    const timeoutSeconds = Number(values.timeout);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`--port must be a port from 1 to 65535, not "${values.port}"`);
    }
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 300) {
      throw new RangeError(
        `--timeout must be whole seconds from 1 to 300, not "${values.timeout}"`,
      );
    }
    if (values.message !== undefined && /[\r\n]/.test(values.message)) {
      throw new TypeError("--message must be a single line");
    }
    options = {
      network: values.network,
      host: values.host,
      port,
      timeoutSeconds,
      ...(values.message === undefined ? {} : { message: values.message }),
    };
  } catch (error) {
    throw new ToolError(`Cannot validate the echo server: ${(error as Error).message}`);
  }
  let result: EchoResult;
  try {
    // --swarm: the stack's overlay (tools/swarm/), which shares the Compose network's name.
    const problem = swarm ? await stackNetworkProblem() : undefined;
    result = problem === undefined ? await validateEcho(options) : { ok: false, detail: problem };
  } catch (error) {
    result = { ok: false, detail: (error as Error).message };
  }
  console.log(resultLine(result.ok));
  if (!result.ok) console.error(`validate-echo: ${result.detail}`);
  return result.ok ? 0 : 1;
}

if (import.meta.main) {
  await runMain("validate-echo", () => main(Deno.args));
}

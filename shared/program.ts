/**
 * What both programs' entry points share: one handler for SIGTERM, SIGINT and SIGHUP, and an exit
 * code for whatever `main` ends with.
 *
 * @module
 */
import { errorText } from "./errors.ts";

/**
 * Calls `stop` with the signal's name on each SIGTERM, SIGINT or SIGHUP (a closed terminal or an
 * operator's reload: a graceful stop too, not the default silent exit 129), until disposed.
 */
export function onStopSignal(stop: (signal: Deno.Signal) => void): Disposable {
  const handlers = (["SIGTERM", "SIGINT", "SIGHUP"] as const).map((name) =>
    [name, () => stop(name)] as const
  );
  for (const [name, handler] of handlers) Deno.addSignalListener(name, handler);
  return {
    [Symbol.dispose]: () => {
      for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
    },
  };
}

/** Exits with `main`'s code, or with 1 after a line `<program>: <message>` for an error. */
export async function runProgram(program: string, main: () => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`${program}: ${errorText(error)}`);
    Deno.exit(1);
  }
}

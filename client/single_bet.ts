/**
 * Exercise 5: one bet from the environment (`NOMBRE`, `APELLIDO`, `DOCUMENTO`,
 * `NACIMIENTO`, `NUMERO`), sent to the server and confirmed.
 *
 * @module
 */
import { type BetFields, betProblem } from "../shared/bet.ts";
import { ConfigError, type ErrorCode, ProtocolError } from "../shared/errors.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { MessageType } from "../shared/protocol/mod.ts";
import type { ClientConfig } from "./config.ts";
import { type ConnectConfig, lostServer, openServerConnection } from "./connect.ts";

const BET_ENV = ["NOMBRE", "APELLIDO", "DOCUMENTO", "NACIMIENTO", "NUMERO"] as const;

/**
 * Reads the bet from the environment.
 *
 * @throws {ConfigError} Naming every missing or invalid variable.
 */
export function betFromEnv(env: Readonly<Record<string, string | undefined>>): BetFields {
  const missing = BET_ENV.filter((name) => (env[name] ?? "").trim() === "");
  if (missing.length > 0) {
    throw new ConfigError(missing.map((name) => `Missing bet field: set env ${name}`));
  }
  const number = env["NUMERO"]!.trim();
  const bet: BetFields = {
    firstName: env["NOMBRE"]!.trim(),
    lastName: env["APELLIDO"]!.trim(),
    document: env["DOCUMENTO"]!.trim(),
    birthdate: env["NACIMIENTO"]!.trim(),
    number: /^\d{1,4}$/.test(number) ? Number(number) : -1,
  };
  const problem = betProblem(bet);
  if (problem !== undefined) throw new ConfigError([`Invalid bet from env: ${problem}`]);
  return bet;
}

/**
 * Sends one bet and waits for the server to confirm it is stored.
 *
 * @throws {ProtocolError} When the server refuses the bet.
 * @throws {ConnectionError} Naming the server, when it cannot be reached or the exchange fails.
 */
export async function sendSingleBet(
  config: ConnectConfig & Pick<ClientConfig, "secret" | "timeout">,
  bet: BetFields,
  options: { readonly log: ActionLogger; readonly signal: AbortSignal },
): Promise<void> {
  using conn = await openServerConnection(config, options);
  try {
    await conn.send({ type: MessageType.HELLO, agency: config.id, secret: config.secret });
    await conn.expect(MessageType.WELCOME);
    // Sequence 0: a retry of an already stored bet is acknowledged as a duplicate.
    await conn.send({ type: MessageType.BET, seq: 0, bet });
    const ack = await conn.expect(MessageType.BATCH_ACK);
    if (ack.status !== 0) throw new ProtocolError(ack.status as ErrorCode, ack.reason);
    options.log.info(LogAction.APUESTA_ENVIADA, "success", {
      dni: bet.document,
      numero: bet.number,
    });
    await conn.send({ type: MessageType.BYE });
  } catch (error) {
    throw lostServer(config.serverAddress, error);
  }
}

/**
 * Made-up bets for tests: bet `i` is always the same valid bet, one in ten a winner, and
 * the `bets.csv` row the store writes for it.
 *
 * @module
 */
import type { BetFields } from "../shared/bet.ts";

/** Bet `i`: `Nombre<i> Apellido<i>`, DNI 10,000,000 + `i`, number 7574 when `i` ends in 0. */
export function numberedBet(i: number, overrides: Partial<BetFields> = {}): BetFields {
  return {
    firstName: `Nombre${i}`,
    lastName: `Apellido${i}`,
    document: String(10_000_000 + i),
    birthdate: "1990-05-17",
    number: i % 10 === 0 ? 7574 : i % 10_000,
    ...overrides,
  };
}

/** The `bets.csv` row of an agency's plain bet (no field that needs quoting). */
export function rowOf(agency: number, b: BetFields): string {
  return `${agency},${b.firstName},${b.lastName},${b.document},${b.birthdate},${b.number}\r\n`;
}

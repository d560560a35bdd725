import assert from "node:assert/strict";
import { COURSE_BET } from "../testing/course_data.ts";
import {
  type BetFields,
  betProblem,
  hasWon,
  isValidBirthdate,
  MAX_NAME_LENGTH,
  WINNING_NUMBER,
} from "./bet.ts";

const GOOD: BetFields = COURSE_BET;

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

Deno.test("betProblem() accepts valid bets", async (t) => {
  const cases: [string, Partial<BetFields>][] = [
    ["the course's example", {}],
    ["a one-digit DNI", { document: "1" }],
    ["an eight-digit DNI with leading zero", { document: "01234567" }],
    ["number 0", { number: 0 }],
    ["number 9999", { number: 9999 }],
    ["a leap day", { birthdate: "2024-02-29" }],
    ["1900-01-01", { birthdate: "1900-01-01" }],
    ["names with accents, commas and quotes", { firstName: 'José, "Pepe"', lastName: "Núñez" }],
    ["a name of exactly the maximum length", { firstName: "a".repeat(MAX_NAME_LENGTH) }],
  ];
  for (const [name, change] of cases) {
    await t.step(name, () => assert.equal(betProblem({ ...GOOD, ...change }), undefined));
  }
});

Deno.test("betProblem() names the bad field and what was expected", async (t) => {
  const tomorrow = isoDay(new Date(Date.now() + 2 * 86_400_000));
  type Case = [string, Partial<BetFields>, string];
  const badDni = (
    name: string,
    document: string,
  ): Case => [name, { document }, `document "${document}" is not a DNI of 1 to 8 digits`];
  const badDate = (
    name: string,
    birthdate: string,
  ): Case => [
    name,
    { birthdate },
    `birthdate "${birthdate}" is not a valid date YYYY-MM-DD from 1900 to today`,
  ];
  const cases: Case[] = [
    ["empty first name", { firstName: "" }, "first name is empty"],
    ["blank last name", { lastName: "   " }, "last name is empty"],
    [
      "over-long first name",
      { firstName: "a".repeat(MAX_NAME_LENGTH + 1) },
      "first name has 65 characters, the maximum is 64",
    ],
    [
      "over-long last name",
      { lastName: "ñ".repeat(100) },
      "last name has 100 characters, the maximum is 64",
    ],
    ["newline in a name", { firstName: "Juan\nPedro" }, "first name contains a control character"],
    ["tab in a name", { lastName: "Lo\trca" }, "last name contains a control character"],
    ["NUL in a name", { lastName: "Lo\u0000rca" }, "last name contains a control character"],
    ["DEL in a name", { firstName: "Juan\u007f" }, "first name contains a control character"],
    badDni("empty DNI", ""),
    badDni("non-numeric DNI", "30a04465"),
    badDni("nine-digit DNI", "309044651"),
    badDni("zero DNI", "0"),
    badDni("all-zero DNI", "00000000"),
    badDni("DNI with dots", "30.904.465"),
    badDni("negative DNI", "-30904465"),
    badDate("February 30", "2023-02-30"),
    badDate("month 13", "2023-13-01"),
    badDate("February 29 of a common year", "2023-02-29"),
    badDate("day 0", "2023-01-00"),
    badDate("before 1900", "1899-12-31"),
    [
      "a future date",
      { birthdate: tomorrow },
      `birthdate "${tomorrow}" is after this machine's date ${isoDay(new Date())}`,
    ],
    badDate("another format", "17/03/1999"),
    badDate("no zero padding", "1999-3-17"),
    ["number 10000", { number: 10000 }, "number 10000 is outside 0-9999"],
    ["negative number", { number: -1 }, "number -1 is outside 0-9999"],
    ["non-integer number", { number: 1.5 }, "number 1.5 is outside 0-9999"],
    ["NaN", { number: NaN }, "number NaN is outside 0-9999"],
  ];
  for (const [name, change, problem] of cases) {
    await t.step(name, () => assert.equal(betProblem({ ...GOOD, ...change }), problem));
  }
});

Deno.test("betProblem() reports the first bad field in column order", () => {
  assert.equal(
    betProblem({ firstName: "", lastName: "", document: "x", birthdate: "x", number: -1 }),
    "first name is empty",
  );
  assert.equal(
    betProblem({ ...GOOD, document: "x", number: -1 }),
    'document "x" is not a DNI of 1 to 8 digits',
  );
});

Deno.test("isValidBirthdate() accepts today and rejects tomorrow relative to `today`", () => {
  const today = new Date(Date.UTC(2024, 5, 15, 12));
  assert.equal(isValidBirthdate("2024-06-15", today), true);
  assert.equal(isValidBirthdate("2024-06-16", today), false);
  assert.equal(isValidBirthdate("2000-02-29", today), true);
  assert.equal(isValidBirthdate("1900-02-29", today), false);
});

Deno.test("hasWon() is true only for the winning number 7574", () => {
  assert.equal(WINNING_NUMBER, 7574);
  assert.equal(hasWon({ number: 7574 }), true);
  assert.equal(hasWon(GOOD), true);
  for (const number of [0, 7573, 7575, 9999, 757]) assert.equal(hasWon({ number }), false);
});

Deno.test("betProblem() names today's date and whose clock for a birthdate after it", () => {
  const bet = { ...COURSE_BET, birthdate: "2000-05-10" };
  const today = new Date("2000-01-01T12:00:00Z");
  assert.equal(
    betProblem(bet, { today, clock: "the server's" }),
    'birthdate "2000-05-10" is after the server\'s date 2000-01-01',
  );
  assert.equal(
    betProblem(bet, { today }),
    'birthdate "2000-05-10" is after this machine\'s date 2000-01-01',
  );
  assert.equal(
    betProblem({ ...bet, birthdate: "2000-02-30" }, { today }),
    'birthdate "2000-02-30" is not a valid date YYYY-MM-DD from 1900 to today',
  );
});

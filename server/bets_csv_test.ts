import assert from "node:assert/strict";
import type { BetFields } from "../shared/bet.ts";
import { numberedBet as bet, rowOf } from "../testing/bets.ts";
import { betRows, formatBetRows, parseRow } from "./bets_csv.ts";

Deno.test("formatBetRows() writes rows like Python's csv.writer", async (t) => {
  const cases: [string, Partial<BetFields>, string][] = [
    [
      "plain fields",
      {
        firstName: "Santiago Lionel",
        lastName: "Lorca",
        document: "30904465",
        birthdate: "1999-03-17",
        number: 7574,
      },
      "7,Santiago Lionel,Lorca,30904465,1999-03-17,7574\r\n",
    ],
    ["a comma is quoted", { firstName: "Perez, Juan" }, '7,"Perez, Juan",'],
    ["a quote is doubled and quoted", { lastName: 'O"Brien' }, ',"O""Brien",'],
    ["spaces and accents are not quoted", { firstName: " José Ñandú " }, "7, José Ñandú ,"],
    ["an empty field stays empty", { lastName: "" }, ",,"],
  ];
  for (const [name, change, expected] of cases) {
    await t.step(name, () => {
      const row = formatBetRows(7, [bet(1, change)]);
      assert.ok(row.includes(expected), `${JSON.stringify(row)} lacks ${JSON.stringify(expected)}`);
      assert.ok(row.endsWith("\r\n"));
    });
  }
  await t.step("several rows, each ending in CRLF", () => {
    assert.equal(formatBetRows(2, [bet(1), bet(2)]), rowOf(2, bet(1)) + rowOf(2, bet(2)));
  });
  await t.step("no bets, no text", () => assert.equal(formatBetRows(1, []), ""));
});

Deno.test("formatBetRows() quotes a field holding a lone CR or LF, as Python does", () => {
  // Python's csv.writer (QUOTE_MINIMAL, lineterminator "\r\n") quotes any field containing
  // "\r" or "\n"; csv-stringify only quotes the whole record delimiter "\r\n".
  assert.equal(
    formatBetRows(1, [bet(1, { firstName: "a\nb", lastName: "c\rd" })]),
    `1,"a\nb","c\rd",10000001,1990-05-17,1\r\n`,
  );
});

Deno.test("betRows() gives the rows as bytes, their count and their winners", () => {
  const bets = [bet(1), bet(2, { number: 7574, firstName: "Zoë" }), bet(3)];
  const rows = betRows(4, bets);
  assert.equal(new TextDecoder().decode(rows.rows), formatBetRows(4, bets));
  assert.equal(rows.count, 3);
  assert.equal(rows.winners, 1);
});

Deno.test("parseRow() reads back what formatBetRows() writes", async (t) => {
  const cases = [bet(1), bet(2, { firstName: 'Perez, "Juan"', lastName: "Ñandú" })];
  for (const b of cases) {
    await t.step(b.firstName, () => {
      assert.deepEqual(parseRow(formatBetRows(3, [b]).slice(0, -2)), { agency: 3, ...b });
    });
  }
  await t.step("a row without six columns is a SyntaxError", () => {
    assert.throws(() => parseRow("1,a,b,1,2000-01-01"), SyntaxError);
    assert.throws(() => parseRow('1,"a,b,1,2000-01-01,5'), SyntaxError);
  });
});

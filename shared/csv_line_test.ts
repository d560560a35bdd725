import assert from "node:assert/strict";
import { splitCsvLine } from "./csv_line.ts";

Deno.test("splitCsvLine() splits RFC 4180 fields", async (t) => {
  const cases: Array<[string, string[] | undefined]> = [
    ["a,b,c", ["a", "b", "c"]],
    ['"a,b","say ""hi""",,c', ["a,b", 'say "hi"', "", "c"]],
    ["", [""]],
    ['1,"Pérez, Juan",Lorca', ["1", "Pérez, Juan", "Lorca"]],
    ['"open', undefined],
  ];
  for (const [line, fields] of cases) {
    await t.step(JSON.stringify(line), () => assert.deepEqual(splitCsvLine(line), fields));
  }
});

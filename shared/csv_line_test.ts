import assert from "node:assert/strict";
import { joinCsvLine, splitCsvLine } from "./csv_line.ts";

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

Deno.test("joinCsvLine() quotes only what needs it, and splitCsvLine() undoes it", async (t) => {
  const cases: Array<[string[], string]> = [
    [["a", "b", "c"], "a,b,c"],
    [["a,b", 'say "hi"', "", "c"], '"a,b","say ""hi""",,c'],
    [["Pérez", "x\ny"], 'Pérez,"x\ny"'],
    [[""], ""],
  ];
  for (const [fields, line] of cases) {
    await t.step(line, () => {
      assert.equal(joinCsvLine(fields), line);
      if (!line.includes("\n")) assert.deepEqual(splitCsvLine(line), fields);
    });
  }
});

/**
 * One CSV line split into fields, for the rows this project reads back: agency files
 * (client) and `bets.csv` (server). Rows never span lines here: control characters are
 * refused in every field.
 *
 * @module
 */

/**
 * Splits one CSV line with RFC 4180 quoting (`"a,b"`, `""` for a quote).
 *
 * @param line The line, without its ending.
 * @returns The fields, or `undefined` when a quote is left open.
 */
export function splitCsvLine(line: string): string[] | undefined {
  const fields: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch !== '"') field += ch;
      else if (line[i + 1] === '"') {
        field += '"';
        i++;
      } else quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      fields.push(field);
      field = "";
    } else field += ch;
  }
  if (quoted) return undefined;
  fields.push(field);
  return fields;
}

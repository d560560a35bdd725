/**
 * One CSV line split into fields or joined from them, for the rows this project reads
 * back (`bets.csv`) and the bets a BATCH frame carries. Rows never span lines here:
 * control characters are refused in every field.
 *
 * @module
 */

/** Splits a CSV line (no line ending), RFC 4180 quoting; `undefined` if a quote is left open. */
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

/**
 * Joins fields into one CSV line, without its ending, with minimal quoting (as Python's
 * `csv.writer` does): a field is quoted only when it holds a comma, a quote or a line break.
 */
export function joinCsvLine(fields: readonly string[]): string {
  return fields.map((f) => /[",\r\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f).join(",");
}

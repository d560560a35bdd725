/**
 * The progress line: every `SERVER_PROGRESS_INTERVAL`, `progreso | result: in_progress` with
 * what is stored, which agencies are pending or in trouble and the connections open across
 * every session thread, said only when something changed and never after the draw.
 *
 * @module
 */
import { type ActionLogger, LogAction, type LogFields } from "../shared/log.ts";

/** Agency ids for a log value: space-separated, `-` for none. */
export function listIds(ids: Iterable<number>): string {
  return [...ids].sort((a, b) => a - b).join(" ") || "-";
}

/** Memory in MiB, for the progress line: ingestion should keep it flat. */
function memoryFields(): LogFields {
  const { rss, heapUsed, external } = Deno.memoryUsage();
  const mib = (bytes: number): number => Math.round(bytes / 104857.6) / 10;
  return { rss_mb: mib(rss), heap_mb: mib(heapUsed), external_mb: mib(external) };
}

/**
 * Logs the fields `fields()` returns every `intervalMs` (5 s for 0) when they differ from
 * the last ones logged; `undefined` (the draw is done) logs nothing. Returns the timer's
 * stop.
 */
export function startProgress(
  log: ActionLogger,
  { intervalMs, fields }: {
    readonly intervalMs: number;
    readonly fields: () => LogFields | undefined;
  },
): () => void {
  let last = "";
  const timer = setInterval(() => {
    const now = fields();
    if (now === undefined) return;
    const key = JSON.stringify(now);
    if (key === last) return;
    last = key;
    log.info(LogAction.PROGRESO, "in_progress", { ...now, ...memoryFields() });
  }, intervalMs || 5000);
  return () => clearInterval(timer);
}

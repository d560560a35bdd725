/**
 * Opening the storage for the server: `BetStore.open`, the operator's exclusions, the
 * `open_storage` line that says what it holds, and the `store_bets` lines while it fails.
 *
 * @module
 */
import { errorText } from "../shared/errors.ts";
import { type ActionLogger, LogAction } from "../shared/log.ts";
import { listIds } from "./progress.ts";
import type { ServerOptions } from "./server.ts";
import { BetStore, type StorageFailure } from "./storage.ts";

/** How long writes must work without a failure before the log says storage recovered. */
const RECOVERY_QUIET_MS = 5000;

/**
 * The `store_bets` lines: one ERROR when writes start failing (and again if the failure
 * turns permanent), one INFO once they have worked for {@linkcode RECOVERY_QUIET_MS}, so a
 * disk that stays nearly full, failing and working by turns, is one failure, not a flood.
 */
function storageHealthLog(log: ActionLogger, path: string) {
  let failing = false;
  let quiet: ReturnType<typeof setTimeout> | undefined;
  const stopWaiting = () => {
    clearTimeout(quiet);
    quiet = undefined;
  };
  return {
    failure({ path: file, error, recovers }: StorageFailure): void {
      stopWaiting();
      if (failing && recovers) return;
      failing = true;
      log.error(LogAction.STORE_BETS, "fail", {
        path: file,
        error: errorText(error),
        recovery: recovers ? "automatic" : "restart",
        detail: recovers
          ? "the failed write is undone and batches are refused until one can be written again (e.g. once the disk has space); the server recovers by itself"
          : "every batch is refused until the server restarts (start-up then checks the files)",
      });
    },
    recovery(): void {
      if (!failing || quiet !== undefined) return;
      quiet = setTimeout(() => {
        quiet = undefined;
        failing = false;
        log.info(LogAction.STORE_BETS, "success", { path, detail: "writing works again" });
      }, RECOVERY_QUIET_MS);
    },
    close: stopWaiting,
  };
}

/**
 * Opens the storage (taking its lock, checking what it is, cutting a torn tail), leaves
 * out the agencies the operator excluded, and logs what it holds.
 */
export async function openStore(
  config: ServerOptions,
  log: ActionLogger,
): Promise<{ store: BetStore; health: { close(): void } }> {
  const path = config.storagePath;
  const health = storageHealthLog(log, path);
  const store = await BetStore.open({
    path,
    agencies: config.agencies,
    fsync: config.fsync,
    onFailure: health.failure,
    onRecovery: health.recovery,
  });
  try {
    store.checkExclusions(config.excludedAgencies);
    for (const agency of config.excludedAgencies) {
      const before = store.stats.bets;
      if (!(await store.exclude(agency))) continue;
      log.warning(LogAction.EXCLUIR_AGENCIA, "success", {
        agency,
        apuestas: before - store.stats.bets,
        detail: "the operator closed the draw without it (SERVER_EXCLUDED_AGENCIES); its bets " +
          "are left out of the draw and the totals, and it is refused if it comes back",
      });
    }
  } catch (error) {
    await store.close();
    health.close();
    throw error;
  }
  const { opening, stats } = store;
  const done = store.doneAgencies();
  const excluded = store.excludedAgencies();
  log.info(LogAction.OPEN_STORAGE, "success", {
    path,
    sorteo_id: opening.drawId,
    agencias: config.agencies,
    estado: opening.fresh ? "nuevo" : "existente",
    apuestas: stats.bets,
    lotes: stats.batches,
    agencias_listas: listIds(done),
    agencias_excluidas: listIds(excluded),
    sorteo: done.length + excluded.length === config.agencies ? "realizado" : "pendiente",
    bytes_descartados: opening.cutBytes,
    bytes_journal_descartados: opening.cutJournalBytes,
    fsync: config.fsync,
    ...(opening.fresh ? {} : {
      sorteo_nuevo: `stop the server and move ${path} and ${path}.journal away`,
    }),
  });
  return { store, health };
}

/**
 * Opening a storage: taking its lock, finding out what it is, and trusting nothing read back. A new
 * storage is a new draw. A torn tail (failing or incomplete records at the journal's end, rows past
 * its last good record) is cut and reported; anything else that does not add up is refused with a
 * {@linkcode StorageError} that says how to proceed, and nothing is cut.
 *
 * @module
 */
import { errorText, osErrorReason, StorageError } from "../shared/errors.ts";
import { CR, LF, writeAll } from "../shared/bytes.ts";
import {
  decodeJournal,
  encodeHeader,
  JOURNAL_FORMAT,
  type JournalHeader,
  type JournalRecord,
  newDrawId,
  RECORD_SIZE,
  RecordKind,
} from "./journal.ts";

/**
 * What opening found: the draw (its id and creation time, from the journal's header),
 * whether it is new (`fresh`), and the bytes of a torn write cut off `bets.csv` (past the
 * last journal record) and off the journal.
 */
export interface StorageOpening {
  readonly drawId: string;
  readonly createdAt: number;
  readonly fresh: boolean;
  readonly cutBytes: number;
  readonly cutJournalBytes: number;
}

/** A storage's files: `bets.csv` and its journal, for appending, and its lock, held till closed. */
export interface StorageFiles {
  readonly lock: Deno.FsFile;
  readonly data: Deno.FsFile;
  readonly journal: Deno.FsFile;
}

/**
 * A storage opened and checked: its files, the journal's records after its header (each
 * follows from the ones before), the journal's size kept, and what opening found.
 */
export interface OpenedStorage {
  readonly files: StorageFiles;
  readonly records: readonly JournalRecord[];
  readonly journalSize: number;
  readonly opening: StorageOpening;
}

/**
 * What {@linkcode openStorage} opens: `bets.csv` at `path` (its journal and lock beside
 * it) for a draw of `agencies`, fsyncing a new header unless `sync` is off.
 */
export interface OpenStorageOptions {
  readonly path: string;
  readonly agencies: number;
  readonly sync: boolean;
}

/** Bytes of `bets.csv` read at once by the rows check. */
const CHUNK = 1024 * 1024;

/** How to start over, said by every refusal (without a `:`, as a log value must be). */
export function freshDraw(path: string): string {
  return `to start a fresh draw, stop the server and move ${path} and ${path}.journal away ` +
    "(or set SERVER_STORAGE_PATH to a new file)";
}

/** `Storage <path> <what> <how to start a fresh draw>`: `what` ends in `;` or `, or`. */
function refusal(path: string, what: string): StorageError {
  return new StorageError(path, `Storage ${path} ${what} ${freshDraw(path)}`);
}

function damaged(path: string, what: string): StorageError {
  return refusal(
    path,
    `is damaged (${what}); acknowledged bets are never cut, so the server stops. See ` +
      `"Storage and recovery" in the README to recover, or`,
  );
}

/** Whether `error` is one of Deno's errors for a failed system call. */
function isOsError(error: unknown): boolean {
  return Object.values(Deno.errors).some((kind) => error instanceof kind) ||
    (error instanceof Error && "code" in error);
}

/** One OS error while opening the storage, as a line naming the setting. */
function unusable(path: string, error: unknown): StorageError {
  const { NotCapable, PermissionDenied, NotFound, IsADirectory } = Deno.errors;
  const reason = osErrorReason(error, [
    [NotCapable, "this server's Deno permissions do not allow writing there (--allow-write)"],
    [PermissionDenied, "the OS denies access to it"],
    [NotFound, "its folder does not exist"],
    [IsADirectory, "it is a folder, not a file"],
  ]) ?? errorText(error);
  return new StorageError(path, `Cannot use SERVER_STORAGE_PATH ${path} because ${reason}`, {
    cause: error,
  });
}

/** Takes `<path>.lock` for this process, or says who holds it (the pid written in it). */
async function lockStorage(path: string): Promise<Deno.FsFile> {
  const lockPath = `${path}.lock`;
  const lock = await Deno.open(lockPath, { read: true, write: true, create: true });
  try {
    if (!(await lock.tryLock(true))) {
      const holder = (await Deno.readTextFile(lockPath).catch(() => "")).trim();
      throw new StorageError(
        path,
        `Storage ${path} is in use by another server${
          /^\d+$/.test(holder) ? ` (pid ${holder})` : ""
        }, which holds the lock on ${lockPath}; stop it first, or give this server its own ` +
          "SERVER_STORAGE_PATH",
      );
    }
    return lock;
  } catch (error) {
    lock.close();
    throw error;
  }
}

/** What `read` gives, or `missing` when its file does not exist. */
async function unlessMissing<T>(read: Promise<T>, missing: T): Promise<T> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return missing;
    throw error;
  }
}

/** A batch record as the rows check needs it. */
interface BatchSpan {
  /** Its index in the journal. */
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly bets: number;
}

/**
 * Checks that the records follow from one another (the header aside): each agency's
 * batches in sequence, within 1..agencies, nothing after its DONE or exclusion, every
 * batch moving the end of `bets.csv` forward and nothing else moving it.
 */
function checkRecords(
  path: string,
  records: readonly JournalRecord[],
  agencies: number,
): BatchSpan[] {
  const next = new Array<number>(agencies + 1).fill(0);
  const closed = new Map<number, string>();
  const spans: BatchSpan[] = [];
  let size = 0;
  records.forEach((record, i) => {
    const index = i + 1;
    const { agency } = record;
    let problem: string | undefined;
    if (agency === 0 || agency > agencies) {
      problem = `names agency ${agency}, outside 1 to ${agencies}`;
    } else if (closed.has(agency)) {
      problem = `comes after agency ${agency} was ${closed.get(agency)}`;
    } else if (record.kind !== RecordKind.BATCH) {
      if (record.end !== size) problem = "moves the end of bets.csv without a batch";
      closed.set(agency, record.kind === RecordKind.DONE ? "done" : "excluded");
    } else if (record.seq !== next[agency]) {
      problem = `holds batch ${record.seq} of agency ${agency}, expected ${next[agency]}`;
    } else if (record.bets === 0 || record.winners > record.bets) {
      problem = `holds ${record.bets} bets and ${record.winners} winners`;
    } else if (record.end <= size) {
      problem = "does not move the end of bets.csv forward";
    } else {
      spans.push({ index, start: size, end: record.end, bets: record.bets });
      next[agency]!++;
      size = record.end;
    }
    if (problem !== undefined) {
      throw damaged(
        path,
        `record ${index} of ${path}.journal (byte ${index * RECORD_SIZE}) ${problem}`,
      );
    }
  });
  return spans;
}

/**
 * Checks that each batch record's bytes of `bets.csv` are as many whole CRLF rows as
 * the record says, reading the file once (records cover it back to back from byte 0).
 */
async function checkRows(path: string, spans: readonly BatchSpan[]): Promise<void> {
  if (spans.length === 0) return;
  const length = spans.at(-1)!.end;
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(CHUNK);
  let offset = 0;
  let next = 0;
  let rows = 0;
  let previous = 0;
  const mismatch = (span: BatchSpan, detail: string) =>
    damaged(
      path,
      `journal record ${span.index} says bytes ${span.start} to ${span.end} of bets.csv ` +
        `hold ${span.bets} rows, but ${detail}`,
    );
  while (offset < length) {
    const n = await file.read(buf.subarray(0, Math.min(buf.length, length - offset)));
    if (n === null) break;
    const chunk = buf.subarray(0, n);
    for (let at = chunk.indexOf(LF); at !== -1; at = chunk.indexOf(LF, at + 1)) {
      const span = spans[next]!;
      const end = offset + at + 1;
      rows++;
      if (end < span.end) continue;
      if (end > span.end) throw mismatch(span, "its last row does not end there");
      const before = at > 0 ? chunk[at - 1] : previous;
      if (before !== CR) throw mismatch(span, "its last row does not end in CRLF");
      if (rows !== span.bets) throw mismatch(span, `they hold ${rows}`);
      next++;
      rows = 0;
    }
    previous = chunk[n - 1]!;
    offset += n;
  }
  const span = spans[next];
  if (span !== undefined) throw mismatch(span, "its last row does not end there");
}

/** Refuses a header that is not this draw's. */
function checkHeader(path: string, header: JournalHeader, agencies: number): void {
  if (header.format !== JOURNAL_FORMAT) {
    const formats = `journal format ${header.format}, this server reads format ${JOURNAL_FORMAT}`;
    throw refusal(path, `has ${formats};`);
  }
  if (header.agencies !== agencies) {
    throw refusal(
      path,
      `holds draw ${header.drawId} for ${header.agencies} agencies, but SERVER_AGENCIES is ` +
        `${agencies}; set SERVER_AGENCIES=${header.agencies} to go on with that draw, or`,
    );
  }
}

/** Checks what is on disk and cuts a torn tail; throws what it refuses. */
async function load(lock: Deno.FsFile, options: OpenStorageOptions): Promise<OpenedStorage> {
  const { path } = options;
  const journalPath = `${path}.journal`;
  const journalBytes = await unlessMissing(Deno.readFile(journalPath), new Uint8Array(0));
  const dataSize = await unlessMissing(Deno.stat(path).then((info) => info.size), 0);
  const journal = decodeJournal(journalBytes);
  if (journal.corruptRecord !== undefined) {
    const at = journal.corruptRecord;
    throw damaged(
      path,
      `record ${at} of ${journalPath} (byte ${at * RECORD_SIZE}) fails its checksum while ` +
        "later records pass theirs",
    );
  }
  const [header, ...rest] = journal.entries;
  if (header === undefined) {
    if (dataSize > 0) {
      throw refusal(
        path,
        `holds ${dataSize} bytes of bets that no journal accounts for (${journalPath} is ` +
          "missing, empty or without its header); the server never adopts them. To keep " +
          "that draw, put its journal back beside it;",
      );
    }
    return await create(lock, options, journalBytes.length);
  }
  if (header.kind !== RecordKind.HEADER) {
    throw refusal(
      path,
      "was written by an older version (its journal has no header), so the server cannot " +
        "tell which draw it holds;",
    );
  }
  checkHeader(path, header, options.agencies);
  const records = rest as JournalRecord[];
  const spans = checkRecords(path, records, options.agencies);
  const size = spans.at(-1)?.end ?? 0;
  if (dataSize < size) {
    throw damaged(path, `bets.csv has ${dataSize} bytes but its journal accounts for ${size}`);
  }
  await checkRows(path, spans);
  const journalSize = journal.entries.length * RECORD_SIZE;
  // Only now, with everything checked, is anything cut: the torn tail of each file.
  const files = await openFiles(lock, path, async (data, journalFile) => {
    if (dataSize > size) await data.truncate(size);
    if (journal.tailBytes > 0) await journalFile.truncate(journalSize);
  });
  const { drawId, createdAt } = header;
  const cutBytes = dataSize - size;
  const opening = { drawId, createdAt, fresh: false, cutBytes, cutJournalBytes: journal.tailBytes };
  return { files, records, journalSize, opening };
}

/** Makes a new draw: an empty `bets.csv` and a journal holding only its header. */
async function create(
  lock: Deno.FsFile,
  options: OpenStorageOptions,
  tornHeaderBytes: number,
): Promise<OpenedStorage> {
  const header = {
    format: JOURNAL_FORMAT,
    agencies: options.agencies,
    drawId: newDrawId(),
    createdAt: Math.floor(Date.now() / 1000),
  };
  const { drawId, createdAt } = header;
  const files = await openFiles(lock, options.path, async (_, journal) => {
    await journal.truncate(0);
    await writeAll(journal, encodeHeader(header));
    if (options.sync) {
      await journal.syncData();
      await syncFolderOf(options.path);
    }
  });
  const opening = { drawId, createdAt, fresh: true, cutBytes: 0, cutJournalBytes: tornHeaderBytes };
  return { files, records: [], journalSize: RECORD_SIZE, opening };
}

/**
 * Opens `bets.csv` and its journal for appending, lets `prepare` cut or write them, then
 * writes the pid into the lock file (only a server that keeps the storage says who it
 * is); closes both if anything fails.
 */
async function openFiles(
  lock: Deno.FsFile,
  path: string,
  prepare: (data: Deno.FsFile, journal: Deno.FsFile) => Promise<void>,
): Promise<StorageFiles> {
  const data = await Deno.open(path, { read: true, append: true, create: true });
  let journal: Deno.FsFile | undefined;
  try {
    journal = await Deno.open(`${path}.journal`, { read: true, append: true, create: true });
    await prepare(data, journal);
    await lock.truncate(0);
    await writeAll(lock, new TextEncoder().encode(`${Deno.pid}\n`));
    return { lock, data, journal };
  } catch (error) {
    data.close();
    journal?.close();
    throw error;
  }
}

/** Makes a new file's name durable in its folder, if the file system lets it. */
async function syncFolderOf(path: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const folder = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  try {
    using dir = await Deno.open(folder, { read: true });
    await dir.sync();
  } catch {
    // Some file systems refuse to sync a folder; the files themselves are synced.
  }
}

/**
 * Opens the storage at `options.path`, creating a new draw when there is none: takes its lock,
 * checks what it is and that the journal accounts for `bets.csv`, and cuts a torn tail.
 *
 * @throws {StorageError} Writing nothing, when another server holds the storage, it was
 * made for another agency count or by an older version, `bets.csv` holds rows no journal
 * accounts for, a file is damaged anywhere but its tail, or the path cannot be used.
 */
export async function openStorage(options: OpenStorageOptions): Promise<OpenedStorage> {
  let lock: Deno.FsFile | undefined;
  try {
    lock = await lockStorage(options.path);
    return await load(lock, options);
  } catch (error) {
    lock?.close();
    if (error instanceof StorageError || !isOsError(error)) throw error;
    throw unusable(options.path, error);
  }
}

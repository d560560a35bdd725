/**
 * Opening a storage: taking its lock, finding out what it is, and trusting nothing read back. The
 * lock is an exclusive `flock` on `bets.csv` and on its journal themselves, held by the handles the
 * server keeps: whatever path or link reaches those files, a second server is refused (the lock
 * file beside them only holds the pid, for the refusal's message). Everything is read through
 * those handles, never reopened by path. A new
 * storage is a new draw. A torn tail (failing or incomplete records at the journal's end, rows past
 * its last good record) is cut and reported; anything else that does not add up is refused with a
 * {@linkcode StorageError} that says how to proceed, and nothing is cut.
 *
 * @module
 */
import { errorText, osErrorReason, StorageError } from "../shared/errors.ts";
import { CR, LF, writeAll } from "../shared/bytes.ts";
import {
  checksum,
  claimedFormat,
  decodeJournal,
  encodeHeader,
  JOURNAL_FORMAT,
  type JournalHeader,
  type JournalRecord,
  loadNativeChecksum,
  NATIVE_CHECKSUM_FROM,
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

/**
 * A storage's files, opened for reading and appending and each locked until closed: `bets.csv`
 * and its journal, with what identifies them on disk (to tell whether the path still names them).
 */
export interface StorageFiles {
  readonly data: Deno.FsFile;
  readonly journal: Deno.FsFile;
  /**
   * `bets.csv` again, read-only, for positioned reads: an append moves the offset of the
   * handle it writes through, so reads keep an offset of their own.
   */
  readonly reader: Deno.FsFile;
  readonly dataId: FileId;
  readonly journalId: FileId;
}

/** A file's identity on disk: its device and inode. */
export interface FileId {
  readonly dev: number;
  readonly ino: number;
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

/**
 * Takes the lock on one of the storage's files (`name`, e.g. `bets.csv`), or says who holds it:
 * the pid in `<path>.lock` when that server wrote one.
 */
async function lockFile(file: Deno.FsFile, path: string, name: string): Promise<void> {
  if (await file.tryLock(true)) return;
  const holder = (await Deno.readTextFile(`${path}.lock`).catch(() => "")).trim();
  throw new StorageError(
    path,
    `Storage ${path} is in use by another server${
      /^\d+$/.test(holder) ? ` (pid ${holder})` : ""
    }, which holds the lock on its ${name} (through this path or another link to it); stop ` +
      "it first, or give this server its own SERVER_STORAGE_PATH",
  );
}

/** Opens `path` for reading and appending, creating it if `create`; `undefined` if missing. */
async function openAppend(path: string, create: boolean): Promise<Deno.FsFile | undefined> {
  try {
    return await Deno.open(path, { read: true, append: true, create });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !create) return undefined;
    throw error;
  }
}

/** Reads a whole file through its handle, from the start. */
async function readAll(file: Deno.FsFile): Promise<Uint8Array> {
  const { size } = await file.stat();
  const bytes = new Uint8Array(size);
  await file.seek(0, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < size) {
    const n = await file.read(bytes.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return bytes.subarray(0, filled);
}

/** The device and inode of an open file. */
async function idOf(file: Deno.FsFile): Promise<FileId> {
  const { dev, ino } = await file.stat();
  return { dev, ino: ino ?? 0 };
}

/** A batch record as the rows check needs it. */
interface BatchSpan {
  /** Its index in the journal. */
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly bets: number;
  readonly rowsCrc: number;
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
      spans.push({
        index,
        start: size,
        end: record.end,
        bets: record.bets,
        rowsCrc: record.rowsCrc,
      });
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
 * the record says, with the checksum it holds, reading the file once through its handle
 * (records cover it back to back from byte 0).
 */
async function checkRows(
  path: string,
  file: Deno.FsFile,
  spans: readonly BatchSpan[],
): Promise<void> {
  if (spans.length === 0) return;
  const length = spans.at(-1)!.end;
  if (length >= NATIVE_CHECKSUM_FROM) await loadNativeChecksum();
  await file.seek(0, Deno.SeekMode.Start);
  const buf = new Uint8Array(CHUNK);
  let offset = 0;
  let next = 0;
  let rows = 0;
  let previous = 0;
  /** The checksum of the current span's bytes before this chunk, and where they start in it. */
  let crc = 0;
  let from = 0;
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
      const read = checksum(chunk.subarray(from, at + 1), crc);
      if (read !== span.rowsCrc) {
        throw damaged(
          path,
          `bytes ${span.start} to ${span.end} of bets.csv were changed after they were ` +
            `stored, their checksum is ${hex(read)} but journal record ${span.index} holds ` +
            hex(span.rowsCrc),
        );
      }
      next++;
      rows = 0;
      crc = 0;
      from = at + 1;
    }
    crc = checksum(chunk.subarray(from), crc);
    from = 0;
    previous = chunk[n - 1]!;
    offset += n;
  }
  const span = spans[next];
  if (span !== undefined) throw mismatch(span, "its last row does not end there");
}

/** A checksum as 8 hex digits. */
function hex(crc: number): string {
  return crc.toString(16).padStart(8, "0");
}

/** Refuses a journal of another format: `claimed` read from its first bytes. */
function olderFormat(path: string, claimed: number): StorageError {
  return refusal(
    path,
    `has journal format ${claimed}, this server reads format ${JOURNAL_FORMAT} (it keeps a ` +
      "checksum of every batch's rows) and does not convert a journal;",
  );
}

/** Refuses a header that is not this draw's. */
function checkHeader(path: string, header: JournalHeader, agencies: number): void {
  if (header.format !== JOURNAL_FORMAT) throw olderFormat(path, header.format);
  if (header.agencies !== agencies) {
    throw refusal(
      path,
      `holds draw ${header.drawId} for ${header.agencies} agencies, but SERVER_AGENCIES is ` +
        `${agencies}; set SERVER_AGENCIES=${header.agencies} to go on with that draw, or`,
    );
  }
}

/** The storage's files as found: either may be missing (a new storage has neither). */
interface Found {
  data: Deno.FsFile | undefined;
  journal: Deno.FsFile | undefined;
}

/** Checks what is on disk and cuts a torn tail; throws what it refuses. */
async function load(found: Found, options: OpenStorageOptions): Promise<OpenedStorage> {
  const { path } = options;
  const journalPath = `${path}.journal`;
  const journalBytes = found.journal ? await readAll(found.journal) : new Uint8Array(0);
  const dataSize = found.data ? (await found.data.stat()).size : 0;
  const journal = decodeJournal(journalBytes);
  const claimed = claimedFormat(journalBytes);
  if (claimed !== undefined && claimed !== JOURNAL_FORMAT) throw olderFormat(path, claimed);
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
    return await create(found, options, journalBytes.length);
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
  const data = found.data ??= await lockedFile(path, "", "bets.csv");
  await checkRows(path, data, spans);
  const journalSize = journal.entries.length * RECORD_SIZE;
  // Only now, with everything checked, is anything cut: the torn tail of each file.
  const files = await keep(found, path, async (dataFile, journalFile) => {
    if (dataSize > size) await dataFile.truncate(size);
    if (journal.tailBytes > 0) await journalFile.truncate(journalSize);
  });
  const { drawId, createdAt } = header;
  const cutBytes = dataSize - size;
  const opening = { drawId, createdAt, fresh: false, cutBytes, cutJournalBytes: journal.tailBytes };
  return { files, records, journalSize, opening };
}

/** Makes a new draw: an empty `bets.csv` and a journal holding only its header. */
async function create(
  found: Found,
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
  const files = await keep(found, options.path, async (_, journal) => {
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

/** Opens (creating) and locks `<path><suffix>`, closing it again if the lock is refused. */
async function lockedFile(path: string, suffix: string, name: string): Promise<Deno.FsFile> {
  const file = (await openAppend(`${path}${suffix}`, true))!;
  try {
    await lockFile(file, path, name);
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * Creates whichever of `bets.csv` and its journal is missing (locked), lets `prepare` cut or
 * write them, notes their identities, then writes the pid into `<path>.lock` (only a server
 * that keeps the storage says who it is).
 */
async function keep(
  found: Found,
  path: string,
  prepare: (data: Deno.FsFile, journal: Deno.FsFile) => Promise<void>,
): Promise<StorageFiles> {
  const data = found.data ??= await lockedFile(path, "", "bets.csv");
  const journal = found.journal ??= await lockedFile(path, ".journal", "journal");
  await prepare(data, journal);
  const dataId = await idOf(data);
  const reader = await Deno.open(path, { read: true });
  try {
    const readerId = await idOf(reader);
    if (readerId.dev !== dataId.dev || readerId.ino !== dataId.ino) {
      throw refusal(path, "was replaced while the server opened it;");
    }
    const files = { data, journal, reader, dataId, journalId: await idOf(journal) };
    await Deno.writeTextFile(`${path}.lock`, `${Deno.pid}\n`);
    return files;
  } catch (error) {
    reader.close();
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
  const { path } = options;
  const found: Found = { data: undefined, journal: undefined };
  try {
    found.data = await openAppend(path, false);
    if (found.data) await lockFile(found.data, path, "bets.csv");
    found.journal = await openAppend(`${path}.journal`, false);
    if (found.journal) await lockFile(found.journal, path, "journal");
    return await load(found, options);
  } catch (error) {
    found.data?.close();
    found.journal?.close();
    if (error instanceof StorageError || !isOsError(error)) throw error;
    throw unusable(path, error);
  }
}

/**
 * Whether `path` (and its journal, unless `journal` is false) still name the files `files` holds open: not moved,
 * replaced or deleted since (a restart reads what the paths name, so nothing else may be
 * acknowledged). `undefined` when they do, else what changed, as a log value.
 */
export function pathChange(
  path: string,
  files: StorageFiles,
  journal = true,
): string | undefined {
  const named = [[path, files.dataId], [`${path}.journal`, files.journalId]] as const;
  for (const [name, id] of journal ? named : named.slice(0, 1)) {
    let now: Deno.FileInfo;
    try {
      // Synchronous: a stat of a path takes a few µs, its async form some 60 µs of hops,
      // and the writer does up to three per group.
      now = Deno.statSync(name);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return `${name} is gone`;
      return `${name} cannot be checked (${errorText(error)})`;
    }
    if (now.dev !== id.dev || (now.ino ?? 0) !== id.ino) {
      return `${name} is now another file (it was moved, replaced or copied over)`;
    }
  }
  return undefined;
}

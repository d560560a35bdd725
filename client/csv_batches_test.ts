import assert from "node:assert/strict";
import { seeded } from "../testing/random.ts";
import { parse as parseCsv } from "csv-parse/sync";
import { unzipSync } from "fflate";
import type { BetFields } from "../shared/bet.ts";
import { decodeMessage, MAX_FRAME_SIZE, MessageType } from "../shared/protocol/mod.ts";
import { BetsFileError, csvBatchChunks, openBetsFile } from "./csv_batches.ts";
import { COURSE_ZIP, HAS_COURSE_ZIP } from "../testing/course_data.ts";

/**
 * The reference: the file's non-blank lines as they are (a `\n` added to a last line
 * without one), packed greedily into frames of at most `maxAmount` lines and 8 KiB,
 * each with its header written out byte by byte.
 */
function referenceFrames(text: string, agency: number, maxAmount: number): Uint8Array[] {
  const utf8 = new TextEncoder();
  const lines = (text.match(/[^\n]*\n|[^\n]+$/g) ?? [])
    .filter((line) => !/^\r?\n?$/.test(line))
    .map((line) => utf8.encode(line.endsWith("\n") ? line : `${line}\n`));
  const frames: Uint8Array[] = [];
  let batch: Uint8Array[] = [];
  let size = 0;
  const flush = () => {
    if (batch.length === 0) return;
    const body = 8 + size;
    const seq = frames.length;
    const header = [0xfb, 0x04, body >> 8, body & 0xff, agency >> 8, agency & 0xff];
    header.push(seq >>> 24, (seq >> 16) & 0xff, (seq >> 8) & 0xff, seq & 0xff);
    header.push(batch.length >> 8, batch.length & 0xff);
    frames.push(new Uint8Array([...header, ...batch.flatMap((line) => [...line])]));
    batch = [];
    size = 0;
  };
  for (const line of lines) {
    if (batch.length === maxAmount || 12 + size + line.length > MAX_FRAME_SIZE) flush();
    batch.push(line);
    size += line.length;
  }
  flush();
  return frames;
}

/** The bets csv-parse reads from the text: what the frames must carry. */
function parsedBets(text: string): BetFields[] {
  const rows: string[][] = parseCsv(text, { skip_empty_lines: true });
  return rows.map(([firstName, lastName, document, birthdate, number]) => ({
    firstName: firstName!,
    lastName: lastName!,
    document: document!,
    birthdate: birthdate!,
    number: Number(number),
  }));
}

/** Every bet the frames carry, decoded by the codec. */
function decodedBets(frames: readonly Frame[]): BetFields[] {
  return frames.flatMap((f) => {
    const message = decodeMessage(f.frame[1]!, f.frame.subarray(4));
    assert.equal(message.type, MessageType.BATCH);
    return message.type === MessageType.BATCH ? [...message.bets] : [];
  });
}

interface Frame {
  readonly seq: number;
  readonly count: number;
  readonly lines: readonly [number, number];
  readonly frame: Uint8Array;
}

/** Every frame of the file, from chunks of `framesPerChunk`, copied out of the chunks. */
async function framesOf(
  text: string,
  agency: number,
  maxAmount: number,
  framesPerChunk = 3,
): Promise<Frame[]> {
  const path = await Deno.makeTempFile({ suffix: ".csv" });
  try {
    await Deno.writeTextFile(path, text);
    using file = await openBetsFile(path);
    const frames: Frame[] = [];
    for (const chunk of csvBatchChunks(file, { path, agency, maxAmount, framesPerChunk })) {
      assert.ok(chunk.batches.length <= framesPerChunk);
      assert.equal(chunk.batches.at(-1)!.end, chunk.bytes.length, "frames are back to back");
      for (const b of chunk.batches) {
        frames.push({
          seq: b.seq,
          count: b.count,
          lines: [b.firstLine, b.lastLine],
          frame: chunk.bytes.slice(b.start, b.end),
        });
      }
    }
    return frames;
  } finally {
    await Deno.remove(path);
  }
}

function quote(field: string): string {
  return /[",]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field;
}

Deno.test("csvBatchChunks() sends the file's lines as they are, batch for batch", async (t) => {
  const random = seeded(11);
  const names = ["Ana", "José María", "Zoë", 'O"Brien', "Pérez, Juan", "Li", "x".repeat(200)];
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const pick = () => names[Math.floor(random() * names.length)]!;
    const number = random() < 0.05 ? 7574 : Math.floor(random() * 10000);
    lines.push(
      [pick(), pick(), String(10000000 + i), "1990-01-31", String(number)].map(quote).join(","),
    );
  }
  const cases = [["\r\n", 100, 8], ["\n", 7, 1], ["\r\n", 65535, 32]] as const;
  for (const [ending, maxAmount, perChunk] of cases) {
    await t.step(
      `${JSON.stringify(ending)} lines, maxAmount ${maxAmount}, ${perChunk} per chunk`,
      async () => {
        const text = lines.join(ending) + ending;
        const frames = await framesOf(text, 3, maxAmount, perChunk);
        const expected = referenceFrames(text, 3, maxAmount);
        assert.equal(frames.length, expected.length);
        frames.forEach((f, i) => {
          assert.equal(f.seq, i);
          assert.ok(f.frame.length <= MAX_FRAME_SIZE);
          assert.ok(f.count <= maxAmount);
          assert.deepEqual(f.frame, expected[i], `frame ${i}`);
          assert.equal(f.lines[1] - f.lines[0] + 1, f.count, `frame ${i} names its lines`);
        });
        assert.deepEqual(decodedBets(frames), parsedBets(text));
      },
    );
  }
  await t.step("no trailing newline, blank lines skipped and counted", async () => {
    const text = `${lines[0]}\r\n\r\n\r\n${lines[1]}`;
    const frames = await framesOf(text, 1, 100);
    assert.deepEqual(frames.map((f) => f.frame), referenceFrames(text, 1, 100));
    assert.deepEqual(frames.map((f) => f.lines), [[1, 4]]);
    assert.deepEqual(decodedBets(frames), parsedBets(text));
  });
  await t.step("a line the server will refuse goes out as it is", async () => {
    const text = "a,b,1,1990-01-01\r\n";
    const frames = await framesOf(text, 1, 100);
    assert.deepEqual(frames.map((f) => f.frame), referenceFrames(text, 1, 100));
  });
});

Deno.test({
  name: "csvBatchChunks() sends the course's dataset line for line",
  ignore: !HAS_COURSE_ZIP,
  async fn() {
    const files = unzipSync(await Deno.readFile(COURSE_ZIP));
    for (const [name, bytes] of Object.entries(files)) {
      const match = name.match(/agency-(\d+)\.csv$/);
      if (!match) continue;
      const text = new TextDecoder().decode(bytes);
      const frames = await framesOf(text, Number(match[1]), 100);
      assert.deepEqual(
        frames.map((f) => f.frame),
        referenceFrames(text, Number(match[1]), 100),
        name,
      );
      assert.deepEqual(decodedBets(frames), parsedBets(text), name);
    }
  },
});

Deno.test("csvBatchChunks() names the file and line of a line too long to send", async (t) => {
  const good = "a,b,1,1990-01-01,5\r\n";
  const cases: Array<[string, string, RegExp]> = [
    [
      "longer than a frame",
      `${good}${"x".repeat(9000)},b,1,1990-01-01,1\n`,
      /^Cannot read bets from .+ line 2: the line is 9018 bytes, more than the 8180 a batch frame holds$/,
    ],
    [
      "longer than the read buffer, without a line break",
      `${good}${good}${"y".repeat(300_000)}`,
      /^Cannot read bets from .+ line 3: the line is over 262144 bytes, more than the 8180 a batch frame holds$/,
    ],
  ];
  for (const [name, text, pattern] of cases) {
    await t.step(name, async () => {
      await assert.rejects(() => framesOf(text, 1, 100), (error: unknown) => {
        assert.ok(error instanceof BetsFileError);
        assert.match(error.message, pattern);
        return true;
      });
    });
  }
});

Deno.test("openBetsFile() names a data path that is no file of bets", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "csv_batches_path_" });
  const expected = "expected this agency's CSV file of bets \\(data.path or CLI_DATA_PATH\\)";
  const cases: [string, string, string][] = [
    ["a missing file", `${dir}/agency-1.csv`, `no such file, ${expected}$`],
    // What Docker leaves when it bind-mounts a file that does not exist.
    ["a directory", dir, `it is a directory, ${expected}$`],
    // A fifo would make open() wait for a writer: it is refused before it is opened.
    ["a fifo", `${dir}/fifo`, `not a regular file \\(a fifo or socket\\), ${expected}$`],
  ];
  const mkfifo = await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
  assert.equal(mkfifo.code, 0, "mkfifo");
  try {
    for (const [name, path, problem] of cases) {
      await t.step(name, async () => {
        const pattern = new RegExp(`^Cannot read bets from ${path}: ${problem}`);
        await assert.rejects(openBetsFile(path), (error: unknown) => {
          assert.ok(error instanceof BetsFileError);
          assert.match(error.message, pattern);
          return true;
        });
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openBetsFile() names a file the program may not read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "csv_batches_denied_" });
  try {
    const path = `${dir}/agency-1.csv`;
    await Deno.writeTextFile(path, "Ana,Lorca,1,1999-03-17,1\n");
    // Tests run as root, who reads any file whatever its mode: a program started without
    // read permission for the file meets the same refusal.
    const script = `${dir}/open.ts`;
    await Deno.writeTextFile(
      script,
      `import { openBetsFile } from "${new URL("./csv_batches.ts", import.meta.url)}";\n` +
        `await openBetsFile(${JSON.stringify(path)}).catch((e) => console.log(e.message));\n`,
    );
    const { stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--no-prompt", script],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(
      new TextDecoder().decode(stdout).trim(),
      `Cannot read bets from ${path}: permission denied, expected this agency's CSV file of ` +
        "bets (data.path or CLI_DATA_PATH) that this program may read",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

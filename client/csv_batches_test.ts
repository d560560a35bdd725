import assert from "node:assert/strict";
import { parse as parseCsv } from "csv-parse/sync";
import { unzipSync } from "fflate";
import type { BetFields } from "../shared/bet.ts";
import {
  decodeMessage,
  encodeMessage,
  MAX_FRAME_SIZE,
  MessageType,
} from "../shared/protocol/mod.ts";
import { BetsFileError, csvBatchChunks } from "./csv_batches.ts";

const COURSE_ZIP = new URL("../../shared/data/dataset.zip", import.meta.url).pathname;
const HAS_COURSE_ZIP = (() => {
  try {
    return Deno.statSync(COURSE_ZIP).isFile;
  } catch {
    return false;
  }
})();

/** The reference: csv-parse records, encoded by the codec in batches. */
function referenceFrames(text: string, agency: number, maxAmount: number): Uint8Array[] {
  const rows: string[][] = parseCsv(text, { skip_empty_lines: true });
  const utf8 = new TextEncoder();
  const frames: Uint8Array[] = [];
  let bets: BetFields[] = [];
  let size = 4 + 8; // header + agency, seq, count
  const flush = () => {
    if (bets.length === 0) return;
    frames.push(encodeMessage({ type: MessageType.BATCH, agency, seq: frames.length, bets }));
    bets = [];
    size = 4 + 8;
  };
  for (const [firstName, lastName, document, birthdate, number] of rows) {
    const bet = {
      firstName: firstName!,
      lastName: lastName!,
      document: document!,
      birthdate: birthdate!,
      number: Number(number),
    };
    const betSize = 4 + 2 +
      [bet.firstName, bet.lastName, bet.document, bet.birthdate].reduce(
        (n, f) => n + utf8.encode(f).length,
        0,
      );
    if (bets.length === maxAmount || size + betSize > MAX_FRAME_SIZE) flush();
    bets.push(bet);
    size += betSize;
  }
  flush();
  return frames;
}

interface Frame {
  readonly seq: number;
  readonly count: number;
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
    const frames: Frame[] = [];
    for await (const chunk of csvBatchChunks(path, agency, { maxAmount, framesPerChunk })) {
      assert.ok(chunk.batches.length <= framesPerChunk);
      assert.equal(chunk.batches.at(-1)!.end, chunk.bytes.length, "frames are back to back");
      for (const b of chunk.batches) {
        frames.push({ seq: b.seq, count: b.count, frame: chunk.bytes.slice(b.start, b.end) });
      }
    }
    return frames;
  } finally {
    await Deno.remove(path);
  }
}

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quote(field: string): string {
  return /[",]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field;
}

Deno.test("csvBatchChunks() gives the codec's exact bytes, batch for batch", async (t) => {
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
          assert.deepEqual(f.frame, expected[i], `frame ${i}`);
          const decoded = decodeMessage(f.frame[1]!, f.frame.subarray(4));
          assert.equal(decoded.type === MessageType.BATCH && decoded.bets.length, f.count);
          assert.ok(f.count <= maxAmount);
        });
      },
    );
  }
  await t.step("no trailing newline, blank lines skipped", async () => {
    const text = `${lines[0]}\r\n\r\n${lines[1]}`;
    const frames = await framesOf(text, 1, 100);
    assert.deepEqual(frames.map((f) => f.frame), referenceFrames(text, 1, 100));
  });
});

Deno.test({
  name: "csvBatchChunks() packs the course's dataset exactly as the codec would",
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
    }
  },
});

Deno.test("csvBatchChunks() names the file and line of a bad row", async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    [
      "four fields",
      "a,b,1,1990-01-01,5\r\na,b,1,1990-01-01\r\n",
      /line 2: expected 5 fields, found 4/,
    ],
    ["six fields", "a,b,1,1990-01-01,5,6\n", /line 1: expected 5 fields, found more/],
    ["non-numeric number", "a,b,1,1990-01-01,12a\n", /line 1: number "12a" is not 0-9999/],
    ["number too long", "a,b,1,1990-01-01,12345\n", /number "12345" is not 0-9999/],
    ["empty number", "a,b,1,1990-01-01,\n", /number "" is not 0-9999/],
    ["field over 255 bytes", `${"x".repeat(256)},b,1,1990-01-01,1\n`, /exceeds 255 bytes/],
    ["open quote", '"a,b,1,1990-01-01,1\n', /unbalanced quotes/],
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
  await t.step("a missing file", async () => {
    await assert.rejects(
      () =>
        Array.fromAsync(
          csvBatchChunks("/nonexistent/agency-1.csv", 1, { maxAmount: 10, framesPerChunk: 1 }),
        ),
      Deno.errors.NotFound,
    );
  });
});

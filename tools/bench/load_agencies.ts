/**
 * The many-agencies load: one process that plays `agencies` agencies at once against a
 * server, each sending `bets` generated bets in batches of 100 (pipelined), its DONE, then
 * asking for its winners until the draw answers. Prints one JSON line
 * (`{"ok":…,"ms":…,"winners":…}`) and exits 0 when every agency got every ack and its own
 * winners, 1 otherwise or past `limitMs`.
 *
 * `deno run --allow-net=127.0.0.1 tools/bench/load_agencies.ts <port> <agencies> <bets> <limitMs>`
 *
 * @module
 */
import { FramedConnection } from "../../shared/net/framed_conn.ts";
import { BATCH_HEADER_SIZE, encodeBatchHeader, MessageType } from "../../shared/protocol/mod.ts";

const BATCH = 100;

/** Bet `i` of every agency: one in a hundred plays the winning number. */
function betLine(i: number): string {
  const number = i % 100 === 0 ? 7574 : 1000 + (i % 5000);
  return `Ana,Paz,${10_000_000 + i},1990-01-0${1 + (i % 9)},${number}\n`;
}

/** Each agency's winners: those of {@linkcode betLine}. */
export function winnersPerAgency(bets: number): number {
  return bets === 0 ? 0 : Math.floor((bets - 1) / 100) + 1;
}

/** The batches' lines, the same for every agency (the frame header tells them apart). */
function batchLines(bets: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let start = 0; start < bets; start += BATCH) {
    const count = Math.min(BATCH, bets - start);
    const text = Array.from({ length: count }, (_, k) => betLine(start + k)).join("");
    out.push(new TextEncoder().encode(text));
  }
  return out;
}

/** Plays one agency to its winners; returns how many it was told. */
async function playAgency(port: number, agency: number, batches: Uint8Array[]): Promise<number> {
  const framed = new FramedConnection(await Deno.connect({ hostname: "127.0.0.1", port }));
  try {
    await framed.send({ type: MessageType.HELLO, agency, secret: "" });
    const welcome = await framed.read();
    if (welcome?.type !== MessageType.WELCOME) throw new Error(`agency ${agency}: no WELCOME`);
    batches.forEach((lines, seq) => {
      const frame = new Uint8Array(BATCH_HEADER_SIZE + lines.length);
      frame.set(lines, BATCH_HEADER_SIZE);
      const count = lines.reduce((n, byte) => n + (byte === 0x0a ? 1 : 0), 0);
      encodeBatchHeader(frame, 0, { agency, seq, count }, lines.length);
      framed.send(frame).catch(() => {});
    });
    for (let acked = 0; acked < batches.length; acked++) {
      const ack = await framed.read();
      if (ack?.type !== MessageType.BATCH_ACK || ack.status !== 0) {
        throw new Error(`agency ${agency}: batch ${acked} not acknowledged`);
      }
    }
    await framed.send({ type: MessageType.DONE, agency, batches: batches.length });
    if ((await framed.read())?.type !== MessageType.DONE_ACK) {
      throw new Error(`agency ${agency}: no DONE_ACK`);
    }
    for (;;) {
      await framed.send({ type: MessageType.WINNERS_QUERY, agency });
      let reply = await framed.read();
      if (reply?.type === MessageType.NOT_READY) continue;
      let documents = 0;
      while (reply?.type === MessageType.WINNERS) {
        documents += reply.documents.length;
        if (reply.last) return documents;
        reply = await framed.read();
      }
      throw new Error(`agency ${agency}: no WINNERS`);
    }
  } finally {
    framed.close();
  }
}

if (import.meta.main) {
  const [port, agencies, bets, limitMs] = Deno.args.map(Number) as [number, number, number, number];
  const batches = batchLines(bets);
  const started = performance.now();
  const timer = setTimeout(() => {
    console.log(JSON.stringify({ ok: false, error: `not done within ${limitMs} ms` }));
    Deno.exit(1);
  }, limitMs);
  const results = await Promise.allSettled(
    Array.from({ length: agencies }, (_, i) => playAgency(port, i + 1, batches)),
  );
  clearTimeout(timer);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  const wrong = results.some((r) => r.status === "fulfilled" && r.value !== winnersPerAgency(bets));
  const winners = results.reduce((n, r) => n + (r.status === "fulfilled" ? r.value : 0), 0);
  const ms = Math.round(performance.now() - started);
  const error = failed ? String(failed.reason) : wrong ? "an agency got other winners" : undefined;
  console.log(
    JSON.stringify({ ok: error === undefined, ms, winners, ...(error ? { error } : {}) }),
  );
  Deno.exit(error === undefined ? 0 : 1);
}

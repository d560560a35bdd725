import assert from "node:assert/strict";
import { captureLogger } from "../testing/log_capture.ts";
import {
  endsMidCharacter,
  LINGER_MS,
  MAX_ECHO_MESSAGE,
  MESSAGE_PAUSE_MS,
  serveEcho,
  stripTrailingWhitespace,
} from "./echo.ts";

/** Long enough that a test passing never relies on it: a reply after it would be a bug. */
const IDLE_MS = 30_000;
/** How long a test client waits for the server to close: far under IDLE_MS, far over a pause. */
const CLIENT_LIMIT_MS = 5000;

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Accepts one connection on a loopback listener and serves it as `server.ts` does: the first
 * read is the sniffed `initial`, the connection closed once `serveEcho` is done.
 */
function echoOnce(options: { idleTimeoutMs?: number; pauseMs?: number } = {}) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { log, lines } = captureLogger();
  const served = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      const buf = new Uint8Array(8192);
      const n = await conn.read(buf);
      if (n === null) return;
      await serveEcho(conn, {
        ip: "127.0.0.1",
        log,
        initial: buf.slice(0, n),
        idleTimeoutMs: options.idleTimeoutMs ?? IDLE_MS,
        ...(options.pauseMs === undefined ? {} : { pauseMs: options.pauseMs }),
      });
    } finally {
      try {
        conn.close();
      } catch {
        // serveEcho's linger closed it.
      }
    }
  })();
  return { port: listener.addr.port, lines, served };
}

/** Reads until the server closes (EOF or reset), failing after {@linkcode CLIENT_LIMIT_MS}. */
async function readToClose(conn: Deno.Conn): Promise<string> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(1024);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, CLIENT_LIMIT_MS);
  try {
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
  assert.ok(!timedOut, `the server did not close within ${CLIENT_LIMIT_MS} ms`);
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
}

/** Sends `text` (in one write), then reads the reply up to the server's close. */
async function exchange(
  port: number,
  text: string | Uint8Array,
  { halfClose = false } = {},
): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(typeof text === "string" ? encode(text) : text);
  if (halfClose) await conn.closeWrite();
  return await readToClose(conn);
}

function messages(lines: ReturnType<typeof captureLogger>["lines"]) {
  return lines.map((l) => [l.action, l.result, l.fields.msg ?? l.fields.error ?? l.fields.detail]);
}

Deno.test("serveEcho() answers a line at its line break, then closes", async () => {
  // No pause can end the message here: only the line break does.
  const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
  assert.equal(await exchange(port, "hola\n"), "hola\n");
  await served;
  assert.deepEqual(messages(lines), [["receive_message", "success", "hola"]]);
  assert.equal(lines[0]!.fields.ip, "127.0.0.1");
});

Deno.test("serveEcho() answers a message without line break after a pause", async () => {
  const { port, lines, served } = echoOnce();
  // The client keeps its sending side open, as netcat does after its input ends.
  assert.equal(await exchange(port, "msg"), "msg\n");
  await served;
  assert.deepEqual(messages(lines), [["receive_message", "success", "msg"]]);
});

Deno.test("serveEcho() answers a message without line break at the peer's half-close", async () => {
  const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
  assert.equal(await exchange(port, "test", { halfClose: true }), "test\n");
  await served;
  assert.deepEqual(messages(lines), [["receive_message", "success", "test"]]);
});

Deno.test("serveEcho() strips trailing whitespace, CR included, and adds one line break", async (t) => {
  const cases: [string, string, string][] = [
    ["hola\r\n", "hola\n", "hola"],
    ["hola \t\r\n", "hola\n", "hola"],
    ["  dos  palabras  \n", "  dos  palabras\n", "  dos  palabras"],
    ["[CLIENT 1] Message N°1\n", "[CLIENT 1] Message N°1\n", "[CLIENT 1] Message N°1"],
  ];
  for (const [sent, reply, msg] of cases) {
    await t.step(JSON.stringify(sent), async () => {
      const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
      assert.equal(await exchange(port, sent), reply);
      await served;
      assert.deepEqual(messages(lines), [["receive_message", "success", msg]]);
    });
  }
});

Deno.test("serveEcho() answers only the first of several lines in one write, then closes", async () => {
  const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
  assert.equal(await exchange(port, "uno\ndos\ntres\n"), "uno\n");
  await served;
  assert.deepEqual(messages(lines), [["receive_message", "success", "uno"]]);
});

Deno.test("serveEcho() answers an empty line with a line break", async () => {
  const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
  assert.equal(await exchange(port, "\r\n"), "\n");
  await served;
  assert.deepEqual(messages(lines), [["receive_message", "success", ""]]);
});

Deno.test("serveEcho() waits for the rest of a character cut between two writes", async () => {
  const pauseMs = 100;
  const { port, lines, served } = echoOnce({ pauseMs });
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    // "N" and the first byte of "°", then the second byte after four pauses.
    await conn.write(new Uint8Array([0x4e, 0xc2]));
    await delay(pauseMs * 4);
    await conn.write(new Uint8Array([0xb0]));
    assert.equal(await readToClose(conn), "N°\n");
  }
  await served;
  assert.deepEqual(messages(lines), [["receive_message", "success", "N°"]]);
});

Deno.test("serveEcho() refuses a message over the maximum and one not UTF-8, unanswered", async (t) => {
  await t.step("too long", async () => {
    const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
    assert.equal(await exchange(port, "x".repeat(MAX_ECHO_MESSAGE + 1)), "");
    await served;
    assert.deepEqual(messages(lines), [
      ["receive_message", "fail", `message longer than ${MAX_ECHO_MESSAGE} bytes`],
    ]);
  });
  await t.step("the longest accepted", async () => {
    const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
    const longest = "y".repeat(MAX_ECHO_MESSAGE);
    assert.equal(await exchange(port, `${longest}\n`), `${longest}\n`);
    await served;
    assert.deepEqual(lines.map((l) => l.result), ["success"]);
  });
  await t.step("not UTF-8", async () => {
    const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
    assert.equal(await exchange(port, new Uint8Array([0x68, 0xff, 0x0a])), "");
    await served;
    assert.deepEqual(messages(lines), [["receive_message", "fail", "the message is not UTF-8"]]);
  });
});

Deno.test("serveEcho() drops a message trickled in faster than the pause at the idle timeout", async () => {
  const idleTimeoutMs = 500;
  const { port, lines, served } = echoOnce({ idleTimeoutMs, pauseMs: 60_000 });
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const closed = readToClose(conn);
  let sent = 0;
  // Bounded: the server is meant to close after idleTimeoutMs, i.e. about 10 bytes.
  for (; sent < 200; sent++) {
    const ok = await conn.write(encode("x")).then(() => true, () => false);
    if (!ok) break;
    await delay(50);
    if (lines.length > 0) break;
  }
  assert.equal(await closed, "");
  await served;
  assert.deepEqual(messages(lines), [
    ["idle_timeout", "fail", `message not whole within ${idleTimeoutMs} ms`],
  ]);
  assert.ok(sent < 200, "the server closed the connection");
});

Deno.test("serveEcho() takes a peer that leaves without reading its answer as no failure", async () => {
  const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
  {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encode("hola\n"));
    conn.close();
  }
  await served;
  assert.deepEqual(messages(lines), [["receive_message", "success", "hola"]]);
});

Deno.test("serveEcho() drops what the peer sends after the answer and closes", async () => {
  const { port, lines, served } = echoOnce({ pauseMs: 60_000 });
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encode("uno\n"));
  const buf = new Uint8Array(16);
  const n = await conn.read(buf);
  assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "uno\n");
  // The server's side is closed for sending; what follows is read and dropped, and the
  // server closes once the client has.
  await conn.write(encode("dos\n"));
  await conn.closeWrite();
  assert.equal(await readToClose(conn), "");
  await served;
  assert.deepEqual(messages(lines), [["receive_message", "success", "uno"]]);
});

Deno.test("serveEcho() closes a peer that stays after its answer within the linger time", async () => {
  const { port, served } = echoOnce({ pauseMs: 60_000 });
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encode("hola\n"));
  const buf = new Uint8Array(16);
  assert.equal(await conn.read(buf), 5);
  assert.equal(await conn.read(buf), null, "EOF right after the answer");
  // The client neither closes nor sends: the server closes all the same.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("still open"), LINGER_MS * 3);
  });
  try {
    assert.equal(await Promise.race([served.then(() => "closed"), limit]), "closed");
  } finally {
    clearTimeout(timer);
  }
});

Deno.test("MESSAGE_PAUSE_MS stays well under netcat's one-second -w", () => {
  assert.ok(MESSAGE_PAUSE_MS * 3 <= 1000);
});

Deno.test("stripTrailingWhitespace() strips what Python's bytes.rstrip() strips", () => {
  const strip = (text: string) => new TextDecoder().decode(stripTrailingWhitespace(encode(text)));
  assert.equal(strip("a \t\n\v\f\r"), "a");
  assert.equal(strip(" a b "), " a b");
  assert.equal(strip("\r\n"), "");
  assert.equal(strip("a\u00a0"), "a\u00a0");
});

Deno.test("endsMidCharacter() tells a cut UTF-8 character from a whole one", () => {
  const bytes = (...b: number[]) => new Uint8Array(b);
  assert.equal(endsMidCharacter(bytes()), false);
  assert.equal(endsMidCharacter(encode("N°")), false);
  assert.equal(endsMidCharacter(bytes(0x4e, 0xc2)), true);
  assert.equal(endsMidCharacter(encode("€").subarray(0, 2)), true);
  assert.equal(endsMidCharacter(encode("𝄞").subarray(0, 3)), true);
  assert.equal(endsMidCharacter(encode("𝄞")), false);
  // Stray continuation bytes are no character to wait for (the decoder refuses them).
  assert.equal(endsMidCharacter(bytes(0x80, 0x80, 0x80, 0x80)), false);
});

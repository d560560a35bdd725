import assert from "node:assert/strict";
import { ErrorCode } from "../../shared/errors.ts";
import type { FramedConnection } from "../../shared/net/framed_conn.ts";
import { type Message, MessageType } from "../../shared/protocol/mod.ts";
import { parseLog, startClient, startServer } from "../lottery/_harness.ts";
import {
  account,
  agencyFiles,
  connectRaw,
  expectedRows,
  expectedWinners,
  GOOD_BET,
  helloRaw,
  reportAccounted,
} from "./_faults.ts";

const SECRETS: Readonly<Record<number, string>> = {
  1: "alpha-7f3e9c1d",
  2: "bravo-0a4b8e62",
  3: "charlie-5d21f7aa",
};

/** Reads the next message, expecting an ERROR with `code`, then a close. */
async function expectRefusal(conn: FramedConnection, code: ErrorCode): Promise<string> {
  const reply: Message | null = await conn.read();
  assert.equal(reply?.type, MessageType.ERROR, `an error frame, got ${JSON.stringify(reply)}`);
  assert.equal(reply?.type === MessageType.ERROR && reply.code, code);
  assert.equal(await conn.read().catch(() => null), null, "then the connection is closed");
  return reply?.type === MessageType.ERROR ? reply.message : "";
}

Deno.test("server - with secrets, agencies prove who they are and act only for themselves", async (t) => {
  const data = await Deno.makeTempDir({ prefix: "tp0-isolation-" });
  try {
    const secretsPath = `${data}/secrets.ini`;
    await Deno.writeTextFile(
      secretsPath,
      Object.entries(SECRETS).map(([id, secret]) => `${id} = ${secret}\n`).join(""),
    );
    const paths = await agencyFiles(data, { agencies: 3, bets: 1500, seed: 51, winners: 0.01 });
    await using server = await startServer({
      agencies: 3,
      env: { SERVER_SECRETS_PATH: secretsPath },
    });
    let refusals = 0;

    await t.step("a wrong, missing or borrowed secret gets UNAUTHORIZED and a close", async () => {
      for (
        const secret of ["wrong", "", SECRETS[2]!, SECRETS[1]!.toUpperCase(), `${SECRETS[1]} `]
      ) {
        using conn = await connectRaw(server.port);
        await conn.send({ type: MessageType.HELLO, agency: 1, secret });
        const message = await expectRefusal(conn, ErrorCode.UNAUTHORIZED);
        assert.match(message, /agency 1: wrong secret/);
        refusals++;
      }
      const logged = parseLog(server.stdout()).filter((l) =>
        l.action === "receive_message" && l.result === "fail" &&
        l.fields.get("error") === "UNAUTHORIZED"
      );
      assert.equal(logged.length, 5, "each refusal is logged with result: fail");
    });

    await t.step("an agency cannot send bets, finish or read winners as another", async () => {
      const attempts: Message[] = [
        { type: MessageType.BATCH, agency: 2, seq: 0, bets: [GOOD_BET] },
        { type: MessageType.DONE, agency: 2, batches: 0 },
        { type: MessageType.WINNERS_QUERY, agency: 2 },
      ];
      for (const message of attempts) {
        const { conn } = await helloRaw(server.port, 1, SECRETS[1]!);
        try {
          await conn.send(message);
          const text = await expectRefusal(conn, ErrorCode.INVALID_AGENCY);
          assert.match(text, /Agency 1 cannot act for agency 2/);
          refusals++;
        } finally {
          conn.close();
        }
      }
      const text = await Deno.readTextFile(`${server.dir}/bets.csv`).catch(() => "");
      assert.equal(text, "", "nothing was stored");
    });

    await t.step("bin/client with a wrong CLI_SECRET fails with UNAUTHORIZED", async () => {
      const client = await startClient(3, server.port, {
        CLI_DATA_PATH: paths[2]!,
        CLI_SECRET: SECRETS[1]!,
        CLI_CONNECT_ATTEMPTS: "1",
      });
      assert.notEqual(await client.status, 0);
      assert.match(client.stdout(), /action: agencia \| result: fail \|.*UNAUTHORIZED/);
      refusals++;
    });

    await t.step(
      "agencies with their secrets run the lottery and get only their winners",
      async () => {
        const clients = await Promise.all(
          paths.map((path, i) =>
            startClient(i + 1, server.port, { CLI_DATA_PATH: path, CLI_SECRET: SECRETS[i + 1]! })
          ),
        );
        const codes = await Promise.all(clients.map((c) => c.status));
        codes.forEach((code, i) => assert.equal(code, 0, clients[i]!.stdout()));
        const winners = await expectedWinners(paths);
        clients.forEach((client, i) => {
          const line = parseLog(client.stdout()).find((l) => l.action === "ganadores");
          assert.equal(line?.fields.get("dnis"), winners.get(i + 1)!.join(" "));
          for (const secret of Object.values(SECRETS)) {
            assert.ok(!client.stdout().includes(secret), "no secret in the client's log");
          }
        });
      },
    );

    const { code } = await server.stop("SIGTERM");
    assert.equal(code, 0);
    for (const secret of Object.values(SECRETS)) {
      assert.ok(!server.stdout().includes(secret), "no secret in the server's log");
    }
    const result = await account(`${server.dir}/bets.csv`, await expectedRows(paths));
    assert.equal(result.lost, 0);
    assert.equal(result.duplicated, 0);
    await reportAccounted("bad secrets and cross-agency requests", refusals, result);
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("server - a secrets file that omits an agency locks that agency out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp0-secrets-" });
  try {
    await Deno.writeTextFile(`${dir}/secrets.ini`, `1 = ${SECRETS[1]}\n`);
    await using server = await startServer({
      agencies: 2,
      env: { SERVER_SECRETS_PATH: `${dir}/secrets.ini` },
    });
    for (const secret of ["", "anything"]) {
      using conn = await connectRaw(server.port);
      await conn.send({ type: MessageType.HELLO, agency: 2, secret });
      await expectRefusal(conn, ErrorCode.UNAUTHORIZED);
    }
    (await helloRaw(server.port, 1, SECRETS[1]!)).conn.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The floor's receiver, `floor_receiver.ts N FILE` (`floor.ts` runs it with no config, net
 * to 127.0.0.1 and FILE only): accepts N connections on 127.0.0.1, appends what they send
 * to FILE (writes serialized), fsyncs once when all have closed, and exits. It prints
 * `ready <port>` once listening and `bytes <n>` at the end.
 *
 * @module
 */
import { writeAll } from "../../shared/bytes.ts";

if (import.meta.main) {
  const [senders, path] = Deno.args;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using file = await Deno.open(path!, { create: true, write: true, append: true });
  let total = 0;
  let chain = Promise.resolve();
  console.log(`ready ${listener.addr.port}`);
  const serve = async (conn: Deno.Conn): Promise<void> => {
    const buf = new Uint8Array(1 << 18);
    for (let got = await conn.read(buf); got !== null; got = await conn.read(buf)) {
      total += got;
      const bytes = buf.subarray(0, got);
      chain = chain.then(() => writeAll(file, bytes));
      await chain;
    }
    conn.close();
  };
  const tasks = [];
  for (let i = 0; i < Number(senders); i++) tasks.push(serve(await listener.accept()));
  listener.close();
  await Promise.all(tasks);
  await file.sync();
  console.log(`bytes ${total}`);
}

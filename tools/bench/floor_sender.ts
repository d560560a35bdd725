/**
 * The floor's sender, `floor_sender.ts PORT FILE` (`floor.ts` runs it with no config, net
 * to 127.0.0.1 and read of FILE only): streams one file into one connection and exits.
 *
 * @module
 */
import { writeAll } from "../../shared/bytes.ts";

if (import.meta.main) {
  const [port, path] = Deno.args;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
  using file = await Deno.open(path!);
  const buf = new Uint8Array(1 << 18);
  for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
    await writeAll(conn, buf.subarray(0, n));
  }
}

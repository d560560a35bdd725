import assert from "node:assert/strict";
import {
  APP_UID,
  appBuildArgv,
  busyboxRootfs,
  chooseBuildPath,
  DENO_VERSION,
  denoBaseRootfs,
  IMAGES,
  ONLINE_IMAGES,
  parseLdd,
  type RootfsEntry,
  writeRootfs,
} from "./images.ts";

const LDD_DENO = `	linux-vdso.so.1 (0x00007fb2b3269000)
	libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007fb2b3253000)
	libgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007fb2b3233000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fb2ad13e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007fb2b326b000)
`;

const INPUTS = {
  deno: "/host/deno",
  busybox: "/host/busybox",
  applets: ["sh", "nc", "timeout", "busybox", "[", "[["],
  libraries: ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"],
};

function byPath(entries: readonly RootfsEntry[]): Map<string, RootfsEntry> {
  return new Map(entries.map((entry) => [entry.path, entry]));
}

Deno.test("parseLdd() lists the libraries and the loader, without linux-vdso", () => {
  assert.deepEqual(parseLdd(LDD_DENO), [
    "/lib/x86_64-linux-gnu/libdl.so.2",
    "/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/ld-linux-x86-64.so.2",
  ]);
});

Deno.test("parseLdd() returns nothing for a static binary", async (t) => {
  for (const output of ["\tnot a dynamic executable\n", "\tstatically linked\n", ""]) {
    await t.step(JSON.stringify(output), () => assert.deepEqual(parseLdd(output), []));
  }
});

Deno.test("parseLdd() lists a library once", () => {
  assert.deepEqual(parseLdd(LDD_DENO + LDD_DENO).length, 4);
});

Deno.test("denoBaseRootfs() holds deno, the libraries, busybox applets and a deno user", () => {
  const entries = denoBaseRootfs(INPUTS);
  const map = byPath(entries);
  assert.deepEqual(map.get("/usr/local/bin/deno"), {
    kind: "file",
    path: "/usr/local/bin/deno",
    source: "/host/deno",
    mode: 0o755,
  });
  assert.equal(map.get("/lib64/ld-linux-x86-64.so.2")?.kind, "file");
  assert.equal(map.get("/lib/x86_64-linux-gnu/libc.so.6")?.kind, "file");
  assert.deepEqual(map.get("/bin/sh"), { kind: "symlink", path: "/bin/sh", target: "busybox" });
  assert.deepEqual(map.get("/bin/nc"), { kind: "symlink", path: "/bin/nc", target: "busybox" });
  assert.equal(map.get("/bin/busybox")?.kind, "file", "busybox is the file, not a link");
  const passwd = map.get("/etc/passwd");
  assert.ok(passwd?.kind === "text" && passwd.text.includes(`deno:x:${APP_UID}:${APP_UID}:`));
  assert.deepEqual(map.get("/tmp"), { kind: "dir", path: "/tmp", mode: 0o1777 });
  assert.ok(map.has("/etc/nsswitch.conf"), "getaddrinfo needs hosts: files dns");
});

Deno.test("denoBaseRootfs() lists every directory before what it holds", () => {
  const entries = denoBaseRootfs(INPUTS);
  const seen = new Set<string>([""]);
  for (const entry of entries) {
    const parent = entry.path.slice(0, entry.path.lastIndexOf("/"));
    assert.ok(seen.has(parent), `${parent} comes before ${entry.path}`);
    if (entry.kind === "dir") seen.add(entry.path);
  }
});

Deno.test("denoBaseRootfs() throws a TypeError without the deno binary", () => {
  const { deno: _, ...withoutDeno } = INPUTS;
  assert.throws(() => denoBaseRootfs(withoutDeno), TypeError);
});

Deno.test("busyboxRootfs() holds busybox and its applets but no deno", () => {
  const map = byPath(busyboxRootfs({ ...INPUTS, libraries: [] }));
  assert.ok(map.has("/bin/nc"));
  assert.ok(map.has("/bin/timeout"));
  assert.ok(!map.has("/usr/local/bin/deno"));
  assert.ok(!map.has("/lib64/ld-linux-x86-64.so.2"), "static busybox needs no libraries");
});

Deno.test("writeRootfs() writes files, texts, links and modes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "images_test_" });
  try {
    const source = `${dir}/source`;
    await Deno.writeTextFile(source, "binary");
    await Deno.mkdir(`${dir}/root`);
    await writeRootfs(`${dir}/root`, [
      { kind: "dir", path: "/bin", mode: 0o755 },
      { kind: "dir", path: "/tmp", mode: 0o1777 },
      { kind: "file", path: "/bin/busybox", source, mode: 0o755 },
      { kind: "symlink", path: "/bin/sh", target: "busybox" },
      { kind: "text", path: "/bin/note", text: "hi\n", mode: 0o644 },
    ]);
    assert.equal(await Deno.readTextFile(`${dir}/root/bin/sh`), "binary");
    assert.equal(await Deno.readLink(`${dir}/root/bin/sh`), "busybox");
    assert.equal((await Deno.stat(`${dir}/root/bin/busybox`)).mode! & 0o777, 0o755);
    assert.equal((await Deno.stat(`${dir}/root/tmp`)).mode! & 0o7777, 0o1777);
    assert.equal(await Deno.readTextFile(`${dir}/root/bin/note`), "hi\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("appBuildArgv() builds offline from the local base with no network", () => {
  const argv = appBuildArgv("server", "offline");
  assert.deepEqual(argv.slice(0, 6), [
    "docker",
    "build",
    "-f",
    "Dockerfile.server",
    "-t",
    IMAGES.server,
  ]);
  assert.ok(argv.join(" ").includes("--network none"));
  assert.ok(argv.includes(`BUILD_IMAGE=${IMAGES.denoBase}`));
  assert.ok(argv.includes(`RUN_IMAGE=${IMAGES.denoBase}`));
  assert.ok(argv.includes("APP_BUILD=source"));
  assert.equal(argv.at(-1), ".");
});

Deno.test("appBuildArgv() compiles online on the official images", () => {
  const argv = appBuildArgv("client", "online");
  assert.ok(argv.includes("Dockerfile.client"));
  assert.ok(!argv.includes("--network"));
  assert.ok(argv.includes(`BUILD_IMAGE=${ONLINE_IMAGES.build}`));
  assert.ok(argv.includes(`RUN_IMAGE=${ONLINE_IMAGES.run}`));
  assert.ok(argv.includes("APP_BUILD=compile"));
  assert.ok(ONLINE_IMAGES.build.endsWith(`:${DENO_VERSION}`), "the pinned Deno version");
});

Deno.test("chooseBuildPath() honours an explicit path without probing", async () => {
  const never = () => Promise.reject(new Error("must not probe"));
  assert.equal(await chooseBuildPath("offline", never), "offline");
  assert.equal(await chooseBuildPath("online", never), "online");
});

Deno.test("chooseBuildPath() picks online only when both online images are available", async (t) => {
  const cases: [string, (tag: string) => boolean, string][] = [
    ["registry unreachable", () => false, "offline"],
    ["only the build image", (tag) => tag === ONLINE_IMAGES.build, "offline"],
    ["both images", () => true, "online"],
  ];
  for (const [name, available, expected] of cases) {
    await t.step(name, async () => {
      assert.equal(
        await chooseBuildPath("auto", (tag) => Promise.resolve(available(tag))),
        expected,
      );
    });
  }
});

Deno.test("images CLI prints one error line and exits 1 on bad input", async (t) => {
  for (const args of [["--path", "cloud"], ["--bogus"], ["extra"]]) {
    await t.step(args.join(" "), async () => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("./images.ts", import.meta.url).pathname, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 1);
      assert.equal(stderr.trim().split("\n").length, 1, stderr);
      assert.match(stderr, /^images: /);
    });
  }
});

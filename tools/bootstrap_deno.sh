#!/bin/sh
# Prints the path of a Deno binary of the pinned version (.deno-version), installing it
# from the npm registry into the git-ignored .tools/deno when neither PATH nor that folder
# has it. Progress goes to stderr so callers can capture the path from stdout.
# POSIX sh, like the course's scripts that run it (dash is /bin/sh on Debian).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(tr -d '[:space:]' < "$root/.deno-version")
local_bin="$root/.tools/deno/node_modules/deno/deno"

version_of() { "$1" --version 2>/dev/null | sed -n 's/^deno \([0-9.]*\).*/\1/p'; }

if command -v deno >/dev/null 2>&1 && [ "$(version_of "$(command -v deno)")" = "$version" ]; then
  command -v deno
  exit 0
fi
if [ -x "$local_bin" ] && [ "$(version_of "$local_bin")" = "$version" ]; then
  echo "$local_bin"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "bootstrap: Deno $version is missing and npm is not installed to fetch it" >&2; exit 1; }
echo "bootstrap: installing Deno $version into .tools/deno (npm package deno@$version)" >&2
mkdir -p "$root/.tools/deno"
printf '{"name":"deno-bootstrap","private":true}\n' > "$root/.tools/deno/package.json"
(cd "$root/.tools/deno" && npm install --silent --no-audit --no-fund --no-package-lock "deno@$version" >&2)
# The npm package ships the binary in a platform package; its postinstall only links it.
if [ ! -x "$local_bin" ]; then
  found=$(find "$root/.tools/deno/node_modules/@deno" -maxdepth 2 -name deno -type f | head -n 1)
  [ -n "$found" ] || { echo "bootstrap: deno@$version installed no binary" >&2; exit 1; }
  ln -sf "$found" "$local_bin"
fi
[ "$(version_of "$local_bin")" = "$version" ] || { echo "bootstrap: $local_bin is not Deno $version" >&2; exit 1; }
echo "$local_bin"

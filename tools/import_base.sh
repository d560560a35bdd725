#!/usr/bin/env bash
# Makes a minimal base image from this machine's own files, so images build with no
# registry at all (tools/images.ts calls it):
#
#   tools/import_base.sh TAG [DENO]
#
# The root filesystem holds busybox (sh, nc, timeout… as links to it) and, given DENO,
# that binary as /usr/local/bin/deno; every library `ldd` names for them, at the path it
# names; a deno user (uid 1993, as in the official Deno image), /tmp, and the
# name-service config glibc reads to resolve compose service names. Then `docker import`.
set -euo pipefail
tag=$1
deno=${2:-}
busybox=$(command -v busybox || true)
if [ -z "$busybox" ]; then
  echo "Cannot build $tag: busybox is missing (apt-get install busybox-static)" >&2
  exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root" "$root.tar"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/usr/local/bin"
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
binaries=("$busybox")
if [ -n "$deno" ]; then
  cp "$deno" "$root/usr/local/bin/deno"
  binaries+=("$deno")
fi
for binary in "${binaries[@]}"; do
  # ldd fails for a static binary: it needs no library then.
  for lib in $(ldd "$binary" 2>/dev/null | grep -o '/[^ ]*' || true); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'deno:x:1993:1993:deno:/tmp:/bin/sh' \
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'deno:x:1993:' 'nogroup:x:65534:' >"$root/etc/group"
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
if [ -n "$deno" ]; then
  changes=(--change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'ENV DENO_DIR=/deno-dir'
    --change 'ENV DENO_NO_UPDATE_CHECK=1' --change 'ENV DENO_NO_PROMPT=1'
    --change 'CMD ["deno", "--version"]')
else
  changes=(--change 'ENV PATH=/bin' --change 'CMD ["sh"]')
fi
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$root.tar" .
docker import "${changes[@]}" "$root.tar" "$tag" >/dev/null

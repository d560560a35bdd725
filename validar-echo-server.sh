#!/bin/sh
# The course's name for `deno task validate-echo`: sends one line to the running server with
# netcat from a container on the compose network and prints exactly
#
#   action: test_echo_server | result: success      (exit 0)
#   action: test_echo_server | result: fail         (exit 1; the reason on stderr)
#
# POSIX sh (the course runs it as `sh validar-echo-server.sh`). Bootstraps the pinned Deno as
# make does (tools/bootstrap_deno.sh), then runs the task with the arguments given (see
# tools/validate_echo.ts).
set -u
fail() {
  echo "action: test_echo_server | result: fail"
  exit 1
}
root=$(cd "$(dirname "$0")" && pwd) || fail
deno=$("$root/tools/bootstrap_deno.sh") || fail
cd "$root" || fail
exec "$deno" task -q validate-echo "$@"

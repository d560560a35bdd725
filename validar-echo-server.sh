#!/usr/bin/env bash
# The course's name for `deno task validate-echo`: sends one line to the running server with
# netcat from a container on the compose network and prints exactly
#
#   action: test_echo_server | result: success      (exit 0)
#   action: test_echo_server | result: fail         (exit 1; the reason on stderr)
#
# Bootstraps the pinned Deno as make does (tools/bootstrap_deno.sh), then runs the task.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! deno=$("$root/tools/bootstrap_deno.sh"); then
  echo "action: test_echo_server | result: fail"
  exit 1
fi
cd "$root"
exec "$deno" task -q validate-echo "$@"

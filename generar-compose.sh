#!/bin/sh
# The course's name for `deno task gen-compose`: writes the compose file for N agencies.
#
#   ./generar-compose.sh docker-compose-dev.yaml 5 [--mode agency|bet|echo] [--secrets] [--keep-bets]
#
# POSIX sh (runs under sh, bash or as ./generar-compose.sh). Bootstraps the pinned Deno as
# make does (tools/bootstrap_deno.sh), then runs the task.
set -eu
if [ $# -lt 2 ]; then
  echo "usage: ./generar-compose.sh <output> <clients> [--mode agency|bet|echo] [--secrets] [--keep-bets]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")" && pwd)
deno=$("$root/tools/bootstrap_deno.sh")
# deno task runs in the project's root: the output is named from where the script was run.
case $1 in /*) output=$1 ;; *) output=$PWD/$1 ;; esac
shift
cd "$root"
exec "$deno" task -q gen-compose "$output" "$@"

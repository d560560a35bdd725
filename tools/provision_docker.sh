#!/usr/bin/env bash
# Makes a working Docker engine available on a fresh Debian/Ubuntu machine (CI), and does
# nothing on one that already has it. Idempotent and bounded in time:
#   1. apt-get install docker.io docker-compose busybox-static (and iproute2, iptables,
#      util-linux for the Swarm test's second engine; netcat-openbsd, netcat-traditional for
#      the fault suite's netcat test), only for what is missing (the docker CLI may be
#      preinstalled without an engine);
#   2. if `docker info` fails, start dockerd in the background (log: /var/log/dockerd.log), with
#      DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 (Swarm tasks use the local image instead of first
#      trying a registry); an engine already running is left as it is;
#   3. wait until `docker info` answers, at most PROVISION_TIMEOUT seconds (default 60);
#   4. unless `docker compose version` answers, install Compose v2 (the course's tests use it):
#      Debian trixie's docker-compose package (a Go binary needing only glibc >= 2.34), fetched
#      with a sources list of its own (the system's apt sources are untouched), unpacked with
#      dpkg-deb -x, its plugin copied to /usr/local/lib/docker/cli-plugins/. A failure here is
#      reported, not fatal: the tooling falls back to Compose v1 (docker-compose).
# Needs root (or passwordless sudo) only for the steps that have something to do.
# Usage: tools/provision_docker.sh        (exit 0 when the engine answers, 1 otherwise)
set -euo pipefail

timeout_s="${PROVISION_TIMEOUT:-60}"
log() { echo "provision_docker: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    log "needs root to run: $*"
    return 1
  fi
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

# 1. Packages: dockerd comes from docker.io; Compose v1 and busybox from their own packages.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
# Compose v1 too: the Docker suite keeps a smoke test on it (v2 comes in step 4).
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# The offline base images need a static busybox (sh, nc, healthcheck) from the host.
if ! { command -v busybox >/dev/null 2>&1 && ! ldd "$(command -v busybox)" >/dev/null 2>&1; }; then
  missing+=(busybox-static)
fi
# The Swarm test's second engine: a network namespace and a veth pair (ip), a partition
# (iptables), dockerd started inside the namespace in a session of its own (nsenter, unshare,
# setsid).
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
{ command -v nsenter && command -v unshare && command -v setsid; } >/dev/null 2>&1 ||
  missing+=(util-linux)
# The fault suite's course netcat test runs the netcats students' echo checks use (busybox's
# comes with busybox-static).
command -v nc.openbsd >/dev/null 2>&1 || missing+=(netcat-openbsd)
command -v nc.traditional >/dev/null 2>&1 || missing+=(netcat-traditional)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root timeout 600 apt-get update -qq
  as_root timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# 2. Engine: start dockerd unless something already answers (a service, or an earlier run).
# 4. Compose v2, from Debian trixie, in a scratch apt state of its own.
install_compose_v2() {
  docker compose version >/dev/null 2>&1 && return 0
  local dir plugins=/usr/local/lib/docker/cli-plugins
  dir=$(mktemp -d)
  mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/deb"
  echo 'deb http://deb.debian.org/debian trixie main' >"$dir/trixie.list"
  local apt=(apt-get -q -o "Dir::Etc::sourcelist=$dir/trixie.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache::Archives=$dir/archives"
    -o APT::Get::List-Cleanup=0)
  log "installing Compose v2 (Debian trixie's docker-compose) into $plugins"
  if (cd "$dir/deb" && timeout 300 "${apt[@]}" update >&2 &&
    timeout 300 "${apt[@]}" download docker-compose >&2) &&
    dpkg-deb -x "$dir"/deb/docker-compose_*.deb "$dir/root" &&
    as_root mkdir -p "$plugins" &&
    as_root install -m 755 "$dir/root/usr/libexec/docker/cli-plugins/docker-compose" "$plugins/" &&
    docker compose version >&2; then
    rm -rf "$dir"
    return 0
  fi
  rm -rf "$dir"
  log "cannot install Compose v2; the tooling uses Compose v1 (docker-compose)"
}

if engine_answers; then
  log "engine already answers: $(docker info --format '{{.ServerVersion}}' 2>/dev/null)"
  install_compose_v2
  exit 0
fi
if pgrep -x dockerd >/dev/null 2>&1; then
  log "dockerd is running but not answering yet; waiting"
else
  log "starting dockerd in the background (log: /var/log/dockerd.log)"
  # containerd is started by dockerd itself when it is not running as a service. With no
  # registry, a Swarm task would first try to pull its image: use the local one at once.
  as_root sh -c 'DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &'
fi

# 3. Wait, bounded.
deadline=$((SECONDS + timeout_s))
until engine_answers; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "the engine did not answer within ${timeout_s}s; last dockerd log lines:"
    tail -n 20 /var/log/dockerd.log >&2 2>/dev/null || true
    exit 1
  fi
  sleep 1
done
log "engine answers: $(docker info --format '{{.ServerVersion}}' 2>/dev/null)"
install_compose_v2

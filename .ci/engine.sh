#!/usr/bin/env bash
# A real container engine for the `engine` tests, started by hand (no systemd):
#   bash .ci/engine.sh up DIR     dockerd on the default socket, a registry on 127.0.0.1:5000,
#                                 docker-buildx, local base images (python, postgres, redis)
#   bash .ci/engine.sh down DIR   stops both daemons by their PID files; DIR keeps the images for next time
# No registry outside can be pulled from, so every base image is built from Debian packages:
# one debootstrap of bookworm minbase, imported, then one build per derived image.
# Needs root and the Debian packages docker.io, debootstrap, docker-registry (.ci/run installs them).
set -euo pipefail

cmd=${1:-}; dir=${2:-}
if [[ -z $cmd || -z $dir ]]; then
  echo "usage: $0 up|down DIR" >&2; exit 2
fi
mkdir -p "$dir"; dir=$(cd "$dir" && pwd -P)
here=$(cd "$(dirname "$0")" && pwd -P)
export DOCKER_HOST=unix:///var/run/docker.sock DOCKER_CONFIG="$dir/docker-config"
MIRROR=${REFARCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
REGISTRY=127.0.0.1:5000

log() { printf '[engine %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {  # stop the process in PID file $1 (ours), waiting up to 20 s
  local pidfile=$1 pid
  alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile"); kill -TERM "$pid"
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$pidfile"
}

start_dockerd() {
  if alive "$dir/dockerd.pid"; then log "dockerd already running (pid $(cat "$dir/dockerd.pid"))"; return; fi
  if [[ -S /var/run/docker.sock ]] && docker info >/dev/null 2>&1; then
    # Not ours (no PID file): use it, and `down` leaves it running.
    log "using the Docker engine already answering on /var/run/docker.sock (not started here, left running)"
    return
  fi
  mkdir -p "$dir/data" "$dir/exec"
  # Our own exec-root and pidfile: nothing of this engine lives outside DIR but the socket.
  dockerd -H unix:///var/run/docker.sock --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.daemon.pid" >"$dir/dockerd.log" 2>&1 &
  echo $! >"$dir/dockerd.pid"
  for _ in $(seq 300); do
    docker info >/dev/null 2>&1 && { log "dockerd ready (pid $(cat "$dir/dockerd.pid"))"; return; }
    alive "$dir/dockerd.pid" || { tail -20 "$dir/dockerd.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "dockerd did not answer within 30 s: see $dir/dockerd.log" >&2; exit 1
}

start_registry() {
  if alive "$dir/registry.pid"; then return; fi
  mkdir -p "$dir/registry"
  cat >"$dir/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $dir/registry}
  delete: {enabled: true}
http:
  addr: $REGISTRY
  secret: refarch-engine-local-only
YAML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/registry.pid"
  for _ in $(seq 100); do
    curl -fsS --noproxy '*' "http://$REGISTRY/v2/" >/dev/null 2>&1 && { log "registry on $REGISTRY"; return; }
    alive "$dir/registry.pid" || { tail -20 "$dir/registry.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "registry did not answer within 10 s: see $dir/registry.log" >&2; exit 1
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

debian_base() {
  have_image local/debian:bookworm && return
  local root="$dir/rootfs"
  rm -rf "$root"
  log "debootstrap bookworm minbase"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$dir/debootstrap.log" 2>&1 \
    || { tail -20 "$dir/debootstrap.log" >&2; exit 1; }
  # The host's HTTPS goes through a proxy with its own CA: derived images trust what the host trusts.
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - local/debian:bookworm >/dev/null
  rm -rf "$root"
  log "imported local/debian:bookworm"
}

buildx() {
  local plugin="$DOCKER_CONFIG/cli-plugins/docker-buildx"
  [[ -x $plugin ]] && return
  mkdir -p "$DOCKER_CONFIG/cli-plugins" "$dir/buildx"
  log "docker-buildx from Debian trixie"
  # bookworm has no docker-buildx; the trixie package's static binary runs on the host.
  docker run --rm -v "$dir/buildx:/out" local/debian:bookworm sh -ec '
    echo "deb '"$MIRROR"' trixie main" >/etc/apt/sources.list.d/trixie.list
    apt-get update -qq && cd /tmp && apt-get download -qq docker-buildx && dpkg-deb -x docker-buildx_*.deb x
    cp x/usr/libexec/docker/cli-plugins/docker-buildx /out/' >"$dir/buildx.log" 2>&1 \
    || { tail -20 "$dir/buildx.log" >&2; exit 1; }
  install -m 0755 "$dir/buildx/docker-buildx" "$plugin"
  docker buildx version >&2
}

derived() {  # derived NAME TAG: .ci/images/NAME/Dockerfile FROM local/debian:bookworm
  # Rebuilt only when its directory changed: the label holds a hash of the files.
  local hash
  hash=$(cd "$here/images/$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
  [[ $(docker image inspect -f '{{index .Config.Labels "refarch.ci.hash"}}' "$2" 2>/dev/null) == "$hash" ]] && return
  log "building $2"
  docker buildx build --load -q --label "refarch.ci.hash=$hash" -t "$2" "$here/images/$1" \
    >"$dir/build-$1.log" 2>&1 || { tail -30 "$dir/build-$1.log" >&2; exit 1; }
}

case $cmd in
  up)
    start=$SECONDS
    start_dockerd
    start_registry
    debian_base
    buildx
    # Independent builds from the same base: run them side by side (mostly downloads).
    derived python local/python:3.11-bookworm & p1=$!
    derived postgres local/postgres:15 & p2=$!
    derived redis local/redis:7 & p3=$!
    wait $p1 && wait $p2 && wait $p3
    cat >"$dir/env" <<ENV
export DOCKER_HOST=$DOCKER_HOST
export DOCKER_CONFIG=$DOCKER_CONFIG
export REFARCH_ENGINE_DIR=$dir
export REFARCH_TEST_REGISTRY=$REGISTRY
ENV
    log "engine up in $((SECONDS - start)) s; for a shell: source $dir/env"
    ;;
  down)
    # Containers the tests left behind die with the daemon; the data-root stays for the next `up`.
    stop "$dir/registry.pid"
    stop "$dir/dockerd.pid"
    log "engine down"
    ;;
  *) echo "usage: $0 up|down DIR" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A private Docker engine for nbdeploy's Docker tests and for trying the docker target.
#
#   bash scripts/docker-env.sh up       install docker.io + debootstrap if missing, start a
#                                       private dockerd (no bridge, no iptables), make sure the
#                                       base image local/python:3.11-slim exists (cached as a
#                                       gzip'd `docker save` under /var/tmp), print the export line
#   bash scripts/docker-env.sh down     stop that dockerd by the PID in its pidfile
#   bash scripts/docker-env.sh env      print `export DOCKER_HOST=...`
#   bash scripts/docker-env.sh status   say whether the private engine answers
#
# Why private: it never touches /var/run/docker.sock or a system daemon; it has its own
# data-root, exec-root, pidfile and socket. Why no bridge: containers run with
# --network host and bind 127.0.0.1, and images build with --network none from wheels
# made on the host, so nothing leaves loopback and nothing is ever pulled.
#
# Usage from make:   eval "$(bash scripts/docker-env.sh up)" && pytest ...; bash scripts/docker-env.sh down
# Must run as root (dockerd, apt-get, debootstrap). Every path can be overridden:
set -euo pipefail

NAME=${NBDEPLOY_DOCKER_NAME:-nbdeploy-docker}
DATA_ROOT=${NBDEPLOY_DOCKER_DATA_ROOT:-/var/tmp/$NAME}
EXEC_ROOT=${NBDEPLOY_DOCKER_EXEC_ROOT:-/var/run/$NAME}
PIDFILE=${NBDEPLOY_DOCKER_PIDFILE:-/var/run/$NAME.pid}
SOCKET=${NBDEPLOY_DOCKER_SOCKET:-/var/run/$NAME.sock}
LOG=${NBDEPLOY_DOCKER_LOG:-/var/tmp/$NAME.log}
CACHE_DIR=${NBDEPLOY_DOCKER_CACHE:-/var/tmp/nbdeploy-cache}
BASE_IMAGE=${NBDEPLOY_BASE_IMAGE:-local/python:3.11-slim}
BASE_CACHE=$CACHE_DIR/$(echo "$BASE_IMAGE" | tr '/:' '__').tar.gz
SUITE=${NBDEPLOY_DEBIAN_SUITE:-bookworm}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
# The Debian CLI (20.10) matches the daemon; the image's /usr/local/bin CLI works too.
DOCKER_CLI=${DOCKER_CLI:-/usr/bin/docker}

export DOCKER_HOST="unix://$SOCKET"

log() { echo "docker-env: $*" >&2; }
die() { log "error: $*"; exit 1; }

cli() {
    local bin=$DOCKER_CLI
    [ -x "$bin" ] || bin=$(command -v docker || true)
    [ -n "$bin" ] || die "no docker CLI found (install docker.io)"
    "$bin" "$@"
}

engine_answers() { cli version >/dev/null 2>&1; }

pid_alive() {
    [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

ensure_packages() {
    local missing=()
    [ -x "$DOCKERD" ] || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "need root to install ${missing[*]} (or install them yourself)"
    log "installing ${missing[*]} (apt-get)"
    # policy-rc.d (exit 101) keeps apt from starting the system daemon with its bridge.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
}

start_daemon() {
    if pid_alive && engine_answers; then
        log "private engine already running (pid $(cat "$PIDFILE"))"
        return 0
    fi
    if pid_alive; then
        die "dockerd pid $(cat "$PIDFILE") is alive but $SOCKET does not answer; see $LOG or run '$0 down'"
    fi
    [ "$(id -u)" = 0 ] || die "need root to start dockerd"
    rm -f "$PIDFILE"
    mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$(dirname "$LOG")"
    log "starting dockerd (socket $SOCKET, data $DATA_ROOT, log $LOG)"
    # setsid: the daemon outlives this shell and is not in make's process group.
    setsid "$DOCKERD" \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
        --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
        --pidfile "$PIDFILE" -H "unix://$SOCKET" \
        </dev/null >"$LOG" 2>&1 &
    local i
    for i in $(seq 1 300); do
        engine_answers && { log "engine ready (pid $(cat "$PIDFILE" 2>/dev/null))"; return 0; }
        sleep 0.1
    done
    tail -n 30 "$LOG" >&2 || true
    die "dockerd did not answer on $SOCKET within 30 s (log above)"
}

build_base_image() {
    local mirror rootfs
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    if [ -z "$mirror" ]; then
        mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$mirror" ] || die "cannot find this machine's Debian mirror in /etc/apt"
    rootfs=$(mktemp -d /var/tmp/nbdeploy-rootfs.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$rootfs'" EXIT
    log "building $BASE_IMAGE with debootstrap ($SUITE from $mirror); about 40 s"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        "$SUITE" "$rootfs" "$mirror" >&2
    ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
        "$rootfs"/var/log/*.log "$rootfs"/tmp/*
    find "$rootfs"/usr/lib/python3* -name __pycache__ -prune -exec rm -rf {} +
    tar -C "$rootfs" -c . | cli import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python3"]' - "$BASE_IMAGE" >&2
    mkdir -p "$CACHE_DIR"
    cli save "$BASE_IMAGE" | gzip -1 > "$BASE_CACHE.tmp"
    mv "$BASE_CACHE.tmp" "$BASE_CACHE"
    rm -rf "$rootfs"
    trap - EXIT
    log "cached $BASE_IMAGE in $BASE_CACHE"
}

ensure_base_image() {
    if cli image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    if [ -s "$BASE_CACHE" ]; then
        log "loading $BASE_IMAGE from $BASE_CACHE"
        if gunzip -c "$BASE_CACHE" | cli load >&2; then
            cli image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
        fi
        log "the cache $BASE_CACHE is unusable; rebuilding"
        rm -f "$BASE_CACHE"
    fi
    build_base_image
}

stop_daemon() {
    if [ ! -s "$PIDFILE" ]; then
        log "no pidfile $PIDFILE: private engine not running"
        return 0
    fi
    local pid i
    pid=$(cat "$PIDFILE")
    if ! kill -0 "$pid" 2>/dev/null; then
        log "dockerd pid $pid is gone; removing stale pidfile"
        rm -f "$PIDFILE"
        return 0
    fi
    # Containers first (by the engine itself), so none outlives the daemon.
    if engine_answers; then
        local ids
        ids=$(cli ps -q || true)
        [ -z "$ids" ] || cli rm -f $ids >/dev/null 2>&1 || true
    fi
    log "stopping dockerd pid $pid"
    kill "$pid"
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }
        sleep 0.1
    done
    log "dockerd pid $pid did not stop in 30 s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
}

case "${1:-}" in
    up)
        ensure_packages
        start_daemon
        ensure_base_image
        echo "export DOCKER_HOST=$DOCKER_HOST"
        ;;
    down)
        stop_daemon
        ;;
    env)
        echo "export DOCKER_HOST=$DOCKER_HOST"
        ;;
    status)
        if engine_answers; then
            log "private engine answers at $DOCKER_HOST (pid $(cat "$PIDFILE" 2>/dev/null || echo '?'))"
        else
            log "private engine not reachable at $DOCKER_HOST"
            exit 1
        fi
        ;;
    *)
        echo "usage: $0 up|down|env|status" >&2
        exit 2
        ;;
esac

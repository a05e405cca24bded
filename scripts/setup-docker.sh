#!/usr/bin/env bash
# Make the container path work on a Debian bookworm machine with no engine and no image registry.
#
# Idempotent: every step checks first, so a second run takes seconds. Steps:
#   1. Debian packages docker.io and docker-compose (v1), when missing (debootstrap only for step 3).
#   2. dockerd, when no engine answers.
#   3. Local base images, when absent: a Debian minbase rootfs from debootstrap (docker import), then a
#      Python base and a PostgreSQL image built on it (service/docker/python, service/docker/postgres).
#   4. The machine's extra CA certificates gathered into one bundle, .perfci/extra-ca.pem, that perfci passes
#      to every image build (PERFCI_EXTRA_CA) so that builds that pip-install trust an intercepting proxy
#      instead of disabling verification. It lives outside service/: the base arm of an A/B run is built
#      from a clean git worktree, which would not have it.
#   5. The environment compose needs, written to .perfci/docker.env and printed as `export` lines.
#
# Where the official python/postgres images can be pulled (GitHub-hosted runners) step 3 is skipped and
# compose uses them. --official / --local force either choice.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${PERFCI_DOCKER_STATE_DIR:-$REPO_ROOT/.perfci/docker}"
ENV_FILE="$REPO_ROOT/.perfci/docker.env"
EXTRA_CA_FILE="$REPO_ROOT/.perfci/extra-ca.pem"
DEBIAN_IMAGE="${PERFCI_LOCAL_DEBIAN_IMAGE:-perfci-local/debian:bookworm}"
PYTHON_IMAGE="${PERFCI_LOCAL_PYTHON_IMAGE:-perfci-local/python:3.11-bookworm}"
POSTGRES_IMAGE="${PERFCI_LOCAL_POSTGRES_IMAGE:-perfci-local/postgres:15-bookworm}"
MODE="${1:-auto}"  # auto | --official | --local
case "$MODE" in auto|--official|--local) ;; *) echo "usage: $0 [--official|--local]" >&2; exit 2;; esac
OFFICIAL_IMAGES=(python:3.11-slim postgres:16)

log() { printf '[setup-docker] %s\n' "$*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
engine_answers() { timeout 10 docker info >/dev/null 2>&1; }
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

apt_install() {
    log "installing $*"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
    # A machine without Docker likely has no registry either: fetch debootstrap in the same apt run.
    if [[ ${#missing[@]} -gt 0 && "$MODE" != --official ]] && ! command -v debootstrap >/dev/null; then
        missing+=(debootstrap)
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then apt_install "${missing[@]}"; fi
}

# Official images when a registry serves them (a failed pull is quick without one), else local ones.
use_official_images() {
    case "$MODE" in --official) return 0;; --local) return 1;; esac
    local image
    for image in "${OFFICIAL_IMAGES[@]}"; do
        image_exists "$image" || timeout 300 docker pull -q "$image" >/dev/null 2>&1 || return 1
    done
}

start_engine() {
    if engine_answers; then return; fi
    if ! command -v dockerd >/dev/null; then
        log "no engine answers and dockerd is not installed"; exit 1
    fi
    mkdir -p "$STATE_DIR"
    log "starting dockerd (log: $STATE_DIR/dockerd.log)"
    # setsid: the daemon outlives this script and the shell that ran it.
    as_root setsid dockerd >"$STATE_DIR/dockerd.log" 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        if engine_answers; then return; fi
        sleep 1
    done
    log "dockerd did not answer within 60 s; last lines of its log:"
    tail -n 20 "$STATE_DIR/dockerd.log" >&2
    exit 1
}

# The mirror apt already uses (a machine without internet access has its own); deb.debian.org otherwise.
debian_mirror() {
    local uri
    uri=$(grep -rhoE '^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
            /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
          | grep -oE 'https?://[^[:space:]]+' | head -n 1 || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

# Writes the bundle and returns 0 when the machine has extra CA certificates, else removes it and returns 1.
gather_extra_cas() {
    local crt found=()
    for crt in /usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt; do
        [[ -f "$crt" ]] && found+=("$crt")
    done
    if [[ ${#found[@]} -eq 0 ]]; then rm -f "$EXTRA_CA_FILE"; return 1; fi
    mkdir -p "$(dirname "$EXTRA_CA_FILE")"
    awk 1 "${found[@]}" >"$EXTRA_CA_FILE.tmp"  # awk 1: a file without a final newline still ends its line
    mv "$EXTRA_CA_FILE.tmp" "$EXTRA_CA_FILE"
    log "trusting ${#found[@]} extra CA certificate(s) in image builds ($EXTRA_CA_FILE)"
}

build_local_images() {
    if ! image_exists "$DEBIAN_IMAGE" && { ! image_exists "$PYTHON_IMAGE" || ! image_exists "$POSTGRES_IMAGE"; }; then
        local rootfs mirror
        command -v debootstrap >/dev/null || apt_install debootstrap
        rootfs="$(mktemp -d "${TMPDIR:-/tmp}/perfci-rootfs.XXXXXX")"
        mirror="$(debian_mirror)"
        log "debootstrap bookworm from $mirror (about a minute)"
        as_root debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" \
            >"$STATE_DIR/debootstrap.log" 2>&1 || { tail -n 20 "$STATE_DIR/debootstrap.log" >&2; exit 1; }
        as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        as_root tar -C "$rootfs" -c . | docker import - "$DEBIAN_IMAGE" >/dev/null
        as_root rm -rf "$rootfs"
    fi
    local -a build_args=(--network host --build-arg "BASE_IMAGE=$DEBIAN_IMAGE")
    if ! image_exists "$PYTHON_IMAGE"; then
        log "building $PYTHON_IMAGE"
        docker build -q "${build_args[@]}" -t "$PYTHON_IMAGE" "$REPO_ROOT/service/docker/python" >/dev/null
    fi
    if ! image_exists "$POSTGRES_IMAGE"; then
        log "building $POSTGRES_IMAGE"
        docker build -q "${build_args[@]}" -t "$POSTGRES_IMAGE" "$REPO_ROOT/service/docker/postgres" >/dev/null
    fi
}

write_env() {
    local official=$1 extra_ca=$2
    mkdir -p "$(dirname "$ENV_FILE")"
    {
        if [[ $extra_ca -eq 1 ]]; then
            echo "export PERFCI_EXTRA_CA=$EXTRA_CA_FILE"
        fi
        if [[ $official -eq 0 ]]; then
            echo "export PERFCI_PYTHON_IMAGE=$PYTHON_IMAGE"
            echo "export PERFCI_POSTGRES_IMAGE=$POSTGRES_IMAGE"
            # Build on the host network: its DNS and proxy are the ones apt and pip already work through.
            echo "export PERFCI_BUILD_NETWORK=host"
        fi
    } >"$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    cat "$ENV_FILE"
}

main() {
    mkdir -p "$STATE_DIR"
    install_packages
    start_engine
    local official=0 extra_ca=0
    if gather_extra_cas; then extra_ca=1; fi
    if use_official_images; then
        official=1
        log "the official images can be pulled: compose uses them"
    else
        build_local_images
    fi
    write_env "$official" "$extra_ca"
    log "ready: source $ENV_FILE (perfci reads it itself)"
}

main

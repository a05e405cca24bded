#!/usr/bin/env bash
# Compose v2 as a CLI plugin in a private docker config folder, on a Debian 12 machine whose archive has
# only v1: Debian 13's docker-compose package (a static binary) is fetched with apt from a trixie source
# kept in a scratch folder, so the machine's own apt sources and Docker set-up stay as they are.
#
# Idempotent. Prints `export PERFCI_TEST_COMPOSE_V2_CONFIG=DIR`: the container tests then run through v2
# as well; `DOCKER_CONFIG=DIR perfci run --target compose ...` uses v2 for a whole run.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG_DIR="${PERFCI_COMPOSE_V2_CONFIG_DIR:-$REPO_ROOT/.perfci/docker-v2}"
PLUGIN="$CONFIG_DIR/cli-plugins/docker-compose"

log() { printf '[compose-v2] %s\n' "$*" >&2; }

if [[ -x "$PLUGIN" ]] && DOCKER_CONFIG="$CONFIG_DIR" docker compose version >/dev/null 2>&1; then
    echo "export PERFCI_TEST_COMPOSE_V2_CONFIG=$CONFIG_DIR"
    exit 0
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/perfci-compose-v2.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
chmod 755 "$scratch"  # apt downloads as its own _apt user
mkdir -p "$scratch/sources" "$scratch/lists/partial" "$scratch/cache/archives/partial"
cat >"$scratch/sources/trixie.sources" <<SOURCES
Types: deb
URIs: ${PERFCI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
apt_private=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$scratch/sources"
             -o Dir::State::Lists="$scratch/lists" -o Dir::Cache="$scratch/cache")
log "fetching Debian 13's docker-compose package"
apt-get "${apt_private[@]}" update -qq >/dev/null
(cd "$scratch" && apt-get "${apt_private[@]}" download docker-compose >/dev/null 2>&1)
dpkg-deb -x "$scratch"/docker-compose_*.deb "$scratch/root"
mkdir -p "$CONFIG_DIR/cli-plugins"
cp "$scratch/root/usr/libexec/docker/cli-plugins/docker-compose" "$PLUGIN"
DOCKER_CONFIG="$CONFIG_DIR" docker compose version >&2
echo "export PERFCI_TEST_COMPOSE_V2_CONFIG=$CONFIG_DIR"

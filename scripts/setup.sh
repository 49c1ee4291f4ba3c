#!/usr/bin/env bash
# First-use set-up, safe to run every time: Debian packages, npm dependencies, and the
# mediasoup worker built against Debian's libraries (cached, keyed by version and recipe).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

BUILD_PACKAGES=(g++ meson ninja-build pkg-config libuv1-dev libsrtp2-dev libusrsctp-dev libssl-dev libabsl-dev nlohmann-json3-dev)
EXTRA_PACKAGES=("$@")

missing_packages() {
  local p out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  printf '%s\n' "${out[@]}"
}

apt_install() {
  local missing
  mapfile -t missing < <(missing_packages "$@" | sed '/^$/d')
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    log "run as root, or install them first: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

MEDIASOUP_VERSION=$(node -p "require('./package.json').dependencies.mediasoup")
RECIPE_HASH=$(sha256sum scripts/build-worker.mjs | cut -c1-12)
CACHE_ROOT=${SENTIRIC_MEDIA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sentiric-media}
WORKER_BIN="$CACHE_ROOT/mediasoup-worker-$MEDIASOUP_VERSION-$RECIPE_HASH/mediasoup-worker"

# The worker links these shared libraries, so they are needed to run it as well as to build it.
apt_install "${BUILD_PACKAGES[@]}" ${EXTRA_PACKAGES[@]+"${EXTRA_PACKAGES[@]}"}

# npm dependencies, reinstalled only when the lockfile changed. mediasoup's postinstall
# skips its own worker download/build when MEDIASOUP_WORKER_BIN is set.
LOCK_HASH=$(sha256sum package-lock.json | cut -c1-16)
STAMP=node_modules/.setup-lock-hash
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$LOCK_HASH" ]; then
  log "installing npm dependencies"
  MEDIASOUP_WORKER_BIN="$WORKER_BIN" npm ci --no-audit --no-fund --loglevel=error
  echo "$LOCK_HASH" > "$STAMP"
fi

if [ ! -x "$WORKER_BIN" ]; then
  log "building mediasoup-worker $MEDIASOUP_VERSION against Debian's libraries (several minutes, once)"
  node scripts/build-worker.mjs node_modules/mediasoup "$WORKER_BIN"
fi

# mediasoup spawns node_modules/mediasoup/worker/out/Release/mediasoup-worker by default.
TARGET=node_modules/mediasoup/worker/out/Release/mediasoup-worker
if ! cmp -s "$WORKER_BIN" "$TARGET" 2>/dev/null; then
  mkdir -p "$(dirname "$TARGET")"
  cp "$WORKER_BIN" "$TARGET.tmp" && mv "$TARGET.tmp" "$TARGET"
fi

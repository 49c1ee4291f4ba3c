#!/usr/bin/env bash
# First-use set-up, safe to run every time: Debian packages, npm dependencies, and the
# mediasoup worker built against Debian's libraries (cached, keyed by version and recipe).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

BUILD_PACKAGES=(g++ meson ninja-build pkg-config libuv1-dev libsrtp2-dev libusrsctp-dev libssl-dev libabsl-dev nlohmann-json3-dev)
# The allocator the service preloads (src/main.js): it hands freed memory back to the system.
RUNTIME_PACKAGES=(libjemalloc2)
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
apt_install "${BUILD_PACKAGES[@]}" "${RUNTIME_PACKAGES[@]}" ${EXTRA_PACKAGES[@]+"${EXTRA_PACKAGES[@]}"}

# npm dependencies, reinstalled only when the lockfile changed. No dependency script runs
# unasked (--ignore-scripts); the three the service needs run below, each under the Node
# that will load it: the pinned Node itself, mediasoup (whose postinstall skips its worker
# download/build when MEDIASOUP_WORKER_BIN is set), and the Opus binding.
PINNED_PATH="$PWD/node_modules/.bin:$PATH"
LOCK_HASH=$(sha256sum package-lock.json | cut -c1-16)
STAMP=node_modules/.setup-lock-hash
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$LOCK_HASH" ]; then
  log "installing npm dependencies"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  npm rebuild node --no-audit --no-fund --loglevel=error
  PATH="$PINNED_PATH" MEDIASOUP_WORKER_BIN="$WORKER_BIN" npm rebuild mediasoup --loglevel=error
  echo "$LOCK_HASH" > "$STAMP"
fi

# @discordjs/opus compiles its bundled libopus (about a minute); never its prebuilt download.
# The binary's folder carries the Node ABI, so it is built by the pinned Node and cached.
opus_loads() { PATH="$PINNED_PATH" node -e "require('@discordjs/opus')" 2>/dev/null; }
if ! opus_loads; then
  OPUS_VERSION=$(node -p "require('./node_modules/@discordjs/opus/package.json').version")
  NODE_ABI=$(PATH="$PINNED_PATH" node -p 'process.versions.modules')
  OPUS_CACHE="$CACHE_ROOT/discordjs-opus-$OPUS_VERSION-node-v$NODE_ABI"
  if [ -d "$OPUS_CACHE/prebuild" ]; then
    cp -r "$OPUS_CACHE/prebuild" node_modules/@discordjs/opus/
  fi
  if ! opus_loads; then
    NODEDIR=""
    for d in "${npm_config_nodedir:-}" "$(npm config get nodedir 2>/dev/null || true)" /usr /usr/local "$(dirname "$(dirname "$(command -v node)")")"; do
      if [ -n "$d" ] && [ -f "$d/include/node/common.gypi" ]; then NODEDIR=$d; break; fi
    done
    if [ -z "$NODEDIR" ]; then
      log "building the Opus binding needs Node's C headers (include/node/common.gypi) on this machine; none found"
      exit 1
    fi
    log "building the Opus binding (libopus) for Node ABI $NODE_ABI (about a minute, once)"
    PATH="$PINNED_PATH" JOBS=max npm_config_build_from_source=true npm_config_nodedir="$NODEDIR" \
      npm rebuild @discordjs/opus --loglevel=error >/dev/null
    opus_loads || { log "the Opus binding did not load after building"; exit 1; }
    rm -rf "$OPUS_CACHE.tmp" && mkdir -p "$OPUS_CACHE.tmp"
    cp -r node_modules/@discordjs/opus/prebuild "$OPUS_CACHE.tmp/" && rm -rf "$OPUS_CACHE" && mv "$OPUS_CACHE.tmp" "$OPUS_CACHE"
  fi
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

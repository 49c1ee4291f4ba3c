#!/usr/bin/env bash
# Sets up (first use) and runs the whole test suite against real parts: the mediasoup
# worker, UDP sockets, ffmpeg, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

TEST_PACKAGES=(ffmpeg openssl procps)
bash scripts/setup.sh "${TEST_PACKAGES[@]}"

export PATH="$PWD/node_modules/.bin:$PATH"
hash -r
echo "[test] node $(node --version), typecheck"
tsc -p tsconfig.json

echo "[test] running tests"
exec node --test --test-concurrency=1 --test-timeout=180000 --test-reporter=spec \
  'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'

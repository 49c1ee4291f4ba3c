#!/usr/bin/env bash
# Runs the service with embedded defaults (plus config.toml / .env / environment if present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node_modules/.bin/node src/main.js "$@"

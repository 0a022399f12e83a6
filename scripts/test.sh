#!/usr/bin/env bash
# The test command: installs redis-server (and Chromium for the browser test)
# when missing, then runs every test of the workspace against private
# redis-servers the harness starts on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --browser
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast "$@"
fi

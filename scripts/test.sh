#!/usr/bin/env bash
# The test command: installs what is missing (redis-server, openssl for the
# TLS certificates, Chromium for the browser test), then runs
#   1. every test of the workspace on single-node Redis (Debian's 7.0),
#   2. the core suites again on a 3-primary Redis Cluster,
#   3. the core suites and the topology tests again on Valkey 8
#      (scripts/install-valkey.sh; needs python3 with pip. Skipped with a
#      warning when that is missing, unless CI=true),
# each test against private servers the harness starts on free loopback
# ports. Extra arguments go to every nextest run (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --browser

# The suites that exercise every feature through the public API: they run on
# each topology and server.
core=(--test enqueue --test fetch_lease --test retry_dead --test scheduler --test admin
      --test cron --test dashboard --test cli --test bad_input --test stale_runs
      --test shutdown --test overrun --test dashboard_hardening --test outcomes --test uniqueness
      --test dashboard_outcomes --test dashboard_console --test middleware --test otel --test worker_metrics --test events --test workflows --test webhooks --test fleet
      --test encryption)

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest not found: running plain cargo test on a single node only" >&2
  cargo test --workspace --no-fail-fast "$@"
  exit 0
fi

echo "== 1/3 every test, single node ($(redis-server --version | cut -d' ' -f3))" >&2
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc

echo "== 2/3 core suites on a 3-primary Redis Cluster" >&2
SPOOL_TEST_TOPOLOGY=cluster cargo nextest run -p spool-tests --no-fail-fast "${core[@]}" "$@"

if valkey=$(./scripts/install-valkey.sh); then
  echo "== 3/3 core suites and topologies on $("$valkey" --version | cut -d' ' -f1-3)" >&2
  SPOOL_REDIS_SERVER="$valkey" cargo nextest run -p spool-tests --no-fail-fast "${core[@]}" \
    --test harness --test tls_acl --test tls_topologies --test failover --test cluster --test durability "$@"
elif [[ "${CI:-}" == "true" ]]; then
  echo "Valkey could not be installed (see above); CI needs it" >&2
  exit 1
else
  echo "warning: skipped the Valkey run (scripts/install-valkey.sh failed; see above)" >&2
fi

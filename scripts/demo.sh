#!/usr/bin/env bash
# The demo: a private redis-server (unless REDIS_URL is set), the demo worker,
# the demo producer and the dashboard, all on loopback. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

state="$(pwd)/.spool"
mkdir -p "$state"
pids=()
redis_pid=""
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping demo…"
  # Worker, producer and dashboard first, so the worker can write its last
  # outcomes and remove its process record; then the private Redis.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "$redis_pid" ]]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
}
trap cleanup INT TERM EXIT

if [[ -z "${REDIS_URL:-}" ]]; then
  port=${SPOOL_DEMO_REDIS_PORT:-16379}
  # Its own session: Ctrl-C reaches the whole foreground process group, and
  # Redis must outlive the worker's last writes (cleanup stops it last).
  setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$state" --appendonly yes \
    --appendfsync everysec --save "" --maxmemory-policy noeviction \
    --logfile "$state/redis.log" &
  redis_pid=$!
  export REDIS_URL="redis://127.0.0.1:$port"
  up=""
  for _ in $(seq 100); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then up=1; break; fi
    sleep 0.05
  done
  if [[ -z "$up" ]]; then
    echo "redis-server did not start on port $port (see $state/redis.log; set SPOOL_DEMO_REDIS_PORT to use another port)" >&2
    exit 1
  fi
  echo "private redis-server on $REDIS_URL (data in .spool/)"
fi

echo "building (release)…"
cargo build --release -q -p spool-worker --example demo_worker --example demo_producer
cargo build --release -q -p spool-dashboard

./target/release/examples/demo_worker & pids+=($!)
./target/release/examples/demo_producer & pids+=($!)
bind=${SPOOL_DASHBOARD_BIND:-127.0.0.1:7420}
./target/release/spool-dashboard --bind "$bind" --redis-url "$REDIS_URL" & pids+=($!)
echo
echo "  dashboard: http://$bind/"
echo "  Ctrl-C stops everything"
echo
wait -n

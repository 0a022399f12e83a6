#!/usr/bin/env bash
# The demo: a private redis-server (unless REDIS_URL is set), the demo worker,
# the demo producer and the dashboard, all on loopback.
#
#   scripts/demo.sh [--clean]     (make demo / make demo-clean)
#
# --clean starts from an empty .spool/ (the private Redis's data and the
# logs). The processes' logs go to .spool/{worker,producer,dashboard}.log so
# the terminal keeps the banner (dashboard URL, CLI hint), which is printed
# again every minute. Ctrl-C or SIGTERM stops the producer and the worker
# first (the worker finishes or hands back its jobs), then the dashboard,
# then Redis. SPOOL_DEMO_REDIS_PORT (16379) and SPOOL_DASHBOARD_BIND
# (127.0.0.1:7420) move them; SPOOL_DEMO_BANNER_EVERY (60, seconds; 0: never)
# and RUST_LOG tune the output.
set -euo pipefail
cd "$(dirname "$0")/.."

clean=""
for arg in "$@"; do
  case "$arg" in
    --clean) clean=1 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (scripts/demo.sh [--clean])" >&2; exit 2 ;;
  esac
done

./scripts/install-deps.sh

state="$(pwd)/.spool"
if [[ -n "$clean" ]]; then
  rm -rf "$state"
  echo "--clean: emptied .spool/"
fi
mkdir -p "$state"

# Build first, before anything runs: the first release build takes a few
# minutes (and fills target/release), and cargo's progress is the
# only thing worth watching meanwhile.
echo "building the demo (release; the first build takes a few minutes, later ones seconds)…"
# One cargo call: the crates the worker and the dashboard share (with the
# features either needs) are built once, not twice.
cargo build --release -p spool-worker --example demo_worker --example demo_producer \
  -p spool-dashboard --bin spool-dashboard --bin spool

port=${SPOOL_DEMO_REDIS_PORT:-16379}
bind=${SPOOL_DASHBOARD_BIND:-127.0.0.1:7420}
every=${SPOOL_DEMO_BANNER_EVERY:-60}
export RUST_LOG=${RUST_LOG:-info}
export NO_COLOR=${NO_COLOR:-1}   # the logs are files: no ANSI colours in them

# Every process runs in its own session (setsid), so Ctrl-C reaches this
# script only and it stops them in order.
apps=()       # producer and worker: stopped first
dashboard=""  # then the dashboard
redis_pid=""  # then the private Redis
stop() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
  trap - INT TERM EXIT
  echo
  if [[ ${#apps[@]} -gt 0 ]]; then
    echo "stopping the producer and the worker (the worker writes its last outcomes)…"
    stop "${apps[@]}"
  fi
  if [[ -n "$dashboard" ]]; then
    echo "stopping the dashboard…"
    stop "$dashboard"
  fi
  if [[ -n "$redis_pid" ]]; then
    echo "stopping redis-server (its data stays in .spool/)…"
    stop "$redis_pid"
  fi
  echo "demo stopped; logs in .spool/"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${REDIS_URL:-}" ]]; then
  if redis-cli -p "$port" ping >/dev/null 2>&1; then
    echo "port $port already answers PING (another demo still running?); stop it or set SPOOL_DEMO_REDIS_PORT" >&2
    exit 1
  fi
  setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$state" --appendonly yes \
    --appendfsync everysec --save "" --maxmemory-policy noeviction \
    --logfile "$state/redis.log" &
  redis_pid=$!
  export REDIS_URL="redis://127.0.0.1:$port"
  url_shown="$REDIS_URL"
  up=""
  for _ in $(seq 100); do
    kill -0 "$redis_pid" 2>/dev/null || break
    if redis-cli -p "$port" ping >/dev/null 2>&1; then up=1; break; fi
    sleep 0.05
  done
  if [[ -z "$up" ]]; then
    echo "redis-server did not start on port $port (see .spool/redis.log; set SPOOL_DEMO_REDIS_PORT to use another port)" >&2
    exit 1
  fi
  echo "private redis-server on $REDIS_URL (data in .spool/, log .spool/redis.log)"
else
  url_shown='$REDIS_URL'   # as you set it: it may hold a password
  echo "using your Redis (REDIS_URL); --clean does not touch it"
fi

setsid ./target/release/examples/demo_worker >"$state/worker.log" 2>&1 &
apps+=($!)
setsid ./target/release/examples/demo_producer >"$state/producer.log" 2>&1 &
apps+=($!)
setsid ./target/release/spool-dashboard --bind "$bind" --redis-url "$REDIS_URL" \
  >"$state/dashboard.log" 2>&1 &
dashboard=$!
names=([${apps[0]}]=worker [${apps[1]}]=producer [$dashboard]=dashboard)

banner() {
  cat <<BANNER

  ── Spool demo ───────────────────────────────────────────────────────
    dashboard  http://$bind/
    CLI        REDIS_URL=$url_shown ./target/release/spool stats
               (also: spool queues, spool dead list; \`cargo install --path dashboard\` puts it on PATH)
    logs       tail -f .spool/worker.log .spool/producer.log .spool/dashboard.log
    stop       Ctrl-C   (make demo-clean starts again from an empty .spool/)
  ─────────────────────────────────────────────────────────────────────

BANNER
}
banner

# Wait, reprinting the banner now and then, until a process exits or a
# signal arrives (`sleep & wait` lets the traps run at once).
elapsed=0
while :; do
  for pid in "${apps[@]}" "$dashboard"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the ${names[$pid]} exited; last lines of .spool/${names[$pid]}.log:" >&2
      tail -n 20 "$state/${names[$pid]}.log" >&2 || true
      exit 1
    fi
  done
  sleep 1 &
  wait $! || true
  elapsed=$((elapsed + 1))
  if [[ "$every" -gt 0 && $((elapsed % every)) -eq 0 ]]; then
    banner
  fi
done

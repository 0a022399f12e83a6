#!/usr/bin/env bash
# Instructions per job drained, counted by valgrind's callgrind: exact
# where the wall clock of a shared VM is not (docs/development.md,
# "Instruction counts").
#
#   scripts/bench-instructions.sh redis  [BENCH] [JOBS] [CONCURRENCY]
#   scripts/bench-instructions.sh worker [BENCH] [JOBS] [CONCURRENCY]
#
# `redis` runs a private redis-server under callgrind and prints its
# instructions per job enqueued and per job drained (fetch + ack, and
# whatever else the worker sends meanwhile); `worker` runs spool-bench
# itself under callgrind and counts it over the drain only. BENCH defaults
# to target/release/spool-bench (build it first), JOBS to 20000,
# CONCURRENCY to 200. Needs valgrind and redis-server; uses a free port
# and a temporary directory, and stops what it started. With KEEP=DIR the
# callgrind profiles are copied to DIR (read them with callgrind_annotate);
# BENCH_ARGS adds spool-bench options (e.g. BENCH_ARGS="--groups 1000");
# REDIS_SERVER names another redis-server binary (one built from source
# has the symbols Debian's lacks: Lua's own functions show by name).
set -euo pipefail

mode=${1:?usage: $0 redis|worker [BENCH] [JOBS] [CONCURRENCY]}
bench=$(realpath "${2:-target/release/spool-bench}")
jobs=${3:-20000}
conc=${4:-200}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$dir"/cg.* "$KEEP"/ 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

cli() { redis-cli -p "$port" "$@"; }
# The bench queue's ready list, once the bench has made it.
ready_key() {
    local key=""
    while [ -z "$key" ]; do
        key=$(cli --scan --pattern '*{bench}:ready' | head -1)
        sleep 0.1
    done
    echo "$key"
}
# Waits until the bulk enqueue is done (the list holds every job, or the
# drain has begun), then until the list is empty.
wait_enqueued() {
    local prev=0 n
    while true; do
        n=$(cli llen "$1")
        if [ "$n" -ge "$jobs" ] || [ "$n" -lt "$prev" ]; then return; fi
        prev=$n
        sleep 0.05
    done
}
# Waits until the bench says the drain is over (--pause-after-drain: it
# then sleeps before its own reads of the event stream and stats), or
# has exited.
wait_drained() {
    until grep -q "^spool-bench: drained" "$dir/bench.err" 2>/dev/null; do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.05
    done
}
per_job() { # file → instructions per job
    awk -v jobs="$jobs" '/^totals:/ { printf "%.0f", $2 / jobs }' "$1"
}
bench_args=(--redis-url "redis://127.0.0.1:$port" --jobs "$jobs" --concurrency "$conc"
    --latency-seconds 0 --idle-seconds 0 --scheduled-jobs 0 --pause-after-drain 3000)
# shellcheck disable=SC2206 # BENCH_ARGS is a list of words
bench_args+=(${BENCH_ARGS:-})

case "$mode" in
redis)
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.%p" \
        "${REDIS_SERVER:-redis-server}" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
        >"$dir/valgrind.log" 2>&1 &
    vpid=$!; pids+=("$vpid")
    until cli ping >/dev/null 2>&1; do sleep 0.2; done
    callgrind_control -i on "$vpid" >/dev/null 2>&1
    "$bench" "${bench_args[@]}" >"$dir/bench.json" 2>"$dir/bench.err" &
    bpid=$!; pids+=("$bpid")
    key=$(ready_key)
    wait_enqueued "$key"
    callgrind_control -d enqueue "$vpid" >/dev/null 2>&1
    wait_drained "$bpid"
    callgrind_control -d drain "$vpid" >/dev/null 2>&1
    wait "$bpid" || { echo "spool-bench failed:" >&2; grep -v "^==" "$dir/bench.err" | head -8 >&2; exit 1; }
    echo "redis instructions per job: enqueue $(per_job "$dir/cg.$vpid.1"), drain $(per_job "$dir/cg.$vpid.2")"
    ;;
worker)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
        >"$dir/redis.log" 2>&1 &
    pids+=("$!")
    until cli ping >/dev/null 2>&1; do sleep 0.2; done
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.%p" \
        "$bench" "${bench_args[@]}" >"$dir/bench.json" 2>"$dir/bench.err" &
    vpid=$!; pids+=("$vpid")
    key=$(ready_key)
    wait_enqueued "$key"
    callgrind_control -z "$vpid" >/dev/null 2>&1
    callgrind_control -i on "$vpid" >/dev/null 2>&1
    wait_drained "$vpid"
    callgrind_control -d drain "$vpid" >/dev/null 2>&1
    callgrind_control -i off "$vpid" >/dev/null 2>&1
    wait "$vpid" || { echo "spool-bench failed:" >&2; grep -v "^==" "$dir/bench.err" | head -8 >&2; exit 1; }
    # The drain may have begun before counting did: the jobs counted are
    # the records decoded in the window (calls of record_decode::decode,
    # which every fetched record goes through once).
    decoded=$(callgrind_annotate --tree=caller "$dir/cg.$vpid.1" 2>/dev/null | python3 -c '
import re, sys
lines = sys.stdin.read().split("\n")
for i, line in enumerate(lines):
    if re.search(r"\*\s+\S*:spool_client::record_decode::decode \[", line):
        calls, j = 0, i - 1
        while j >= 0 and "<" in lines[j]:
            m = re.search(r"\(([\d,]+)x\)", lines[j])
            calls += int(m.group(1).replace(",", "")) if m else 0
            j -= 1
        print(calls)
        break
')
    if [ -n "$decoded" ] && [ "$decoded" -gt 0 ]; then
        jobs=$decoded
    fi
    echo "worker instructions per job drained: $(per_job "$dir/cg.$vpid.1") ($jobs jobs in the window)"
    ;;
*)
    echo "usage: $0 redis|worker [BENCH] [JOBS] [CONCURRENCY]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Profiles the server while redis-benchmark drives one command, and prints where its CPU time
# goes: each line is a function with the share of samples in it and in what it calls.
#
#   bench/profile.sh hot RL.FIXED k:__rand_int__ 1 1h      # 10 keys, mostly denied
#   bench/profile.sh cold RL.FIXED k:__rand_int__ 100 1h   # a million keys, mostly allowed
#
# Needs perf (Debian's linux-perf) and permission to profile processes.
set -euo pipefail
cd "$(dirname "$0")/.."

workload=$1
shift
case "$workload" in
    hot) keys=10 ;;
    cold) keys=1000000 ;;
    *) echo "usage: $0 hot|cold command args..." >&2; exit 2 ;;
esac

server=${VALKEY_SERVER:-.valkey/bin/valkey-server}
module=${RATELIMIT_MODULE:-target/release/libvalkey_ratelimit.so}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)

taskset -c 0 "$server" --port "$port" --bind 127.0.0.1 --save '' --dir "$dir" \
    --loadmodule "$PWD/$module" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for attempt in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    if ! kill -0 "$pid" 2>/dev/null || [ "$attempt" = 100 ]; then
        echo "valkey-server did not start; its log:" >&2
        cat "$dir/server.log" >&2
        exit 1
    fi
    sleep 0.05
done

# A warm-up run brings the server to steady traffic before the recording starts.
taskset -c 1 redis-benchmark -p "$port" -c 50 -P 16 -n 300000 -r "$keys" -q "$@" >/dev/null
perf record -F 2000 --call-graph dwarf,16384 -p "$pid" -o "$dir/perf.data" -- sleep 2 \
    >/dev/null 2>&1 &
recorder=$!
sleep 0.1
taskset -c 1 redis-benchmark -p "$port" -c 50 -P 16 -n 3000000 -r "$keys" -q "$@" \
    | tr '\r' '\n' | tail -1
wait "$recorder"
perf report -i "$dir/perf.data" --children --sort symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | grep -v -E '\[k\]|inlined|^ +[0-9.]+% +[0-9.]+% +\[\.\] 0x' | head -40

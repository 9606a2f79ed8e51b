#!/usr/bin/env bash
# Hits/s of the Redis storage beside `redis-benchmark -t incr`, at
# concurrency 1 and 16, on a redis-server started here on a free port.
# Usage: scripts/bench-redis.sh [seconds-per-operation]
set -euo pipefail
secs=${1:-3}
cd "$(dirname "$0")/.."
for bin in redis-server redis-benchmark redis-cli; do
  command -v "$bin" >/dev/null || { echo "missing $bin (apt-get install redis-server redis-tools)" >&2; exit 1; }
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

cargo build --release --example remote_bench >/dev/null 2>&1 || cargo build --release --example remote_bench
echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$port, $(nproc) cores"
printf '%-12s %-34s %12s\n' concurrency operation hits/s
for c in 1 16; do
  n=$((c == 1 ? 100000 : 400000))
  rb=$(redis-benchmark -p "$port" -t incr -c "$c" -n "$n" -q | tr '\r' '\n' | grep -o 'INCR: [0-9.]*' | tail -1 | cut -d' ' -f2)
  printf '%-12s %-34s %12.0f\n' "$c" "redis-benchmark INCR" "$rb"
  ./target/release/examples/remote_bench "redis://127.0.0.1:$port" "$c" "$secs" |
    while read -r name _threads rate _unit; do
      printf '%-12s %-34s %12.0f  (%3.0f%% of INCR)\n' "$c" "$name" "$rate" "$(echo "100 * $rate / $rb" | bc -l)"
    done
done

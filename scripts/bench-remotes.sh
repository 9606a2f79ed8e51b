#!/usr/bin/env bash
# Hits/s and latency percentiles of every remote backend and of write-behind
# nodes over Redis, on servers started here on free loopback ports (as the
# tests start them): Redis, Memcached, etcd and SecantusDB (the
# MongoDB-wire server the tests use; `scripts/test.sh` installs it into
# target/secantus-venv).
# Usage: scripts/bench-remotes.sh [seconds-per-operation] [threads...]
set -euo pipefail
secs=${1:-2}
shift || true
threads=("$@")
[ "${#threads[@]}" -gt 0 ] || threads=(1 8)
cd "$(dirname "$0")/.."
for bin in redis-server memcached etcd; do
  command -v "$bin" >/dev/null || { echo "missing $bin (bash scripts/test.sh installs it)" >&2; exit 1; }
done
secantusd=target/secantus-venv/bin/secantusd-py
[ -x "$secantusd" ] || { echo "missing $secantusd (bash scripts/test.sh installs it)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

redis=$(free_port)
redis-server --port "$redis" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
pids+=($!)
mc=$(free_port)
user=(); [ "$(id -u)" -eq 0 ] && user=(-u root)
memcached -l 127.0.0.1 -p "$mc" -U 0 -m 256 "${user[@]}" &
pids+=($!)
etcd_client=$(free_port); etcd_peer=$(free_port)
etcd --name bench --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_client" \
  --advertise-client-urls "http://127.0.0.1:$etcd_client" --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" --initial-cluster "bench=http://127.0.0.1:$etcd_peer" \
  --initial-cluster-state new --log-level error --logger zap 2>"$dir/etcd.log" &
pids+=($!)
mongo=$(free_port)
"$secantusd" --host 127.0.0.1 --port "$mongo" --storage-path ':memory:' --log-level WARNING >"$dir/mongo.log" 2>&1 &
pids+=($!)
for p in "$redis" "$mc" "$etcd_client" "$mongo"; do wait_port "$p"; done

cargo build --release --all-features --example remote_bench >/dev/null 2>&1 ||
  cargo build --release --all-features --example remote_bench
echo "$(nproc) cores; redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), memcached $(memcached -V | cut -d' ' -f2), etcd $(etcd --version | head -1 | awk '{print $3}'), secantusdb; $secs s per row"
uris=(
  "redis://127.0.0.1:$redis"
  "memcached://127.0.0.1:$mc"
  "etcd://127.0.0.1:$etcd_client"
  "mongodb://127.0.0.1:$mongo"
  "writebehind+redis://127.0.0.1:$redis?sync_interval=0.01"
)
for uri in "${uris[@]}"; do
  echo
  echo "== ${uri%%\?*}$( [[ $uri == *\?* ]] && echo " (?${uri#*\?})" )"
  for t in "${threads[@]}"; do
    ./target/release/examples/remote_bench "$uri" "$t" "$secs"
  done
done

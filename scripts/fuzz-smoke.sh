#!/usr/bin/env bash
# Runs every fuzz target for a bounded time; fails on any crash or mismatch.
#
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]   (default 20)
#
# Runs on stable Rust without a sanitizer (`-s none`). Installs cargo-fuzz
# when it is missing. Inputs found along the way go to fuzz/corpus/<target>/
# (ignored by git except the seed-* files); a failing input is written to
# fuzz/artifacts/<target>/ and can be replayed with
#   cargo fuzz run -s none <target> <file>
# or, outside libFuzzer (in fuzz/),
#   cargo run --release --example replay -- <target> <file>
set -euo pipefail

seconds="${1:-20}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo fuzz build -s none

status=0
for target in $(cargo fuzz list); do
    echo "== $target: ${seconds}s"
    if ! cargo fuzz run -s none "$target" -- -max_total_time="$seconds"; then
        echo "== $target FAILED" >&2
        status=1
    fi
done
exit "$status"

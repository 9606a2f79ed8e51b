#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the servers the tests
# start (Debian packages), then runs formatting, lints, docs, every test
# (each backend's tests start their own servers on free loopback ports), the
# loom model checks and a short fuzzing smoke run.
#
# Usage: scripts/test.sh            (CI=true turns a missing server into a failure)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need, by the command that proves each is there.
declare -A PACKAGES=(
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
  [redis-benchmark]=redis-tools
  [openssl]=openssl
  [memcached]=memcached
  [etcd]=etcd-server
  [protoc]=protobuf-compiler
)
# Build-time libraries, by package name.
LIBRARIES=(libssl-dev pkg-config)
missing=()
for cmd in "${!PACKAGES[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGES[$cmd]}")
done
for pkg in "${LIBRARIES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# `python3 -m venv` (for the MongoDB test server below) needs ensurepip.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step() { echo; echo "==> $*"; }

# SecantusDB, a MongoDB-compatible server (Python, PyPI), which
# tests/mongodb.rs starts; kept in an ignored virtual environment.
SECANTUS_VENV=target/secantus-venv
if ! "$SECANTUS_VENV/bin/python" -c 'import secantus.server' >/dev/null 2>&1; then
  echo "==> installing secantusdb into $SECANTUS_VENV"
  python3 -m venv "$SECANTUS_VENV"
  "$SECANTUS_VENV/bin/pip" install -q --disable-pip-version-check secantusdb==0.7.0b3
fi
export LIMITSTORE_SECANTUS_PYTHON="$PWD/$SECANTUS_VENV/bin/python"

# Python `limits` (PyPI), which tests/conformance.rs runs the same operation
# sequences through: 5.8.0 with its Redis client, and 4.7.3, the last with
# the elastic expiry strategy; each in an ignored virtual environment.
install_limits() { # venv, requirement
  if ! "$1/bin/python" -c 'import limits' >/dev/null 2>&1; then
    echo "==> installing $2 into $1"
    python3 -m venv "$1"
    "$1/bin/pip" install -q --disable-pip-version-check "$2"
  fi
}
install_limits target/limits-venv 'limits[redis]==5.8.0'
install_limits target/limits4-venv 'limits==4.7.3'
export LIMITSTORE_LIMITS_PYTHON="$PWD/target/limits-venv/bin/python"
export LIMITSTORE_LIMITS4_PYTHON="$PWD/target/limits4-venv/bin/python"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features)"
cargo clippy --all-targets --all-features -- -D warnings

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features --quiet

step "each feature alone (cargo hack --each-feature check)"
command -v cargo-hack >/dev/null 2>&1 || cargo install cargo-hack --locked --quiet
cargo hack check --each-feature --no-dev-deps --quiet

step "cargo test (all features; real servers started by the tests)"
cargo test --all-features

step "loom model checks of the atomic cells"
LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg limitstore_loom" CARGO_TARGET_DIR=target/loom \
  cargo test --release --lib -- loom

if [ -x scripts/fuzz-smoke.sh ]; then
  step "fuzzing smoke run"
  scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-20}"
fi

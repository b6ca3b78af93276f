#!/usr/bin/env bash
# The one test command (README "Run every test"). CI's .ci/run calls it on a clean clone.
# It installs what the tests need (redis-server) when it is missing, then runs every check.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! command -v redis-server >/dev/null 2>&1 && [ -z "${WX_TEST_REDIS_URL:-}" ]; then
  step "installing redis-server (Debian package) for the wx-redis tests"
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null \
      || { echo "error: could not install redis-server; install it (apt-get install redis-server) or set WX_TEST_REDIS_URL" >&2; exit 1; }
  else
    echo "error: redis-server is missing and apt-get is not available; install redis-server or set WX_TEST_REDIS_URL" >&2
    exit 1
  fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "wx-core depends on neither reqwest nor redis"
if cargo tree -p wx-core -e normal --all-features | grep -E '^[^a-z]*(reqwest|redis) v'; then
  echo "error: wx-core must not depend on reqwest or redis" >&2
  exit 1
fi

step "build the native-tls variants"
cargo build -q -p wx-reqwest --no-default-features --features native-tls
cargo build -q -p wx-redis --no-default-features --features native-tls

step "cargo test (workspace, all features, doc tests included)"
cargo test --workspace --all-features

if [ -f examples/quickstart.rs ]; then
  step "the main job: cargo run --example quickstart"
  out=$(cargo run -q --example quickstart)
  printf '%s\n' "$out"
  for s in "base token" "from cache" "authorize URL" "consent" "code exchange" "user info" "token check" "refresh" "check again"; do
    grep -qi "$s" <<<"$out" || { echo "error: quickstart did not report step '$s'" >&2; exit 1; }
  done
fi

step "all checks passed"

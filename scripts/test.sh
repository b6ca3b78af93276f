#!/usr/bin/env bash
# The one test command (README "Run every test"). CI's .ci/run calls it on a clean clone.
# It installs what the tests need (redis-server) when it is missing, then runs every check.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# What the tests need from the system: redis-server + redis-cli (wx-redis tests start their own
# servers and a 3-master cluster), OpenSSL headers for the native-tls builds, Python with venv
# (wechatpy against the wx-sandbox binary), and Chromium with its WebDriver and a CJK font (the
# browser test of examples/oauth_login.rs).
missing=()
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || missing+=(redis-server)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# A CJK font, so the consent page's Chinese renders in the browser test's screenshots.
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (Debian packages)"
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    # Wait (up to 10 minutes) for another apt/dpkg process holding the lock instead of failing.
    APT=(apt-get -o DPkg::Lock::Timeout=600)
    $SUDO "${APT[@]}" update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO "${APT[@]}" install -y -qq "${missing[@]}" >/dev/null \
      || { echo "error: could not install ${missing[*]}; install them (apt-get install ${missing[*]})" >&2; exit 1; }
  else
    echo "error: ${missing[*]} missing and apt-get is not available; install them by hand" >&2
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

step "the fuzz targets build (plain stable; run them with cargo fuzz, see fuzz/README.md)"
cargo build -q --manifest-path fuzz/Cargo.toml

step "cargo doc (every public item documented, no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc -q --workspace --all-features --no-deps

step "cargo test (workspace, all features, doc tests included)"
# Here the browser test must run: a missing Chromium fails it instead of skipping it.
WX_REQUIRE_BROWSER=1 cargo test --workspace --all-features

step "a foreign client against the wx-sandbox binary (wechatpy from PyPI, scripts/foreign.sh)"
scripts/foreign.sh

step "reliability suite figures (tests/reliability)"
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
cat "$target_dir/reliability-report.txt"

if [ -f examples/quickstart.rs ]; then
  step "the main job: cargo run --example quickstart"
  out=$(cargo run -q --example quickstart)
  printf '%s\n' "$out"
  for s in "base token" "from cache" "authorize URL" "consent" "code exchange" "user info" "token check" "refresh" "check again"; do
    grep -qi "$s" <<<"$out" || { echo "error: quickstart did not report step '$s'" >&2; exit 1; }
  done
fi

step "cargo run --example publish_article (uploads, draft, publish, PUBLISHJOBFINISH on the sandbox)"
out=$(cargo run -q --example publish_article)
printf '%s\n' "$out"
grep -q "article URL: https://mp.weixin.qq.com/s/" <<<"$out" || { echo "error: publish_article printed no article URL" >&2; exit 1; }

if [ -f examples/campaign.rs ]; then
  step "the account example: cargo run --example campaign (QR scan, tag, welcome, tag members)"
  cargo run -q --example campaign
fi

step "cargo run --example notify (template message + customer-service follow-up on the sandbox)"
out=$(cargo run -q --example notify)
printf '%s\n' "$out"
for s in "template message sent" "TEMPLATESENDJOBFINISH" "customer-service message sent" "\[template message\]" "\[Custom text\]"; do
  grep -q "$s" <<<"$out" || { echo "error: notify did not report '$s'" >&2; exit 1; }
done

step "all checks passed"

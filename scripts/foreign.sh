#!/usr/bin/env bash
# A foreign client against the wx-sandbox binary: wechatpy, installed from PyPI into a venv,
# runs tests/foreign/wechatpy_client.py (token, OAuth through the authorize redirect, web token
# check and refresh, JS-SDK ticket, 40163, 40001 after the grace period, a safe-mode push
# decrypted and answered with wechatpy's own crypto) against the binary started with
# tests/foreign/sandbox.json. Called by scripts/test.sh; runs alone too.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
venv="$target_dir/foreign-venv"
if [ ! -x "$venv/bin/python" ]; then
  command -v python3 >/dev/null 2>&1 \
    || { echo "error: python3 is missing; install it (apt-get install python3 python3-venv)" >&2; exit 1; }
  python3 -m venv "$venv" \
    || { rm -rf "$venv"; echo "error: python3 -m venv failed; install the venv module (apt-get install python3-venv)" >&2; exit 1; }
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "wechatpy[cryptography]==1.8.18" \
  || { echo "error: pip could not install wechatpy 1.8.18 from PyPI (network or proxy?)" >&2; exit 1; }

cargo build -q -p wx-sandbox --bin wx-sandbox
out=$(mktemp)
"$target_dir/debug/wx-sandbox" --config tests/foreign/sandbox.json --port 0 >"$out" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^wx-sandbox listening on //p' "$out")
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || { echo "error: wx-sandbox did not start:" >&2; cat "$out" >&2; exit 1; }

"$venv/bin/python" tests/foreign/wechatpy_client.py "$url"

kill -TERM "$pid"
wait "$pid" || { echo "error: wx-sandbox did not exit cleanly on SIGTERM" >&2; cat "$out" >&2; exit 1; }
grep -q '^wx-sandbox stopped$' "$out" || { echo "error: wx-sandbox did not report its stop" >&2; exit 1; }
echo "wx-sandbox stopped cleanly on SIGTERM"

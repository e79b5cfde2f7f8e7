#!/usr/bin/env bash
# Regenerates the account-page screenshots of docs/ACCOUNT.md (docs/screenshots/account-*.png):
# builds atauth, installs the interop harness (Node 22, playwright-core) if needed, and runs
# interop/account-page.mjs, which starts a local PLC directory and `atauth serve --dev` with a demo
# account, logs the reference client in through our pages in Debian's headless Chromium, opens
# /account, signs out of the app there (its refresh then fails with invalid_grant) and creates an
# app password. Everything stays on 127.0.0.1.
#
#   scripts/account-screenshots.sh            release build of atauth
#   scripts/account-screenshots.sh --debug    debug build (faster to build)
#   scripts/account-screenshots.sh --out DIR  somewhere else than docs/screenshots
#
# Needs Debian's chromium (`apt-get install chromium`, or `interop/setup.sh --with-chromium`).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PROFILE=release OUT="$ROOT/docs/screenshots"
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) PROFILE=debug; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "[account-screenshots] unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v chromium >/dev/null || { echo "[account-screenshots] needs Debian's chromium: apt-get install chromium" >&2; exit 1; }
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -p atauth
else
  cargo build --locked -p atauth
fi
bash interop/setup.sh >&2
SHOTS="$(mktemp -d "${TMPDIR:-/tmp}/atauth-account-shots-XXXXXX")"
trap 'rm -rf "$SHOTS"' EXIT
interop/node22 interop/account-page.mjs --atauth "${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/atauth" \
  --out "$SHOTS" --docs "$OUT" --chromium "$(command -v chromium)"

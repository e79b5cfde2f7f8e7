#!/usr/bin/env bash
# Regenerates the consent-screen screenshots of docs/CONSENT.md (docs/screenshots/consent-*.png):
# builds atauth, installs the interop harness (Node 22, playwright-core) if needed, and runs
# interop/consent-screenshots.mjs, which starts a local PLC directory and `atauth serve --dev` with a
# demo account and a pinned permission set, pushes three requests and saves each consent page
# through Debian's headless Chromium. Everything stays on 127.0.0.1.
#
#   scripts/consent-screenshots.sh            release build of atauth
#   scripts/consent-screenshots.sh --debug    debug build (faster to build)
#   scripts/consent-screenshots.sh --out DIR  somewhere else than docs/screenshots
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
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "[consent-screenshots] unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v chromium >/dev/null || { echo "[consent-screenshots] needs Debian's chromium: apt-get install chromium" >&2; exit 1; }
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -p atauth
else
  cargo build --locked -p atauth
fi
bash interop/setup.sh >&2
exec interop/node22 interop/consent-screenshots.mjs --atauth "${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/atauth" --out "$OUT" --chromium "$(command -v chromium)"

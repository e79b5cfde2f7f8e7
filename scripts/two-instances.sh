#!/usr/bin/env bash
# Two `atauth serve` instances, one service: the commands an operator runs, on this machine.
#
#   scripts/two-instances.sh            build atauth (debug), create a database, start instance A
#                                       on :2583 and B on :2584 over it (and Redis), check that they
#                                       answer as one server and share one sign-in limit, then stop
#                                       both and drop the database
#   scripts/two-instances.sh --keep     leave both running (Ctrl-C stops them and drops the database)
#   ATAUTH_NO_BUILD=1                   use the debug binary already built
#
# Needs Postgres (ATAUTH_ADMIN_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)
# and Redis (ATAUTH_REDIS_URL, default redis://127.0.0.1:6379). docs/SCALE-OUT.md explains each
# setting; the protocol across instances (login on A, refresh on B, replays, revocation) is tested
# in crates/atauth-server/tests/server/instances.rs.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
say() { echo "[two-instances] $*" >&2; }
die() { say "error: $*"; exit 1; }

KEEP=0
[ "${1:-}" = --keep ] && KEEP=1
ADMIN_URL=${ATAUTH_ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${ATAUTH_REDIS_URL:-redis://127.0.0.1:6379}
command -v psql >/dev/null || die "needs psql (apt-get install postgresql-client)"
command -v curl >/dev/null || die "needs curl"

[ "${ATAUTH_NO_BUILD:-0}" = 1 ] || cargo build -q -p atauth
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/atauth"

# 1. One database for both instances (any empty database; atauth sets it up on first start).
DB="atauth_two_$$"
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
DATABASE_URL="${ADMIN_URL%/*}/$DB"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# 2. What the instances share: the database, Redis, the signing-key file, the legacy and DPoP-nonce
#    secrets, and the issuer (the public name a load balancer would answer on; here A's address).
export ATAUTH_DATABASE_URL="$DATABASE_URL" ATAUTH_REDIS_URL="$REDIS_URL"
ATAUTH_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
ATAUTH_DPOP_NONCE_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ATAUTH_JWT_SECRET ATAUTH_DPOP_NONCE_SECRET
ISSUER=http://localhost:2583
KEYS="$TMP/signing-keys.json"

start() { # start NAME PORT: one instance, its own data directory, logs in $TMP/NAME.log
  "$BIN" serve --dev --issuer "$ISSUER" --port "$2" --signing-key "$KEYS" --data-dir "$TMP/$1" \
    >"$TMP/$1.out" 2>"$TMP/$1.log" &
  PIDS+=($!)
  for _ in $(seq 100); do
    grep -q "listening on" "$TMP/$1.out" 2>/dev/null && { say "$1: $(cat "$TMP/$1.out")"; return; }
    sleep 0.1
  done
  cat "$TMP/$1.log" >&2
  die "$1 did not start"
}
# A first: it generates the signing key that B then loads from the same file.
start a 2583
start b 2584

# 3. They answer as one server: the same metadata and the same public keys.
for path in /.well-known/oauth-authorization-server /oauth/jwks; do
  a=$(curl -sf "http://127.0.0.1:2583$path") || die "A: $path"
  b=$(curl -sf "http://127.0.0.1:2584$path") || die "B: $path"
  [ "$a" = "$b" ] || die "A and B differ on $path"
  say "same $path on A and B"
done
# ... and the admin commands reach the same database.
out=$("$BIN" sessions list alice.test 2>&1 || true)
case "$out" in
  *'no account "alice.test"'*) say "atauth sessions list reads the shared database (no accounts yet)" ;;
  *) die "sessions list: $out" ;;
esac

# 4. One sign-in limit for both (on Redis here; on Postgres without --redis-url): ten wrong passwords
#    alternating between A and B spend the (identifier, address) budget of 10, so the 11th attempt is
#    refused, 429, on the instance that has itself seen only five. A fresh identifier per run.
who="nobody-$$-$RANDOM.test"
attempt() { # attempt PORT: the HTTP status of one wrong-password createSession
  curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    -d "{\"identifier\":\"$who\",\"password\":\"wrong\"}" \
    "http://127.0.0.1:$1/xrpc/com.atproto.server.createSession"
}
for i in $(seq 1 10); do
  port=$((i % 2 ? 2583 : 2584))
  code=$(attempt "$port")
  [ "$code" = 401 ] || die "sign-in attempt $i on :$port answered $code, expected 401"
done
code=$(attempt 2583)
[ "$code" = 429 ] || die "the 11th sign-in attempt answered $code, expected 429 (one limit across instances)"
say "ten wrong passwords over A and B, then the 11th is refused on A: one sign-in limit (429)"

if [ "$KEEP" = 1 ]; then
  say "A: http://127.0.0.1:2583  B: http://127.0.0.1:2584  issuer $ISSUER  database $DATABASE_URL"
  say "Ctrl-C stops both and drops the database"
  wait
fi
say "ok"

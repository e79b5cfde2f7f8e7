#!/usr/bin/env bash
# bench/client-login.sh — one command: builds atauth-bench (release), starts the reference PDS of interop/
# (needs `interop/setup.sh` once), and times the login flow of our client (atauth-client) against
# Bluesky's reference client in the same run (four sides taking turns: each client in a warm process
# and in a new process per login; see bench/src/client_login.rs).
# It rewrites only the section "## Client login: atauth-client vs the reference client" of
# docs/BENCHMARKS.md (placed right after the load-generator section; everything else is kept). The
# JSON lines (one per round and client) are kept in bench/results/client-login.jsonl (git-ignored).
# Notes written by hand in that section (below the generated table) are replaced too: redo them after a run.
#
# Usage: bench/client-login.sh [--rounds N]      (default 20)
# ATAUTH_BENCH_NO_BUILD=1 skips the cargo build (uses the release binary already built).
set -euo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/.."
root=$PWD
export ATAUTH_INTEROP_DIR="${ATAUTH_INTEROP_DIR:-$root/interop}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

if [[ "${ATAUTH_BENCH_NO_BUILD:-0}" != 1 ]]; then
  cargo build --release --locked -p atauth-bench
fi
bin="$target_dir/release/atauth-bench"

mkdir -p bench/results
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(pgrep -c -x 'rustc|cargo|cc1|cc1plus|ld' || true)
"$bin" client-login --md "$tmp/table.md" "$@" | tee bench/results/client-login.jsonl
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
node_version=$("$ATAUTH_INTEROP_DIR/node22" --version)
cmd="bench/client-login.sh${*:+ $*}"
[[ "${ATAUTH_BENCH_NO_BUILD:-0}" == 1 ]] && cmd="ATAUTH_BENCH_NO_BUILD=1 $cmd"
marker='## Client login: atauth-client vs the reference client'
after_marker='## Load generator: atauth vs the reference PDS'
doc=docs/BENCHMARKS.md
# Split the document around this section: if it exists, from its heading to the next "## " heading;
# otherwise it goes right after the load-generator section (before the "## " heading that follows it),
# or at the end.
awk -v m="$marker" -v a="$after_marker" '
  BEGIN { have = 0 }
  { lines[NR] = $0; if ($0 == m) have = 1 }
  END {
    state = 0   # 0: before, 1: inside (skipped), 2: after
    seen_a = 0
    for (i = 1; i <= NR; i++) {
      l = lines[i]
      if (state == 0) {
        if (have && l == m) { state = 1; continue }
        if (!have && seen_a && l ~ /^## /) { state = 2 }
        if (!have && l == a) seen_a = 1
      } else if (state == 1 && l ~ /^## /) {
        state = 2
      }
      if (state == 0) print l > "/dev/stdout"
      else if (state == 2) print l > "/dev/stderr"
    }
  }' "$doc" > "$tmp/before.md" 2> "$tmp/after.md"
{
  cat "$tmp/before.md"
  [[ -n "$(tail -n1 "$tmp/before.md")" ]] && echo
  cat <<MD
$marker

Command (from the repository root):

\`\`\`sh
$cmd
\`\`\`

Run on $start: $(nproc) cores ($cpu), $mem, $(uname -sr). Load average before / after:
$load_before / $load_after; compiler processes running at the start: $busy_before$( [ "${busy_before:-0}" != 0 ] && echo " (other builds shared the CPU: absolute figures are noisy)" ).

Four clients log in as \`alice.test\` to the same reference PDS 0.5.35 with its OAuth provider
(\`interop/ref-pds.mjs\`, Node $node_version, SQLite), started once for the run; they take turns, and
which one goes first rotates every round. Every login starts from the handle with fresh caches (a new
client object: new identity and authorization-server metadata caches), in two pairs:

- **warm process** (a long-lived app): **atauth-client** (release build) inside the \`atauth-bench\`
  process, a new \`OAuthClient\` and HTTP connection pool per login, a loopback redirect listener as
  in \`atauth login\`; against **the reference client** (\`@atproto/oauth-client-node\` 0.5.3 with the
  \`interop/lib.mjs\` helpers) in one long-lived Node process (its script is in
  \`bench/src/client_login.rs\`), a new \`NodeOAuthClient\` per login; only undici's global
  keep-alive pool outlives a login there.
- **new process per login** (a command-line login): **atauth-client** in a new \`atauth-bench\`
  process each time, against **\`interop/ref-client-login.mjs --consent api\`** in a new Node process
  each time. Process start-up and module loading are not counted on either side, only the step
  timings each process reports; the steps themselves run cold (for Node: cold JIT, lazily loaded
  modules).

Steps: **authorize** = handle → DID (XRPC \`resolveHandle\` on the PDS) → DID document (PLC) →
protected-resource and authorization-server metadata → PAR with DPoP (retried with a nonce when asked) → the
authorize URL. **consent** = the provider's sign-in and consent API plus the browser's landing on the
client's loopback listener, driven the same way for all (the Rust port in \`atauth-testkit\` for ours,
\`interop/lib.mjs\` for the reference client): reported, not compared. **token** = the callback (state, \`iss\`), the
code exchange with PKCE and DPoP and the \`sub\` checks. **getSession**: one DPoP-bound
\`com.atproto.server.getSession\`. **refresh**: one forced refresh grant.

MD
  cat "$tmp/table.md"
  if [[ -s "$tmp/after.md" ]]; then
    echo
    cat "$tmp/after.md"
  fi
} > "$tmp/doc.md"
mv "$tmp/doc.md" "$doc"
echo "[bench] wrote $doc" >&2

#!/usr/bin/env bash
# bench/run.sh — one command: builds atauth-bench and atauth (release), starts `atauth serve` (SQLite) and the
# reference PDS of interop/ (needs `interop/setup.sh` once), runs every workload against both in
# the same run, and rewrites the "Load generator" section of docs/BENCHMARKS.md (everything above
# that section, e.g. the crypto figures, is kept). The JSON lines (one per phase and target) are
# kept in bench/results/latest.jsonl (git-ignored). Notes written by hand below the generated table
# (goals, growth runs) are replaced too: redo them after a run. A run of some phases or targets only
# (--phases, --targets) leaves docs/BENCHMARKS.md alone and writes its section to
# bench/results/latest.md instead, so the rows and notes of what it did not run survive; add
# --update-doc to replace the section with it anyway.
#
# Usage: bench/run.sh [--update-doc] [atauth-bench compare options]
#   --workers 8 --count 2000 --seconds 10
#   --phases par,refresh,refresh@1,getsession,login,legacy-create,legacy-refresh
#   --store sqlite,postgres,postgres+redis --instances 1,2   (every store in turn; 1 and 2
#   `atauth serve` instances over one shared database: docs/SCALE-OUT.md)
#   --targets atauth,reference   (atauth-before with --atauth-before PATH: another atauth binary,
#   e.g. the previous commit's release build; every phase then runs on it and on atauth in turn,
#   and the section gets a before → after table)
#   (extra phases: par-include, atauth only, PAR with an `include:` of a pinned permission set;
#   par-expanded, the same permissions written out)
# Every phase is bounded by --count and --seconds; targets are loopback only.
# ATAUTH_BENCH_NO_BUILD=1 skips the cargo build (uses the release binary already built).
set -euo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/.."
root=$PWD
args=() subset=0 update_doc=0
for a in "$@"; do
  case "$a" in
    --update-doc) update_doc=1; continue ;;
    --phases|--phases=*|--targets|--targets=*) subset=1 ;;
  esac
  args+=("$a")
done
set -- ${args[@]+"${args[@]}"}
export ATAUTH_INTEROP_DIR="${ATAUTH_INTEROP_DIR:-$root/interop}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

if [[ "${ATAUTH_BENCH_NO_BUILD:-0}" != 1 ]]; then
  cargo build --release --locked -p atauth-bench -p atauth
fi
bin="$target_dir/release/atauth-bench"

mkdir -p bench/results
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(pgrep -c -x 'rustc|cargo|cc1|cc1plus|ld' || true)
"$bin" compare --md "$tmp/table.md" "$@" | tee bench/results/latest.jsonl
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
cmd="bench/run.sh"
[[ "$update_doc" == 1 ]] && cmd="$cmd --update-doc"
cmd="$cmd${*:+ $*}"
[[ "${ATAUTH_BENCH_NO_BUILD:-0}" == 1 ]] && cmd="ATAUTH_BENCH_NO_BUILD=1 $cmd"
marker='## Load generator: atauth vs the reference PDS'
doc=docs/BENCHMARKS.md
if [[ "$subset" == 1 && "$update_doc" == 0 ]]; then
  # Only some phases or targets ran: the section would lose the others' rows and the notes.
  doc=bench/results/latest.md
  : > "$doc"
fi
# Only this section is replaced: from the marker to the next "## " heading; the rest is kept.
awk -v m="$marker" '$0 == m {found = 1; skip = 1; next} skip && /^## / {skip = 0; after = 1}
  !skip && !after {print > "/dev/stdout"} after {print > "/dev/stderr"}' "$doc" > "$tmp/before.md" 2> "$tmp/after.md"
{
  cat "$tmp/before.md"
  grep -qF "$marker" "$doc" || echo
  cat <<MD
$marker

Command (from the repository root):

\`\`\`sh
$cmd
\`\`\`

Run on $start: $(nproc) cores ($cpu), $mem, $(uname -sr). atauth: \`atauth serve --dev\`
(the CLI, release build, SQLite in a fresh data directory); reference: Bluesky's
PDS 0.5.35 with its OAuth provider (\`interop/ref-pds.mjs\`, Node 22, SQLite). Both servers and the
load generator share the same cores; the generator runs each phase against atauth, then against the
reference, so both columns come from the same run. Load average before / after: $load_before /
$load_after; compiler processes running at the start: $busy_before$( [ "${busy_before:-0}" != 0 ] && echo " (other builds shared the CPU: absolute figures are noisy, the ratios less so)" ).

Method: N workers on HTTP/1.1 keep-alive connections; every OAuth request carries a fresh ES256
DPoP proof (new \`jti\`, the server's latest nonce; a \`use_dpop_nonce\` answer is retried once and
counted). \`par\`: PAR for a loopback client with PKCE. \`refresh\`: the refresh grant, each worker on
its own token family, rotating. \`getsession\`: DPoP-bound \`com.atproto.server.getSession\`. \`login\`:
the whole flow per request (PAR, sign-in and consent through the server's consent API, code
exchange). \`legacy-create\` / \`legacy-refresh\`: \`createSession\` (scrypt) and \`refreshSession\`
(rotating). Setup logins and a warm-up are not measured. The generator raises atauth's sign-in
throttle (\`--sign-in-limit-identifier-ip\`, \`--sign-in-limit-identifier\` and \`--sign-in-limit-ip\` 1000000/1s), because the \`login\` and \`legacy-create\`
phases sign one account in from one address thousands of times; every other check is the default.

MD
  cat "$tmp/table.md"
  if [[ -s "$tmp/after.md" ]]; then
    echo
    cat "$tmp/after.md"
  fi
} > "$tmp/doc.md"
mv "$tmp/doc.md" "$doc"
echo "[bench] wrote $doc" >&2
if [[ "$doc" != docs/BENCHMARKS.md ]]; then
  echo "[bench] a subset of phases or targets: docs/BENCHMARKS.md unchanged (--update-doc replaces its section)" >&2
fi

#!/usr/bin/env bash
# The reference client against the reference PDS only (the control cases of
# interop/run.sh, which does the work):
#
#   interop/e2e.sh            consent via the provider's JSON API (case control-api)
#   interop/e2e.sh --browser  also via headless Chromium (case control-browser)
#   interop/e2e.sh --bench    also run bench-token.mjs (bounded: 4 phases x <=15 s)
#
# Exit 0 iff every run passed. The PDS is stopped on exit.
set -euo pipefail
cases=control-api
args=()
for a in "$@"; do
  case "$a" in
    --browser) cases="$cases,control-browser" ;;
    --bench) args+=(--bench) ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown option: $a" >&2; exit 2 ;;
  esac
done
exec "$(dirname "$0")/run.sh" --only "$cases" "${args[@]}"

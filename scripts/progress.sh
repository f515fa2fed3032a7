#!/usr/bin/env bash
# Run a long first-time step and say every 20 s that it is still going, how long it has taken
# and about how long it takes, so a first `make demo` never sits silent for minutes.
#   scripts/progress.sh "WHAT" EXPECTED_SECONDS -- COMMAND [ARGS...]
# The command's own output passes through; its exit status is ours.
set -euo pipefail
what=$1 expected=$2
shift 2
[[ ${1:-} == -- ]] && shift
interval=${PROGRESS_INTERVAL:-20}
started=$SECONDS
echo "==> $what (usually about ${expected}s on a 2-core machine)"
"$@" &
child=$!
# Stop the step too when make is interrupted.
trap 'kill "$child" 2>/dev/null || true' INT TERM
while kill -0 "$child" 2>/dev/null; do
  for ((i = 0; i < interval; i++)); do
    kill -0 "$child" 2>/dev/null || break 2
    sleep 1
  done
  echo "    ... $what: $((SECONDS - started))s so far, expected about ${expected}s"
done
status=0
wait "$child" || status=$?
echo "==> $what: done in $((SECONDS - started))s (exit $status)"
exit "$status"

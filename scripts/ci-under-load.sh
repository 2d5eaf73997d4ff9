#!/usr/bin/env bash
# Runs CI (.ci/run) N times in a row (default 3) on fresh clones of HEAD, each with another CPU-bound job beside it
# (one busy process per HOGS, default 1: a whole core of a 2-core machine), and stops at the first red run.
# This is how "CI must not fail on noise" is checked: a run that only passes on an idle machine is not green.
#   bash scripts/ci-under-load.sh [runs] [hogs]     logs: $KVVM_LOAD_LOGS (default /tmp/kvvm-ci-under-load)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
hogs="${2:-1}"
logs="${KVVM_LOAD_LOGS:-/tmp/kvvm-ci-under-load}"
# The clones sit beside the repository: the tests find the shared reference material as ../shared.
work="$(dirname "$repo")/.ci-under-load"
mkdir -p "$logs"
head="$(git -C "$repo" rev-parse HEAD)"
pids=()
stop_hogs() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true; pids=(); }
trap stop_hogs EXIT
for i in $(seq 1 "$runs"); do
  rm -rf "$work"
  git clone -q "$repo" "$work"
  git -C "$work" checkout -q "$head"
  for _ in $(seq 1 "$hogs"); do
    node -e 'for (;;) {}' &
    pids+=($!)
  done
  start=$(date +%s)
  set +e
  (cd "$work" && bash .ci/run) >"$logs/run-$i.log" 2>&1
  rc=$?
  set -e
  stop_hogs
  secs=$(($(date +%s) - start))
  echo "run $i of $runs at ${head:0:7}, $hogs busy process(es) beside it: exit $rc in ${secs}s (load average now: $(cut -d' ' -f1-3 /proc/loadavg)); log $logs/run-$i.log"
  if [ "$rc" -ne 0 ]; then
    grep -E '^not ok|REGRESSION|# fail [1-9]|Error' "$logs/run-$i.log" | head -20 || true
    exit "$rc"
  fi
done
rm -rf "$work"
echo "all $runs runs green"

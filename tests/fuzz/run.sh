#!/bin/bash
# Runs every libFuzzer target for SECONDS each (default 60) and prints a table: target,
# executions, seconds, corpus size, and whether it crashed. `make fuzz` calls this; the
# figures go in docs/reliability.md. A crash leaves its input in tests/fuzz/artifacts/TARGET/
# and makes this exit 1: turn it into a regression test beside the code it broke.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
targets=(signalling input clipboard_chunks file_name token randr_plan http_headers gamepad)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=0
printf '%-18s %14s %8s %8s  %s\n' target executions seconds corpus result
for t in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/$t
  mkdir -p "$corpus"
  # Seeds (committed) give the fuzzer the protocol's shape to start from.
  if [[ -d tests/fuzz/seeds/$t ]]; then cp -n tests/fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null; fi
  cargo +nightly fuzz run --fuzz-dir tests/fuzz "$t" "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$logs/$t.log" 2>&1
  rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$logs/$t.log" | grep -oE '[0-9]+$' | tail -1)
  took=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$logs/$t.log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+' | tail -1)
  size=$(find "$corpus" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then result=ok; else result="CRASH (exit $rc, see tests/fuzz/artifacts/$t/)"; failed=1; tail -n 30 "$logs/$t.log"; fi
  printf '%-18s %14s %8s %8s  %s\n' "$t" "${runs:-?}" "${took:-$seconds}" "$size" "$result"
done
exit $failed

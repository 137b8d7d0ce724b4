#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time (make fuzz / fuzz-short, docs/reliability.md).
# Usage: tools/run_fuzz.sh BUILD_DIR TARGET SECONDS [extra libFuzzer flags...]
# Seeds: fuzz/corpus/TARGET (read only); new inputs: BUILD_DIR/corpus/TARGET; crashes, hangs
# and leaks: BUILD_DIR/artifacts/TARGET/ (then commit them to tests/fuzz_regressions/TARGET/).
# Appends "TARGET SECONDS EXECS" to BUILD_DIR/logs/execs.tsv. Exit status 1 on any finding.
set -uo pipefail
BUILD=$1 T=$2 SECS=$3
shift 3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${FUZZ_BIN:-$BUILD/fuzz/fuzz_$T}  # FUZZ_BIN: run another build of the target
[[ -x $BIN ]] || { echo "run_fuzz: $BIN is not built (make fuzz-build)"; exit 1; }
mkdir -p "$BUILD/corpus/$T" "$BUILD/artifacts/$T" "$BUILD/logs"
DICT=()
[[ -f $ROOT/fuzz/dict/$T.dict ]] && DICT=(-dict="$ROOT/fuzz/dict/$T.dict")
LOG=$BUILD/logs/$T.log
export STRATA_SOURCE_DIR=$ROOT
echo "fuzz $T: ${SECS}s, log $LOG"
"$BIN" "$BUILD/corpus/$T" "$ROOT/fuzz/corpus/$T" "${DICT[@]}" \
  -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
  -artifact_prefix="$BUILD/artifacts/$T/" "$@" >"$LOG" 2>&1
rc=$?
execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$LOG" | grep -oE '[0-9]+$' | tail -1)
echo -e "$T\t$SECS\t${execs:-0}\t$(date -u +%FT%TZ)\trc=$rc" >> "$BUILD/logs/execs.tsv"
if [[ $rc -ne 0 ]] || ls "$BUILD/artifacts/$T/" | grep -q .; then
  echo "fuzz $T: FAILED (exit $rc); the finding is in $BUILD/artifacts/$T/; log tail:"
  tail -40 "$LOG"
  exit 1
fi
echo "fuzz $T: ok, ${execs:-?} executions, 0 crashes"

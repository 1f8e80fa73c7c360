#!/usr/bin/env bash
# run-one.sh FUZZER SEED_DIR WORK_DIR: one time-bounded libFuzzer run of
# $MQ_FUZZ_SECONDS seconds (default 60). New inputs go to WORK_DIR, the
# seeds are read only; a crash leaves its input as WORK_DIR/crash-*. Prints
# libFuzzer's final stats (executions, exec/s). Exit status: libFuzzer's.
set -uo pipefail
fuzzer=$1 seeds=$2 work=$3
secs=${MQ_FUZZ_SECONDS:-60}
mkdir -p "$work"
"$fuzzer" -max_total_time="$secs" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
  -artifact_prefix="$work/" "$work" "$seeds" 2>"$work.log"
rc=$?
grep -E "^(stat::|Done|#[0-9]+ *DONE|==[0-9]+==ERROR|SUMMARY)" "$work.log"
if [ $rc -ne 0 ]; then tail -60 "$work.log"; fi
echo "$(basename "$fuzzer"): exit $rc, $secs s"
exit $rc

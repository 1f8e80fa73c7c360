#!/usr/bin/env bash
# test.sh: the README's second command. Installs what is missing, builds
# from scratch with -Werror and runs the whole test suite, then the same
# suite again in an AddressSanitizer + UndefinedBehaviorSanitizer build.
# Ends with one line "N passed, N failed" counted over every lane.
# The browser test (suite browser: the dashboard in chromium) runs in the
# plain lane only.
#   MQ_LANES="plain asan valgrind fuzz"  lanes to run (default: all four)
#   valgrind: the integration tests with every mqd they start under
#             valgrind memcheck (leaks and errors fail), then the storage
#             and unit tests under valgrind (docs/reliability.md)
#   fuzz:     clang + libFuzzer targets, $MQ_FUZZ_SECONDS (60) each
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test || exit 1

lanes=${MQ_LANES:-plain asan valgrind fuzz}
VALGRIND="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --num-callers=30"
logs=()
rc=0
for lane in $lanes; do
  dir=build-test-$lane
  rm -rf "$dir"
  case $lane in
    plain) opts=(-Dwerror=true) ;;
    asan)  opts=(-Dwerror=true -Db_sanitize=address,undefined -Dc_args=-fno-sanitize-recover=all) ;;
    valgrind) opts=(-Dwerror=true) ;;
    fuzz)
      echo "== lane fuzz: build and run (${MQ_FUZZ_SECONDS:-60} s per target)" >&2
      MQ_FUZZ_BUILD=$dir bash scripts/fuzz.sh "${MQ_FUZZ_SECONDS:-60}" >"$dir.run.log" 2>&1 || rc=1
      grep -E "stat::(number_of_executed_units|average_exec_per_sec)|: exit" "$dir.run.log" >&2
      logs+=("$dir/meson-logs/testlog.json")
      continue ;;
    *) echo "test.sh: unknown lane $lane" >&2; exit 2 ;;
  esac
  echo "== lane $lane: build" >&2
  if ! meson setup "$dir" "${opts[@]}" >"$dir.setup.log" 2>&1 || ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
    cat "$dir.setup.log" "$dir.build.log" 2>/dev/null | tail -40 >&2
    echo "== lane $lane: build failed" >&2
    rc=1
    logs+=("$dir/meson-logs/testlog.json")
    continue
  fi
  echo "== lane $lane: test" >&2
  if [ "$lane" = valgrind ]; then
    # mqd under valgrind for the integration suite (the harness reads
    # MQD_WRAPPER), then the storage and unit tests themselves under it.
    MQD_WRAPPER=$VALGRIND MQTEST_TIME_MULT=10 MQ_CRASH_KILLS=5 \
      meson test -C "$dir" --suite integration --print-errorlogs --num-processes 2 \
      --timeout-multiplier 5 || rc=1
    mv "$dir/meson-logs/testlog.json" "$dir/meson-logs/testlog-integration.json"
    logs+=("$dir/meson-logs/testlog-integration.json")
    meson test -C "$dir" --suite storage --suite unit --print-errorlogs --num-processes 2 \
      --timeout-multiplier 10 --wrapper "$VALGRIND" || rc=1
    logs+=("$dir/meson-logs/testlog-valgrind.json") # meson names it after the wrapper
    continue
  fi
  suites=()
  [ "$lane" = plain ] || suites=(--no-suite browser)
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C "$dir" --print-errorlogs --num-processes 2 "${suites[@]}" || rc=1
  logs+=("$dir/meson-logs/testlog.json")
done
python3 scripts/test-summary.py "${logs[@]}"
exit $rc

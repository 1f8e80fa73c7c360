#!/usr/bin/env bash
# test.sh: the README's second command. Installs what is missing, builds
# from scratch with -Werror and runs the whole test suite, then the same
# suite again in an AddressSanitizer + UndefinedBehaviorSanitizer build.
# Ends with one line "N passed, N failed" counted over every lane.
#   MQ_LANES="plain asan"  lanes to run (default both)
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1

lanes=${MQ_LANES:-plain asan}
logs=()
rc=0
for lane in $lanes; do
  dir=build-test-$lane
  rm -rf "$dir"
  case $lane in
    plain) opts=(-Dwerror=true) ;;
    asan)  opts=(-Dwerror=true -Db_sanitize=address,undefined -Dc_args=-fno-sanitize-recover=all) ;;
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
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C "$dir" --print-errorlogs --num-processes 2 || rc=1
  logs+=("$dir/meson-logs/testlog.json")
done
python3 scripts/test-summary.py "${logs[@]}"
exit $rc

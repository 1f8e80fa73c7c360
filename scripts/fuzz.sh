#!/usr/bin/env bash
# fuzz.sh [SECONDS]: builds the libFuzzer targets with clang, ASan and UBSan
# in build-fuzz/ and runs each for SECONDS (default 60), from the seed
# corpus in fuzz/corpus/. Ends with "N passed, N failed". See
# docs/reliability.md for longer runs.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
dir=${MQ_FUZZ_BUILD:-build-fuzz}
if [ ! -f "$dir/build.ninja" ]; then
  CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
    -Db_lundef=false -Dc_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=all' \
    >"$dir.setup.log" 2>&1 || { tail -30 "$dir.setup.log" >&2; echo "0 passed, 1 failed"; exit 1; }
fi
ninja -C "$dir" >"$dir.build.log" 2>&1 || { tail -30 "$dir.build.log" >&2; echo "0 passed, 1 failed"; exit 1; }
rm -f "$dir/meson-logs/testlog.json"
MQ_FUZZ_SECONDS=$secs ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C "$dir" --suite fuzz --print-errorlogs -v
rc=$?
python3 scripts/test-summary.py "$dir/meson-logs/testlog.json"
exit $rc

#!/usr/bin/env bash
# run-mqd.sh: the README's first command. Installs what is missing, builds,
# and runs mqd in the foreground with its LMDB data in ./mq-data, listening
# on tcp://127.0.0.1:7450 (override with MQ_LISTEN, MQ_DATA_DIR, or flags
# passed to this script, e.g. --log-level=debug). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build broker/mqd tools/mqctl >/dev/null
echo "mqd: data in ${MQ_DATA_DIR:-./mq-data}; try: build/tools/mqctl ping" >&2
exec build/broker/mqd "$@"

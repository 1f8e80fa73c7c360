#!/usr/bin/env bash
# bench.sh: the benchmark in one command (docs/benchmarks.md). Installs the
# peers' Debian packages (servers and C clients) next to the build deps,
# builds mqbench with peer support in build-bench/, runs
# `mqbench --compare` (mq and every peer, scenario by scenario, then the
# relaxed modes), writes the JSON and the SVG plot.
#   scripts/bench.sh [mqbench options...]   e.g. --prefill 1000000 --seconds 5
#   MQ_BENCH_BUILD=dir   build dir (default build-bench)
#   MQ_BENCH_OUT=prefix  output prefix (default bench-results: .json, .svg, .txt)
# The peers' servers are started by mqbench itself on 127.0.0.1 (free
# ports, temp dirs under $TMPDIR, removed at the end); the packages' own
# services are not used (Debian's policy-rc.d may keep them from starting).
set -euo pipefail
cd "$(dirname "$0")/.."

MQ_DEPS_EXTRA="beanstalkd redis-server nats-server libhiredis-dev libnats-dev ${MQ_DEPS_EXTRA:-}" \
  scripts/deps.sh
build=${MQ_BENCH_BUILD:-build-bench}
out=${MQ_BENCH_OUT:-bench-results}
if [ ! -d "$build" ]; then
  meson setup "$build" -Dbuildtype=debugoptimized -Dpeers=enabled >/dev/null
fi
meson configure "$build" -Dpeers=enabled >/dev/null
ninja -C "$build" tools/mqbench broker/mqd >/dev/null
# Debian puts nothing of these in sbin, but keep PATH complete for non-root.
export PATH="$PATH:/usr/sbin:/sbin"
echo "bench.sh: $(uptime)" >&2
"$build/tools/mqbench" --mqd "$build/broker/mqd" --compare --json "$out.json" "$@" | tee "$out.txt"
python3 scripts/bench-plot.py "$out.json" "$out.svg"
echo "bench.sh: wrote $out.json, $out.txt and $out.svg" >&2

#!/bin/sh
# run.sh: meson's entry for the browser test (test 'dashboard', suite
# 'browser'): checks what it needs, then runs dashboard.mjs with node. A
# missing piece FAILS the test (scripts/deps.sh --test installs them all); it never
# skips.
here=$(cd "$(dirname "$0")" && pwd)
node=$(command -v node || command -v nodejs) ||
  { echo "dashboard: node is missing: run scripts/deps.sh --test (Debian's nodejs)" >&2; exit 1; }
[ -x "${MQ_CHROMIUM:-/usr/bin/chromium}" ] ||
  { echo "dashboard: ${MQ_CHROMIUM:-/usr/bin/chromium} is missing: run scripts/deps.sh --test (Debian's chromium)" >&2; exit 1; }
[ -f "$here/node_modules/playwright-core/package.json" ] ||
  { echo "dashboard: $here/node_modules has no playwright-core: run scripts/deps.sh --test (npm ci there)" >&2; exit 1; }
exec "$node" "$here/dashboard.mjs"

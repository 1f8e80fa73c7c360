#!/usr/bin/env bash
# deps.sh [--test]: install, from Debian 12's packages, whatever the build
# needs and this machine lacks (the README's first command, run-mqd.sh).
# With --test (the second command, test.sh) also what the test lanes need:
# valgrind, clang for the fuzz lane, PostgreSQL 15 for tests/pg.sh, and
# node, npm and chromium with the browser test's npm packages
# (tests/browser/package-lock.json, by npm ci, again only when the lock
# changed). Idempotent; quiet when nothing is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=false
[ "${1:-}" = --test ] && tests=true

pkgs=(gcc libc6-dev meson ninja-build pkg-config python3
      libnng-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev
      libcmocka-dev libbsd-dev libjansson-dev bsdutils tzdata
      libsodium-dev libinih-dev openssl        # TLS tests, auth (docs/security.md)
      libpq-dev                                # the postgres engine (docs/postgres.md)
      curl)                                    # docs/http.md examples, run by test_http
$tests && pkgs+=(valgrind clang libclang-rt-14-dev # valgrind and fuzz lanes (docs/reliability.md)
                 nodejs npm chromium               # dashboard browser test (docs/http.md)
                 postgresql-15 procps)             # tests/pg.sh: PostgreSQL test clusters (docs/postgres.md)
[ "${MQ_DEPS_EXTRA:-}" ] && read -r -a extra <<<"$MQ_DEPS_EXTRA" && pkgs+=("${extra[@]}")

missing=()
for p in "${pkgs[@]}"; do
  # A node.js that bundles npm (NodeSource's nodejs provides and conflicts
  # with Debian's npm) already has it.
  [ "$p" = npm ] && command -v npm >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
      echo "deps.sh: missing packages (${missing[*]}) and not root; install them with apt-get" >&2
      exit 1
    fi
  else
    SUDO=
  fi
  echo "deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
$tests || exit 0

# playwright-core for tests/browser/dashboard.mjs, pinned by the committed
# lock, into tests/browser/node_modules/ (ignored by git). Debian's chromium
# is the browser: no browser download.
lock=tests/browser/package-lock.json
stamp=tests/browser/node_modules/.mq-lock-sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "deps.sh: npm ci in tests/browser (playwright-core)" >&2
  log=$(mktemp)
  npm_ci() {
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund \
       --loglevel=error "$@" >/dev/null 2>"$log")
  }
  if ! npm_ci; then
    # A TLS-intercepting proxy (a CI sandbox, a company network) re-signs
    # the registry's certificate with a CA this fresh machine does not
    # know. The lock's sha512 integrity hashes still vouch for every
    # package (npm checks them whatever the transport), so retry without
    # the certificate check rather than fail; say so.
    if grep -qE 'SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_UNTRUSTED' "$log"; then
      echo "deps.sh: npm's TLS certificate check failed (a TLS-intercepting proxy?); retrying" \
           "without it: package-lock.json's integrity hashes still verify the packages" >&2
      npm_ci --strict-ssl=false || { cat "$log" >&2; rm -f "$log"; exit 1; }
    else
      cat "$log" >&2
      rm -f "$log"
      exit 1
    fi
  fi
  rm -f "$log"
  echo "$want" >"$stamp"
fi

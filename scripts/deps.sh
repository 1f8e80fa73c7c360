#!/usr/bin/env bash
# deps.sh: install, from Debian 12's packages, whatever the build and tests
# need and this machine lacks. Idempotent; quiet when nothing is missing.
set -euo pipefail

pkgs=(gcc libc6-dev meson ninja-build pkg-config python3
      libnng-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev
      libcmocka-dev libbsd-dev libjansson-dev bsdutils tzdata
      libsodium-dev libinih-dev openssl        # TLS tests, auth (docs/security.md)
      curl                                     # docs/http.md examples, run by test_http
      valgrind clang libclang-rt-14-dev)       # valgrind and fuzz lanes (docs/reliability.md)
[ "${MQ_DEPS_EXTRA:-}" ] && read -r -a extra <<<"$MQ_DEPS_EXTRA" && pkgs+=("${extra[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

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

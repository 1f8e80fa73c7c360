#!/bin/sh
# gen-certs.sh DIR: the certificates the TLS tests use, made at test time
# with the openssl CLI (P-256 keys, 2 days):
#   ca.crt/ca.key          the test CA
#   server.crt/server.key  signed by it, for DNS:localhost and IP:127.0.0.1
#   client.crt/client.key  a client certificate signed by it (mutual TLS)
#   other-ca.crt           an unrelated CA (the "wrong CA" of the tests)
#   other.crt/other.key    a client certificate signed by that other CA
set -eu
d=$1
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -days 2 -subj "/CN=mq test $1" -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() { # name ca cn ext
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
  printf '%s\n' "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
ca ca
ca other-ca
leaf server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client ca mq-test-client "extendedKeyUsage=clientAuth"
leaf other other-ca mq-test-intruder "extendedKeyUsage=clientAuth"

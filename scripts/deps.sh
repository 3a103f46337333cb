#!/usr/bin/env bash
# Installs the Debian 12 packages orderkv needs, if any are missing.
#   scripts/deps.sh build   what building and running needs
#   scripts/deps.sh test    + what the test suite needs (Python gRPC client;
#                           namespaces, nftables, libfaketime and gnuplot for jepsen/;
#                           prometheus for cluster.metrics_prometheus;
#                           openssl for scripts/make-certs.sh, used by cluster.tls;
#                           chromium for cluster.status_page_chromium)
#   scripts/deps.sh ci      + clang/libFuzzer, valgrind, gcovr
# Everything comes from Debian's archive; nothing is downloaded from elsewhere.
# Not root: prints the exact apt-get line to run and exits 1.
set -euo pipefail

level="${1:-build}"
pkgs=(gcc make cmake pkg-config libgrpc-dev libprotobuf-c-dev protobuf-c-compiler
      librocksdb-dev libcmocka-dev libedit-dev libssl-dev)
case "$level" in
  build) ;;
  test) pkgs+=(python3 python3-grpcio python3-grpc-tools python3-protobuf
               iproute2 nftables faketime gnuplot-nox prometheus openssl chromium) ;;
  ci) pkgs+=(python3 python3-grpcio python3-grpc-tools python3-protobuf
             iproute2 nftables faketime gnuplot-nox prometheus openssl chromium
             clang libclang-rt-14-dev valgrind gcovr procps) ;;
  *) echo "usage: scripts/deps.sh build|test|ci" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "orderkv needs these Debian packages; as root, run:" >&2
  echo "  apt-get update && $line" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Packages with a daemon (prometheus) must not start it: the tests run
# their own Prometheus on a free port. policy-rc.d answering 101 tells
# the maintainer scripts not to start services; ours is removed after.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

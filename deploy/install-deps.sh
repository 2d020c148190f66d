#!/usr/bin/env bash
# Installs the Debian 12 packages the build and the tests need. Idempotent:
# skips apt entirely when every package is already installed, so repeated
# test runs on a prepared machine cost nothing.
set -euo pipefail

PKGS=(
  # build
  cmake ninja-build pkg-config g++ clang-format clang
  # gRPC / protobuf / abseil (Debian's, never vendored)
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev
  # the rest of the stack
  libssl-dev libspdlog-dev libfmt-dev libsqlite3-dev
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
  # the metrics endpoint (prometheus-cpp's exposer)
  prometheus-cpp-dev
  # tests
  libgtest-dev libgmock-dev openssl python3 faketime
  # fault suite: an independent gRPC client, and libfiu for I/O errors
  python3-grpcio python3-protobuf fiu-utils
  # deployment tests: the Ansible role and its linter, systemd-analyze and
  # systemctl --root for the units (systemd itself need not run)
  ansible-core ansible-lint systemd
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

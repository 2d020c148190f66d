#!/usr/bin/env bash
# Configures and builds dpreassign into $BUILD_DIR (default: build/).
# Usage: deploy/build.sh [--asan]   (--asan: ASan+UBSan into build-asan/)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SANITIZE=OFF
DEFAULT_DIR="$ROOT/build"
for arg in "$@"; do
  case "$arg" in
    --asan) SANITIZE=ON; DEFAULT_DIR="$ROOT/build-asan" ;;
    *) echo "build.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
BUILD_DIR=${BUILD_DIR:-$DEFAULT_DIR}
JOBS=${JOBS:-$(nproc)}
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDPR_SANITIZE="$SANITIZE" -DDPR_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"

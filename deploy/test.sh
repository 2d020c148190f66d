#!/usr/bin/env bash
# Installs what the build needs (Debian 12, apt), builds with warnings as
# errors, and runs every test. Exit code 0 only if all pass.
#
# Usage: deploy/test.sh [--asan] [--label LABEL]
#   --asan         build with AddressSanitizer + UBSan into build-asan/ and run there
#   --label LABEL  run only tests with that CTest label (unit, integration, fault, bench)
# BUILD_DIR overrides the build folder.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_ARGS=()
CTEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --asan) BUILD_ARGS+=(--asan); export BUILD_DIR=${BUILD_DIR:-$ROOT/build-asan} ;;
    --label) CTEST_ARGS+=(-L "$2"); shift ;;
    *) echo "test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
export BUILD_DIR

bash "$ROOT/deploy/install-deps.sh"
start=$(date +%s)
bash "$ROOT/deploy/build.sh" "${BUILD_ARGS[@]}"
echo "test.sh: build took $(( $(date +%s) - start )) s"

# Sanitizer settings (harmless in the plain build). c-ares leaks 10 bytes in
# its localhost lookup (TOOLCHAIN.md); tests dial IP literals, and the
# suppression covers anything else.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}
export GRPC_DNS_RESOLVER=native

ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2 --timeout 600 "${CTEST_ARGS[@]}"

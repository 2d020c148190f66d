#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) into build-fuzz/ and
# runs each for a fixed time from its committed seed corpus
# (tests/fuzz/corpus/<name>/). New inputs go to build-fuzz/corpus/<name>/,
# crashes to build-fuzz/crashes/. Exit code non-zero on any crash.
# Usage: deploy/fuzz.sh [--seconds N] [TARGET...]   (default 20 s; all targets)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=20
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH="$2"; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) TARGETS+=("$1") ;;
  esac
  shift
done
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(ini nal dpu inventory)
BUILD_DIR=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
bash "$ROOT/deploy/install-deps.sh"
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is needed (apt-get install clang)" >&2; exit 2; }
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDPR_FUZZ=ON -DDPR_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target $(printf '%s_fuzz ' "${TARGETS[@]}")
status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$BUILD_DIR/corpus/$t" "$BUILD_DIR/crashes"
  echo "== fuzzing $t for ${SECONDS_EACH}s"
  if ! "$BUILD_DIR/bin/${t}_fuzz" -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 \
      -artifact_prefix="$BUILD_DIR/crashes/${t}-" -print_final_stats=1 \
      "$BUILD_DIR/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" 2>"$BUILD_DIR/$t.log"; then
    echo "fuzz.sh: $t found a crash; see $BUILD_DIR/$t.log and $BUILD_DIR/crashes/" >&2
    tail -n 30 "$BUILD_DIR/$t.log" >&2
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$BUILD_DIR/$t.log" | tr '\n' ' '
  echo
done
exit $status

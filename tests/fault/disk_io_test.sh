#!/usr/bin/env bash
# RELIABILITY.md rows 7 and 8 with real faults, not the test filesystem:
#   row 7 - the library on a tiny tmpfs fills up mid-import: the error says
#           "library on ... is full: need N MiB ..., have M MiB", no temp
#           byte is left, every legacy file is still in its folder or in the
#           library, and once the tmpfs is made bigger the same command
#           finishes and verify is clean;
#   row 8 - libfiu (fiu-run) fails writes (EIO), reads (EIO) and writes
#           (ENOSPC) at random: the error names the file, nothing is
#           published half-made, a rerun without faults finishes.
# Needs: dp-agent, fiu-run (fiu-utils), and a private mount namespace
# (root, or unprivileged user namespaces) for the tmpfs; exits 77 (skipped)
# without one.
# Usage: tests/fault/disk_io_test.sh BUILD/bin [--trials N] [--no-fiu]
#   --no-fiu  row 7 only: libfiu's preload and an ASan runtime crash together
#             (SIGSEGV at the first injected fault), so the sanitizer build
#             skips row 8
set -euo pipefail
BIN=${1:?usage: disk_io_test.sh BUILD/bin [--trials N] [--no-fiu]}
BIN=$(cd "$BIN" && pwd)
shift
TRIALS=5 FIU=1
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) TRIALS=${2:?}; shift ;;
    --no-fiu) FIU=0 ;;
    *) echo "disk_io_test: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "${DPR_IN_NAMESPACE:-}" ]; then
  # A private mount namespace: the tmpfs vanishes with the test.
  if unshare -m true 2>/dev/null; then
    exec env DPR_IN_NAMESPACE=1 unshare -m --propagation private "$0" "$BIN" --trials "$TRIALS" \
      $([ "$FIU" = 0 ] && echo --no-fiu)
  elif unshare -rm true 2>/dev/null; then
    exec env DPR_IN_NAMESPACE=1 unshare -rm --propagation private "$0" "$BIN" --trials "$TRIALS" \
      $([ "$FIU" = 0 ] && echo --no-fiu)
  fi
  echo "disk_io_test: no mount namespace here (not root, no user namespaces); skipped" >&2
  exit 77
fi
if [ "$FIU" = 1 ]; then
  command -v fiu-run >/dev/null || { echo "disk_io_test: fiu-run missing (apt install fiu-utils)" >&2; exit 1; }
fi

W=$(mktemp -d /tmp/dpr-diskio.XXXXXX)
trap 'umount "$W/content" 2>/dev/null || true; rm -rf "$W"' EXIT
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# 8 packages x 5 files of 0.2-1 MiB (a few repeated), checksummed.
make_corpus() {
  rm -rf "$W/legacy" "$W/sums"
  local p f
  for p in 1 2 3 4 5 6 7 8; do
    mkdir -p "$W/legacy/ABC0000$p/sub"
    for f in 1 2 3 4; do head -c $(((f + p % 3) * 200000)) /dev/urandom >"$W/legacy/ABC0000$p/f$f.bin"; done
    cp "$W/legacy/ABC00001/f1.bin" "$W/legacy/ABC0000$p/sub/shared.bin"
  done
  (cd "$W/legacy" && find . -type f -print0 | xargs -0 sha256sum >"$W/sums")
}

# Every legacy file is where it was with its bytes, or its package is
# committed and verify (below) vouches for the library.
check_nothing_lost() {
  local line sum path pkg
  while read -r sum path; do
    pkg=${path#./}
    pkg=${pkg%%/*}
    if [ -f "$W/legacy/$path" ]; then
      [ "$(sha256sum <"$W/legacy/$path" | cut -d' ' -f1)" = "$sum" ] || fail "$1: legacy $path changed"
    elif ! grep -qs "^$pkg.1=" "$W/content/SCCMContentLib/PkgLib/$pkg.INI"; then
      fail "$1: $path gone but $pkg is not committed"
    fi
  done <"$W/sums"
}

temp_bytes() {
  find "$W/content" -name '*.dprtmp.*' -print0 2>/dev/null | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1
}

convert() { "$BIN/dp-agent" convert --legacy-root "$W/legacy" --content-root "$W/content" --mode copy --jobs 2 --batch-mib 1 "$@"; }

finish_and_verify() {
  local out
  out=$(convert 2>&1) || fail "$1: rerun failed: $out"
  "$BIN/dp-agent" verify --content-root "$W/content" >/dev/null 2>&1 || fail "$1: verify not clean after the rerun"
  [ -z "$(find "$W/legacy" -type f)" ] || fail "$1: legacy files left after the rerun"
}

# --- row 7: a real full disk ----------------------------------------------
make_corpus
mkdir -p "$W/content"
mount -t tmpfs -o size=6m tmpfs "$W/content"
set +e
out=$(convert 2>&1)
rc=$?
set -e
echo "row 7: exit $rc: $(echo "$out" | grep -m1 'is full' | cut -c1-220)"
[ "$rc" -eq 1 ] || fail "row 7: exit $rc, expected 1"
echo "$out" | grep -q "library on '$W/content/SCCMContentLib' is full: need [0-9]* MiB more for this batch, have [0-9]* MiB" ||
  fail "row 7: no 'library on ... is full: need N MiB, have M' message: $out"
leaked=$(temp_bytes)
echo "row 7: leaked temp bytes $leaked; committed before the disk filled: $(ls "$W/content/SCCMContentLib/PkgLib" 2>/dev/null | wc -l) of 8"
[ "$leaked" = 0 ] || fail "row 7: $leaked temp bytes left"
check_nothing_lost "row 7"
mount -o remount,size=64m "$W/content"
finish_and_verify "row 7"
echo "row 7: resumed after the tmpfs grew: $(ls "$W/content/SCCMContentLib/PkgLib" | wc -l) of 8 committed, verify clean"
umount "$W/content"

# --- row 8: injected I/O errors --------------------------------------------
declare -A SEEN
if [ "$FIU" = 0 ]; then
  echo "row 8: skipped (--no-fiu)"
  echo "disk_io_test: all held"
  exit $((FAILS > 0))
fi
# pwrite/reduce: short writes, which must simply be continued.
for fault in "posix/io/rw/pwrite:5" "posix/io/rw/pread:5" "posix/io/rw/pwrite:28" \
  "posix/io/rw/pwrite/reduce:0" "posix/io/rw/pread/reduce:0"; do
  name=${fault%:*}
  errno=${fault#*:}
  for t in $(seq 1 "$TRIALS"); do
    make_corpus
    rm -rf "$W/content"
    set +e
    out=$(fiu-run -x -c "enable_random name=$name,probability=0.03,failinfo=$errno" \
      "$BIN/dp-agent" convert --legacy-root "$W/legacy" --content-root "$W/content" --mode copy \
      --jobs 2 --batch-mib 1 2>&1)
    rc=$?
    set -e
    case $rc in
      0) SEEN["$fault ok"]=$((${SEEN["$fault ok"]:-0} + 1))  # the dice never hit, or a short I/O
        case $name in */reduce) ;; *) if echo "$out" | grep -q '^failed:'; then fail "$fault: exit 0 but: $out"; fi ;; esac ;;
      1)
        case $name in */reduce) fail "$fault: a short read or write stopped the import: $out" ;; esac
        SEEN["$fault failed"]=$((${SEEN["$fault failed"]:-0} + 1))
        want="Input/output error"
        [ "$errno" = 28 ] && want="is full"
        echo "$out" | grep -q "$want" || fail "$fault: no '$want' in: $out"
        echo "$out" | grep -q "'/[^']*'" || fail "$fault: the error names no file: $out"
        ;;
      *) fail "$fault: exit $rc (crash?): $out" ;;
    esac
    leaked=$(temp_bytes)
    [ "$leaked" = 0 ] || fail "$fault: $leaked temp bytes left"
    check_nothing_lost "$fault"
    # Objects under final names are whole: verify without the ones no
    # package uses yet is what the rerun checks.
    finish_and_verify "$fault"
  done
done
for k in "${!SEEN[@]}"; do echo "row 8: $k: ${SEEN[$k]} of $TRIALS"; done | sort
if [ "$FAILS" -ne 0 ]; then
  echo "disk_io_test: $FAILS failure(s)" >&2
  exit 1
fi
echo "disk_io_test: all held"

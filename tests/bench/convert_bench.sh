#!/usr/bin/env bash
# Benchmark of dp-agent convert against two references, in the same run on
# the same filesystem (ISSUE 3): `cp -r` of the legacy tree, and
# `find | xargs -P2 openssl dgst -sha256` over it. Runs are interleaved
# (A B C A B C ...) and medians reported, as TOOLCHAIN.md advises.
#
# Usage: tests/bench/convert_bench.sh [--size 2G] [--rounds 3] [--dir DIR] [--jobs N]
#                                     [--journal-mib N] [--by-size]
#   --dir DIR   work there (default: a fresh loop-mounted ext4 when run as
#               root, else a temp folder; the root filesystem is noisy for
#               file-creating workloads). The loop device does direct I/O to
#               its image file, as a disk would: a buffered loop caches every
#               block twice and its kernel thread copies it, which made
#               `cp -r + sync` vary 2.6-7.9 s here. The image is first
#               filled with non-zero bytes: a virtual disk allocates its
#               blocks on their first write (and may keep blocks written
#               with zeros unallocated), which made `cp -r` on a fresh image
#               2-3x slower for several rounds (4.66 3.34 2.74 2.52 2.11 s
#               against 1.82 1.74 1.48 1.73 1.56 on an hour-old image,
#               interleaved; filled first: 2.30 1.54 1.96 2.02 against
#               2.27 1.38 2.13 1.61).
#   --by-size   then run the same comparison on three parts of the corpus,
#               each with its folders: files under 128 KiB (written through
#               the page cache), 128 KiB to 8 MiB (read whole, written
#               direct), over 8 MiB (streamed). It shows where the time goes:
#               small files cost inodes and renames, the others bytes.
#   --journal-mib N  journal of that loop filesystem (default 1024). mke2fs
#               sizes the journal by the filesystem: 64 MiB for the 12 GiB
#               image, 1 GiB from 128 GiB up, which is what a DP's content
#               drive gets. A small journal fills during the converter's
#               batch syncs and stalls its workers in jbd2 checkpoints
#               (link mode ~8 % slower with 64 MiB here); `cp -r` and
#               `openssl dgst` do not sync and barely notice.
# Last, tests/bench/format_floor.py replays only the namespace work the
# library format requires (no hashing, no durability), for the floor under
# any converter of this format on this filesystem, and adds the CPU of
# hashing the tree for a floor under link mode on 2 cores.
# Needs: build/bin/dp-agent, ../shared/bench/make-corpus.sh, openssl, GNU time.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BUILD_DIR:-$ROOT/build}/bin
SIZE=2G ROUNDS=3 DIR="" JOBS=$(nproc) JOURNAL_MIB=1024 BY_SIZE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --dir) DIR=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --journal-mib) JOURNAL_MIB=$2; shift ;;
    --by-size) BY_SIZE=1 ;;
    *) echo "convert_bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
GEN="$ROOT/../shared/bench/make-corpus.sh"
[ -x "$BIN/dp-agent" ] || { echo "build first (deploy/build.sh)" >&2; exit 2; }
[ -f "$GEN" ] || { echo "missing $GEN" >&2; exit 2; }

MOUNTED="" LOOPDEV=""
# This VM's balloon hands freed guest pages back to the host (virtio free
# page reporting), and the next touch of each such page costs a host fault:
# `cp -r` of the corpus after a cache drop took 3.75-5.55 s with reporting
# on and 1.33-1.54 s with it off (2026-12-03, 4 and 3 runs); the converter,
# whose bulk writes bypass the page cache, moved within its noise. A DP's
# page cache has no such cost, so as root the run switches reporting off
# (an order above the largest there is) and restores it at exit.
REPORTING=/sys/module/page_reporting/parameters/page_reporting_order REPORTING_WAS=""
if [ "$(id -u)" = 0 ] && [ -w "$REPORTING" ]; then
  REPORTING_WAS=$(cat "$REPORTING")
  echo 11 > "$REPORTING"
fi
cleanup() {
  if [ -n "$REPORTING_WAS" ]; then echo "$REPORTING_WAS" > "$REPORTING" || true; fi
  if [ -n "$MOUNTED" ]; then
    umount "$MOUNTED" || true
    if [ -n "$LOOPDEV" ]; then losetup -d "$LOOPDEV" || true; fi
    rm -f "$MOUNTED.img"; rmdir "$MOUNTED" || true
  fi
}
trap cleanup EXIT
if [ -z "$DIR" ]; then
  if [ "$(id -u)" = 0 ]; then
    DIR=$(mktemp -d /tmp/dpr-bench.XXXXXX)
    if [ "$(stat -f -c %T "$(dirname "$DIR")")" = tmpfs ]; then
      truncate -s 12G "$DIR.img"  # memory: nothing to allocate, nothing to fill
    else
      python3 - "$DIR.img" <<'PY'
import mmap, os, sys
flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
try:
    fd = os.open(sys.argv[1], flags | os.O_DIRECT, 0o600)
except OSError:  # a filesystem without O_DIRECT
    fd = os.open(sys.argv[1], flags, 0o600)
block = mmap.mmap(-1, 16 << 20)  # page-aligned, as O_DIRECT needs
block.write(b"\x01" * len(block))
for _ in range((12 << 30) // len(block)):
    os.write(fd, block)
os.fsync(fd)
os.close(fd)
PY
    fi
    # nodiscard: a discard would punch the filled image's blocks out again.
    mkfs.ext4 -q -F -J size="$JOURNAL_MIB" -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 \
      "$DIR.img"
    LOOPDEV=$(losetup --direct-io=on -f --show "$DIR.img") && mount "$LOOPDEV" "$DIR"
    MOUNTED=$DIR
  else
    DIR=$(mktemp -d /tmp/dpr-bench.XXXXXX)
  fi
fi
JOURNAL=$( (dumpe2fs -h "$(df --output=source "$DIR" | tail -1)" 2>/dev/null || true) |
  awk -F: '/^Total journal size/{gsub(/ /, "", $2); print ", journal " $2}')
echo "bench: $SIZE corpus in $DIR ($(df -T "$DIR" | awk 'NR==2{print $2}')$JOURNAL), jobs=$JOBS, rounds=$ROUNDS"
[ -d "$DIR/corpus" ] || bash "$GEN" "$DIR/corpus" "$SIZE" --no-manifest >/dev/null
# The rounds start from an emptied cache, as root can: pages freed now are
# reused by cp -r (after 1.4 GB of other files were read into the cache,
# cp -r took 3.17 s against 1.35-1.76 s after a drop). Where reporting is
# on (above), that is what it costs; the converter did not move either way.
sync
if [ "$(id -u)" = 0 ] && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
  echo "page cache dropped${REPORTING_WAS:+; free page reporting off (order $REPORTING_WAS -> 11) until exit}"
fi
python3 -c "import json;s=json.load(open('$DIR/corpus.stats.json'));print('corpus: %d files, %d packages, %.0f MiB, %.0f MiB unique (dedup ratio %.3f)'%(s['files'],s['packages'],s['bytes']/2**20,s['unique_bytes']/2**20,s['dedup_ratio']))"

convert() {  # MODE: converts $DIR/legacy into $DIR/content, summary on stdout
  "$BIN/dp-agent" convert --legacy-root "$DIR/legacy" --content-root "$DIR/content" \
    --mode "$1" --jobs "$JOBS" -o json
}
# One round that is not counted: a DP drive in service is not fresh. (Most
# of what made a fresh image's first rounds slow, cp -r 2.4 s against
# 1.4-1.7 s after and 7.8 s once, was the virtual disk allocating on first
# write; the fill above takes that out.)
rm -rf "$DIR/legacy" "$DIR/content"; cp -r "$DIR/corpus" "$DIR/legacy"; sync
convert copy >/dev/null
now() { date +%s.%N; }
secs() { python3 -c "print('%.3f' % ($2 - $1))"; }
# Bytes the filesystem's device wrote (sectors written, /sys/class/block/DEV/stat),
# to compare what each run makes the disk do; empty if the stat is not there.
DEVSTAT=/sys/class/block/$(basename "$(df --output=source "$DIR" | tail -1)")/stat
written() { if [ -r "$DEVSTAT" ]; then echo $(($(awk '{print $7}' "$DEVSTAT") * 512)); fi; }
mib_between() { if [ -n "$1" ] && [ -n "$2" ]; then echo $((($2 - $1) >> 20)); fi; }
declare -a CP CPS DGST COPY LINK RSS_COPY RSS_LINK W_CPS W_COPY W_LINK
for r in $(seq 1 "$ROUNDS"); do
  for mode in copy link; do
    rm -rf "$DIR/legacy" "$DIR/content"; sync; sleep 2
    w0=$(written); t0=$(now); cp -r "$DIR/corpus" "$DIR/legacy"; t1=$(now); sync; t2=$(now)
    w1=$(written)
    if [ "$mode" = copy ]; then
      CP+=("$(secs "$t0" "$t1")"); CPS+=("$(secs "$t0" "$t2")"); W_CPS+=("$(mib_between "$w0" "$w1")")
    fi
    if [ "$mode" = copy ]; then
      sleep 2
      t0=$(now)
      (cd "$DIR/legacy" && find . -type f -print0 | xargs -0 -P2 -n256 openssl dgst -sha256 >/dev/null)
      t1=$(now); DGST+=("$(secs "$t0" "$t1")")
    fi
    sleep 2
    w0=$(written); t0=$(now)
    /usr/bin/time -f '%M' -o "$DIR/rss" "$BIN/dp-agent" convert --legacy-root "$DIR/legacy" \
      --content-root "$DIR/content" --mode "$mode" --jobs "$JOBS" -o json > "$DIR/summary.json"
    t1=$(now); w1=$(written)
    if [ "$mode" = copy ]; then
      COPY+=("$(secs "$t0" "$t1")"); RSS_COPY+=("$(cat "$DIR/rss")"); W_COPY+=("$(mib_between "$w0" "$w1")")
    else
      LINK+=("$(secs "$t0" "$t1")"); RSS_LINK+=("$(cat "$DIR/rss")"); W_LINK+=("$(mib_between "$w0" "$w1")")
    fi
    echo "round $r $mode: $(cat "$DIR/summary.json")"
  done
done
"$BIN/dp-agent" verify --content-root "$DIR/content" | tail -1
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
mcp=$(median "${CP[@]}"); mcps=$(median "${CPS[@]}"); md=$(median "${DGST[@]}"); mc=$(median "${COPY[@]}"); ml=$(median "${LINK[@]}")
rc=$(median "${RSS_COPY[@]}"); rl=$(median "${RSS_LINK[@]}")
echo
echo "cp -r                     median ${mcp}s   runs: ${CP[*]}"
echo "cp -r + sync              median ${mcps}s   runs: ${CPS[*]}"
echo "openssl dgst -P2          median ${md}s   runs: ${DGST[*]}"
echo "dp-agent convert copy     median ${mc}s   runs: ${COPY[*]}   peak RSS $((rc / 1024)) MiB"
echo "dp-agent convert link     median ${ml}s   runs: ${LINK[*]}   peak RSS $((rl / 1024)) MiB"
# Copy mode makes the disk write about what cp -r + sync does (the unique
# bytes, plus journal and INIs), which is why it is compared with that too.
if [ -n "${W_CPS[0]}" ]; then
  echo "device writes (MiB)       cp -r + sync $(median "${W_CPS[@]}"), copy $(median "${W_COPY[@]}"), link $(median "${W_LINK[@]}")   ($DEVSTAT)"
fi
python3 -c "print('ratios: copy/cp = %.2f (target <= 1.5; %.2f against cp -r + sync), link/dgst = %.2f (target <= 1.5)' % ($mc/$mcp, $mc/$mcps, $ml/$md))"
# The same ratios round by round: each round's runs share the machine's
# state of the moment (which drifts by 10-20 % between rounds here), so the
# spread of these says how firmly a target is met or missed.
join() { local IFS=,; echo "$*"; }
python3 - "$(join "${CP[@]}")" "$(join "${CPS[@]}")" "$(join "${DGST[@]}")" \
  "$(join "${COPY[@]}")" "$(join "${LINK[@]}")" <<'PY'
import statistics, sys
cp, cps, dgst, copy, link = ([float(x) for x in a.split(',')] for a in sys.argv[1:])
for name, num, den in (('copy/cp', copy, cp), ('copy/(cp -r + sync)', copy, cps),
                       ('link/dgst', link, dgst)):
    r = [n / d for n, d in zip(num, den)]
    print('per round %-19s %s   (median %.2f, best %.2f, worst %.2f)' % (
        name, ' '.join('%.2f' % x for x in r), statistics.median(r), min(r), max(r)))
PY
rm -rf "$DIR/legacy" "$DIR/content" "$DIR/floor"; cp -r "$DIR/corpus" "$DIR/legacy"; mkdir "$DIR/floor"; sync
# The CPU that reading and hashing the tree takes, without the reference's
# process start-ups (one openssl per 256 files: 0.37 CPU-s of its 2.1 here):
# one process hashes every file.
(cd "$DIR/legacy" && find . -type f -print0 |
  /usr/bin/time -f '%U %S' -o "$DIR/hashcpu" xargs -0 -s 1900000 openssl dgst -sha256 >/dev/null)
FLOOR=$(python3 "$ROOT/tests/bench/format_floor.py" "$DIR/legacy" "$DIR/floor")
echo "$FLOOR"
# Link mode does both on 2 cores: half their CPU estimates a floor under its
# wall time with no overhead, sync or idle core in it. An estimate: the
# format's user time is left out (it is Python's), but its sys time comes
# from one thread and openssl reads in smaller blocks than the converter.
# Near 1.5x the reference, the link-mode target leaves no room that day:
# the format's file operations, not hashing, bound it.
python3 - "$FLOOR" "$(cat "$DIR/hashcpu")" "$md" <<'PY'
import re, sys
fsys = float(re.search(r'sys ([0-9.]+)', sys.argv[1]).group(1))
hu, hs = (float(x) for x in sys.argv[2].split())
dgst = float(sys.argv[3])
floor = (fsys + hu + hs) / 2
print('link-mode floor on 2 cores: (format sys %.3f + hashing %.3f) / 2 = %.3f s = %.2fx '
      'openssl dgst -P2 (target <= 1.5)' % (fsys, hu + hs, floor, floor / dgst))
PY
rm -rf "$DIR/legacy" "$DIR/floor" "$DIR/hashcpu"

[ "$BY_SIZE" = 1 ] || exit 0
echo
part_files() {  # NAME -> find's size test for that part (bytes)
  case "$1" in
    small) echo "-size -131072c" ;;
    mid) echo "-size +131071c -size -8388609c" ;;
    big) echo "-size +8388608c" ;;
  esac
}
for part in small mid big; do
  rm -rf "$DIR/part"; mkdir "$DIR/part"
  # shellcheck disable=SC2046  # the size test is several words
  (cd "$DIR/corpus" && find . -type f $(part_files $part) -print0 |
    xargs -0 -r cp --parents -p -t "$DIR/part")
  files=$(find "$DIR/part" -type f | wc -l); mib=$(du -sm --apparent-size "$DIR/part" | cut -f1)
  declare -a PCPS=() PCOPY=() PLINK=()
  for r in $(seq 1 "$ROUNDS"); do
    for mode in copy link; do
      rm -rf "$DIR/legacy" "$DIR/content"; sync; sleep 1
      t0=$(now); cp -r "$DIR/part" "$DIR/legacy"; sync; t1=$(now)
      if [ "$mode" = copy ]; then PCPS+=("$(secs "$t0" "$t1")"); fi
      sleep 1
      t0=$(now)
      convert "$mode" >/dev/null
      t1=$(now)
      if [ "$mode" = copy ]; then PCOPY+=("$(secs "$t0" "$t1")"); else PLINK+=("$(secs "$t0" "$t1")"); fi
    done
  done
  a=$(median "${PCPS[@]}"); c=$(median "${PCOPY[@]}"); l=$(median "${PLINK[@]}")
  python3 -c "print('part %-5s %6d files %5d MiB: cp -r + sync %.3fs, copy %.3fs (%.2fx), link %.3fs (%.2fx)' % ('$part', $files, $mib, $a, $c, $c/$a, $l, $l/$a))"
done
rm -rf "$DIR/part" "$DIR/legacy" "$DIR/content"

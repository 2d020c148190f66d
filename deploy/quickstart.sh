#!/usr/bin/env bash
# From a fresh Debian 12 machine to a finished reassignment: installs what it
# needs (apt), builds, makes a throw-away site with the project's own
# commands (CA and certificates, a source and a destination site, one legacy
# DP with 30 packages that share some files, one package that keeps its
# share), starts dp-controller and dp-agent on 127.0.0.1, reassigns the DP
# with live progress, checks the library, prints a summary and stops the
# daemons.
#
# Usage: deploy/quickstart.sh [--workdir DIR] [--keep]
#   --workdir DIR  put the site there (default: a new temp folder)
#   --keep         leave the workdir in place (it is kept anyway when a step fails)
# The last line printed names the workdir.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORKDIR=""
KEEP=0
PACKAGES=30
while [ $# -gt 0 ]; do
  case "$1" in
    --workdir) WORKDIR="$2"; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "quickstart.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$WORKDIR" ]; then
  WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/dpreassign-demo.XXXXXX")
else
  mkdir -p "$WORKDIR"
  WORKDIR=$(cd "$WORKDIR" && pwd)
  if [ -e "$WORKDIR/pki/ca.key" ]; then
    echo "quickstart.sh: $WORKDIR already holds a site; pick an empty --workdir" >&2
    exit 2
  fi
fi
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
export BUILD_DIR
BIN="$BUILD_DIR/bin"
step() { printf '\n== %s\n' "$*"; }

PIDS=()
FAILED=1
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$FAILED" = 1 ]; then
    echo "quickstart.sh: failed; logs are in $WORKDIR (controller/logs, dp01/logs, *.out)" >&2
    echo "workdir: $WORKDIR"
  elif [ "$KEEP" = 0 ]; then
    rm -rf "$WORKDIR"
    echo "workdir: $WORKDIR (removed; pass --keep to keep it)"
  else
    echo "workdir: $WORKDIR"
  fi
}
trap cleanup EXIT

step "installing dependencies (apt)"
bash "$ROOT/deploy/install-deps.sh"
step "building into $BUILD_DIR"
bash "$ROOT/deploy/build.sh" >/dev/null
echo "built: $(ls "$BIN" | tr '\n' ' ')"

step "making the site PKI with dpctl tls"
PKI="$WORKDIR/pki"
"$BIN/dpctl" tls ca create --dir "$PKI"
"$BIN/dpctl" tls cert create --dir "$PKI" --role controller --name site01.contoso.com --ip 127.0.0.1
"$BIN/dpctl" tls cert create --dir "$PKI" --role agent --name DP01.CONTOSO.COM --ip 127.0.0.1
"$BIN/dpctl" tls cert create --dir "$PKI" --role admin --name admin

step "making a legacy DP: $PACKAGES packages in dp01/legacy/SMSPKGD\$, some files shared"
LEGACY="$WORKDIR/dp01/legacy/SMSPKGD\$"
mkdir -p "$LEGACY" "$WORKDIR/controller" "$WORKDIR/dp01/content"
# Files every few packages share (the runtime, the readme) are what the
# single-instance store keeps once.
mkdir -p "$WORKDIR/.shared"
head -c 3145728 /dev/urandom >"$WORKDIR/.shared/vcredist_x64.exe"
head -c 1048576 /dev/urandom >"$WORKDIR/.shared/dotnetfx.cab"
printf 'Contoso software package\r\nInstall with setup.exe /quiet\r\n' >"$WORKDIR/.shared/readme.txt"
PKG_JSON=""
DP_JSON=""
for i in $(seq 1 "$PACKAGES"); do
  id=$(printf 'S07%05X' "$i")
  d="$LEGACY/$id"
  mkdir -p "$d/x64" "$d/Support Files"
  head -c $(( (i % 7 + 1) * 262144 )) /dev/urandom >"$d/setup.exe"
  head -c $(( (i % 5 + 1) * 16384 )) /dev/urandom >"$d/x64/app.msi"
  cp "$WORKDIR/.shared/readme.txt" "$d/readme.txt"
  if [ $((i % 3)) = 0 ]; then cp "$WORKDIR/.shared/vcredist_x64.exe" "$d/Support Files/"; fi
  if [ $((i % 4)) = 0 ]; then cp "$WORKDIR/.shared/dotnetfx.cab" "$d/Support Files/"; fi
  bytes=$(find "$d" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
  keep=false
  if [ "$i" = 2 ]; then keep=true; fi  # run from the DP: its package share stays
  PKG_JSON+="${PKG_JSON:+,}{\"id\":\"$id\",\"name\":\"Demo package $i\",\"source_version\":$(( i % 3 + 1 )),\"keep_package_share\":$keep,\"bytes\":$bytes}"
  DP_JSON+="${DP_JSON:+,}{\"id\":\"$id\"}"
done
rm -rf "$WORKDIR/.shared"
echo "$(find "$LEGACY" -type f | wc -l) files, $(du -sh "$LEGACY" | cut -f1) in $LEGACY"

step "starting dp-controller and dp-agent on 127.0.0.1"
cat > "$WORKDIR/controller/controller.toml" <<TOML
data_dir = "."
listen = "127.0.0.1:0"
log_level = "info"
[tls]
cert = "../pki/site01.contoso.com.crt"
key = "../pki/site01.contoso.com.key"
ca = "../pki/ca.crt"
[distmgr]
inbox_scan_seconds = 2
TOML
cat > "$WORKDIR/dp01/agent.toml" <<TOML
data_dir = "."
content_root = "content"
legacy_root = "legacy"
listen = "127.0.0.1:0"
[tls]
cert = "../pki/DP01.CONTOSO.COM.crt"
key = "../pki/DP01.CONTOSO.COM.key"
ca = "../pki/ca.crt"
TOML
"$BIN/dp-controller" --config "$WORKDIR/controller/controller.toml" \
  >"$WORKDIR/controller.out" 2>&1 &
PIDS+=($!)
"$BIN/dp-agent" --config "$WORKDIR/dp01/agent.toml" >"$WORKDIR/agent.out" 2>&1 &
PIDS+=($!)
wait_addr() {
  for _ in $(seq 1 150); do
    [ -s "$1" ] && { cat "$1"; return 0; }
    sleep 0.1
  done
  echo "quickstart.sh: $2 did not start; see $3" >&2
  return 1
}
CONTROLLER=$(wait_addr "$WORKDIR/controller/listen.addr" dp-controller "$WORKDIR/controller.out")
AGENT=$(wait_addr "$WORKDIR/dp01/listen.addr" dp-agent "$WORKDIR/agent.out")
echo "dp-controller admin API on $CONTROLLER, dp-agent on $AGENT"

export DPCTL_CONTROLLER="$CONTROLLER" DPCTL_CERT="$PKI/admin.crt" DPCTL_KEY="$PKI/admin.key" \
  DPCTL_CA="$PKI/ca.crt"
step "dpctl status (mutual TLS, admin certificate)"
"$BIN/dpctl" status

step "dpctl inventory import: source site S07 shares DP01 with destination site P01"
cat > "$WORKDIR/inventory.json" <<JSON
{"format": 1,
 "sites": [{"code": "S07", "name": "Contoso 2007", "hierarchy": "source", "version": "4.00.6487.2000"},
           {"code": "P01", "name": "Contoso 2012", "hierarchy": "destination", "version": "5.00.7958.1000"}],
 "site_systems": [{"server": "SS07.CONTOSO.COM", "site": "S07", "roles": ["SMS Site Server", "SMS Site System"]}],
 "packages": [$PKG_JSON],
 "distribution_points": [{"dpid": 4, "server": "DP01.CONTOSO.COM", "site": "S07", "drive": "D:",
   "agent_endpoint": "$AGENT", "shared_in": "P01", "packages": [$DP_JSON]}]}
JSON
"$BIN/dpctl" inventory import "$WORKDIR/inventory.json"
"$BIN/dpctl" dp list

step "dpctl reassign DP01.CONTOSO.COM --to P01 --dry-run"
"$BIN/dpctl" reassign DP01.CONTOSO.COM --to P01 --dry-run

step "dpctl reassign DP01.CONTOSO.COM --to P01 (the nine steps, watched live)"
START=$(date +%s.%N)
"$BIN/dpctl" reassign DP01.CONTOSO.COM --to P01
END=$(date +%s.%N)

step "checking the result"
"$BIN/dpctl" dp verify DP01.CONTOSO.COM
LIB="$WORKDIR/dp01/content/SCCMContentLib"
for f in DataLib FileLib PkgLib; do
  [ -d "$LIB/$f" ] || { echo "quickstart.sh: $LIB/$f is missing" >&2; exit 1; }
done
LEFT=$(ls "$LEGACY")
echo "ContentLib holds DataLib, FileLib, PkgLib; $(ls "$LIB/PkgLib" | wc -l) packages in PkgLib"
echo "legacy folders left in SMSPKGD\$ (kept for the package that runs from the DP): $LEFT"
[ "$LEFT" = "S0700002" ] || { echo "quickstart.sh: unexpected legacy folders left" >&2; exit 1; }
"$BIN/dpctl" dp show DP01.CONTOSO.COM | head -n 3

step "logs (CMTrace format; open them with CMTrace or OneTrace)"
echo "--- $WORKDIR/controller/logs/distmgr.log"
grep -a "completed\|6.dpu\|step 7 done" "$WORKDIR/controller/logs/distmgr.log" | tail -n 3 | cut -c1-220
echo "--- $WORKDIR/dp01/logs/smsdpprov.log"
tail -n 2 "$WORKDIR/dp01/logs/smsdpprov.log" | cut -c1-220

step "summary"
printf 'DP01.CONTOSO.COM moved from S07 to P01 and its %s packages converted in place in %.1f s, no content sent over the network.\n' \
  "$PACKAGES" "$(awk -v a="$START" -v b="$END" 'BEGIN { print b - a }')"
FAILED=0

#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running demo site: installs what it
# needs (apt), builds, makes a throw-away site with the project's own
# commands, starts dp-controller and dp-agent on 127.0.0.1, talks to them
# over mutual TLS, prints a summary and stops the daemons.
#
# Usage: deploy/quickstart.sh [--workdir DIR] [--keep]
#   --workdir DIR  put the site there (default: a new temp folder)
#   --keep         leave the workdir in place (it is kept anyway when a step fails)
# The last line printed names the workdir.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORKDIR=""
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --workdir) WORKDIR="$2"; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
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
"$BIN/dpctl" tls cert create --dir "$PKI" --role agent --name dp01.contoso.com --ip 127.0.0.1
"$BIN/dpctl" tls cert create --dir "$PKI" --role admin --name admin

step "starting dp-controller and dp-agent on 127.0.0.1"
mkdir -p "$WORKDIR/controller" "$WORKDIR/dp01/legacy/SMSPKGD\$" "$WORKDIR/dp01/content"
cat > "$WORKDIR/controller/controller.toml" <<TOML
data_dir = "."
listen = "127.0.0.1:0"
log_level = "info"
[tls]
cert = "../pki/site01.contoso.com.crt"
key = "../pki/site01.contoso.com.key"
ca = "../pki/ca.crt"
TOML
cat > "$WORKDIR/dp01/agent.toml" <<TOML
data_dir = "."
content_root = "content"
legacy_root = "legacy/SMSPKGD\$"
listen = "127.0.0.1:0"
[tls]
cert = "../pki/dp01.contoso.com.crt"
key = "../pki/dp01.contoso.com.key"
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

step "the agent refuses anyone but a controller (here: the admin certificate)"
if DPCTL_CONTROLLER="$AGENT" DPCTL_TLS_SERVER_NAME=dp01.contoso.com "$BIN/dpctl" status 2>&1; then
  echo "quickstart.sh: the agent accepted an admin certificate" >&2
  exit 1
fi

step "logs (CMTrace format)"
echo "--- $WORKDIR/controller/logs/distmgr.log"
tail -n 3 "$WORKDIR/controller/logs/distmgr.log"
echo "--- $WORKDIR/dp01/logs/smsdpprov.log"
tail -n 3 "$WORKDIR/dp01/logs/smsdpprov.log"

step "summary"
echo "The site is up: CA and certificates made by dpctl, both daemons serving mutual TLS."
echo "Reassignment and conversion arrive with the next issues; this demo stops here."
FAILED=0

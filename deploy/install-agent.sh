#!/usr/bin/env bash
# Installs dp-agent on one DP: service user, folders with their modes, the
# binary, a key made here (it never leaves this host), the config, and the
# systemd unit, enabled.
#
# The certificate comes in two runs, so the key stays on the DP:
#   1. install-agent.sh --name DP01.CONTOSO.COM --ca ca.crt
#      -> makes the key and <etc>/tls/agent.csr, then exits 3 ("pending").
#   2. on the CA holder:  dpctl tls cert sign --dir PKI --csr agent.csr \
#          --role agent --name DP01.CONTOSO.COM --ip <DP address>
#   3. install-agent.sh --name DP01.CONTOSO.COM --ca ca.crt --cert DP01.CONTOSO.COM.crt
# A pair made elsewhere can be given with --cert and --key instead.
#
# --root DIR installs into a scratch tree (tests, image builds): no user is
# made, files belong to the caller, paths in the config are relative to it
# (so the tree can be started in place) and the unit is enabled with
# `systemctl --root`. Re-running is safe: the key is never replaced, the
# config and unit are rewritten, content is never touched.
# Exit codes: 0 installed, 2 bad arguments, 3 waiting for a signed certificate,
# 1 anything else.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --name NAME            the DP server name (its certificate's CN)      [required]
  --ca FILE              the site CA certificate                         [required]
  --cert FILE            the DP's certificate (signed by the site CA)
  --key FILE             a key made elsewhere (with --cert)
  --root DIR             install below DIR instead of /
  --bin-dir DIR          where dp-agent is (default: build/bin beside this script)
  --content-root DIR     library and legacy package folders (default /srv/dpcontent)
  --legacy-root DIR      where legacy package folders are listed from (default: none)
  --data-dir DIR         agent state and logs (default /var/lib/dpreassign/agent)
  --listen HOST:PORT     agent API address (default 0.0.0.0:9444)
  --metrics-listen H:P   Prometheus endpoint (default: off)
  --user NAME            service user (default dpagent)
  --no-enable            install the unit but do not enable or start it
EOF
}

name="" ca="" cert="" key="" root="/" bin_dir="" content_root="/srv/dpcontent" legacy_root=""
data_dir="/var/lib/dpreassign/agent" listen="0.0.0.0:9444" metrics_listen="" user="dpagent"
enable=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --ca) ca="$2"; shift 2 ;;
    --cert) cert="$2"; shift 2 ;;
    --key) key="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --content-root) content_root="$2"; shift 2 ;;
    --legacy-root) legacy_root="$2"; shift 2 ;;
    --data-dir) data_dir="$2"; shift 2 ;;
    --listen) listen="$2"; shift 2 ;;
    --metrics-listen) metrics_listen="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --no-enable) enable=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-agent: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "install-agent: $*" >&2; exit "${2:-1}"; }
[[ -n "$name" ]] || die "--name is required (the DP server name)" 2
[[ "$name" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || die "--name '$name' is not a host name" 2
[[ -n "$ca" && -r "$ca" ]] || die "--ca must name the site CA certificate (got '${ca}')" 2
[[ -z "$key" || -n "$cert" ]] || die "--key needs --cert (a pair made elsewhere)" 2
for p in "$content_root" "$data_dir"; do
  [[ "$p" == /* ]] || die "'$p' must be an absolute path on the DP" 2
done
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="${bin_dir:-$here/../build/bin}"
[[ -x "$bin_dir/dp-agent" ]] || die "no dp-agent in '$bin_dir' (build first, or give --bin-dir)" 2
root="$(mkdir -p "$root" && cd "$root" && pwd)"
scratch=0
[[ "$root" == "/" ]] || scratch=1
r() { if [[ $scratch == 1 ]]; then echo "$root$1"; else echo "$1"; fi; }

etc="$(r /etc/dpreassign)"
tls="$etc/tls"
unit_dir="$(r /etc/systemd/system)"
bin="$(r /usr/local/bin)"

# --- user ------------------------------------------------------------------
if [[ $scratch == 0 ]]; then
  [[ $EUID == 0 ]] || die "installing into / needs root (or use --root DIR)"
  if ! getent passwd "$user" >/dev/null; then
    useradd --system --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin "$user"
    echo "created service user $user"
  fi
  owner="$user" group="$(id -gn "$user")"
else
  owner="$(id -un)" group="$(id -gn)"
fi

# --- folders: config readable by the service only, key by nobody else -------
install -d -m 0755 "$etc" "$bin" "$unit_dir"
install -d -m 0750 -o "$(id -un)" -g "$group" "$tls"
install -d -m 0750 -o "$owner" -g "$group" "$(r "$data_dir")"
if [[ ! -d "$(r "$content_root")" ]]; then
  install -d -m 0750 -o "$owner" -g "$group" "$(r "$content_root")"
fi
install -m 0755 "$bin_dir/dp-agent" "$bin/dp-agent"
install -m 0644 "$ca" "$tls/ca.crt"

# --- key and certificate ------------------------------------------------------
if [[ -n "$key" ]]; then
  if [[ -e "$tls/agent.key" ]] && ! cmp -s "$key" "$tls/agent.key"; then
    die "$tls/agent.key exists and differs from --key; not replacing a key (move it away first)"
  fi
  install -m 0640 -g "$group" "$key" "$tls/agent.key"
elif [[ ! -e "$tls/agent.key" ]]; then
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
     -out "$tls/agent.key.tmp" 2>/dev/null)
  mv "$tls/agent.key.tmp" "$tls/agent.key"
  chgrp "$group" "$tls/agent.key"; chmod 0640 "$tls/agent.key"
  echo "made the agent's key $tls/agent.key (it stays on this host)"
fi
if [[ -z "$cert" ]]; then
  openssl req -new -key "$tls/agent.key" -subj "/CN=$name/OU=agent" -out "$tls/agent.csr"
  chmod 0644 "$tls/agent.csr"
  cat >&2 <<EOF
install-agent: waiting for a certificate. Sign the request on the CA holder:
  dpctl tls cert sign --dir <pki> --csr $tls/agent.csr --role agent --name $name --ip <DP address>
then run this again with --cert <the .crt> (the key stays here).
EOF
  exit 3
fi
pub_key="$(openssl pkey -in "$tls/agent.key" -pubout 2>/dev/null)" || die "cannot read $tls/agent.key"
pub_cert="$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null)" || die "'$cert' is not a PEM certificate"
[[ "$pub_key" == "$pub_cert" ]] || die "'$cert' is not for this DP's key $tls/agent.key (signed from another request?)"
openssl verify -CAfile "$tls/ca.crt" "$cert" >/dev/null 2>&1 || die "'$cert' is not signed by the CA '$ca'"
subject="$(openssl x509 -in "$cert" -noout -subject -nameopt multiline)"
grep -q "commonName *= *$name\$" <<<"$subject" || die "'$cert' is not for '$name': $subject"
grep -q "organizationalUnitName *= *agent\$" <<<"$subject" || die "'$cert' is not an agent certificate"
install -m 0644 "$cert" "$tls/agent.crt"
rm -f "$tls/agent.csr"

# --- config -----------------------------------------------------------------
# Paths as the daemon will see them; relative to the file in a scratch root.
cfg_path() {
  if [[ $scratch == 1 ]]; then realpath -m --relative-to="$etc" "$root$1"; else echo "$1"; fi
}
tmp="$(mktemp "$etc/.agent.toml.XXXXXX")"
{
  echo "# written by deploy/install-agent.sh for $name; docs/CONFIG.md lists every key"
  echo "data_dir = \"$(cfg_path "$data_dir")\""
  echo "content_root = \"$(cfg_path "$content_root")\""
  [[ -z "$legacy_root" ]] || echo "legacy_root = \"$(cfg_path "$legacy_root")\""
  echo "listen = \"$listen\""
  echo "log_level = \"info\""
  echo "[tls]"
  echo "cert = \"$(cfg_path /etc/dpreassign/tls/agent.crt)\""
  echo "key = \"$(cfg_path /etc/dpreassign/tls/agent.key)\""
  echo "ca = \"$(cfg_path /etc/dpreassign/tls/ca.crt)\""
  echo "reload_seconds = 60"
  if [[ -n "$metrics_listen" ]]; then
    echo "[metrics]"
    echo "listen = \"$metrics_listen\""
  fi
} >"$tmp"
chmod 0640 "$tmp"; chgrp "$group" "$tmp"
mv "$tmp" "$etc/agent.toml"

# --- unit -------------------------------------------------------------------
rw_paths="$data_dir $content_root"
[[ -z "$legacy_root" || "$legacy_root" == "$content_root"/* ]] || rw_paths="$rw_paths $legacy_root"
sed -e "s|^User=.*|User=$user|" -e "s|^Group=.*|Group=$user|" \
    -e "s|^ReadWritePaths=.*|ReadWritePaths=$rw_paths|" \
    "$here/systemd/dp-agent.service" >"$unit_dir/dp-agent.service"
chmod 0644 "$unit_dir/dp-agent.service"

if [[ $enable == 1 ]]; then
  if [[ $scratch == 1 ]] && command -v systemctl >/dev/null; then
    systemctl --root="$root" enable dp-agent.service
  elif [[ $scratch == 1 ]]; then
    # What `systemctl enable` would do, for a tree built without systemd.
    install -d -m 0755 "$unit_dir/multi-user.target.wants"
    ln -sfn /etc/systemd/system/dp-agent.service "$unit_dir/multi-user.target.wants/dp-agent.service"
  elif [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
    systemctl enable dp-agent.service
    systemctl restart dp-agent.service
  else
    systemctl enable dp-agent.service
    echo "install-agent: systemd is not running here; the unit is enabled for the next boot" >&2
  fi
fi
echo "dp-agent installed for $name: config $etc/agent.toml, unit $unit_dir/dp-agent.service"

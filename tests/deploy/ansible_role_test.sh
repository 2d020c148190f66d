#!/usr/bin/env bash
# The Ansible role deploy/ansible/roles/dp_agent run against localhost
# (local connection) into a scratch root: the DP's key is made "on the DP",
# its request signed on the "CA host" (both localhost here, so the key's
# staying put is checked by looking at the CA folder), the installed agent
# starts from the tree, a second run changes nothing, and ansible-lint is
# clean. Not tested here: a real remote DP over SSH, become, the service
# under a running systemd (no systemd in CI; install_agent plays its notify
# socket instead).
#   tests/deploy/ansible_role_test.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin="$(cd "$1" && pwd)"; src="$(cd "$2" && pwd)"
command -v ansible-playbook >/dev/null || { echo "ansible-playbook missing (deploy/install-deps.sh installs it)"; exit 1; }
work="$(mktemp -d /tmp/dpr-ansible.XXXXXX)"
agent_pid=""
cleanup() { [[ -z "$agent_pid" ]] || kill "$agent_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL $*"; exit 1; }

"$bin/dpctl" tls ca create --dir "$work/pki" >/dev/null
cat >"$work/inventory.ini" <<INV
[dp_agents]
dp01.contoso.com ansible_connection=local ansible_python_interpreter=/usr/bin/python3
localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3
INV
cat >"$work/play.yml" <<PLAY
---
- name: dp_agent into a scratch root
  hosts: dp01.contoso.com
  gather_facts: false
  roles:
    - role: dp_agent
      vars:
        dp_agent_root: "$work/root"
        dp_agent_ip_addresses: ["127.0.0.1"]
        dp_agent_ca_host: localhost
        dp_agent_ca_dir: "$work/pki"
        dp_agent_dpctl: "$bin/dpctl"
        dp_agent_binary: "$bin/dp-agent"
        dp_agent_user: "$(id -un)"
        dp_agent_group: "$(id -gn)"
        dp_agent_listen: "127.0.0.1:0"
        dp_agent_metrics_listen: "127.0.0.1:0"
PLAY
export ANSIBLE_ROLES_PATH="$src/deploy/ansible/roles" ANSIBLE_NOCOLOR=1 ANSIBLE_LOCAL_TEMP="$work/.ansible-tmp"
export ANSIBLE_REMOTE_TEMP="$work/.ansible-remote"
t0=$(date +%s.%N)
ansible-playbook -i "$work/inventory.ini" "$work/play.yml" >"$work/run1.out" 2>&1 || { cat "$work/run1.out"; fail "first run"; }
printf 'ok   first run (%.1f s): %s\n' "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" "$(grep -o 'dp01.contoso.com *: ok=[0-9]* *changed=[0-9]*' "$work/run1.out")"

tls="$work/root/etc/dpreassign/tls"
[[ "$(stat -c %a "$tls/agent.key")" == 640 ]] || fail "key mode $(stat -c %a "$tls/agent.key")"
[[ ! -e "$tls/agent.csr" ]] || fail "request left behind"
openssl verify -CAfile "$work/pki/ca.crt" "$tls/agent.crt" >/dev/null || fail "certificate does not chain to the CA"
[[ "$(openssl pkey -in "$tls/agent.key" -pubout)" == "$(openssl x509 -in "$tls/agent.crt" -noout -pubkey)" ]] || fail "certificate not for the DP's key"
openssl x509 -in "$tls/agent.crt" -noout -subject | grep -q "CN = dp01.contoso.com" || fail "wrong CN"
openssl x509 -in "$tls/agent.crt" -noout -ext subjectAltName | grep -q "IP Address:127.0.0.1" || fail "no IP SAN"
[[ "$(ls "$work/pki")" == "$(printf 'ca.crt\nca.key')" ]] || fail "the CA folder holds more than the CA: $(ls "$work/pki")"
echo "ok   key made on the DP (0640), certificate for it from the CA, nothing else in the CA folder"
unit="$work/root/etc/systemd/system/dp-agent.service"
grep -q "^ReadWritePaths=/var/lib/dpreassign/agent /srv/dpcontent$" "$unit" || fail "unit paths: $(grep ReadWritePaths "$unit")"
grep -q "^User=$(id -un)$" "$unit" || fail "unit user"
grep -q "^Type=notify$" "$unit" || fail "unit type"
echo "ok   unit from deploy/systemd with the role's user and paths"

ansible-playbook -i "$work/inventory.ini" "$work/play.yml" >"$work/run2.out" 2>&1 || { cat "$work/run2.out"; fail "second run"; }
grep -q "dp01.contoso.com *: ok=[0-9]* *changed=0 " "$work/run2.out" || { cat "$work/run2.out"; fail "second run changed something"; }
echo "ok   second run: changed=0"

"$work/root/usr/local/bin/dp-agent" --config "$work/root/etc/dpreassign/agent.toml" >"$work/agent.out" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do [[ -s "$work/root/var/lib/dpreassign/agent/listen.addr" ]] && break; sleep 0.1; done
[[ -s "$work/root/var/lib/dpreassign/agent/listen.addr" ]] || { cat "$work/agent.out"; fail "the installed agent did not start"; }
metrics="$(cat "$work/root/var/lib/dpreassign/agent/metrics.addr")"
/usr/bin/python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://$metrics/metrics', timeout=5).read().decode())" \
  | grep -q "^dpr_agent_converting 0" || fail "metrics"
kill "$agent_pid"; wait "$agent_pid" || fail "agent exit $?"; agent_pid=""
echo "ok   the installed agent serves on $(cat "$work/root/var/lib/dpreassign/agent/listen.addr"), metrics on $metrics"

if command -v ansible-lint >/dev/null; then
  (cd "$src/deploy/ansible" && ansible-lint --nocolor site.yml roles/dp_agent >"$work/lint.out" 2>&1) || { cat "$work/lint.out"; fail "ansible-lint"; }
  echo "ok   ansible-lint: $(tail -1 "$work/lint.out")"
else
  fail "ansible-lint missing (deploy/install-deps.sh installs it)"
fi
echo "0 failure(s)"

#!/usr/bin/python3
"""deploy/install-agent.sh into a scratch root, then the installed agent
started as systemd would start it (Type=notify), without systemd: this test
plays systemd's notify socket and checks READY=1, STATUS=, WATCHDOG=1,
RELOADING=1 on SIGHUP and STOPPING=1; it scrapes the agent's /metrics and
reports the unit's `systemd-analyze security` exposure score.

  /usr/bin/python3 tests/deploy/install_agent_test.py --bin build/bin --src .
"""
import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)
    return cond


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class FakeSystemd:
    """The notify socket systemd gives a Type=notify service."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []

    def wait_for(self, needle, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, m in enumerate(self.messages):
                if needle in m:
                    del self.messages[: i + 1]
                    return m
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            self.messages.extend(data.split("\n"))
        return None


def threads_taking_signals(pid):
    """Threads other than the main one that do not block SIGHUP, SIGINT or
    SIGTERM: any of them could take such a signal and die of it (the main
    thread unblocks them only inside sigtimedwait)."""
    wanted = (1 << 0) | (1 << 1) | (1 << 14)  # SIGHUP, SIGINT, SIGTERM
    bad, total = [], 0
    for tid in os.listdir("/proc/%d/task" % pid):
        if int(tid) == pid:
            continue
        total += 1
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                blk = next(int(l.split()[1], 16) for l in f if l.startswith("SigBlk:"))
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
        except (OSError, StopIteration):
            continue  # the thread ended meanwhile
        if blk & wanted != wanted:
            bad.append(name)
    return bad, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    args = ap.parse_args()
    bin_dir = os.path.abspath(args.bin)
    script = os.path.join(os.path.abspath(args.src), "deploy", "install-agent.sh")
    dpctl = os.path.join(bin_dir, "dpctl")
    work = tempfile.mkdtemp(prefix="dpr-install-")
    root = os.path.join(work, "root")
    pki = os.path.join(work, "pki")
    name = "dp01.contoso.com"
    try:
        check(run([dpctl, "tls", "ca", "create", "--dir", pki]).returncode == 0, "site CA made")
        base = ["bash", script, "--root", root, "--name", name, "--ca", pki + "/ca.crt",
                "--bin-dir", bin_dir, "--listen", "127.0.0.1:0",
                "--metrics-listen", "127.0.0.1:0"]
        tls = os.path.join(root, "etc/dpreassign/tls")

        # Bad input is refused before anything is written.
        r = run(base[:4] + ["--name", "not a host", "--ca", pki + "/ca.crt", "--bin-dir", bin_dir])
        check(r.returncode == 2 and "not a host name" in r.stderr, "a bad --name refused: " + r.stderr.strip())

        # 1. No certificate yet: a key and a request are made here; exit 3.
        r = run(base)
        check(r.returncode == 3, "first run waits for a certificate (exit %d)" % r.returncode)
        check("dpctl tls cert sign" in r.stderr, "and says how to sign the request")
        key = os.path.join(tls, "agent.key")
        check(os.path.exists(key) and mode(key) == 0o640, "key made on the DP, mode 0640")
        check(mode(tls) == 0o750, "tls folder mode 0750")
        key_hash = sha(key)

        # 2. The CA holder signs the request (only the request travels).
        crt = os.path.join(work, name + ".crt")
        r = run([dpctl, "tls", "cert", "sign", "--dir", pki, "--csr", os.path.join(tls, "agent.csr"),
                 "--role", "agent", "--name", name, "--ip", "127.0.0.1", "--out", crt])
        check(r.returncode == 0, "request signed: " + r.stdout.strip() + r.stderr.strip())

        # A certificate for another key is refused; the key stays.
        r = run([dpctl, "tls", "cert", "create", "--dir", pki, "--role", "agent", "--name", name])
        r = run(base + ["--cert", os.path.join(pki, name + ".crt")])
        check(r.returncode == 1 and "not for this DP's key" in r.stderr,
              "a certificate for another key refused: " + r.stderr.strip())
        check(sha(key) == key_hash, "the key is unchanged")

        # 3. Installed with the signed certificate.
        r = run(base + ["--cert", crt])
        check(r.returncode == 0, "installed (exit %d): %s" % (r.returncode, r.stderr.strip()))
        agent = os.path.join(root, "usr/local/bin/dp-agent")
        check(os.access(agent, os.X_OK), "binary installed")
        check(not os.path.exists(os.path.join(tls, "agent.csr")), "request removed")
        data_dir = os.path.join(root, "var/lib/dpreassign/agent")
        check(mode(data_dir) == 0o750, "data folder mode 0750")
        cfg = os.path.join(root, "etc/dpreassign/agent.toml")
        check(mode(cfg) == 0o640, "config mode 0640")
        unit = os.path.join(root, "etc/systemd/system/dp-agent.service")
        unit_text = open(unit).read()
        check("ReadWritePaths=/var/lib/dpreassign/agent /srv/dpcontent" in unit_text,
              "unit writable paths = data folder and content root")
        wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants/dp-agent.service")
        check(os.path.islink(wants), "unit enabled")
        # Re-running is safe and keeps the key.
        r = run(base + ["--cert", crt])
        check(r.returncode == 0 and sha(key) == key_hash, "a second run succeeds, key unchanged")

        # 4. Started as systemd would, with its notify socket and a watchdog.
        notify = FakeSystemd(os.path.join(work, "notify.sock"))
        env = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000")
        log = open(os.path.join(work, "agent.out"), "w")
        proc = subprocess.Popen([agent, "--config", cfg], env=env, stdout=log, stderr=log)
        try:
            t0 = time.time()
            ready = notify.wait_for("READY=1", 20)
            check(ready is not None, "READY=1 after %.2f s" % (time.time() - t0))
            status = notify.wait_for("STATUS=", 5)
            check(status is not None and "not assigned" in status, "STATUS=%s" % status)
            check(os.path.exists(os.path.join(data_dir, "listen.addr")),
                  "serving before READY (listen.addr written)")
            bad, total = threads_taking_signals(proc.pid)
            check(total > 0 and not bad,
                  "agent: all %d other threads block SIGHUP/SIGINT/SIGTERM %s" % (total, bad))
            t1 = time.time()
            check(notify.wait_for("WATCHDOG=1", 3) is not None,
                  "watchdog pinged (%.2f s)" % (time.time() - t1))
            addr = open(os.path.join(data_dir, "metrics.addr")).read().strip()
            body = urllib.request.urlopen("http://%s/metrics" % addr, timeout=5).read().decode()
            check("dpr_agent_packages_converted_total 0" in body, "metrics: packages converted 0")
            check(re.search(r"dpr_agent_library_free_bytes \d", body) is not None,
                  "metrics: library free bytes")
            check('dpr_build_info{version="' in body, "metrics: build info")

            # SIGHUP: the log level applies now, a new listen address later.
            text = open(cfg).read()
            with open(cfg, "w") as f:
                f.write(text.replace('log_level = "info"', 'log_level = "debug"')
                        .replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:1"', 1))
            proc.send_signal(signal.SIGHUP)
            check(notify.wait_for("RELOADING=1", 5) is not None, "RELOADING=1 on SIGHUP")
            check(notify.wait_for("READY=1", 5) is not None, "READY=1 after the reload")
            time.sleep(0.3)
            out = open(os.path.join(data_dir, "logs/smsdpprov.log"), errors="replace").read()
            check("log level now debug" in out, "log level applied at once")
            check("changed (listen): takes effect at the next restart" in out,
                  "a changed listen address named as needing a restart")
            # A broken file is refused; the daemon carries on.
            with open(cfg, "a") as f:
                f.write("no_such_key = 1\n")
            proc.send_signal(signal.SIGHUP)
            notify.wait_for("READY=1", 5)
            time.sleep(0.3)
            out = open(os.path.join(data_dir, "logs/smsdpprov.log"), errors="replace").read()
            check(re.search(r"configuration not reloaded.*agent\.toml:\d+", out) is not None,
                  "a broken config refused with file:line")
            check(proc.poll() is None, "still running")

            proc.send_signal(signal.SIGTERM)
            check(notify.wait_for("STOPPING=1", 10) is not None, "STOPPING=1 on SIGTERM")
            check(proc.wait(15) == 0, "exit 0 after SIGTERM")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

        # 5. The controller under the same protocol (its STATUS= line).
        check(run([dpctl, "tls", "cert", "create", "--dir", pki, "--role", "controller",
                   "--name", "site01.contoso.com", "--ip", "127.0.0.1"]).returncode == 0,
              "controller certificate made")
        notify_c = FakeSystemd(os.path.join(work, "notify-c.sock"))
        env = dict(os.environ, NOTIFY_SOCKET=notify_c.path, WATCHDOG_USEC="2000000")
        ctl = subprocess.Popen(
            [os.path.join(bin_dir, "dp-controller"), "--data-dir", os.path.join(work, "controller"),
             "--listen", "127.0.0.1:0", "--cert", pki + "/site01.contoso.com.crt",
             "--key", pki + "/site01.contoso.com.key", "--ca", pki + "/ca.crt"],
            env=env, stdout=log, stderr=log)
        try:
            check(notify_c.wait_for("READY=1", 20) is not None, "controller: READY=1")
            bad, total = threads_taking_signals(ctl.pid)
            check(total > 0 and not bad,
                  "controller: all %d other threads block SIGHUP/SIGINT/SIGTERM %s" % (total, bad))
            status = notify_c.wait_for("STATUS=", 5)
            check(status == "STATUS=0 job(s) running, 0 waiting", "controller: %s" % status)
            check(notify_c.wait_for("WATCHDOG=1", 3) is not None, "controller: watchdog pinged")
            ctl.send_signal(signal.SIGTERM)
            check(notify_c.wait_for("STOPPING=1", 10) is not None and ctl.wait(15) == 0,
                  "controller: STOPPING=1 and exit 0")
        finally:
            if ctl.poll() is None:
                ctl.kill()
                ctl.wait()

        # 6. Hardening score of both units, as systemd-analyze rates them.
        if shutil.which("systemd-analyze"):
            for u in (unit, os.path.join(os.path.abspath(args.src), "deploy/systemd/dp-controller.service")):
                r = run(["systemd-analyze", "security", "--offline=true", u])
                m = re.search(r"Overall exposure level for (\S+): ([\d.]+)", r.stdout + r.stderr)
                check(m is not None and float(m.group(2)) <= 2.0,
                      "systemd-analyze security %s: %s" % (os.path.basename(u), m.group(2) if m else r.stderr.strip()))
    finally:
        if os.environ.get("DPR_KEEP_TEST_DIRS"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("%d failure(s)" % len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())

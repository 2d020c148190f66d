#!/usr/bin/python3
"""A hostile gRPC client, written with Python grpcio (an implementation
independent of the C++ one the daemons use), against the real dp-controller
and two real dp-agents on 127.0.0.1 (RELIABILITY.md rows 1, 10 and 13).

It sets up a site the way an admin would (dpctl tls, dpctl inventory import,
a completed reassignment of DP01 so its agent obeys controller
site01.contoso.com), snapshots the site database and both agents' state,
then:
  row 1  - calls each service with the wrong identity: another DP's agent
           certificate, an agent certificate as admin, an admin certificate
           as controller, a second controller of the same CA, a controller
           naming someone else, a request carrying another DP's DPID, no
           client certificate, a certificate from another CA;
  row 10 - asks DP01's agent, as its own controller, to convert packages at
           hostile locations ('..', absolute, a symlink out of the root);
  row 13 - sends oversized messages (over the 16 MiB limit), bytes that are
           not protobuf, and valid messages with hostile values, many times,
           watching the controller's memory.
Every refusal must carry the expected status code; each PERMISSION_DENIED
must leave a log line naming the caller; afterwards the database and the
agents' files must be exactly as before and both daemons still serving.

Usage: hostile_client.py --bin BUILD/bin --proto SOURCE/proto [--keep DIR]
Prints one line per case and a summary; exit 0 when every case held.
"""
import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import grpc


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--proto", required=True)
    p.add_argument("--keep", help="work in DIR and leave it")
    p.add_argument("--flood", type=int, default=200, help="oversized + garbage messages sent")
    p.add_argument("--flood-kind", choices=["both", "big", "garbage"], default="both")
    p.add_argument("--peak-rss-mib", type=float, default=256,
                   help="fail above this controller peak RSS (sanitizer builds need more)")
    return p.parse_args()


ARGS = parse_args()
WORK = ARGS.keep or tempfile.mkdtemp(prefix="dpr-hostile.")
os.makedirs(WORK, exist_ok=True)
PROCS = []


def run(*argv, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        sys.exit("hostile_client: %s failed (%d):\n%s" % (" ".join(argv), r.returncode, r.stdout))
    return r


def dpctl(*argv, check=True):
    return run(os.path.join(ARGS.bin, "dpctl"), *argv, check=check)


def wait_file(path, what, log):
    for _ in range(300):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return open(path).read().strip()
        time.sleep(0.05)
    sys.exit("hostile_client: %s did not start; see %s:\n%s" % (what, log, open(log).read()[-2000:]))


def start(name, argv, addr_file):
    log = os.path.join(WORK, name + ".out")
    PROCS.append(subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT))
    return wait_file(addr_file, name, log)


# --- generated message classes (protoc from Debian; no grpc_tools needed) --
GEN = os.path.join(WORK, "gen")
os.makedirs(GEN, exist_ok=True)
protos = [os.path.join("dpreassign/v1", f) for f in ("common.proto", "agent.proto", "admin.proto")]
run("protoc", "-I", ARGS.proto, "--python_out=" + GEN, *protos)
sys.path.insert(0, GEN)
from dpreassign.v1 import admin_pb2, agent_pb2, common_pb2  # noqa: E402

# --- the site ---------------------------------------------------------------
PKI = os.path.join(WORK, "pki")
OTHER = os.path.join(WORK, "other-ca")
dpctl("tls", "ca", "create", "--dir", PKI)
dpctl("tls", "ca", "create", "--dir", OTHER)
for role, name in [("controller", "site01.contoso.com"), ("controller", "rogue.contoso.com"),
                   ("agent", "DP01.CONTOSO.COM"), ("agent", "DP02.CONTOSO.COM"),
                   ("admin", "ops1")]:
    dpctl("tls", "cert", "create", "--dir", PKI, "--role", role, "--name", name, "--ip", "127.0.0.1")
for role, name in [("admin", "ops1"), ("controller", "site01.contoso.com")]:
    dpctl("tls", "cert", "create", "--dir", OTHER, "--role", role, "--name", name, "--ip", "127.0.0.1")

OUTSIDE = os.path.join(WORK, "outside")
os.makedirs(OUTSIDE)
with open(os.path.join(OUTSIDE, "secret.txt"), "w") as f:
    f.write("not for the library\n")
for dp in ("dp01", "dp02"):
    share = os.path.join(WORK, dp, "legacy", "SMSPKGD$")
    for pkg in ("S0700001", "S0700002"):
        os.makedirs(os.path.join(share, pkg))
        with open(os.path.join(share, pkg, "setup.exe"), "wb") as f:
            f.write((dp + pkg).encode() * 5000)
    os.symlink(OUTSIDE, os.path.join(share, "LINKOUT"))

agents = {}
for dp, name in (("dp01", "DP01.CONTOSO.COM"), ("dp02", "DP02.CONTOSO.COM")):
    d = os.path.join(WORK, dp)
    agents[dp] = start(dp, [os.path.join(ARGS.bin, "dp-agent"), "--data-dir", d, "--content-root",
                            d + "/content", "--legacy-root", d + "/legacy", "--listen",
                            "127.0.0.1:0", "--cert", "%s/%s.crt" % (PKI, name), "--key",
                            "%s/%s.key" % (PKI, name), "--ca", PKI + "/ca.crt"],
                       d + "/listen.addr")
CDIR = os.path.join(WORK, "controller")
controller = start("controller", [os.path.join(ARGS.bin, "dp-controller"), "--data-dir", CDIR,
                                  "--listen", "127.0.0.1:0", "--cert", PKI + "/site01.contoso.com.crt",
                                  "--key", PKI + "/site01.contoso.com.key", "--ca", PKI + "/ca.crt",
                                  "--inbox-scan-seconds", "1"], CDIR + "/listen.addr")
CONTROLLER_PID = PROCS[-1].pid
os.environ.update(DPCTL_CONTROLLER=controller, DPCTL_CERT=PKI + "/ops1.crt",
                  DPCTL_KEY=PKI + "/ops1.key", DPCTL_CA=PKI + "/ca.crt")
inventory = {
    "format": 1,
    "sites": [{"code": "S07", "name": "Contoso 2007", "hierarchy": "source", "version": "4.00.6487.2000"},
              {"code": "P01", "name": "Contoso 2012", "hierarchy": "destination", "version": "5.00.7958.1000"}],
    "site_systems": [{"server": "SS07.CONTOSO.COM", "site": "S07",
                      "roles": ["SMS Site Server", "SMS Site System"]}],
    "packages": [{"id": p, "name": p, "source_version": 1, "source_site": "S07", "bytes": 80000}
                 for p in ("S0700001", "S0700002")],
    "distribution_points": [
        {"dpid": 4, "server": "DP01.CONTOSO.COM", "site": "S07", "drive": "D:",
         "agent_endpoint": agents["dp01"], "shared_in": "P01",
         "packages": [{"id": "S0700001"}, {"id": "S0700002"}]},
        {"dpid": 5, "server": "DP02.CONTOSO.COM", "site": "S07", "drive": "D:",
         "agent_endpoint": agents["dp02"], "shared_in": "P01",
         "packages": [{"id": "S0700001"}, {"id": "S0700002"}]}],
}
with open(os.path.join(WORK, "inventory.json"), "w") as f:
    json.dump(inventory, f)
dpctl("inventory", "import", os.path.join(WORK, "inventory.json"))
dpctl("reassign", "DP01.CONTOSO.COM", "--to", "P01", "--detach")
for _ in range(200):
    job = json.loads(dpctl("job", "show", "1", "-o", "json").stdout)
    if job.get("status") in ("JOB_STATUS_COMPLETED", "JOB_STATUS_FAILED"):
        break
    time.sleep(0.1)
if job.get("status") != "JOB_STATUS_COMPLETED":
    sys.exit("hostile_client: the setup reassignment did not complete: %s" % job)
ASSIGNMENT = open(os.path.join(WORK, "dp01", "assignment.ini")).read()
DP01_NEW_DPID = int(ASSIGNMENT.split("DPID=")[1].split()[0])


# --- snapshots ---------------------------------------------------------------
def db_snapshot():
    con = sqlite3.connect("file:%s/site.db?mode=ro" % CDIR, uri=True)
    rows = list(con.iterdump())
    con.close()
    return rows


def files_snapshot():
    out = {}
    for top in (os.path.join(WORK, "dp01"), os.path.join(WORK, "dp02"), OUTSIDE):
        for dirpath, dirnames, filenames in os.walk(top):
            if os.path.basename(dirpath) == "logs":
                continue
            for n in filenames:
                p = os.path.join(dirpath, n)
                if os.path.islink(p) or n in ("listen.addr",):
                    continue
                with open(p, "rb") as f:
                    out[os.path.relpath(p, WORK)] = hashlib.sha256(f.read()).hexdigest()
    return out


def rss_kib(pid, field="VmRSS:"):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(field):
            return int(line.split()[1])
    return 0


DB_BEFORE = db_snapshot()
FILES_BEFORE = files_snapshot()


# --- channels ----------------------------------------------------------------
def channel(addr, server_name, pki=PKI, cert=None, plaintext=False):
    opts = [("grpc.ssl_target_name_override", server_name), ("grpc.max_send_message_length", 64 << 20),
            ("grpc.max_receive_message_length", 64 << 20)]
    if plaintext:
        return grpc.insecure_channel(addr, options=opts)
    ca = open(PKI + "/ca.crt", "rb").read()
    if cert is None:
        creds = grpc.ssl_channel_credentials(root_certificates=ca)
    else:
        creds = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=open("%s/%s.key" % (pki, cert), "rb").read(),
            certificate_chain=open("%s/%s.crt" % (pki, cert), "rb").read())
    return grpc.secure_channel(addr, creds, options=opts)


def call(ch, service, method, request_bytes, streaming=False, timeout=10):
    path = "/dpreassign.v1.%s/%s" % (service, method)
    ident = lambda b: b  # noqa: E731
    try:
        if streaming:
            events = list(ch.unary_stream(path, request_serializer=ident,
                                          response_deserializer=ident)(request_bytes, timeout=timeout))
            return grpc.StatusCode.OK, "", events
        reply = ch.unary_unary(path, request_serializer=ident,
                               response_deserializer=ident)(request_bytes, timeout=timeout)
        return grpc.StatusCode.OK, "", [reply]
    except grpc.RpcError as e:
        return e.code(), e.details() or "", []


RESULTS = []


def case(row, name, ch, service, method, request, expect, streaming=False, log=None, log_needle=None,
         details_needle=None):
    raw = request if isinstance(request, bytes) else request.SerializeToString()
    log_start = os.path.getsize(log) if log and os.path.exists(log) else 0
    code, details, replies = call(ch, service, method, raw, streaming)
    ok = code in expect
    why = ""
    if ok and details_needle and details_needle not in details:
        ok, why = False, "details lack %r" % details_needle
    if ok and log and log_needle:
        time.sleep(0.2)
        with open(log, errors="replace") as f:
            f.seek(log_start)
            text = f.read()  # this call's lines only
        if log_needle not in text:
            ok, why = False, "no new log line naming %r in %s" % (log_needle, log)
    RESULTS.append((row, name, ok))
    print("%-6s row %-2s %-62s %s %s%s" % ("ok" if ok else "FAIL", row, name, code.name,
                                           details[:110].replace("\n", " "),
                                           (" - " + why) if why else ""))
    return code, replies


CONTROLLER_LOG = os.path.join(CDIR, "logs", "distmgr.log")
DP01_LOG = os.path.join(WORK, "dp01", "logs", "smsdpprov.log")
DP02_LOG = os.path.join(WORK, "dp02", "logs", "smsdpprov.log")
DENIED = {grpc.StatusCode.PERMISSION_DENIED}
HANDSHAKE = {grpc.StatusCode.UNAVAILABLE}
A1, A2 = agents["dp01"], agents["dp02"]

# --- row 1: identities -------------------------------------------------------
start_dp02 = admin_pb2.StartReassignmentRequest(dp="DP02.CONTOSO.COM", to_site="P01")
case(1, "DP01's agent cert starts DP02's reassignment (admin API)",
     channel(controller, "site01.contoso.com", cert="DP01.CONTOSO.COM"), "AdminService",
     "StartReassignment", start_dp02, DENIED, log=CONTROLLER_LOG, log_needle="DP01.CONTOSO.COM")
case(1, "agent cert imports an inventory (admin API)",
     channel(controller, "site01.contoso.com", cert="DP02.CONTOSO.COM"), "AdminService",
     "ImportInventory", admin_pb2.ImportInventoryRequest(json="{}"), DENIED, log=CONTROLLER_LOG,
     log_needle="DP02.CONTOSO.COM")
case(1, "controller cert used as admin",
     channel(controller, "site01.contoso.com", cert="rogue.contoso.com"), "AdminService",
     "StartReassignment", start_dp02, DENIED, log=CONTROLLER_LOG, log_needle="rogue.contoso.com")
case(1, "admin cert from another CA", channel(controller, "site01.contoso.com", pki=OTHER, cert="ops1"),
     "AdminService", "ListJobs", admin_pb2.ListJobsRequest(), HANDSHAKE)
case(1, "no client certificate (admin API)", channel(controller, "site01.contoso.com"),
     "AdminService", "GetStatus", admin_pb2.GetControllerStatusRequest(), HANDSHAKE)
case(1, "plaintext (admin API)", channel(controller, "site01.contoso.com", plaintext=True),
     "AdminService", "GetStatus", admin_pb2.GetControllerStatusRequest(), HANDSHAKE)

convert_dp01 = agent_pb2.ConvertRequest(job_id=1, dpid=DP01_NEW_DPID, packages=[
    common_pb2.PackageRef(package_id="S0700001", source_version=1, location="SMSPKGD$\\S0700001")])
case(1, "DP02's agent cert asks DP01's agent to convert",
     channel(A1, "DP01.CONTOSO.COM", cert="DP02.CONTOSO.COM"), "AgentService", "ConvertContent",
     convert_dp01, DENIED, streaming=True, log=DP01_LOG, log_needle="DP02.CONTOSO.COM")
case(1, "DP01's own agent cert as its controller",
     channel(A1, "DP01.CONTOSO.COM", cert="DP01.CONTOSO.COM"), "AgentService", "VerifyLibrary",
     agent_pb2.VerifyLibraryRequest(), DENIED)
case(1, "admin cert as controller (agent API)", channel(A1, "DP01.CONTOSO.COM", cert="ops1"),
     "AgentService", "VerifyLibrary", agent_pb2.VerifyLibraryRequest(), DENIED, log=DP01_LOG,
     log_needle="ops1")
rogue = channel(A1, "DP01.CONTOSO.COM", cert="rogue.contoso.com")
case(1, "second controller of the same CA converts on DP01", rogue, "AgentService",
     "ConvertContent", convert_dp01, DENIED, streaming=True, log=DP01_LOG,
     log_needle="rogue.contoso.com")
case(1, "second controller re-assigns DP01 to itself", rogue, "AgentService", "AssignSite",
     agent_pb2.AssignSiteRequest(site_code="X01", controller_identity="rogue.contoso.com", dpid=99,
                                 nal_path='["Display=\\\\DP01.CONTOSO.COM\\"]'),
     DENIED | {grpc.StatusCode.FAILED_PRECONDITION}, log=DP01_LOG, log_needle="rogue.contoso.com")
case(1, "second controller names the real controller in AssignSite", rogue, "AgentService",
     "AssignSite", agent_pb2.AssignSiteRequest(site_code="P01", controller_identity="site01.contoso.com",
                                               dpid=DP01_NEW_DPID),
     DENIED, log=DP01_LOG, log_needle="rogue.contoso.com")
case(1, "DP01's agent cert assigns DP02 (sending DP02's DPID)",
     channel(A2, "DP02.CONTOSO.COM", cert="DP01.CONTOSO.COM"), "AgentService", "AssignSite",
     agent_pb2.AssignSiteRequest(site_code="P01", controller_identity="DP01.CONTOSO.COM", dpid=5),
     DENIED, log=DP02_LOG, log_needle="DP01.CONTOSO.COM")
case(1, "its own controller sends DP01 another DP's DPID",
     channel(A1, "DP01.CONTOSO.COM", cert="site01.contoso.com"), "AgentService", "ConvertContent",
     agent_pb2.ConvertRequest(job_id=1, dpid=5, packages=convert_dp01.packages), DENIED,
     streaming=True, log=DP01_LOG, log_needle="DPID 5")
case(1, "controller cert from another CA (agent API)",
     channel(A1, "DP01.CONTOSO.COM", pki=OTHER, cert="site01.contoso.com"), "AgentService",
     "GetStatus", agent_pb2.GetAgentStatusRequest(), HANDSHAKE)
case(1, "no client certificate (agent API)", channel(A2, "DP02.CONTOSO.COM"), "AgentService",
     "GetStatus", agent_pb2.GetAgentStatusRequest(), HANDSHAKE)

# --- row 10: hostile locations, from DP01's own controller --------------------
own = channel(A1, "DP01.CONTOSO.COM", cert="site01.contoso.com")
for loc in ("SMSPKGD$\\..\\..\\outside", "..\\outside", "/etc", "C:\\Windows\\System32",
            "SMSPKGD$\\LINKOUT", "SMSPKGD$\\S0700001\\..\\..\\..\\outside", "SMSPKGD$\\\x00x",
            "\\\\OTHERHOST\\share\\pkg"):
    req = agent_pb2.ConvertRequest(job_id=1, dpid=DP01_NEW_DPID, packages=[
        common_pb2.PackageRef(package_id="S0700009", source_version=1, location=loc)])
    case(10, "convert at location %r" % loc, own, "AgentService", "ConvertContent", req,
         {grpc.StatusCode.INVALID_ARGUMENT}, streaming=True, details_needle="refused")

# --- row 13: oversized and malformed messages ---------------------------------
admin = channel(controller, "site01.contoso.com", cert="ops1")
rss_before = rss_kib(CONTROLLER_PID)
big = admin_pb2.ImportInventoryRequest(json="x" * (17 << 20))
case(13, "17 MiB ImportInventory", admin, "AdminService", "ImportInventory", big,
     {grpc.StatusCode.RESOURCE_EXHAUSTED})
case(13, "bytes that are not protobuf (StartReassignment)", admin, "AdminService",
     "StartReassignment", b"\xff\xff\xff\xff\x0f garbage", {grpc.StatusCode.INTERNAL,
                                                          grpc.StatusCode.INVALID_ARGUMENT})
case(13, "truncated protobuf (GetJob)", admin, "AdminService", "GetJob", b"\x08",
     {grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT})
case(13, "inventory that is not JSON", admin, "AdminService", "ImportInventory",
     admin_pb2.ImportInventoryRequest(json="{\"format\": 1, ", source_name="x.json"),
     {grpc.StatusCode.INVALID_ARGUMENT}, details_needle="x.json")
case(13, "inventory 15 MiB of nested arrays", admin, "AdminService", "ImportInventory",
     admin_pb2.ImportInventoryRequest(json="[" * (15 << 20)), {grpc.StatusCode.INVALID_ARGUMENT})
case(13, "DP name of 1 MiB", admin, "AdminService", "StartReassignment",
     admin_pb2.StartReassignmentRequest(dp="A" * (1 << 20), to_site="P01"),
     {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT})
case(13, "DP name with a NUL byte", admin, "AdminService", "StartReassignment",
     admin_pb2.StartReassignmentRequest(dp="DP02.CONTOSO.COM\x00", to_site="P01"),
     {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT})
case(13, "watch a job that does not exist", admin, "AdminService", "WatchJob",
     admin_pb2.WatchJobRequest(job_id=2 ** 64 - 1), {grpc.StatusCode.NOT_FOUND}, streaming=True)
case(13, "17 MiB ConvertContent to an agent", own, "AgentService", "ConvertContent",
     agent_pb2.ConvertRequest(job_id=1, dpid=DP01_NEW_DPID, packages=[
         common_pb2.PackageRef(package_id="S0700001", name="n" * (17 << 20))]),
     {grpc.StatusCode.RESOURCE_EXHAUSTED}, streaming=True)
flood_codes = {}
t0 = time.monotonic()
for i in range(ARGS.flood):
    use_big = ARGS.flood_kind == "big" or (ARGS.flood_kind == "both" and i % 2 == 0)
    raw = big.SerializeToString() if use_big else os.urandom(4096)
    code, _, _ = call(admin, "AdminService", "ImportInventory", raw)
    flood_codes[code.name] = flood_codes.get(code.name, 0) + 1
flood_s = time.monotonic() - t0
rss_peak = rss_kib(CONTROLLER_PID, "VmHWM:")
time.sleep(3)  # the daemons hand freed memory back every 2 s
rss_after = rss_kib(CONTROLLER_PID)
flood_ok = grpc.StatusCode.OK.name not in flood_codes
RESULTS.append((13, "flood", flood_ok))
print("%-6s row 13 flood of %d oversized/garbage messages in %.1f s: %s; controller RSS %d -> %d KiB"
      " (peak %d KiB)" % ("ok" if flood_ok else "FAIL", ARGS.flood, flood_s, flood_codes, rss_before,
                          rss_after, rss_peak))

# --- afterwards ----------------------------------------------------------------
code, _, _ = call(admin, "AdminService", "GetStatus", admin_pb2.GetControllerStatusRequest().SerializeToString())
alive = code == grpc.StatusCode.OK
for a, name in ((A1, "DP01.CONTOSO.COM"), (A2, "DP02.CONTOSO.COM")):
    c, _, _ = call(channel(a, name, cert="site01.contoso.com"), "AgentService", "GetStatus",
                   agent_pb2.GetAgentStatusRequest().SerializeToString())
    alive = alive and c == grpc.StatusCode.OK
for p in PROCS:
    alive = alive and p.poll() is None
db_after, files_after = db_snapshot(), files_snapshot()
db_changed = len(set(DB_BEFORE) ^ set(db_after))
files_changed = sorted(k for k in set(FILES_BEFORE) | set(files_after)
                       if FILES_BEFORE.get(k) != files_after.get(k))
for p in PROCS:
    p.terminate()
for p in PROCS:
    p.wait(timeout=10)

tried = len(RESULTS)
held = sum(1 for r in RESULTS if r[2])
growth_mib = (rss_after - rss_before) / 1024.0
peak_mib = rss_peak / 1024.0
print("summary: %d/%d cases held; database rows changed %d; agent/outside files changed %d %s; "
      "daemons alive %s; controller RSS growth %.1f MiB over the flood, peak %.1f MiB"
      % (held, tried, db_changed, len(files_changed), files_changed[:5], alive, growth_mib, peak_mib))
# Bounded: a few messages at the 16 MiB limit in flight, whatever the count
# (measured: 200 messages peak 111-130 MiB, 800 peak 128 MiB; what is left
# afterwards varies, 33-60 MiB, so only a leak-sized growth fails).
ok = (held == tried and db_changed == 0 and not files_changed and alive
      and growth_mib < ARGS.peak_rss_mib / 2 and peak_mib < ARGS.peak_rss_mib)
if not ARGS.keep and ok:
    shutil.rmtree(WORK, ignore_errors=True)
elif not ok:
    print("work folder kept: %s" % WORK)
sys.exit(0 if ok else 1)

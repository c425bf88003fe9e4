#!/usr/bin/env python3
"""Records/s over RELP/TLS to an rsyslog receiver on loopback, side by side in one run:

  (a) hsmaudit: relp_bench (ExportRunner + RelpExporter) delivers N synthetic audit records;
  (b) rsyslog itself: rsyslogd reads the same N records (rendered identically) from a file with
      imfile and forwards them with omrelp over TLS.

Both go to a fresh receiver of the same configuration (imrelp, TLS with mutual authentication,
omfile). Each figure is end to end: from starting the sender until the receiver's file holds all N
records. Prints both and the ratio. Every process it starts is stopped before it exits.

    bench/exporters/relp/relp_vs_rsyslog.py --build-dir build/release [--records 200000] [--runs 3]
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

RSYSLOGD = "/usr/sbin/rsyslogd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("rsyslogd exited: " + str(proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("rsyslogd did not listen on %d" % port)


def make_pki(d):
    script = r"""
set -e
cd "$1"; umask 077
mkca() { openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.pem \
  -days 2 -subj "/CN=$1" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }
mkleaf() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr -subj "/CN=$2"
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' $2 > $1.ext
  openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile $1.ext -out $1.pem; }
mkca ca; mkleaf server server.test; mkleaf client client.test
chmod 644 *.pem
"""
    subprocess.run(["/bin/sh", "-c", script, "sh", d], check=True, capture_output=True)


def receiver_conf(d, tag, port):
    work = os.path.join(d, "work-" + tag)
    os.makedirs(work, exist_ok=True)
    return f"""global(workDirectory="{work}" maxMessageSize="64k")
module(load="imrelp" tls.tlslib="openssl")
template(name="raw" type="string" string="%rawmsg%\\n")
input(type="imrelp" port="{port}" address="127.0.0.1" tls="on" tls.cacert="{d}/ca.pem"
      tls.mycert="{d}/server.pem" tls.myprivkey="{d}/server.key" tls.authmode="name"
      tls.permittedpeer=["client.test"] ruleset="out")
ruleset(name="out") {{ action(type="omfile" file="{d}/received-{tag}.log" template="raw") }}
"""


def forwarder_conf(d, port, lines):
    work = os.path.join(d, "work-forwarder")
    os.makedirs(work, exist_ok=True)
    return f"""global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile")
module(load="omrelp" tls.tlslib="openssl")
template(name="line" type="string" string="%rawmsg%")
input(type="imfile" file="{lines}" tag="hsmaudit" readMode="0" freshStartTail="off" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omrelp" target="127.0.0.1" port="{port}" tls="on" tls.cacert="{d}/ca.pem"
         tls.mycert="{d}/client.pem" tls.myprivkey="{d}/client.key" tls.authmode="name"
         tls.permittedpeer=["server.test"] template="line")
}}
"""


class Rsyslogd:
    def __init__(self, d, name, conf):
        self.path = os.path.join(d, name + ".conf")
        with open(self.path, "w") as f:
            f.write(conf)
        check = subprocess.run([RSYSLOGD, "-N1", "-f", self.path], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(name + " config invalid: " + check.stdout + check.stderr)
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", self.path, "-i", os.path.join(d, name + ".pid")],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, name + ".err"), "w"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def wait_lines(path, n, timeout=300):
    """Waits until `path` holds n lines; reads only what is new each time."""
    deadline = time.monotonic() + timeout
    count, offset = 0, 0
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
                offset += len(chunk)
                count += chunk.count(b"\n")
            if count >= n:
                return time.monotonic()
        time.sleep(0.005)
    raise RuntimeError("%s: %d of %d lines after %d s" % (path, count, n, timeout))


def run_hsmaudit(d, bench, n, run):
    port = free_port()
    tag = "hsmaudit%d" % run
    recv = Rsyslogd(d, "receiver-" + tag, receiver_conf(d, tag, port))
    try:
        wait_port(port, recv.proc)
        t0 = time.monotonic()
        out = subprocess.run([bench, "send", "--target", "127.0.0.1:%d" % port, "--ca", d + "/ca.pem",
                              "--cert", d + "/client.pem", "--key", d + "/client.key", "--peer", "server.test",
                              "--count", str(n)], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError("relp_bench failed: " + out.stdout + out.stderr)
        t1 = wait_lines(os.path.join(d, "received-%s.log" % tag), n)
        return n / (t1 - t0)
    finally:
        recv.stop()


def run_rsyslog(d, lines, n, run):
    port = free_port()
    tag = "rsyslog%d" % run
    recv = Rsyslogd(d, "receiver-" + tag, receiver_conf(d, tag, port))
    fwd = None
    try:
        wait_port(port, recv.proc)
        shutil.rmtree(os.path.join(d, "work-forwarder"), ignore_errors=True)  # imfile starts at offset 0
        t0 = time.monotonic()
        fwd = Rsyslogd(d, "forwarder", forwarder_conf(d, port, lines))
        t1 = wait_lines(os.path.join(d, "received-%s.log" % tag), n)
        return n / (t1 - t0)
    finally:
        if fwd:
            fwd.stop()
        recv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/release")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    bench = os.path.join(a.build_dir, "bench/exporters/relp/relp_bench")
    if not os.access(bench, os.X_OK):
        sys.exit(bench + " not found: cmake --build " + a.build_dir + " --target relp_bench")
    d = tempfile.mkdtemp(prefix="hsmaudit-relp-bench-")
    try:
        make_pki(d)
        lines = os.path.join(d, "records.log")
        subprocess.run([bench, "lines", "--count", str(a.records), "--out", lines], check=True)
        ours, theirs = [], []
        for run in range(a.runs):  # interleaved, so drift of the machine hits both alike
            ours.append(run_hsmaudit(d, bench, a.records, run))
            theirs.append(run_rsyslog(d, lines, a.records, run))
            print("run %d: hsmaudit %.0f records/s, rsyslog %.0f records/s" % (run + 1, ours[-1], theirs[-1]),
                  flush=True)
        med = lambda v: sorted(v)[len(v) // 2]
        o, t = med(ours), med(theirs)
        print("records per run: %d (RELP/TLS, mutual auth, window 128, loopback)" % a.records)
        print("hsmaudit relp exporter: %.0f records/s (median of %d)" % (o, a.runs))
        print("rsyslog imfile->omrelp: %.0f records/s (median of %d)" % (t, a.runs))
        print("ratio hsmaudit/rsyslog: %.2f" % (o / t))
    finally:
        if a.keep:
            print("kept", d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

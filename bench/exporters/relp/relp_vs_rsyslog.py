#!/usr/bin/env python3
"""RELP/TLS delivery, side by side in one run, to the same kind of receiver:

  (a) hsmaudit: relp_bench (a real ExportRunner + RelpExporter, the exporter's shipped defaults:
      window, timeout, batch, RFC 5424 format) delivers N synthetic audit records;
  (b) rsyslog: rsyslogd reads the same N records (the same bytes: relp_bench renders the file with
      the same formatter) with imfile and forwards them with omrelp, tuned for throughput as
      rsyslog's own documentation advises (every setting is named below and in the summary).

Each run starts a fresh receiver (rsyslogd, imrelp, the same configuration for both sides, tuned so
that it is not the bottleneck). A run's figure is end to end: from starting the sender process until
the receiver's file holds all N records. Runs are interleaved (hsmaudit, rsyslog, hsmaudit, ...).

Printed per run and as medians (min-max spread): records/s; the sender's CPU time per record
(user+sys): rsyslogd's from /proc/<pid>/stat when the receiver holds the last record, relp_bench's
from getrusage(RUSAGE_SELF) when the last acknowledgement arrived, also shown without its synthetic
record generation (measured on the runner thread around EventSource::read, CLOCK_THREAD_CPUTIME_ID);
the receiver's CPU time per record (/proc/<pid>/stat) and that of its imrelp input thread, which
handles every frame of a session (read, submit, acknowledgement) and so bounds one session's rate
whatever the sender does. Load average at start and end.
After the first run it checks that both receivers wrote byte-identical files.

    bench/exporters/relp/relp_vs_rsyslog.py --build-dir build/ci [--records 200000] [--runs 3]
    bench/exporters/relp/relp_vs_rsyslog.py --build-dir build/ci --records 2000 --runs 1   # smoke
"""
import argparse
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "side_by_side"))
from e2e_common import make_pki  # noqa: E402

RSYSLOGD = "/usr/sbin/rsyslogd"
TICK = os.sysconf("SC_CLK_TCK")

# ---- the settings, named (rsyslog docs: omrelp, imfile, imrelp, "General Queue Parameters") ----

# rsyslog as the sender, tuned for throughput as its documentation advises:
#  - omrelp windowSize="1024": "a larger window size means more performance" (librelp's default is
#    128; rsyslog's default 0 = librelp's);
#  - imfile mode="inotify" (the module default since 8.1.5, set explicitly: "we recommend to use
#    inotify mode"; polling mode is "much more resource-intense (and slower)");
#  - imfile maxSubmitAtOnce="1024": lines submitted to the queue in one batch (its default, explicit);
#  - main_queue: queue.type="FixedArray" queue.size="500000" queue.dequeueBatchSize="1024"
#    ("larger batches ... provide better performance"; the main queue's default batch is 1024 on
#    newer versions, 256 on this one);
#  - with --rsyslog-action-queue on, the omrelp action gets its own queue: queue.type="LinkedList"
#    queue.size="500000" queue.dequeueBatchSize="1024" (the action queue's default batch is 128; a
#    dedicated action queue decouples reading the file from sending), queue.workerThreads="1" (RELP
#    sends in order on one session). Off by default: on this 2-core machine the extra thread hop cost
#    rsyslog CPU (22-24 against 24-28 us a record, 3 interleaved runs of 100,000 at load 13-14) and
#    did not make it faster, so the comparison gives rsyslog its better configuration: the main
#    queue's worker runs omrelp directly, in batches of up to 1024;
#  - TLS with mutual authentication as our side: tls="on" tls.tlslib="openssl" tls.authmode="name",
#    tls.cacert/tls.mycert/tls.myprivkey, tls.permittedpeer="server.test";
#  - template "%rawmsg%": the record line as read, the same bytes relp_bench sends.
RSYSLOG_WINDOW = 1024
RSYSLOG_BATCH = 1024
RSYSLOG_QUEUE = 500_000

# The receiver (the same for both sides): imrelp with TLS and mutual authentication
# (tls.authmode="name", tls.permittedpeer="client.test"), main_queue queue.type="FixedArray"
# queue.size="500000" queue.dequeueBatchSize="1024" (so that imrelp never blocks on a full queue and
# omfile writes in large batches), omfile with template "%rawmsg%\n", ioBufferSize="256k",
# flushOnTXEnd="on" (the default: the file holds each batch when it is done, which is what the
# runs wait for). imrelp acknowledges a frame once the message is in the main queue: the same for
# both senders.
RECEIVER_QUEUE = 500_000
RECEIVER_BATCH = 1024


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


def receiver_conf(d, tag, port):
    work = os.path.join(d, "work-" + tag)
    os.makedirs(work, exist_ok=True)
    return f"""global(workDirectory="{work}" maxMessageSize="64k")
main_queue(queue.type="FixedArray" queue.size="{RECEIVER_QUEUE}" queue.dequeueBatchSize="{RECEIVER_BATCH}")
module(load="imrelp" tls.tlslib="openssl")
template(name="raw" type="string" string="%rawmsg%\\n")
input(type="imrelp" port="{port}" address="127.0.0.1" tls="on" tls.cacert="{d}/ca.pem"
      tls.mycert="{d}/server.pem" tls.myprivkey="{d}/server.key" tls.authmode="name"
      tls.permittedpeer=["client.test"] ruleset="out")
ruleset(name="out") {{
  action(type="omfile" file="{d}/received-{tag}.log" template="raw" ioBufferSize="256k" flushOnTXEnd="on")
}}
"""


def forwarder_conf(d, port, lines, action_queue=False):
    work = os.path.join(d, "work-forwarder")
    os.makedirs(work, exist_ok=True)
    queue = ""
    if action_queue:
        queue = (f'\n         queue.type="LinkedList" queue.size="{RSYSLOG_QUEUE}" '
                 f'queue.dequeueBatchSize="{RSYSLOG_BATCH}" queue.workerThreads="1"')
    return f"""global(workDirectory="{work}" maxMessageSize="64k")
main_queue(queue.type="FixedArray" queue.size="{RSYSLOG_QUEUE}" queue.dequeueBatchSize="{RSYSLOG_BATCH}")
module(load="imfile" mode="inotify")
module(load="omrelp" tls.tlslib="openssl")
template(name="line" type="string" string="%rawmsg%")
input(type="imfile" file="{lines}" tag="hsmaudit" readMode="0" freshStartTail="off"
      maxSubmitAtOnce="{RSYSLOG_BATCH}" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omrelp" target="127.0.0.1" port="{port}" windowSize="{RSYSLOG_WINDOW}"
         tls="on" tls.cacert="{d}/ca.pem" tls.mycert="{d}/client.pem" tls.myprivkey="{d}/client.key"
         tls.authmode="name" tls.permittedpeer=["server.test"] template="line"{queue})
}}
"""


def cpu_seconds(pid):
    """utime+stime of a process (all its threads), from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5)


def thread_cpu_seconds(pid):
    """{thread name: utime+stime} of each thread of a process (/proc/<pid>/task/<tid>/stat)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


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

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def imrelp_cpu(self):
        """CPU of the receiver's imrelp input thread ("in:imrelp"), which reads every frame of a session,
        submits it and writes its acknowledgement: a session's frames cannot go faster than it."""
        return thread_cpu_seconds(self.proc.pid).get("in:imrelp", 0.0)

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
        time.sleep(0.002)
    raise RuntimeError("%s: %d of %d lines after %d s" % (path, count, n, timeout))


def parse_kv(text):
    out = {}
    for tok in text.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def run_hsmaudit(d, bench, n, run, extra):
    port = free_port()
    tag = "hsmaudit%d" % run
    recv = Rsyslogd(d, "receiver-" + tag, receiver_conf(d, tag, port))
    try:
        wait_port(port, recv.proc)
        cmd = [bench, "send", "--target", "127.0.0.1:%d" % port, "--ca", d + "/ca.pem", "--cert", d + "/client.pem",
               "--key", d + "/client.key", "--peer", "server.test", "--count", str(n)] + extra
        t0 = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError("relp_bench failed: " + out.stdout + out.stderr)
        t1 = wait_lines(os.path.join(d, "received-%s.log" % tag), n)
        kv = parse_kv(out.stdout)
        cpu = float(kv["cpu_seconds"])
        gen = float(kv["generation_cpu_seconds"])
        return {"rate": n / (t1 - t0), "cpu_us": cpu / n * 1e6, "cpu_nogen_us": (cpu - gen) / n * 1e6,
                "recv_us": recv.cpu() / n * 1e6, "imrelp_us": recv.imrelp_cpu() / n * 1e6,
                "file": os.path.join(d, "received-%s.log" % tag)}
    finally:
        recv.stop()


def run_rsyslog(d, lines, n, run, action_queue=False):
    port = free_port()
    tag = "rsyslog%d" % run
    recv = Rsyslogd(d, "receiver-" + tag, receiver_conf(d, tag, port))
    fwd = None
    try:
        wait_port(port, recv.proc)
        shutil.rmtree(os.path.join(d, "work-forwarder"), ignore_errors=True)  # imfile starts at offset 0
        t0 = time.monotonic()
        fwd = Rsyslogd(d, "forwarder", forwarder_conf(d, port, lines, action_queue))
        t1 = wait_lines(os.path.join(d, "received-%s.log" % tag), n)
        cpu = fwd.cpu()
        return {"rate": n / (t1 - t0), "cpu_us": cpu / n * 1e6, "recv_us": recv.cpu() / n * 1e6,
                "imrelp_us": recv.imrelp_cpu() / n * 1e6, "file": os.path.join(d, "received-%s.log" % tag)}
    finally:
        if fwd:
            fwd.stop()
        recv.stop()


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/ci")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=int, default=0,
                    help="relp_bench's RELP window (0: the exporter's shipped default; any other value is a "
                         "non-default configuration and labelled so)")
    ap.add_argument("--rsyslog-action-queue", choices=["on", "off"], default="off",
                    help="give rsyslog's omrelp action its own LinkedList queue (see the settings above)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    bench = os.path.join(a.build_dir, "bench/exporters/relp/relp_bench")
    if not os.access(bench, os.X_OK):
        sys.exit(bench + " not found: cmake --build " + a.build_dir + " --target relp_bench")
    extra = ["--window", str(a.window)] if a.window else []
    command = " ".join(shlex.quote(x) for x in sys.argv)
    load_start = loadavg()
    print("command:", command, flush=True)
    print("load average at start:", load_start, flush=True)
    d = tempfile.mkdtemp(prefix="hsmaudit-relp-bench-")
    try:
        make_pki(d)
        lines = os.path.join(d, "records.log")
        subprocess.run([bench, "lines", "--count", str(a.records), "--out", lines], check=True)
        ours, theirs = [], []
        same_bytes = None
        for run in range(a.runs):  # interleaved, so drift of the machine hits both alike
            ours.append(run_hsmaudit(d, bench, a.records, run, extra))
            theirs.append(run_rsyslog(d, lines, a.records, run, a.rsyslog_action_queue == "on"))
            if same_bytes is None:
                same_bytes = digest(ours[-1]["file"]) == digest(theirs[-1]["file"]) == digest(lines)
            for r in (ours[-1], theirs[-1]):
                os.unlink(r["file"])
            print("run %d (load %s): hsmaudit %.0f records/s, %.2f us CPU/record (%.2f without generation), "
                  "receiver %.2f us/record (imrelp thread %.2f) | rsyslog %.0f records/s, %.2f us CPU/record, receiver "
                  "%.2f us/record (imrelp thread %.2f)" %
                  (run + 1, loadavg(), ours[-1]["rate"], ours[-1]["cpu_us"], ours[-1]["cpu_nogen_us"],
                   ours[-1]["recv_us"], ours[-1]["imrelp_us"], theirs[-1]["rate"], theirs[-1]["cpu_us"],
                   theirs[-1]["recv_us"], theirs[-1]["imrelp_us"]), flush=True)

        def med(v):
            s = sorted(v)
            return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2

        def col(rs, k):
            v = [r[k] for r in rs]
            return med(v), min(v), max(v)

        o, t = col(ours, "rate"), col(theirs, "rate")
        oc, on, tc = col(ours, "cpu_us"), col(ours, "cpu_nogen_us"), col(theirs, "cpu_us")
        orc, trc = col(ours, "recv_us"), col(theirs, "recv_us")
        oim, tim = col(ours, "imrelp_us"), col(theirs, "imrelp_us")
        window = ("%d (NOT the shipped default)" % a.window) if a.window else "the shipped default"
        print()
        print("==== RELP/TLS delivery, hsmaudit vs tuned rsyslog (summary) ====")
        print("command: %s" % command)
        print("load average: start %s, end %s" % (load_start, loadavg()))
        print("records per run: %d, runs: %d interleaved, same record bytes on both sides: %s" %
              (a.records, a.runs, "yes (received files identical)" if same_bytes else "NO"))
        print("receiver (both): rsyslogd imrelp TLS mutual auth (authmode name), main_queue FixedArray size %d "
              "dequeueBatchSize %d, omfile ioBufferSize 256k flushOnTXEnd on, fresh per run" %
              (RECEIVER_QUEUE, RECEIVER_BATCH))
        print("hsmaudit: relp_bench send, ExportRunner (batch 512) + RelpExporter, window %s, TLS mutual auth" % window)
        aq = ("action queue LinkedList size %d dequeueBatchSize %d workerThreads 1" % (RSYSLOG_QUEUE, RSYSLOG_BATCH)
              if a.rsyslog_action_queue == "on" else "no action queue (the main queue's worker sends)")
        print("rsyslog: imfile mode inotify maxSubmitAtOnce %d -> main_queue FixedArray size %d dequeueBatchSize %d"
              " -> omrelp windowSize %d, %s, TLS mutual auth" % (RSYSLOG_BATCH, RSYSLOG_QUEUE, RSYSLOG_BATCH,
                                                                  RSYSLOG_WINDOW, aq))
        print("%-34s %12s %18s" % ("", "median", "min - max"))
        print("%-34s %12.0f %9.0f - %.0f" % ("hsmaudit records/s", *o))
        print("%-34s %12.0f %9.0f - %.0f" % ("rsyslog records/s", *t))
        print("%-34s %12.2f" % ("ratio hsmaudit/rsyslog (target 2)", o[0] / t[0]))
        print("%-34s %12.2f %9.2f - %.2f" % ("hsmaudit sender CPU us/record", *oc))
        print("%-34s %12.2f %9.2f - %.2f" % ("  without record generation", *on))
        print("%-34s %12.2f %9.2f - %.2f" % ("rsyslog sender CPU us/record", *tc))
        print("%-34s %12.2f" % ("CPU ratio hsmaudit/rsyslog (<=0.5)", oc[0] / tc[0]))
        print("%-34s %12.2f" % ("  without record generation", on[0] / tc[0]))
        print("%-34s %12.2f %9.2f - %.2f" % ("receiver CPU us/record (hsmaudit)", *orc))
        print("%-34s %12.2f %9.2f - %.2f" % ("receiver CPU us/record (rsyslog)", *trc))
        print("%-34s %12.2f %9.2f - %.2f" % ("  its in:imrelp thread (hsmaudit)", *oim))
        print("%-34s %12.2f %9.2f - %.2f" % ("  its in:imrelp thread (rsyslog)", *tim))
        print("%-34s %12.0f records/s (1e6 / the imrelp thread's us per record, hsmaudit runs)" %
              ("receiver ceiling, one session", 1e6 / oim[0] if oim[0] else 0))
    finally:
        if a.keep:
            print("kept", d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

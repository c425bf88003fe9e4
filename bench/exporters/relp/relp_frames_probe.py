#!/usr/bin/env python3
"""What the rsyslog imrelp receiver costs per record depending on how the sender packs RELP frames
into TLS records: a probe for docs, not a product comparison (relp_vs_rsyslog.py is that).

librelp's client (used by hsmaudit's RelpExporter and by rsyslog's omrelp) writes every frame with
its own SSL_write: one TLS record and one write(2) per frame, and the receiver reads them one TLS
record at a time. This probe is a minimal RELP client (Python ssl, TLS with mutual authentication,
the same certificates, records and receiver configuration as relp_vs_rsyslog.py) that sends the
same records either one frame per TLS record (--frames-per-write 1, librelp's pattern) or many
frames per TLS record, keeping at most --window frames unacknowledged, and counts a record only when
its "200 OK" arrives. Runs alternate between the two packings; printed per packing: the receiver's
CPU per record (all threads, and its in:imrelp thread that reads, submits and acknowledges every
frame of the session) and the one-session ceiling 1e6 / (imrelp thread us per record). The probe's
own rate and CPU are Python's and are not figures of anything.

    bench/exporters/relp/relp_frames_probe.py --build-dir build/ci [--records 100000] [--runs 3]
"""
import argparse
import importlib.util
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("relp_vs_rsyslog", os.path.join(HERE, "relp_vs_rsyslog.py"))
rb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rb)


def split_frames(buf):
    """Splits complete RELP frames off `buf`: ([(txnr, command, data)], rest)."""
    out = []
    while True:
        parts = buf.split(b" ", 3)
        if len(parts) < 3:
            return out, buf
        head = len(parts[0]) + len(parts[1]) + 2
        digits = parts[2].split(b"\n", 1)[0]
        if not digits.isdigit():
            if len(parts) == 3 and b"\n" not in parts[2]:
                return out, buf  # the length is not complete yet
            raise RuntimeError("bad frame: %r" % buf[:60])
        n = int(digits)
        start = head + len(digits) + (1 if n > 0 else 0)
        end = start + n
        if len(buf) < end + 1:
            return out, buf
        out.append((int(parts[0]), parts[1], buf[start:end]))
        buf = buf[end + 1:]  # the trailer LF


def send_all(d, port, records, window, per_write):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(d + "/ca.pem")
    ctx.load_cert_chain(d + "/client.pem", d + "/client.key")
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="server.test") as s:
        offers = b"relp_version=0\nrelp_software=hsmaudit-probe\ncommands=syslog"
        s.sendall(b"1 open %d %s\n" % (len(offers), offers))
        buf, got = b"", []
        while not got:
            buf += s.recv(65536)
            got, buf = split_frames(buf)
        if got[0][1] != b"rsp" or not got[0][2].startswith(b"200"):
            raise RuntimeError("open refused: %r" % (got[0],))
        n, sent, acked, txnr = len(records), 0, 0, 2
        while acked < n:
            while sent < n and sent - acked < window:
                k = min(per_write, n - sent, window - (sent - acked))
                frames = []
                for r in records[sent:sent + k]:
                    frames.append(b"%d syslog %d %s\n" % (txnr, len(r), r))
                    txnr += 1
                s.sendall(b"".join(frames))  # one SSL_write (TLS records of up to 16 KiB)
                sent += k
            data = s.recv(65536)
            if not data:
                raise RuntimeError("receiver closed the session")
            got, buf = split_frames(buf + data)
            for txnr_acked, command, rsp in got:
                if command != b"rsp" or not rsp.startswith(b"200") or txnr_acked != acked + 2:
                    raise RuntimeError("not acknowledged in order: %r" % ((txnr_acked, command, rsp),))
                acked += 1
        s.sendall(b"%d close 0\n" % txnr)


def one(d, records, run, window, per_write):
    port = rb.free_port()
    tag = "probe%d-%d" % (run, per_write)
    recv = rb.Rsyslogd(d, "receiver-" + tag, rb.receiver_conf(d, tag, port))
    try:
        rb.wait_port(port, recv.proc)
        t0 = time.monotonic()
        send_all(d, port, records, window, per_write)
        t1 = rb.wait_lines(os.path.join(d, "received-%s.log" % tag), len(records))
        n = len(records)
        out = {"rate": n / (t1 - t0), "recv_us": recv.cpu() / n * 1e6, "imrelp_us": recv.imrelp_cpu() / n * 1e6}
        os.unlink(os.path.join(d, "received-%s.log" % tag))
        return out
    finally:
        recv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/ci")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--frames-per-write", type=int, default=128)
    a = ap.parse_args()
    bench = os.path.join(a.build_dir, "bench/exporters/relp/relp_bench")
    if not os.access(bench, os.X_OK):
        sys.exit(bench + " not found: cmake --build " + a.build_dir + " --target relp_bench")
    print("command:", " ".join(sys.argv))
    load_start = rb.loadavg()
    d = tempfile.mkdtemp(prefix="hsmaudit-relp-probe-")
    try:
        rb.make_pki(d)
        lines = os.path.join(d, "records.log")
        subprocess.run([bench, "lines", "--count", str(a.records), "--out", lines], check=True)
        with open(lines, "rb") as f:
            records = f.read().split(b"\n")[:a.records]
        res = {1: [], a.frames_per_write: []}
        for run in range(a.runs):
            for per_write in (1, a.frames_per_write):
                res[per_write].append(one(d, records, run, a.window, per_write))
                r = res[per_write][-1]
                print("run %d, %d frame(s) per TLS write: receiver %.2f us/record, imrelp thread %.2f us/record "
                      "(probe %.0f records/s)" % (run + 1, per_write, r["recv_us"], r["imrelp_us"], r["rate"]),
                      flush=True)
        med = lambda v: sorted(v)[len(v) // 2]
        print()
        print("==== imrelp receiver cost by frames per TLS record (summary) ====")
        print("load average: start %s, end %s; records %d, window %d, runs %d interleaved" %
              (load_start, rb.loadavg(), a.records, a.window, a.runs))
        for per_write in (1, a.frames_per_write):
            rs = res[per_write]
            rc, im = [r["recv_us"] for r in rs], [r["imrelp_us"] for r in rs]
            print("%4d frame(s) per write: receiver %.2f us/record (%.2f-%.2f), imrelp thread %.2f (%.2f-%.2f), "
                  "one-session ceiling %.0f records/s" % (per_write, med(rc), min(rc), max(rc), med(im), min(im),
                                                          max(im), 1e6 / med(im)))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

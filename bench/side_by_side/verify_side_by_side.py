#!/usr/bin/env python3
"""Offline verification side by side, in one run, on the same records (issue 9):

  (a) `hsmaudit verify --key audit.key DIR` over N records written by `hsmaudit sample`;
  (r) raw HMAC-SHA256 over the same record bytes: hsmaudit_hmac_lines reads the same files and
      computes one HMAC(K, body || previous MAC) per record line and nothing else (the reference);
      plus `openssl dgst -sha256 -hmac` over the same files (one HMAC per file: bulk SHA-256 speed,
      an upper bound no per-record verifier can reach);
  (j) systemd's Forward Secure Sealing: the same N record lines as journal entries (MESSAGE=line,
      the record's module time as __REALTIME_TIMESTAMP), written by `systemd-journal-remote --seal`
      with a sealing key from `journalctl --setup-keys --interval=15min`, verified by
      `journalctl --verify --verify-key=KEY --directory=DIR`.

Each tool runs as a process, single-threaded, from the page cache; the runs are interleaved
(r a j r a j ...) so drift in the machine's load hits all sides alike. Records/s are reported per
wall-clock second and per CPU second of the process (user+sys from wait4), medians of the runs,
and the ratios. Needs root for the FSS key (journald keeps it in /var/log/journal/MACHINE-ID/fss:
an existing file is moved aside and put back, a directory created here is removed).

    bench/side_by_side/verify_side_by_side.py --build-dir build/bench [--records 2000000] [--runs 5]
"""
import argparse
import calendar
import os
import shutil
import subprocess
import sys
import tempfile
import time

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"


def run_timed(cmd, **kw):
    """Runs cmd; returns (wall seconds, cpu seconds, stdout). Raises on a non-zero exit."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out, err = p.communicate()
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s %s" % (cmd[0], p.returncode, out[-2000:], err[-2000:]))
    return wall, out, err


class ChildCpu:
    """CPU seconds (user+sys, clock-tick resolution) of the children reaped inside the block."""

    def __enter__(self):
        r = os.times()
        self.t0 = r.children_user + r.children_system
        return self

    def __exit__(self, *exc):
        r = os.times()
        self.cpu = r.children_user + r.children_system - self.t0


def timed(cmd):
    with ChildCpu() as c:
        wall, out, err = run_timed(cmd)
    return wall, c.cpu, out, err


def record_lines(trail):
    for name in sorted(os.listdir(trail)):
        with open(os.path.join(trail, name), "rb") as f:
            for line in f:
                if line[:1].isdigit():
                    yield line.rstrip(b"\n")


def write_export(trail, path):
    """Journal export format: one entry per record line, the record's module time as its time."""
    boot = b"5f1d0a3e9c7b4e2a8d6f0b1c2d3e4f50"
    n = 0
    cache = {}
    with open(path, "wb", buffering=1 << 20) as out:
        for line in record_lines(trail):
            ts = line.split(b" ", 2)[1]  # YYYY-MM-DDTHH:MM:SS.mmmZ
            sec_key = ts[:19]
            sec = cache.get(sec_key)
            if sec is None:
                sec = calendar.timegm(time.strptime(sec_key.decode(), "%Y-%m-%dT%H:%M:%S"))
                cache[sec_key] = sec
            us = sec * 1_000_000 + int(ts[20:23]) * 1000
            out.write(b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n"
                      b"SYSLOG_IDENTIFIER=hsmaudit\nMESSAGE=%s\n\n" % (us, us - 1_700_000_000_000_000, boot, line))
            n += 1
    return n


class FssKey:
    """journalctl --setup-keys into /var/log/journal/MACHINE-ID/fss, undone at exit."""

    def __init__(self, interval):
        with open("/etc/machine-id") as f:
            mid = f.read().strip()
        self.dir = os.path.join("/var/log/journal", mid)
        self.fss = os.path.join(self.dir, "fss")
        self.created = []
        for d in ("/var/log/journal", self.dir):
            if not os.path.isdir(d):
                os.mkdir(d)
                self.created.append(d)
        self.backup = None
        if os.path.exists(self.fss):
            self.backup = self.fss + ".side-by-side-backup"
            os.rename(self.fss, self.backup)
        out = subprocess.run(["journalctl", "--setup-keys", "--interval=" + interval], capture_output=True,
                             text=True)
        if out.returncode != 0:
            self.close()
            raise RuntimeError("journalctl --setup-keys failed: " + out.stderr)
        self.key = out.stdout.strip().splitlines()[0]

    def close(self):
        if os.path.exists(self.fss):
            os.remove(self.fss)
        if self.backup:
            os.rename(self.backup, self.fss)
        for d in reversed(self.created):
            shutil.rmtree(d, ignore_errors=True)


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/release")
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--segment-records", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workdir", help="where to put the data (default: a temp dir, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the data")
    a = ap.parse_args()
    hsmaudit = os.path.join(a.build_dir, "agent/hsmaudit")
    hmac = os.path.join(a.build_dir, "bench/side_by_side/hsmaudit_hmac_lines")
    for p, t in ((hsmaudit, "hsmaudit"), (hmac, "hsmaudit_hmac_lines")):
        if not os.access(p, os.X_OK):
            sys.exit("%s not found: cmake --build %s --target %s" % (p, a.build_dir, t))
    if not os.access(JOURNAL_REMOTE, os.X_OK):
        sys.exit(JOURNAL_REMOTE + " not found: apt-get install systemd-journal-remote (scripts/setup)")
    if os.geteuid() != 0:
        sys.exit("run as root: journalctl --setup-keys writes /var/log/journal/MACHINE-ID/fss")
    if not os.path.exists("/etc/machine-id"):
        sys.exit("/etc/machine-id is missing: journald's FSS keys are filed under the machine id")

    d = a.workdir or tempfile.mkdtemp(prefix="hsmaudit-verify-sbs-")
    os.makedirs(d, exist_ok=True)
    fss = None
    try:
        fss = FssKey("15min")
        keys, trail = os.path.join(d, "keys"), os.path.join(d, "trail")
        shutil.rmtree(keys, ignore_errors=True)
        shutil.rmtree(trail, ignore_errors=True)
        subprocess.run([hsmaudit, "secret", "init", "--dir", keys], check=True, capture_output=True)
        # Records start now (the FSS key's epochs start at now rounded down to 15 min).
        start = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        t0 = time.monotonic()
        subprocess.run([hsmaudit, "sample", "--dir", keys, "--records", str(a.records), "--segment-records",
                        str(a.segment_records), "--out", trail, "--start-time", start], check=True,
                       capture_output=True)
        print("sample: %d records in %.1f s" % (a.records, time.monotonic() - t0), flush=True)
        export = os.path.join(d, "export.txt")
        n = write_export(trail, export)
        if n != a.records:
            raise RuntimeError("export: %d record lines, expected %d" % (n, a.records))
        jdir = os.path.join(d, "journal")
        shutil.rmtree(jdir, ignore_errors=True)
        os.makedirs(jdir)
        t0 = time.monotonic()
        subprocess.run([JOURNAL_REMOTE, "--seal=yes", "--output=" + os.path.join(jdir, "remote.journal"), export],
                       check=True, capture_output=True)
        print("journal: %d entries sealed by systemd-journal-remote in %.1f s" % (n, time.monotonic() - t0))
        os.remove(export)

        trail_bytes = sum(os.path.getsize(os.path.join(trail, f)) for f in os.listdir(trail))
        journal_bytes = sum(os.path.getsize(os.path.join(jdir, f)) for f in os.listdir(jdir))
        segs = [os.path.join(trail, f) for f in sorted(os.listdir(trail))]
        print("trail: %d files, %.1f MB (%.1f bytes per record line); journal: %d files, %.1f MB" %
              (len(segs), trail_bytes / 1e6, trail_bytes / n, len(os.listdir(jdir)), journal_bytes / 1e6))

        sides = {
            "raw HMAC-SHA256 per record (hsmaudit_hmac_lines)": [hmac, "--key", os.path.join(keys, "audit.key"), trail],
            "hsmaudit verify --key": [hsmaudit, "verify", "-q", "--key", os.path.join(keys, "audit.key"), trail],
            "hsmaudit verify --pubkey": [hsmaudit, "verify", "-q", "--pubkey", os.path.join(keys, "audit.pub"),
                                         "--accept-unproven-tail", trail],  # sample leaves an open tail: exit 3
            "journalctl --verify --verify-key (FSS)": ["journalctl", "--verify", "--verify-key=" + fss.key,
                                                      "--directory=" + jdir],
            "openssl dgst -sha256 -hmac (one HMAC per file)": ["openssl", "dgst", "-sha256", "-hmac",
                                                               "side-by-side"] + segs,
        }
        # Warm the page cache, and check every side succeeds, once before measuring.
        for cmd in sides.values():
            timed(cmd)
        _, _, _, err = timed(sides["journalctl --verify --verify-key (FSS)"])
        jd_out = err.decode(errors="replace").strip().splitlines()
        print("journalctl says: " + " | ".join(l for l in jd_out if "PASS" in l or "Validated" in l)[:400])
        wall = {k: [] for k in sides}
        cpu = {k: [] for k in sides}
        for r in range(a.runs):
            parts = []
            for k, cmd in sides.items():
                w, c, _, _ = timed(cmd)
                wall[k].append(w)
                cpu[k].append(c)
                parts.append("%.2f/%.2f" % (w, c))
            print("run %d (wall/cpu s): %s" % (r + 1, "  ".join(parts)), flush=True)
        print()
        print("records: %d (%.1f bytes per record line); medians of %d interleaved runs; load average before: %s" %
              (n, trail_bytes / n, a.runs, open("/proc/loadavg").read().split()[:3]))
        print("%-52s %15s %15s" % ("side", "records/s wall", "records/s CPU"))
        rate_w = {k: n / median(v) for k, v in wall.items()}
        rate_c = {k: n / median(v) for k, v in cpu.items()}
        for k in sides:
            print("%-52s %15s %15s" % (k, "{:,.0f}".format(rate_w[k]), "{:,.0f}".format(rate_c[k])))
        ref = "raw HMAC-SHA256 per record (hsmaudit_hmac_lines)"
        ver = "hsmaudit verify --key"
        jd = "journalctl --verify --verify-key (FSS)"
        print()
        print("ratio hsmaudit verify --key / raw HMAC:        %.2f (CPU)  %.2f (wall)" %
              (rate_c[ver] / rate_c[ref], rate_w[ver] / rate_w[ref]))
        print("ratio hsmaudit verify --key / journalctl FSS:  %.2f (CPU)  %.2f (wall)" %
              (rate_c[ver] / rate_c[jd], rate_w[ver] / rate_w[jd]))
        print("ratio hsmaudit verify --pubkey / journalctl:   %.2f (CPU)  %.2f (wall)" %
              (rate_c["hsmaudit verify --pubkey"] / rate_c[jd], rate_w["hsmaudit verify --pubkey"] / rate_w[jd]))
    finally:
        if fss:
            fss.close()
        if a.keep or a.workdir:
            print("data kept in", d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

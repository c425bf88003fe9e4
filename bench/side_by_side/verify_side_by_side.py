#!/usr/bin/env python3
"""Offline verification side by side, in one run, on the same records (issues 9 and 18):

  (a) `hsmaudit verify --key audit.key DIR` over N records written by `hsmaudit sample --encrypt`:
      segments encrypted at rest as the agent writes them by default (store.encrypt: true), with
      the default --jobs (every CPU online: segments verified in parallel, merged in chain order)
      and with --jobs 1 (one thread, as before issue 18); `--pubkey` with the default jobs on the
      plain copy (a public key cannot decrypt: labelled, not the default configuration);
  (r) raw HMAC-SHA256 over the same record bytes, one core: hsmaudit_hmac_lines reads the same
      records (from a plain copy of the trail, written by `hsmaudit sample` with the same keys and
      seed, so the record lines are byte for byte the same) and computes one HMAC(K, body ||
      previous MAC) per record line and nothing else (the reference);
  (j) systemd's Forward Secure Sealing: the same N record lines as journal entries (MESSAGE=line,
      the record's module time as __REALTIME_TIMESTAMP), written by `systemd-journal-remote --seal`
      with a sealing key from `journalctl --setup-keys --interval=15min`, verified by
      `journalctl --verify --verify-key=KEY --directory=DIR` (journald as shipped: one thread).

Each tool runs as a process from the page cache; the runs are interleaved (r a a1 p j r a a1 p j
...) so drift in the machine's load hits all sides alike. Records/s are reported per wall-clock
second and per CPU second of the process (user+sys of it and its threads, from wait4), medians of
the runs with the min-max spread, and the ratios of the medians. The load average is printed at
the start and at the end. Needs root for the FSS key (journald keeps it in
/var/log/journal/MACHINE-ID/fss: an existing file is moved aside and put back, a directory
created here is removed).

    bench/side_by_side/verify_side_by_side.py --build-dir build/ci [--records 1000000] [--runs 5]
    bench/side_by_side/verify_side_by_side.py --build-dir build/ci --quick     (a smoke test, < 15 s)
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


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/ci")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--segment-records", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=0, help="--jobs of the parallel side (default: hsmaudit's, the CPUs online)")
    ap.add_argument("--quick", action="store_true", help="a smoke test: 2,000 records, 1 run")
    ap.add_argument("--workdir", help="where to put the data (default: a temp dir, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the data")
    a = ap.parse_args()
    if a.quick:
        a.records, a.segment_records, a.runs = 2_000, 200, 1
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

    load_start = loadavg()
    print("command: " + " ".join(sys.argv))
    print("load average at start: %s; CPUs online: %d" % (load_start, os.cpu_count()), flush=True)
    d = a.workdir or tempfile.mkdtemp(prefix="hsmaudit-verify-sbs-")
    os.makedirs(d, exist_ok=True)
    fss = None
    try:
        fss = FssKey("15min")
        keys, trail, plain = os.path.join(d, "keys"), os.path.join(d, "trail"), os.path.join(d, "plain")
        for p in (keys, trail, plain):
            shutil.rmtree(p, ignore_errors=True)
        subprocess.run([hsmaudit, "secret", "init", "--dir", keys], check=True, capture_output=True)
        # Records start now (the FSS key's epochs start at now rounded down to 15 min).
        start = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        sample = [hsmaudit, "sample", "--dir", keys, "--records", str(a.records), "--segment-records",
                  str(a.segment_records), "--start-time", start]
        t0 = time.monotonic()
        subprocess.run(sample + ["--out", trail, "--encrypt"], check=True, capture_output=True)
        subprocess.run(sample + ["--out", plain], check=True, capture_output=True)
        print("sample: %d records, encrypted at rest and a plain copy, in %.1f s" % (a.records, time.monotonic() - t0),
              flush=True)
        export = os.path.join(d, "export.txt")
        n = write_export(plain, export)
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
        plain_bytes = sum(os.path.getsize(os.path.join(plain, f)) for f in os.listdir(plain))
        journal_bytes = sum(os.path.getsize(os.path.join(jdir, f)) for f in os.listdir(jdir))
        print("trail: %d segment files, %.1f MB encrypted at rest (%.1f MB plain, %.1f bytes per record line); "
              "journal: %d files, %.1f MB" % (len(os.listdir(trail)), trail_bytes / 1e6, plain_bytes / 1e6,
                                              plain_bytes / n, len(os.listdir(jdir)), journal_bytes / 1e6))

        key = os.path.join(keys, "audit.key")
        jobs = ["--jobs", str(a.jobs)] if a.jobs else []
        RAW, PAR, ONE = ("raw HMAC-SHA256, 1 core (hsmaudit_hmac_lines)", "hsmaudit verify --key (default jobs)",
                         "hsmaudit verify --key --jobs 1")
        PUB, JD = "verify --pubkey, default jobs (plain copy)", "journalctl --verify --verify-key (FSS)"
        sides = {
            RAW: [hmac, "--key", key, plain],
            PAR: [hsmaudit, "verify", "-q", "--key", key] + jobs + [trail],
            ONE: [hsmaudit, "verify", "-q", "--key", key, "--jobs", "1", trail],
            # sample leaves an open tail, which the public key cannot authenticate: exit 3 without the flag
            # (segments encrypted at rest need the audit secret: the public key checks the plain copy)
            PUB: [hsmaudit, "verify", "-q", "--pubkey", os.path.join(keys, "audit.pub"), "--accept-unproven-tail"] +
                 jobs + [plain],
            JD: ["journalctl", "--verify", "--verify-key=" + fss.key, "--directory=" + jdir],
        }
        for k, cmd in sides.items():
            print("  %-44s %s" % (k + ":", " ".join(cmd)))
        # Warm the page cache, and check every side succeeds, once before measuring.
        for cmd in sides.values():
            timed(cmd)
        _, _, _, err = timed(sides[JD])
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
            print("run %d (wall/cpu s, in the order above): %s" % (r + 1, "  ".join(parts)), flush=True)
        load_end = loadavg()

        def spread(v):
            return "%.3f-%.3f" % (min(v), max(v))

        rate_w = {k: n / median(v) for k, v in wall.items()}
        rate_c = {k: n / median(v) for k, v in cpu.items()}
        print()
        print("==== verify_side_by_side summary ====")
        print("records: %d in %d segments of %d, encrypted at rest (the default); %.1f bytes per record line" %
              (n, len(os.listdir(trail)), a.segment_records, plain_bytes / n))
        print("medians of %d interleaved runs; CPUs online: %d; load average: %s at start, %s at end" %
              (a.runs, os.cpu_count(), load_start, load_end))
        print("%-46s %14s %14s %17s %17s" % ("side", "records/s wall", "records/s CPU", "wall s (min-max)",
                                              "CPU s (min-max)"))
        for k in sides:
            print("%-46s %14s %14s %17s %17s" % (k, "{:,.0f}".format(rate_w[k]), "{:,.0f}".format(rate_c[k]),
                                                  spread(wall[k]), spread(cpu[k])))
        print()
        print("verify --key (default jobs) / raw HMAC 1 core:  %.2f (wall)   target >= 1.6" %
              (rate_w[PAR] / rate_w[RAW]))
        print("verify --key (default jobs) / --jobs 1:          %.2f (wall)   %.2f (CPU)" %
              (rate_w[PAR] / rate_w[ONE], rate_c[PAR] / rate_c[ONE]))
        print("verify --key --jobs 1 / raw HMAC 1 core:         %.2f (wall)   %.2f (CPU)" %
              (rate_w[ONE] / rate_w[RAW], rate_c[ONE] / rate_c[RAW]))
        print("verify --key (default jobs) / journalctl FSS:    %.2f (wall)   %.2f (CPU)" %
              (rate_w[PAR] / rate_w[JD], rate_c[PAR] / rate_c[JD]))
        print("verify --key --jobs 1 / journalctl FSS:          %.2f (wall)   %.2f (CPU)" %
              (rate_w[ONE] / rate_w[JD], rate_c[ONE] / rate_c[JD]))
        print("verify --pubkey (plain copy) / journalctl FSS:   %.2f (wall)   %.2f (CPU)" %
              (rate_w[PUB] / rate_w[JD], rate_c[PUB] / rate_c[JD]))
        print("=====================================")
    finally:
        if fss:
            fss.close()
        if a.keep or a.workdir:
            print("data kept in", d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

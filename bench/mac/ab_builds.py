#!/usr/bin/env python3
"""Two builds of hsmaudit side by side, interleaved in one run (issue 18: one change, old vs new,
on a shared machine where wall time alone is noise):

  verify: `hsmaudit verify -q --key K --jobs 1 TRAIL` of each build over the same encrypted trail
          (written once by `hsmaudit sample --encrypt`, segments of 50,000 records: the default
          configuration, one thread); CPU seconds of the process (user+sys from wait4) and wall.
  drain:  `hsmaudit_bench_agent --only enc1 --records N --runs 1` of each build: drain + verify +
          store, encrypted at rest, pinned to one CPU (its own summary row: rec/s, the drain
          thread's CPU ns per record).

Runs alternate A B B A A B ... (>= 3 each), medians and min-max printed with the ratio new/old,
the load average at start and end, and the exact commands.

    bench/mac/ab_builds.py --old build/base --new build/ci [--records 1000000] [--runs 5]
    bench/mac/ab_builds.py --old build/base --new build/ci --quick      (< 15 s)

--old/--new: a build directory (agent/hsmaudit, bench/agent/hsmaudit_bench_agent) or a
directory holding the two binaries side by side (e.g. copies of an older build's).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def binary(d, rel):
    for p in (os.path.join(d, rel), os.path.join(d, os.path.basename(rel))):
        if os.access(p, os.X_OK):
            return p
    sys.exit("%s: no %s" % (d, rel))


def timed(cmd):
    """(wall s, cpu s of the child, stdout)."""
    r0 = os.times()
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.monotonic() - t0
    r1 = os.times()
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    cpu = (r1.children_user + r1.children_system) - (r0.children_user + r0.children_system)
    return wall, cpu, p.stdout.decode()


def drain_row(out):
    """rec/s median and drain-thread ns per record from hsmaudit_bench_agent --only's one row."""
    for line in out.splitlines():
        if line.startswith("encrypted at rest"):
            # ... rec/s med, rec/s min-max, thr ns, proc ns, rec/proc-CPU-s (the side's name has spaces)
            f = line.split()
            return float(f[-5]), float(f[-3]), float(f[-2])
    raise RuntimeError("no result row in: " + out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--drain-records", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="20,000 records, 1 run each")
    ap.add_argument("--skip-drain", action="store_true")
    ap.add_argument("--skip-verify", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.records, a.drain_records, a.runs = 20_000, 20_000, 1
    builds = {"old": a.old, "new": a.new}
    hsm = {k: binary(d, "agent/hsmaudit") for k, d in builds.items()}
    bench = {k: binary(d, "bench/agent/hsmaudit_bench_agent") for k, d in builds.items()}
    load_start = loadavg()
    print("command: " + " ".join(sys.argv))
    print("load average at start: %s; CPUs online: %d" % (load_start, os.cpu_count()), flush=True)
    d = tempfile.mkdtemp(prefix="hsmaudit-ab-")
    try:
        keys, trail = os.path.join(d, "keys"), os.path.join(d, "trail")
        subprocess.run([hsm["old"], "secret", "init", "--dir", keys], check=True, capture_output=True)
        subprocess.run([hsm["old"], "sample", "--dir", keys, "--records", str(a.records), "--segment-records",
                        "50000", "--start-time", "2026-12-05T00:00:00.000Z", "--out", trail, "--encrypt"],
                       check=True, capture_output=True)
        key = os.path.join(keys, "audit.key")
        verify = {k: [hsm[k], "verify", "-q", "--key", key, "--jobs", "1", trail] for k in builds}
        drain = {k: [bench[k], "--only", "enc1", "--records", str(a.drain_records), "--runs", "1"] for k in builds}
        for k in builds:
            if not a.skip_verify:
                print("  verify %s: %s" % (k, " ".join(verify[k])))
            if not a.skip_drain:
                print("  drain  %s: %s" % (k, " ".join(drain[k])))
        if not a.skip_verify:
            for k in builds:  # page cache, and both succeed
                timed(verify[k])
        res = {(s, k): [] for s in ("verify_wall", "verify_cpu", "drain_rate", "drain_thr_ns") for k in builds}
        for r in range(a.runs):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            parts = []
            for k in order:
                if not a.skip_verify:
                    w, c, _ = timed(verify[k])
                    res[("verify_wall", k)].append(w)
                    res[("verify_cpu", k)].append(c)
                    parts.append("verify %s %.3f/%.3f s" % (k, w, c))
                if not a.skip_drain:
                    _, _, out = timed(drain[k])
                    rate, thr, _ = drain_row(out)
                    res[("drain_rate", k)].append(rate)
                    res[("drain_thr_ns", k)].append(thr)
                    parts.append("drain %s %.0f rec/s %.0f ns" % (k, rate, thr))
            print("run %d: %s" % (r + 1, "; ".join(parts)), flush=True)
        load_end = loadavg()
        print()
        print("==== ab_builds summary (old %s, new %s) ====" % (a.old, a.new))
        print("medians of %d interleaved runs each; load average %s at start, %s at end; CPUs %d" %
              (a.runs, load_start, load_end, os.cpu_count()))
        rows = []
        if not a.skip_verify:
            rows += [("verify --jobs 1, %d records: wall s" % a.records, "verify_wall", False),
                     ("verify --jobs 1, %d records: CPU s" % a.records, "verify_cpu", False)]
        if not a.skip_drain:
            rows += [("drain enc1 (1 CPU pinned), %d records: rec/s" % a.drain_records, "drain_rate", True),
                     ("drain enc1: drain thread CPU ns/record", "drain_thr_ns", False)]
        print("%-52s %12s %21s %12s %21s %9s" % ("measure", "old median", "old min-max", "new median",
                                                 "new min-max", "new/old"))
        for name, key, _ in rows:
            o, n = res[(key, "old")], res[(key, "new")]
            print("%-52s %12.3f %10.3f-%-10.3f %12.3f %10.3f-%-10.3f %9.3f" %
                  (name, median(o), min(o), max(o), median(n), min(n), max(n), median(n) / median(o)))
        if not a.skip_verify:
            n = a.records
            o_rate = n / median(res[("verify_cpu", "old")])
            n_rate = n / median(res[("verify_cpu", "new")])
            print("verify records per CPU second: old %.0f, new %.0f (x%.2f); per record: old %.3f us, new %.3f us" %
                  (o_rate, n_rate, n_rate / o_rate, 1e6 / o_rate, 1e6 / n_rate))
        print("=============================================")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

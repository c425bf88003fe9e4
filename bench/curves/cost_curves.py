#!/usr/bin/env python3
"""Cost curves (issue 18, item 4): how offline verification, the drain and the agent's memory grow
with the size of the trail (10^4 .. 10^7 records) and with the number of destinations (1 .. 8).
Every figure comes from the real binaries of a build directory; this script only starts them,
times them and writes what it saw. bench/curves/plot_curves.py draws the charts from its output.

The configuration is the one that ships (config/hsmauditd-appliance.yaml: every key at its
default): encryption at rest on (store.encrypt), online verification of every record by the drain
(always on), the Merkle tree on (checkpoint.tree_heads), the destinations' default settings (RELP:
window 128, batch 512, max_in_flight 10000). What this script sets besides, and why, is named
below and printed with the results.

Three curves, each point one run (the spread is the point of plotting every run):

  trail   For each size N: `hsmauditd` with the embedded module (16 MiB ring) and its built-in
          workload at module.workload.rate min(N, 1000000) ops/s, mix `encrypt=100` (AES-256-GCM,
          the cheapest audited operation: the fastest way the module emulator makes records, the
          same as bench/side_by_side/backlog_scaling.py), one RELP destination that is down
          (nothing listens on its port: the whole trail is its backlog, as after an outage), and
          agent.status_interval 100ms (only so that the script sees N reached within 0.1 s; it
          writes a small JSON file). When status.json shows N records stored the agent is stopped
          (SIGTERM) and the script records:
            - the agent's peak memory (VmHWM, which includes the embedded module and its mapped
              16 MiB ring) and its records/s (the module's workload bounds it, not the drain);
            - `hsmaudit verify --json --key module/audit.key state/audit` on the store it wrote
              (encrypted segments), --verify-runs times: wall seconds, user+sys CPU seconds and
              peak RSS of the verifier (wait4's rusage), the records it verified (the x axis is
              that count: the agent stops a little after N) and its verdict (must be "verified").
          The trail is deleted before the next point (10^7 records take ~2.3 GB).
  drain   The drain's own ceiling (no module, no I/O wait but fsync): bench/agent/drain_bench
          (hsmaudit_bench_agent) run with a record count, BM_DrainVerifyStore/1/1 (encrypted at
          rest, Merkle tree on: the default), records/s as it prints them. Needs the bench's
          record-count argument (--drain-records-arg); without it the curve is skipped and
          said so.
  dests   For each D in --dests: `hsmcore init` + `hsmcore serve` (16 MiB ring, audit mask all),
          `hsmauditd` in connect mode with D destinations of type relp (RELP over TLS, mutual
          authentication, EC P-256 certificates, the exporter's default settings), all to one
          `rsyslogd` (imrelp, tls.tlslib openssl, tls.authmode name; its ruleset writes the
          messages to /dev/null: the receiver's disk is not measured), and `hsmcore load --rate R --threads 2
          --duration S` (default mix). The script waits until every destination has delivered
          every record drained, then records the agent's VmHWM, its user+sys CPU seconds per
          10,000 records drained (from just before the load until the last acknowledgement),
          and how long the last destination took to catch up after the load ended
          (agent.status_interval 100ms here too, so that status.json shows the catch-up within 0.1 s).

Runs are interleaved (round 1: every size, then every destination count; round 2: the same...),
so a change of the machine's load hits every point alike. The load average is printed at the
start and the end of each curve and stored with each point.

    bench/curves/cost_curves.py --build-dir build/ci --out /tmp/curves [--runs 3]
    bench/curves/cost_curves.py --build-dir build/ci --out /tmp/curves --quick     # < 20 s
    bench/curves/plot_curves.py --in /tmp/curves --docs docs

Writes OUT/results.json (every point, the configuration, machine, commands) and OUT/results.csv.
"""
import argparse
import csv
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "side_by_side"))
import e2e_common as c  # noqa: E402

FULL_SIZES = [10_000, 100_000, 1_000_000, 10_000_000]
FULL_DESTS = [1, 2, 4, 8]


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def log(msg):
    print(msg, flush=True)


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_mib": mem, "kernel": platform.release(),
            "host": platform.node()}


def timed(cmd, **kw):
    """Runs cmd to its end; returns (returncode, stdout, wall s, user+sys CPU s, peak RSS MiB) from wait4."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out, err = [], []
    # Read both pipes without blocking the child (verify --json output can be large).
    try:
        te = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
        te.start()
        out.append(p.stdout.read())
        te.join()
        _, status, ru = os.wait4(p.pid, 0)
    except BaseException:  # SIGTERM (SystemExit) or ^C: do not leave the child running
        p.kill()
        p.wait()
        raise
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, out[0], err[0], wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------------
# trail: generate N records through the real agent, then verify them offline


def trail_conf(module_dir, state_dir, dead_port, rate):
    return f"""agent:
  state_dir: {state_dir}
  status_interval: 100ms
module:
  mode: embedded
  dir: {module_dir}
  workload:
    rate: {rate}
    mix: encrypt=100
exporters:
  down:
    type: relp
    streams: audit
    relp:
      target: 127.0.0.1:{dead_port}
      tls: false
"""


def trail_point(a, n, rnd, work):
    d = tempfile.mkdtemp(prefix="trail-%d-" % n, dir=work)
    module_dir, state_dir = os.path.join(d, "module"), os.path.join(d, "state")
    rate = min(n, 1_000_000)
    conf = os.path.join(d, "hsmauditd.yaml")
    with open(conf, "w") as f:
        f.write(trail_conf(module_dir, state_dir, c.free_port(), rate))
    agentd = os.path.join(a.build_dir, "agent/hsmauditd")
    hsmaudit = os.path.join(a.build_dir, "agent/hsmaudit")
    la0 = loadavg()
    agent = c.Proc([agentd, "-c", conf], os.path.join(d, "hsmauditd.err"))
    point = {"curve": "trail", "round": rnd, "target_records": n, "workload_rate": rate}
    try:
        c.wait_until(lambda: (c.read_status(state_dir) or {}).get("drain"), 60, "hsmauditd status", agent.proc)
        t0, cpu0 = time.monotonic(), c.cpu_seconds(agent.pid)
        first = c.read_status(state_dir)["drain"]["records"]
        deadline = t0 + a.max_generate_seconds
        rec = first
        while True:
            time.sleep(0.05)
            if not agent.alive():
                raise RuntimeError("hsmauditd exited: see " + agent.log)
            st = c.read_status(state_dir) or {}
            rec = st.get("drain", {}).get("records", rec)
            if rec >= n or time.monotonic() > deadline:
                break
        t1, cpu1 = time.monotonic(), c.cpu_seconds(agent.pid)
        hwm = c.proc_status_kb(agent.pid, "VmHWM") / 1024.0
        rss = c.proc_status_kb(agent.pid, "VmRSS") / 1024.0
        st = c.read_status(state_dir) or {}
    finally:
        agent.stop(timeout=120)
    point.update({
        "generate_seconds": t1 - t0, "stored_at_stop": rec,
        "agent_records_per_s": (rec - first) / (t1 - t0) if t1 > t0 else None,
        "agent_cpu_s": cpu1 - cpu0, "agent_vmhwm_mib": hwm, "agent_vmrss_mib": rss,
        "ring_fill_peak": st.get("ring", {}).get("fill_peak"), "store_bytes": c.dir_bytes(os.path.join(state_dir, "audit")),
        "reached_target": rec >= n,
    })
    if rec < n:
        log("  NOTE: %d records after --max-generate-seconds %g (asked %d): the point is kept with its real count"
            % (rec, a.max_generate_seconds, n))
    key = os.path.join(module_dir, "audit.key")
    verifies = []
    for v in range(a.verify_runs):
        rc, out, err, wall, cpu, maxrss = timed([hsmaudit, "verify", "--json", "--key", key, os.path.join(state_dir, "audit")])
        try:
            rep = json.loads(out)
        except ValueError:
            rep = {}
        if rc != 0 or rep.get("verdict") != "verified":
            raise RuntimeError("hsmaudit verify exit %d verdict %s: %s" % (rc, rep.get("verdict"), err.decode()[-500:]))
        verifies.append({"wall_s": wall, "cpu_s": cpu, "maxrss_mib": maxrss, "records": rep["records"],
                         "segments": len(rep.get("segments", [])), "bytes": rep.get("bytes")})
    point["verify"] = verifies
    point["records"] = verifies[0]["records"]
    point["load_avg"] = [la0, loadavg()]
    shutil.rmtree(d, ignore_errors=True)
    return point


# ---------------------------------------------------------------------------------------------
# drain: the drain's ceiling from hsmaudit_bench_agent with a record count


def drain_bench_path(a):
    return a.drain_bench or os.path.join(a.build_dir, "bench/agent/hsmaudit_bench_agent")


def drain_bench_supported(a):
    """The bench takes a record count when its --help names the argument (the `speed` work adds it)."""
    exe = drain_bench_path(a)
    if not os.access(exe, os.X_OK):
        return False, exe + " not built"
    flag = a.drain_records_arg.split()[0].split("=")[0]
    r = subprocess.run([exe, "--help"], capture_output=True, text=True)
    if flag not in r.stdout + r.stderr:
        return False, "%s --help does not name %s (no record-count argument in this build)" % (exe, flag)
    return True, ""


def drain_point(a, n, rnd):
    exe = drain_bench_path(a)
    args = [x.format(n=n) for x in a.drain_records_arg.split()]
    cmd = [exe] + args + ["--benchmark_filter=" + a.drain_filter, "--benchmark_format=json"]
    la0 = loadavg()
    rc, out, err, wall, cpu, maxrss = timed(cmd)
    if rc != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), rc, err.decode()[-800:]))
    rep = json.loads(out)
    rates, cpu_rates = [], []
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    for b in rep.get("benchmarks", []):
        if b.get("error_occurred"):
            raise RuntimeError("%s: %s" % (b.get("name"), b.get("error_message")))
        if b.get("run_type", "iteration") == "iteration" and "records/s" in b:
            rates.append(b["records/s"])
            # cpu_time: the benchmark's own thread (the drain), per iteration; the Merkle tree's helper
            # thread is not in it. Less sensitive to a loaded machine than the wall-clock rate.
            cpu_rates.append(n / (b["cpu_time"] * unit[b.get("time_unit", "ns")]))
    if not rates:
        raise RuntimeError("no records/s in the output of " + " ".join(cmd))
    return {"curve": "drain", "round": rnd, "records": n, "records_per_s": rates,
            "records_per_drain_cpu_s": cpu_rates, "bench_wall_s": wall,
            "bench_cpu_s": cpu, "bench_maxrss_mib": maxrss, "command": " ".join(cmd), "load_avg": [la0, loadavg()]}


# ---------------------------------------------------------------------------------------------
# dests: the real agent fed by hsmcore at a fixed rate, D RELP/TLS destinations to one rsyslogd


def rsyslog_conf(d, port):
    work = os.path.join(d, "rsyslog-work")
    os.makedirs(work, exist_ok=True)
    return f"""global(workDirectory="{work}" maxMessageSize="64k")
module(load="imrelp" tls.tlslib="openssl")
input(type="imrelp" port="{port}" address="127.0.0.1" tls="on" tls.cacert="{d}/ca.pem"
      tls.mycert="{d}/server.pem" tls.myprivkey="{d}/server.key" tls.authmode="name"
      tls.permittedpeer=["client.test"] ruleset="discard")
ruleset(name="discard") {{ action(type="omfile" file="/dev/null" template="RSYSLOG_FileFormat") }}
"""


def dests_conf(d, module_dir, state_dir, port, n):
    s = f"""agent:
  state_dir: {state_dir}
  status_interval: 100ms
module:
  mode: connect
  dir: {module_dir}
exporters:
"""
    for i in range(n):
        s += f"""  relp{i + 1}:
    type: relp
    streams: audit
    relp:
      target: 127.0.0.1:{port}
      ca: {d}/ca.pem
      cert: {d}/client.pem
      key: {d}/client.key
      permitted_peers: server.test
"""
    return s


def delivered_all(st, names):
    """Records each destination has had acknowledged (status.json), or None when one is missing."""
    out = {}
    for e in st.get("exporters", []):
        if e.get("name") in names:
            out[e["name"]] = (e.get("delivered") or {}).get("audit", 0)
    return out if len(out) == len(names) else None


def dests_point(a, n, rnd, work, pki):
    d = tempfile.mkdtemp(prefix="dests-%d-" % n, dir=work)
    for f in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key"):
        shutil.copy(os.path.join(pki, f), d)
    hsmcore = os.path.join(a.build_dir, "hsmcore/hsmcore")
    agentd = os.path.join(a.build_dir, "agent/hsmauditd")
    module_dir, state_dir = os.path.join(d, "module"), os.path.join(d, "state")
    names = ["relp%d" % (i + 1) for i in range(n)]
    procs = []
    la0 = loadavg()
    try:
        serve = c.start_module(hsmcore, module_dir, d)
        procs.append(serve)
        port = c.free_port()
        rsyslog = c.start_rsyslog(rsyslog_conf(d, port), d, port)
        procs.append(rsyslog)
        aconf = os.path.join(d, "hsmauditd.yaml")
        with open(aconf, "w") as f:
            f.write(dests_conf(d, module_dir, state_dir, port, n))
        agent = c.Proc([agentd, "-c", aconf], os.path.join(d, "hsmauditd.err"))
        procs.append(agent)

        def caught_up():
            st = c.read_status(state_dir)
            if not st or not st.get("drain"):
                return None
            dl = delivered_all(st, names)
            rec = st["drain"]["records"]
            return st if dl is not None and rec > 0 and min(dl.values()) >= rec else None

        # The module's first records (init, start) delivered everywhere: every destination is up.
        st0 = c.wait_until(caught_up, 60, "every destination delivered the first records", agent.proc)
        rec0 = st0["drain"]["records"]
        perf = None
        if a.profile_dests == n and rnd == 1:
            perf_data = os.path.join(os.path.abspath(a.out), "perf-dests-%d.data" % n)
            perf = c.Proc(["perf", "record", "-e", "cpu-clock", "-F", "499", "-g", "-p", str(agent.pid), "-o",
                           perf_data], os.path.join(d, "perf.err"))
            time.sleep(0.5)  # perf attaches
        cpu0 = c.cpu_seconds(agent.pid)
        t0 = time.monotonic()
        load = subprocess.run([hsmcore, "load", "--dir", module_dir, "--rate", str(a.rate), "--duration",
                               str(a.duration), "--threads", str(a.threads), "--json"], capture_output=True, text=True)
        if load.returncode != 0:
            raise RuntimeError("hsmcore load: " + load.stdout + load.stderr)
        lj = json.loads(load.stdout.strip().splitlines()[-1])
        t_load = time.monotonic()

        # Drained everything (two status files a second apart with the same count) and delivered it.
        def done():
            s1 = caught_up()
            if not s1:
                return None
            time.sleep(0.3)
            s2 = caught_up()
            return s2 if s2 and s2["drain"]["records"] == s1["drain"]["records"] else None

        st1 = c.wait_until(done, a.catch_up_timeout, "every destination delivered every record", agent.proc)
        t1 = time.monotonic()
        cpu1 = c.cpu_seconds(agent.pid)
        hwm = c.proc_status_kb(agent.pid, "VmHWM") / 1024.0
        rss = c.proc_status_kb(agent.pid, "VmRSS") / 1024.0
        if perf is not None:
            perf.stop(sig=signal.SIGINT, timeout=60)
            report = os.path.join(os.path.abspath(a.out), "perf-dests-%d.txt" % n)
            with open(report, "w") as f:
                subprocess.run(["perf", "report", "-i", perf_data, "--no-children", "--stdio", "-g", "none",
                                "--percent-limit", "0.7", "--sort", "dso,symbol"], stdout=f, stderr=subprocess.DEVNULL)
            log("  perf profile of hsmauditd with %d destinations (cpu-clock, --no-children): %s" % (n, report))
            with open(report) as f:
                for line in [x for x in f if x.strip() and not x.startswith("#")][:25]:
                    log("    " + line.rstrip().rstrip("- ").rstrip())
        records = st1["drain"]["records"] - rec0
        dl = delivered_all(st1, names)
        return {"curve": "dests", "round": rnd, "destinations": n, "records": records,
                "ops_per_s": lj.get("ops_per_s"), "refused": lj.get("refused_log_full"),
                "deliveries": sum(dl.values()) - n * rec0,
                "agent_vmhwm_mib": hwm, "agent_vmrss_mib": rss, "agent_cpu_s": cpu1 - cpu0,
                "agent_cpu_per_10k": (cpu1 - cpu0) / records * 10000 if records else None,
                "catch_up_s": t1 - t_load, "seconds": t1 - t0,
                "ring_fill_peak": st1.get("ring", {}).get("fill_peak"), "load_avg": [la0, loadavg()]}
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------


def med(v):
    v = [x for x in v if x is not None]
    return c.median(v) if v else float("nan")


def summary(res):
    lines = []
    pts = res["points"]
    tr = [p for p in pts if p["curve"] == "trail"]
    if tr:
        lines.append("trail size (hsmauditd embedded, encrypt=100 workload, store encrypted, 1 RELP destination down;"
                     " then hsmaudit verify --key on its store):")
        lines.append("  %12s %5s %22s %22s %16s %22s %18s" % ("records", "runs", "verify wall s med (min-max)",
                                                           "verify CPU s med (min-max)", "verify Mrec/CPU-s",
                                                           "verify peak RSS MiB", "agent VmHWM MiB"))
        for n in sorted({p["target_records"] for p in tr}):
            ps = [p for p in tr if p["target_records"] == n]
            vw = [v["wall_s"] for p in ps for v in p["verify"]]
            vc = [v["cpu_s"] for p in ps for v in p["verify"]]
            vr = [v["maxrss_mib"] for p in ps for v in p["verify"]]
            recs = med([p["records"] for p in ps])
            hw = [p["agent_vmhwm_mib"] for p in ps]
            lines.append("  %12s %5d %9.3f (%.3f-%.3f) %9.3f (%.3f-%.3f) %16.2f %9.1f (%.1f-%.1f) %7.1f (%.1f-%.1f)" % (
                "{:,.0f}".format(recs), len(vw), med(vw), min(vw), max(vw), med(vc), min(vc), max(vc),
                recs / med(vc) / 1e6, med(vr), min(vr), max(vr), med(hw), min(hw), max(hw)))
        lines.append("  agent records/s while generating (bounded by the module's workload, not the drain): " +
                     ", ".join("%s: %s" % ("{:,}".format(n), "{:,.0f}".format(med([p["agent_records_per_s"] for p in tr
                                                                                   if p["target_records"] == n])))
                               for n in sorted({p["target_records"] for p in tr})))
    dr = [p for p in pts if p["curve"] == "drain"]
    if dr:
        lines.append("drain ceiling (hsmaudit_bench_agent %s: encrypted at rest, Merkle tree on):"
                     % res["config"]["drain_filter"])
        lines.append("  %12s %5s %34s %34s" % ("records", "runs", "records/s wall, med (min-max)",
                                                "records/s per drain-thread CPU s"))
        for n in sorted({p["records"] for p in dr}):
            v = [x for p in dr if p["records"] == n for x in p["records_per_s"]]
            u = [x for p in dr if p["records"] == n for x in p.get("records_per_drain_cpu_s", [])] or [float("nan")]
            lines.append("  %12s %5d %34s %34s" % (
                "{:,}".format(n), len(v), "%s (%s-%s)" % ("{:,.0f}".format(med(v)), "{:,.0f}".format(min(v)),
                                                         "{:,.0f}".format(max(v))),
                "%s (%s-%s)" % ("{:,.0f}".format(med(u)), "{:,.0f}".format(min(u)), "{:,.0f}".format(max(u)))))
    elif res.get("drain_skipped"):
        lines.append("drain ceiling: skipped: " + res["drain_skipped"])
    ds = [p for p in pts if p["curve"] == "dests"]
    if ds:
        cf = res["config"]
        lines.append("destinations (hsmcore load --rate %g --threads %d --duration %g, hsmauditd connect, N RELP/TLS"
                     " destinations -> one rsyslogd imrelp):" % (cf["rate"], cf["threads"], cf["duration"]))
        lines.append("  %5s %5s %10s %12s %24s %26s %18s" % ("dests", "runs", "records", "ops/s", "agent VmHWM MiB",
                                                            "agent CPU s/10k records", "catch-up s"))
        for n in sorted({p["destinations"] for p in ds}):
            ps = [p for p in ds if p["destinations"] == n]
            hw = [p["agent_vmhwm_mib"] for p in ps]
            cp = [p["agent_cpu_per_10k"] for p in ps]
            cu = [p["catch_up_s"] for p in ps]
            lines.append("  %5d %5d %10s %12s %9.1f (%.1f-%.1f) %11.3f (%.3f-%.3f) %7.1f (%.1f-%.1f)" % (
                n, len(ps), "{:,.0f}".format(med([p["records"] for p in ps])),
                "{:,.0f}".format(med([p["ops_per_s"] for p in ps])), med(hw), min(hw), max(hw),
                med(cp), min(cp), max(cp), med(cu), min(cu), max(cu)))
    lines.append("load average: start %s, end %s" % (" ".join("%.2f" % x for x in res["load_start"]),
                                                      " ".join("%.2f" % x for x in res.get("load_end", []))))
    return "\n".join(lines)


def write_out(a, res):
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    cols = ["curve", "round", "destinations", "target_records", "records", "verify_run", "verify_wall_s", "verify_cpu_s",
            "verify_maxrss_mib", "records_per_s", "agent_records_per_s", "agent_vmhwm_mib", "agent_cpu_per_10k",
            "catch_up_s", "ops_per_s", "load_1min"]
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for p in res["points"]:
            base = {k: p.get(k) for k in cols}
            base["load_1min"] = p["load_avg"][0][0]
            if p["curve"] == "trail":
                for i, v in enumerate(p["verify"]):
                    row = dict(base, verify_run=i + 1, verify_wall_s=v["wall_s"], verify_cpu_s=v["cpu_s"],
                               verify_maxrss_mib=v["maxrss_mib"])
                    w.writerow(row)
            elif p["curve"] == "drain":
                for x in p["records_per_s"]:
                    w.writerow(dict(base, records_per_s=x))
            else:
                w.writerow(base)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/ci")
    ap.add_argument("--out", required=True, help="directory for results.json and results.csv")
    ap.add_argument("--quick", action="store_true", help="the smallest points, one run each (< 20 s): a smoke test")
    ap.add_argument("--curves", default="trail,drain,dests", help="which curves: trail, drain, dests")
    ap.add_argument("--sizes", help="trail sizes, comma-separated (default 10000,100000,1000000,10000000)")
    ap.add_argument("--dests", help="destination counts (default 1,2,4,8)")
    ap.add_argument("--runs", type=int, default=3, help="rounds; each round runs every point once")
    ap.add_argument("--verify-runs", type=int, default=3, help="hsmaudit verify runs on each trail")
    ap.add_argument("--max-generate-seconds", type=float, default=600, help="stop generating a trail after this")
    ap.add_argument("--rate", type=float, default=5000, help="dests: hsmcore load --rate (ops/s)")
    ap.add_argument("--duration", type=float, default=20, help="dests: hsmcore load --duration (s)")
    ap.add_argument("--threads", type=int, default=2, help="dests: hsmcore load --threads")
    ap.add_argument("--catch-up-timeout", type=float, default=300)
    ap.add_argument("--profile-dests", type=int, default=0,
                    help="perf record -g the agent in round 1's run with this many destinations (perf.data and the"
                         " report under --out)")
    ap.add_argument("--drain-sizes", help="drain bench record counts (default: the trail sizes)")
    ap.add_argument("--drain-bench", help="hsmaudit_bench_agent to run (default: BUILD/bench/agent/)")
    ap.add_argument("--drain-records-arg", default="--records {n}",
                    help="how hsmaudit_bench_agent takes its record count ({n} replaced)")
    ap.add_argument("--drain-filter", default="BM_DrainVerifyStore/1/1",
                    help="the benchmark: encrypted at rest, Merkle tree on (the default configuration)")
    ap.add_argument("--workdir", help="where trails and states go (default: a temp dir, removed at the end)")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.verify_runs = 1, 1
        sizes, dests = [10_000], [1]
        a.duration, a.rate = min(a.duration, 2), min(a.rate, 2000)
    else:
        sizes, dests = FULL_SIZES, FULL_DESTS
    if a.sizes:
        sizes = [int(float(x)) for x in a.sizes.split(",")]
    if a.dests:
        dests = [int(x) for x in a.dests.split(",")]
    drain_sizes = [int(float(x)) for x in a.drain_sizes.split(",")] if a.drain_sizes else sizes
    curves = set(a.curves.split(","))
    for t in ("agent/hsmauditd", "agent/hsmaudit", "hsmcore/hsmcore"):
        if not os.access(os.path.join(a.build_dir, t), os.X_OK):
            sys.exit("%s not found in %s: cmake --build %s --target hsmauditd hsmaudit hsmcore" % (t, a.build_dir,
                                                                                                    a.build_dir))
    if "dests" in curves and not os.access(c.RSYSLOGD, os.X_OK):
        sys.exit(c.RSYSLOGD + " not found (packages rsyslog rsyslog-relp rsyslog-openssl)")
    os.makedirs(a.out, exist_ok=True)
    work = a.workdir or tempfile.mkdtemp(prefix="hsmaudit-curves-")
    os.makedirs(work, exist_ok=True)
    version = subprocess.run([os.path.join(a.build_dir, "agent/hsmauditd"), "--version"], capture_output=True,
                             text=True).stdout.strip()
    res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": " ".join([sys.argv[0]] + sys.argv[1:]), "machine": machine(), "version": version,
           "load_start": loadavg(), "quick": a.quick,
           "config": {"store.encrypt": True, "online_verification": True, "checkpoint.tree_heads": True,
                      "trail": "embedded module, module.workload.mix encrypt=100, rate min(N,1000000),"
                               " agent.status_interval 100ms, 1 RELP destination down",
                      "dests": "relp exporters (TLS, mutual auth, default settings) -> one rsyslogd imrelp (TLS),"
                               " omfile /dev/null",
                      "rate": a.rate, "threads": a.threads, "duration": a.duration, "verify_runs": a.verify_runs,
                      "drain_filter": a.drain_filter},
           "points": []}
    log("cost curves: %s; load average %s" % (res["command"], " ".join("%.2f" % x for x in res["load_start"])))
    log("machine: %s x%s, %s MiB; %s" % (res["machine"]["cpu"], res["machine"]["cores"], res["machine"]["mem_mib"],
                                         version))
    pki = os.path.join(work, "pki")
    drain_ok = False
    if "drain" in curves:
        drain_ok, why = drain_bench_supported(a)
        if not drain_ok:
            res["drain_skipped"] = why
            log("drain curve skipped: " + why)
    try:
        if "dests" in curves:
            os.makedirs(pki, exist_ok=True)
            c.make_pki(pki)
        for rnd in range(1, a.runs + 1):
            # Alternate the order of the sizes per round, so that neither end always runs first.
            order = sizes if rnd % 2 else list(reversed(sizes))
            if "trail" in curves:
                for n in order:
                    p = trail_point(a, n, rnd, work)
                    res["points"].append(p)
                    log("round %d trail %s: %s records in %.1f s (%s records/s), agent VmHWM %.1f MiB; verify %s;"
                        " load %.2f" % (rnd, "{:,}".format(n), "{:,}".format(p["records"]), p["generate_seconds"],
                                        "{:,.0f}".format(p["agent_records_per_s"] or 0), p["agent_vmhwm_mib"],
                                        ", ".join("%.3f s wall %.3f s CPU %.1f MiB" % (v["wall_s"], v["cpu_s"],
                                                                                       v["maxrss_mib"])
                                                  for v in p["verify"]), p["load_avg"][1][0]))
                    write_out(a, res)
            if "drain" in curves and drain_ok:
                for n in (drain_sizes if rnd % 2 else list(reversed(drain_sizes))):
                    p = drain_point(a, n, rnd)
                    res["points"].append(p)
                    log("round %d drain %s records: %s records/s wall, %s per drain-thread CPU second; bench peak RSS"
                        " %.0f MiB; load %.2f" % (
                            rnd, "{:,}".format(n), ", ".join("{:,.0f}".format(x) for x in p["records_per_s"]),
                            ", ".join("{:,.0f}".format(x) for x in p["records_per_drain_cpu_s"]),
                            p["bench_maxrss_mib"], p["load_avg"][1][0]))
                    write_out(a, res)
            if "dests" in curves:
                for n in (dests if rnd % 2 else list(reversed(dests))):
                    p = dests_point(a, n, rnd, work, pki)
                    res["points"].append(p)
                    log("round %d dests %d: %s records at %.0f ops/s, %s deliveries, agent VmHWM %.1f MiB,"
                        " CPU %.3f s per 10k records, catch-up %.1f s; load %.2f" % (
                            rnd, n, "{:,}".format(p["records"]), p["ops_per_s"] or 0, "{:,}".format(p["deliveries"]),
                            p["agent_vmhwm_mib"], p["agent_cpu_per_10k"] or 0, p["catch_up_s"], p["load_avg"][1][0]))
                    write_out(a, res)
        res["load_end"] = loadavg()
        write_out(a, res)
        print()
        print("=== cost curves summary (%s, %s) ===" % (res["date"], version))
        print("command: " + res["command"])
        print(summary(res))
        print("raw results: %s/results.json, results.csv" % a.out)
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the finally blocks: every child is stopped
    main()

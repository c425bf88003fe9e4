#!/usr/bin/env python3
"""End to end at a fixed module rate (issue 9): the module (`hsmcore serve`) under `hsmcore load
--rate R --threads 4`, `hsmauditd` in connect mode draining, verifying and storing (encrypted at
rest) and forwarding the audit stream to two receivers at once, all on loopback:

  relp:  rsyslogd, imrelp over TLS with mutual authentication (EC P-256, authmode name), writing
         each message with its receive time (%timegenerated, microseconds) to a file;
  kafka: librdkafka's mock cluster (3 brokers) in hsmaudit_kafka_mock_receiver, whose consumer
         (fetch.wait.max.ms=1) stamps each record when it becomes visible to a consumer.

Prints, per receiver: p50/p99/p99.9/max latency from the record's creation in the module (its
module timestamp, milliseconds, same host clock) to its arrival at the receiver, computed exactly
over every record; the agent's own view of the same interval up to the receiver's acknowledgement
(hsmaudit_exporter_delivery_latency_seconds, a histogram: quantiles interpolated inside buckets,
so read them with the bucket bounds printed next to them); the drain's record latency histogram;
the ring's peak fill; the agent's CPU per 10,000 records (utime+stime of hsmauditd over the load,
from /proc) and its peak RSS (VmHWM). Medians over --runs fresh runs.

    bench/side_by_side/end_to_end.py --build-dir build/ci [--rate 20000] [--duration 30] [--runs 3]
        [--baseline-build-dir OTHER_BUILD]   # both builds interleaved, ratio of medians
        [--baseline-commit-interval 0ms]     # the same build with commits as soon as records arrive
    bench/side_by_side/end_to_end.py --quick  # smoke test (one 1-s run at 5,000 ops/s, < 15 s)

Peers' settings, named: rsyslogd imrelp (tls="on", tls.tlslib="openssl", tls.authmode="name", default main
queue) writing with omfile; the agent's RELP destination with its defaults (window 128, as the relp exporter
ships) and its Kafka destination with its defaults (enable.idempotence=true, hence acks=all; librdkafka's
linger.ms default, 5 ms in 2.0.2); the mock cluster's consumer with fetch.wait.max.ms=1.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as c  # noqa: E402

RELP_LINE = re.compile(rb'^(\S+) <\d+>1 (\S+) .*?eventId="([^"]+)"')


def rsyslog_conf(d, port):
    work = os.path.join(d, "rsyslog-work")
    os.makedirs(work, exist_ok=True)
    return f"""global(workDirectory="{work}" maxMessageSize="64k")
module(load="imrelp" tls.tlslib="openssl")
template(name="stamped" type="string" string="%timegenerated:::date-rfc3339% %rawmsg%\\n")
input(type="imrelp" port="{port}" address="127.0.0.1" tls="on" tls.cacert="{d}/ca.pem"
      tls.mycert="{d}/server.pem" tls.myprivkey="{d}/server.key" tls.authmode="name"
      tls.permittedpeer=["client.test"] ruleset="out")
ruleset(name="out") {{ action(type="omfile" file="{d}/relp-received.log" template="stamped") }}
"""


def agent_conf(d, module_dir, state_dir, relp_port, brokers, metrics_port, commit_interval=""):
    drain = f"drain:\n  commit_interval: {commit_interval}\n" if commit_interval else ""
    return drain + f"""agent:
  state_dir: {state_dir}
  log_level: info
module:
  mode: connect
  dir: {module_dir}
store:
  encrypt: true
metrics:
  enabled: true
  listen: 127.0.0.1:{metrics_port}
exporters:
  relp:
    type: relp
    streams: audit
    relp:
      target: 127.0.0.1:{relp_port}
      ca: {d}/ca.pem
      cert: {d}/client.pem
      key: {d}/client.key
      permitted_peers: server.test
  kafka:
    type: kafka
    streams: audit
    kafka:
      brokers: {brokers}
"""


def ms_of(ts):
    """YYYY-MM-DDTHH:MM:SS.mmmZ -> ms since the epoch."""
    t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return int(t.timestamp() * 1000 + 0.5)


def relp_latencies(path, min_seq):
    """{seq: latency ms} from rsyslog's file (first arrival), and the duplicate count."""
    lat, dups = {}, 0
    cache = {}
    with open(path, "rb") as f:
        for line in f:
            m = RELP_LINE.match(line)
            if not m:
                continue
            seq = int(m.group(3).rsplit(b"-", 1)[1])
            if seq <= min_seq:
                continue
            if seq in lat:
                dups += 1
                continue
            recv = datetime.datetime.fromisoformat(m.group(1).decode()).timestamp() * 1000
            ts = m.group(2)
            sec = cache.get(ts[:19])
            if sec is None:
                sec = cache[ts[:19]] = ms_of(ts[:19].decode() + ".000Z")
            lat[seq] = recv - (sec + int(ts[20:23]))
    return lat, dups


def kafka_latencies(path, min_seq):
    lat, dups = {}, 0
    cache = {}
    with open(path, "rb") as f:
        for line in f:
            parts = line.split(b" ", 3)
            if len(parts) < 3 or not parts[1][:1].isdigit():
                continue
            seq = int(parts[1])
            if seq <= min_seq:
                continue
            if seq in lat:
                dups += 1
                continue
            ts = parts[2]
            sec = cache.get(ts[:19])
            if sec is None:
                sec = cache[ts[:19]] = ms_of(ts[:19].decode() + ".000Z")
            lat[seq] = int(parts[0]) / 1000.0 - (sec + int(ts[20:23]))
    return lat, dups


def max_seq_in(path, kafka):
    """The highest record sequence number in a receiver's file (reads the tail)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return 0
    with open(path, "rb") as f:
        f.seek(max(0, size - 65536))
        lines = f.read().splitlines()
    best = 0
    for line in lines:
        if kafka:
            parts = line.split(b" ", 2)
            if len(parts) > 1 and parts[1].isdigit():
                best = max(best, int(parts[1]))
        else:
            m = RELP_LINE.match(line)
            if m:
                best = max(best, int(m.group(3).rsplit(b"-", 1)[1]))
    return best


def one_run(a, d, r, build_dir, commit_interval):
    rd = os.path.join(d, "run%d" % r)
    os.makedirs(rd)
    for f in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key"):
        shutil.copy(os.path.join(d, f), rd)
    hsmcore = os.path.join(build_dir, "hsmcore/hsmcore")
    agentd = os.path.join(build_dir, "agent/hsmauditd")
    receiver = os.path.join(build_dir, "bench/side_by_side/hsmaudit_kafka_mock_receiver")
    module_dir, state_dir = os.path.join(rd, "module"), os.path.join(rd, "state")
    procs = []
    try:
        serve = c.start_module(hsmcore, module_dir, rd)
        procs.append(serve)
        relp_port = c.free_port()
        rsyslog = c.start_rsyslog(rsyslog_conf(rd, relp_port), rd, relp_port)
        procs.append(rsyslog)

        bfile = os.path.join(rd, "bootstrap")
        kafka = c.Proc([receiver, "--bootstrap-file", bfile, "--out", os.path.join(rd, "kafka-received.log")],
                       os.path.join(rd, "kafka.err"))
        procs.append(kafka)
        c.wait_until(lambda: os.path.exists(bfile) and os.path.getsize(bfile) > 0, 30, "mock cluster", kafka.proc)
        brokers = open(bfile).read().strip()

        mport = c.free_port()
        aconf = os.path.join(rd, "hsmauditd.yaml")
        with open(aconf, "w") as f:
            f.write(agent_conf(rd, module_dir, state_dir, relp_port, brokers, mport, commit_interval))
        agent = c.Proc([agentd, "-c", aconf], os.path.join(rd, "hsmauditd.err"))
        procs.append(agent)
        c.wait_until(lambda: (c.read_status(state_dir) or {}).get("drain"), 30, "hsmauditd status", agent.proc)
        relp_file, kafka_file = os.path.join(rd, "relp-received.log"), os.path.join(rd, "kafka-received.log")
        # Both destinations up and caught up with the module's first records.
        st = c.wait_until(lambda: c.read_status(state_dir), 5, "status")
        seq0 = st["drain"]["last_seq"]
        c.wait_until(lambda: max_seq_in(relp_file, False) >= seq0 and max_seq_in(kafka_file, True) >= seq0, 60,
                     "both receivers caught up with seq %d" % seq0, agent.proc)
        time.sleep(1)

        st0 = c.read_status(state_dir)
        seq0, rec0 = st0["drain"]["last_seq"], st0["drain"]["records"]
        cpu0 = c.cpu_seconds(agent.pid)
        m0 = c.scrape(mport)
        # The machine's CPU budget while the module is under load: who uses the two cores.
        parts = {"module (hsmcore serve)": serve, "agent (hsmauditd)": agent, "rsyslogd (RELP receiver)": rsyslog,
                 "kafka mock cluster + consumer": kafka}
        budget0 = {k: c.cpu_seconds(p.pid) for k, p in parts.items()}
        machine0, children0 = c.machine_cpu(), c.children_cpu_seconds()
        t0 = time.monotonic()
        load = subprocess.run([hsmcore, "load", "--dir", module_dir, "--rate", str(a.rate), "--duration",
                               str(a.duration), "--threads", str(a.threads), "--json"], capture_output=True, text=True)
        load_s = time.monotonic() - t0
        m_load = c.scrape(mport)  # the drain's commits while the module was under load
        machine1, children1 = c.machine_cpu(), c.children_cpu_seconds()
        budget = {k: (c.cpu_seconds(p.pid) - budget0[k]) / load_s for k, p in parts.items()}
        budget["load generator (hsmcore load)"] = (children1 - children0) / load_s
        budget["machine busy, all processes"] = (machine1[0] - machine0[0]) / load_s
        budget["machine capacity"] = (machine1[1] - machine0[1]) / load_s
        if load.returncode != 0:
            raise RuntimeError("hsmcore load: " + load.stdout + load.stderr)
        lj = json.loads(load.stdout.strip().splitlines()[-1])

        # Wait until the drain has everything and both receivers have its last record: two
        # successive status.json files (written once a second) with the same last sequence.
        def drained():
            s1 = c.read_status(state_dir)
            time.sleep(1.2)
            s2 = c.read_status(state_dir)
            if s1 and s2 and s1["time"] != s2["time"] and s1["drain"]["last_seq"] == s2["drain"]["last_seq"]:
                return s2
            return None

        st1 = c.wait_until(drained, 60, "drain idle", agent.proc)
        last = st1["drain"]["last_seq"]
        c.wait_until(lambda: max_seq_in(relp_file, False) >= last and max_seq_in(kafka_file, True) >= last, 120,
                     "receivers reach seq %d" % last, agent.proc)
        t1 = time.monotonic()
        cpu1 = c.cpu_seconds(agent.pid)
        time.sleep(1.5)  # the agent's metrics see the last acknowledgements (RELP confirms idle windows after 1 s)
        m1 = c.scrape(mport)
        st2 = c.read_status(state_dir)
        hwm = c.proc_status_kb(agent.pid, "VmHWM")
        records = st1["drain"]["records"] - rec0
        res = {
            "load": lj, "records": records, "seconds": t1 - t0, "load_avg": open("/proc/loadavg").read().split()[:3],
            "ring_fill_peak": st2["ring"]["fill_peak"],
            "cpu_per_10k": (cpu1 - cpu0) / records * 10000 if records else float("nan"),
            "cpu_share": (cpu1 - cpu0) / (t1 - t0),
            "vmhwm_mib": hwm / 1024.0,
            "budget": budget,
        }
        for name, path, kafka_side in (("relp", relp_file, False), ("kafka", kafka_file, True)):
            lat, dups = (kafka_latencies if kafka_side else relp_latencies)(path, seq0)
            v = sorted(lat.values())
            missing = sum(1 for s in range(seq0 + 1, last + 1) if s not in lat)
            res[name] = {"received": len(v), "duplicates": dups, "missing": missing,
                         "p50": c.quantile(v, 0.5), "p99": c.quantile(v, 0.99), "p999": c.quantile(v, 0.999),
                         "max": v[-1] if v else float("nan"), "min": v[0] if v else float("nan")}
            h = c.histogram_delta(c.histogram(m1, "hsmaudit_exporter_delivery_latency_seconds", {"exporter": name}),
                                  c.histogram(m0, "hsmaudit_exporter_delivery_latency_seconds", {"exporter": name}))
            res[name]["agent_hist"] = {q: c.histogram_quantile(h, q) for q in (0.5, 0.99, 0.999)}
            res[name]["agent_hist_count"] = h.get(float("inf"), 0)
        h = c.histogram_delta(c.histogram(m1, "hsmaudit_drain_record_latency_seconds"),
                              c.histogram(m0, "hsmaudit_drain_record_latency_seconds"))
        res["drain_hist"] = {q: c.histogram_quantile(h, q) for q in (0.5, 0.99, 0.999)}
        commits0 = c.counter(m0, "hsmaudit_drain_commits_total")
        commits = c.counter(m1, "hsmaudit_drain_commits_total") - commits0
        res["commits_per_s"] = (c.counter(m_load, "hsmaudit_drain_commits_total") - commits0) / load_s
        res["records_per_commit"] = records / commits if commits else float("nan")
        res["drain_hist_bounds"] = sorted(h)
        return res
    finally:
        for p in reversed(procs):
            p.stop()


def fmt_hist(x):
    if not x:
        return "n/a"
    est, lo, hi = x
    return "%.0f ms (bucket %g-%g ms)" % (est * 1000, lo * 1000, hi * 1000)


def spread(values, fmt="%.2f"):
    """median (min-max) of a list."""
    return (fmt + " (" + fmt + "-" + fmt + ")") % (c.median(values), min(values), max(values))


def print_run(tag, r, res):
    print("%s run %d: %.0f ops/s achieved (%s refused), %d records, ring peak %.1f%%, agent CPU %.3f s per 10k "
          "records (%.0f%% of a core), VmHWM %.1f MiB, load avg %s" %
          (tag, r + 1, res["load"]["ops_per_s"], res["load"]["refused_log_full"], res["records"],
           res["ring_fill_peak"] * 100, res["cpu_per_10k"], res["cpu_share"] * 100, res["vmhwm_mib"],
           " ".join(res["load_avg"])), flush=True)
    for name in ("relp", "kafka"):
        x = res[name]
        print("  %-5s received %d (missing %d, duplicates %d): p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms;"
              " agent histogram to ack: p50 %s, p99 %s, p99.9 %s" %
              (name, x["received"], x["missing"], x["duplicates"], x["p50"], x["p99"], x["p999"], x["max"],
               fmt_hist(x["agent_hist"][0.5]), fmt_hist(x["agent_hist"][0.99]), fmt_hist(x["agent_hist"][0.999])),
              flush=True)
    print("  drain record latency histogram (module record -> durable in the store): p50 %s, p99 %s" %
          (fmt_hist(res["drain_hist"][0.5]), fmt_hist(res["drain_hist"][0.99])), flush=True)
    print("  drain commits (fsync + acknowledgement): %.0f a second under load, %.1f records each over the run" %
          (res["commits_per_s"], res["records_per_commit"]), flush=True)
    print("  CPU while the module is under load, in cores: " +
          ", ".join("%s %.2f" % (k, v) for k, v in res["budget"].items()), flush=True)


def summary(tag, results):
    med = c.median
    out = ["%s: %d runs" % (tag, len(results))]
    out.append("  achieved ops/s %s; records per run %s" %
               (spread([x["load"]["ops_per_s"] for x in results], "%.0f"),
                spread([x["records"] for x in results], "%.0f")))
    for name in ("relp", "kafka"):
        out.append("  %-5s p50 %s ms  p99 %s ms  p99.9 %s ms  (max of maxima %.1f ms); missing %d, duplicates %d "
                   "(sums over runs)" %
                   (name, spread([x[name]["p50"] for x in results]), spread([x[name]["p99"] for x in results]),
                    spread([x[name]["p999"] for x in results]), max(x[name]["max"] for x in results),
                    sum(x[name]["missing"] for x in results), sum(x[name]["duplicates"] for x in results)))
    out.append("  agent CPU s per 10,000 records %s; share of a core %s" %
               (spread([x["cpu_per_10k"] for x in results], "%.3f"),
                spread([x["cpu_share"] * 100 for x in results], "%.0f%%")))
    out.append("  CPU while the module is under load, in cores: " +
               ", ".join("%s %s" % (k, spread([x["budget"][k] for x in results])) for k in results[0]["budget"]))
    out.append("  agent peak RSS (VmHWM) MiB %s; ring peak fill %s" %
               (spread([x["vmhwm_mib"] for x in results], "%.1f"),
                spread([x["ring_fill_peak"] * 100 for x in results], "%.2f%%")))
    return out, {name: {k: med([x[name][k] for x in results]) for k in ("p50", "p99", "p999")}
                 for name in ("relp", "kafka")} | {"cpu_per_10k": med([x["cpu_per_10k"] for x in results])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/ci")
    ap.add_argument("--baseline-build-dir", default="",
                    help="also run this build's binaries, interleaved with --build-dir's (B A B A ...), and print "
                         "the ratio of medians")
    ap.add_argument("--rate", type=float, default=20000)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--commit-interval", default="",
                    help="the agent's drain.commit_interval (default: the agent's own default); labelled when set")
    ap.add_argument("--baseline-commit-interval", default="",
                    help="also run --build-dir's agent with this drain.commit_interval, interleaved, as the baseline "
                         "side (e.g. 0ms: a commit as soon as records arrive)")
    ap.add_argument("--quick", action="store_true", help="smoke test: --rate 5000 --duration 1 --runs 1")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    if a.quick:
        a.rate, a.duration, a.runs = 5000, 1, 1
    sides = [("after", a.build_dir, a.commit_interval)]
    if a.baseline_build_dir and a.baseline_commit_interval:
        sys.exit("--baseline-build-dir and --baseline-commit-interval: one baseline at a time")
    if a.baseline_build_dir:
        sides.insert(0, ("baseline", a.baseline_build_dir, a.commit_interval))
    if a.baseline_commit_interval:
        sides.insert(0, ("baseline", a.build_dir, a.baseline_commit_interval))
    for _, bd, _ in sides:
        for t in ("hsmcore/hsmcore", "agent/hsmauditd", "bench/side_by_side/hsmaudit_kafka_mock_receiver"):
            if not os.access(os.path.join(bd, t), os.X_OK):
                sys.exit("%s not found in %s: cmake --build %s --target hsmcore hsmauditd hsmaudit_kafka_mock_receiver"
                         % (t, bd, bd))
    command = " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    load_start = open("/proc/loadavg").read().split()[:3]
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    d = tempfile.mkdtemp(prefix="hsmaudit-e2e-")
    results = {tag: [] for tag, _, _ in sides}
    try:
        c.make_pki(d)
        n = 0
        for r in range(a.runs):
            for tag, bd, ci in sides:
                res = one_run(a, d, n, bd, ci)
                n += 1
                results[tag].append(res)
                print_run(tag, r, res)
                if r == 0 and tag == sides[-1][0]:
                    print("  load json: " + json.dumps(res["load"]))
        load_end = open("/proc/loadavg").read().split()[:3]
        print()
        print("=== end to end summary (medians (min-max) of %d runs per side, interleaved) ===" % a.runs)
        print("command: " + command)
        print("started %s; load average at start %s, at end %s; %d CPUs" %
              (started, " ".join(load_start), " ".join(load_end), os.cpu_count()))
        config = ("default configuration" if not a.commit_interval else
                  "default configuration except drain.commit_interval %s" % a.commit_interval)
        print("module: hsmcore load --rate %g --threads %d --duration %g; agent: %s (store "
              "encrypted at rest, online verification), destinations relp (RELP/TLS, mutual auth, to rsyslogd imrelp) "
              "and kafka (defaults: idempotent, acks=all, to the mock cluster); latency = receiver's stamp - the "
              "record's module timestamp, over every record" % (a.rate, a.threads, a.duration, config))
        meds = {}
        for tag, bd, ci in sides:
            label = bd + (", drain.commit_interval " + ci if ci else "")
            lines, meds[tag] = summary(tag + " (" + label + ")", results[tag])
            print("\n".join(lines))
        if "baseline" in meds:
            b, f = meds["baseline"], meds["after"]
            for name in ("relp", "kafka"):
                print("  ratio after/baseline %-5s p50 %.2f  p99 %.2f  p99.9 %.2f" %
                      (name, f[name]["p50"] / b[name]["p50"], f[name]["p99"] / b[name]["p99"],
                       f[name]["p999"] / b[name]["p999"]))
            print("  ratio after/baseline agent CPU per 10,000 records %.2f" % (f["cpu_per_10k"] / b["cpu_per_10k"]))
        for name in ("relp", "kafka"):
            p99 = meds["after"][name]["p99"]
            print("target p99 < 50 ms, %-5s: %s (median p99 %.1f ms)" % (name, "met" if p99 < 50 else "NOT met", p99))
    finally:
        if a.keep:
            print("kept", d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

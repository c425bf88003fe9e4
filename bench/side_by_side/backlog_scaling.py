#!/usr/bin/env python3
"""Drain throughput and agent memory as the store's backlog grows (issue 9): `hsmauditd` with the
embedded module driven as fast as its built-in workload goes (module.workload.rate 1,000,000, one
client thread, default mix `encrypt=100`: the cheapest audited operation, so the module is not the
bottleneck), storing encrypted at rest, with one destination that is down (RELP to a loopback port
nobody listens on), so every record stays in the store as the destination's backlog. Samples the
agent every --interval seconds: records stored, the destination's backlog (stored minus its
hsmaudit_exporter_events_delivered_total; its hsmaudit_exporter_lag_events gauge is printed too), the drain's
rate over the last interval, and the agent's RSS (VmRSS, and VmHWM at the end), and prints a row each
time the backlog crosses another --step records, until --records are stored or --max-seconds pass.

Memory must stay flat: the store buffers on disk, the runner holds at most max_in_flight events.
The agent's RSS includes the embedded module (its 16 MiB ring is mapped into the same process).

    bench/side_by_side/backlog_scaling.py --build-dir build/bench [--records 10000000] [--max-seconds 840]
    bench/side_by_side/backlog_scaling.py --build-dir build/ci --records 20000 --interval 0.5   # quick, < 15 s

The same agent and workload make the trails of bench/curves/cost_curves.py (its "trail" curve: agent
memory and offline verification against the trail's size).
"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as c  # noqa: E402


def agent_conf(module_dir, state_dir, dead_port, metrics_port, rate, mix):
    return f"""agent:
  state_dir: {state_dir}
  log_level: info
module:
  mode: embedded
  dir: {module_dir}
  workload:
    rate: {rate}
    mix: {mix}
store:
  encrypt: true
metrics:
  enabled: true
  listen: 127.0.0.1:{metrics_port}
exporters:
  down:
    type: relp
    streams: audit
    relp:
      target: 127.0.0.1:{dead_port}
      tls: false
"""


def gauge(text, name, labels=None):
    total, found = 0.0, False
    labels = labels or {}
    for line in text.splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        m = re.match(re.escape(name) + r'(?:\{(.*)\})? (\S+)$', line)
        if not m:
            continue
        kv = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(kv.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
            found = True
    return total if found else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/release")
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--step", type=int, default=1_000_000, help="print a row every STEP records of backlog")
    ap.add_argument("--interval", type=float, default=2.0, help="sampling interval, seconds")
    ap.add_argument("--max-seconds", type=float, default=840)
    ap.add_argument("--rate", type=int, default=1_000_000, help="module.workload.rate")
    ap.add_argument("--mix", default="encrypt=100", help="module.workload.mix")
    ap.add_argument("--workdir", help="where the agent's state goes (default: a temp dir, removed at the end)")
    a = ap.parse_args()
    agentd = os.path.join(a.build_dir, "agent/hsmauditd")
    if not os.access(agentd, os.X_OK):
        sys.exit(agentd + " not found: cmake --build " + a.build_dir + " --target hsmauditd")
    d = a.workdir or tempfile.mkdtemp(prefix="hsmaudit-backlog-")
    os.makedirs(d, exist_ok=True)
    module_dir, state_dir = os.path.join(d, "module"), os.path.join(d, "state")
    dead, mport = c.free_port(), c.free_port()
    conf = os.path.join(d, "hsmauditd.yaml")
    with open(conf, "w") as f:
        f.write(agent_conf(module_dir, state_dir, dead, mport, a.rate, a.mix))
    load_start = " ".join(open("/proc/loadavg").read().split()[:3])
    command = " ".join(sys.argv)
    print("backlog scaling: %s; load average %s" % (command, load_start), flush=True)
    agent = c.Proc([agentd, "-c", conf], os.path.join(d, "hsmauditd.err"))
    rows = []
    try:
        c.wait_until(lambda: (c.read_status(state_dir) or {}).get("drain"), 60, "hsmauditd status", agent.proc)
        t_start = time.monotonic()
        cpu_start = c.cpu_seconds(agent.pid)
        prev_t, prev_rec = t_start, 0
        next_row = 0
        print("%9s %12s %12s %14s %10s %10s %9s %10s %12s" % ("seconds", "stored", "backlog", "drain rec/s",
                                                               "RSS MiB", "store GB", "ring %", "CPU %", "lag gauge"),
              flush=True)
        while True:
            time.sleep(a.interval)
            if not agent.alive():
                raise RuntimeError("hsmauditd exited: see " + agent.log)
            now = time.monotonic()
            st = c.read_status(state_dir) or {}
            rec = st.get("drain", {}).get("records", prev_rec)
            try:
                text = c.scrape(mport)
                lag = gauge(text, "hsmaudit_exporter_lag_events", {"exporter": "down", "stream": "audit"})
                delivered = gauge(text, "hsmaudit_exporter_events_delivered_total",
                                  {"exporter": "down", "stream": "audit"}) or 0
            except OSError:
                lag, delivered = None, 0
            rss = c.proc_status_kb(agent.pid, "VmRSS") / 1024.0
            rate = (rec - prev_rec) / (now - prev_t)
            cpu = c.cpu_seconds(agent.pid)
            row = (now - t_start, rec, rec - delivered, rate, rss, c.dir_bytes(os.path.join(state_dir, "audit")) / 1e9,
                   st.get("ring", {}).get("fill", 0) * 100, (cpu - cpu_start) / (now - t_start) * 100)
            rows.append(row)
            backlog = rec - delivered  # records stored and not delivered
            if backlog >= next_row or rec >= a.records or now - t_start > a.max_seconds:
                print("%9.0f %12s %12s %14s %10.1f %10.2f %9.1f %10.0f %12s" %
                      (row[0], "{:,}".format(rec), "{:,.0f}".format(backlog), "{:,.0f}".format(rate), rss, row[5],
                       row[6], row[7], "{:,.0f}".format(lag) if lag is not None else "?"), flush=True)
                while next_row <= backlog:
                    next_row += a.step
            prev_t, prev_rec = now, rec
            if rec >= a.records or now - t_start > a.max_seconds:
                break
        hwm = c.proc_status_kb(agent.pid, "VmHWM") / 1024.0
        st = c.read_status(state_dir) or {}
        rss_all = [r[4] for r in rows]
        early = [r[4] for r in rows if r[1] >= rows[-1][1] * 0.1] or rss_all
        first = [r[3] for r in rows[1:] if r[1] <= rows[-1][1] * 0.2]
        last = [r[3] for r in rows[1:] if r[1] >= rows[-1][1] * 0.8]
        elapsed = rows[-1][0]
        print()
        print("=== backlog scaling summary (%s UTC) ===" % time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
        print("command: %s" % command)
        print("configuration: embedded module, module.workload.rate %d mix %s, store encrypted at rest, online"
              " verification, Merkle tree on, 1 RELP destination down" % (a.rate, a.mix))
        print("stored %s records in %.0f s (%.0f records/s overall); backlog of the down destination %s"
              " (stored minus hsmaudit_exporter_events_delivered_total)" %
              ("{:,}".format(rows[-1][1]), elapsed, rows[-1][1] / elapsed, "{:,.0f}".format(rows[-1][2])))
        print("drain rate: median %.0f records/s over the first 20%% of the records, %.0f over the last 20%%"
              % (c.median(first) if first else float("nan"), c.median(last) if last else float("nan")))
        print("agent RSS: min %.1f MiB, max %.1f MiB after the first 10%% (%.1f-%.1f), VmHWM %.1f MiB" %
              (min(rss_all), max(rss_all), min(early), max(early), hwm))
        print("ring: peak fill %.1f%%, module blocked at the end: %s; load average start %s, end %s" %
              (st.get("ring", {}).get("fill_peak", 0) * 100, st.get("ring", {}).get("blocked"), load_start,
               " ".join(open("/proc/loadavg").read().split()[:3])))
        if rows[-1][1] < a.records:
            print("NOTE: stopped at %s records after --max-seconds %g (asked for %s)" %
                  ("{:,}".format(rows[-1][1]), a.max_seconds, "{:,}".format(a.records)))
    finally:
        agent.stop(timeout=60)
        if a.workdir:
            print("state kept in", d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The syslog intake under a flood (issue 17): runs the ctest `agent_intake_flood_test`
(tests/integration/agent/intake_flood_test.cpp) --runs times and summarises the figures it prints.

Each run starts the real hsmauditd as shipped (embedded module with a 200 ops/s workload, records
encrypted at rest, the syslog spool with its defaults: 16 MiB queue bound, 256 connections, 10 min
idle timeout; metrics with basic auth, 8 workers, 2 s request timeout) with a TCP listener, then
opens 200 idle TCP connections to it and 2 idle connections to the metrics port, starts 8
connections sending 64 KiB lines of bytes 0x80-0xff as fast as the agent takes them, scrapes
/metrics once a second, and has a normal sender send 50 messages a second for --seconds seconds on a
new connection. It reports whether every normal message reached the spool, the agent's peak RSS
(VmHWM, its own process), the slowest scrape, the MiB the flood got in, and the spool's full spells
and drops.

    bench/agent/intake_flood.py --build-dir build/ci [--runs 3] [--seconds 20] [--queue-bytes 1GiB]

A run whose checks fail (e.g. with --queue-bytes 1GiB, where RSS passes 128 MiB) still prints its
figures; the summary says which runs failed.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/ci")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--queue-bytes", default="", help="another syslog.spool_queue_bytes (1GiB: practically unbounded)")
    args = ap.parse_args()
    binary = os.path.join(args.build_dir, "tests/integration/agent/agent_intake_flood_test")
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} is not built: cmake --build {args.build_dir} --target agent_intake_flood_test hsmauditd")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.runs} run(s) of {args.seconds} s"
          + (f", syslog.spool_queue_bytes {args.queue_bytes}" if args.queue_bytes else ""))
    runs = []
    for i in range(args.runs):
        env = dict(os.environ, HSMAUDIT_FLOOD_SECONDS=str(args.seconds))
        if args.queue_bytes:
            env["HSMAUDIT_FLOOD_QUEUE_BYTES"] = args.queue_bytes
        p = subprocess.run([binary], env=env, capture_output=True, text=True)
        figures = None
        for line in p.stdout.splitlines():
            if line.startswith("FIGURES "):
                figures = json.loads(line[len("FIGURES "):])
        if figures is None:
            print(p.stdout[-4000:], p.stderr[-2000:], file=sys.stderr)
            sys.exit(f"run {i + 1}: no figures (exit {p.returncode})")
        figures["passed"] = p.returncode == 0
        figures["load"] = round(os.getloadavg()[0], 1)
        runs.append(figures)
        print(f"run {i + 1}: " + json.dumps(figures))

    def spread(key, fmt="{:.1f}"):
        values = [r[key] for r in runs]
        return "min " + fmt.format(min(values)) + ", median " + fmt.format(statistics.median(values)) + \
            ", max " + fmt.format(max(values))

    print("normal messages arrived: " + ", ".join(f"{r['normal_arrived']}/{r['normal_messages']}" for r in runs) +
          "; latency send -> spool line, s: p50 " + spread("normal_latency_p50_s", "{:.2f}") +
          "; max " + spread("normal_latency_max_s", "{:.2f}"))
    print("peak RSS (VmHWM) MiB: " + spread("vm_hwm_mib") + f" (before the load: {spread('rss_before_mib')})")
    print("slowest scrape s: " + spread("scrape_worst_s", "{:.3f}") + "; answered: " +
          ", ".join(f"{r['scrapes_answered']}/{r['scrapes']}" for r in runs))
    print("flood MiB accepted: " + spread("flooded_mib") + "; spool full spells: " + spread("spool_full_spells", "{:.0f}"))
    print("spool drops: " + spread("spool_dropped", "{:.0f}") + "; connections refused: " +
          spread("connections_rejected", "{:.0f}"))
    print("all passed" if all(r["passed"] for r in runs) else "SOME RUNS FAILED")


if __name__ == "__main__":
    main()

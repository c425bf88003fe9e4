#!/usr/bin/env python3
"""Draws the cost curves measured by bench/curves/cost_curves.py (its OUT/results.json) as PNG
charts, one point per run so the spread shows:

  DOCS/curves-trail-size.png     verification time, drain rate and peak memory against the
                                 number of records in the trail (log-log where it reads best)
  DOCS/curves-destinations.png   the agent's peak memory, CPU per 10,000 records and catch-up
                                 time against the number of destinations

    bench/curves/plot_curves.py --in /tmp/curves [--in /tmp/curves-drain ...] [--docs docs]

Needs matplotlib (Debian: python3-matplotlib, installed by scripts/setup). When the python3 on
PATH lacks it (a pyenv interpreter, say), the script runs itself again with /usr/bin/python3.
"""
import argparse
import json
import os
import statistics
import sys

try:
    import matplotlib
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("matplotlib not found: apt-get install python3-matplotlib (scripts/setup installs it)")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

CONFIG = "encryption at rest on, online verification on, Merkle tree on, default destination settings"


def si(x, _pos=None):
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            v = x / div
            return ("%.0f%s" if v >= 10 or v == int(v) else "%.1f%s") % (v, suf)
    return "%g" % x


def legend(ax, **kw):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, **kw)


def jitter(i, n, spread):
    """Offsets of the runs at one x so that equal values do not hide each other."""
    return 0 if n <= 1 else (i / (n - 1) - 0.5) * spread


def subtitle(res, points):
    """Machine, dates, version and load average range of the runs that made these points."""
    m = res["machine"]
    loads = [p["load_avg"][0][0] for p in points] + [p["load_avg"][1][0] for p in points]
    load = "load average %.1f-%.1f" % (min(loads), max(loads)) if loads else ""
    dates = sorted({p.get("date", res["date"]) for p in points})
    return "%s, %s cores; %s; %s; %s" % (m["cpu"], m["cores"], " and ".join(dates), res.get("version", ""), load)


def by(points, key):
    out = {}
    for p in points:
        out.setdefault(p[key], []).append(p)
    return dict(sorted(out.items()))


def plot_trail(res, path):
    pts = res["points"]
    trail = [p for p in pts if p["curve"] == "trail"]
    drain = [p for p in pts if p["curve"] == "drain"]
    fig, ax = plt.subplots(1, 3, figsize=(17, 5.6))
    fig.suptitle("hsmaudit cost against trail size: %s\n%s" % (CONFIG, subtitle(res, trail + drain)), fontsize=11)

    # (a) verification time, log-log, with a line of slope 1 through the medians' largest point.
    a = ax[0]
    groups = by(trail, "target_records")
    first = True
    for n, ps in groups.items():
        vs = [(p["records"], v) for p in ps for v in p["verify"]]
        for i, (rec, v) in enumerate(vs):
            f = 1 + jitter(i, len(vs), 0.12)
            a.scatter(rec * f, v["wall_s"], marker="o", s=22, color="tab:blue", alpha=0.75,
                      label="wall clock" if first else None)
            a.scatter(rec * f, v["cpu_s"], marker="^", s=22, color="tab:orange", alpha=0.75,
                      label="CPU (user+sys)" if first else None)
            first = False
    if groups:
        n_max = max(groups)
        big = groups[n_max]
        rec = statistics.median(p["records"] for p in big)
        cpu = statistics.median(v["cpu_s"] for p in big for v in p["verify"])
        xs = [min(p["records"] for p in trail), max(p["records"] for p in trail)]
        a.plot(xs, [cpu * x / rec for x in xs], ls="--", lw=1, color="gray",
               label="linear: %.2f M records per CPU second" % (rec / cpu / 1e6))
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("records in the trail")
    a.set_ylabel("seconds (log)")
    a.set_title("hsmaudit verify --key on the agent's encrypted store", fontsize=10)
    a.xaxis.set_major_formatter(FuncFormatter(si))
    a.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: "%g" % y))
    a.grid(True, which="both", alpha=0.3)
    legend(a, loc="upper left")

    # (b) drain rate: the drain's ceiling (bench) and what the agent achieved behind the module.
    b = ax[1]
    plotted = False
    if drain:
        first = True
        for n, ps in by(drain, "records").items():
            xs = [x for p in ps for x in p["records_per_s"]]
            for i, x in enumerate(xs):
                b.scatter(n * (1 + jitter(i, len(xs), 0.12)), x, marker="s", s=24, color="tab:green", alpha=0.8,
                          label="drain ceiling, wall clock (fsync included):\nhsmaudit_bench_agent, one drain thread"
                          if first else None)
                first = False
            us = [x for p in ps for x in p.get("records_per_drain_cpu_s", [])]
            for i, x in enumerate(us):
                b.scatter(n * (1 + jitter(i, len(us), 0.12)), x, marker="s", s=24, facecolors="none",
                          edgecolors="tab:green", label="the same per CPU second of the drain thread" if i == 0 and
                          n == min(p2["records"] for p2 in drain) else None)
        plotted = True
    first = True
    for n, ps in groups.items():
        for i, p in enumerate(ps):
            if p.get("agent_records_per_s"):
                b.scatter(p["records"] * (1 + jitter(i, len(ps), 0.12)), p["agent_records_per_s"], marker="o", s=24,
                          color="tab:purple", alpha=0.8,
                          label="hsmauditd behind its embedded module\n(bounded by the module's workload)"
                          if first else None)
                first = False
                plotted = True
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel("records drained")
    b.set_ylabel("records per second (log)")
    b.set_title("drain + verify + store (encrypted)" + ("" if drain else "\n(drain bench without a record count: "
                                                             "ceiling not plotted)"), fontsize=10)
    b.xaxis.set_major_formatter(FuncFormatter(si))
    b.yaxis.set_major_formatter(FuncFormatter(si))
    b.yaxis.set_minor_formatter(FuncFormatter(lambda y, _p: si(y) if str(int(y))[0] in "25" else ""))
    b.grid(True, which="both", alpha=0.3)
    if plotted:
        lo, hi = b.get_ylim()
        b.set_ylim(lo, hi * 6)  # room for the legend above the points
        legend(b, loc="upper right")

    # (c) peak memory: the agent (module included) and the verifier, linear from 0.
    c = ax[2]
    first = True
    for n, ps in groups.items():
        for i, p in enumerate(ps):
            f = 1 + jitter(i, len(ps), 0.12)
            c.scatter(p["records"] * f, p["agent_vmhwm_mib"], marker="o", s=24, color="tab:red", alpha=0.8,
                      label="hsmauditd VmHWM (embedded module and\nits 16 MiB ring included; 1 destination down)"
                      if first else None)
            for j, v in enumerate(p["verify"]):
                c.scatter(v["records"] * f * (1 + jitter(j, len(p["verify"]), 0.05)), v["maxrss_mib"], marker="^",
                          s=22, color="tab:blue", alpha=0.7, label="hsmaudit verify peak RSS" if first else None)
                first = False
    c.set_xscale("log")
    c.set_ylim(bottom=0, top=max([p["agent_vmhwm_mib"] for p in trail] +
                                 [v["maxrss_mib"] for p in trail for v in p["verify"]] + [1]) * 1.3)
    c.set_xlabel("records in the trail")
    c.set_ylabel("MiB")
    c.set_title("peak memory (resident set, MiB)", fontsize=10)
    c.xaxis.set_major_formatter(FuncFormatter(si))
    c.grid(True, which="both", alpha=0.3)
    legend(c, loc="upper left")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_dests(res, path):
    ds = [p for p in res["points"] if p["curve"] == "dests"]
    cf = res["config"]
    fig, ax = plt.subplots(1, 3, figsize=(17, 5.6))
    fig.suptitle("hsmauditd against the number of destinations: %s\nhsmcore load at %g ops/s for %g s (%d client "
                 "threads, default mix), N RELP/TLS destinations (mutual auth) to one rsyslogd\n%s"
                 % (CONFIG, cf["rate"], cf["duration"], cf["threads"], subtitle(res, ds)), fontsize=11)
    groups = by(ds, "destinations")
    panels = [
        ("agent_vmhwm_mib", "MiB", "peak memory of hsmauditd (VmHWM)", "tab:red", True),
        ("agent_cpu_per_10k", "CPU seconds (user+sys) per 10,000 records", "agent CPU per 10,000 module records",
         "tab:orange", True),
        ("catch_up_s", "seconds", "last destination's catch-up after the load ended", "tab:blue", True),
    ]
    for a, (key, ylabel, title, color, from_zero) in zip(ax, panels):
        for n, ps in groups.items():
            for i, p in enumerate(ps):
                if p.get(key) is not None:
                    a.scatter(n * 2 ** jitter(i, len(ps), 0.3), p[key], s=26, color=color, alpha=0.8)
            vals = [p[key] for p in ps if p.get(key) is not None]
            if vals:
                a.plot([n / 2 ** 0.22, n * 2 ** 0.22], [statistics.median(vals)] * 2, color="black", lw=1.2)
        a.set_xscale("log", base=2)
        a.set_xticks(list(groups))
        a.set_xticklabels([str(n) for n in groups])
        a.set_xlim(min(groups, default=1) / 1.35, max(groups, default=8) * 1.35)
        if from_zero:
            a.set_ylim(bottom=0, top=max([p[key] for p in ds if p.get(key) is not None] + [0]) * 1.15 or 1)
        a.set_xlabel("destinations (log2)")
        a.set_ylabel(ylabel)
        a.set_title(title + "\n(dots: runs, bars: medians)", fontsize=10)
        a.grid(True, alpha=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rng(v, fmt):
    v = [x for x in v if x is not None]
    if not v:
        return "n/a"
    if fmt == ",":  # thousands separated
        return "%s (%s-%s)" % tuple("{:,.0f}".format(x) for x in (statistics.median(v), min(v), max(v)))
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(v), min(v), max(v))


def markdown(res):
    """Tables of the points: medians, (min-max) and the number of runs."""
    out = []
    pts = res["points"]
    trail = by([p for p in pts if p["curve"] == "trail"], "target_records")
    if trail:
        out.append("| records (verified) | runs | verify wall s | verify CPU s | M records per verify CPU s | verify peak "
                   "RSS MiB | agent VmHWM MiB | agent records/s while generating (module-bound) | segments | store GB |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for n, ps in trail.items():
            vs = [v for p in ps for v in p["verify"]]
            out.append("| %s | %d trails x %d | %s | %s | %s | %s | %s | %s | %d | %.2f |" % (
                "{:,.0f}".format(statistics.median(p["records"] for p in ps)), len(ps), len(ps[0]["verify"]),
                rng([v["wall_s"] for v in vs], "%.3f"), rng([v["cpu_s"] for v in vs], "%.3f"),
                rng([v["records"] / v["cpu_s"] / 1e6 for v in vs], "%.2f"), rng([v["maxrss_mib"] for v in vs], "%.1f"),
                rng([p["agent_vmhwm_mib"] for p in ps], "%.1f"),
                rng([p["agent_records_per_s"] for p in ps], ","), ps[0]["verify"][0]["segments"],
                statistics.median(p["store_bytes"] for p in ps) / 1e9))
        out.append("")
    drain = by([p for p in pts if p["curve"] == "drain"], "records")
    if drain:
        out.append("| records per drain | runs | records/s, wall (fsync included) | records per drain-thread CPU s | "
                   "bench peak RSS MiB (the trail is held in memory) |")
        out.append("|---|---|---|---|---|")
        for n, ps in drain.items():
            out.append("| %s | %d | %s | %s | %s |" % (
                "{:,}".format(n), len(ps), rng([x for p in ps for x in p["records_per_s"]], ","),
                rng([x for p in ps for x in p.get("records_per_drain_cpu_s", [])], ","),
                rng([p["bench_maxrss_mib"] for p in ps], ",")))
        out.append("")
    ds = by([p for p in pts if p["curve"] == "dests"], "destinations")
    if ds:
        out.append("| destinations | runs | records | ops/s achieved | deliveries | agent VmHWM MiB | agent CPU s per "
                   "10,000 records | per 10,000 deliveries | catch-up after the load, s | ring peak |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for n, ps in ds.items():
            out.append("| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                n, len(ps), rng([p["records"] for p in ps], ","), rng([p["ops_per_s"] for p in ps], ","),
                rng([p["deliveries"] for p in ps], ","), rng([p["agent_vmhwm_mib"] for p in ps], "%.1f"),
                rng([p["agent_cpu_per_10k"] for p in ps], "%.3f"),
                rng([p["agent_cpu_s"] / p["deliveries"] * 1e4 for p in ps if p["deliveries"]], "%.3f"),
                rng([p["catch_up_s"] for p in ps], "%.1f"),
                rng([(p.get("ring_fill_peak") or 0) * 100 for p in ps], "%.2f%%")))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in", dest="src", required=True, action="append",
                    help="the --out directory of cost_curves.py; repeat it to draw the points of several runs"
                         " (e.g. the trail and destination curves from one, the drain curve from another)")
    ap.add_argument("--docs", default="docs", help="where the PNG files go")
    ap.add_argument("--prefix", default="curves", help="file name prefix")
    ap.add_argument("--markdown", action="store_true", help="also print Markdown tables of the points")
    a = ap.parse_args()
    res = None
    for src in a.src:
        with open(os.path.join(src, "results.json")) as f:
            r = json.load(f)
        for p in r["points"]:
            p.setdefault("date", r["date"])
        if res is None:
            res = r
        else:
            res["points"] += r["points"]
    os.makedirs(a.docs, exist_ok=True)
    written = []
    if any(p["curve"] in ("trail", "drain") for p in res["points"]):
        path = os.path.join(a.docs, a.prefix + "-trail-size.png")
        plot_trail(res, path)
        written.append(path)
    if any(p["curve"] == "dests" for p in res["points"]):
        path = os.path.join(a.docs, a.prefix + "-destinations.png")
        plot_dests(res, path)
        written.append(path)
    if not written:
        sys.exit("no points in " + ", ".join(a.src))
    for p in written:
        print("wrote", p)
    if a.markdown:
        print()
        print(markdown(res))


if __name__ == "__main__":
    main()

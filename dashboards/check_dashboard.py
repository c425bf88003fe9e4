#!/usr/bin/env python3
"""Checks a Grafana dashboard JSON against the conventions of docs/METRICS.md, since Grafana's
linter is not packaged in Debian:

- a template variable `datasource` of type datasource, query prometheus; no `__inputs`
  (file provisioning does not resolve them);
- `job` and `instance` variables; a stable, non-empty uid;
- every panel with queries takes its datasource, and each query's, from ${datasource};
- every rate(), irate() and increase() range is $__rate_interval;
- every query selects job=~"$job" and instance=~"$instance" (except ALERTS/time-only ones).

Usage: check_dashboard.py DASHBOARD.json      exit 0 if it passes, 1 with one line per problem
       check_dashboard.py --self-test DASHBOARD.json
                                              also checks that a broken copy of it is refused for
                                              each convention (so the checker cannot pass vacuously)
"""
import copy
import json
import re
import sys

RANGE_FN = re.compile(r"\b(rate|irate|increase)\s*\(")


def panels_of(dash):
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:  # collapsed rows
            yield q


def ds_is_variable(ds):
    if isinstance(ds, str):
        return ds in ("$datasource", "${datasource}")
    return isinstance(ds, dict) and ds.get("uid") in ("$datasource", "${datasource}")


def range_args(expr):
    """The range selectors ([...]) inside each rate/irate/increase call of expr."""
    out = []
    for m in RANGE_FN.finditer(expr):
        depth, i = 1, m.end()
        while i < len(expr) and depth:
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        body = expr[m.end():i - 1]
        ranges = re.findall(r"\[([^\]]*)\]", body)
        out.append((m.group(1), ranges))
    return out


def check(dash):
    problems = []
    if "__inputs" in dash:
        problems.append("__inputs present: file provisioning cannot resolve it; use a datasource variable")
    if not dash.get("uid"):
        problems.append("no uid: links and provisioning need a stable uid")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no `datasource` variable of type datasource with query prometheus")
    for name in ("job", "instance"):
        if name not in variables:
            problems.append(f"no `{name}` variable")
    for p in panels_of(dash):
        targets = p.get("targets") or []
        if not targets:
            continue
        title = p.get("title", "?")
        if not ds_is_variable(p.get("datasource")):
            problems.append(f"panel '{title}': datasource is not ${{datasource}}")
        for t in targets:
            expr = t.get("expr", "")
            if "datasource" in t and not ds_is_variable(t["datasource"]):
                problems.append(f"panel '{title}' query {t.get('refId')}: datasource is not ${{datasource}}")
            for fn, ranges in range_args(expr):
                if not ranges or any(r != "$__rate_interval" for r in ranges):
                    problems.append(f"panel '{title}': {fn}() without [$__rate_interval]: {expr}")
            if "hsmaudit_" in expr or "process_" in expr:
                if '$job' not in expr or '$instance' not in expr:
                    problems.append(f"panel '{title}': query does not select $job and $instance: {expr}")
    return problems


def self_test(dash):
    """Each mutation breaks one convention; the checker must refuse every one."""
    def first_query_panel(d):
        return next(p for p in panels_of(d) if p.get("targets") and RANGE_FN.search(p["targets"][0]["expr"]))

    mutations = {
        "__inputs": lambda d: d.__setitem__("__inputs", [{"name": "DS_PROMETHEUS", "type": "datasource"}]),
        "no uid": lambda d: d.pop("uid"),
        "no datasource variable": lambda d: d["templating"].__setitem__(
            "list", [v for v in d["templating"]["list"] if v["name"] != "datasource"]),
        "no job variable": lambda d: d["templating"].__setitem__(
            "list", [v for v in d["templating"]["list"] if v["name"] != "job"]),
        "hard-coded panel datasource": lambda d: first_query_panel(d).__setitem__(
            "datasource", {"type": "prometheus", "uid": "prometheus"}),
        "fixed rate window": lambda d: first_query_panel(d)["targets"][0].__setitem__(
            "expr", first_query_panel(d)["targets"][0]["expr"].replace("$__rate_interval", "5m")),
        "no instance selector": lambda d: first_query_panel(d)["targets"][0].__setitem__(
            "expr", first_query_panel(d)["targets"][0]["expr"].replace('instance=~"$instance"', 'instance=~".+"')),
    }
    failures = []
    for name, mutate in mutations.items():
        d = copy.deepcopy(dash)
        mutate(d)
        if not check(d):
            failures.append(f"self-test: a dashboard with '{name}' passed the check")
    return failures


def main(argv):
    args = [a for a in argv[1:] if a != "--self-test"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        dash = json.load(f)
    problems = check(dash)
    if "--self-test" in argv:
        problems += self_test(dash)
    for p in problems:
        print(f"{args[0]}: {p}")
    if not problems:
        queries = sum(len(p.get("targets") or []) for p in panels_of(dash))
        print(f"{args[0]}: OK ({queries} queries)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

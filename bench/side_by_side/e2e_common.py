"""Shared helpers of the side-by-side scripts: processes, ports, the agent's status and metrics.

Every process is started by the caller and stopped by pid (never by name)."""
import json
import os
import resource
import signal
import socket
import subprocess
import time
import urllib.request

RSYSLOGD = "/usr/sbin/rsyslogd"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_listening(port):
    """From /proc/net/tcp, not a probe connection (an aborted TLS handshake can upset imrelp)."""
    want = ":%04X" % port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and fields[1].endswith(want):
                        return True
        except OSError:
            pass
    return False


def wait_until(pred, timeout, what, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s: the process exited (%s)" % (what, proc.returncode))
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def dir_bytes(path):
    """Bytes of every file below `path` (files that vanish meanwhile count 0)."""
    n = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                n += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return n


def start_module(hsmcore, module_dir, log_dir):
    """`hsmcore init` then `hsmcore serve` on module_dir; returns the serving Proc once its control
    socket exists."""
    subprocess.run([hsmcore, "init", "--dir", module_dir], check=True, capture_output=True)
    serve = Proc([hsmcore, "serve", "--dir", module_dir], os.path.join(log_dir, "serve.err"))
    try:
        wait_until(lambda: os.path.exists(os.path.join(module_dir, "control.sock")), 30, "hsmcore serve", serve.proc)
    except Exception:
        serve.stop()
        raise
    return serve


def start_rsyslog(conf_text, d, port):
    """rsyslogd in the foreground with conf_text (checked with -N1 first) written to d/rsyslog.conf;
    returns its Proc once it listens on `port`."""
    conf = os.path.join(d, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    chk = subprocess.run([RSYSLOGD, "-N1", "-f", conf], capture_output=True, text=True)
    if chk.returncode != 0:
        raise RuntimeError("rsyslog config: " + chk.stdout + chk.stderr)
    rsyslog = Proc([RSYSLOGD, "-n", "-f", conf, "-i", os.path.join(d, "rsyslog.pid")], os.path.join(d, "rsyslog.err"))
    try:
        wait_until(lambda: port_listening(port), 30, "rsyslogd listening", rsyslog.proc)
    except Exception:
        rsyslog.stop()
        raise
    return rsyslog


def make_pki(d):
    script = r"""
set -e
cd "$1"; umask 077
mkca() { openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.pem \
  -days 2 -subj "/CN=$1" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }
mkleaf() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr -subj "/CN=$2"
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' $2 > $1.ext
  openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile $1.ext -out $1.pem; }
mkca ca; mkleaf server server.test; mkleaf client client.test
chmod 644 *.pem
"""
    subprocess.run(["/bin/sh", "-c", script, "sh", d], check=True, capture_output=True)


class Proc:
    """A child process with its stderr in a file, stopped by pid."""

    def __init__(self, cmd, log, **kw):
        self.cmd = cmd
        self.log = log
        self.proc = subprocess.Popen(cmd, stdout=open(log + ".out", "w"), stderr=open(log, "w"), **kw)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def cpu_seconds(pid):
    """utime + stime of a process, seconds (clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK  # fields 14 and 15


def machine_cpu():
    """(busy, total) CPU seconds of the whole machine since boot, all CPUs (/proc/stat's cpu line:
    busy is everything but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v) - idle) / CLK_TCK, sum(v) / CLK_TCK


def children_cpu_seconds():
    """utime + stime of this process's waited-for children (RUSAGE_CHILDREN), seconds."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def read_status(state_dir):
    try:
        with open(os.path.join(state_dir, "status.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def counter(text, name):
    """The value of an unlabelled Prometheus counter or gauge (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def histogram(text, name, labels=None):
    """{le: cumulative count} of a Prometheus histogram whose labels include `labels`."""
    out = {}
    labels = labels or {}
    for line in text.splitlines():
        if not line.startswith(name + "_bucket{"):
            continue
        lab, value = line[len(name) + 8:].rsplit("} ", 1)
        kv = dict(p.split("=", 1) for p in lab.split(","))
        kv = {k: v.strip('"') for k, v in kv.items()}
        if all(kv.get(k) == v for k, v in labels.items()):
            le = float("inf") if kv["le"] == "+Inf" else float(kv["le"])
            out[le] = out.get(le, 0) + float(value)
    return out


def histogram_delta(after, before):
    return {le: after[le] - before.get(le, 0) for le in after}


def histogram_quantile(h, q):
    """Prometheus' histogram_quantile: linear within the bucket holding the q-th observation.
    Returns (estimate, lower bound, upper bound of that bucket)."""
    les = sorted(h)
    total = h[les[-1]] if les else 0
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le in les:
        c = h[le]
        if c >= rank:
            if le == float("inf"):
                return (prev_le, prev_le, le)
            frac = (rank - prev_c) / (c - prev_c) if c > prev_c else 1.0
            return (prev_le + (le - prev_le) * frac, prev_le, le)
        prev_le, prev_c = le, c
    return None


def quantile(sorted_values, q):
    """Nearest-rank quantile of a sorted list."""
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2

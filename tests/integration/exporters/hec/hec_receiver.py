#!/usr/bin/python3
"""A Splunk HTTP Event Collector stand-in for the HEC exporter's tests (there is no Splunk here).

It implements what Splunk documents for HEC ("Format events for HTTP Event Collector", "About HTTP
Event Collector Indexer Acknowledgment", "Troubleshoot HTTP Event Collector"):
  POST /services/collector/event   Authorization: Splunk <token>; X-Splunk-Request-Channel: <uuid>
                                   (required when acks are on); Content-Encoding: gzip accepted;
                                   a body of concatenated JSON event objects, each with "event".
                                   -> 200 {"text":"Success","code":0,"ackId":N} (N per channel, from 0)
  POST /services/collector/ack?channel=<uuid>   {"acks":[0,1]} -> {"acks":{"0":true,"1":false}};
                                   an id reported true is forgotten (the strictest reading of Splunk's docs)
  GET  /services/collector/health  -> 200 {"text":"HEC is healthy","code":17}
  errors: 401 {"code":2} no token, 401 {"code":3} malformed header, 403 {"code":4} wrong token,
          503 {"code":9} server busy, 400 {"code":6,"invalid-event-number":i} invalid data,
          400 {"code":10} channel missing, 400 {"code":12} event field missing.

Modes (--mode): normal (an ack is true at the first poll), late (true --late-ms after the
request), out_of_order (odd ids at once, even ids --late-ms later), never (no ack ever true),
refuse (every request 403 code 4), reject (every event POST 400 code 6, as Splunk answers a
batch it cannot parse), no_ack (the token has acknowledgement disabled: no ackId;
ack polls answer 400 code 14). --busy N answers the first N event POSTs with 503 code 9.

Files: --received gets one line per event received (its event_id), written before the answer;
--indexed one line per event whose ack was reported true; --requests one JSON line per request.
Started by tests/integration/exporters/hec/hec_receiver.h; TLS on loopback with the test PKI.
"""
import argparse
import gzip
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MAX_BODY = 64 * 1024 * 1024


def append(f, data):
    """All of `data` (a raw file's write may be short)."""
    view = memoryview(data)
    while view:
        view = view[f.write(view):]


def drop_torn_line(path):
    """A SIGKILL can cut a write short: drop a last line without its LF (its request was never
    answered, so the client sends those events again) before appending after it."""
    try:
        with open(path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
    except FileNotFoundError:
        pass


class State:
    def __init__(self, args):
        for path in (args.received, args.indexed, args.requests):
            drop_torn_line(path)
        self.args = args
        self.lock = threading.Lock()
        self.next_id = {}  # channel -> next ackId
        self.pending = {}  # (channel, id) -> (ready_at or None, [event ids])
        self.busy_left = args.busy
        self.received = open(args.received, "ab", buffering=0)
        self.indexed = open(args.indexed, "ab", buffering=0)
        self.requests = open(args.requests, "ab", buffering=0)
        with open(args.token_file, encoding="ascii") as f:
            self.token = f.read().strip()

    def log_request(self, entry):
        append(self.requests, (json.dumps(entry, sort_keys=True) + "\n").encode())


def split_events(text):
    """The JSON objects of a HEC body, concatenated with optional white space between."""
    decoder = json.JSONDecoder()
    i, out = 0, []
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            return out, None
        try:
            obj, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return out, len(out)
        out.append(obj)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "splunkd"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def auth_error(self):
        st = self.server.state
        h = self.headers.get("Authorization")
        if h is None:
            return 401, {"text": "Token is required", "code": 2}
        if not h.startswith("Splunk "):
            return 401, {"text": "Invalid authorization", "code": 3}
        if st.args.mode == "refuse" or h[len("Splunk "):] != st.token:
            return 403, {"text": "Invalid token", "code": 4}
        return None

    def read_body(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too long")
        data = self.rfile.read(n)
        if self.headers.get("Content-Encoding", "") == "gzip":
            data = gzip.decompress(data)
        return data

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/services/collector/health":
            self.reply(200, {"text": "HEC is healthy", "code": 17})
        else:
            self.reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def do_POST(self):
        st = self.server.state
        url = urlparse(self.path)
        try:
            body = self.read_body()
        except Exception:  # noqa: BLE001 - a bad body is the client's error
            self.reply(400, {"text": "Invalid data format", "code": 6})
            return
        channel = self.headers.get("X-Splunk-Request-Channel") or parse_qs(url.query).get("channel", [None])[0]
        entry = {"path": url.path, "gzip": self.headers.get("Content-Encoding", "") == "gzip",
                 "channel": channel, "bytes": len(body)}
        err = self.auth_error()
        if err:
            entry["status"] = err[0]
            st.log_request(entry)
            self.reply(*err)
            return
        if url.path == "/services/collector/event":
            self.event(st, body, channel, entry)
        elif url.path == "/services/collector/ack":
            self.ack(st, body, channel, entry)
        else:
            self.reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def event(self, st, body, channel, entry):
        acks = st.args.mode != "no_ack"
        with st.lock:
            if st.busy_left > 0:
                st.busy_left -= 1
                entry["status"] = 503
                st.log_request(entry)
                self.reply(503, {"text": "Server is busy", "code": 9})
                return
        if st.args.mode == "reject":
            entry["status"] = 400
            st.log_request(entry)
            self.reply(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 0})
            return
        if acks and not channel:
            self.reply(400, {"text": "Data channel is missing", "code": 10})
            return
        events, bad = split_events(body.decode("utf-8", errors="replace"))
        if bad is not None:
            self.reply(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": bad})
            return
        if not events:
            self.reply(400, {"text": "No data", "code": 5})
            return
        ids = []
        for i, e in enumerate(events):
            if not isinstance(e, dict) or "event" not in e:
                self.reply(400, {"text": "Event field is required", "code": 12, "invalid-event-number": i})
                return
            ev = e["event"]
            ids.append(str(ev.get("event_id", "?")) if isinstance(ev, dict) else "?")
        append(st.received, ("".join(i + "\n" for i in ids)).encode())
        entry.update(status=200, events=len(ids))
        if not acks:
            st.log_request(entry)
            self.reply(200, {"text": "Success", "code": 0})
            return
        now = time.monotonic()
        late = st.args.late_ms / 1000.0
        with st.lock:
            ack_id = st.next_id.get(channel, 0)
            st.next_id[channel] = ack_id + 1
            mode = st.args.mode
            if mode == "never":
                ready = None
            elif mode == "late":
                ready = now + late
            elif mode == "out_of_order":
                ready = now + (late if ack_id % 2 == 0 else 0)
            else:
                ready = now
            st.pending[(channel, ack_id)] = (ready, ids)
        entry["ackId"] = ack_id
        st.log_request(entry)
        self.reply(200, {"text": "Success", "code": 0, "ackId": ack_id})

    def ack(self, st, body, channel, entry):
        if st.args.mode == "no_ack":
            self.reply(400, {"text": "ACK is disabled", "code": 14})
            return
        if not channel:
            self.reply(400, {"text": "Data channel is missing", "code": 10})
            return
        try:
            wanted = json.loads(body)["acks"]
            assert isinstance(wanted, list) and all(isinstance(i, int) for i in wanted)
        except Exception:  # noqa: BLE001
            self.reply(400, {"text": "Invalid data format", "code": 6})
            return
        now = time.monotonic()
        out, done = {}, []
        with st.lock:
            for i in wanted:
                p = st.pending.get((channel, i))
                ok = p is not None and p[0] is not None and p[0] <= now
                out[str(i)] = ok
                if ok:
                    done.extend(p[1])
                    del st.pending[(channel, i)]
            if done:
                append(st.indexed, ("".join(i + "\n" for i in done)).encode())
        entry.update(status=200, asked=len(wanted), confirmed=sum(out.values()))
        st.log_request(entry)
        self.reply(200, {"acks": out})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--client-ca", help="require a client certificate signed by this CA")
    p.add_argument("--plain", action="store_true", help="HTTP without TLS")
    p.add_argument("--token-file", required=True)
    p.add_argument("--mode", default="normal",
                   choices=["normal", "late", "out_of_order", "never", "refuse", "reject", "no_ack"])
    p.add_argument("--late-ms", type=int, default=300)
    p.add_argument("--busy", type=int, default=0)
    p.add_argument("--received", required=True)
    p.add_argument("--indexed", required=True)
    p.add_argument("--requests", required=True)
    p.add_argument("--ready", required=True)
    args = p.parse_args()

    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.state = State(args)
    if not args.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)

        # The handshake runs in the connection's thread, not in the accept loop.
        orig_finish = server.finish_request

        def finish_request(request, client_address):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
            orig_finish(request, client_address)

        server.finish_request = finish_request
    with open(args.ready + ".tmp", "w", encoding="ascii") as f:
        f.write(str(os.getpid()))
    os.rename(args.ready + ".tmp", args.ready)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

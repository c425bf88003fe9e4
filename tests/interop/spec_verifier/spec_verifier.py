#!/usr/bin/env python3
"""A second verifier of hsmaudit trails, written from docs/FORMAT.md alone (sections 2, 3, 5, 8, 9).

It shares no code with the C++ verifier: it exists to prove that the specification is enough to
verify the agent's own store (encrypted segments, archives) and to catch the common faults.

Usage: spec_verifier.py (--key audit.key | --pubkey audit.pub) [--json] PATH...
  PATH: segment files, archives (.tar, .tgz, .tar.gz) or directories (read as FORMAT.md 9.1 says).
Exit status: 0 verified, 1 at least one fault, 2 usage or I/O error.

Needs Python 3 and python3-cryptography (AES-GCM, Ed25519).
"""
import hashlib
import hmac
import json
import os
import re
import sys
import tarfile

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAX_LINE = 65536                      # 2.1
MAX_EPOCH_STEP = 1 << 24              # 3.7
MAGICS = (b"HSMAENC2", b"HSMAENC1")   # 8.2: version 2 (written), version 1 (read)
HEADER = 24
MAX_CHUNK = 16 * 1024 * 1024
MANIFEST = "hsmaudit-archive.txt"     # 9.2
U64_MAX = (1 << 64) - 1


class UsageError(Exception):
    pass


def u64be(n):
    return n.to_bytes(8, "big")


def mac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


# ---- 2.1 / 2.5 syntax -------------------------------------------------------------------------

NUM = r"(?:0|[1-9][0-9]*)"
TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"
ESC = r"[^ \x00-\x1f\x7f]+"
HEX32 = r"[0-9a-f]{32}"
HEX64 = r"[0-9a-f]{64}"

OPEN_RE = re.compile(
    rb"@open v=1 chain=(?P<chain>" + HEX32.encode() + rb") serial=(?P<serial>" + ESC.encode() +
    rb") epoch=(?P<epoch>" + NUM.encode() + rb") boot=" + NUM.encode() + rb" first=(?P<first>" +
    NUM.encode() + rb") time=" + TIME.encode() + rb" prev=(?P<prev>" + HEX64.encode() +
    rb") mac=(?P<mac>" + HEX64.encode() + rb")")
SEAL_RE = re.compile(
    rb"@seal v=1 chain=(?P<chain>" + HEX32.encode() + rb") serial=(?P<serial>" + ESC.encode() +
    rb") epoch=(?P<epoch>" + NUM.encode() + rb") records=(?P<records>" + NUM.encode() +
    rb") first=(?P<first>" + NUM.encode() + rb") last=(?P<last>" + NUM.encode() + rb") time=" +
    TIME.encode() + rb" final=(?P<final>" + HEX64.encode() + rb") digest=(?P<digest>" +
    HEX64.encode() + rb") mac=(?P<mac>" + HEX64.encode() + rb") sig=(?P<sig>[0-9a-f]{128})")
ROLES = rb"(?:SO|AU|PSO|CO|LCO|CU|BO|-)"
CLASSES = rb"(?:failure|success|access|manage|keymanage|usage|first|external|logmanage)"
RECORD_RE = re.compile(
    rb"(?P<seq>[1-9][0-9]*) " + TIME.encode() + rb" serial=" + ESC.encode() + rb" boot=" +
    NUM.encode() + rb" part=" + NUM.encode() + rb" role=" + ROLES + rb" sess=" + NUM.encode() +
    rb" event=" + ESC.encode() + rb" class=" + CLASSES + rb" result=0x[0-9a-f]{8}" +
    rb"(?: [a-z][a-z0-9_]{0,31}=[^ \x00-\x1f\x7f]*)* mac=(?P<mac>" + HEX64.encode() + rb")")


def num(b):
    v = int(b)
    if v > U64_MAX:
        raise ValueError("number above 2^64-1")
    return v


def parse_open(line):
    m = OPEN_RE.fullmatch(line)
    if not m:
        return None
    try:
        return {"chain": bytes.fromhex(m["chain"].decode()), "serial": m["serial"],
                "epoch": num(m["epoch"]), "first": num(m["first"]),
                "prev": bytes.fromhex(m["prev"].decode()), "mac": bytes.fromhex(m["mac"].decode()),
                "body": line[:line.rindex(b" mac=")]}
    except ValueError:
        return None


def parse_seal(line):
    m = SEAL_RE.fullmatch(line)
    if not m:
        return None
    try:
        return {"chain": bytes.fromhex(m["chain"].decode()), "serial": m["serial"],
                "epoch": num(m["epoch"]), "records": num(m["records"]), "first": num(m["first"]),
                "last": num(m["last"]), "final": bytes.fromhex(m["final"].decode()),
                "digest": bytes.fromhex(m["digest"].decode()), "mac": bytes.fromhex(m["mac"].decode()),
                "sig": bytes.fromhex(m["sig"].decode()),
                "mac_body": line[:line.rindex(b" mac=")], "sig_body": line[:line.rindex(b" sig=")]}
    except ValueError:
        return None


# ---- 5. key files -----------------------------------------------------------------------------

def read_key_file(path, want_format):
    fields = {}
    try:
        with open(path, "r", encoding="utf-8") as f:
            for raw in f:
                line = raw.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                name, sep, value = line.partition(": ")
                if not sep:
                    raise UsageError(f"{path}: not a key file line: {line!r}")
                fields[name] = value
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    if fields.get("format") != want_format:
        raise UsageError(f"{path}: not a {want_format} file")
    try:
        pub = bytes.fromhex(fields["pubkey"])
        chain = bytes.fromhex(fields["chain"])
        secret = bytes.fromhex(fields["secret"]) if "secret" in fields else None
    except (KeyError, ValueError) as e:
        raise UsageError(f"{path}: bad or missing field: {e}") from e
    if hashlib.sha256(b"hsmaudit/v1/chain-id" + pub).digest()[:16] != chain:
        raise UsageError(f"{path}: chain does not match pubkey")
    return chain, pub, secret


# ---- 8. encrypted files -----------------------------------------------------------------------

def decrypt(data, store_key):
    """Returns (plaintext, damage message or None). 8.2, 8.3."""
    magic, salt = data[:8], data[8:24]
    version = 2 if magic == b"HSMAENC2" else 1
    nonce_bytes = 12 if version == 2 else 0
    aes = AESGCM(mac(store_key, b"hsmaudit/v1/file-key" + salt))
    out = []
    pos = HEADER
    i = 0
    while pos < len(data):
        if len(data) - pos < 4:
            return b"".join(out), f"torn chunk header (chunk {i}) at byte {pos}"
        n = int.from_bytes(data[pos:pos + 4], "big")
        if n == 0 or n > MAX_CHUNK:
            return b"".join(out), f"chunk {i} has an impossible length {n} at byte {pos}"
        if len(data) - pos < 4 + nonce_bytes + n + 16:
            return b"".join(out), f"torn chunk {i} at byte {pos}"
        body = pos + 4 + nonce_bytes
        nonce = data[pos + 4:body] if version == 2 else b"\0\0\0\0" + u64be(i)
        try:
            out.append(aes.decrypt(nonce, data[body:body + n + 16], magic + salt + u64be(i)))
        except InvalidTag:
            return b"".join(out), f"chunk {i} fails authentication at byte {pos}"
        pos = body + n + 16
        i += 1
    return b"".join(out), None


# ---- inputs (9.1, 9.2) ------------------------------------------------------------------------

class Verifier:
    def __init__(self, chain, pub, secret):
        self.chain = chain
        self.pub = Ed25519PublicKey.from_public_bytes(pub)
        self.secret = secret
        self.store_key = mac(secret, b"hsmaudit/v1/store-key" + chain) if secret else None
        self.faults = []
        self.inputs = []  # (name, bytes)
        self.epoch_keys = {}
        if secret:
            self.epoch_keys[0] = mac(secret, b"hsmaudit/v1/epoch-key" + chain)
        self.macs = secret is not None
        self.reach = 0
        self.segments = []

    def fault(self, kind, file, line=0, seq=0, message=""):
        self.faults.append({"kind": kind, "file": file, "line": line, "seq": seq, "message": message})

    def collect(self, path):
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for f in sorted(files):
                    full = os.path.join(root, f)
                    if not os.path.isfile(full):
                        continue
                    if f.endswith(".log"):
                        self.add_file(full)
                    elif f.endswith((".tar", ".tgz", ".tar.gz")) and not f.startswith(".tmp-"):
                        self.add_archive(full)
        elif os.path.exists(path):
            if path.endswith((".tar", ".tgz", ".tar.gz")):
                self.add_archive(path)
            else:
                self.add_file(path)
        else:
            raise UsageError(f"cannot access {path}")

    def add_file(self, path):
        try:
            with open(path, "rb") as f:
                self.inputs.append((path, f.read()))
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e}") from e

    def add_archive(self, path):
        members = {}
        manifest = None
        first = True
        try:
            tar = tarfile.open(path, "r:*")
        except (tarfile.TarError, OSError, EOFError) as e:
            self.fault("archive_damaged", path, 0, 0, f"not a readable tar archive: {e}")
            return
        with tar:
            try:
                for m in tar:
                    name = m.name
                    if first and name != MANIFEST:
                        self.fault("archive_damaged", path, 0, 0, f"first member is {name}, not {MANIFEST}")
                    if not m.isreg():
                        first = False
                        continue
                    data = tar.extractfile(m).read()
                    if len(data) != m.size:
                        self.fault("archive_damaged", f"{path}({name})", 0, 0, "member cut short")
                    if first and name == MANIFEST:
                        manifest = data
                    elif name.endswith(".log"):
                        members[name] = len(data)
                        self.inputs.append((f"{path}({name})", data))
                    first = False
            except (tarfile.TarError, OSError, EOFError) as e:
                self.fault("archive_damaged", path, 0, 0, f"the archive cannot be read to its end: {e}")
        if manifest is not None:
            self.check_manifest(path, manifest, members)

    def check_manifest(self, path, text, members):
        """9.3: the manifest is not evidence, but a member it names must be there, at its size."""
        lines = text.split(b"\n")
        if lines[-1] != b"" or not lines[0].startswith(b"hsmaudit-archive/1 "):
            self.fault("archive_damaged", path, 0, 0, "the manifest is malformed")
            return
        for line in lines[1:-1]:
            f = dict(tok.split(b"=", 1) for tok in line.split(b" ")[1:] if b"=" in tok)
            name = f.get(b"name", b"").decode("utf-8", "replace")
            if not line.startswith(b"segment ") or not name:
                self.fault("archive_damaged", path, 0, 0, f"manifest line {line!r} is malformed")
            elif name not in members:
                self.fault("archive_damaged", path, 0, 0, f"{name} is in the manifest, not in the archive")
            elif str(members[name]).encode() != f.get(b"bytes"):
                self.fault("archive_damaged", path, 0, 0, f"{name}: size differs from the manifest")

    # ---- 3. verification ----------------------------------------------------------------------

    def epoch_key(self, e):
        top = max(self.epoch_keys)
        if e < top:
            raise AssertionError("epochs are verified in ascending order")
        k = self.epoch_keys[top]
        for n in range(top, e):
            k = mac(k, b"hsmaudit/v1/evolve" + u64be(n + 1))
        self.epoch_keys = {e: k}
        return k

    def plaintext(self, name, data):
        if data.startswith(MAGICS):
            if self.store_key is None:
                raise UsageError(f"{name} is encrypted at rest: verifying it needs the audit secret")
            if len(data) < HEADER:
                self.fault("encrypted_damaged", name, 0, 0, "torn header")
                return b"", "torn header"
            plain, damage = decrypt(data, self.store_key)
            if damage:
                self.fault("encrypted_damaged", name, 0, 0, damage)
            return plain, damage
        return data, None

    def run(self):
        heads = []
        for name, data in self.inputs:
            plain, damage = self.plaintext(name, data)
            nl = plain.find(b"\n")
            if not plain:
                if not damage:
                    self.fault("not_a_segment", name, 0, 0, "empty file")
                continue
            op = parse_open(plain[:nl]) if 0 <= nl <= MAX_LINE else None
            if op is None:
                self.fault("not_a_segment", name, 1, 0, "does not start with an open line")
                continue
            heads.append((op, name, plain))
        mine = [h for h in heads if h[0]["chain"] == self.chain]
        if not mine:
            for op, name, _ in heads:
                self.fault("wrong_key", name, 0, 0, "segments of another chain")
        else:
            for op, name, _ in heads:
                if op["chain"] != self.chain:
                    self.fault("foreign_chain", name, 1, 0, "segment of another chain")
        mine.sort(key=lambda h: (h[0]["epoch"], h[1]))
        end = None  # (epoch, next_seq, end_mac, file)
        serial = None
        first_segment = True
        for idx, (op, name, plain) in enumerate(mine):
            newest = idx + 1 == len(mine)
            if end and op["epoch"] <= end[0]:
                self.fault("segment_duplicate", name, 1, 0, f"epoch {op['epoch']} again")
                continue
            if op["epoch"] > self.reach + MAX_EPOCH_STEP:
                self.fault("epoch_out_of_range", name, 1, op["first"], f"epoch {op['epoch']}")
                continue
            self.reach = max(self.reach, op["epoch"])
            if serial is None:
                serial = op["serial"]
            if end and op["epoch"] > end[0] + 1:
                self.fault("segment_missing", name, 1, op["first"],
                           f"epochs {end[0] + 1}..{op['epoch'] - 1} missing")
            elif end:
                if op["prev"] != end[2]:
                    self.fault("chain_link_broken", name, 1, op["first"], f"does not continue {end[3]}")
                if op["first"] > end[1]:
                    self.fault("sequence_gap", name, 1, end[1], "records missing between segments")
                elif op["first"] < end[1]:
                    self.fault("sequence_duplicate", name, 1, op["first"], "records again")
            if op["serial"] != serial:
                self.fault("foreign_module", name, 1, 0, "another module serial")
            end = self.segment(op, name, plain, newest, first_segment)
            first_segment = False

    def segment(self, op, name, plain, newest, first_segment):
        key = self.epoch_key(op["epoch"]) if self.macs else None
        lines = plain.split(b"\n")
        torn = lines.pop()  # b"" if the file ends with LF
        open_line = lines[0]
        open_ok = key is None or hmac.compare_digest(mac(key, op["body"] + op["prev"]), op["mac"])
        pending_wrong_key = first_segment and not open_ok
        if not open_ok and not pending_wrong_key:
            self.fault("open_mac_mismatch", name, 1, 0, "the open line's MAC does not verify")
        digest = hashlib.sha256(b"hsmaudit/v1/segment" + open_line + b"\n").digest()
        x, m = op["first"], op["prev"]
        prev_seq = None
        records = 0
        last_seq = op["first"] - 1
        seal = None
        after_seal = False
        first_record = True
        for n, line in enumerate(lines[1:], start=2):
            if seal is not None:
                if not after_seal:
                    self.fault("data_after_seal", name, n, 0, "lines after the seal")
                after_seal = True
                continue
            if len(line) > MAX_LINE:
                self.fault("malformed_line", name, n, 0, "line too long")
                continue
            if line.startswith(b"@seal "):
                seal = parse_seal(line)
                if seal is None:
                    self.fault("malformed_line", name, n, 0, "malformed seal line")
                    seal = {}
                    continue
                self.check_seal(seal, op, name, n, records, last_seq, m, digest, key)
                continue
            rec = RECORD_RE.fullmatch(line)
            if not rec:
                self.fault("malformed_line", name, n, 0, "not a record line")
                continue
            try:
                s = num(rec["seq"])
            except ValueError:
                self.fault("malformed_line", name, n, 0, "bad sequence number")
                continue
            c = bytes.fromhex(rec["mac"].decode())
            records += 1
            digest = hashlib.sha256(digest + line + b"\n").digest()
            if s == x:
                if key is not None:
                    ok = hmac.compare_digest(mac(key, line[:line.rindex(b" ")] + m), c)
                    if first_record and pending_wrong_key:
                        if not ok:
                            self.fault("wrong_key", name, 1, 0, "open line and first record MACs fail")
                            key = None
                            self.macs = False
                        else:
                            self.fault("open_mac_mismatch", name, 1, 0, "the open line's MAC does not verify")
                        pending_wrong_key = False
                    elif not ok:
                        self.fault("record_mac_mismatch", name, n, s, "record MAC does not verify")
            elif s > x:
                self.fault("sequence_gap", name, n, x, f"records {x}..{s - 1} missing")
            elif s == prev_seq:
                self.fault("sequence_duplicate", name, n, s, "record number again")
            else:
                self.fault("sequence_reordered", name, n, s, "record number goes backwards")
            first_record = False
            x = max(x, s + 1)
            m = c
            prev_seq = s
            last_seq = max(last_seq, s)
        if pending_wrong_key:  # no record to tell a wrong key from an altered open line
            self.fault("open_mac_mismatch", name, 1, 0, "the open line's MAC does not verify")
        if torn:
            self.fault("torn_line", name, len(lines) + 1, 0, "the file ends inside a line")
        sealed = bool(seal)
        if seal is None and not newest:
            self.fault("seal_missing", name, 0, 0, "segment without a seal")
        self.segments.append({"file": name, "epoch": op["epoch"], "first_seq": op["first"],
                              "last_seq": last_seq, "records": records, "sealed": sealed,
                              "open_tail": seal is None and newest})
        if sealed:
            return (op["epoch"], seal["last"] + 1, seal["final"], name)
        return (op["epoch"], x, m, name)

    def check_seal(self, seal, op, name, n, records, last_seq, final, digest, key):
        if (seal["chain"] != op["chain"] or seal["serial"] != op["serial"] or seal["epoch"] != op["epoch"]
                or seal["first"] != op["first"] or seal["records"] != records
                or seal["last"] != seal["first"] + records - 1 or seal["final"] != final):
            self.fault("seal_mismatch", name, n, 0, "the seal disagrees with the open line or the records")
        if key is not None and not hmac.compare_digest(mac(key, seal["mac_body"] + seal["final"]), seal["mac"]):
            self.fault("seal_mac_mismatch", name, n, 0, "the seal's MAC does not verify")
        try:
            self.pub.verify(seal["sig"], seal["sig_body"])
        except InvalidSignature:
            self.fault("bad_signature", name, n, 0, "the seal's signature does not verify")
        if seal["digest"] != digest:
            self.fault("digest_mismatch", name, n, 0, "the bytes before the seal differ from what was sealed")

    def report(self):
        recs = [s for s in self.segments if s["records"] > 0]
        return {
            "verdict": "failed" if self.faults else "verified",
            "chain": self.chain.hex(),
            "macs_checked": self.macs,
            "records": sum(s["records"] for s in self.segments),
            "first_seq": min((s["first_seq"] for s in recs), default=0),
            "last_seq": max((s["last_seq"] for s in recs), default=0),
            "sealed_segments": sum(1 for s in self.segments if s["sealed"]),
            "open_segments": sum(1 for s in self.segments if s["open_tail"]),
            # Section 1: without the secret nothing authenticates the open tail's records.
            "unproven_records": 0 if self.secret else sum(s["records"] for s in self.segments if s["open_tail"]),
            "segments": self.segments,
            "faults": self.faults,
        }


def main(argv):
    args = argv[1:]
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    try:
        if len(args) < 3 or args[0] not in ("--key", "--pubkey"):
            raise UsageError(__doc__.split("\n\n")[2])
        if args[0] == "--key":
            chain, pub, secret = read_key_file(args[1], "hsmaudit-audit-key/1")
            if secret is None or len(secret) != 32:
                raise UsageError(f"{args[1]}: no 32-byte secret")
        else:
            chain, pub, secret = read_key_file(args[1], "hsmaudit-audit-pub/1")
            secret = None
        v = Verifier(chain, pub, secret)
        for p in args[2:]:
            v.collect(p)
        v.run()
    except UsageError as e:
        print(f"spec_verifier: {e}", file=sys.stderr)
        return 2
    r = v.report()
    if as_json:
        print(json.dumps(r, indent=1))
    else:
        for f in r["faults"]:
            print(f"FAULT {f['kind']} {f['file']}:{f['line']} seq={f['seq']}: {f['message']}")
        print(f"{r['verdict'].upper()}: chain {r['chain']}, {r['records']} records "
              f"({r['first_seq']}..{r['last_seq']}), {r['sealed_segments']} sealed segments, "
              f"{r['open_segments']} open, {len(r['faults'])} faults")
        if r["unproven_records"]:
            print(f"note: {r['unproven_records']} records of the open tail are not authenticated (no audit secret)")
    return 1 if r["faults"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

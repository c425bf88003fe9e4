#!/usr/bin/env bash
# docs/FORMAT.md is enough to verify the agent's own store: the real hsmauditd (embedded module,
# small segments, archives every pass) writes an encrypted store and a plaintext one; the second
# verifier written from the spec alone (spec_verifier.py) must verify both and agree with
# `hsmaudit verify --key` on what they hold, then reject tampered copies (exit 1) as hsmaudit does:
#   - one bit flipped in an encrypted chunk, of a segment file and of an archive member (encrypted_damaged),
#   - a segment member removed from an archive (archive_damaged against the manifest, segment_missing),
#   - a record line changed in a plaintext segment (record_mac_mismatch).
# Usage: spec_verifier_test.sh HSMAUDITD HSMAUDIT SPEC_VERIFIER_PY
set -euo pipefail
HSMAUDITD=$1
HSMAUDIT=$2
SPEC=$3
python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null ||
  { echo "FAIL: python3-cryptography is missing (scripts/setup installs it)"; exit 1; }

TMP=$(mktemp -d)
agent_pid=
cleanup() {
  if [ -n "$agent_pid" ]; then kill -KILL "$agent_pid" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
first() { [ -e "$1" ] || fail "no file matches $1"; echo "$1"; }  # the first match of a glob

# Runs the agent on $1 (encrypt: true|false) until an archive with at least 3 segments exists and
# sealed segments wait beside it, then stops it cleanly.
run_agent() {
  local dir=$TMP/$2
  mkdir -p "$dir"
  cat > "$dir/hsmauditd.yaml" <<YAML
agent:
  state_dir: $dir/state/agent
module:
  mode: embedded
  dir: $dir/state/module
  serial: "150123"
  ring_size: 1MiB
  workload:
    rate: 500
    mix: sign=70,verify=10,encrypt=10,keygen=5,login=5
rotation:
  period: hourly
  max_segment_bytes: 16KiB
archive:
  interval: 1s
  max_segments: 1
store:
  encrypt: $1
checkpoint:
  interval: 1s
YAML
  "$HSMAUDITD" -c "$dir/hsmauditd.yaml" 2> "$dir/hsmauditd.log" &
  agent_pid=$!
  local audit=$dir/state/agent/audit ok=
  for _ in $(seq 1 300); do  # 60 s at most
    if python3 - "$audit" <<'PY'
import os, sys, tarfile
a = sys.argv[1]
try:
    archives = [f for f in os.listdir(os.path.join(a, "archive")) if not f.startswith(".")]
    ready = [f for f in os.listdir(os.path.join(a, "ready_for_archive")) if f.endswith(".log")]
    big = any(len(tarfile.open(os.path.join(a, "archive", f)).getnames()) >= 4 for f in archives)
except (OSError, tarfile.TarError, EOFError):
    sys.exit(1)
sys.exit(0 if big and len(ready) >= 2 else 1)
PY
    then ok=1; break; fi
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -TERM "$agent_pid"
  wait "$agent_pid" || fail "hsmauditd ($2) exited $?: $(tail -n 5 "$dir/hsmauditd.log")"
  agent_pid=
  [ -n "$ok" ] || fail "no archive with 3 segments in $audit after 60 s: $(tail -n 5 "$dir/hsmauditd.log")"
}

# Both verifiers on $2 with key $1: expects exit $3 from both.
both() {
  local key=$1 path=$2 want=$3 what=$4 rc
  set +e
  python3 "$SPEC" --key "$key" --json "$path" > "$TMP/spec.json" 2> "$TMP/spec.err"; rc=$?
  set -e
  [ "$rc" -eq "$want" ] || fail "$what: spec_verifier exit $rc, want $want: $(cat "$TMP/spec.err"; head -c 2000 "$TMP/spec.json")"
  set +e
  "$HSMAUDIT" verify --key "$key" --json "$path" > "$TMP/cpp.json" 2> "$TMP/cpp.err"; rc=$?
  set -e
  [ "$rc" -eq "$want" ] || fail "$what: hsmaudit verify exit $rc, want $want: $(cat "$TMP/cpp.err")"
  echo "ok: $what: both verifiers exit $want"
}

# The spec verifier's faults include kind $1.
has_fault() {
  python3 -c 'import json,sys; k=[f["kind"] for f in json.load(open(sys.argv[1]))["faults"]]; sys.exit(0 if sys.argv[2] in k else 1)' \
    "$TMP/spec.json" "$1" || fail "spec_verifier reported no $1: $(head -c 2000 "$TMP/spec.json")"
}

same_counts() {
  python3 - "$TMP/spec.json" "$TMP/cpp.json" "$1" <<'PY'
import json, sys
s, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
keys = ["verdict", "chain", "records", "first_seq", "last_seq", "sealed_segments", "open_segments"]
diff = {k: (s[k], c[k]) for k in keys if s[k] != c[k]}
if diff:
    sys.exit(f"FAIL: {sys.argv[3]}: the verifiers disagree (spec, hsmaudit): {diff}")
if s["records"] < 100:
    sys.exit(f"FAIL: {sys.argv[3]}: only {s['records']} records")
print(f"ok: {sys.argv[3]}: both verify {s['records']} records {s['first_seq']}..{s['last_seq']}, "
      f"{s['sealed_segments']} sealed segments, {s['open_segments']} open")
PY
}

# ---- the encrypted store (the default) ----
run_agent true enc
E=$TMP/enc/state/agent/audit
KEY=$TMP/enc/state/module/audit.key
ls "$E"/archive/*.tar > /dev/null || fail "no .tar archive in the encrypted store"
head -c 8 "$(first "$E"/ready_for_archive/*.log)" | grep -q HSMAENC2 || fail "segments are not encrypted (version 2)"
both "$KEY" "$E" 0 "encrypted store"
same_counts "encrypted store"
# FORMAT.md 8.1: the public key cannot read an encrypted store (a usage error, not a verdict).
set +e
python3 "$SPEC" --pubkey "${KEY%.key}.pub" "$E" > /dev/null 2>&1; rc=$?
"$HSMAUDIT" verify --pubkey "${KEY%.key}.pub" "$E" > /dev/null 2>&1; rc2=$?
set -e
{ [ "$rc" -eq 2 ] && [ "$rc2" -eq 2 ]; } || fail "--pubkey on an encrypted store: spec_verifier exit $rc, hsmaudit $rc2, want 2"
echo "ok: --pubkey on the encrypted store: both exit 2"

# One bit flipped inside chunk 0's ciphertext of a waiting segment.
cp -r "$E" "$TMP/e1"
seg=$(first "$TMP"/e1/ready_for_archive/*.log)
python3 - "$seg" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[24 + 4 + 40] ^= 0x04
open(p, "wb").write(b)
PY
both "$KEY" "$TMP/e1" 1 "1 bit flipped in an encrypted chunk"
has_fault encrypted_damaged

# One bit flipped inside an encrypted segment member of an archive (tar headers stay valid).
cp -r "$E" "$TMP/e3"
arc=$(first "$TMP"/e3/archive/*.tar)
python3 - "$arc" <<'PY'
import sys, tarfile
p = sys.argv[1]
with tarfile.open(p) as t:
    m = [m for m in t.getmembers() if m.name.endswith(".log")][2]
b = bytearray(open(p, "rb").read())
assert b[m.offset_data:m.offset_data + 8] == b"HSMAENC2"
b[m.offset_data + 24 + 4 + 40] ^= 0x80
open(p, "wb").write(b)
PY
both "$KEY" "$TMP/e3" 1 "1 bit flipped in an encrypted member of an archive"
has_fault encrypted_damaged

# An archive without its second segment member (the manifest still names it).
cp -r "$E" "$TMP/e2"
arc=$(first "$TMP"/e2/archive/*.tar)
python3 - "$arc" <<'PY'
import io, sys, tarfile
p = sys.argv[1]
with tarfile.open(p) as t:
    members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
drop = [m.name for m, _ in members if m.name.endswith(".log")][1]
with tarfile.open(p, "w", format=tarfile.PAX_FORMAT) as out:
    for m, data in members:
        if m.name != drop:
            out.addfile(m, io.BytesIO(data))
print(f"removed {drop} from {p}")
PY
both "$KEY" "$TMP/e2" 1 "a segment member removed from an archive"
has_fault archive_damaged
has_fault segment_missing

# ---- a plaintext store (store.encrypt: false): .tgz archives ----
run_agent false plain
P=$TMP/plain/state/agent/audit
PKEY=$TMP/plain/state/module/audit.key
ls "$P"/archive/*.tgz > /dev/null || fail "no .tgz archive in the plaintext store"
both "$PKEY" "$P" 0 "plaintext store"
same_counts "plaintext store"

# One record line changed (its result code) in a waiting plaintext segment.
cp -r "$P" "$TMP/p1"
seg=$(first "$TMP"/p1/ready_for_archive/*.log)
python3 - "$seg" <<'PY'
import re, sys
p = sys.argv[1]
lines = open(p, "rb").read().split(b"\n")
new, n = re.subn(rb" result=0x([0-9a-f]{8}) ", lambda m: b" result=0x%08x " % (int(m[1], 16) ^ 1), lines[3], count=1)
assert n == 1, lines[3]
lines[3] = new
open(p, "wb").write(b"\n".join(lines))
PY
both "$PKEY" "$TMP/p1" 1 "a record line changed in a plaintext segment"
has_fault record_mac_mismatch

echo "PASS"

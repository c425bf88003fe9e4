#!/bin/sh
# Minimal reproduction of the gap the soak found (docs/SOAK.md, "Known gaps"): a record changed in a
# sealed segment of the agent's store while the agent is down is not alerted by the agent when it
# starts again (only the open segment is re-verified), and the archiver bundles the changed segment
# as it is; `hsmaudit verify` does report it.
#   usage: tests/soak/tools/repro_sealed_tamper.sh BUILD_DIR
set -eu
B=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
T=$(mktemp -d /tmp/hsmaudit-repro-XXXXXX)
trap 'kill $SERVE $AGENT 2>/dev/null || true; rm -rf "$T"' EXIT
"$B/hsmcore/hsmcore" init --dir "$T/module" --serial REPRO1 >/dev/null
"$B/hsmcore/hsmcore" serve --dir "$T/module" >"$T/serve.log" 2>&1 & SERVE=$!
while [ ! -S "$T/module/control.sock" ]; do sleep 0.1; done
# First run: segments wait in ready_for_archive; second run: the archiver bundles them at once.
for a in "1h 1000:agent1" "2s 1:agent2"; do
  set -- ${a%%:*}
  cat >"$T/${a##*:}.yaml" <<EOF
agent: {state_dir: $T/state, status_interval: 200ms}
module: {mode: connect, dir: $T/module}
store: {encrypt: false}
rotation: {max_segment_bytes: 65536}
archive: {interval: $1, max_segments: $2}
EOF
done
"$B/agent/hsmauditd" -c "$T/agent1.yaml" >"$T/agent1.log" 2>&1 & AGENT=$!
"$B/hsmcore/hsmcore" load --dir "$T/module" --rate 2000 --duration 3 >/dev/null
sleep 1
kill -9 $AGENT; wait $AGENT 2>/dev/null || true
SEG=$(ls "$T/state/audit/ready_for_archive"/*.log | head -1)
# Change the result code of the segment's third record (same length).
awk 'NR==4 { sub(/result=0x00000000/, "result=0x00000001") } { print }' "$SEG" >"$SEG.new" && mv "$SEG.new" "$SEG"
echo "changed a record in $(basename "$SEG")"
"$B/agent/hsmauditd" -c "$T/agent2.yaml" >"$T/agent2.log" 2>&1 & AGENT=$!
sleep 6
kill -TERM $AGENT; wait $AGENT || true
echo "agent chain alerts after the restart: $(grep -c '"kind":"chain\.' "$T/state/alerts/alerts.jsonl" || true) (expected: 1)"
echo "archives: $(ls "$T/state/audit/archive" | wc -l); the changed segment left ready_for_archive: $([ -e "$SEG" ] && echo no || echo yes)"
"$B/agent/hsmaudit" verify --key "$T/module/audit.key" "$T/state/audit" | tail -3 || true

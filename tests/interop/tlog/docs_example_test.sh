#!/usr/bin/env bash
# Runs README.md's "Proving one event" commands (between the proving-one-event markers) in a
# temp dir with the built hsmaudit first on PATH; then checks that a changed proof is refused.
set -euo pipefail
root=$1
bindir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed -n '/<!-- proving-one-event:begin -->/,/<!-- proving-one-event:end -->/p' "$root/README.md" |
    sed '/^<!--/d;/^```/d' > "$scratch/commands.sh"
grep -q 'hsmaudit verify-proof' "$scratch/commands.sh" || { echo "no commands found in README.md"; exit 1; }
cd "$scratch"
PATH="$bindir:$PATH" bash -euo pipefail commands.sh
# The proofs are not rubber-stamped: one changed hash, and the proof is invalid (exit 1).
first=$(grep -m1 '^hash ' record42.proof | cut -c6)
new=A
[ "$first" = A ] && new=B
sed -i "0,/^hash /s/^hash ./hash $new/" record42.proof
set +e
PATH="$bindir:$PATH" hsmaudit verify-proof --pubkey keys/audit.pub record42.proof >/dev/null
code=$?
set -e
[ "$code" = 1 ] || { echo "verify-proof of a changed proof exited $code, not 1"; exit 1; }
echo "README's Proving one event: ok"

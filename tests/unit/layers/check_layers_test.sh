#!/usr/bin/env bash
# scripts/check_layers: the repository is clean, and the checker does catch an include that
# points up (engine -> composition root), sideways (one exporter kind -> another) or nowhere.
set -euo pipefail
root=$1
"$root/scripts/check_layers" "$root"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch"/{base,mac,agent/api,agent/engine,agent/daemon,exporters/relp,exporters/kafka}
echo '#include "base/result.h"' > "$scratch/mac/ok.cpp"
echo '#include "agent/engine/x.h"' > "$scratch/agent/daemon/ok.cpp"
"$root/scripts/check_layers" "$scratch" > /dev/null

expect_violation() {  # file include
    local file=$1 inc=$2
    printf '#include "%s"\n' "$inc" > "$scratch/$file"
    set +e
    out=$("$root/scripts/check_layers" "$scratch" 2>&1)
    rc=$?
    set -e
    rm "$scratch/$file"
    if [[ $rc -ne 1 || $out != *"$file:1"* ]]; then
        echo "FAIL: $file including $inc: exit $rc, output: $out"
        exit 1
    fi
}
expect_violation agent/engine/up.cpp agent/daemon/service.h
expect_violation exporters/relp/sideways.cpp exporters/kafka/kafka_exporter.h
expect_violation mac/up.h agent/api/source.h
expect_violation base/nowhere.cpp nowhere/thing.h
echo "check_layers_test: OK"

#!/usr/bin/env bash
# scripts/check_doc_paths: every path the repository's READMEs and docs/*.md name exists, and the
# checker does catch a missing one in each place it looks (a table's file column, a backticked
# path in a README, a Markdown link, a bare path in prose, the second half of `a.h/.cpp`).
set -euo pipefail
root=$1
"$root/scripts/check_doc_paths" "$root"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch"/{docs,mod/sub,tests/support}
touch "$scratch"/mod/{a.h,a.cpp,b.h} "$scratch"/mod/sub/c.h "$scratch"/docs/OTHER.md
good_readme() {
    cat > "$scratch/mod/README.md" <<'MD'
# mod/

| file | what |
|---|---|
| `a.h/.cpp` | a |
| `sub/` | its folder; `c.h` below it |
| `<state>/status.json` | a runtime path, not checked |

See `mod/b.h`, [the other doc](../docs/OTHER.md) and tests/support/.

```
mod/not_checked_in_a_fence.h
```
MD
}
good_readme
"$root/scripts/check_doc_paths" "$scratch" > /dev/null

expect_stale() {  # sed-expression word
    local edit=$1 word=$2
    good_readme
    sed -i "$edit" "$scratch/mod/README.md"
    set +e
    out=$("$root/scripts/check_doc_paths" "$scratch" 2>&1)
    rc=$?
    set -e
    if [[ $rc -ne 1 || $out != *"mod/README.md:"*": $word does not exist"* ]]; then
        echo "FAIL: after '$edit' expected $word reported stale: exit $rc, output: $out"
        exit 1
    fi
}
expect_stale 's/`a.h\/.cpp`/`a.h\/.cc`/' a.cc
expect_stale 's/`sub\/`/`gone\/`/' gone/
expect_stale 's/`c.h`/`d.h`/' d.h
expect_stale 's/`mod\/b.h`/`mod\/old\/b.h`/' mod/old/b.h
expect_stale 's/OTHER.md)/GONE.md)/' ../docs/GONE.md
expect_stale 's/tests\/support\//tests\/helpers\//' tests/helpers/
echo "check_doc_paths_test: OK"

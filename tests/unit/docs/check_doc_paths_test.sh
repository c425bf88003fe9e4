#!/usr/bin/env bash
# scripts/check_doc_paths: every path the repository's READMEs and docs/*.md name exists, and the
# checker does catch a missing one in each place it looks (a table's file column, a backticked
# path in a README, a Markdown link, a bare path in prose, the second half of `a.h/.cpp`, a bare
# file name in a docs/ table whose folder the table named before).
set -euo pipefail
root=$1
"$root/scripts/check_doc_paths" "$root"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch"/{docs,mod/sub,tests/support}
touch "$scratch"/mod/{a.h,a.cpp,b.h} "$scratch"/mod/sub/c.h
good_docs() {
    cat > "$scratch/docs/OTHER.md" <<'MD'
| format | owner |
|---|---|
| one | `mod/sub/c.h` (its folder is known from here on) |
| two | `c.h` alone |
MD
}
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
good_docs
"$root/scripts/check_doc_paths" "$scratch" > /dev/null

expect_stale() {  # sed-expression word [document]
    local edit=$1 word=$2 doc=${3:-mod/README.md}
    good_readme
    good_docs
    sed -i "$edit" "$scratch/$doc"
    set +e
    out=$("$root/scripts/check_doc_paths" "$scratch" 2>&1)
    rc=$?
    set -e
    if [[ $rc -ne 1 || $out != *"$doc:"*": $word does not exist"* ]]; then
        echo "FAIL: after '$edit' in $doc expected $word reported stale: exit $rc, output: $out"
        exit 1
    fi
}
expect_stale 's/`a.h\/.cpp`/`a.h\/.cc`/' a.cc
expect_stale 's/`sub\/`/`gone\/`/' gone/
expect_stale 's/`c.h`/`d.h`/' d.h
expect_stale 's/`mod\/b.h`/`mod\/old\/b.h`/' mod/old/b.h
expect_stale 's/OTHER.md)/GONE.md)/' ../docs/GONE.md
expect_stale 's/tests\/support\//tests\/helpers\//' tests/helpers/
expect_stale 's/`c.h` alone/`e.h` alone/' e.h docs/OTHER.md
expect_stale 's/`mod\/sub\/c.h`/`mod\/c.h`/' mod/c.h docs/OTHER.md
echo "check_doc_paths_test: OK"

#!/usr/bin/env bash
# The Debian package and the install tree (issue 16; cmake/HsmauditInstall.cmake). One step per ctest:
#   package_test.sh ROOT BUILD build      cpack builds the .deb into BUILD/tests/package/deb (its own
#                                         directory: the build tree's own .deb is not touched)
#   package_test.sh ROOT BUILD contents   dpkg-deb -c: every expected path with its mode, owned by root
#   package_test.sh ROOT BUILD control    dpkg-deb -I: conffiles, maintainer scripts, Depends, version
#   package_test.sh ROOT BUILD lintian    lintian: no errors (warnings printed)
#   package_test.sh ROOT BUILD install    cmake --install into a temp prefix: the same tree; the installed
#                                         default configuration passes hsmauditd --check-config
#   package_test.sh ROOT BUILD version    --version of the three programs: one version, the package's
#   package_test.sh ROOT BUILD man        the man pages render with groff -ww without a warning, and
#                                         name every option --help lists
#   package_test.sh ROOT BUILD completion the bash completions complete subcommands and options
#   package_test.sh ROOT BUILD scripts    the maintainer scripts, as dpkg runs them for a root that is not
#                                         the running system (DPKG_ROOT: no systemd as PID 1, as in a
#                                         chroot or an image build): install, upgrade, remove, purge
#   package_test.sh ROOT BUILD readme     README.md's install commands (between the install markers)
set -euo pipefail
root=$1
build=$2
step=$3
debdir="$build/tests/package/deb"
fail() { echo "FAIL: $*" >&2; exit 1; }
the_deb() {
    local debs=("$debdir"/hsmaudit_*.deb)
    [ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "expected one hsmaudit_*.deb in $debdir (run package_build): ${debs[*]}"
    echo "${debs[0]}"
}

# path mode: the package's files (directories are checked by the files under them).
expected_files() {
    cat <<'LIST'
./usr/bin/hsmauditd -rwxr-xr-x
./usr/bin/hsmaudit -rwxr-xr-x
./usr/bin/hsmcore -rwxr-xr-x
./etc/hsmaudit/hsmauditd.yaml -rw-r--r--
./usr/lib/systemd/system/hsmauditd.service -rw-r--r--
./usr/lib/systemd/system/hsmcore.service -rw-r--r--
./usr/lib/sysusers.d/hsmaudit.conf -rw-r--r--
./usr/lib/tmpfiles.d/hsmaudit.conf -rw-r--r--
./usr/share/man/man8/hsmauditd.8.gz -rw-r--r--
./usr/share/man/man1/hsmaudit.1.gz -rw-r--r--
./usr/share/man/man8/hsmcore.8.gz -rw-r--r--
./usr/share/snmp/mibs/HSMAUDIT-MIB.txt -rw-r--r--
./usr/share/bash-completion/completions/hsmauditd -rw-r--r--
./usr/share/bash-completion/completions/hsmaudit -rw-r--r--
./usr/share/bash-completion/completions/hsmcore -rw-r--r--
./usr/share/hsmaudit/grafana/hsmaudit.json -rw-r--r--
./usr/share/hsmaudit/prometheus/hsmaudit-rules.yml -rw-r--r--
./usr/share/doc/hsmaudit/copyright -rw-r--r--
./usr/share/doc/hsmaudit/changelog.Debian.gz -rw-r--r--
./usr/share/doc/hsmaudit/README.md -rw-r--r--
./usr/share/doc/hsmaudit/ARCHITECTURE.md -rw-r--r--
./usr/share/doc/hsmaudit/CONFIG.md -rw-r--r--
LIST
}

case "$step" in
build)
    rm -rf "$debdir" "$build/tests/package/staging"
    mkdir -p "$debdir"
    cpack --config "$build/CPackConfig.cmake" -B "$build/tests/package/staging" \
        -D CPACK_OUTPUT_FILE_PREFIX="$debdir" >"$debdir/cpack.log" 2>&1 || { cat "$debdir/cpack.log"; fail "cpack"; }
    deb=$(the_deb)
    echo "built $deb"
    ;;
contents)
    deb=$(the_deb)
    listing=$(dpkg-deb -c "$deb")
    while read -r path mode; do
        line=$(awk -v p="$path" '$6 == p' <<<"$listing")
        [ -n "$line" ] || fail "$path is not in the package"
        read -r got owner _ <<<"$line"
        [ "$got" = "$mode" ] || fail "$path has mode $got, expected $mode"
        [ "$owner" = root/root ] || fail "$path is owned by $owner, expected root/root"
    done < <(expected_files)
    # Nothing outside the FHS tree, no tests or benchmarks, no directory writable by others.
    bad=$(awk '$6 !~ /^\.\/(usr\/(bin|lib|share)|etc)(\/|$)/ && $6 != "./" && $6 != "./usr/" {print $6}' <<<"$listing")
    [ -z "$bad" ] || fail "unexpected paths: $bad"
    ! grep -Eq '_test|bench|fuzz' <<<"$(awk '{print $6}' <<<"$listing")" || fail "tests or benchmarks in the package"
    ! awk '{print $1}' <<<"$listing" | grep -q '^d.......w' || fail "a directory writable by others"
    echo "contents: $(wc -l <<<"$listing") entries, $(expected_files | wc -l) checked"
    ;;
control)
    deb=$(the_deb)
    info=$(dpkg-deb -I "$deb")
    conffiles=$(dpkg-deb -I "$deb" conffiles)
    [ "$conffiles" = /etc/hsmaudit/hsmauditd.yaml ] || fail "conffiles: '$conffiles'"
    for script in postinst prerm postrm; do
        grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$script " <<<"$info" || fail "$script missing or not executable"
        dpkg-deb -I "$deb" "$script" | sh -n || fail "$script: syntax error"
    done
    depends=$(dpkg-deb -f "$deb" Depends)
    for dep in 'libc6 (' 'libssl3' 'libsystemd0' 'systemd' 'procps'; do
        grep -qF "$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
    done
    [ "$(dpkg-deb -f "$deb" Section)" = admin ] || fail "Section is not admin"
    version=$(dpkg-deb -f "$deb" Version)
    dpkg --validate-version "$version" || fail "invalid Debian version $version"
    zcat <(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/share/doc/hsmaudit/changelog.Debian.gz) | head -1 |
        grep -qF "hsmaudit ($version)" || fail "changelog.Debian.gz is not for version $version"
    echo "control: conffiles, maintainer scripts, Depends: $depends, Version: $version"
    ;;
lintian)
    deb=$(the_deb)
    out=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
    [ -z "$out" ] || echo "$out"
    ! grep -q '^E: ' <<<"$out" || fail "lintian reports errors"
    echo "lintian: no errors ($(grep -c '^W: ' <<<"$out" || true) warnings)"
    ;;
install)
    prefix=$(mktemp -d)
    trap 'rm -rf "$prefix"' EXIT
    cmake --install "$build" --prefix "$prefix" >/dev/null
    while read -r path mode; do
        f="$prefix/${path#./}"
        [ -f "$f" ] || fail "cmake --install did not install ${path#./}"
    done < <(expected_files)
    "$prefix/usr/bin/hsmauditd" -c "$prefix/etc/hsmaudit/hsmauditd.yaml" --check-config ||
        fail "the installed default configuration fails --check-config"
    echo "install: the tree under $prefix, its default configuration checks"
    ;;
version)
    want=$(sed -n 's/^set(HSMAUDIT_BUILD_VERSION "\(.*\)")$/\1/p' "$build/base/version/version.cmake")
    [ -n "$want" ] || fail "no version in $build/base/version/version.cmake"
    for p in agent/hsmauditd agent/hsmaudit hsmcore/hsmcore; do
        got=$("$build/$p" --version)
        [ "$got" = "$(basename "$p") $want" ] || fail "$p --version: '$got', expected '$(basename "$p") $want'"
    done
    deb=$(the_deb)
    upstream=$(dpkg-deb -f "$deb" Version)
    # The Debian version is the build version with '-' turned into "+git" then '.' (cmake/version.cmake).
    case "$want" in
    *-*) expect_deb="${want%%-*}+git$(tr - . <<<"${want#*-}")-1" ;;
    *) expect_deb="$want-1" ;;
    esac
    [ "$upstream" = "$expect_deb" ] || fail "package version $upstream, expected $expect_deb from $want"
    echo "version: $want (package $upstream)"
    ;;
man)
    for page in hsmauditd.8 hsmaudit.1 hsmcore.8; do
        f="$build/man/$page.gz"
        [ -s "$f" ] || fail "$f was not generated"
        warnings=$(zcat "$f" | groff -man -Tutf8 -ww -z 2>&1)
        [ -z "$warnings" ] || fail "$page: groff warnings: $warnings"
        text=$(MANWIDTH=200 man -l "$f" 2>/dev/null)
        for section in NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS' FILES 'SEE ALSO'; do
            grep -q "^$section" <<<"$text" || fail "$page has no $section section"
        done
        prog=${page%.*}
        bin="$build/agent/$prog"
        [ "$prog" = hsmcore ] && bin="$build/hsmcore/hsmcore"
        # Every long option --help lists (and each subcommand's) is in the page: they come from one table.
        helps=$("$bin" --help)
        for sub in $(awk '/^Subcommands:/{s=1; next} s && /^  [a-z]/{print $1}' <<<"$helps"); do
            helps+=$'\n'$("$bin" "$sub" --help 2>/dev/null || true)
        done
        for opt in $(grep -oE -- '--[a-z][a-z-]*' <<<"$helps" | sort -u); do
            grep -qF -- "$opt" <<<"$text" || fail "$page lacks $opt, which --help lists"
        done
    done
    echo "man: three pages, no groff warning, every --help option present"
    ;;
completion)
    # complete WORDS...: what the completion function offers for the last word (COMP_CWORD).
    complete_words() {
        local prog=$1
        shift
        bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _$0 2>/dev/null; printf "%s\n" "${COMPREPLY[@]}"' \
            "$prog" "$build/completions/$prog" "$prog" "$@"
    }
    expect() { # want prog words...
        local want=$1
        shift
        grep -qxF -- "$want" <<<"$(complete_words "$@")" || fail "completing '$*' does not offer $want: $(complete_words "$@" | tr '\n' ' ')"
    }
    for prog in hsmauditd hsmaudit hsmcore; do
        bash -n "$build/completions/$prog" || fail "completions/$prog: syntax error"
    done
    expect --check-config hsmauditd --che
    expect --version hsmauditd --ver
    expect verify hsmaudit ver
    expect verify-proof hsmaudit ver
    expect --require-sealed hsmaudit verify --req
    expect init hsmaudit secret ''
    expect --kdf-cost hsmaudit secret export --kdf
    expect serve hsmcore se
    expect --seal-at-end hsmcore drain --seal-at
    [ -z "$(complete_words hsmaudit verify --dir)" ] || fail "verify offers --dir, which only other commands take"
    echo "completion: subcommands and options of the three programs"
    ;;
scripts)
    [ "$(id -u)" = 0 ] || { echo "SKIP: the maintainer scripts' chown needs root"; exit 77; }
    deb=$(the_deb)
    r=$(mktemp -d)
    trap 'rm -rf "$r"' EXIT
    dpkg-deb -x "$deb" "$r"
    dpkg-deb -e "$deb" "$r/DEBIAN"
    run() { # script args...: as dpkg runs it for DPKG_ROOT
        local script=$1
        shift
        DPKG_ROOT=$r DPKG_MAINTSCRIPT_PACKAGE=hsmaudit DPKG_MAINTSCRIPT_NAME=$script sh -e "$r/DEBIAN/$script" "$@" ||
            fail "$script $* exited $?"
    }
    uid_of() { awk -F: -v u="$1" '$1 == u {print $3}' "$r/etc/passwd"; }
    owner() { stat -c '%u %a' "$1"; }
    run postinst configure
    grep -q '^hsmaudit:' "$r/etc/passwd" || fail "postinst: no user hsmaudit"
    grep -q '^hsmcore:' "$r/etc/passwd" || fail "postinst: no user hsmcore"
    grep -Eq '^hsmcore:x:[0-9]+:(.*,)?hsmaudit(,|$)' "$r/etc/group" || fail "postinst: hsmaudit is not in group hsmcore"
    [ "$(owner "$r/var/lib/hsmaudit")" = "$(uid_of hsmaudit) 700" ] || fail "/var/lib/hsmaudit: $(owner "$r/var/lib/hsmaudit")"
    [ "$(owner "$r/var/log/hsmaudit")" = "$(uid_of hsmaudit) 700" ] || fail "/var/log/hsmaudit: $(owner "$r/var/log/hsmaudit")"
    [ "$(owner "$r/run/hsmaudit")" = "$(uid_of hsmaudit) 700" ] || fail "/run/hsmaudit: $(owner "$r/run/hsmaudit")"
    [ "$(owner "$r/var/lib/hsmcore")" = "$(uid_of hsmcore) 750" ] || fail "/var/lib/hsmcore: $(owner "$r/var/lib/hsmcore")"
    for unit in hsmauditd.service hsmcore.service; do
        [ -L "$r/etc/systemd/system/multi-user.target.wants/$unit" ] || fail "postinst did not enable $unit"
    done
    run postinst configure 0.0.1-1 # an upgrade: users and directories kept, units still enabled
    touch "$r/var/lib/hsmaudit/stored-segment"
    run prerm remove
    run postrm remove
    run postrm purge
    [ ! -e "$r/etc/systemd/system/multi-user.target.wants/hsmauditd.service" ] || fail "purge left the enable link"
    [ ! -e "$r/var/log/hsmaudit" ] || fail "purge left /var/log/hsmaudit"
    [ -f "$r/var/lib/hsmaudit/stored-segment" ] || fail "purge deleted the stored trail"
    [ ! -e "$r/var/lib/hsmcore" ] || fail "purge left the empty /var/lib/hsmcore"
    echo "scripts: install, upgrade, remove, purge in a DPKG_ROOT without systemd"
    ;;
readme)
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    sed -n '/<!-- install:begin -->/,/<!-- install:end -->/p' "$root/README.md" | sed '/^<!--/d;/^```/d' >"$scratch/commands.sh"
    grep -q 'cpack' "$scratch/commands.sh" || fail "README.md has no install commands between the install markers"
    grep -q 'apt-get install' "$scratch/commands.sh" || fail "README.md's install commands do not apt-get install"
    # Run as written from a copy of the source tree's path, with the build's output in a scratch dir;
    # apt-get only simulates (-s): it resolves the package's Depends against this machine's archive
    # without installing (tests/systemd installs it for real in a container).
    sed -e "s#apt-get install#apt-get install -s#" \
        -e "s#build/ci/CPackConfig.cmake#$build/CPackConfig.cmake -B $scratch/staging -D CPACK_OUTPUT_FILE_PREFIX=$scratch#" \
        -e "s#\./build/ci/hsmaudit_#$scratch/hsmaudit_#" "$scratch/commands.sh" >"$scratch/run.sh"
    (cd "$root" && bash -euo pipefail "$scratch/run.sh") >"$scratch/out.log" 2>&1 || { cat "$scratch/out.log"; fail "README install commands"; }
    grep -q '^Inst hsmaudit ' "$scratch/out.log" || { cat "$scratch/out.log"; fail "apt-get would not install hsmaudit"; }
    echo "readme: the install commands build the package and apt-get accepts it"
    ;;
*)
    fail "unknown step $step"
    ;;
esac

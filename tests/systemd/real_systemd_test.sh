#!/bin/bash
# The real-systemd test (issue 16, item 7; docs/ARCHITECTURE.md, "The real-systemd test"): boots a
# minimal Debian 12 root under `systemd-nspawn --boot`, installs hsmaudit there (the .deb from the
# build directory, or a hand-assembled install of the built programs when no package was built), and
# runs tests/systemd/checks_inside.sh as a unit of the container's own systemd: hsmcore.service,
# `systemctl start hsmauditd` (Type=notify), the watchdog, `systemctl reload` with a changed
# destination, journal priorities, a configuration error refused by ExecStartPre, the low-port
# drop-in, and a clean stop.
#
# Usage: real_systemd_test.sh SOURCE_DIR BUILD_DIR
# Exit: 0 every check passed; 1 a check failed (the container's log is printed); 77 skipped, with
# the reason (not root, a tool missing, no route to the package mirror, a container that cannot boot).
#
# The root is made by mmdebstrap from the mirror this machine's apt uses (/etc/apt/sources.list*),
# cached in ${XDG_CACHE_HOME:-$HOME/.cache}/hsmaudit/nspawn/<key>/root, the key a hash of the mirror
# lines, the mmdebstrap options and the package list (roots unused for 14 days are removed); each run
# works on its own copy. HSMAUDIT_NSPAWN_KEEP=1 keeps the copy.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
start_ns=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - start_ns) / 1000000 )) ms"; }
skip() { echo "SKIP: $*"; exit 77; }

[[ $(id -u) == 0 ]] || skip "needs root for mmdebstrap and systemd-nspawn (running as uid $(id -u))"
for tool in mmdebstrap systemd-nspawn; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup installs mmdebstrap and systemd-container)"
done

# --- what to install: the package if one was built, else the programs from the build.
# The package: the one package_build (tests/package, fixture hsmaudit_deb) has just made, else one in BUILD.
deb=$(ls -t "$build"/tests/package/deb/hsmaudit_*.deb "$build"/hsmaudit_*.deb 2>/dev/null | head -1 || true)
bins=("$build/agent/hsmauditd" "$build/agent/hsmaudit" "$build/hsmcore/hsmcore")
packages=(systemd systemd-sysv dbus jq socat)
if [[ -n $deb ]]; then
    echo "installing the package $deb"
    # Its dependencies go into the cached root, so `dpkg -i` needs no network.
    depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/[[:space:]]//g' | grep -v '^$')
    packages+=($depends)
else
    echo "no hsmaudit_*.deb in $build/tests/package/deb or $build: installing the built programs by hand (the package's layout)"
    for b in "${bins[@]}"; do [[ -x $b ]] || { echo "FAIL: $b is not built"; exit 1; }; done
    # The runtime libraries' packages, from this machine's dpkg database.
    # One dpkg -S for all (each call reads the whole database): every library under each name it
    # may be registered with (/lib and /usr/lib are one directory since usrmerge).
    libs=$(ldd "${bins[@]}" | awk '/=> \//{print $3}' | sort -u)
    names=()
    for lib in $libs; do
        real=$(readlink -f "$lib")
        names+=("$lib" "$real" "${real#/usr}" "/usr${lib#/usr}")
    done
    owners=$(dpkg -S "${names[@]}" 2>/dev/null | sed 's/: .*//; s/:[a-z0-9]*$//' | tr ', ' '\n\n' | grep -v '^$' | sort -u || true)
    packages+=($owners)
    # /bin/kill for ExecReload= (procps is not in minbase): the package must depend on it.
    packages+=(procps)
fi
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)

# --- the mirror lines, as this machine's apt has them (deb822 .sources and one-line .list files).
mirrors=$(python3 - <<'PY'
import glob, re
lines = []
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path).read()):
        f = {}
        for line in stanza.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m: f[m.group(1).lower()] = m.group(2).split()
        if "deb" not in f.get("types", []) or f.get("enabled", ["yes"])[0] == "no": continue
        for uri in f.get("uris", []):
            for suite in f.get("suites", []):
                if suite.startswith("bookworm"):
                    lines.append(f"deb {uri} {suite} {' '.join(f.get('components', ['main']))}")
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try: text = open(path).read()
    except OSError: continue
    for line in text.splitlines():
        w = line.split("#")[0].split()
        if len(w) >= 3 and w[0] == "deb" and not w[1].startswith("[") and w[2].startswith("bookworm"):
            lines.append(" ".join(w))
print("\n".join(lines))
PY
)
[[ -n $mirrors ]] || skip "no Debian 12 (bookworm) mirror in /etc/apt/sources.list*"
echo "mirror lines:"; echo "$mirrors" | sed 's/^/  /'
echo "packages: ${packages[*]}"

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/hsmaudit/nspawn
# The options that shape the root; they are part of the key, with the mirror lines and the packages.
mmdebstrap_opts=(--variant=minbase --dpkgopt=force-unsafe-io --aptopt='Acquire::Languages "none"')
key=$(printf '%s\n' "${mmdebstrap_opts[@]}" bookworm "$mirrors" "${packages[@]}" | sha256sum | cut -c1-16)
cached=$cache_root/$key
mkdir -p "$cache_root"
exec 9>"$cache_root/lock"
flock 9  # one builder per cache; concurrent runs wait here and then share it
if [[ ! -f $cached/complete ]]; then
    first=$(awk '{print $2; exit}' <<<"$mirrors")
    if ! curl -fsS -m 15 -o /dev/null "${first%/}/dists/bookworm/Release" 2>/tmp/hsmaudit-mirror.$$; then
        why=$(cat /tmp/hsmaudit-mirror.$$); rm -f /tmp/hsmaudit-mirror.$$
        skip "no cached root and the package mirror ${first} is not reachable: $why"
    fi
    echo "building the cached root $cached (mmdebstrap, $(elapsed) so far)"
    rm -rf "$cached"
    mkdir -p "$cached"
    mapfile -t mirror_args <<<"$mirrors"
    if ! mmdebstrap --quiet "${mmdebstrap_opts[@]}" --include="$(IFS=,; echo "${packages[*]}")" bookworm \
        "$cached/root" "${mirror_args[@]}" >"$cached/mmdebstrap.log" 2>&1; then
        tail -20 "$cached/mmdebstrap.log"
        echo "FAIL: mmdebstrap could not build the root (log above)"
        rm -rf "$cached"
        exit 1
    fi
    touch "$cached/complete"
    echo "cached root built in $(elapsed)"
else
    echo "using the cached root $cached"
    touch "$cached/complete"  # last use: roots unused for 14 days are removed below
fi
# Roots of other package lists (an older package, other options) that no run has used for 14 days.
find "$cache_root" -mindepth 2 -maxdepth 2 -name complete -mtime +14 -printf '%h\n' | while read -r old; do
    [[ $old == "$cached" ]] || { echo "removing the unused cached root $old"; rm -rf "$old"; }
done
flock -u 9

# --- this run's copy of the root.
# On a tmpfs (~300 MB of memory while it runs): copying the root there and dropping it at the end take
# a second, where the disk took ~6 s and ~25 s on the loaded test machine.
work=$(mktemp -d /var/tmp/hsmaudit-nspawn.XXXXXX)
cleanup() {
    if [[ ${HSMAUDIT_NSPAWN_KEEP:-0} == 1 ]]; then
        echo "kept $work (a tmpfs: umount it, then rmdir)"
    else
        umount "$work" 2>/dev/null || true
        rm -rf "$work"
    fi
}
trap cleanup EXIT
mount -t tmpfs -o size=2g,mode=0700 hsmaudit-nspawn "$work" || echo "no tmpfs for $work: the copy stays on disk"
root=$work/root
cp -a "$cached/root" "$root"
mkdir -p "$work/results"
echo "root copied ($(elapsed))"
nspawn=(systemd-nspawn --quiet --register=no --keep-unit -D "$root")

if [[ -n $deb ]]; then
    cp "$deb" "$root/var/tmp/hsmaudit.deb"  # not /tmp: systemd-nspawn mounts a tmpfs there
    "${nspawn[@]}" dpkg -i /var/tmp/hsmaudit.deb
else
    install -m 0755 "${bins[@]}" "$root/usr/bin/"
    install -D -m 0644 "$src/config/hsmauditd.service" "$src/config/hsmcore.service" -t "$root/usr/lib/systemd/system/"
    install -D -m 0644 "$src/config/hsmauditd-appliance.yaml" "$root/etc/hsmaudit/hsmauditd.yaml"
    # The package's users and directories (docs/ARCHITECTURE.md, "Running as a service").
    install -D -m 0644 /dev/stdin "$root/usr/lib/sysusers.d/hsmaudit.conf" <<'CONF'
u hsmaudit - "HSM audit agent" /var/lib/hsmaudit
u hsmcore - "HSM module emulator" /var/lib/hsmcore
CONF
fi
# What the checks need from /usr/share/doc/hsmaudit (the docs' commands, the drop-in): the package
# ships it; a hand-assembled install gets the source tree's copies in the same places.
if [[ -z $deb ]]; then
    install -D -m 0644 "$src/docs/ARCHITECTURE.md" -t "$root/usr/share/doc/hsmaudit/"
    install -D -m 0644 "$src/config/examples/hsmauditd-low-port.conf" -t "$root/usr/share/doc/hsmaudit/examples/"
fi
# The checks, run by the container's systemd once it has booted (Type=exec, so the boot finishes first).
install -m 0755 "$src/tests/systemd/checks_inside.sh" "$root/usr/local/sbin/hsmaudit-checks"
cat >"$root/etc/systemd/system/hsmaudit-checks.service" <<'UNIT'
[Unit]
Description=hsmaudit real-systemd checks
[Service]
Type=exec
ExecStart=/usr/local/sbin/hsmaudit-checks
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf ../hsmaudit-checks.service "$root/etc/systemd/system/multi-user.target.wants/"
missing=$("${nspawn[@]}" sh -c 'ldd /usr/bin/hsmauditd /usr/bin/hsmaudit /usr/bin/hsmcore | grep "not found"' || true)
[[ -z $missing ]] || { echo "FAIL: libraries missing in the root: $missing"; exit 1; }
echo "installed ($(elapsed)); booting"

# --- boot. The checks power the container off; the outer timeout ends a container that hangs.
set +e
timeout --kill-after=10 150 "${nspawn[@]}" --boot --private-network -M hsmaudit-test \
    --bind="$work/results:/results" >"$work/console.log" 2>&1 </dev/null
rc=$?
set -e
echo "container exited with $rc ($(elapsed))"
if [[ ! -s $work/results/summary ]]; then
    tail -40 "$work/console.log"
    if grep -qE "Failed to|cannot|not supported" "$work/console.log" && ! grep -q "Reached target" "$work/console.log"; then
        skip "systemd-nspawn could not boot the container here (exit $rc): $(grep -m1 -E 'Failed to|cannot|not supported' "$work/console.log")"
    fi
    echo "FAIL: the checks wrote nothing (container exit $rc; console above)"
    exit 1
fi
cat "$work/results/summary"
if ! grep -q '^DONE$' "$work/results/summary"; then
    echo "---- checks log"; cat "$work/results/log"
    echo "FAIL: the checks did not finish (container exit $rc)"
    exit 1
fi
if grep -q '^FAIL' "$work/results/summary"; then
    echo "---- checks log"; cat "$work/results/log"
    echo "FAIL: $(grep -c '^FAIL' "$work/results/summary") check(s) failed ($(elapsed))"
    exit 1
fi
echo "PASS: $(grep -c '^PASS' "$work/results/summary") checks under a real systemd ($(elapsed))"

#!/bin/bash
# Runs inside the booted container (tests/systemd/real_systemd_test.sh installs it as the oneshot-free
# unit hsmaudit-checks.service): drives hsmcore.service and hsmauditd.service through a real systemd
# and writes one line per check to /results/summary ("PASS name", "FAIL name: why", "NOTE name: ...").
# The details of every step go to /results/log. Ends with "DONE" and `systemctl poweroff`.
set -u
exec >>/results/log 2>&1
summary=/results/summary
conf=/etc/hsmaudit/hsmauditd.yaml
pass() { echo "PASS $1" >>"$summary"; echo "== PASS $1"; }
fail() { echo "FAIL $1: $2" >>"$summary"; echo "== FAIL $1: $2"; }
note() { echo "NOTE $1: $2" >>"$summary"; echo "== NOTE $1: $2"; }
# eventually SECONDS 'SHELL TEXT': evaluates the text every 0.1 s until it succeeds or the time is up
# (a text, so that command substitutions in it run each time).
eventually() {
    local deadline=$((SECONDS + $1))
    until eval "$2"; do ((SECONDS < deadline)) || return 1; sleep 0.1; done
}
show() { systemctl show -p "$2" --value "$1"; }
cursor() { journalctl -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p'; }
since() { journalctl -q --no-pager -o cat --after-cursor="$1" "${@:2}"; }
# errors_since CURSOR UNIT: the messages at err or worse (PRIORITY <= 3) after CURSOR. Not
# `journalctl --after-cursor -p err`: journalctl 252 combines the two wrongly (it showed nothing
# while `journalctl -u hsmauditd -p err` without the cursor showed the PRIORITY=3 line).
errors_since() {
    journalctl -q --no-pager -o json --after-cursor="$1" -u "$2" |
        jq -r 'select((.PRIORITY // "6" | tonumber) <= 3) | .MESSAGE'
}
# doc_block HEADING: the first ``` block after the "### HEADING" line of the installed ARCHITECTURE.md
# (the commands the docs give are the ones run here).
doc_block() {
    awk -v h="### $1" 'index($0, h) == 1 {f = 1; next} f && /^```/ {if (b) exit; b = 1; next} b' \
        /usr/share/doc/hsmaudit/ARCHITECTURE.md
}
finish() {
    echo DONE >>"$summary"
    systemctl poweroff --no-block
    exit 0
}
trap finish EXIT

echo "== boot: $(systemctl is-system-running --wait)"
systemctl --failed --no-legend
# A package may have started the agent at install or boot (no module yet): start from a known state.
systemctl stop hsmauditd.service hsmcore.service 2>/dev/null
systemctl reset-failed hsmauditd.service hsmcore.service 2>/dev/null
cp "$conf" /root/hsmauditd.yaml.orig

# --- the module emulator: initialised once and started, as docs/ARCHITECTURE.md says.
init=$(doc_block "The module emulator's unit")
echo "$init"
if bash -ex -c "$init" && [[ $(show hsmcore ActiveState) == active ]] &&
    [[ $(show hsmcore StatusText) == "serving module "* ]]; then
    pass "hsmcore.service active after READY=1 ($(show hsmcore StatusText))"
else
    fail hsmcore.service "$(systemctl status hsmcore --no-pager 2>&1 | tail -5)"
fi
mode=$(stat -c '%a %U:%G' /var/lib/hsmcore)
[[ $mode == "750 hsmcore:hsmcore" ]] && pass "/var/lib/hsmcore is $mode" || fail /var/lib/hsmcore "is $mode, not 750 hsmcore:hsmcore"

# --- a destination with a real receiver (socat), for the reload below.
receiver() {  # receiver NAME PORT: a TCP peer on loopback writing what it receives to /root/NAME.out
    systemd-run -q --unit="peer-$1" socat -u "TCP-LISTEN:$2,fork,reuseaddr,bind=127.0.0.1" "OPEN:/root/$1.out,creat,append"
}
receiver a 6601
receiver b 6602
cat >>"$conf" <<'YAML'
exporters:
  siem:
    type: syslog
    syslog.protocol: tcp
    syslog.target: 127.0.0.1:6601
YAML

# --- start: Type=notify readiness.
c0=$(cursor)
if systemctl start hsmauditd.service; then
    state="$(show hsmauditd ActiveState)/$(show hsmauditd SubState)"
    text=$(show hsmauditd StatusText)
    if [[ $state == active/running && -n $text ]]; then
        pass "hsmauditd.service active after READY=1 (StatusText: $text)"
    else
        fail start "state $state, StatusText '$text'"
    fi
else
    fail start "systemctl start failed: $(systemctl status hsmauditd --no-pager 2>&1 | tail -8)"
fi
pid=$(show hsmauditd MainPID)
for d in "/var/lib/hsmaudit 700 hsmaudit:hsmaudit" "/run/hsmaudit 700 hsmaudit:hsmaudit" \
    "/var/log/hsmaudit 700 hsmaudit:hsmaudit"; do
    set -- $d
    got=$(stat -c '%a %U:%G' "$1" 2>&1)
    [[ $got == "$2 $3" ]] && pass "$1 is $got" || fail "$1" "is '$got', not $2 $3"
done
# Nothing at err or worse in a healthy start (a journal that marks everything err would pass -p err below).
errs=$(errors_since "$c0" hsmauditd)
[[ -z $errs ]] && pass "healthy start logs nothing at err" || fail "healthy start" "logs at err: $errs"
since "$c0" -u hsmauditd -p info | head -20

# --- the watchdog: WatchdogUSec from WatchdogSec=, and WATCHDOG=1 keeps arriving.
wd=$(show hsmauditd WatchdogUSec)
t1=$(show hsmauditd WatchdogTimestampMonotonic)
if [[ $wd == 30s ]] && eventually 10 '(( $(show hsmauditd WatchdogTimestampMonotonic) > ${t1:-0} ))'; then
    pass "watchdog: WatchdogUSec=$wd and WatchdogTimestamp advances (WATCHDOG=1)"
else
    fail watchdog "WatchdogUSec=$wd, WatchdogTimestampMonotonic stayed $t1"
fi

# --- records drained into /var/lib/hsmaudit and delivered to the destination.
# "achieved R ops/s: N ops done in ...": each operation reported done has its record (and more: logins).
done_ops=$(runuser -u hsmcore -- hsmcore load --dir /var/lib/hsmcore --rate 500 --duration 1 --seed 7 |
    tee /dev/stderr | sed -n 's/.*: \([0-9]*\) ops done.*/\1/p')
records() { hsmaudit status -c "$conf" --json 2>/dev/null | jq -r '.drain.records // 0'; }
if (( ${done_ops:-0} > 0 )) && eventually 20 '(( $(records) >= done_ops ))'; then
    pass "records drained into /var/lib/hsmaudit (drain.records $(records), store $(du -sh /var/lib/hsmaudit/audit | cut -f1))"
else
    fail drain "drain.records is $(records) after $done_ops operations: $(hsmaudit status -c "$conf" 2>&1 | head -20)"
fi
# Issue 16 item 6: the first start against a freshly initialised module raises no module.boot_changed.
boot_alerts=$(hsmaudit status -c "$conf" --json | jq -r '.alerts.counts["module.boot_changed"] // 0')
[[ $boot_alerts == 0 ]] && pass "no module.boot_changed on the first start against a fresh module" ||
    fail "boot counter" "$boot_alerts module.boot_changed alert(s) on the first start: $(since "$c0" -u hsmauditd | grep -m1 boot_changed)"
# The journal's native transport with the agent's structured fields (base/journal_sink.h).
started=$(journalctl -q --no-pager -o json -u hsmauditd HSMAUDIT_ALERT=agent.started | tail -1)
if jq -e '._TRANSPORT == "journal" and .SYSLOG_IDENTIFIER == "hsmauditd" and .PRIORITY == "6"' <<<"$started" >/dev/null; then
    pass "journal: native entries with HSMAUDIT_ALERT=agent.started at PRIORITY=6"
else
    fail "journal fields" "no native HSMAUDIT_ALERT=agent.started entry at info: '$started'"
fi
[[ -z $(journalctl -q --no-pager -u hsmauditd HSMAUDIT_ALERT=module.boot_changed) ]] &&
    pass "journal: no HSMAUDIT_ALERT=module.boot_changed" || fail "boot counter" "the journal has module.boot_changed"
hsmaudit status -c "$conf"
rc=$?
[[ $rc == 0 ]] && pass "hsmaudit status exits 0 while the agent runs" || fail "hsmaudit status" "exit $rc while running"
if eventually 20 'test -s /root/a.out'; then
    pass "destination siem (127.0.0.1:6601) receives ($(wc -c </root/a.out) bytes)"
else
    fail "destination siem" "nothing arrived at 127.0.0.1:6601: $(hsmaudit status -c "$conf" 2>&1 | grep -A3 siem)"
fi

# --- systemctl reload with a changed destination (ExecReload=kill -HUP; RELOADING=1 ... READY=1).
sed -i 's/127.0.0.1:6601/127.0.0.1:6602/' "$conf"
c1=$(cursor)
if systemctl reload hsmauditd.service; then
    said=$(since "$c1" -u hsmauditd)
    echo "journal after the reload: $said"
    if [[ $(show hsmauditd ActiveState) != active || $(show hsmauditd MainPID) != "$pid" ]]; then
        fail reload "the agent did not stay up: $(show hsmauditd ActiveState), pid $(show hsmauditd MainPID) (was $pid)"
    elif grep -q "refused" <<<"$said" || ! grep -qi "reload" <<<"$said"; then
        fail reload "the journal does not show an accepted reload: $said"
    elif ! grep -q "changed siem" <<<"$said"; then
        fail "reload destination" "the journal does not say the destination siem changed: $said"
    else
        # The agent applied it: the changed destination must deliver what comes next to the new peer.
        runuser -u hsmcore -- hsmcore load --dir /var/lib/hsmcore --rate 200 --duration 1 --seed 8
        if eventually 20 'test -s /root/b.out'; then
            pass "systemctl reload applied the changed destination: 127.0.0.1:6602 receives ($said)"
        else
            fail "reload destination" "the journal says '$said' but nothing arrived at 127.0.0.1:6602"
        fi
    fi
else
    fail reload "systemctl reload failed: $(systemctl status hsmauditd --no-pager 2>&1 | tail -5)"
fi

# --- journal priorities: a broken file on reload is refused at err, with file:line; the agent keeps running.
sed -i 's/mode: connect/mode: conect/' "$conf"
c2=$(cursor)
systemctl reload hsmauditd.service
if eventually 10 'errors_since "$c2" hsmauditd | grep -q "hsmauditd.yaml:[0-9]"'; then
    pass "a broken reload is logged at err with file:line: $(errors_since "$c2" hsmauditd | head -1)"
else
    fail "journal priorities" "journalctl -p err -u hsmauditd shows no refusal; at any priority: $(since "$c2" -u hsmauditd -o verbose | grep -E 'PRIORITY=|MESSAGE=' | head -6 | tr '\n' ' ')"
fi
[[ $(show hsmauditd ActiveState) == active && $(show hsmauditd MainPID) == "$pid" ]] &&
    pass "the agent keeps running after a refused reload" || fail "refused reload" "the agent did not stay up"
sed -i 's/mode: conect/mode: connect/' "$conf"
systemctl reload hsmauditd.service

# --- a clean stop: SIGTERM, exit 0, inactive.
if systemctl stop hsmauditd.service &&
    [[ "$(show hsmauditd ActiveState) $(show hsmauditd Result) $(show hsmauditd ExecMainStatus)" == "inactive success 0" ]]; then
    pass "systemctl stop: inactive, exit 0"
else
    fail stop "$(systemctl show -p ActiveState,Result,ExecMainCode,ExecMainStatus hsmauditd | tr '\n' ' ')"
fi
hsmaudit status -c "$conf" >/dev/null 2>&1
rc=$?
[[ $rc == 3 ]] && pass "hsmaudit status exits 3 (not running) once the agent stopped" ||
    fail "hsmaudit status" "exit $rc while the agent is stopped (3 expected)"

# --- a failure that may pass on retry (exit 1: cannot bind, the port is taken) is restarted until it passes.
cp /root/hsmauditd.yaml.orig "$conf"
printf 'syslog:\n  listen: udp:127.0.0.1:5514\n' >>"$conf"
systemd-run -q --unit=peer-busy socat -u UDP-RECV:5514,bind=127.0.0.1 /dev/null
eventually 5 'grep -qi ":158A " /proc/net/udp'
c5=$(cursor)
systemctl start hsmauditd.service && fail "port in use" "hsmauditd started on a port another process holds"
echo "port in use: $(systemctl show -p ActiveState,SubState,Result,ExecMainStatus hsmauditd | tr '\n' ' ')"
if [[ $(show hsmauditd ExecMainStatus) == 1 && $(show hsmauditd SubState) == auto-restart ]]; then
    systemctl stop peer-busy.service
    if eventually 15 '[[ $(show hsmauditd ActiveState) == active ]]'; then
        pass "exit 1 (cannot bind: port in use) is restarted: active once the port is free (NRestarts $(show hsmauditd NRestarts))"
    else
        fail "port in use" "not active 15 s after the port was freed: $(systemctl show -p ActiveState,SubState,NRestarts hsmauditd | tr '\n' ' ')"
    fi
else
    fail "port in use" "exit 1 and a restart expected, got $(systemctl show -p SubState,ExecMainStatus hsmauditd | tr '\n' ' '): $(since "$c5" -u hsmauditd | grep -m1 -i 'bind\|5514')"
fi
systemctl stop hsmauditd.service peer-busy.service 2>/dev/null
systemctl reset-failed hsmauditd.service

# --- a low port: refused without the capability, bound with the documented drop-in.
cp /root/hsmauditd.yaml.orig "$conf"
printf 'syslog:\n  listen: udp:127.0.0.1:514\n' >>"$conf"
c3=$(cursor)
if systemctl start hsmauditd.service; then
    fail "low port" "the agent started on udp:127.0.0.1:514 without CAP_NET_BIND_SERVICE"
else
    said=$(since "$c3" -u hsmauditd | grep -m1 -E '514')
    [[ -n $said ]] && pass "udp:127.0.0.1:514 without the drop-in: start fails ($said)" ||
        fail "low port" "start failed without naming port 514: $(since "$c3" -u hsmauditd | tail -5)"
fi
systemctl stop hsmauditd.service  # exit 1 (cannot bind) is retried: end the restarts
systemctl reset-failed hsmauditd.service
lowport=$(doc_block "Binding a low port")
echo "$lowport"
if bash -ex -c "$lowport" && [[ $(show hsmauditd ActiveState) == active ]] && grep -qi ':0202 ' /proc/net/udp; then
    pass "with the low-port drop-in the agent binds udp:127.0.0.1:514"
else
    fail "low-port drop-in" "$(systemctl status hsmauditd --no-pager 2>&1 | tail -6)"
fi
systemctl stop hsmauditd
rm -r /etc/systemd/system/hsmauditd.service.d
systemctl daemon-reload

# --- a configuration error is refused by ExecStartPre (file:line in the journal), and not restarted.
cp /root/hsmauditd.yaml.orig "$conf"
sed -i 's/mode: connect/mode: conect/' "$conf"
c4=$(cursor)
systemctl start hsmauditd.service && fail "config error" "systemctl start succeeded with a broken file"
pre=$(systemctl show -p ExecStartPre --value hsmauditd)
state="$(show hsmauditd ActiveState)/$(show hsmauditd SubState)/$(show hsmauditd Result)"
said=$(errors_since "$c4" hsmauditd | grep -m1 'hsmauditd.yaml:[0-9]')
echo "ExecStartPre: $pre"
if [[ $pre =~ status=2[^0-9] && -n $said ]]; then
    pass "a broken file is refused by ExecStartPre with exit 2: $said"
else
    fail "config error" "ExecStartPre '$pre', journal: $(since "$c4" -u hsmauditd | tail -5)"
fi
if [[ $state == failed/failed/exit-code && $(show hsmauditd NRestarts) == 0 ]]; then
    pass "no restart after a configuration error (RestartPreventExitStatus=2): $state"
else
    fail "restart loop" "state $state, NRestarts $(show hsmauditd NRestarts)"
fi
cp /root/hsmauditd.yaml.orig "$conf"

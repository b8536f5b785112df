#!/usr/bin/env bash
# systemd notifications (tagproc.service is Type=notify with WatchdogSec):
# a stand-in for systemd listens on $NOTIFY_SOCKET and records what tagproc
# sends: READY=1 once running, WATCHDOG=1 keep-alives while WATCHDOG_USEC is
# set, RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

cat >"$T/listener.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        for line in s.recv(4096).decode().splitlines():
            out.write(line + "\n")
PY
start_bg python3 "$T/listener.py" "$T/notify.sock" "$T/notes"
wait_until "[ -S '$T/notify.sock' ]" 60
cat >"$T/endless.yaml" <<'YAML'
input:
  simulator: {nodes: 2, rate: 50}
output:
  file: {path: out.jsonl}
YAML
start_bg in_dir "$T" env NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=400000 "$BIN" -c endless.yaml \
    2>"$T/err"
PID=$BG_PID
wait_line "$T/notes" '^READY=1$' 120
check_sh "READY=1 once the pipeline runs" "grep -qx READY=1 '$T/notes'"
wait_until "[ \$(grep -cx WATCHDOG=1 '$T/notes') -ge 3 ]" 120
check_sh "WATCHDOG=1 keep-alives (WATCHDOG_USEC set)" "[ \$(grep -cx WATCHDOG=1 '$T/notes') -ge 3 ]"
kill -HUP $PID
wait_until "[ \$(grep -cx READY=1 '$T/notes') -ge 2 ]" 120
check_sh "SIGHUP: RELOADING=1, then READY=1 again" \
    "grep -x 'RELOADING=1\|READY=1' '$T/notes' | tr '\n' ' ' | grep -q 'READY=1 RELOADING=1 READY=1'"
stop_bg $PID
rc=$?
check_sh "SIGTERM: exit 0" "[ $rc = 0 ]"
wait_line "$T/notes" '^STOPPING=1$' 60 # the listener writes what it received a moment later
check_sh "SIGTERM: STOPPING=1" "grep -qx STOPPING=1 '$T/notes'"
check_sh "STATUS= lines for systemctl status" "grep -q '^STATUS=running' '$T/notes'"
finish

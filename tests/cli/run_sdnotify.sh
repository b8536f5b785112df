#!/usr/bin/env bash
# systemd notifications (tagproc.service is Type=notify with WatchdogSec):
# a stand-in for systemd listens on $NOTIFY_SOCKET and records what tagproc
# sends: READY=1 once running, WATCHDOG=1 keep-alives while WATCHDOG_USEC is
# set, RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
PID=
LISTENER=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; [ -n "$LISTENER" ] && kill $LISTENER 2>/dev/null; rm -rf "$T"' EXIT
. tests/lib.sh

python3 - "$T/notify.sock" "$T/notes" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        for line in s.recv(4096).decode().splitlines():
            out.write(line + "\n")
PY
LISTENER=$!
wait_until "[ -S '$T/notify.sock' ]" 30
cat >"$T/endless.yaml" <<'YAML'
input:
  simulator: {nodes: 2, rate: 50}
output:
  file: {path: out.jsonl}
YAML
(cd "$T" && NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=400000 exec "$BIN" -c endless.yaml 2>"$T/err") &
PID=$!
wait_until "grep -qx READY=1 '$T/notes'" 60
check_sh "READY=1 once the pipeline runs" "grep -qx READY=1 '$T/notes'"
wait_until "[ \$(grep -cx WATCHDOG=1 '$T/notes') -ge 3 ]" 60
check_sh "WATCHDOG=1 keep-alives (WATCHDOG_USEC set)" "[ \$(grep -cx WATCHDOG=1 '$T/notes') -ge 3 ]"
kill -HUP $PID
wait_until "[ \$(grep -cx READY=1 '$T/notes') -ge 2 ]" 60
check_sh "SIGHUP: RELOADING=1, then READY=1 again" \
    "grep -x 'RELOADING=1\|READY=1' '$T/notes' | tr '\n' ' ' | grep -q 'READY=1 RELOADING=1 READY=1'"
kill -TERM $PID
wait $PID
rc=$?
PID=
check_sh "SIGTERM: exit 0" "[ $rc = 0 ]"
check_sh "SIGTERM: STOPPING=1" "grep -qx STOPPING=1 '$T/notes'"
check_sh "STATUS= lines for systemctl status" "grep -q '^STATUS=running' '$T/notes'"
finish

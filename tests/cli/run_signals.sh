#!/usr/bin/env bash
# Signals from the first moment on: SIGHUP sent while tagproc still loads its
# config must not kill it (it is handled once the pipeline runs), and
# an external SIGUSR1 must not take away SIGTERM: both runs end with SIGTERM,
# exit 0 and every received message written.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

# The config is a FIFO: tagproc blocks opening it, so its main() certainly
# runs when the SIGHUP arrives, and the config is read only after that.
printf 'input:\n  simulator: {rate: 500}\noutput:\n  file: {path: %s/out.jsonl}\n' "$T" >"$T/c.txt"
mkfifo "$T/fifo.yaml"
cat >"$T/hup_at_open.py" <<'PY'
import errno, os, signal, sys, time
fifo, pid, text = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "rb").read()
deadline = time.monotonic() + 60
while True:  # a writer can open a FIFO without blocking only once a reader has it open
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        break
    except OSError as e:
        if e.errno != errno.ENXIO or time.monotonic() > deadline:
            raise
        time.sleep(0.005)
if pid:  # 0: only feed the config
    os.kill(pid, signal.SIGHUP)  # tagproc is inside its config load now
os.set_blocking(fd, True)
os.write(fd, text)
os.close(fd)
PY
start_bg "$BIN" -c "$T/fifo.yaml" --stats "$T/s1.json" 2>"$T/err1"
PID=$BG_PID
python3 "$T/hup_at_open.py" "$T/fifo.yaml" $PID "$T/c.txt"
# The SIGHUP reload reads the FIFO again: feed it once more (once the first
# read is over, so that the two texts cannot end up in one read).
wait_until "[ \$(lines '$T/out.jsonl') -ge 1 ]" 120
start_bg python3 "$T/hup_at_open.py" "$T/fifo.yaml" 0 "$T/c.txt" 2>/dev/null
FEEDER=$BG_PID
wait_until "grep -qs 'generation 1 from' '$T/err1' && [ \$(lines '$T/out.jsonl') -ge 20 ]" 120
stop_bg $PID
rc=$?
stop_bg $FEEDER # done by now (the reload read its text)
check_sh "SIGHUP during start-up: still running, then SIGTERM exit 0" \
    "[ $rc = 0 ] || { echo rc=$rc; tail -5 '$T/err1'; exit 1; }"
check_sh "SIGHUP during start-up: handled as a reload" "grep -q 'reload (SIGHUP)' '$T/err1'"

printf 'input:\n  simulator: {rate: 500}\noutput:\n  file: {path: %s/out2.jsonl}\n' "$T" >"$T/small.yaml"
start_bg "$BIN" -c "$T/small.yaml" --stats "$T/s2.json" 2>"$T/err2"
PID=$BG_PID
wait_until "[ \$(lines '$T/out2.jsonl') -ge 20 ]" 120
kill -USR1 $PID
wait_line "$T/err2" 'SIGUSR1|User defined signal 1' 60
kill -TERM $PID
wait_until "! kill -0 $PID 2>/dev/null" 60
stopped=$?
[ $stopped = 0 ] || kill -9 $PID
wait $PID
rc=$?
forget_bg $PID
check_sh "SIGUSR1 is ignored (logged)" "grep -q 'User defined signal 1.*ignored' '$T/err2'"
check_sh "SIGTERM after SIGUSR1 still drains: exit 0" "[ $stopped = 0 ] && [ $rc = 0 ]"
check_sh "every received message was written" \
    "python3 -c 'import json,sys; s=json.load(open(\"$T/s2.json\")); n=sum(1 for _ in open(\"$T/out2.jsonl\")); sys.exit(0 if s[\"received\"]==s[\"processed\"]==n and n>0 else 1)'"

finish

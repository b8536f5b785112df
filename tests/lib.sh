# Shared helpers for the test scripts (source it after setting T to the
# script's temporary directory): checks that count and report, the closing
# "N passed, M failed" line, bounded polling, free loopback ports and the
# background processes a script starts (killed by PID at exit).
# shellcheck shell=bash

pass=0
fail=0

ok() {
    pass=$((pass + 1))
    echo "ok $1${SHOW_TIMES:+ (${SECONDS}s)}"
}

bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
}

# Records the verdict of the last check: its output is shown (a few lines)
# when it passed and has something to say, and more of it when it failed.
report() { # name, exit status
    if [ "$2" = 0 ]; then
        ok "$1"
        [ -s "$T/check.out" ] && sed 's/^/    /' "$T/check.out" | head -5
    else
        bad "$1"
        sed 's/^/    /' "$T/check.out" | head -20
    fi
    return 0
}

# check NAME COMMAND...: runs the command and records the verdict.
check() {
    local name=$1
    shift
    "$@" >"$T/check.out" 2>&1
    report "$name" $?
}

# check_sh NAME 'bash string': the same for a string evaluated in a subshell.
check_sh() {
    (eval "$2") >"$T/check.out" 2>&1
    report "$1" $?
}

# Prints the closing line and exits with the verdict.
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
    exit $?
}

# wait_until 'bash string' SECONDS: polls every 0.1 s; 0 when it became true in time.
wait_until() {
    local cond=$1 limit=$(($2 * 10)) i=0
    while ! eval "$cond"; do
        i=$((i + 1))
        if [ $i -ge $limit ]; then
            echo "timed out after $2 s waiting for: $1" >&2
            return 1
        fi
        sleep 0.1
    done
}

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# Line count of a file, 0 when it does not exist yet.
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# wait_line FILE REGEX SECONDS: waits until a line of FILE matches REGEX
# (grep -E), e.g. a server's READY; on time-out shows FILE's last lines.
wait_line() {
    wait_until "grep -Eqs -- '$2' '$1'" "$3" && return 0
    echo "--- last lines of $1:" >&2
    tail -5 "$1" >&2
    return 1
}

# ---- processes a script starts (brokers, servers, the tagprocs under test) ----
# start_bg COMMAND...: runs the command in the background (redirect its output
# at the call: start_bg "$BIN" -c x.yaml 2>"$T/err") and sets BG_PID.
# stop_bg PID: SIGTERM, waits; returns the process's exit status.
# cleanup_on_exit: when the script exits, kill -9 (by PID) what start_bg
# started and is still running, and remove $T (kept when KEEP_T is set).
BG_PIDS=()
start_bg() {
    "$@" &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}
# start_bg_stdin FILE COMMAND...: start_bg with standard input from FILE, opened
# by the background process (a script's own `<FIFO` would wait for a writer; and
# a background command's standard input is otherwise /dev/null).
start_bg_stdin() {
    local in=$1
    shift
    "$@" <"$in" &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}
forget_bg() {
    local p kept=()
    for p in "${BG_PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
    BG_PIDS=("${kept[@]}")
}
stop_bg() {
    kill -TERM "$1" 2>/dev/null # it may have ended by itself
    wait "$1"
    local rc=$?
    forget_bg "$1"
    return $rc
}
kill_bg() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    BG_PIDS=()
}
# (The trap acts in the script's own shell only: a subshell that ran it, as
# happened under ctest, removed $T mid-test.)
cleanup_on_exit() {
    LIB_MAIN_SHELL=$BASHPID
    trap '[ "$BASHPID" = "$LIB_MAIN_SHELL" ] && { exec 2>/dev/null; kill_bg; [ -n "${KEEP_T:-}" ] || rm -rf "$T"; }' EXIT
}
# run_until OUT LINES SECONDS COMMAND...: runs COMMAND (start_bg) with its
# standard output in OUT (emptied first: an earlier run's lines must not
# count) until OUT has LINES lines or COMMAND ended, at most SECONDS; then
# SIGTERM (stop_bg). Returns COMMAND's exit status. Redirect its standard
# error at the call.
run_until() {
    local out=$1 n=$2 secs=$3
    shift 3
    : >"$out"
    start_bg "$@" >"$out"
    local pid=$BG_PID
    wait_until "[ \$(lines '$out') -ge $n ] || ! kill -0 $pid 2>/dev/null" "$secs"
    stop_bg "$pid"
}
# in_dir DIR COMMAND...: runs COMMAND in DIR (for start_bg: start_bg in_dir ...).
in_dir() {
    cd "$1" && shift && exec "$@"
}

# port_open PORT: something listens on 127.0.0.1:PORT.
port_open() { (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# wait_port PORT SECONDS: waits until something listens there.
wait_port() { wait_until "port_open $1" "$2"; }
# http_port LOG: waits (120 s) until a tagproc logged its HTTP endpoint's
# "on port N" to LOG (started with http.address 127.0.0.1:0), prints N.
http_port() {
    wait_until "grep -qs 'on port' '$1'" 120 || return 1
    grep -o 'on port [0-9]*' "$1" | head -1 | awk '{print $3}'
}

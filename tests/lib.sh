# Shared helpers for the test scripts (source it after setting T to the
# script's temporary directory): checks that count and report, the closing
# "N passed, M failed" line, bounded polling and free loopback ports.
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

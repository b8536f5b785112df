#!/usr/bin/env bash
# `make run` as a new user sees it: stdout is only the job's data (420 UNS
# messages of the simulator example, no build log), stderr ends with one
# summary line, the build log went to build/make-run.log and built only tagproc.
set -u
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

# As typed in a shell: not as a sub-make of `make test` (whose MAKEFLAGS and
# MAKELEVEL would add "Entering directory" lines).
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make run >"$T/out" 2>"$T/err"
rc=$?
check_sh "make run: exit 0" "[ $rc = 0 ]"
check_sh "make run: stdout is the 420 messages, nothing else" \
    "[ \$(wc -l <'$T/out') = 420 ] && [ \$(grep -c '^{\"topic\":\"umh.v1.' '$T/out') = 420 ]"
check_sh "make run: no build log on the terminal" \
    "! grep -E 'Built target|Building C|^\[ *[0-9]+%\]|^-- |make\[[0-9]\]|deps: ' '$T/out' '$T/err'"
check_sh "make run: the last line on stderr is the one-line summary" \
    "tail -n 1 '$T/err' | tee /dev/stderr | grep -q '^make run: examples/opcua-simulator.yaml: 420 messages in, 420 out, 0 dropped, exit status 0'"
check_sh "make run: the build log is in build/make-run.log" "grep -q 'Built target tagproc' build/make-run.log"
check_sh "make run: only tagproc (and what it needs) was built" \
    "! grep -E 'Built target (test_|fuzz_|kafka_mock)' build/make-run.log"
finish

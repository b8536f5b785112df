#!/usr/bin/env bash
# The per-message JavaScript limit (timeout_ms) counts the time the script
# ran, not the time that passed: a process stopped (SIGSTOP, or a thread the
# loaded machine did not schedule) in the middle of a message must not drop
# it as js_timeout, while a script that really runs past the limit still is.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

for i in $(seq 1 40) 0; do echo "{\"payload\":$i,\"meta\":{}}"; done >"$T/in"
cat >"$T/c.yaml" <<YAML
input:
  file:
    path: $T/in
pipeline:
  threads: 1
  processors:
    - nodered_js:
        timeout_ms: 500
        code: |
          if (msg.payload === 0) { while (true) {} }
          let x = 0;
          for (let k = 0; k < 1000000; k++) x += k;
          return msg;
output:
  file:
    path: $T/out
YAML
"$BIN" -c "$T/c.yaml" 2>"$T/err" &
pid=$!
sleep 0.3
kill -STOP "$pid"
sleep 1.2
kill -CONT "$pid"
wait "$pid"
echo $? >"$T/rc"
check_sh "exit 0" "[ \$(cat '$T/rc') = 0 ]"
check_sh "the stopped message is not dropped: 40 results" "[ \$(wc -l <'$T/out') = 40 ]"
check_sh "the endless loop is still cut: exactly one js_timeout" \
    "[ \$(grep -c 'dropped message (js_timeout)' '$T/err') = 1 ] && grep -q 'js_timeout=1)' '$T/err'"
finish

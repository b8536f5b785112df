#!/usr/bin/env bash
# Log forging: console.log text, exception text and input metadata holding
# newlines, ESC and C1 controls are escaped in the text log format, so every
# log line is one event that starts with its timestamp and level.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

cat >"$T/c.yaml" <<'YAML'
pipeline:
  processors:
    - nodered_js:
        code: |
          console.log("line1\n2026-01-01T00:00:00.000Z error forged by console\u001b[2J" + msg.meta.a);
          throw new Error("boom\n2026-01-01T00:00:00.000Z error forged by exception" + msg.meta.a);
YAML
printf '%s\n' '{"payload":1,"meta":{"a":"x\n2026-01-01T00:00:00.000Z error forged by meta\u001b[31m\u009b\r"}}' |
    "$BIN" -c "$T/c.yaml" >/dev/null 2>"$T/err"
check_sh "every log line is one event (timestamp, level)" \
    "! grep -avE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (trace|debug|info |warn |error) ' '$T/err'"
check_sh "no forged line" "! grep -aq '^2026-01-01' '$T/err'"
check_sh "no ESC, CR or C1 control byte" "! grep -aqP '[\x1b\r]|\xc2[\x80-\x9f]' '$T/err'"
check_sh "the text is kept, escaped" \
    "grep -aqF 'line1\n2026-01-01T00:00:00.000Z error forged by console\x1b[2Jx' '$T/err' &&
     grep -aqF 'Error: boom\n2026-01-01' '$T/err'"

finish

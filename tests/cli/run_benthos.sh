#!/usr/bin/env bash
# Benthos config conventions (issue 12): `${VAR:default}` in strings and
# numbers, an unset variable as a positioned error, `logger.level: INFO`,
# logfmt / add_timestamp / static_fields, `http.enabled: false`, one warning
# naming the Benthos keys without meaning here, and `tagproc lint` and
# `tagproc -c` reporting the same findings, all at once.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh
C=tests/cli/benthos/conventions.yaml
E=tests/cli/benthos/many_errors.yaml

# 1. a Benthos-style config runs unchanged; defaults and variables apply
TP_OUT="$T/out" TP_SIM_COUNT=12 TP_LOCATION=ent.site "$BIN" -c "$C" >"$T/stdout" 2>"$T/err"
rc=$?
check_sh "runs: exit 0" "[ $rc = 0 ]"
check_sh "numeric variable: 12 messages" "[ \$(wc -l <'$T/out') = 12 ]"
check_sh "string variable inside JS string literal" "grep -q '\"topic\":\"umh.v1.ent.site._historian.' '$T/out'"
check_sh "JS template literal kept as JavaScript" "! grep -q '\"topic\":\"umh.v1.ent.site._historian\"' '$T/out' && grep -q '_historian\.[A-Za-z]' '$T/out'"
check_sh "logfmt lines, no timestamp, static field" "grep -q '^level=warn msg=\"lint: .*Benthos keys without meaning in tagproc, accepted and ignored: metrics, shutdown_timeout\" @service=gateway$' '$T/err'"
check_sh "no line starts with a timestamp" "! grep -q '^time=' '$T/err' && ! grep -q '^20' '$T/err'"
check_sh "http.enabled false: no endpoint" "! grep -q 'http: serving' '$T/err'"
"$BIN" lint "$C" >"$T/lint_ok" 2>&1
check_sh "lint: warning only, exit 0" "[ $? = 0 ] && grep -q 'conventions.yaml:30:1: warning: Benthos keys' '$T/lint_ok'"

# 2. every problem at once, the same from lint and -c
"$BIN" lint "$E" >"$T/lint" 2>"$T/lint_err"
rc=$?
check_sh "lint exit 2" "[ $rc = 2 ]"
check_sh "unset variable at its position" "grep -qx '$E:6:26: output.mqtt.url: environment variable TP_UNSET_PORT is not set and has no default (write \${TP_UNSET_PORT:default})' '$T/lint'"
check_sh "other Bloblang function at its position" "grep -qx '$E:7:19: output.mqtt.topic: unsupported Bloblang interpolation \"\${! json(\"x\") }\": only \${! meta(\"key\") } and \${! @key } are supported' '$T/lint'"
check_sh "unknown input key" "grep -q '^$E:3:5: input.stdin.codex: unknown key' '$T/lint'"
check_sh "bad integer" "grep -q '^$E:9:12: pipeline.threads: expected integer' '$T/lint'"
check_sh "bad level" "grep -q '^$E:15:10: logger.level: expected one of' '$T/lint'"
check_sh "unknown processor key" "grep -q '^$E:13:9: pipeline.processors\[0\].tag_processor.timeout: unknown key' '$T/lint'"
check_sh "ignored Benthos key warning" "grep -q '^$E:16:1: warning: Benthos keys without meaning in tagproc, accepted and ignored: tracer$' '$T/lint'"
check_sh "six errors, one warning" "grep -q '6 errors, 1 warning' '$T/lint_err'"
"$BIN" -c "$E" >"$T/run_out" 2>"$T/run_err"
rc=$?
check_sh "-c exit 2" "[ $rc = 2 ]"
check_sh "-c reports the same errors" "diff <(grep -v warning: '$T/lint' | sort) <(sed -n 's/^[^ ]* error //p' '$T/run_err' | sort)"
finish

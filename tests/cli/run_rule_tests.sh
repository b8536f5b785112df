#!/usr/bin/env bash
# tagproc test: every example config with processors has an examples/*.test.yaml
# and they all pass; a file with failing cases prints a diff per failure,
# "N passed, M failed" and exits 1; a broken test file exits 2.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

for cfg in examples/*.yaml; do
    case "$cfg" in *.test.yaml) continue ;; esac
    grep -q '^ *processors:' "$cfg" || continue
    check_sh "$cfg has a rule test" "[ -f '${cfg%.yaml}.test.yaml' ]"
done
"$BIN" test examples/*.test.yaml >"$T/ex" 2>&1
rc=$?
cat "$T/ex"
check_sh "example rule tests pass" "[ $rc = 0 ] && grep -q ' 0 failed' '$T/ex'"

F=tests/cli/ruletest/failing.test.yaml
"$BIN" test "$F" >"$T/f" 2>&1
rc=$?
cat "$T/f"
check_sh "failing file exits 1" "[ $rc = 1 ]"
check_sh "summary" "grep -qx '1 passed, 3 failed' '$T/f'"
check_sh "value diff" "grep -q 'FAIL $F:19: case 1 \"wrong value\"' '$T/f' && grep -A2 'output\[0\].value' '$T/f' | grep -q -- '- 215' && grep -A2 'output\[0\].value' '$T/f' | grep -q -- '+ 21.5'"
check_sh "drop diff" "grep -q 'case 2 \"wrong drop reason\"' '$T/f' && grep -q 'drop: missing_field at output' '$T/f'"
check_sh "unexpected drop" "grep -q 'case 3 \"unexpected drop\"' '$T/f' && grep -q 'unexpected drop' '$T/f'"
check_sh "passing case not listed" "! grep -q 'passes' '$T/f'"

printf 'cases: []\n' >"$T/broken.test.yaml"
"$BIN" test "$T/broken.test.yaml" >"$T/b" 2>&1
check_sh "broken file exits 2" "[ $? = 2 ] && grep -q 'exactly one of .config. or .processors.' '$T/b'"

finish

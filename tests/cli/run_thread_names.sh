#!/usr/bin/env bash
# Thread names: every thread tagproc starts names its job (tp-rules-N per
# worker, tp-writer, tp-signal, tp-stats, tp-watch), so `top -H` and
# /proc/PID/task/*/comm tell an operator which part uses the CPU; the main
# thread, which reads the input, keeps the process name.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

printf 'input:\n  simulator: {rate: 200}\npipeline: {threads: 2}\noutput:\n  file: {path: %s/out.jsonl}\n' "$T" >"$T/c.yaml"
start_bg "$BIN" -c "$T/c.yaml" --watch 2>"$T/err"
PID=$BG_PID
wait_until "[ \$(lines '$T/out.jsonl') -ge 1 ]" 60 || { cat "$T/err"; exit 1; }
names=$(cat /proc/$PID/task/*/comm | sort | tr '\n' ' ')
echo "threads: $names"
fail=0
for want in tp-rules-0 tp-rules-1 tp-writer tp-signal tp-stats tp-watch "$(basename "$BIN" | cut -c1-15)"; do
    case " $names " in
    *" $want "*) ;;
    *) echo "FAIL: no thread named $want" >&2; fail=1 ;;
    esac
done
stop_bg $PID || { echo "FAIL: tagproc did not exit 0" >&2; cat "$T/err"; fail=1; }
exit $fail

#!/usr/bin/env bash
# Hot reload under load: an endless rate-limited simulator -> file, SIGHUP
# five times with a changed config (two of them invalid: one rejected by
# lint, one whose JS does not compile; the running config stays), then
# SIGTERM. Every message must be in the output exactly once and in order
# (fixed timestamps are the message index), the generations must follow each
# other, and /metrics must count 3 reloads and 2 failures. Then --watch:
# rewriting the file alone reloads.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

write_config() { # generation-name, data_contract[, advancedProcessing's last line]
    cat >"$T/new.yaml" <<YAML
http:
  address: 127.0.0.1:0
input:
  simulator: {nodes: 7, rate: 3000, timestamps: fixed}
pipeline:
  threads: 2
  batch_size: 8
  processors:
    - tag_processor:
        defaults: |
          msg.meta.location_path = "enterprise.plant1";
          msg.meta.data_contract = "$2";
          msg.meta.tag_name = msg.meta.opcua_tag_name;
          return msg;
        advancedProcessing: |
          msg.meta.virtual_path = "$1";
          ${3:-return msg;}
output:
  file:
    path: $T/out.jsonl
YAML
    mv "$T/new.yaml" "$T/config.yaml"
}

write_config gen0 _historian
start_bg "$BIN" -c "$T/config.yaml" --stats "$T/stats.json" 2>"$T/err"
PID=$BG_PID
PORT=$(http_port "$T/err")
wait_until "[ \$(lines '$T/out.jsonl') -ge 300 ]" 60
published=0
for g in 1 2 3 4 5; do
    n=$(lines "$T/out.jsonl")
    if [ $g = 3 ]; then
        write_config gen3 historian # breaks the topic rules: lint rejects it
        kill -HUP $PID
        wait_until "grep -qs 'reload rejected' '$T/err'" 60
    elif [ $g = 5 ]; then
        # A JS syntax error: the pipeline rejects it after freeing the config,
        # so the error printed must own its file name (ASan checks it).
        write_config gen5 _historian 'return msg;;; (('
        kill -HUP $PID
        wait_until "[ \$(grep -c 'reload rejected' '$T/err') -ge 2 ]" 60
    else
        write_config gen$g _historian
        kill -HUP $PID
        published=$((published + 1))
        wait_until "grep -qs 'generation $published from' '$T/err'" 60
        wait_until "grep -qs '\"virtual_path\":\"gen$g\"' '$T/out.jsonl'" 60
    fi
    wait_until "[ \$(lines '$T/out.jsonl') -ge $((n + 300)) ]" 60
done
curl -s "http://127.0.0.1:$PORT/metrics" >"$T/metrics"
stop_bg "$PID"
rc=$?
check_sh "exit 0 after SIGTERM" "[ $rc = 0 ]"
check_sh "metrics: 3 reloads" "grep -qx 'tagproc_reloads_total 3' '$T/metrics'"
check_sh "metrics: 2 failed reloads" "grep -qx 'tagproc_reload_failures_total 2' '$T/metrics'"
check_sh "metrics: generation 3" "grep -qx 'tagproc_config_generation 3' '$T/metrics'"
check_sh "rejection logged with the reason" "grep -q 'reload rejected.*data_contract' '$T/err'"
check_sh "JS syntax error rejected with its position" \
    "grep -q 'reload rejected.*config.yaml:[0-9]*:[0-9]*: .*advancedProcessing' '$T/err'"
cat >"$T/check.py" <<'PY'
import json, sys
out, stats = sys.argv[1], sys.argv[2]
ts, gens = [], []
for line in open(out):
    m = json.loads(line)
    ts.append(m["payload"]["timestamp_ms"])
    gens.append(int(m["meta"]["virtual_path"][3:]))
s = json.load(open(stats))
n = len(ts)
assert s["received"] == n == s["processed"], (s, n)
assert ts == list(range(1700000000000, 1700000000000 + n)), "gap, duplicate or reordering"
assert gens == sorted(gens), "a message ran on an older generation after a newer one"
assert sorted(set(gens)) == [0, 1, 2, 4], sorted(set(gens))
print(n, "messages, all present once, in order; generations", sorted(set(gens)))
PY
check_sh "every message once, in order, generations in order" "python3 '$T/check.py' '$T/out.jsonl' '$T/stats.json'"

# --watch: rewriting the file is enough
rm -f "$T/out.jsonl"
write_config w0 _historian
start_bg "$BIN" -c "$T/config.yaml" --watch 2>"$T/err2"
PID=$BG_PID
wait_until "[ \$(lines '$T/out.jsonl') -ge 100 ]" 60
write_config w1 _historian
wait_until "grep -qs 'generation 1 from' '$T/err2'" 60
wait_until "grep -qs '\"virtual_path\":\"w1\"' '$T/out.jsonl'" 60
stop_bg "$PID"
rc=$?
check_sh "--watch reloads on change" "grep -q 'reload (config file changed)' '$T/err2' && [ $rc = 0 ]"

finish

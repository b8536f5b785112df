#!/usr/bin/env bash
# The operations endpoint of a running pipeline: /metrics (Prometheus text)
# with the per-rule series (evaluations, matches, errors, timeouts, time
# histogram), drops by reason and stage, plugin counters, latency, RSS;
# /ready and /health; JSON log lines naming processor, stage and rule.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit
cat >"$T/config.yaml" <<'YAML'
http:
  address: 127.0.0.1:0
logger:
  format: json
input:
  simulator: {nodes: 12, rate: 2000}
pipeline:
  threads: 2
  processors:
    - tag_processor:
        timeout_ms: 20
        defaults: |
          msg.meta.location_path = "enterprise.plant1";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = msg.meta.opcua_tag_name;
          return msg;
        conditions:
          - if: msg.meta.opcua_node_id === "ns=1;i=2200"
            then: |
              msg.meta.virtual_path = "axis.x";
              return msg;
          - if: msg.meta.opcua_tag_type === "bool"
            then: |
              msg.meta.virtual_path = "status";
              return msg;
          - if: msg.meta.opcua_node_id === "ns=1;i=2204"
            then: |
              throw new Error("bad node");
          - if: msg.meta.opcua_node_id === "ns=1;i=2205"
            then: |
              while (true) {}
        advancedProcessing: |
          return msg;
output:
  drop: {}
YAML
start_bg "$BIN" -c "$T/config.yaml" 2>"$T/err"
PID=$BG_PID
PORT=$(http_port "$T/err")
URL=http://127.0.0.1:$PORT
P='processor="pipeline.processors\[0\].tag_processor"'
scrape() { curl -s -m 30 "$URL/metrics" >"$T/m"; }
val() { # series regex -> value (0 when absent)
    grep -E "^$1 " "$T/m" | awk '{print $2}' | head -1 | grep . || echo 0
}
wait_until "scrape; [ \$(val 'tagproc_rule_timeouts_total\{$P,rule=\"conditions\[3\]\"\}') -ge 2 ] && [ \$(val 'tagproc_rule_errors_total\{$P,rule=\"conditions\[2\]\"\}') -ge 2 ]" 120
cp "$T/m" "$T/metrics.txt"
check_sh "/ready is 200" "[ \$(curl -s -o /dev/null -w '%{http_code}' $URL/ready) = 200 ]"
check_sh "/health is 200" "[ \$(curl -s -o /dev/null -w '%{http_code}' $URL/health) = 200 ]"
check_sh "unknown path is 404" "[ \$(curl -s -o /dev/null -w '%{http_code}' $URL/nope) = 404 ]"
check_sh "content type" "curl -s -D - -o /dev/null $URL/metrics | grep -qi 'content-type: text/plain; version=0.0.4'"
for r in defaults 'conditions\[0\]' 'conditions\[1\]' 'conditions\[2\]' 'conditions\[3\]' advancedProcessing; do
    check_sh "evaluations rule=$r" "[ \$(val 'tagproc_rule_evaluations_total\{$P,rule=\"$r\"\}') -gt 0 ]"
    check_sh "duration histogram rule=$r" "grep -Eq '^tagproc_rule_duration_seconds_bucket\{$P,rule=\"$r\",le=\"\+Inf\"\} [0-9]+$' '$T/m' && grep -Eq '^tagproc_rule_duration_seconds_sum\{$P,rule=\"$r\"\} ' '$T/m' && grep -Eq '^tagproc_rule_duration_seconds_count\{$P,rule=\"$r\"\} ' '$T/m'"
done
check_sh "matches only for conditions" "[ \$(val 'tagproc_rule_matches_total\{$P,rule=\"conditions\[1\]\"\}') -gt 0 ] && ! grep -q 'tagproc_rule_matches_total{.*rule=\"defaults\"' '$T/m'"
check_sh "condition 0 matches 1 node in 12" "[ \$(val 'tagproc_rule_matches_total\{$P,rule=\"conditions\[0\]\"\}') -lt \$(val 'tagproc_rule_evaluations_total\{$P,rule=\"conditions\[0\]\"\}') ]"
check_sh "errors counted on the throwing rule only" "[ \$(val 'tagproc_rule_errors_total\{$P,rule=\"conditions\[2\]\"\}') -gt 0 ] && [ \$(val 'tagproc_rule_errors_total\{$P,rule=\"defaults\"\}') = 0 ]"
check_sh "timeouts counted" "[ \$(val 'tagproc_rule_timeouts_total\{$P,rule=\"conditions\[3\]\"\}') -gt 0 ]"
check_sh "drops by reason and stage" "[ \$(val 'tagproc_dropped_total\{reason=\"js_error\",stage=\"conditions\[2\].then\"\}') -gt 0 ] && [ \$(val 'tagproc_dropped_total\{reason=\"js_timeout\",stage=\"conditions\[3\].then\"\}') -gt 0 ]"
check_sh "input / output / processor counters" "[ \$(val 'tagproc_input_received_total\{plugin=\"simulator\"\}') -gt 0 ] && [ \$(val 'tagproc_output_sent_total\{plugin=\"drop\"\}') -gt 0 ] && [ \$(val 'tagproc_processor_received_total\{$P,plugin=\"tag_processor\"\}') -gt 0 ]"
check_sh "js counters" "[ \$(val tagproc_js_programs_compiled_total) -gt 0 ] && [ \$(val tagproc_js_vms_created_total) = 2 ]"
check_sh "latency histogram" "[ \$(val tagproc_latency_seconds_count) -gt 0 ] && grep -q '^tagproc_latency_seconds_bucket{le=\"+Inf\"}' '$T/m'"
check_sh "rss and queues" "[ \$(val tagproc_process_resident_memory_bytes) -gt 1000000 ] && grep -q '^tagproc_queue_batches{queue=\"waiting\"}' '$T/m'"
check_sh "every sample line is well formed" "grep -v '^#' '$T/m' | grep -Evq '^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$' && exit 1 || exit 0"
stop_bg "$PID"
rc=$?
check_sh "exit 0" "[ $rc = 0 ]"
check_sh "log lines are JSON" "python3 -c 'import json,sys; [json.loads(l) for l in open(\"$T/err\")]'"
check_sh "rule log lines name processor, stage and rule" "grep -q 'processor=pipeline.processors\[0\].tag_processor stage=conditions\[2\].then rule=conditions\[2\]' '$T/err'"
finish

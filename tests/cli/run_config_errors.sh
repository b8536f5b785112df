#!/usr/bin/env bash
# Start-up refusals: every configuration problem (ranges, http.address, a
# missing input or TLS file, input and output on one file) exits 2 and names
# FILE:LINE:COL; the input file survives the refusal; a broker that cannot be
# reached at start is not a configuration problem (exit 1), and an input that
# fails says which one failed (exit 1).
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

# expect_config_error NAME WANT_POSITION_AND_TEXT YAML: exit 2, the message on stderr.
expect_config_error() {
    printf '%s\n' "$3" >"$T/c.yaml"
    (cd "$T" && "$BIN" -c c.yaml </dev/null >/dev/null 2>err)
    local rc=$?
    check_sh "$1: exit 2 at its position" \
        "[ $rc = 2 ] && grep -q 'c.yaml:$2' '$T/err' || { echo rc=$rc; cat '$T/err'; exit 1; }"
}

PROC='pipeline:
  processors:
    - tag_processor:
        defaults: "return msg;"'
expect_config_error "threads -5" "2:12: pipeline.threads: expected an integer in 0..1024, got -5" \
    'pipeline:
  threads: -5'
expect_config_error "batch_size 0" "2:15: pipeline.batch_size: expected an integer in 1..65536" \
    'pipeline:
  batch_size: 0'
for k in timeout_ms memory_limit_mb cache_max_entries; do
    expect_config_error "$k 0" "5:[0-9]*: pipeline.processors\[0\].tag_processor.$k: expected an integer in 1\.\." \
        "$PROC
        $k: 0"
done
expect_config_error "bad http.address" "2:12: http.address: expected" \
    'http:
  address: "not an address"'
expect_config_error "http.address port out of range" "2:12: http.address: expected" \
    'http:
  address: 127.0.0.1:99999'
expect_config_error "missing input file" "2:16: input.file.path: cannot read \"nope.jsonl\"" \
    'input:
  file: {path: nope.jsonl}'
expect_config_error "output file in a missing directory" "2:16: output.file.path: directory \"no/such\"" \
    'output:
  file: {path: no/such/out.jsonl}'
expect_config_error "missing tls.ca_file" "4:20: input.mqtt.tls.ca_file: cannot read \"/nonexistent/ca.pem\"" \
    'input:
  mqtt:
    url: mqtts://127.0.0.1:1
    tls: {ca_file: /nonexistent/ca.pem}
    topics: [a]'

# Input and output on one file: refused before the output opens it, in both
# modes, naming both positions; the input is left as it was.
printf '{"payload":1}\n{"payload":2}\n' >"$T/data.jsonl"
cp "$T/data.jsonl" "$T/data.orig"
ln -s data.jsonl "$T/link.jsonl"
for mode in truncate append; do
    for out in data.jsonl ./link.jsonl; do
        expect_config_error "same file as input and output ($mode, $out)" \
            "5:11: output.file.path: \"$out\" is the input file (input.file.path at c.yaml:2:16)" \
            "input:
  file: {path: data.jsonl}
output:
  file:
    path: $out
    mode: $mode"
        check_sh "input intact after the refusal ($mode, $out)" "cmp '$T/data.jsonl' '$T/data.orig'"
    done
done
expect_config_error "same file as input and dead letter" "5:11: dead_letter.file.path: \"data.jsonl\" is the input file" \
    'input:
  file: {path: data.jsonl}
dead_letter:
  file:
    path: data.jsonl'

# Ranges and durations live in the option tables: positioned, found before
# anything connects (they were checked at open, without position, once).
expect_config_error "mqtt keepalive out of range" "3:21: input.mqtt.keepalive: expected a duration in 5s..65535s, got 2s" \
    'input:
  mqtt: {url: "tcp://127.0.0.1:1", topics: [a],
         keepalive: 2s}'
expect_config_error "mqtt output max_inflight" "2:50: output.mqtt.max_inflight: expected an integer in 1..60000, got 0" \
    'output:
  mqtt: {url: "tcp://127.0.0.1:1", max_inflight: 0}'
expect_config_error "http.max_connections" "2:20: http.max_connections: expected an integer in 1..1000000, got 0" \
    'http:
  max_connections: 0'
expect_config_error "nats jetstream without durable" "2:66: input.nats.jetstream: missing required key \"durable\"" \
    'input:
  nats: {urls: ["nats://127.0.0.1:1"], subjects: [a], jetstream: {stream: S}}'
expect_config_error "kafka linger_ms" "2:58: output.kafka.linger_ms: expected duration" \
    'output:
  kafka: {brokers: ["127.0.0.1:1"], topic: t, linger_ms: soon}'
# The old integer form with an implicit unit: accepted, and lint warns.
printf 'input:\n  mqtt: {url: "tcp://127.0.0.1:1", topics: [a],\n         keepalive: 30, reconnect_delay: 2s}\n' >"$T/dep.yaml"
"$BIN" lint "$T/dep.yaml" >"$T/dep.out" 2>&1
rc=$?
check_sh "bare MQTT seconds: lint warns (exit 0), positioned" \
    "[ $rc = 0 ] && grep -q 'dep.yaml:3:21: warning: input.mqtt.keepalive: a bare integer (counted in units of 1s) is deprecated; write the unit, e.g. 30s' '$T/dep.out' && ! grep -q reconnect_delay '$T/dep.out'"
"$BIN" lint --strict "$T/dep.yaml" >/dev/null 2>&1
rc=$?
check_sh "bare MQTT seconds: lint --strict exits 1" "[ $rc = 1 ]"

# A broker that is down at start: exit 1, not 2.
PORT=$(free_port)
printf 'input:\n  nats: {urls: ["nats://127.0.0.1:%s"], subjects: [a]}\n' "$PORT" >"$T/nats.yaml"
timeout 60 "$BIN" -c "$T/nats.yaml" </dev/null >/dev/null 2>"$T/nats.err"
rc=$?
check_sh "unreachable broker at start: exit 1" "[ $rc = 1 ] && grep -q 'cannot connect' '$T/nats.err'"

# An input whose read fails (stdin is a directory): exit 1, the message says
# which input failed and how (it once was an empty "tagproc: ").
"$BIN" -c examples/stdin-passthrough.yaml </ >/dev/null 2>"$T/read.err"
rc=$?
check_sh "failing input: exit 1, named" \
    "[ $rc = 1 ] && grep -q 'error input.stdin: read failed: read: Is a directory' '$T/read.err'"

finish

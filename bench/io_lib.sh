# Shared part of the `make bench-io` scripts bench/io/kafka.sh,
# bench/io/kafka_instr.sh and bench/io/nats.sh (sourced): services on
# 127.0.0.1 (librdkafka mock build/kafka_mock, nats-server -js), seed input generation, `measure` (msg/s
# and tagproc CPU µs/msg from /usr/bin/time), `measure_syscalls` (strace -c
# -f on a smaller run) and the table, with each case's ratio to the file ->
# seed -> file reference of the same run (case_file). A connector script
# defines case functions calling these and ends with print_table.
# Environment: MESSAGES (default 200000), STRACE_MESSAGES (20000), BIN
# (default build/tagproc), MOCK (default build/kafka_mock).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=$(realpath "${BIN:-build/tagproc}") # BIN=path: another binary (before/after)
MOCK=$(realpath "${MOCK:-build/kafka_mock}") # MOCK=path: another kafka_mock build
MESSAGES=${MESSAGES:-200000}
STRACE_MESSAGES=${STRACE_MESSAGES:-20000}
T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
. tests/lib.sh
command -v strace >/dev/null || apt-get install -y -qq strace >/dev/null 2>&1
command -v nats-server >/dev/null || apt-get install -y -qq nats-server >/dev/null 2>&1
RESULTS=$T/results.jsonl
: >"$RESULTS"

# ---- inputs: N seed envelopes (42 nodes) as JSONL ----
gen() { # N FILE
    printf 'input:\n  simulator: {nodes: 42, count: %s, timestamps: fixed, metadata: short}\noutput:\n  file: {path: "%s"}\n' \
        "$1" "$2" >"$T/gen.yaml"
    "$BIN" -c "$T/gen.yaml"
}
gen "$MESSAGES" "$T/in.jsonl"
gen "$STRACE_MESSAGES" "$T/in-small.jsonl"

# config RULES INPUT_YAML OUTPUT_YAML: a config with the seed rules (or none).
config() {
    local rules=$1 input=$2 output=$3
    if [ "$rules" = seed ]; then
        python3 bench/e2e_config.py X Y 1 | sed -e "s|^  file: {path: \"X\"}|$input|" \
            -e "s|^  file: {path: \"Y\", mode: truncate}|$output|"
    else
        printf 'input:\n%s\npipeline: {threads: 1}\noutput:\n%s\n' "$input" "$output"
    fi
}

# measure NAME RULES CONFIG N DONE_CMD [STDIN_FILE] [START_CMD]: runs tagproc
# (under /usr/bin/time) until it exits or DONE_CMD (a bash string) is true,
# then SIGTERM (it drains and exits). Records msg/s and CPU µs/msg. With
# START_CMD the clock starts when it is true (e.g. a consumer group joined;
# the time before is recorded as setup_s), else at the start of tagproc.
measure() {
    local name=$1 rules=$2 cfg=$3 n=$4 done_cmd=$5 stdin=${6:-/dev/null} start_cmd=${7:-true}
    local start end launch
    launch=$(date +%s.%N)
    : >"$T/tp.err"
    /usr/bin/time -o "$T/time" -f '%U %S' "$BIN" -c "$cfg" <"$stdin" >"$T/tp.out" 2>"$T/tp.err" &
    local pid=$!
    while kill -0 $pid 2>/dev/null && ! eval "$start_cmd"; do
        sleep 0.01
    done
    start=$(date +%s.%N)
    while kill -0 $pid 2>/dev/null && ! eval "$done_cmd"; do
        sleep 0.02
    done
    end=$(date +%s.%N)
    pkill -TERM -P $pid 2>/dev/null # tagproc, the child of time
    wait $pid
    python3 -c '
import json, sys
name, rules, n, launch, start, end, tfile = sys.argv[1:8]
n = int(n); wall = float(end) - float(start)
user, sys_ = open(tfile).read().split()[-2:]
print(json.dumps({"case": name, "rules": rules, "messages": n, "wall_s": round(wall, 3),
                  "setup_s": round(float(start) - float(launch), 2),
                  "msgs_per_sec": round(n / wall),
                  "cpu_us_per_msg": round((float(user) + float(sys_)) * 1e6 / n, 2)}))
' "$name" "$rules" "$n" "$launch" "$start" "$end" "$T/time" >>"$RESULTS"
}

# measure_syscalls NAME CONFIG N DONE_CMD [STDIN_FILE]: the same run under
# strace -c -f with the smaller input; adds syscalls/msg to NAME's record.
measure_syscalls() {
    local name=$1 cfg=$2 n=$3 done_cmd=$4 stdin=${5:-/dev/null}
    strace -c -f -o "$T/strace.txt" "$BIN" -c "$cfg" <"$stdin" >/dev/null 2>&1 &
    local pid=$!
    wait_until "! kill -0 $pid 2>/dev/null || { $done_cmd; }" 120 >/dev/null 2>&1
    pkill -TERM -P $pid 2>/dev/null # tagproc, traced by strace
    wait $pid
    local calls
    calls=$(awk '$NF == "total" {print $(NF-2)}' "$T/strace.txt")
    python3 -c '
import json, sys
path, name, n, calls = sys.argv[1:5]
rows = [json.loads(l) for l in open(path)]
for r in rows:
    if r["case"] == name and "syscalls_per_msg" not in r:
        r["syscalls_per_msg"] = round(int(calls or 0) / int(n), 2)
open(path, "w").write("".join(json.dumps(r) + "\n" for r in rows))
' "$RESULTS" "$name" "$n" "$calls"
}

# ---- Kafka (librdkafka mock build/kafka_mock, 1 broker; bench/io/kafka*.sh) ----
kafka_start() {
    [ -n "${BOOT:-}" ] && return
    # stdin a pipe held open by a sleep that cleanup stops too (a process
    # substitution's sleep outlived every run)
    mkfifo "$T/mock.in"
    sleep 100000 >"$T/mock.in" &
    PIDS+=($!)
    "$MOCK" serve 1 in4:4 out1:1 out4:4 out8:8 >"$T/boot" 2>"$T/mock.err" <"$T/mock.in" &
    PIDS+=($!)
    wait_until '[ -s "$T/boot" ]' 20 || { echo "kafka_mock did not start" >&2; exit 1; }
    BOOT=$(cat "$T/boot")
}
kout() { # TOPIC COMPRESSION [MORE_OPTIONS]: a kafka output
    echo "  kafka: {brokers: [\"$BOOT\"], topic: $1, compression: $2${3:+, $3}}"
}
kin() { # GROUP: a kafka input reading in4
    echo "  kafka: {brokers: [\"$BOOT\"], topics: [in4], consumer_group: $1, properties: {auto.commit.interval.ms: '100'}}"
}
# count TOPIC: records the mock holds in TOPIC.
count() { "$MOCK" count "$BOOT" "$1" 2>/dev/null || echo 0; }
# kafka_fill: the seed input into in4 (4 partitions), lz4: the mock keeps
# ~5 MB per partition and prunes older records; uncompressed, half of
# 200,000 seed records would be gone before the run.
kafka_fill() {
    config passthrough "  stdin: {}" "$(kout in4 lz4)" >"$T/fill.yaml"
    "$BIN" -c "$T/fill.yaml" <"$T/in.jsonl" >/dev/null 2>&1
    [ "$(count in4)" = "$MESSAGES" ] || { echo "in4 holds $(count in4) records, not $MESSAGES" >&2; exit 1; }
}

# ---- file (the reference) ----
case_file() {
    for rules in seed passthrough; do
        config $rules "  file: {path: \"$T/in.jsonl\"}" "  file: {path: \"$T/out.jsonl\"}" >"$T/f.yaml"
        measure "file->file" $rules "$T/f.yaml" "$MESSAGES" false
        config $rules "  file: {path: \"$T/in-small.jsonl\"}" "  file: {path: \"$T/out.jsonl\"}" >"$T/fs.yaml"
        measure_syscalls "file->file" "$T/fs.yaml" "$STRACE_MESSAGES" false
    done
}

print_table() {
    python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ref = next((r["msgs_per_sec"] for r in rows if r["case"] == "file->file" and r["rules"] == "seed"), None)
print("| case | rules | msg/s | x file->seed->file | tagproc CPU µs/msg | syscalls/msg |")
print("|---|---|---|---|---|---|")
for r in rows:
    ratio = "%.2f" % (r["msgs_per_sec"] / ref) if ref else "-"
    print("| %s | %s | %d | %s | %s | %s |" % (r["case"], r["rules"], r["msgs_per_sec"], ratio,
          r.get("cpu_us_per_msg") or "-", r.get("syscalls_per_msg", "-")))
PY
}

#!/usr/bin/env bash
# Instructions per message of Kafka (4 partitions) -> seed rules -> Kafka (4
# partitions), with the output's headers `all` and `none`, next to file ->
# seed -> file, under valgrind --tool=callgrind --separate-threads=yes: one
# row per thread role, independent of the machine's load (issue 17's budget,
# docs/kafka.md). Counts include start-up (a few hundred per message at the
# default N). Env: N (20000), BIN, MOCK. Helpers: bench/io_lib.sh.
MESSAGES=${N:-20000} STRACE_MESSAGES=10
. "$(dirname "$0")/../io_lib.sh"
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null 2>&1

kafka_start
kafka_fill

# run NAME CONFIG [GROUP]: tagproc under callgrind, one profile per thread
# in $T/NAME.cg-NN; with GROUP it runs until every record is committed.
run() {
    local name=$1 cfg=$2 group=${3:-}
    if [ -z "$group" ]; then
        valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$T/$name.cg" \
            "$BIN" -c "$cfg" >/dev/null 2>"$T/$name.err"
        return
    fi
    "$MOCK" commit "$BOOT" "$group" in4 0 || exit 1
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$T/$name.cg" \
        "$BIN" -c "$cfg" >/dev/null 2>"$T/$name.err" &
    local vg=$!
    "$MOCK" wait-committed "$BOOT" "$group" in4 "$MESSAGES" 900 || echo "$name: not every offset committed" >&2
    kill -TERM $vg
    wait $vg
}

# table NAME: instructions per message of each thread that did work, by role
table() {
    local name=$1 f role total=0 n
    for f in "$T/$name".cg-*; do
        n=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
        n=$((${n:-0} / MESSAGES))
        [ "$n" -lt 50 ] && continue
        local tree
        tree=$(callgrind_annotate --inclusive=yes "$f" 2>/dev/null)
        case "$tree" in
        *read_loop*) role="input (reader, main thread)" ;;
        *worker_main*) role="rules worker" ;;
        *writer_main*) role="writer (output submit, frees delivered records)" ;;
        *poller_main*) role="Kafka delivery reports" ;;
        # Debian's librdkafka has no symbols: its threads are told apart
        # by what they call (lz4: the consumer's fetches are compressed)
        *LZ4F_decompress*) role="librdkafka consumer broker thread (fetch, lz4)" ;;
        *librdkafka*) role="librdkafka producer broker thread (record encoding)"
            [ "$n" -lt 1000 ] && role="librdkafka housekeeping threads" ;;
        *) role="other" ;;
        esac
        printf '| %s | %s | %d |\n' "$name" "$role" "$n"
        total=$((total + n))
    done
    printf '| %s | **whole process** | **%d** |\n' "$name" "$total"
    echo "$total" >"$T/$name.total"
}

config seed "  file: {path: \"$T/in.jsonl\"}" "  file: {path: \"$T/out.jsonl\"}" >"$T/ff.yaml"
run file-seed-file "$T/ff.yaml"
g=0
for headers in all none; do
    g=$((g + 1))
    config seed "$(kin instr$g-$$)" "$(kout out4 none "headers: $headers")" >"$T/kk$g.yaml"
    run "kafka-seed-kafka(headers:$headers)" "$T/kk$g.yaml" "instr$g-$$"
done

echo "Instructions per message (callgrind, $MESSAGES seed messages, per thread):"
echo "| path | thread | instructions/msg |"
echo "|---|---|---|"
table file-seed-file
table "kafka-seed-kafka(headers:all)"
table "kafka-seed-kafka(headers:none)"
ff=$(cat "$T/file-seed-file.total")
for headers in all none; do
    k=$(cat "$T/kafka-seed-kafka(headers:$headers).total")
    python3 -c "import sys; print('file / kafka(headers:%s) instructions: %.2f' % (sys.argv[1], $ff / $k))" "$headers"
done

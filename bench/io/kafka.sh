#!/usr/bin/env bash
# `make bench-io`, Kafka part (issue 17): stdin -> seed rules -> kafka output
# into topics of 1, 4 and 8 partitions, without and with lz4, the Kafka input
# alone (4 partitions -> passthrough / seed rules -> file) and Kafka (4
# partitions) -> seed rules / passthrough -> Kafka (4 partitions), and seed
# rules again with the output's `headers: none`, against the librdkafka mock
# (build/kafka_mock), next to file -> seed -> file of the same run. Helpers:
# bench/io_lib.sh. CASES="file kafka_kafka" (default: file kafka_out
# kafka_kafka) runs a subset; BIN=path measures another binary.
. "$(dirname "$0")/../io_lib.sh"

case_kafka_out() { # stdin -> rules -> kafka topic of 1, 4, 8 partitions
    kafka_start
    local topic comp
    for comp in none lz4; do
        for topic in out1 out4 out8; do
            config seed "  stdin: {}" "$(kout $topic $comp)" >"$T/k.yaml"
            measure "stdin->kafka:$topic:$comp" seed "$T/k.yaml" "$MESSAGES" false "$T/in.jsonl"
        done
    done
    config seed "  stdin: {}" "$(kout out4 none)" >"$T/ks.yaml"
    measure_syscalls "stdin->kafka:out4:none" "$T/ks.yaml" "$STRACE_MESSAGES" false "$T/in-small.jsonl"
}

case_kafka_kafka() { # kafka (4 partitions) -> rules -> kafka (4 partitions)
    kafka_start
    local group=0
    kafka_fill
    local rules out
    # the Kafka input alone (drained into a file, without and with the
    # rules), then Kafka -> Kafka
    local outs="file seed-file seed passthrough seed-noheaders"
    # a binary from before the output's `headers` option: without that case
    "$BIN" config-doc | sed -n '/^### output.kafka/,/^### output.nats/p' | grep -q '^| `headers` |' ||
        outs="file seed-file seed passthrough"
    for out in $outs; do
        group=$((group + 1))
        local g=bench$group-$$
        local input
        input=$(kin $g)
        if [ $out = file ] || [ $out = seed-file ]; then
            rules=passthrough
            [ $out = seed-file ] && rules=seed
            config $rules "$input" "  file: {path: \"$T/out.jsonl\"}" >"$T/kk.yaml"
        elif [ $out = seed-noheaders ]; then
            rules=seed
            config $rules "$input" "$(kout out4 none "headers: none")" >"$T/kk.yaml"
        else
            rules=$out
            config $rules "$input" "$(kout out4 none)" >"$T/kk.yaml"
        fi
        # The group starts from committed offsets (0 on every partition), as
        # a group that resumes does: with none, librdkafka 2.0.2 waits
        # 100 ms before its first offset query (docs/kafka.md).
        "$MOCK" commit "$BOOT" $g in4 0 || exit 1
        # done: every input record acknowledged (so written or produced and
        # confirmed) and its offset committed, watched by one kafka_mock
        # client (a check every 10 ms, no process per check)
        "$MOCK" wait-committed "$BOOT" $g in4 "$MESSAGES" 600 &
        local watch=$!
        # start: the group assigned the partitions (the join, ~3 s in the
        # mock, is setup_s)
        local to=kafka:out4
        [ $out = file ] || [ $out = seed-file ] && to=file
        [ $out = seed-noheaders ] && to="kafka:out4(headers:none)"
        measure "kafka:in4->$to" $rules "$T/kk.yaml" \
            "$MESSAGES" "! kill -0 $watch 2>/dev/null" /dev/null \
            "grep -Eq ': assigned [0-9]+ partition' \"\$T/tp.err\""
        if kill $watch 2>/dev/null || ! wait $watch; then
            echo "kafka:in4->$to: not every offset committed (tagproc: $(tail -1 "$T/tp.err"))" >&2
            exit 1
        fi
    done
}

for c in ${CASES:-file kafka_out kafka_kafka}; do
    case_$c
done
echo "Kafka ($MESSAGES seed messages, librdkafka mock, 1 broker):"
print_table

#!/usr/bin/env python3
# Checks a max_meta_keys run of the Kafka and NATS input tests: 20 records
# numbered 0-19 where record 7 carries too many headers. Arguments: output
# JSONL, dead-letter JSONL, --stats JSON, and the location text the drop's
# error must name (e.g. "kafka topic hdr partition").
import json
import sys

out_path, dead_path, stats_path, where = sys.argv[1:5]
out = sorted(json.loads(l)["payload"] for l in open(out_path))
assert out == [i for i in range(20) if i != 7], out
dead = [json.loads(l) for l in open(dead_path)]
assert len(dead) == 1 and str(dead[0]["payload"]) == "7", dead  # the raw record bytes
m = dead[0]["meta"]
assert m["tagproc_drop_reason"] == "invalid_input", m
assert where in m["tagproc_error"], m
assert "more than max_meta_keys (30)" in m["tagproc_error"], m
assert json.load(open(stats_path))["dropped"]["invalid_input"] == 1

#!/usr/bin/env python3
# Checks a run of tests/integration/run_nats_headers.sh: every message came
# back through the nats input with its headers as metadata, empty values and
# the keys after them included; the one with a malformed header block was
# dead-lettered as invalid_input naming where it is, and counted once.
# Arguments: output JSONL, dead-letter JSONL, --stats JSON, the location text
# the drop must name (e.g. "nats subject he.raw (stream HE sequence 6)").
import json
import sys

out_path, dead_path, stats_path, where = sys.argv[1:5]
want = {
    0: {"a": "1", "mid": "", "b": "2", "last": ""},
    1: {"k": "v", "e": ""},
    2: {"e": "", "k": "v"},
    3: {"e1": "", "e2": ""},
    10: {"X-A": "1", "X-Empty": "", "X-B": "2"},
    11: {"X-A": "1", "X-Last": ""},
    13: {},
    "": {"X-N": "14", "X-M": "", "X-Last": ""},
}
got = {}
for line in open(out_path):
    e = json.loads(line)
    got[e["payload"]] = {k: v for k, v in e["meta"].items() if not k.lower().startswith("nats")}  # nats_* fields, Nats-* headers of the JetStream output
bad = [(p, got.get(p), meta) for p, meta in want.items() if got.get(p) != meta]
assert not bad, "(payload, metadata read, metadata sent): %s" % bad
assert sorted(got, key=str) == sorted(want, key=str), sorted(got, key=str)
dead = [json.loads(l) for l in open(dead_path)]
assert len(dead) == 1 and str(dead[0]["payload"]) == "12", dead  # the payload kept
m = dead[0]["meta"]
assert m["tagproc_drop_reason"] == "invalid_input", m
assert where + ": header line 3 has no ':'" in m["tagproc_error"], m
assert json.load(open(stats_path))["dropped"]["invalid_input"] == 1

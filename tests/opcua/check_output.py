#!/usr/bin/env python3
"""Checks tagproc's JSON Lines output for tests/opcua/run_opcua.sh.
usage: check_output.py CHECK OUTPUT_FILE LOG_FILE
CHECK: types | counter-poll | counter-sub | counter-restart | uns.
Prints what is wrong and exits 1, or prints a one-line summary."""
import json
import sys

check, out_path, log_path = sys.argv[1:4]
msgs = [json.loads(line) for line in open(out_path, encoding="utf-8") if line.strip()]
log = open(log_path, encoding="utf-8", errors="replace").read()
problems = []


def expect(cond, text):
    if not cond:
        problems.append(text)


def by_name(name):
    return [m for m in msgs if m["meta"].get("opcua_tag_name") == name]


META_KEYS = ["opcua_source_timestamp", "opcua_server_timestamp", "opcua_attr_nodeid",
             "opcua_attr_nodeclass", "opcua_attr_browsename", "opcua_attr_description",
             "opcua_attr_accesslevel", "opcua_attr_datatype", "opcua_attr_statuscode",
             "opcua_tag_group", "opcua_tag_name", "opcua_tag_path", "opcua_tag_type",
             "opcua_node_id"]

# tag name -> (payload, tag type, datatype attribute)
TYPES = {
    "Scalar_Boolean": (True, "bool", "Boolean"), "Array_Boolean": ([True, False], "string", "Boolean"),
    "Scalar_Byte": (200, "number", "Byte"), "Array_Byte": ([1, 2, 255], "string", "Byte"),
    "Scalar_SByte": (-100, "number", "SByte"), "Array_SByte": ([-1, 0, 1], "string", "SByte"),
    "Scalar_Int16": (-30000, "number", "Int16"), "Array_Int16": ([-1, 2], "string", "Int16"),
    "Scalar_UInt16": (60000, "number", "UInt16"), "Array_UInt16": ([1, 65535], "string", "UInt16"),
    "Scalar_Int32": (-2000000000, "number", "Int32"), "Array_Int32": ([-5, 5], "string", "Int32"),
    "Scalar_UInt32": (4000000000, "number", "UInt32"),
    "Array_UInt32": ([0, 4294967295], "string", "UInt32"),
    "Scalar_Int64": (-2, "number", "Int64"), "Array_Int64": ([1, 2], "string", "Int64"),
    "Scalar_UInt64": (123456789, "number", "UInt64"),
    "Array_UInt64": ([1, 4294967296], "string", "UInt64"),
    "Scalar_Float": (1.5, "number", "Float"), "Array_Float": ([0.25, -2.5], "string", "Float"),
    "Scalar_Double": (3.141592653589793, "number", "Double"),
    "Array_Double": ([1e-7, 2.5e10], "string", "Double"),
    "Scalar_String": ('he said "hi"', "string", "String"), "Array_String": (["a", "b"], "string", "String"),
    "Scalar_DateTime": ("2024-03-12T10:00:00.123000Z", "string", "DateTime"),
    "Array_DateTime": (["2020-01-01T00:00:00.000000Z", "2021-01-01T00:00:00.000000Z"], "string",
                       "DateTime"),
    "Scalar_Guid": ("72962B91-FA75-4AE6-8D28-B404DC7DAF63", "string", "Guid"),
    "Array_Guid": (["72962B91-FA75-4AE6-8D28-B404DC7DAF63"], "string", "Guid"),
    "Scalar_ByteString": ("aGVsbG8=", "string", "ByteString"),
    "Array_ByteString": (["AQID"], "string", "ByteString"),
    "Scalar_XmlElement": ("<a>1</a>", "string", "XmlElement"),
    "Array_XmlElement": (["<b/>"], "string", "XmlElement"),
    "Scalar_NodeId": ("ns=2;s=Tag1", "string", "NodeId"), "Array_NodeId": (["i=85"], "string", "NodeId"),
    "Scalar_ExpandedNodeId": ("ns=2;i=7", "string", "ExpandedNodeId"),
    "Array_ExpandedNodeId": (["i=84"], "string", "ExpandedNodeId"),
    "Scalar_StatusCode": (0x808C0000, "number", "StatusCode"),
    "Array_StatusCode": ([0], "string", "StatusCode"),
    "Scalar_QualifiedName": ({"NamespaceIndex": 2, "Name": "qn"}, "string", "QualifiedName"),
    "Array_QualifiedName": ([{"NamespaceIndex": 0, "Name": "a"}], "string", "QualifiedName"),
    "Scalar_LocalizedText": ({"Locale": "en", "Text": "hello"}, "string", "LocalizedText"),
    "Array_LocalizedText": ([{"Locale": None, "Text": "x"}], "string", "LocalizedText"),
    "Scalar_Enumeration": (2, "number", "Enumeration"), "Scalar_Number": (4.5, "number", "Number"),
    "Scalar_Integer": (42, "number", "Integer"), "Scalar_UInteger": (7, "number", "UInteger"),
    "Scalar_Duration": (250.5, "number", "Duration"),
    "Scalar_UtcTime": ("2024-01-02T03:04:05.000000Z", "string", "UtcTime"),
    "Scalar_LocaleId": ("de-DE", "string", "LocaleId"), "Scalar_Variant": (8.25, "number", "Variant"),
    "Scalar_ByteArray": ([10, 20], "string", "Byte"),
}


def check_types():
    # benthos-umh docs: subscribing to ns=2;s=FolderNode gives this table
    table = {"Tag1": "FolderNode", "Tag2": "FolderNode", "Tag3": "FolderNode.SubFolder",
             "Tag4": "FolderNode.SubFolder"}
    for name, group in table.items():
        got = by_name(name)
        expect(got, f"no message for {name}")
        for m in got:
            expect(m["meta"]["opcua_tag_group"] == group,
                   f"{name}: tag_group {m['meta']['opcua_tag_group']!r}, want {group!r}")
            expect(m["meta"]["opcua_tag_path"] == group, f"{name}: tag_path {m['meta']['opcua_tag_path']!r}")
    for name, (payload, ttype, dtype) in TYPES.items():
        got = by_name(name)
        expect(got, f"no message for {name}")
        for m in got[:1]:
            expect(m["payload"] == payload, f"{name}: payload {m['payload']!r}, want {payload!r}")
            expect(m["meta"]["opcua_tag_type"] == ttype, f"{name}: tag_type {m['meta']['opcua_tag_type']}")
            expect(m["meta"]["opcua_attr_datatype"] == dtype,
                   f"{name}: datatype {m['meta']['opcua_attr_datatype']}, want {dtype}")
            expect(m["meta"]["opcua_tag_group"] == "DataTypes", f"{name}: group")
    for m in msgs:
        missing = [k for k in META_KEYS if k not in m["meta"]]
        expect(not missing, f"{m['meta'].get('opcua_tag_name')}: missing metadata {missing}")
        expect(m["meta"].get("opcua_attr_nodeclass") == "NodeClassVariable", "nodeclass")
        expect(m["meta"].get("opcua_node_id") == m["meta"].get("opcua_attr_nodeid"), "node id")
    d = by_name("Scalar_Double")
    if d:
        meta = d[0]["meta"]
        expect(meta["opcua_attr_description"] == "test variable Scalar_Double",
               f"description {meta['opcua_attr_description']!r}")
        expect(meta["opcua_attr_accesslevel"] == "AccessLevelTypeCurrentRead|AccessLevelTypeCurrentWrite",
               f"accesslevel {meta['opcua_attr_accesslevel']!r}")
        expect(meta["opcua_attr_browsename"] == "Scalar_Double", "browsename")
        expect(meta["opcua_node_id"] == "ns=2;s=Scalar_Double", "node id text")
        expect(meta["opcua_attr_statuscode"] == "Good", "status Good")
        expect(meta["opcua_source_timestamp"].endswith("Z") and len(meta["opcua_source_timestamp"]) == 27,
               f"timestamp form {meta['opcua_source_timestamp']}")
    names = {m["meta"]["opcua_tag_name"] for m in msgs}
    for skipped in ("EURange", "NullType"):
        expect(skipped not in names, f"{skipped} must be skipped")
    bad = by_name("BadSensor")
    expect(bad and bad[0]["meta"]["opcua_attr_statuscode"] == "BadSensorFailure",
           "BadSensor delivered with status BadSensorFailure")
    expect(by_name("Odd_Name_with_dots"), "sanitized tag name Odd_Name_with_dots")
    expect("Matrix" not in names, "the 2-D array is not delivered")
    expect(log.count("opcua_node_id=ns=2;s=Matrix: unsupported value type 11 (multi-dimensional") == 1,
           "the 2-D array is reported once")
    expect(len(names) == 4 + len(TYPES) + 3, f"{len(names)} distinct tags: {sorted(names)}")
    return f"{len(msgs)} messages, {len(names)} tags"


def counter_values(node="ns=2;s=Counter"):
    return [m["payload"] for m in msgs if m["meta"]["opcua_node_id"] == node]


def check_counter_poll():  # PollCounter: steps only once read (server.js)
    vals = counter_values("ns=2;s=PollCounter")
    expect(len(vals) >= 100, f"only {len(vals)} polls")
    distinct = [v for i, v in enumerate(vals) if i == 0 or v != vals[i - 1]]
    expect(all(b == a + 1 for a, b in zip(distinct, distinct[1:])), f"not consecutive: {distinct}")
    expect(len(distinct) >= 10, f"only {len(distinct)} changes seen")
    return f"{len(vals)} polls, {len(distinct)} changes, in order"


def check_counter_sub():
    vals = counter_values()
    expect(len(vals) >= 10, f"only {len(vals)} notifications")
    expect(all(b == a + 1 for a, b in zip(vals, vals[1:])), f"not every change once in order: {vals}")
    for name in ("Tag1", "Tag2", "Tag3", "Tag4"):
        expect(len(by_name(name)) == 1, f"{name}: {len(by_name(name))} notifications, want 1")
    return f"{len(vals)} notifications {vals[0]}..{vals[-1]}" if vals else "none"


def check_counter_restart():
    vals = counter_values()
    drops = [i for i, (a, b) in enumerate(zip(vals, vals[1:])) if b <= a]
    expect(len(drops) == 1, f"want exactly one restart of the counter, got {len(drops)}: {vals}")
    if len(drops) == 1:
        after = vals[drops[0] + 1:]
        expect(len(after) >= 10, f"only {len(after)} values after the restart")
        expect(all(b == a + 1 for a, b in zip(after, after[1:])), f"after restart not in order: {after}")
    return f"{len(vals)} values across the restart"


def check_uns():
    topics = {m["meta"].get("topic") for m in msgs}
    base = "umh.v1.enterprise.plant1.machiningArea.cnc-line.cnc5.plc123._historian."
    for want in ("FolderNode.Tag1", "FolderNode.Tag2", "FolderNode.SubFolder.Tag3",
                 "FolderNode.SubFolder.Tag4", "counters.Counter"):
        expect(base + want in topics, f"no topic {base + want}; got {sorted(t for t in topics if t)}")
    c = [m for m in msgs if m["meta"].get("topic") == base + "counters.Counter"]
    expect(c and isinstance(c[0]["payload"]["value"], int), "counter value is a number")
    expect(c and "timestamp_ms" in c[0]["payload"], "payload has timestamp_ms")
    return f"{len(msgs)} UNS messages, {len(topics)} topics"


summary = {"types": check_types, "counter-poll": check_counter_poll, "counter-sub": check_counter_sub,
           "counter-restart": check_counter_restart, "uns": check_uns}[check]()
if problems:
    print("\n".join(problems[:20]))
    sys.exit(1)
print(summary)

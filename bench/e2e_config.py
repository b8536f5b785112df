"""Prints the end-to-end benchmark config: the `seed` workload's tag_processor
(the same rules as `tagproc bench --workload seed`) between a JSONL file input
and a JSONL file output. Usage: e2e_config.py IN.jsonl OUT.jsonl THREADS"""
import sys

src, dst, threads = sys.argv[1:4]
conds = "".join(
    '          - if: msg.meta.opcua_node_id === "ns=1;i=%d"\n'
    "            then: |\n"
    '              msg.meta.virtual_path = "axis.n%d";\n'
    "              return msg;\n" % (2200 + i, i)
    for i in range(3)
)
print(
    f"""input:
  file: {{path: "{src}"}}
pipeline:
  threads: {threads}
  processors:
    - tag_processor:
        defaults: |
          msg.meta.location_path = "enterprise.plant1.machiningArea.cnc-line.cnc5.plc123";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = msg.meta.opcua_tag_name;
          return msg;
        conditions:
{conds}        advancedProcessing: |
          if (typeof msg.payload === "number") msg.payload = msg.payload * 2;
          return msg;
output:
  file: {{path: "{dst}", mode: truncate}}"""
)

"""Summarises bench/results.jsonl (one JSON object per run) as medians per
label, checks the issue-4 targets as ratios within this run, and writes
bench/results.json. Usage: report.py RESULTS.jsonl"""
import json
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    runs[d["label"]].append(d)

med = {}
for label, rs in runs.items():
    m = dict(rs[0])
    for k in ("msgs_per_sec", "cpu_us_per_msg", "peak_rss_kb"):
        m[k] = statistics.median(r[k] for r in rs)
    m["runs"] = len(rs)
    med[label] = m

print(f"{'label':16} {'threads':>7} {'msgs/s':>12} {'cpu us/msg':>11} {'comp/batch':>10} "
      f"{'vms/batch':>9} {'peak RSS KB':>11} {'KB/worker':>9}")
for label, m in med.items():
    print(f"{label:16} {m['threads']:>7} {m['msgs_per_sec']:>12.0f} {m['cpu_us_per_msg']:>11.3f} "
          f"{m.get('compilations_per_batch', 0):>10.2f} {m.get('vms_per_batch', 0):>9.2f} "
          f"{m['peak_rss_kb']:>11.0f} {m.get('memory_per_worker_kb', -1):>9}")


def ratio(a, b):
    return med[a]["msgs_per_sec"] / med[b]["msgs_per_sec"] if a in med and b in med else float("nan")


checks = [
    ("seed pooled vs naive >= 20x", ratio("seed-pooled", "seed-naive"), 20),
    ("seed pooled 1 thread >= 1,000,000 msg/s", med["seed-pooled"]["msgs_per_sec"] / 1e6, 1),
    ("e2e file->file 1 thread >= 500,000 msg/s", med.get("e2e-1t", {}).get("msgs_per_sec", 0) / 5e5, 1),
    ("e2e 2 threads >= 1.7x 1 thread", ratio("e2e-2t", "e2e-1t"), 1.7),
    ("production within 1.3x of seed per message (cpu)",
     1.3 * med["seed-pooled"]["cpu_us_per_msg"] / med["production"]["cpu_us_per_msg"], 1),
    ("seed peak RSS <= 32 MB", 32768 / med["seed-pooled"]["peak_rss_kb"], 1),
    ("memory per worker VM <= 200 KB", 200 / max(1, med["seed-pooled"].get("memory_per_worker_kb", 1)), 1),
]
# Where the CPU of a pooled `seed` message goes, by difference between
# workloads that add one layer each (same run, medians):
#   passthrough  input + pipeline + output, no processor        -> I/O
#   marshal      + msg into JS and back (nodered_js return msg) -> marshalling
#   minimal      + tag_processor defaults + UNS output          -> output construction
#   seed         + 3 conditions + advancedProcessing            -> JS execution
# JS compilation happens only at start-up in pooled mode (0 per message);
# in naive mode it is most of the difference to pooled.
if all(k in med for k in ("passthrough", "marshal", "minimal", "seed-pooled")):
    cpu = {k: med[k]["cpu_us_per_msg"] for k in ("passthrough", "marshal", "minimal", "seed-pooled")}
    total = cpu["seed-pooled"]
    parts = [
        ("I/O and pipeline", cpu["passthrough"]),
        ("marshalling", cpu["marshal"] - cpu["passthrough"]),
        ("output construction", cpu["minimal"] - cpu["marshal"]),
        ("JS execution", cpu["seed-pooled"] - cpu["minimal"]),
        ("JS compilation", 0.0),
    ]
    print()
    print("CPU share of a pooled seed message (%.3f us, by workload difference;" % total)
    print("differences of noisy medians: a part near zero can come out negative - use")
    print("callgrind for exact shares, see docs/PERFORMANCE.md):")
    for name, us in parts:
        print(f"  {name:22} {us:8.3f} us  {100 * us / total:5.1f}%")
    if "seed-naive" in med:
        naive = med["seed-naive"]["cpu_us_per_msg"]
        print(f"  naive mode: {naive:.1f} us/msg, of which compile + VM creation ~{naive - total:.1f} us "
              f"({100 * (naive - total) / naive:.0f}%)")
print()
for name, value, target in checks:
    print(f"{'MET ' if value >= target else 'MISS'}  {name}  (measured ratio {value:.2f} vs {target})")
json.dump(med, open("bench/results.json", "w"), indent=1)

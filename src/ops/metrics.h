/* Rendering of a pipeline's metrics registry (core/metrics.h): the
 * Prometheus text exposition (docs/OPERATIONS.md lists the names) and the
 * JSON the Topic Browser reads, plus the process's resident set size. */
#ifndef TP_OPS_METRICS_H
#define TP_OPS_METRICS_H

#include <stdint.h>

#include "core/buf.h"
#include "core/metrics.h"

/* Writes every series of m in Prometheus text format: input / output /
 * processor message counts (plugin names given by the caller, may be NULL),
 * drops, JS counters, latency, RSS, reloads and per-rule series. */
int tp_metrics_write(struct tp_metrics *m, struct tp_buf *out, const char *input_plugin,
                     const char *output_plugin);

/* For the Topic Browser: resident set size, latency totals, and the
 * per-processor / per-rule counters as JSON ({"enabled":B,"rules":[...]}). */
long tp_metrics_rss_bytes(void);
void tp_metrics_latency_totals(const struct tp_metrics *m, uint64_t *sum_ns, uint64_t *count);
int tp_metrics_rules_json(struct tp_metrics *m, struct tp_buf *out);

#endif

/* A pipeline's counters (atomic): messages received / processed, drops by
 * reason, JS programs compiled and VMs created. Each pipeline owns one in its
 * metrics registry (tp_metrics_stats); written as JSON by --stats. */
#ifndef TP_STATS_H
#define TP_STATS_H

#include <stdint.h>

#include "core/drop.h"

struct tp_stats {
    uint64_t received;
    uint64_t processed; /* messages handed to the output */
    uint64_t dropped[TP_DROP_REASON_COUNT];
    uint64_t programs_compiled;
    uint64_t vms_created;
};

/* Counts n in st->field; st NULL (no pipeline: lint, rule tests): nothing. */
#define TP_STAT_ADD(st, field, n)                                                                  \
    do {                                                                                           \
        struct tp_stats *stat_ = (st);                                                             \
        if (stat_)                                                                                 \
            __atomic_fetch_add(&stat_->field, (uint64_t)(n), __ATOMIC_RELAXED);                    \
    } while (0)
/* st->field, 0 for st NULL. */
#define TP_STAT_GET(st, field) ((st) ? __atomic_load_n(&(st)->field, __ATOMIC_RELAXED) : 0)

/* A consistent-enough copy of st (each field read atomically; zeros for NULL). */
void tp_stats_snapshot(const struct tp_stats *st, struct tp_stats *out);

/* Writes {"received":N,"processed":N,"dropped":{...},"programs_compiled":N,"vms_created":N}. */
int tp_stats_write_file(const struct tp_stats *st, const char *path);

#endif

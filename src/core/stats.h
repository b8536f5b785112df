/* Process-wide counters (atomic): messages received / processed, drops by
 * reason, JS programs compiled and VMs created. Written as JSON by --stats. */
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

extern struct tp_stats tp_stats;

#define TP_STAT_ADD(field, n) __atomic_fetch_add(&tp_stats.field, (uint64_t)(n), __ATOMIC_RELAXED)
#define TP_STAT_GET(field) __atomic_load_n(&tp_stats.field, __ATOMIC_RELAXED)

/* Writes {"received":N,"processed":N,"dropped":{...},"programs_compiled":N,"vms_created":N}. */
int tp_stats_write_file(const char *path);

#endif

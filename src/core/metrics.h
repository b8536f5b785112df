/* The metrics registry of one pipeline: per-rule counters and time
 * histograms kept per worker (one writer, no atomics on the hot path) and
 * merged when read, drops by reason and stage, end-to-end latency, reloads
 * and dead-letter records. The pipeline owns one (tp_pipeline_metrics); the
 * operations layer renders it (ops/metrics.h: Prometheus text, JSON). */
#ifndef TP_CORE_METRICS_H
#define TP_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/drop.h"

/* ---- ticks: a cheap monotonic clock for per-rule timing ---- */

static inline uint64_t tp_metrics_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return (uint64_t)tp_mono_ns();
#endif
}

/* Nanoseconds per tick (calibrated once per process, on first use). */
double tp_metrics_tick_ns(void);

/* ---- per-rule counters ---- */

/* Upper bounds of the rule time histogram in seconds (+Inf is implicit). */
#define TP_RULE_BUCKETS 12
extern const double tp_rule_bucket_le[TP_RULE_BUCKETS];
/* The same bounds in ticks, set with the calibration (tp_metrics_tick_ns). */
extern uint64_t tp_rule_bucket_ticks[TP_RULE_BUCKETS];

struct tp_rule_ctr {
    uint64_t evals, matches, errors, timeouts, ticks;
    uint64_t hist[TP_RULE_BUCKETS + 1];
};

struct tp_metrics;
struct tp_stats;

/* One worker's counters for one processor: rules plus messages in/out. Only
 * the owning worker thread writes; readers use relaxed loads. */
struct tp_rule_block {
    struct tp_rule_ctr *rules;
    size_t n;
    uint64_t msgs_in, msgs_out;
    uint64_t sample; /* worker-private: messages seen, for timing 1 in TP_RULE_SAMPLE */
    size_t *series;  /* internal: series index of each rule, then of the processor */
    struct tp_metrics *owner;
    struct tp_rule_block *next;
};

/* Single-writer increment: a plain add, stored so concurrent readers see a whole value. */
#define TP_MET_ADD(field, v) __atomic_store_n(&(field), (field) + (uint64_t)(v), __ATOMIC_RELAXED)

/* A registry; per-rule metrics are kept when rules_on is 1 (the pipeline
 * decides: on with `http`, or as the command line says). NULL on allocation
 * failure. Free with tp_metrics_free once no block is alive. */
struct tp_metrics *tp_metrics_new(int rules_on);
void tp_metrics_free(struct tp_metrics *m);
/* 0 for m NULL. */
int tp_metrics_rules_enabled(const struct tp_metrics *m);
/* The pipeline's counters kept in m (core/stats.h: received, processed,
 * drops by reason, JS programs compiled, VMs created); NULL for m NULL. */
struct tp_stats *tp_metrics_stats(struct tp_metrics *m);

/* Registers a block for processor `proc` (label, e.g.
 * "pipeline.processors[0].tag_processor") of plugin `plugin` with n rules
 * named rules[i] ("defaults", "conditions[3]", "advancedProcessing"; strings
 * copied). NULL when m is NULL, per-rule metrics are off, or on allocation
 * failure. Counts survive the block: tp_metrics_block_free folds them into
 * the totals of m. */
struct tp_rule_block *tp_metrics_block_new(struct tp_metrics *m, const char *proc,
                                           const char *plugin, size_t n, const char *const *rules);
void tp_metrics_block_free(struct tp_rule_block *b);

/* Rule timing reads the clock for one message in TP_RULE_SAMPLE per worker
 * (the first included) and weighs each observation by TP_RULE_SAMPLE, so the
 * histogram's _count and _sum estimate all evaluations and the total time
 * while a message pays ~1/8 of the clock reads (~20 ns each on a VM). The
 * other counters are exact. */
#define TP_RULE_SAMPLE 8

/* 1 when the message about to run through block b is timed. */
static inline int tp_metrics_sample(struct tp_rule_block *b)
{
    return b->sample++ % TP_RULE_SAMPLE == 0;
}

/* Records a timed evaluation of rule c that took `ticks` (weighted). */
static inline void tp_metrics_rule_time(struct tp_rule_ctr *c, uint64_t ticks)
{
    size_t b = 0;
    while (b < TP_RULE_BUCKETS && ticks > tp_rule_bucket_ticks[b])
        b++;
    TP_MET_ADD(c->ticks, ticks * TP_RULE_SAMPLE);
    TP_MET_ADD(c->hist[b], TP_RULE_SAMPLE);
}

/* The rule a stage belongs to: "conditions[2].then" -> "conditions[2]". */
void tp_metrics_rule_of_stage(const char *stage, char *out, size_t size);

/* ---- pipeline-level counters (atomic; per batch or per drop; m may be NULL) ---- */

void tp_metrics_drop(struct tp_metrics *m, enum tp_drop_reason reason, const char *stage);
/* End-to-end latency of n messages that took ns nanoseconds from read to write. */
void tp_metrics_latency(struct tp_metrics *m, uint64_t ns, uint64_t n);
void tp_metrics_reload(struct tp_metrics *m, int ok);
void tp_metrics_dead_letter_sent(struct tp_metrics *m, uint64_t n);

/* ---- reading (any thread) ---- */

/* Upper bounds of the latency histogram in seconds (+Inf is implicit). */
#define TP_LAT_BUCKETS 10
extern const double tp_lat_bucket_le[TP_LAT_BUCKETS];

struct tp_metrics_totals {
    uint64_t lat_hist[TP_LAT_BUCKETS + 1]; /* per bucket, not cumulative */
    uint64_t lat_sum_ns, lat_count;
    uint64_t reloads_ok, reloads_failed, dead_letter_sent;
};
void tp_metrics_totals(const struct tp_metrics *m, struct tp_metrics_totals *t);

/* One labelled series summed over live blocks and freed ones: a processor
 * (rule NULL: in/out set) or one of its rules (c set). */
struct tp_metrics_series {
    const char *proc, *plugin, *rule;
    struct tp_rule_ctr c;
    uint64_t in, out;
};
/* Calls fn for every series in creation order, under the registry's lock
 * (fn must not call back into m). */
void tp_metrics_each_series(struct tp_metrics *m,
                            void (*fn)(void *ud, const struct tp_metrics_series *s), void *ud);
/* Calls fn for every (reason, stage) drop counter in use. */
void tp_metrics_each_drop(struct tp_metrics *m,
                          void (*fn)(void *ud, enum tp_drop_reason reason, const char *stage,
                                     uint64_t count),
                          void *ud);

/* ---- connector counters (process-wide) ----
 * A few named counters a connector adds to (name and help are string
 * literals, kept by pointer), rendered with the pipeline's series; n = 0
 * makes the series appear. At most TP_METRICS_NAMED names. */
#define TP_METRICS_NAMED 32
void tp_metrics_count(const char *name, const char *help, uint64_t n);
/* Calls fn for every named counter, in first-use order. */
void tp_metrics_each_named(void (*fn)(void *ud, const char *name, const char *help, uint64_t v),
                           void *ud);

#endif

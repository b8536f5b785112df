/* Operational metrics: per-rule counters and time histograms kept per worker
 * (one writer, no atomics on the hot path) and merged at scrape time, drops by
 * reason and stage, end-to-end latency, reloads, and the Prometheus text
 * exposition of all of it (docs/OPERATIONS.md lists the names). */
#ifndef TP_METRICS_H
#define TP_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
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

/* Nanoseconds per tick (calibrated once, on first use). */
double tp_metrics_tick_ns(void);

/* ---- per-rule counters ---- */

/* Upper bounds of the rule time histogram in seconds (+Inf is implicit). */
#define TP_RULE_BUCKETS 12
extern const double tp_rule_bucket_le[TP_RULE_BUCKETS];
/* The same bounds in ticks, set by tp_metrics_rules_enable. */
extern uint64_t tp_rule_bucket_ticks[TP_RULE_BUCKETS];

struct tp_rule_ctr {
    uint64_t evals, matches, errors, timeouts, ticks;
    uint64_t hist[TP_RULE_BUCKETS + 1];
};

/* One worker's counters for one processor: rules plus messages in/out. Only
 * the owning worker thread writes; scrapes read with relaxed loads. */
struct tp_rule_block {
    struct tp_rule_ctr *rules;
    size_t n;
    uint64_t msgs_in, msgs_out;
    uint64_t sample; /* worker-private: messages seen, for timing 1 in TP_RULE_SAMPLE */
    size_t *series;  /* internal: series index of each rule, then of the processor */
    struct tp_rule_block *next;
};

/* Single-writer increment: a plain add, stored so concurrent readers see a whole value. */
#define TP_MET_ADD(field, v) __atomic_store_n(&(field), (field) + (uint64_t)(v), __ATOMIC_RELAXED)

/* Per-rule metrics are on when the config has `http`, or when the
 * environment variable TAGPROC_RULE_METRICS is 1 (0 turns them off). */
void tp_metrics_rules_enable(int on);
int tp_metrics_rules_enabled(void);

/* Registers a block for processor `proc` (label, e.g.
 * "pipeline.processors[0].tag_processor") of plugin `plugin` with n rules
 * named rules[i] ("defaults", "conditions[3]", "advancedProcessing"; strings
 * copied). NULL when per-rule metrics are off or on allocation failure.
 * Counts survive the block: tp_metrics_block_free folds them into totals. */
struct tp_rule_block *tp_metrics_block_new(const char *proc, const char *plugin, size_t n,
                                           const char *const *rules);
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

/* ---- pipeline-level metrics (atomic; called per batch or per drop) ---- */

void tp_metrics_drop(enum tp_drop_reason reason, const char *stage);
/* End-to-end latency of n messages that took ns nanoseconds from read to write. */
void tp_metrics_latency(uint64_t ns, uint64_t n);
void tp_metrics_reload(int ok);
void tp_metrics_dead_letter_sent(uint64_t n);

/* Connector counters: a few process-wide named counters a connector adds to
 * (name and help are string literals, kept by pointer), written with the other
 * series; n = 0 makes the series appear. At most TP_METRICS_NAMED names. */
#define TP_METRICS_NAMED 32
void tp_metrics_count(const char *name, const char *help, uint64_t n);

/* Writes every process-wide series in Prometheus text format: input /
 * output / processor message counts (plugin names given by the caller, may be
 * NULL), drops, JS counters, latency, RSS, reloads and per-rule series. */
int tp_metrics_write(struct tp_buf *out, const char *input_plugin, const char *output_plugin);

/* For the Topic Browser: resident set size, latency totals, and the
 * per-processor / per-rule counters as JSON ({"enabled":B,"rules":[...]}). */
long tp_metrics_rss_bytes(void);
void tp_metrics_latency_totals(uint64_t *sum_ns, uint64_t *count);
int tp_metrics_rules_json(struct tp_buf *out);

/* Clears every counter and series (tests). No block may be alive. */
void tp_metrics_reset(void);

#endif

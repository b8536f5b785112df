/* The metrics registry (see metrics.h). Per-rule counters live in per-worker
 * blocks written by one thread each; a reader sums live blocks and the
 * totals of freed ones (a reload frees blocks, the series keep counting).
 * Drops and latency are rarer and use atomics. */
#include "core/metrics.h"
#include "core/stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double tp_rule_bucket_le[TP_RULE_BUCKETS] = {1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5,
                                                   1e-4, 2.5e-4, 1e-3, 1e-2, 0.1,    1};
uint64_t tp_rule_bucket_ticks[TP_RULE_BUCKETS];
const double tp_lat_bucket_le[TP_LAT_BUCKETS] = {1e-4, 5e-4, 1e-3, 5e-3, 1e-2,
                                                 5e-2, 0.1,  0.5,  1,    5};

/* One labelled series: a processor (rule == NULL) or one of its rules. */
struct series {
    char *proc, *plugin, *rule;
    struct tp_rule_ctr dead; /* totals of freed blocks */
    uint64_t dead_in, dead_out;
};

#define DROP_SLOTS 512
struct drop_slot {
    int used; /* published with release once reason/stage are set */
    int reason;
    char stage[64];
    uint64_t count;
};

struct tp_metrics {
    pthread_mutex_t lock;
    struct series *series;
    size_t n_series, cap_series;
    struct tp_rule_block *blocks;
    int rules_on;
    struct drop_slot drops[DROP_SLOTS];
    uint64_t lat_hist[TP_LAT_BUCKETS + 1], lat_sum_ns, lat_count;
    uint64_t reloads_ok, reloads_failed, dead_letter_sent;
    struct tp_stats stats;
};

static pthread_mutex_t named_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *name, *help;
    uint64_t value;
} named[TP_METRICS_NAMED];
static size_t n_named;

static pthread_once_t calib_once = PTHREAD_ONCE_INIT;
static double tick_ns = 1.0;

/* Measures the tick rate against CLOCK_MONOTONIC over a few milliseconds. */
static void calibrate(void)
{
#if defined(__x86_64__) || defined(__i386__)
    int64_t n0 = tp_mono_ns();
    uint64_t t0 = tp_metrics_ticks();
    int64_t n1;
    do
        n1 = tp_mono_ns();
    while (n1 - n0 < 5000000);
    uint64_t t1 = tp_metrics_ticks();
    if (t1 > t0)
        tick_ns = (double)(n1 - n0) / (double)(t1 - t0);
#endif
    for (int i = 0; i < TP_RULE_BUCKETS; i++)
        tp_rule_bucket_ticks[i] = (uint64_t)(tp_rule_bucket_le[i] * 1e9 / tick_ns);
}

double tp_metrics_tick_ns(void)
{
    pthread_once(&calib_once, calibrate);
    return tick_ns;
}

struct tp_metrics *tp_metrics_new(int rules_on)
{
    struct tp_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->rules_on = rules_on != 0;
    if (m->rules_on)
        tp_metrics_tick_ns();
    return m;
}

void tp_metrics_free(struct tp_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_series; i++) {
        free(m->series[i].proc);
        free(m->series[i].plugin);
        free(m->series[i].rule);
    }
    free(m->series);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int tp_metrics_rules_enabled(const struct tp_metrics *m)
{
    return m && m->rules_on;
}

struct tp_stats *tp_metrics_stats(struct tp_metrics *m)
{
    return m ? &m->stats : NULL;
}

void tp_metrics_rule_of_stage(const char *stage, char *out, size_t size)
{
    size_t len = strlen(stage);
    if (strncmp(stage, "conditions[", 11) == 0) {
        const char *dot = strchr(stage, '.');
        if (dot)
            len = (size_t)(dot - stage);
    }
    snprintf(out, size, "%.*s", (int)len, stage);
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Index of the series (proc, rule), created when missing; m->lock held. */
static long series_find(struct tp_metrics *m, const char *proc, const char *plugin,
                        const char *rule)
{
    for (size_t i = 0; i < m->n_series; i++)
        if (strcmp(m->series[i].proc, proc) == 0 && same(m->series[i].rule, rule))
            return (long)i;
    if (m->n_series == m->cap_series) {
        size_t nc = m->cap_series ? m->cap_series * 2 : 16;
        struct series *v = realloc(m->series, nc * sizeof(*v));
        if (!v)
            return -1;
        m->series = v;
        m->cap_series = nc;
    }
    struct series *s = &m->series[m->n_series];
    memset(s, 0, sizeof(*s));
    s->proc = strdup(proc);
    s->plugin = strdup(plugin ? plugin : "");
    s->rule = rule ? strdup(rule) : NULL;
    if (!s->proc || !s->plugin || (rule && !s->rule)) {
        free(s->proc);
        free(s->plugin);
        free(s->rule);
        return -1;
    }
    return (long)m->n_series++;
}

struct tp_rule_block *tp_metrics_block_new(struct tp_metrics *m, const char *proc,
                                           const char *plugin, size_t n, const char *const *rules)
{
    if (!tp_metrics_rules_enabled(m))
        return NULL;
    struct tp_rule_block *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->n = n;
    b->owner = m;
    b->rules = calloc(n ? n : 1, sizeof(*b->rules));
    b->series = calloc(n + 1, sizeof(*b->series));
    if (!b->rules || !b->series)
        goto fail;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i <= n; i++) {
        long k = series_find(m, proc, plugin, i < n ? rules[i] : NULL);
        if (k < 0) {
            pthread_mutex_unlock(&m->lock);
            goto fail;
        }
        b->series[i] = (size_t)k;
    }
    b->next = m->blocks;
    m->blocks = b;
    pthread_mutex_unlock(&m->lock);
    return b;
fail:
    free(b->rules);
    free(b->series);
    free(b);
    return NULL;
}

static void ctr_add(struct tp_rule_ctr *to, const struct tp_rule_ctr *from)
{
    to->evals += __atomic_load_n(&from->evals, __ATOMIC_RELAXED);
    to->matches += __atomic_load_n(&from->matches, __ATOMIC_RELAXED);
    to->errors += __atomic_load_n(&from->errors, __ATOMIC_RELAXED);
    to->timeouts += __atomic_load_n(&from->timeouts, __ATOMIC_RELAXED);
    to->ticks += __atomic_load_n(&from->ticks, __ATOMIC_RELAXED);
    for (int i = 0; i <= TP_RULE_BUCKETS; i++)
        to->hist[i] += __atomic_load_n(&from->hist[i], __ATOMIC_RELAXED);
}

void tp_metrics_block_free(struct tp_rule_block *b)
{
    if (!b)
        return;
    struct tp_metrics *m = b->owner;
    pthread_mutex_lock(&m->lock);
    for (struct tp_rule_block **pp = &m->blocks; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    for (size_t i = 0; i < b->n; i++)
        ctr_add(&m->series[b->series[i]].dead, &b->rules[i]);
    m->series[b->series[b->n]].dead_in += b->msgs_in;
    m->series[b->series[b->n]].dead_out += b->msgs_out;
    pthread_mutex_unlock(&m->lock);
    free(b->rules);
    free(b->series);
    free(b);
}

/* ---- drops, latency, reloads ---- */

static unsigned drop_hash(int reason, const char *stage)
{
    unsigned h = 2166136261u ^ (unsigned)reason;
    for (; *stage; stage++)
        h = (h ^ (unsigned char)*stage) * 16777619u;
    return h;
}

void tp_metrics_drop(struct tp_metrics *m, enum tp_drop_reason reason, const char *stage)
{
    if (!m)
        return;
    unsigned h = drop_hash((int)reason, stage);
    for (unsigned k = 0; k < DROP_SLOTS; k++) {
        struct drop_slot *s = &m->drops[(h + k) % DROP_SLOTS];
        if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE)) {
            pthread_mutex_lock(&m->lock);
            if (!s->used) {
                s->reason = (int)reason;
                snprintf(s->stage, sizeof(s->stage), "%s", stage);
                __atomic_store_n(&s->used, 1, __ATOMIC_RELEASE);
            }
            pthread_mutex_unlock(&m->lock);
        }
        if (s->reason == (int)reason && strncmp(s->stage, stage, sizeof(s->stage) - 1) == 0) {
            __atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

void tp_metrics_latency(struct tp_metrics *m, uint64_t ns, uint64_t n)
{
    if (!m)
        return;
    size_t b = 0;
    while (b < TP_LAT_BUCKETS && (double)ns > tp_lat_bucket_le[b] * 1e9)
        b++;
    __atomic_fetch_add(&m->lat_hist[b], n, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->lat_sum_ns, ns * n, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->lat_count, n, __ATOMIC_RELAXED);
}

void tp_metrics_reload(struct tp_metrics *m, int ok)
{
    if (m)
        __atomic_fetch_add(ok ? &m->reloads_ok : &m->reloads_failed, 1, __ATOMIC_RELAXED);
}

void tp_metrics_dead_letter_sent(struct tp_metrics *m, uint64_t n)
{
    if (m)
        __atomic_fetch_add(&m->dead_letter_sent, n, __ATOMIC_RELAXED);
}

/* ---- reading ---- */

void tp_metrics_totals(const struct tp_metrics *m, struct tp_metrics_totals *t)
{
    memset(t, 0, sizeof(*t));
    if (!m)
        return;
    for (int b = 0; b <= TP_LAT_BUCKETS; b++)
        t->lat_hist[b] = __atomic_load_n(&m->lat_hist[b], __ATOMIC_RELAXED);
    t->lat_sum_ns = __atomic_load_n(&m->lat_sum_ns, __ATOMIC_RELAXED);
    t->lat_count = __atomic_load_n(&m->lat_count, __ATOMIC_RELAXED);
    t->reloads_ok = __atomic_load_n(&m->reloads_ok, __ATOMIC_RELAXED);
    t->reloads_failed = __atomic_load_n(&m->reloads_failed, __ATOMIC_RELAXED);
    t->dead_letter_sent = __atomic_load_n(&m->dead_letter_sent, __ATOMIC_RELAXED);
}

/* Sum of series i over dead totals and live blocks; m->lock held. */
static void series_total(const struct tp_metrics *m, size_t i, struct tp_metrics_series *s)
{
    const struct series *se = &m->series[i];
    s->proc = se->proc;
    s->plugin = se->plugin;
    s->rule = se->rule;
    s->c = se->dead;
    s->in = se->dead_in;
    s->out = se->dead_out;
    for (struct tp_rule_block *b = m->blocks; b; b = b->next)
        for (size_t r = 0; r <= b->n; r++) {
            if (b->series[r] != i)
                continue;
            if (r < b->n)
                ctr_add(&s->c, &b->rules[r]);
            else {
                s->in += __atomic_load_n(&b->msgs_in, __ATOMIC_RELAXED);
                s->out += __atomic_load_n(&b->msgs_out, __ATOMIC_RELAXED);
            }
        }
}

void tp_metrics_each_series(struct tp_metrics *m,
                            void (*fn)(void *ud, const struct tp_metrics_series *s), void *ud)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_series; i++) {
        struct tp_metrics_series s;
        series_total(m, i, &s);
        fn(ud, &s);
    }
    pthread_mutex_unlock(&m->lock);
}

void tp_metrics_each_drop(struct tp_metrics *m,
                          void (*fn)(void *ud, enum tp_drop_reason reason, const char *stage,
                                     uint64_t count),
                          void *ud)
{
    if (!m)
        return;
    for (int i = 0; i < DROP_SLOTS; i++) {
        struct drop_slot *s = &m->drops[i];
        if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE))
            continue;
        fn(ud, (enum tp_drop_reason)s->reason, s->stage,
           __atomic_load_n(&s->count, __ATOMIC_RELAXED));
    }
}

void tp_metrics_count(const char *name, const char *help, uint64_t n)
{
    pthread_mutex_lock(&named_lock);
    size_t i = 0;
    while (i < n_named && strcmp(named[i].name, name) != 0)
        i++;
    if (i == n_named && n_named < TP_METRICS_NAMED) {
        named[i].name = name;
        named[i].help = help;
        named[i].value = 0;
        n_named++;
    }
    if (i < n_named)
        named[i].value += n;
    pthread_mutex_unlock(&named_lock);
}

void tp_metrics_each_named(void (*fn)(void *ud, const char *name, const char *help, uint64_t v),
                           void *ud)
{
    pthread_mutex_lock(&named_lock);
    for (size_t i = 0; i < n_named; i++)
        fn(ud, named[i].name, named[i].help, named[i].value);
    pthread_mutex_unlock(&named_lock);
}

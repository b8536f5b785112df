/* Metrics registry and Prometheus exposition (see metrics.h). Per-rule
 * counters live in per-worker blocks written by one thread each; a scrape
 * sums live blocks and the totals of freed ones (a reload frees blocks, the
 * series keep counting). Drops and latency are rarer and use atomics. */
#include "ops/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/stats.h"

const double tp_rule_bucket_le[TP_RULE_BUCKETS] = {1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5,
                                                   1e-4, 2.5e-4, 1e-3, 1e-2, 0.1,    1};
uint64_t tp_rule_bucket_ticks[TP_RULE_BUCKETS];

#define LAT_BUCKETS 10
static const double lat_le[LAT_BUCKETS] = {1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1, 5};

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

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *series;
static size_t n_series, cap_series;
static struct tp_rule_block *blocks;
static int rules_on = -1; /* -1: not decided yet (environment) */

static struct drop_slot drops[DROP_SLOTS];
static uint64_t lat_hist[LAT_BUCKETS + 1], lat_sum_ns, lat_count;
static uint64_t reloads_ok, reloads_failed, dead_letter_sent;

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

void tp_metrics_rules_enable(int on)
{
    const char *env = getenv("TAGPROC_RULE_METRICS");
    if (env && *env)
        on = strcmp(env, "0") != 0;
    if (on)
        tp_metrics_tick_ns();
    __atomic_store_n(&rules_on, on, __ATOMIC_RELAXED);
}

int tp_metrics_rules_enabled(void)
{
    int on = __atomic_load_n(&rules_on, __ATOMIC_RELAXED);
    if (on < 0) {
        const char *env = getenv("TAGPROC_RULE_METRICS");
        tp_metrics_rules_enable(env && strcmp(env, "1") == 0);
        on = __atomic_load_n(&rules_on, __ATOMIC_RELAXED);
    }
    return on;
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

/* Index of the series (proc, rule), created when missing; reg_lock held. */
static long series_find(const char *proc, const char *plugin, const char *rule)
{
    for (size_t i = 0; i < n_series; i++)
        if (strcmp(series[i].proc, proc) == 0 && same(series[i].rule, rule))
            return (long)i;
    if (n_series == cap_series) {
        size_t nc = cap_series ? cap_series * 2 : 16;
        struct series *v = realloc(series, nc * sizeof(*v));
        if (!v)
            return -1;
        series = v;
        cap_series = nc;
    }
    struct series *s = &series[n_series];
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
    return (long)n_series++;
}

struct tp_rule_block *tp_metrics_block_new(const char *proc, const char *plugin, size_t n,
                                           const char *const *rules)
{
    if (!tp_metrics_rules_enabled())
        return NULL;
    struct tp_rule_block *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->n = n;
    b->rules = calloc(n ? n : 1, sizeof(*b->rules));
    b->series = calloc(n + 1, sizeof(*b->series));
    if (!b->rules || !b->series)
        goto fail;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i <= n; i++) {
        long k = series_find(proc, plugin, i < n ? rules[i] : NULL);
        if (k < 0) {
            pthread_mutex_unlock(&reg_lock);
            goto fail;
        }
        b->series[i] = (size_t)k;
    }
    b->next = blocks;
    blocks = b;
    pthread_mutex_unlock(&reg_lock);
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
    pthread_mutex_lock(&reg_lock);
    for (struct tp_rule_block **pp = &blocks; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    for (size_t i = 0; i < b->n; i++)
        ctr_add(&series[b->series[i]].dead, &b->rules[i]);
    series[b->series[b->n]].dead_in += b->msgs_in;
    series[b->series[b->n]].dead_out += b->msgs_out;
    pthread_mutex_unlock(&reg_lock);
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

void tp_metrics_drop(enum tp_drop_reason reason, const char *stage)
{
    unsigned h = drop_hash((int)reason, stage);
    for (unsigned k = 0; k < DROP_SLOTS; k++) {
        struct drop_slot *s = &drops[(h + k) % DROP_SLOTS];
        if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE)) {
            pthread_mutex_lock(&reg_lock);
            if (!s->used) {
                s->reason = (int)reason;
                snprintf(s->stage, sizeof(s->stage), "%s", stage);
                __atomic_store_n(&s->used, 1, __ATOMIC_RELEASE);
            }
            pthread_mutex_unlock(&reg_lock);
        }
        if (s->reason == (int)reason && strncmp(s->stage, stage, sizeof(s->stage) - 1) == 0) {
            __atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

void tp_metrics_latency(uint64_t ns, uint64_t n)
{
    size_t b = 0;
    while (b < LAT_BUCKETS && (double)ns > lat_le[b] * 1e9)
        b++;
    __atomic_fetch_add(&lat_hist[b], n, __ATOMIC_RELAXED);
    __atomic_fetch_add(&lat_sum_ns, ns * n, __ATOMIC_RELAXED);
    __atomic_fetch_add(&lat_count, n, __ATOMIC_RELAXED);
}

void tp_metrics_reload(int ok)
{
    __atomic_fetch_add(ok ? &reloads_ok : &reloads_failed, 1, __ATOMIC_RELAXED);
}

void tp_metrics_dead_letter_sent(uint64_t n)
{
    __atomic_fetch_add(&dead_letter_sent, n, __ATOMIC_RELAXED);
}

/* ---- exposition ---- */

static void put_label(struct tp_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            tp_buf_putc(out, '\\');
        if (*s == '\n') {
            tp_buf_puts(out, "\\n");
            continue;
        }
        tp_buf_putc(out, *s);
    }
}

static void family(struct tp_buf *out, const char *name, const char *type, const char *help)
{
    tp_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter1(struct tp_buf *out, const char *name, const char *help, uint64_t v)
{
    family(out, name, "counter", help);
    tp_buf_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static struct {
    const char *name, *help;
    uint64_t value;
} named[TP_METRICS_NAMED];
static size_t n_named;

void tp_metrics_count(const char *name, const char *help, uint64_t n)
{
    pthread_mutex_lock(&reg_lock);
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
    pthread_mutex_unlock(&reg_lock);
}

long tp_metrics_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* Sum of series i over dead totals and live blocks; reg_lock held. */
static void series_total(size_t i, struct tp_rule_ctr *c, uint64_t *in, uint64_t *outn)
{
    *c = series[i].dead;
    *in = series[i].dead_in;
    *outn = series[i].dead_out;
    for (struct tp_rule_block *b = blocks; b; b = b->next)
        for (size_t r = 0; r <= b->n; r++) {
            if (b->series[r] != i)
                continue;
            if (r < b->n)
                ctr_add(c, &b->rules[r]);
            else {
                *in += __atomic_load_n(&b->msgs_in, __ATOMIC_RELAXED);
                *outn += __atomic_load_n(&b->msgs_out, __ATOMIC_RELAXED);
            }
        }
}

static void rule_labels(struct tp_buf *out, const struct series *s)
{
    tp_buf_puts(out, "{processor=\"");
    put_label(out, s->proc);
    tp_buf_puts(out, "\",rule=\"");
    put_label(out, s->rule);
    tp_buf_putc(out, '"');
}

static void write_rules(struct tp_buf *out)
{
    struct tp_rule_ctr *tot = calloc(n_series ? n_series : 1, sizeof(*tot));
    uint64_t *ins = calloc(n_series ? n_series : 1, 2 * sizeof(*ins));
    if (!tot || !ins) {
        free(tot);
        free(ins);
        return;
    }
    for (size_t i = 0; i < n_series; i++)
        series_total(i, &tot[i], &ins[2 * i], &ins[2 * i + 1]);
    static const char *const names[] = {"received", "sent"};
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof(name), "tagproc_processor_%s_total", names[k]);
        family(out, name, "counter",
               k ? "messages a processor emitted" : "messages that entered a processor");
        for (size_t i = 0; i < n_series; i++) {
            if (series[i].rule)
                continue;
            tp_buf_printf(out, "%s{processor=\"", name);
            put_label(out, series[i].proc);
            tp_buf_puts(out, "\",plugin=\"");
            put_label(out, series[i].plugin);
            tp_buf_printf(out, "\"} %llu\n", (unsigned long long)ins[2 * i + k]);
        }
    }
    static const struct {
        const char *name, *help;
        size_t off;
        int cond_only;
    } cs[] = {
        {"tagproc_rule_evaluations_total", "times a rule ran (an if was evaluated)",
         offsetof(struct tp_rule_ctr, evals), 0},
        {"tagproc_rule_matches_total", "times a condition's if was truthy",
         offsetof(struct tp_rule_ctr, matches), 1},
        {"tagproc_rule_errors_total", "JavaScript errors (exception or bad return) in a rule",
         offsetof(struct tp_rule_ctr, errors), 0},
        {"tagproc_rule_timeouts_total", "messages that hit timeout_ms in a rule",
         offsetof(struct tp_rule_ctr, timeouts), 0},
    };
    for (size_t k = 0; k < sizeof(cs) / sizeof(cs[0]); k++) {
        family(out, cs[k].name, "counter", cs[k].help);
        for (size_t i = 0; i < n_series; i++) {
            if (!series[i].rule ||
                (cs[k].cond_only && strncmp(series[i].rule, "conditions[", 11) != 0))
                continue;
            tp_buf_puts(out, cs[k].name);
            rule_labels(out, &series[i]);
            uint64_t v = *(const uint64_t *)((const char *)&tot[i] + cs[k].off);
            tp_buf_printf(out, "} %llu\n", (unsigned long long)v);
        }
    }
    const char *h = "tagproc_rule_duration_seconds";
    family(out, h, "histogram",
           "time spent in a rule per message (if and then together; 1 message in 8 timed, "
           "weighted by 8)");
    double tns = tp_metrics_tick_ns();
    for (size_t i = 0; i < n_series; i++) {
        if (!series[i].rule)
            continue;
        uint64_t cum = 0;
        for (int b = 0; b <= TP_RULE_BUCKETS; b++) {
            cum += tot[i].hist[b];
            tp_buf_printf(out, "%s_bucket", h);
            rule_labels(out, &series[i]);
            if (b < TP_RULE_BUCKETS)
                tp_buf_printf(out, ",le=\"%g\"} %llu\n", tp_rule_bucket_le[b],
                              (unsigned long long)cum);
            else
                tp_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        tp_buf_printf(out, "%s_sum", h);
        rule_labels(out, &series[i]);
        tp_buf_printf(out, "} %.9f\n", (double)tot[i].ticks * tns / 1e9);
        tp_buf_printf(out, "%s_count", h);
        rule_labels(out, &series[i]);
        tp_buf_printf(out, "} %llu\n", (unsigned long long)cum);
    }
    free(tot);
    free(ins);
}

static void write_drops(struct tp_buf *out)
{
    family(out, "tagproc_dropped_total", "counter",
           "messages dropped, by reason and stage (filtered included)");
    for (int i = 0; i < DROP_SLOTS; i++) {
        struct drop_slot *s = &drops[i];
        if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE))
            continue;
        tp_buf_printf(out, "tagproc_dropped_total{reason=\"%s\",stage=\"",
                      tp_drop_reason_name((enum tp_drop_reason)s->reason));
        put_label(out, s->stage);
        tp_buf_printf(out, "\"} %llu\n",
                      (unsigned long long)__atomic_load_n(&s->count, __ATOMIC_RELAXED));
    }
}

static void write_latency(struct tp_buf *out)
{
    const char *h = "tagproc_latency_seconds";
    family(out, h, "histogram", "time from reading a message to handing it to the output");
    uint64_t cum = 0;
    for (int b = 0; b <= LAT_BUCKETS; b++) {
        cum += __atomic_load_n(&lat_hist[b], __ATOMIC_RELAXED);
        if (b < LAT_BUCKETS)
            tp_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", h, lat_le[b],
                          (unsigned long long)cum);
        else
            tp_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", h, (unsigned long long)cum);
    }
    tp_buf_printf(out, "%s_sum %.9f\n%s_count %llu\n", h,
                  (double)__atomic_load_n(&lat_sum_ns, __ATOMIC_RELAXED) / 1e9, h,
                  (unsigned long long)cum);
}

void tp_metrics_latency_totals(uint64_t *sum_ns, uint64_t *count)
{
    *sum_ns = __atomic_load_n(&lat_sum_ns, __ATOMIC_RELAXED);
    *count = __atomic_load_n(&lat_count, __ATOMIC_RELAXED);
}

int tp_metrics_rules_json(struct tp_buf *out)
{
    pthread_mutex_lock(&reg_lock);
    double tns = tp_metrics_tick_ns();
    tp_buf_printf(out, "{\"enabled\":%s,\"rules\":[",
                  tp_metrics_rules_enabled() ? "true" : "false");
    int first = 1;
    for (size_t i = 0; i < n_series; i++) {
        struct tp_rule_ctr c;
        uint64_t in, sent;
        series_total(i, &c, &in, &sent);
        tp_buf_puts(out, first ? "{\"processor\":" : ",{\"processor\":");
        first = 0;
        tp_json_write_string(out, series[i].proc, strlen(series[i].proc));
        tp_buf_puts(out, ",\"plugin\":");
        tp_json_write_string(out, series[i].plugin, strlen(series[i].plugin));
        if (!series[i].rule) {
            tp_buf_printf(out, ",\"rule\":null,\"received\":%llu,\"sent\":%llu}",
                          (unsigned long long)in, (unsigned long long)sent);
            continue;
        }
        tp_buf_puts(out, ",\"rule\":");
        tp_json_write_string(out, series[i].rule, strlen(series[i].rule));
        tp_buf_printf(out,
                      ",\"evaluations\":%llu,\"matches\":%llu,\"errors\":%llu,\"timeouts\":%llu,"
                      "\"time_s\":%.6f}",
                      (unsigned long long)c.evals, (unsigned long long)c.matches,
                      (unsigned long long)c.errors, (unsigned long long)c.timeouts,
                      (double)c.ticks * tns / 1e9);
    }
    tp_buf_puts(out, "]}");
    pthread_mutex_unlock(&reg_lock);
    return out->data ? 0 : -1;
}

int tp_metrics_write(struct tp_buf *out, const char *input_plugin, const char *output_plugin)
{
    family(out, "tagproc_input_received_total", "counter", "messages read by the input");
    tp_buf_printf(out, "tagproc_input_received_total{plugin=\"%s\"} %llu\n",
                  input_plugin ? input_plugin : "", (unsigned long long)TP_STAT_GET(received));
    family(out, "tagproc_output_sent_total", "counter", "messages written to the output");
    tp_buf_printf(out, "tagproc_output_sent_total{plugin=\"%s\"} %llu\n",
                  output_plugin ? output_plugin : "", (unsigned long long)TP_STAT_GET(processed));
    counter1(out, "tagproc_dead_letter_sent_total", "records written to the dead letter output",
             __atomic_load_n(&dead_letter_sent, __ATOMIC_RELAXED));
    write_drops(out);
    counter1(out, "tagproc_js_programs_compiled_total", "JavaScript snippets compiled",
             TP_STAT_GET(programs_compiled));
    counter1(out, "tagproc_js_vms_created_total", "JavaScript VMs created",
             TP_STAT_GET(vms_created));
    write_latency(out);
    family(out, "tagproc_process_resident_memory_bytes", "gauge", "resident set size");
    tp_buf_printf(out, "tagproc_process_resident_memory_bytes %ld\n", tp_metrics_rss_bytes());
    counter1(out, "tagproc_reloads_total", "successful configuration reloads",
             __atomic_load_n(&reloads_ok, __ATOMIC_RELAXED));
    counter1(out, "tagproc_reload_failures_total",
             "rejected configuration reloads (the running config stays)",
             __atomic_load_n(&reloads_failed, __ATOMIC_RELAXED));
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < n_named; i++)
        counter1(out, named[i].name, named[i].help, named[i].value);
    write_rules(out);
    pthread_mutex_unlock(&reg_lock);
    return out->data ? 0 : -1;
}

void tp_metrics_reset(void)
{
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < n_series; i++) {
        free(series[i].proc);
        free(series[i].plugin);
        free(series[i].rule);
    }
    free(series);
    series = NULL;
    n_series = cap_series = 0;
    memset(drops, 0, sizeof(drops));
    memset(lat_hist, 0, sizeof(lat_hist));
    lat_sum_ns = lat_count = reloads_ok = reloads_failed = dead_letter_sent = 0;
    n_named = 0;
    pthread_mutex_unlock(&reg_lock);
}

/* Prometheus text and Topic Browser JSON of a metrics registry (see
 * metrics.h). Reads the registry through its readers: series summed over
 * live and freed blocks, drop counters, latency and reload totals. */
#include "ops/metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "core/stats.h"

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

static void put_named(void *ud, const char *name, const char *help, uint64_t v)
{
    counter1(ud, name, help, v);
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

/* A copy of every series of a registry (strings stay the registry's). */
struct series_list {
    struct tp_metrics_series *v;
    size_t n, cap;
    int failed;
};

static void collect_series(void *ud, const struct tp_metrics_series *s)
{
    struct series_list *l = ud;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        struct tp_metrics_series *v = realloc(l->v, nc * sizeof(*v));
        if (!v) {
            l->failed = 1;
            return;
        }
        l->v = v;
        l->cap = nc;
    }
    l->v[l->n++] = *s;
}

static void rule_labels(struct tp_buf *out, const struct tp_metrics_series *s)
{
    tp_buf_puts(out, "{processor=\"");
    put_label(out, s->proc);
    tp_buf_puts(out, "\",rule=\"");
    put_label(out, s->rule);
    tp_buf_putc(out, '"');
}

static void write_rules(struct tp_metrics *m, struct tp_buf *out)
{
    struct series_list l = {0};
    tp_metrics_each_series(m, collect_series, &l);
    size_t n_series = l.n;
    const struct tp_metrics_series *series = l.v;
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
            tp_buf_printf(out, "\"} %llu\n",
                          (unsigned long long)(k ? series[i].out : series[i].in));
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
            uint64_t v = *(const uint64_t *)((const char *)&series[i].c + cs[k].off);
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
            cum += series[i].c.hist[b];
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
        tp_buf_printf(out, "} %.9f\n", (double)series[i].c.ticks * tns / 1e9);
        tp_buf_printf(out, "%s_count", h);
        rule_labels(out, &series[i]);
        tp_buf_printf(out, "} %llu\n", (unsigned long long)cum);
    }
    free(l.v);
}

static void put_drop(void *ud, enum tp_drop_reason reason, const char *stage, uint64_t count)
{
    struct tp_buf *out = ud;
    tp_buf_printf(out, "tagproc_dropped_total{reason=\"%s\",stage=\"", tp_drop_reason_name(reason));
    put_label(out, stage);
    tp_buf_printf(out, "\"} %llu\n", (unsigned long long)count);
}

static void write_drops(struct tp_metrics *m, struct tp_buf *out)
{
    family(out, "tagproc_dropped_total", "counter",
           "messages dropped, by reason and stage (filtered included)");
    tp_metrics_each_drop(m, put_drop, out);
}

static void write_latency(const struct tp_metrics_totals *t, struct tp_buf *out)
{
    const char *h = "tagproc_latency_seconds";
    family(out, h, "histogram", "time from reading a message to handing it to the output");
    uint64_t cum = 0;
    for (int b = 0; b <= TP_LAT_BUCKETS; b++) {
        cum += t->lat_hist[b];
        if (b < TP_LAT_BUCKETS)
            tp_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", h, tp_lat_bucket_le[b],
                          (unsigned long long)cum);
        else
            tp_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", h, (unsigned long long)cum);
    }
    tp_buf_printf(out, "%s_sum %.9f\n%s_count %llu\n", h, (double)t->lat_sum_ns / 1e9, h,
                  (unsigned long long)cum);
}

void tp_metrics_latency_totals(const struct tp_metrics *m, uint64_t *sum_ns, uint64_t *count)
{
    struct tp_metrics_totals t;
    tp_metrics_totals(m, &t);
    *sum_ns = t.lat_sum_ns;
    *count = t.lat_count;
}

int tp_metrics_rules_json(struct tp_metrics *m, struct tp_buf *out)
{
    struct series_list l = {0};
    tp_metrics_each_series(m, collect_series, &l);
    double tns = tp_metrics_tick_ns();
    tp_buf_printf(out, "{\"enabled\":%s,\"rules\":[",
                  tp_metrics_rules_enabled(m) ? "true" : "false");
    for (size_t i = 0; i < l.n; i++) {
        const struct tp_metrics_series *s = &l.v[i];
        tp_buf_puts(out, i == 0 ? "{\"processor\":" : ",{\"processor\":");
        tp_json_write_string(out, s->proc, strlen(s->proc));
        tp_buf_puts(out, ",\"plugin\":");
        tp_json_write_string(out, s->plugin, strlen(s->plugin));
        if (!s->rule) {
            tp_buf_printf(out, ",\"rule\":null,\"received\":%llu,\"sent\":%llu}",
                          (unsigned long long)s->in, (unsigned long long)s->out);
            continue;
        }
        tp_buf_puts(out, ",\"rule\":");
        tp_json_write_string(out, s->rule, strlen(s->rule));
        tp_buf_printf(out,
                      ",\"evaluations\":%llu,\"matches\":%llu,\"errors\":%llu,\"timeouts\":%llu,"
                      "\"time_s\":%.6f}",
                      (unsigned long long)s->c.evals, (unsigned long long)s->c.matches,
                      (unsigned long long)s->c.errors, (unsigned long long)s->c.timeouts,
                      (double)s->c.ticks * tns / 1e9);
    }
    tp_buf_puts(out, "]}");
    free(l.v);
    return out->data && !l.failed ? 0 : -1;
}

int tp_metrics_write(struct tp_metrics *m, struct tp_buf *out, const char *input_plugin,
                     const char *output_plugin)
{
    struct tp_metrics_totals t;
    tp_metrics_totals(m, &t);
    const struct tp_stats *st = tp_metrics_stats(m);
    family(out, "tagproc_input_received_total", "counter", "messages read by the input");
    tp_buf_printf(out, "tagproc_input_received_total{plugin=\"%s\"} %llu\n",
                  input_plugin ? input_plugin : "", (unsigned long long)TP_STAT_GET(st, received));
    family(out, "tagproc_output_sent_total", "counter", "messages written to the output");
    tp_buf_printf(out, "tagproc_output_sent_total{plugin=\"%s\"} %llu\n",
                  output_plugin ? output_plugin : "",
                  (unsigned long long)TP_STAT_GET(st, processed));
    counter1(out, "tagproc_dead_letter_sent_total", "records written to the dead letter output",
             t.dead_letter_sent);
    write_drops(m, out);
    counter1(out, "tagproc_js_programs_compiled_total", "JavaScript snippets compiled",
             TP_STAT_GET(st, programs_compiled));
    counter1(out, "tagproc_js_vms_created_total", "JavaScript VMs created",
             TP_STAT_GET(st, vms_created));
    write_latency(&t, out);
    family(out, "tagproc_process_resident_memory_bytes", "gauge", "resident set size");
    tp_buf_printf(out, "tagproc_process_resident_memory_bytes %ld\n", tp_metrics_rss_bytes());
    counter1(out, "tagproc_reloads_total", "successful configuration reloads", t.reloads_ok);
    counter1(out, "tagproc_reload_failures_total",
             "rejected configuration reloads (the running config stays)", t.reloads_failed);
    tp_metrics_each_named(put_named, out);
    write_rules(m, out);
    return out->data ? 0 : -1;
}

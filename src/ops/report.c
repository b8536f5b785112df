/* Start banner, periodic stats line, exit summary, and the debug/trace lines
 * of the writer (see report.h). The stats thread also prints the "N similar
 * log lines suppressed" notices of the log rate limit. */
#include "ops/report.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/stats.h"
#include "ops/metrics.h"

struct tp_report {
    int64_t start_ns;
    int64_t interval_s;
    struct tp_ui_source status;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
    uint64_t last_received, last_processed;
    int64_t last_ns;
};

/* "dropped 12 (js_error=10 filtered=2)" */
static void put_drops(struct tp_buf *b, const struct tp_stats *st)
{
    uint64_t total = 0;
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++)
        total += TP_STAT_GET(st, dropped[r]);
    tp_buf_printf(b, "dropped=%llu", (unsigned long long)total);
    int first = 1;
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++) {
        uint64_t n = TP_STAT_GET(st, dropped[r]);
        if (!n)
            continue;
        tp_buf_printf(b, "%s%s=%llu", first ? " (" : " ",
                      tp_drop_reason_name((enum tp_drop_reason)r), (unsigned long long)n);
        first = 0;
    }
    if (!first)
        tp_buf_putc(b, ')');
}

static void stats_line(struct tp_report *r)
{
    int64_t now = tp_mono_ns();
    double dt = (double)(now - r->last_ns) / 1e9;
    const struct tp_stats *counts = tp_metrics_stats(r->status.metrics);
    uint64_t rec = TP_STAT_GET(counts, received), proc = TP_STAT_GET(counts, processed);
    struct tp_buf b;
    tp_buf_init(&b);
    tp_buf_printf(&b, "stats: received=%llu (%.0f/s) processed=%llu (%.0f/s) ",
                  (unsigned long long)rec, dt > 0 ? (double)(rec - r->last_received) / dt : 0.0,
                  (unsigned long long)proc, dt > 0 ? (double)(proc - r->last_processed) / dt : 0.0);
    put_drops(&b, counts);
    if (r->status.status) {
        struct tp_pipeline_status st = {0};
        r->status.status(r->status.ud, &st);
        tp_buf_printf(&b, " queue=%llu/%llu",
                      (unsigned long long)(st.queue_waiting + st.queue_working),
                      (unsigned long long)st.queue_capacity);
    }
    uint64_t lsum, ln;
    tp_metrics_latency_totals(r->status.metrics, &lsum, &ln);
    tp_buf_printf(&b, " latency_avg=%.2fms rss=%.1fMB", ln ? (double)lsum / (double)ln / 1e6 : 0.0,
                  (double)tp_metrics_rss_bytes() / 1048576.0);
    tp_log(TP_LOG_INFO, "%s", b.data ? b.data : "stats");
    tp_buf_free(&b);
    r->last_received = rec;
    r->last_processed = proc;
    r->last_ns = now;
}

static void *stats_main(void *arg)
{
    pthread_setname_np(pthread_self(), "tp-stats");
    struct tp_report *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        struct timespec until = tp_deadline_in_ms((int64_t)r->interval_s * 1000);
        while (!r->stop && pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0)
            ;
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->lock);
        stats_line(r);
        tp_log_flush_suppressed();
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct tp_report *tp_report_start(const struct tp_report_info *info, int64_t interval_s,
                                  const struct tp_ui_source *status)
{
    char http[160] = "off";
    if (info->http_address)
        snprintf(http, sizeof(http), "%s (port %d)%s", info->http_address, info->http_port,
                 info->ui ? ", Topic Browser on /" : "");
    tp_log(TP_LOG_INFO,
           "tagproc %s starting: config=%s input=%s output=%s%s%s threads=%d http=%s "
           "stats_interval=%llds",
           TP_VERSION, info->config_file ? info->config_file : "-", info->input, info->output,
           info->dead_letter ? " dead_letter=" : "", info->dead_letter ? info->dead_letter : "",
           info->threads, http, (long long)interval_s);
    struct tp_report *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->start_ns = r->last_ns = tp_mono_ns();
    r->interval_s = interval_s;
    if (status)
        r->status = *status;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (interval_s > 0)
        r->started = pthread_create(&r->thread, NULL, stats_main, r) == 0;
    return r;
}

void tp_report_finish(struct tp_report *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    if (r->started)
        pthread_join(r->thread, NULL);
    tp_log_flush_suppressed();
    double secs = (double)(tp_mono_ns() - r->start_ns) / 1e9;
    const struct tp_stats *counts = tp_metrics_stats(r->status.metrics);
    uint64_t rec = TP_STAT_GET(counts, received), proc = TP_STAT_GET(counts, processed);
    struct tp_buf b;
    tp_buf_init(&b);
    tp_buf_printf(&b, "tagproc stopped after %.1fs: received=%llu processed=%llu ", secs,
                  (unsigned long long)rec, (unsigned long long)proc);
    put_drops(&b, counts);
    tp_buf_printf(&b, " rate=%.0f msgs/s", secs > 0 ? (double)rec / secs : 0.0);
    tp_log(TP_LOG_INFO, "%s", b.data ? b.data : "tagproc stopped");
    tp_buf_free(&b);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

void tp_report_batch(uint64_t seq, size_t in, struct tp_msg *const *out, size_t n)
{
    if (!tp_log_enabled(TP_LOG_DEBUG))
        return;
    tp_log(TP_LOG_DEBUG, "batch %llu: %zu in, %zu out", (unsigned long long)seq, in, n);
    if (!tp_log_enabled(TP_LOG_TRACE))
        return;
    struct tp_buf b;
    tp_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        tp_buf_reset(&b);
        tp_json_encode_envelope(out[i], &b);
        while (b.len && b.data[b.len - 1] == '\n')
            b.data[--b.len] = '\0';
        tp_log(TP_LOG_TRACE, "output message: %s", b.data ? b.data : "");
    }
    tp_buf_free(&b);
}

/* The Topic Browser's HTTP side: the embedded page and assets, the read-only
 * JSON API (/api/topics, /api/topic, /api/drops, /api/rules, /api/stats), the
 * live streams (/api/events, /api/tap), /version and /config (secrets
 * redacted). Called on libmicrohttpd's thread by ops/http.c. */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/json.h"
#include "core/stats.h"
#include "ops/metrics.h"
#include "ops/ui_internal.h"

static int answer(struct MHD_Connection *c, unsigned code, const char *type, struct tp_buf *b)
{
    size_t len = 0;
    char *body = b->data ? tp_buf_take(b, &len) : strdup("");
    if (!body)
        return MHD_NO + 1;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO + 1;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    int rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc + 1;
}

static int answer_json(struct MHD_Connection *c, unsigned code, struct tp_buf *b)
{
    return answer(c, code, "application/json; charset=utf-8", b);
}

static int answer_error(struct MHD_Connection *c, unsigned code, const char *text)
{
    struct tp_buf b;
    tp_buf_init(&b);
    tp_buf_puts(&b, "{\"error\":");
    tp_json_write_string(&b, text, strlen(text));
    tp_buf_puts(&b, "}");
    return answer_json(c, code, &b);
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* ---------- /api/stats ---------- */

void tp__ui_stats_tick(struct tp_ui *ui, double dt_s)
{
    const struct tp_stats *st = tp_metrics_stats(ui->src.metrics);
    uint64_t rec = TP_STAT_GET(st, received), proc = TP_STAT_GET(st, processed), lsum, ln;
    tp_metrics_latency_totals(ui->src.metrics, &lsum, &ln);
    pthread_mutex_lock(&ui->lock);
    if (dt_s > 0) {
        ui->rate_in = (double)(rec - ui->last_received) / dt_s;
        ui->rate_out = (double)(proc - ui->last_processed) / dt_s;
    }
    if (ln > ui->last_lat_n)
        ui->latency_ms = (double)(lsum - ui->last_lat_sum) / (double)(ln - ui->last_lat_n) / 1e6;
    ui->last_received = rec;
    ui->last_processed = proc;
    ui->last_lat_sum = lsum;
    ui->last_lat_n = ln;
    pthread_mutex_unlock(&ui->lock);
}

void tp__ui_stats_json(struct tp_ui *ui, const struct tp_ui_source *src, struct tp_buf *out)
{
    struct tp_pipeline_status st = {0};
    if (src && src->status)
        src->status(src->ud, &st);
    const struct tp_stats *counts = tp_metrics_stats(ui->src.metrics);
    uint64_t dropped = 0;
    tp_buf_printf(out, "{\"version\":\"%s\",\"received\":%llu,\"processed\":%llu,\"dropped\":{",
                  TP_VERSION, (unsigned long long)TP_STAT_GET(counts, received),
                  (unsigned long long)TP_STAT_GET(counts, processed));
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++) {
        uint64_t n = TP_STAT_GET(counts, dropped[r]);
        dropped += n;
        tp_buf_printf(out, "%s\"%s\":%llu", r ? "," : "",
                      tp_drop_reason_name((enum tp_drop_reason)r), (unsigned long long)n);
    }
    tp_buf_printf(out,
                  "},\"dropped_total\":%llu,\"input\":\"%s\",\"output\":\"%s\",\"threads\":%d,",
                  (unsigned long long)dropped, st.input ? st.input : "", st.output ? st.output : "",
                  st.threads);
    tp_buf_printf(out,
                  "\"queue\":{\"waiting\":%llu,\"processing_or_output\":%llu,\"capacity\":%llu},"
                  "\"config_generation\":%llu,\"rss_bytes\":%ld",
                  (unsigned long long)st.queue_waiting, (unsigned long long)st.queue_working,
                  (unsigned long long)st.queue_capacity, (unsigned long long)st.generation,
                  tp_metrics_rss_bytes());
    if (ui) {
        pthread_mutex_lock(&ui->lock);
        tp_buf_printf(out, ",\"uptime_s\":%.1f,\"rate_in\":",
                      (double)(tp__ui_now_ms() - ui->started_ms) / 1000.0);
        tp__ui_number(out, ui->rate_in);
        tp_buf_puts(out, ",\"rate_out\":");
        tp__ui_number(out, ui->rate_out);
        tp_buf_puts(out, ",\"latency_ms\":");
        tp__ui_number(out, ui->latency_ms);
        tp_buf_printf(out, ",\"topics\":%zu,\"max_topics\":%lld,\"tap_lost\":%llu", ui->n_topics,
                      (long long)ui->cfg.max_topics,
                      (unsigned long long)__atomic_load_n(&ui->tap_lost, __ATOMIC_RELAXED));
        pthread_mutex_unlock(&ui->lock);
    }
    tp_buf_puts(out, "}");
}

/* ---------- /config ---------- */

void tp_ui_config_json(const struct tp_node *root, struct tp_buf *out)
{
    tp_node_json(root, TP_NODE_JSON_REDACT_SECRETS, out);
}

/* ---------- routing ---------- */

static int serve_asset(struct MHD_Connection *c, const char *url)
{
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    for (size_t i = 0; i < tp_ui_n_assets; i++) {
        if (strcmp(tp_ui_assets[i].path, url) != 0)
            continue;
        struct MHD_Response *r = MHD_create_response_from_buffer(
            tp_ui_assets[i].len, (void *)tp_ui_assets[i].data, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO + 1;
        MHD_add_response_header(r, "Content-Type", tp_ui_assets[i].type);
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; style-src 'self'; img-src 'self' data:");
        int rc = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return rc + 1;
    }
    return 0;
}

static size_t limit_arg(struct MHD_Connection *c, size_t dflt)
{
    const char *s = arg(c, "limit");
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 ? (size_t)v : dflt;
}

int tp_ui_http(struct tp_ui *ui, const struct tp_ui_source *src, void *conn, const char *url)
{
    struct MHD_Connection *c = conn;
    struct tp_buf b;
    tp_buf_init(&b);
    if (strcmp(url, "/version") == 0) {
        tp_buf_printf(&b, "{\"name\":\"tagproc\",\"version\":\"%s\",\"quickjs\":\"2021-03-27\"}",
                      TP_VERSION);
        return answer_json(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/config") == 0) {
        if (src && src->config_json)
            src->config_json(src->ud, &b);
        return answer_json(c, MHD_HTTP_OK, &b);
    }
    if (!ui)
        return 0;
    if (strcmp(url, "/api/topics") == 0) {
        tp__ui_topics_json(ui, arg(c, "q"), limit_arg(c, 10000), &b);
        return answer_json(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/api/topic") == 0) {
        const char *name = arg(c, "name");
        if (!name)
            return answer_error(c, MHD_HTTP_BAD_REQUEST, "missing ?name=TOPIC");
        if (!tp__ui_topic_json(ui, name, &b)) {
            tp_buf_free(&b);
            return answer_error(c, MHD_HTTP_NOT_FOUND, "unknown topic");
        }
        return answer_json(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/api/drops") == 0) {
        tp__ui_drops_json(ui, &b);
        return answer_json(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/api/rules") == 0) {
        tp_metrics_rules_json(src ? src->metrics : NULL, &b);
        return answer_json(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/api/stats") == 0) {
        tp__ui_stats_json(ui, src, &b);
        return answer_json(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/api/events") == 0)
        return tp__ui_stream_open(ui, c, 0, NULL, 0) + 1;
    if (strcmp(url, "/api/tap") == 0) {
        const char *drops = arg(c, "drops");
        return tp__ui_stream_open(ui, c, 1, arg(c, "topic"),
                                  drops && strcmp(drops, "0") != 0 && strcmp(drops, "false") != 0) +
               1;
    }
    return serve_asset(c, url);
}

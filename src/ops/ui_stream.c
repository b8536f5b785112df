/* Live streams of the Topic Browser as Server-Sent Events on libmicrohttpd:
 * /api/events (stats and changed topics once per tick) and /api/tap (output
 * messages or drops as JSON lines). Each stream buffers at most
 * UI_TAP_BUFFER bytes; a client that reads too slowly loses lines (counted
 * and announced), the pipeline never waits. Idle streams are suspended and
 * resumed by the writer or the 1 s ticker thread. */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/clock.h"
#include "core/log.h"
#include "ops/ui_internal.h"

#define UI_TAP_BUFFER (1u << 20) /* bytes waiting per stream */
#define UI_TICK_MS 1000
#define UI_EVENT_TOPICS 5000 /* changed topics per event, more: "resync" */
#define UI_KEEPALIVE_TICKS 10

struct ui_stream {
    struct tp_ui *ui;
    struct MHD_Connection *conn;
    int tap, drops; /* tap: output messages, or drops when `drops` */
    char *filter;   /* tap topic pattern or NULL */
    int suspended;
    struct tp_buf out;
    size_t off;
    uint64_t last_tick, idle_ticks;
    uint64_t lost, lost_told;
    struct ui_stream *next;
};

int tp_ui_topic_pattern_match(const char *pat, const char *topic, size_t len)
{
    const char *t = topic, *end = topic + len;
    int topic_done = 0;
    for (;;) {
        size_t pl = strcspn(pat, "./");
        if (pl == 1 && pat[0] == '#' && pat[1] == '\0')
            return 1; /* the rest, even nothing */
        if (topic_done)
            return 0;
        const char *tl = t;
        while (tl < end && *tl != '.' && *tl != '/')
            tl++;
        if (!(pl == 1 && pat[0] == '+') && (pl != (size_t)(tl - t) || memcmp(pat, t, pl) != 0))
            return 0;
        pat += pl;
        if (tl == end)
            topic_done = 1;
        else
            t = tl + 1;
        if (!*pat)
            return topic_done;
        pat++;
    }
}

/* Appends text for stream s if it fits its budget; counts a loss otherwise.
 * stream_lock held. */
static void stream_push(struct ui_stream *s, const char *text, size_t len)
{
    if (s->off > 0 && s->off * 2 >= s->out.len) { /* compact */
        memmove(s->out.data, s->out.data + s->off, s->out.len - s->off);
        s->out.len -= s->off;
        s->out.data[s->out.len] = '\0';
        s->off = 0;
    }
    if (s->out.len - s->off + len + 64 > UI_TAP_BUFFER) {
        s->lost++;
        __atomic_fetch_add(&s->ui->tap_lost, 1, __ATOMIC_RELAXED);
        return;
    }
    if (s->lost > s->lost_told) { /* say so in order, as soon as there is room */
        tp_buf_printf(&s->out, "event: lost\ndata: {\"lost\":%llu}\n\n",
                      (unsigned long long)(s->lost - s->lost_told));
        s->lost_told = s->lost;
    }
    tp_buf_append(&s->out, text, len);
}

static void stream_wake(struct ui_stream *s)
{
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

/* Fills an empty stream buffer with what is due; stream_lock held. */
static void stream_fill(struct ui_stream *s)
{
    struct tp_ui *ui = s->ui;
    if (s->lost > s->lost_told) {
        tp_buf_printf(&s->out, "event: lost\ndata: {\"lost\":%llu}\n\n",
                      (unsigned long long)(s->lost - s->lost_told));
        s->lost_told = s->lost;
    }
    if (!s->tap && s->last_tick < __atomic_load_n(&ui->tick, __ATOMIC_RELAXED)) {
        struct tp_buf stats;
        tp_buf_init(&stats);
        tp__ui_stats_json(ui, &ui->src, &stats);
        pthread_mutex_lock(&ui->lock);
        uint64_t since = s->last_tick;
        s->last_tick = ui->tick;
        tp_buf_printf(&s->out,
                      "data: {\"tick\":%llu,\"stats\":%s,\"topics\":", (unsigned long long)ui->tick,
                      stats.data ? stats.data : "{}");
        tp__ui_changed_json_locked(ui, since ? since : 0, UI_EVENT_TOPICS, &s->out);
        tp_buf_printf(&s->out, ",\"resync\":%s}\n\n",
                      since == 0 || ui->n_topics > UI_EVENT_TOPICS ? "true" : "false");
        pthread_mutex_unlock(&ui->lock);
        tp_buf_free(&stats);
    } else if (s->tap && s->idle_ticks >= UI_KEEPALIVE_TICKS) {
        tp_buf_puts(&s->out, ": keepalive\n\n");
        s->idle_ticks = 0;
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct ui_stream *s = cls;
    struct tp_ui *ui = s->ui;
    pthread_mutex_lock(&ui->stream_lock);
    if (ui->closing) {
        pthread_mutex_unlock(&ui->stream_lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (s->off == s->out.len) {
        tp_buf_reset(&s->out);
        s->off = 0;
        stream_fill(s);
    }
    size_t n = s->out.len - s->off;
    if (n == 0) {
        s->suspended = 1;
        MHD_suspend_connection(s->conn);
        pthread_mutex_unlock(&ui->stream_lock);
        return 0;
    }
    if (n > max)
        n = max;
    memcpy(buf, s->out.data + s->off, n);
    s->off += n;
    s->idle_ticks = 0;
    pthread_mutex_unlock(&ui->stream_lock);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct ui_stream *s = cls;
    struct tp_ui *ui = s->ui;
    pthread_mutex_lock(&ui->stream_lock);
    for (struct ui_stream **pp = &ui->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    if (s->tap)
        __atomic_fetch_sub(&ui->n_tap, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&ui->stream_lock);
    if (s->lost)
        tp_log(TP_LOG_INFO, "ui: %s stream closed; %llu lines lost to a slow client",
               s->tap ? "tap" : "events", (unsigned long long)s->lost);
    tp_buf_free(&s->out);
    free(s->filter);
    free(s);
}

int tp__ui_stream_open(struct tp_ui *ui, void *conn, int tap, const char *topic_filter, int drops)
{
    struct MHD_Connection *c = conn;
    struct ui_stream *s = calloc(1, sizeof(*s));
    if (!s || (topic_filter && *topic_filter && !(s->filter = strdup(topic_filter)))) {
        free(s);
        return MHD_NO;
    }
    s->ui = ui;
    s->conn = c;
    s->tap = tap;
    s->drops = drops;
    tp_buf_init(&s->out);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    if (!r) {
        free(s->filter);
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    pthread_mutex_lock(&ui->stream_lock);
    s->next = ui->streams;
    ui->streams = s;
    if (tap)
        __atomic_fetch_add(&ui->n_tap, 1, __ATOMIC_RELAXED);
    /* tap: say hello so a client knows it is connected */
    if (tap)
        tp_buf_puts(&s->out, ": tap connected\n\n");
    pthread_mutex_unlock(&ui->stream_lock);
    /* a stream never times out as idle: it is suspended or writing */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)0);
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* One JSON line of the tap: kind, time, topic, the message as an envelope. */
static void tap_line(struct tp_buf *b, const char *kind, const struct tp_msg *m)
{
    size_t len;
    const char *topic = tp__ui_msg_topic(m, &len);
    tp_buf_printf(b, "data: {\"kind\":\"%s\",\"time_ms\":%lld,\"topic\":", kind,
                  (long long)tp__ui_now_ms());
    tp_json_write_string(b, topic, len);
    tp_buf_puts(b, ",\"message\":");
    tp_json_encode_envelope(m, b);
    while (b->len && b->data[b->len - 1] == '\n') /* the envelope ends its line */
        b->data[--b->len] = '\0';
}

void tp__ui_tap_messages(struct tp_ui *ui, struct tp_msg *const *msgs, size_t n)
{
    struct tp_buf line;
    tp_buf_init(&line);
    pthread_mutex_lock(&ui->stream_lock);
    for (size_t i = 0; i < n; i++) {
        tp_buf_reset(&line);
        for (struct ui_stream *s = ui->streams; s; s = s->next) {
            if (!s->tap || s->drops)
                continue;
            size_t tlen;
            const char *topic = tp__ui_msg_topic(msgs[i], &tlen);
            if (s->filter && !tp_ui_topic_pattern_match(s->filter, topic, tlen))
                continue;
            if (!line.len) {
                tap_line(&line, "output", msgs[i]);
                tp_buf_puts(&line, "}\n\n");
            }
            if (line.data)
                stream_push(s, line.data, line.len);
        }
    }
    for (struct ui_stream *s = ui->streams; s; s = s->next)
        if (s->tap && s->out.len > s->off)
            stream_wake(s);
    pthread_mutex_unlock(&ui->stream_lock);
    tp_buf_free(&line);
}

void tp__ui_tap_drop(struct tp_ui *ui, const struct tp_msg *in, const char *proc,
                     const struct tp_drop *d)
{
    struct tp_buf line;
    tp_buf_init(&line);
    pthread_mutex_lock(&ui->stream_lock);
    for (struct ui_stream *s = ui->streams; s; s = s->next) {
        if (!s->tap || !s->drops)
            continue;
        size_t tlen;
        const char *topic = tp__ui_msg_topic(in, &tlen);
        if (s->filter && !tp_ui_topic_pattern_match(s->filter, topic, tlen))
            continue;
        if (!line.len) {
            tap_line(&line, "drop", in);
            tp_buf_printf(&line,
                          ",\"reason\":\"%s\",\"processor\":", tp_drop_reason_name(d->reason));
            tp_json_write_string(&line, proc, strlen(proc));
            tp_buf_puts(&line, ",\"stage\":");
            tp_json_write_string(&line, d->stage, strlen(d->stage));
            tp_buf_puts(&line, ",\"error\":");
            tp_json_write_string(&line, d->error, strlen(d->error));
            tp_buf_puts(&line, "}\n\n");
        }
        if (line.data)
            stream_push(s, line.data, line.len);
        stream_wake(s);
    }
    pthread_mutex_unlock(&ui->stream_lock);
    tp_buf_free(&line);
}

/* ---------- the ticker ---------- */

static void *ticker_main(void *arg)
{
    pthread_setname_np(pthread_self(), "tp-ui");
    struct tp_ui *ui = arg;
    int64_t prev_ns = tp_mono_ns();
    for (;;) {
        struct timespec until = tp_deadline_in_ms(UI_TICK_MS);
        pthread_mutex_lock(&ui->stop_lock);
        while (!ui->stop && pthread_cond_timedwait(&ui->stop_cond, &ui->stop_lock, &until) == 0)
            ;
        int stop = ui->stop;
        pthread_mutex_unlock(&ui->stop_lock);
        if (stop)
            break;
        int64_t now_ns = tp_mono_ns();
        double dt = (double)(now_ns - prev_ns) / 1e9;
        prev_ns = now_ns;
        tp__ui_stats_tick(ui, dt);
        pthread_mutex_lock(&ui->lock);
        tp__ui_tick_locked(ui, dt);
        pthread_mutex_unlock(&ui->lock);
        pthread_mutex_lock(&ui->stream_lock);
        for (struct ui_stream *s = ui->streams; s; s = s->next) {
            s->idle_ticks++;
            if (!s->tap || s->idle_ticks >= UI_KEEPALIVE_TICKS || s->lost > s->lost_told)
                stream_wake(s);
        }
        pthread_mutex_unlock(&ui->stream_lock);
    }
    return NULL;
}

struct tp_ui *tp_ui_new(const struct tp_ui_config *cfg, const struct tp_ui_source *src)
{
    if (!cfg->enabled)
        return NULL;
    struct tp_ui *ui = calloc(1, sizeof(*ui));
    if (!ui)
        return NULL;
    ui->cfg = *cfg;
    if (src)
        ui->src = *src;
    ui->tick = 1;
    ui->started_ms = tp__ui_now_ms();
    pthread_mutex_init(&ui->lock, NULL);
    pthread_mutex_init(&ui->stream_lock, NULL);
    pthread_mutex_init(&ui->stop_lock, NULL);
    pthread_cond_init(&ui->stop_cond, NULL);
    return ui;
}

int tp_ui_start(struct tp_ui *ui)
{
    if (!ui || ui->ticker_started)
        return 0;
    ui->ticker_started = pthread_create(&ui->ticker, NULL, ticker_main, ui) == 0;
    return ui->ticker_started ? 0 : -1;
}

void tp_ui_close_streams(struct tp_ui *ui)
{
    if (!ui)
        return;
    pthread_mutex_lock(&ui->stop_lock);
    ui->stop = 1;
    pthread_cond_broadcast(&ui->stop_cond);
    pthread_mutex_unlock(&ui->stop_lock);
    if (ui->ticker_started)
        pthread_join(ui->ticker, NULL);
    ui->ticker_started = 0;
    pthread_mutex_lock(&ui->stream_lock);
    ui->closing = 1;
    for (struct ui_stream *s = ui->streams; s; s = s->next)
        stream_wake(s);
    pthread_mutex_unlock(&ui->stream_lock);
}

void tp_ui_free(struct tp_ui *ui)
{
    if (!ui)
        return;
    tp_ui_close_streams(ui);
    tp__ui_stores_free(ui);
    pthread_mutex_destroy(&ui->lock);
    pthread_mutex_destroy(&ui->stream_lock);
    pthread_mutex_destroy(&ui->stop_lock);
    pthread_cond_destroy(&ui->stop_cond);
    free(ui);
}

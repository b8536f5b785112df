/* Kafka output (librdkafka producer, idempotent by default). submit()
 * produces a batch and returns; a poller thread reads delivery reports (as
 * events) and completes the batch once every message of it is acknowledged
 * by the broker, so many batches are in flight (plugin.h) while the
 * pipeline's acks (and the input's commits) still follow broker
 * acknowledgements. The reported messages are freed by the writer, which
 * allocated them (see `spent`). Retries are librdkafka's own (in order,
 * idempotent producer). Headers carry the metadata except kafka_*
 * (`headers: none`: no headers). The payload is not copied: the batch stays
 * valid until its completion (plugin.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/clock.h"
#include "io/kafka/internal.h"

static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};

static const struct tp_option out_options[] = {
    TP_OPTION(struct tp__kafka_out_config, brokers, "brokers", TP_OPT_STRINGS, NULL,
              "bootstrap brokers, host:port", .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct tp__kafka_out_config, topic, "topic", TP_OPT_STRING, "umh.messages",
              "topic to produce to"),
    TP_OPTION(struct tp__kafka_out_config, key_meta, "key_meta", TP_OPT_STRING, "umh_topic",
              "metadata entry used as the record key (absent: no key)"),
    TP_OPTION(struct tp__kafka_out_config, client_id, "client_id", TP_OPT_STRING, "tagproc",
              "client.id"),
    TP_OPTION(struct tp__kafka_out_config, compression, "compression", TP_OPT_STRING, "none",
              "compression.codec", .choices = codecs),
    TP_OPTION(struct tp__kafka_out_config, linger_ms, "linger_ms", TP_OPT_DURATION, "5",
              "linger.ms: how long to wait to fill a batch", .int_ms = 1, .min = 0,
              .max = INT64_MAX),
    TP_OPTION(struct tp__kafka_out_config, batch_size, "batch_size", TP_OPT_INT, "10000",
              "batch.num.messages: most messages per produce request", .min = 1, .max = INT64_MAX),
    TP_OPTION(struct tp__kafka_out_config, idempotent, "idempotent", TP_OPT_BOOL, "true",
              "enable.idempotence (no duplicates or reordering from producer retries)"),
    TP_OPTION(
        struct tp__kafka_out_config, max_retries, "max_retries", TP_OPT_INT, "-1",
        "-1: deliveries never time out (librdkafka retries them, in order, until the broker is "
        "back; message.timeout.ms = 0); >= 0: a delivery that failed after message.timeout.ms "
        "(default 300 s) fails the output: tagproc exits 1 and the input is not acknowledged"),
    TP_OPTION(struct tp__kafka_out_config, headers, "headers", TP_OPT_STRING, "all",
              "all: every metadata entry except kafka_* becomes a record header; none: records "
              "carry no headers (saves librdkafka's allocation per header)",
              .choices = tp__kafka_header_modes),
    TP_OPTION(struct tp__kafka_out_config, properties, "properties", TP_OPT_STRMAP, NULL,
              "extra librdkafka properties, passed as-is"),
    {0},
};

/* A submitted batch: completes when `remaining` reaches 0 (one per message
 * produced and not yet reported, plus one while submit is at it). */
struct tracker {
    struct tp_out_batch *b;
    int remaining;               /* atomic */
    rd_kafka_resp_err_t err;     /* first failed delivery (atomic) */
    struct tracker *prev, *next; /* out->trackers, under out->lock */
};

/* Delivery-report events served by the poller, their messages not yet freed. */
struct spent {
    rd_kafka_event_t **ev;
    size_t n, cap;
};

struct kafka_out {
    struct tp__kafka_names names; /* first: librdkafka's opaque (internal.h) */
    const struct tp__kafka_out_config *cfg;
    int no_headers; /* headers: none */
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    rd_kafka_queue_t *mainq; /* delivery reports, errors, statistics */
    /* A delivery report's messages (each with its headers: ~14 allocations)
     * are freed where they were allocated: the poller appends served
     * reports to `spent` (under lock), the writer takes them into `freeing`
     * and destroys them before it produces more, so jemalloc's thread cache
     * hands the same memory back to the next messages instead of moving it
     * between threads through the arenas (docs/kafka.md). */
    struct spent spent, freeing;
    pthread_t poller;
    int poller_started;
    int closing;        /* atomic: the poller ends */
    int64_t stop_at_ms; /* monotonic time of stop(), 0 while running (atomic) */
    pthread_mutex_t lock;
    struct tracker *trackers; /* batches in flight, freed at close if abandoned */
};

/* After a stop, deliveries still pending this long are given up on: the
 * broker is unreachable, and the unacknowledged input comes back later. */
#define STOP_GRACE_MS 10000

static void tracker_done(struct kafka_out *out, struct tracker *t)
{
    pthread_mutex_lock(&out->lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        out->trackers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&out->lock);
    rd_kafka_resp_err_t e = __atomic_load_n(&t->err, __ATOMIC_ACQUIRE);
    struct tp_error err = {0};
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        tp_out_batch_complete(t->b, TP_OK, NULL);
    } else {
        char why[256];
        rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(out->rk, why, sizeof(why));
        if (fatal)
            tp_error_set(&err, TP_IO, "%s: fatal producer error %s: %s", out->names.who,
                         rd_kafka_err2name(fatal), why);
        else if (__atomic_load_n(&out->stop_at_ms, __ATOMIC_RELAXED))
            tp_error_set(&err, TP_IO,
                         "%s: stopping while messages to %s are not acknowledged (%s); "
                         "their input will be delivered again",
                         out->names.who, out->cfg->topic, rd_kafka_err2str(e));
        else
            tp_error_set(&err, TP_IO, "%s: delivery to %s failed: %s", out->names.who,
                         out->cfg->topic, rd_kafka_err2str(e));
        tp_out_batch_complete(t->b, TP_IO, &err);
    }
    free(t);
}

static void tracker_put(struct kafka_out *out, struct tracker *t)
{
    if (__atomic_sub_fetch(&t->remaining, 1, __ATOMIC_ACQ_REL) == 0)
        tracker_done(out, t);
}

static void tracker_fail(struct tracker *t, rd_kafka_resp_err_t e)
{
    rd_kafka_resp_err_t none = RD_KAFKA_RESP_ERR_NO_ERROR;
    __atomic_compare_exchange_n(&t->err, &none, e, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* The delivery reports of one event (poller thread). */
static void serve_reports(struct kafka_out *out, rd_kafka_event_t *ev)
{
    const rd_kafka_message_t *rkm;
    while ((rkm = rd_kafka_event_message_next(ev))) {
        struct tracker *t = rkm->_private;
        if (rkm->err)
            tracker_fail(t, rkm->err);
        tracker_put(out, t);
    }
}

static void spent_destroy(struct spent *s)
{
    for (size_t i = 0; i < s->n; i++)
        rd_kafka_event_destroy(s->ev[i]);
    s->n = 0;
}

/* Hands a served report to the writer (freed at once without memory). */
static void spent_add(struct kafka_out *out, rd_kafka_event_t *ev)
{
    pthread_mutex_lock(&out->lock);
    struct spent *s = &out->spent;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        rd_kafka_event_t **v = realloc(s->ev, cap * sizeof(*v));
        if (!v) {
            pthread_mutex_unlock(&out->lock);
            rd_kafka_event_destroy(ev);
            return;
        }
        s->ev = v;
        s->cap = cap;
    }
    s->ev[s->n++] = ev;
    pthread_mutex_unlock(&out->lock);
}

/* Writer (or close): frees the messages of the reports served so far. */
static void free_spent(struct kafka_out *out)
{
    pthread_mutex_lock(&out->lock);
    struct spent s = out->spent;
    out->spent = out->freeing; /* empty */
    out->freeing = s;
    pthread_mutex_unlock(&out->lock);
    spent_destroy(&out->freeing);
}

/* The integer after `"key":` in [s, end), or -1. */
static long long json_int(const char *s, const char *end, const char *key)
{
    char pat[48];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    size_t n = strlen(pat);
    for (const char *p = s; p && p + n < end; p = memchr(p + 1, '"', (size_t)(end - p - 1)))
        if (memcmp(p, pat, n) == 0)
            return strtoll(p + n, NULL, 10);
    return -1;
}

/* The topic part of the statistics (the output's one topic): messages per
 * produce batch (all partitions) and messages sent per partition. */
static void stats_topic(const struct kafka_out *out, const char *t, const char *end)
{
    const char *cnt = t ? strstr(t, "\"batchcnt\":") : NULL;
    const char *size = t ? strstr(t, "\"batchsize\":") : NULL;
    if (!cnt || !size)
        return;
    char parts[512];
    size_t n = 0;
    parts[0] = '\0';
    for (const char *p = strstr(t, "\"partition\":"); p && n < sizeof(parts) - 48;
         p = strstr(p + 1, "\"partition\":")) {
        long long id = json_int(p, end, "partition");
        if (id >= 0) /* -1: librdkafka's internal unassigned partition */
            n += (size_t)snprintf(parts + n, sizeof(parts) - n, " %lld:%lld", id,
                                  json_int(p, end, "txmsgs"));
    }
    tp_log(TP_LOG_DEBUG,
           "%s statistics: topic %s: messages per produce batch p50 %lld, avg %lld, max %lld; "
           "bytes per batch p50 %lld; messages sent per partition:%s",
           out->names.who, out->cfg->topic, json_int(cnt, end, "p50"), json_int(cnt, end, "avg"),
           json_int(cnt, end, "max"), json_int(size, end, "p50"), parts);
}

/* librdkafka statistics (properties: {statistics.interval.ms: "1000"}), at
 * debug level: per broker the produce requests sent and their round-trip
 * time percentiles, per topic the batch sizes and messages per partition,
 * the measurement behind docs/kafka.md. */
static void log_stats(const struct kafka_out *out, const char *json, size_t len)
{
    const char *end = json + len;
    for (const char *b = strstr(json, "\"nodeid\":"); b; b = strstr(b + 1, "\"nodeid\":")) {
        const char *next = strstr(b + 1, "\"nodeid\":");
        const char *bend = next ? next : end;
        const char *rtt = strstr(b, "\"rtt\": {");
        if (!rtt || rtt > bend || json_int(b, bend, "nodeid") < 0)
            continue;
        tp_log(TP_LOG_DEBUG,
               "%s statistics: broker %lld: %lld requests sent, produce round trip "
               "p50 %lld us, p90 %lld us, p99 %lld us, max %lld us",
               out->names.who, json_int(b, bend, "nodeid"), json_int(b, bend, "tx"),
               json_int(rtt, bend, "p50"), json_int(rtt, bend, "p90"), json_int(rtt, bend, "p99"),
               json_int(rtt, bend, "max"));
    }
    stats_topic(out, strstr(json, "\"topics\":"), end);
}

/* Serves delivery reports, errors and statistics (events of the main
 * queue); after stop(), purges what the broker did not take within the
 * grace time. Idle for 100 ms, it frees the spent reports itself (the
 * writer has nothing to produce). */
static void *poller_main(void *arg)
{
    pthread_setname_np(pthread_self(), "tp-kafka-dr");
    struct kafka_out *out = arg;
    int purged = 0;
    while (!__atomic_load_n(&out->closing, __ATOMIC_ACQUIRE)) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(out->mainq, 100);
        switch (ev ? rd_kafka_event_type(ev) : RD_KAFKA_EVENT_NONE) {
        case RD_KAFKA_EVENT_NONE:
            pthread_mutex_lock(&out->lock);
            spent_destroy(&out->spent);
            pthread_mutex_unlock(&out->lock);
            break;
        case RD_KAFKA_EVENT_DR:
            serve_reports(out, ev);
            spent_add(out, ev);
            ev = NULL;
            break;
        case RD_KAFKA_EVENT_ERROR:
            tp__kafka_log_error(out->rk, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev));
            break;
        case RD_KAFKA_EVENT_STATS: {
            const char *json = rd_kafka_event_stats(ev);
            log_stats(out, json, strlen(json));
            break;
        }
        default:
            break;
        }
        if (ev)
            rd_kafka_event_destroy(ev);
        int64_t at = __atomic_load_n(&out->stop_at_ms, __ATOMIC_RELAXED);
        if (!purged && at && tp_mono_ms() - at > STOP_GRACE_MS && rd_kafka_outq_len(out->rk) > 0) {
            rd_kafka_purge(out->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            purged = 1;
        }
    }
    return NULL;
}

static void kafka_out_close(void *state);

static int kafka_out_open(const void *config, void **outp, struct tp_error *err)
{
    const struct tp__kafka_out_config *cfg = config;
    struct kafka_out *out = calloc(1, sizeof(*out));
    if (!out)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    tp__kafka_names_init(&out->names, "output", cfg->connector);
    out->cfg = cfg;
    out->no_headers = tp__kafka_headers_none(cfg->headers);
    pthread_mutex_init(&out->lock, NULL);
    rd_kafka_conf_t *conf = NULL;
    char num[32];
    int rc = TP_OK;
    if (!cfg->topic || !cfg->topic[0]) {
        rc = tp_error_set(err, TP_CONFIG, "%s.topic: expected a topic name", out->names.path);
        goto fail;
    }
    rc = tp__kafka_conf_new(out->names.path, &cfg->brokers, cfg->client_id, &conf, err);
    if (rc)
        goto fail;
    rc = tp__kafka_conf_set(conf, out->names.path, "compression.codec", cfg->compression, err);
    snprintf(num, sizeof(num), "%lld", (long long)cfg->linger_ms);
    if (!rc)
        rc = tp__kafka_conf_set(conf, out->names.path, "linger.ms", num, err);
    snprintf(num, sizeof(num), "%lld", (long long)cfg->batch_size);
    if (!rc)
        rc = tp__kafka_conf_set(conf, out->names.path, "batch.num.messages", num, err);
    if (!rc)
        rc = tp__kafka_conf_set(conf, out->names.path, "enable.idempotence",
                                cfg->idempotent ? "true" : "false", err);
    /* Small produce requests back to back on one connection: without this,
     * Nagle holds each one until the previous is acknowledged. */
    if (!rc)
        rc = tp__kafka_conf_set(conf, out->names.path, "socket.nagle.disable", "true", err);
    if (!rc && cfg->max_retries < 0)
        rc = tp__kafka_conf_set(conf, out->names.path, "message.timeout.ms", "0", err);
    if (!rc)
        rc = tp__kafka_conf_apply(conf, out->names.path, &cfg->properties, err);
    if (rc)
        goto fail;
    rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_STATS);
    rd_kafka_conf_set_opaque(conf, out);
    char why[512];
    out->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!out->rk) {
        rc = tp_error_set(err, TP_CONFIG, "%s: cannot create producer: %s", out->names.path, why);
        goto fail;
    }
    conf = NULL;
    out->mainq = rd_kafka_queue_get_main(out->rk);
    out->rkt = rd_kafka_topic_new(out->rk, cfg->topic, NULL);
    if (!out->rkt) {
        rc = tp_error_set(err, TP_CONFIG, "%s.topic: %s", out->names.path,
                          rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    if (pthread_create(&out->poller, NULL, poller_main, out)) {
        rc = tp_error_set(err, TP_NOMEM, "%s: cannot start the delivery report thread",
                          out->names.path);
        goto fail;
    }
    out->poller_started = 1;
    *outp = out;
    return TP_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    kafka_out_close(out);
    return rc;
}

/* The record headers of m; NULL: none (headers: none). */
static rd_kafka_headers_t *make_headers(const struct kafka_out *out, const struct tp_msg *m)
{
    const char *extra = out->cfg->extra_header;
    if (out->no_headers && !extra)
        return NULL;
    rd_kafka_headers_t *h = rd_kafka_headers_new(out->no_headers ? 1 : m->n_meta + 1);
    for (uint32_t i = 0; !out->no_headers && i < m->n_meta; i++) {
        const char *k = tp_msg_meta_key(m, i);
        if ((k[0] == 'k' && strncmp(k, "kafka_", 6) == 0) || (extra && strcmp(k, extra) == 0))
            continue;
        rd_kafka_header_add(h, k, (ssize_t)m->meta[i].key_len, tp_msg_meta_val(m, i),
                            (ssize_t)m->meta[i].val_len);
    }
    if (extra)
        rd_kafka_header_add(h, extra, -1, out->cfg->extra_header_value, -1);
    return h;
}

/* Produces message m under key (NULL: none) for tracker t, waiting while
 * the local queue is full (the poller's delivery reports make room). */
static rd_kafka_resp_err_t produce_one(struct kafka_out *out, const struct tp_msg *m,
                                       const char *key, size_t klen, struct tracker *t)
{
    for (;;) {
        rd_kafka_headers_t *h = make_headers(out, m);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            out->rk, RD_KAFKA_V_RKT(out->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_VALUE((void *)m->payload, m->payload_len),
            RD_KAFKA_V_KEY((const void *)key, key ? klen : 0), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_OPAQUE(t), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return e;
        if (h)
            rd_kafka_headers_destroy(h);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return e;
        if (__atomic_load_n(&out->stop_at_ms, __ATOMIC_RELAXED) &&
            tp_mono_ms() - __atomic_load_n(&out->stop_at_ms, __ATOMIC_RELAXED) > STOP_GRACE_MS)
            return e;
        free_spent(out); /* their messages still count in librdkafka's queue */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static int kafka_out_submit(void *state, struct tp_out_batch *b)
{
    struct kafka_out *out = state;
    free_spent(out);
    struct tracker *t = calloc(1, sizeof(*t));
    if (!t) {
        struct tp_error err;
        tp_error_set(&err, TP_NOMEM, "out of memory");
        return tp_out_batch_fail(b, TP_NOMEM, &err);
    }
    t->b = b;
    t->remaining = 1; /* held while producing */
    pthread_mutex_lock(&out->lock);
    t->next = out->trackers;
    if (t->next)
        t->next->prev = t;
    out->trackers = t;
    pthread_mutex_unlock(&out->lock);
    for (size_t i = 0; i < b->n; i++) {
        size_t klen = 0;
        const char *key = NULL;
        if (!out->cfg->key_fn)
            key = tp_msg_meta_get(b->msgs[i], out->cfg->key_meta, &klen);
        else if (out->cfg->key_fn(out->cfg->key_ctx, b, i, &key, &klen))
            continue; /* dropped by the hook */
        __atomic_add_fetch(&t->remaining, 1, __ATOMIC_ACQ_REL);
        rd_kafka_resp_err_t e = produce_one(out, b->msgs[i], key, klen, t);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        __atomic_sub_fetch(&t->remaining, 1, __ATOMIC_ACQ_REL); /* the hold stays */
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            tp_out_batch_drop(b, i, TP_DROP_INVALID_VALUE,
                              "%s: record of %zu bytes for %s is larger than "
                              "message.max.bytes",
                              out->names.who, b->msgs[i]->payload_len, out->cfg->topic);
            continue;
        }
        tracker_fail(t, e); /* the pipeline stops: nothing later is acked */
        break;
    }
    int failed = __atomic_load_n(&t->err, __ATOMIC_ACQUIRE) != RD_KAFKA_RESP_ERR_NO_ERROR;
    tracker_put(out, t);
    return failed ? TP_IO : TP_OK;
}

static void kafka_out_stop(void *state)
{
    struct kafka_out *out = state;
    __atomic_store_n(&out->stop_at_ms, tp_mono_ms(), __ATOMIC_RELAXED);
}

static void kafka_out_close(void *state)
{
    struct kafka_out *out = state;
    if (!out)
        return;
    if (out->rk && out->poller_started) {
        /* the poller serves the last delivery reports (their messages
         * count in outq_len until freed) */
        for (int64_t until = tp_mono_ms() + 10000;
             rd_kafka_outq_len(out->rk) > 0 && tp_mono_ms() < until;) {
            free_spent(out);
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        __atomic_store_n(&out->closing, 1, __ATOMIC_RELEASE);
        pthread_join(out->poller, NULL);
    }
    spent_destroy(&out->spent);
    spent_destroy(&out->freeing);
    free(out->spent.ev);
    free(out->freeing.ev);
    if (out->mainq)
        rd_kafka_queue_destroy(out->mainq);
    if (out->rk) {
        if (out->rkt)
            rd_kafka_topic_destroy(out->rkt);
        rd_kafka_destroy(out->rk);
    }
    while (out->trackers) { /* abandoned (plugin.h: close) */
        struct tracker *t = out->trackers;
        out->trackers = t->next;
        free(t);
    }
    pthread_mutex_destroy(&out->lock);
    free(out);
}

const struct tp_output_plugin tp_output_kafka = {
    .name = "kafka",
    .options = out_options,
    .config_size = sizeof(struct tp__kafka_out_config),
    .open = kafka_out_open,
    .submit = kafka_out_submit,
    .close = kafka_out_close,
    .stop = kafka_out_stop,
};

/* The `nats` input. Core NATS: subscriptions (optionally in a queue group)
 * feed a bounded queue; at-most-once. JetStream: a durable pull consumer
 * (created if missing, then bound so it is never deleted by us); every
 * message is acked only in ack(), after the output acknowledged everything
 * derived from it: at-least-once. The output lives in output.c. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/log.h"
#include "core/clock.h"
#include "core/plugin.h"
#include "io/nats/internal.h"

struct js_in_config {
    char *stream;
    char *durable;
    char *filter_subject;
    char *deliver_policy;
    int64_t ack_wait_ms;
    int64_t max_ack_pending;
    int64_t fetch_wait_ms;
    int create_stream;
    char *storage;
};

struct in_config {
    struct tp__nats_conn_config conn;
    struct tp_strlist subjects;
    char *queue_group;
    int64_t max_queued;
    struct js_in_config *jetstream; /* NULL: core NATS */
    int64_t max_meta_keys;
};

static const char *const deliver_policies[] = {"all", "last", "new", "last_per_subject", NULL};
static const char *const storages[] = {"file", "memory", NULL};

static const struct tp_option js_in_options[] = {
    TP_OPTION(struct js_in_config, stream, "stream", TP_OPT_STRING, NULL, "stream name",
              .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct js_in_config, durable, "durable", TP_OPT_STRING, NULL,
              "durable consumer name (created when missing; no '.')", .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct js_in_config, filter_subject, "filter_subject", TP_OPT_STRING, NULL,
              "consumer filter subject (default: the single entry of subjects)"),
    TP_OPTION(struct js_in_config, deliver_policy, "deliver_policy", TP_OPT_STRING, "all",
              "where a new consumer starts", .choices = deliver_policies),
    TP_OPTION(struct js_in_config, ack_wait_ms, "ack_wait", TP_OPT_DURATION, "30s",
              "redelivery delay of an unacknowledged message (new consumers; 0: the server's)"),
    TP_OPTION(struct js_in_config, max_ack_pending, "max_ack_pending", TP_OPT_INT, "1000",
              "most messages delivered but not yet acknowledged (new consumers)", .min = 1,
              .max = INT64_MAX),
    TP_OPTION(struct js_in_config, fetch_wait_ms, "fetch_wait", TP_OPT_DURATION, "500ms",
              "longest wait of one pull request (bounds the reaction time to a stop; at least 10ms "
              "is used)"),
    TP_OPTION(struct js_in_config, create_stream, "create_stream", TP_OPT_BOOL, "false",
              "create the stream (subjects = subjects or filter_subject) when missing"),
    TP_OPTION(struct js_in_config, storage, "storage", TP_OPT_STRING, "file",
              "storage of a created stream", .choices = storages),
    {0},
};

static const struct tp_option in_options[] = {
    TP_NATS_CONN_OPTIONS(struct in_config),
    TP_OPTION(struct in_config, subjects, "subjects", TP_OPT_STRINGS, NULL,
              "subjects to subscribe to (wildcards allowed)"),
    TP_OPTION(struct in_config, queue_group, "queue_group", TP_OPT_STRING, NULL,
              "core NATS queue group: members share the messages"),
    TP_OPTION(struct in_config, max_queued, "max_queued", TP_OPT_INT, "10000",
              "core NATS: messages buffered before delivery pauses", .min = 1, .max = INT64_MAX),
    TP_OPTION(struct in_config, jetstream, "jetstream", TP_OPT_OPTIONAL, NULL,
              "read a JetStream durable pull consumer instead of core NATS subscriptions",
              .sub = js_in_options, .elem_size = sizeof(struct js_in_config)),
    TP_OPTION(struct in_config, max_meta_keys, "max_meta_keys", TP_OPT_INT,
              TP_JSON_MAX_META_KEYS_TEXT,
              "most metadata entries (nats_* fields + headers) of one message; a message with "
              "more is dropped as invalid_input (dead-lettered with its payload; JetStream: then "
              "acked)",
              .min = 1, .max = INT64_MAX),
    {0},
};

/* A FIFO of natsMsg pointers (core: received, not yet read; JetStream:
 * delivered, not yet acked). */
struct fifo {
    natsMsg **v;
    size_t head, len, cap;
};

static int fifo_push(struct fifo *f, natsMsg *m)
{
    if (f->len == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 256;
        natsMsg **nv = malloc(ncap * sizeof(*nv));
        if (!nv)
            return TP_NOMEM;
        for (size_t i = 0; i < f->len; i++)
            nv[i] = f->v[(f->head + i) % f->cap];
        free(f->v);
        f->v = nv;
        f->cap = ncap;
        f->head = 0;
    }
    f->v[(f->head + f->len) % f->cap] = m;
    f->len++;
    return TP_OK;
}

static natsMsg *fifo_pop(struct fifo *f)
{
    if (!f->len)
        return NULL;
    natsMsg *m = f->v[f->head];
    f->head = (f->head + 1) % f->cap;
    f->len--;
    return m;
}

/* Removes m (normally the head: acks arrive in delivery order). 1 when found. */
static int fifo_remove(struct fifo *f, natsMsg *m)
{
    if (f->len && f->v[f->head] == m) {
        fifo_pop(f);
        return 1;
    }
    for (size_t i = 1; i < f->len; i++) {
        if (f->v[(f->head + i) % f->cap] != m)
            continue;
        for (size_t j = i; j + 1 < f->len; j++)
            f->v[(f->head + j) % f->cap] = f->v[(f->head + j + 1) % f->cap];
        f->len--;
        return 1;
    }
    return 0;
}

struct nats_in {
    const struct in_config *cfg;
    int use_js;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *pull;
    natsSubscription **subs; /* core */
    size_t n_subs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct fifo queue;   /* core: received messages */
    struct fifo pending; /* JetStream: delivered, not yet acked */
    int stop;
    int drained;   /* core: subscriptions drained after a stop */
    uint64_t lost; /* core: messages lost to out of memory (the next read fails) */
    uint64_t acked, ack_errors;
};

/* ---------- message conversion ---------- */

/* Stream, delivery count and stream sequence of a JetStream message, read
 * from its ack subject: "$JS.ACK.<stream>.<consumer>.<delivered>.<stream
 * seq>.<consumer seq>.<time>.<pending>" (or the newer form with domain and
 * account hash first). Points into reply; 0 when reply is not an ack subject. */
struct js_meta {
    const char *stream, *delivered, *sequence;
    size_t stream_len, delivered_len, sequence_len;
};

static int js_meta_parse(const char *reply, struct js_meta *md)
{
    const char *tok[12];
    size_t len[12], n = 0;
    if (!reply || strncmp(reply, "$JS.ACK.", 8) != 0)
        return 0;
    for (const char *p = reply + 8, *t = p;; p++) {
        if (*p != '.' && *p != '\0')
            continue;
        if (n == 12)
            return 0;
        tok[n] = t;
        len[n++] = (size_t)(p - t);
        if (!*p)
            break;
        t = p + 1;
    }
    size_t base = n == 7 ? 0 : n >= 9 ? 2 : SIZE_MAX; /* stream token */
    if (base == SIZE_MAX)
        return 0;
    *md = (struct js_meta){tok[base], tok[base + 2], tok[base + 3],
                           len[base], len[base + 2], len[base + 3]};
    return 1;
}

/* Reports m in drops as invalid_input (subject, stream sequence, why, and
 * the payload kept for the dead letter). */
static void drop_invalid(struct nats_in *in, natsMsg *m, const char *why, struct tp_drops *drops)
{
    char where[64] = "";
    struct js_meta md;
    if (in->use_js && js_meta_parse(natsMsg_GetReply(m), &md))
        snprintf(where, sizeof(where), " (stream %.*s sequence %.*s)",
                 (int)(md.stream_len < 30 ? md.stream_len : 30), md.stream,
                 (int)(md.sequence_len < 20 ? md.sequence_len : 20), md.sequence);
    tp_drops_add(drops, TP_DROP_INVALID_INPUT, "input", "nats subject %s%s: %s",
                 natsMsg_GetSubject(m), where, why);
    tp_drops_set_raw(drops, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
}

static int append_header(void *t, const char *key, size_t klen, const char *val, size_t vlen)
{
    return tp_msg_meta_append(t, key, klen, val, vlen);
}

/* The headers of m as metadata of t (a repeated key keeps its last value).
 * TP_INVAL with why[] when the header block is malformed. */
static int add_headers(natsMsg *m, struct tp_msg *t, char *why, size_t size)
{
    size_t len = 0;
    const char *block = tp__nats_header_block(m, &len);
    if (block) {
        int rc = tp__nats_headers_parse(block, len, append_header, t, why, size);
        return rc ? rc : tp_msg_meta_dedupe(t);
    }
    /* Not the libnats 3.x layout: libnats' own parser, which cannot read an
     * empty value (docs/nats.md). */
    const char **keys = NULL;
    int n = 0, rc = 0;
    natsStatus s = natsMsgHeader_Keys(m, &keys, &n);
    for (int i = 0; s == NATS_OK && !rc && i < n; i++) {
        const char *v = NULL;
        s = natsMsgHeader_Get(m, keys[i], &v);
        rc = s == NATS_OK ? tp_msg_meta_sets(t, keys[i], v ? v : "") : 0;
    }
    free((void *)keys);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
        snprintf(why, size, "libnats cannot read the header block (%s)", tp__nats_errtext(s));
        return TP_INVAL;
    }
    return rc;
}

/* m as a message (*out). TP_INVAL when m is reported in drops as
 * invalid_input: a malformed header block, or more metadata entries than
 * max_meta_keys. TP_NOMEM. */
static int convert(struct nats_in *in, natsMsg *m, struct tp_msg **out, struct tp_drops *drops)
{
    struct tp_msg *t = *out = tp_msg_new();
    if (!t)
        return TP_NOMEM;
    int rc = tp_msg_set_payload(t, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    rc = rc ? rc : tp_msg_meta_sets(t, "nats_subject", natsMsg_GetSubject(m));
    const char *reply = natsMsg_GetReply(m);
    if (!rc && reply && !in->use_js)
        rc = tp_msg_meta_sets(t, "nats_reply", reply);
    struct js_meta md;
    if (!rc && in->use_js && js_meta_parse(reply, &md)) {
        rc = tp_msg_meta_set(t, "nats_stream", 11, md.stream, md.stream_len);
        rc = rc ? rc : tp_msg_meta_set(t, "nats_sequence", 13, md.sequence, md.sequence_len);
        rc = rc ? rc : tp_msg_meta_set(t, "nats_num_delivered", 18, md.delivered, md.delivered_len);
    }
    char why[200];
    rc = rc ? rc : add_headers(m, t, why, sizeof(why));
    if (!rc && t->n_meta > (uint64_t)in->cfg->max_meta_keys) {
        snprintf(why, sizeof(why),
                 "%u metadata entries (nats_* fields and headers), more than max_meta_keys (%lld)",
                 (unsigned)t->n_meta, (long long)in->cfg->max_meta_keys);
        rc = TP_INVAL;
    }
    if (rc == TP_INVAL)
        drop_invalid(in, m, why, drops);
    if (rc) {
        tp_msg_free(t);
        *out = NULL;
    }
    return rc;
}

/* ---------- open ---------- */

static void on_core_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    struct nats_in *in = closure;
    pthread_mutex_lock(&in->lock);
    /* Back-pressure: pause this delivery thread while the queue is full
     * (libnats then buffers up to its pending limits). */
    while (!in->stop && in->queue.len >= (size_t)in->cfg->max_queued)
        pthread_cond_wait(&in->cond, &in->lock);
    if (fifo_push(&in->queue, m)) {
        in->lost++; /* core NATS does not redeliver: read_core fails the input */
        natsMsg_Destroy(m);
    }
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
}

static int open_core(struct nats_in *in, struct tp_error *err)
{
    const struct in_config *cfg = in->cfg;
    if (cfg->subjects.n == 0)
        return tp_error_set(err, TP_CONFIG, "input.nats.subjects: expected at least one subject");
    in->subs = calloc(cfg->subjects.n, sizeof(*in->subs));
    if (!in->subs)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    for (size_t i = 0; i < cfg->subjects.n; i++) {
        natsStatus s;
        if (cfg->queue_group)
            s = natsConnection_QueueSubscribe(&in->subs[i], in->nc, cfg->subjects.v[i],
                                              cfg->queue_group, on_core_msg, in);
        else
            s = natsConnection_Subscribe(&in->subs[i], in->nc, cfg->subjects.v[i], on_core_msg, in);
        if (s != NATS_OK)
            return tp_error_set(err, TP_CONFIG, "input.nats.subjects[%zu]: cannot subscribe: %s", i,
                                tp__nats_errtext(s));
        in->n_subs++;
    }
    return TP_OK;
}

static int deliver_policy(const char *name)
{
    if (strcmp(name, "last") == 0)
        return js_DeliverLast;
    if (strcmp(name, "new") == 0)
        return js_DeliverNew;
    if (strcmp(name, "last_per_subject") == 0)
        return js_DeliverLastPerSubject;
    return js_DeliverAll;
}

/* Creates the durable pull consumer unless it exists (an existing one keeps its config). */
static int ensure_consumer(struct nats_in *in, const char *filter, struct tp_error *err)
{
    const struct js_in_config *c = in->cfg->jetstream;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, in->js, c->stream, c->durable, NULL, &jerr);
    if (s == NATS_OK) {
        jsConsumerInfo_Destroy(ci);
        return TP_OK;
    }
    if (s != NATS_NOT_FOUND)
        return tp_error_set(err, TP_IO, "input.nats.jetstream: consumer %s on stream %s: %s",
                            c->durable, c->stream, tp__nats_errtext(s));
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = c->durable;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = (jsDeliverPolicy)deliver_policy(c->deliver_policy);
    cc.FilterSubject = filter;
    cc.AckWait = c->ack_wait_ms * 1000000;
    cc.MaxAckPending = c->max_ack_pending;
    s = js_AddConsumer(&ci, in->js, c->stream, &cc, NULL, &jerr);
    if (s != NATS_OK) {
        /* Another process may have created it at the same moment. */
        if (js_GetConsumerInfo(&ci, in->js, c->stream, c->durable, NULL, NULL) == NATS_OK) {
            jsConsumerInfo_Destroy(ci);
            return TP_OK;
        }
        return tp_error_set(err, TP_IO,
                            "input.nats.jetstream: cannot create consumer %s on stream %s: %s "
                            "(code %d)",
                            c->durable, c->stream, tp__nats_errtext(s), (int)jerr);
    }
    jsConsumerInfo_Destroy(ci);
    tp_log(TP_LOG_INFO, "created JetStream consumer %s on stream %s", c->durable, c->stream);
    return TP_OK;
}

static int open_js(struct nats_in *in, struct tp_error *err)
{
    const struct in_config *cfg = in->cfg;
    const struct js_in_config *c = cfg->jetstream;
    int rc;
    if (strchr(c->durable, '.'))
        return tp_error_set(err, TP_CONFIG,
                            "input.nats.jetstream.durable: must not contain '.', got \"%s\"",
                            c->durable);
    const char *filter = c->filter_subject;
    if (!filter && cfg->subjects.n == 1)
        filter = cfg->subjects.v[0];
    if (!filter)
        return tp_error_set(err, TP_CONFIG,
                            "input.nats.jetstream.filter_subject: required unless subjects has "
                            "exactly one entry");
    if (cfg->queue_group)
        return tp_error_set(err, TP_CONFIG,
                            "input.nats.queue_group: not used with jetstream (processes sharing "
                            "a durable share its messages)");
    natsStatus s = natsConnection_JetStream(&in->js, in->nc, NULL);
    if (s != NATS_OK)
        return tp_error_set(err, TP_IO, "input.nats: JetStream context: %s", tp__nats_errtext(s));
    if (c->create_stream) {
        struct tp_strlist one = {(char **)&filter, 1};
        rc = tp__nats_ensure_stream(in->js, c->stream, cfg->subjects.n ? &cfg->subjects : &one,
                                    c->storage, err);
        if (rc)
            return rc;
    }
    rc = ensure_consumer(in, filter, err);
    if (rc)
        return rc;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->stream;
    so.Consumer = c->durable; /* bind: the library will never delete the consumer */
    jsErrCode jerr = 0;
    s = js_PullSubscribe(&in->pull, in->js, filter, c->durable, NULL, &so, &jerr);
    if (s != NATS_OK)
        return tp_error_set(err, TP_IO, "input.nats.jetstream: cannot bind to consumer %s: %s",
                            c->durable, tp__nats_errtext(s));
    return TP_OK;
}

static void nats_in_close(void *p);

static int nats_in_open(const void *config, void **out, struct tp_error *err)
{
    struct nats_in *in = calloc(1, sizeof(*in));
    if (!in)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    in->cfg = config;
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->cond, NULL);
    in->use_js = in->cfg->jetstream != NULL;
    int rc = tp__nats_connect(&in->cfg->conn, "input.nats", &in->nc, err);
    if (!rc)
        rc = in->use_js ? open_js(in, err) : open_core(in, err);
    if (rc) {
        nats_in_close(in);
        return rc;
    }
    *out = in;
    return TP_OK;
}

/* ---------- read ---------- */

/* Waits up to ms for a stop; returns the stop flag. */
static int wait_stop(struct nats_in *in, int64_t ms)
{
    struct timespec ts = tp_deadline_in_ms(ms);
    pthread_mutex_lock(&in->lock);
    while (!in->stop && pthread_cond_timedwait(&in->cond, &in->lock, &ts) == 0)
        ;
    int stop = in->stop;
    pthread_mutex_unlock(&in->lock);
    return stop;
}

static int64_t fetch_wait_ms(const struct nats_in *in)
{
    int64_t ms = in->cfg->jetstream->fetch_wait_ms;
    return ms < 10 ? 10 : ms;
}

static int read_js(struct nats_in *in, struct tp_batch *batch, size_t max, struct tp_drops *drops)
{
    int64_t backoff = 100;
    for (;;) {
        pthread_mutex_lock(&in->lock);
        int stop = in->stop;
        pthread_mutex_unlock(&in->lock);
        if (stop)
            return TP_EOF;
        int want = (int)(max < (size_t)in->cfg->jetstream->max_ack_pending
                             ? max
                             : (size_t)in->cfg->jetstream->max_ack_pending);
        /* libnats 3.4.1 overflows the fetch array when a fetch starts with more
         * than half a batch already queued (late deliveries for an earlier,
         * expired pull request, typically after a reconnect): its loop waits for
         * `batch - queued` messages after having taken `queued`. So take queued
         * messages first with a batch no larger than the queue: it is filled
         * from the queue alone and never reaches that loop. */
        int queued = 0;
        if (natsSubscription_GetPending(in->pull, &queued, NULL) == NATS_OK && queued > 0 &&
            queued < want)
            want = queued;
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus s = natsSubscription_Fetch(&list, in->pull, want, fetch_wait_ms(in), &jerr);
        if (s == NATS_TIMEOUT && list.Count == 0)
            continue;
        if (s != NATS_OK && list.Count == 0) {
            char key[64];
            snprintf(key, sizeof(key), "nats-fetch-%d", (int)s);
            tp_log_limited(TP_LOG_WARN, key, "nats input: fetch failed (%s), retrying",
                           tp__nats_errtext(s));
            wait_stop(in, backoff);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            continue;
        }
        for (int i = 0; i < list.Count; i++) {
            natsMsg *m = list.Msgs[i];
            list.Msgs[i] = NULL;
            struct tp_msg *t = NULL;
            if (convert(in, m, &t, drops) == TP_INVAL) {
                /* Accounted (dead-lettered): done with it. */
                if (natsMsg_Ack(m, NULL) != NATS_OK)
                    tp_log_limited(TP_LOG_WARN, "nats-ack",
                                   "nats input: ack of a dropped message failed; it will be "
                                   "redelivered");
                natsMsg_Destroy(m);
                continue;
            }
            pthread_mutex_lock(&in->lock);
            int prc = t ? fifo_push(&in->pending, m) : TP_NOMEM;
            pthread_mutex_unlock(&in->lock);
            if (prc) {
                /* Not acked: the server redelivers it after ack_wait. */
                tp_log_limited(TP_LOG_ERROR, "nats-in-nomem",
                               "nats input: out of memory, message left for redelivery");
                tp_msg_free(t);
                natsMsg_Destroy(m);
                continue;
            }
            t->ack = m;
            if (tp_batch_push(batch, t)) { /* t freed; m not acked: redelivered */
                tp_log_limited(TP_LOG_ERROR, "nats-in-nomem",
                               "nats input: out of memory, message left for redelivery");
                pthread_mutex_lock(&in->lock);
                fifo_remove(&in->pending, m);
                pthread_mutex_unlock(&in->lock);
                natsMsg_Destroy(m);
            }
        }
        natsMsgList_Destroy(&list);
        if (batch->len || drops->n)
            return TP_OK;
    }
}

/* A message lost to out of memory is fatal (core NATS does not redeliver;
 * BEHAVIOUR 4.2): the read fails saying how many were lost. */
static int read_core(struct nats_in *in, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                     struct tp_error *err)
{
    pthread_mutex_lock(&in->lock);
    while (!in->stop && in->queue.len == 0)
        pthread_cond_wait(&in->cond, &in->lock);
    int stop = in->stop, drained = in->drained;
    pthread_mutex_unlock(&in->lock);
    if (stop && !drained) {
        /* Stop the server sending, then let libnats hand over what it holds. */
        for (size_t i = 0; i < in->n_subs; i++)
            natsSubscription_Drain(in->subs[i]);
        for (size_t i = 0; i < in->n_subs; i++)
            natsSubscription_WaitForDrainCompletion(in->subs[i], 5000);
        pthread_mutex_lock(&in->lock);
        in->drained = 1;
        pthread_mutex_unlock(&in->lock);
    }
    pthread_mutex_lock(&in->lock);
    while (batch->len < max && in->queue.len) {
        natsMsg *m = fifo_pop(&in->queue);
        struct tp_msg *t = NULL;
        int rc = convert(in, m, &t, drops);
        if (rc == TP_NOMEM || (!rc && tp_batch_push(batch, t)))
            in->lost++;
        natsMsg_Destroy(m);
    }
    int more = in->queue.len > 0;
    uint64_t lost = in->lost;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    if (lost)
        return tp_error_set(err, TP_NOMEM, "nats input: out of memory, %llu message(s) lost",
                            (unsigned long long)lost);
    return stop && !more ? TP_EOF : TP_OK;
}

static int nats_in_read(void *p, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                        struct tp_error *err)
{
    struct nats_in *in = p;
    /* fetch failures are retried, never fatal; a core message lost is */
    return in->use_js ? read_js(in, batch, max, drops) : read_core(in, batch, max, drops, err);
}

static void nats_in_ack(void *p, void *token)
{
    struct nats_in *in = p;
    natsMsg *m = token;
    pthread_mutex_lock(&in->lock);
    int found = fifo_remove(&in->pending, m);
    pthread_mutex_unlock(&in->lock);
    if (!found)
        return;
    natsStatus s = natsMsg_Ack(m, NULL);
    if (s == NATS_OK) {
        in->acked++;
    } else {
        in->ack_errors++;
        tp_log_limited(TP_LOG_WARN, "nats-ack",
                       "nats input: ack failed (%s); the message will be redelivered",
                       tp__nats_errtext(s));
    }
    natsMsg_Destroy(m);
}

static void nats_in_stop(void *p)
{
    struct nats_in *in = p;
    pthread_mutex_lock(&in->lock);
    in->stop = 1;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
}

static void nats_in_close(void *p)
{
    struct nats_in *in = p;
    nats_in_stop(in);
    /* Unacked JetStream messages (a fatal stop): nak them for a prompt redelivery. */
    size_t naked = 0;
    for (natsMsg *m; (m = fifo_pop(&in->pending));) {
        if (natsMsg_Nak(m, NULL) == NATS_OK)
            naked++;
        natsMsg_Destroy(m);
    }
    if (in->nc && natsConnection_FlushTimeout(in->nc, 5000) != NATS_OK && in->use_js)
        tp_log(TP_LOG_WARN, "nats input: could not confirm the last acks with the server; "
                            "those messages will be redelivered");
    if (in->use_js)
        tp_log(TP_LOG_INFO,
               "nats input: %llu messages acked, %llu ack errors, %zu returned "
               "unprocessed",
               (unsigned long long)in->acked, (unsigned long long)in->ack_errors, naked);
    for (size_t i = 0; i < in->n_subs; i++)
        natsSubscription_Destroy(in->subs[i]);
    free(in->subs);
    natsSubscription_Destroy(in->pull);
    for (natsMsg *m; (m = fifo_pop(&in->queue));)
        natsMsg_Destroy(m);
    free(in->queue.v);
    free(in->pending.v);
    jsCtx_Destroy(in->js);
    if (in->nc) {
        natsConnection_Close(in->nc);
        natsConnection_Destroy(in->nc);
    }
    pthread_mutex_destroy(&in->lock);
    pthread_cond_destroy(&in->cond);
    free(in);
}

const struct tp_input_plugin tp_input_nats = {
    .name = "nats",
    .options = in_options,
    .config_size = sizeof(struct in_config),
    .open = nats_in_open,
    .read = nats_in_read,
    .ack = nats_in_ack,
    .stop = nats_in_stop,
    .close = nats_in_close,
};

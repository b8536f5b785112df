/* The `nats` output. Each message goes to the subject rendered from a
 * {{meta.KEY}} template (default: umh_topic) with its metadata as headers.
 * JetStream: submit() publishes a batch asynchronously and returns; the PubAck
 * handler maps each acknowledged message to its batch and completes the batch
 * when all its PubAcks arrived (up to output.max_in_flight batches in flight).
 * A batch with a failed PubAck is published again by the retry thread (same
 * Nats-Msg-Id, so the stream drops the duplicates). Core NATS: publish + flush
 * inside submit (the server got them). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/plugin.h"
#include "io/nats/internal.h"

struct out_config {
    struct tp__nats_conn_config conn;
    char *subject;
    int jetstream;
    char *stream;
    int create_stream;
    struct tp_strlist stream_subjects;
    char *storage;
    int headers;
    int dedup;
    int64_t ack_timeout_ms;
    int64_t max_pending;
    int64_t max_retries;
};

static const char *const storages[] = {"file", "memory", NULL};

static const struct tp_option out_options[] = {
    TP_NATS_CONN_OPTIONS(struct out_config),
    TP_OPTION(
        struct out_config, subject, "subject", TP_OPT_STRING, "{{meta.umh_topic}}",
        "subject template; {{meta.KEY}}, ${! meta(\"KEY\") } and ${! @KEY } are replaced by the "
        "metadata value",
        .flags = TP_OPT_TEMPLATE),
    TP_OPTION(struct out_config, jetstream, "jetstream", TP_OPT_BOOL, "false",
              "publish to JetStream and wait for the stream's acknowledgement of every message"),
    TP_OPTION(struct out_config, stream, "stream", TP_OPT_STRING, NULL,
              "JetStream: expected stream (the server rejects messages stored elsewhere)"),
    TP_OPTION(struct out_config, create_stream, "create_stream", TP_OPT_BOOL, "false",
              "JetStream: create `stream` with stream_subjects when missing"),
    TP_OPTION(struct out_config, stream_subjects, "stream_subjects", TP_OPT_STRINGS, "[\"umh.>\"]",
              "subjects of a created stream"),
    TP_OPTION(struct out_config, storage, "storage", TP_OPT_STRING, "file",
              "storage of a created stream", .choices = storages),
    TP_OPTION(
        struct out_config, headers, "headers", TP_OPT_BOOL, "true",
        "send metadata as headers (except nats_* keys, Nats-* keys and values with line breaks)"),
    TP_OPTION(struct out_config, dedup, "dedup", TP_OPT_BOOL, "true",
              "JetStream: give each message a Nats-Msg-Id so retried publishes are stored once"),
    TP_OPTION(struct out_config, ack_timeout_ms, "ack_timeout", TP_OPT_DURATION, "5s",
              "wait for acknowledgements before a batch is retried", .min = 1, .max = INT64_MAX),
    TP_OPTION(struct out_config, max_pending, "max_pending", TP_OPT_INT, "4096",
              "JetStream: most unacknowledged asynchronous publishes", .min = 1, .max = INT64_MAX),
    TP_OPTION(struct out_config, max_retries, "max_retries", TP_OPT_INT, "-1",
              "retries of a failed batch before write fails (-1: retry forever)"),
    {0},
};

/* One batch published to JetStream, from submit until its completion. */
struct js_batch {
    struct tp_out_batch *b;
    uint64_t first_id;     /* Nats-Msg-Id of message i: first_id + i */
    size_t pending;        /* publishes without a PubAck yet, +1 while publishing */
    int failed;            /* failed publishes / PubAcks of this attempt */
    int nomem;             /* out of memory: the batch fails without a retry */
    int retry;             /* the attempt failed: the retry thread takes it */
    char why[300];         /* the first failure of this attempt */
    int64_t attempt;       /* 0: first publish */
    int64_t backoff_ms;    /* wait before the next retry */
    int64_t retry_at;      /* tp_mono_ms of the next retry (0: not scheduled) */
    struct js_batch *next; /* in-flight list, in submit order */
};

/* Published message -> its batch (the PubAck handler gets the message back). */
struct pub_slot {
    natsMsg *msg;
    struct js_batch *jb;
};

struct nats_out {
    const struct out_config *cfg;
    struct tp_template *tmpl;
    natsConnection *nc;
    jsCtx *js;
    struct tp_buf subject;       /* submit's */
    struct tp_buf retry_subject; /* the retry thread's */
    char id_prefix[48];
    uint64_t next_id;
    int stopping; /* atomic: stop() was called; a batch not delivered now fails */
    /* JetStream in-flight state, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a batch to retry, stop, close */
    struct js_batch *batches;
    struct pub_slot *slots;
    size_t slots_cap, slots_n; /* open addressing, cap a power of 2 */
    int closing;
    int has_thread;
    pthread_t retry_thread;
};

static int stopping(struct nats_out *o)
{
    return __atomic_load_n(&o->stopping, __ATOMIC_ACQUIRE);
}

/* Sleeps ms, in short slices so that a stop ends it early. */
static void sleep_unless_stopped(struct nats_out *o, int64_t ms)
{
    for (int64_t until = tp_mono_ms() + ms; !stopping(o) && tp_mono_ms() < until;) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
}

/* ---------- message -> batch map (under o->lock) ---------- */

static size_t slot_home(const natsMsg *m, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)m * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & mask;
}

static int map_put(struct nats_out *o, natsMsg *m, struct js_batch *jb)
{
    if ((o->slots_n + 1) * 2 > o->slots_cap) {
        size_t cap = o->slots_cap ? o->slots_cap * 2 : 1024;
        struct pub_slot *s = calloc(cap, sizeof(*s));
        if (!s)
            return TP_NOMEM;
        for (size_t i = 0; i < o->slots_cap; i++) {
            if (!o->slots[i].msg)
                continue;
            size_t j = slot_home(o->slots[i].msg, cap - 1);
            while (s[j].msg)
                j = (j + 1) & (cap - 1);
            s[j] = o->slots[i];
        }
        free(o->slots);
        o->slots = s;
        o->slots_cap = cap;
    }
    size_t mask = o->slots_cap - 1, i = slot_home(m, mask);
    while (o->slots[i].msg)
        i = (i + 1) & mask;
    o->slots[i] = (struct pub_slot){m, jb};
    o->slots_n++;
    return TP_OK;
}

/* Removes m; its batch, or NULL when m is not in the map. */
static struct js_batch *map_take(struct nats_out *o, const natsMsg *m)
{
    if (!o->slots_cap)
        return NULL;
    size_t mask = o->slots_cap - 1, i = slot_home(m, mask);
    for (; o->slots[i].msg != m; i = (i + 1) & mask)
        if (!o->slots[i].msg)
            return NULL;
    struct js_batch *jb = o->slots[i].jb;
    /* Backward-shift deletion: moves up the entries that probed past slot i. */
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (!o->slots[j].msg)
            break;
        size_t k = slot_home(o->slots[j].msg, mask);
        int stays = j > i ? (k > i && k <= j) : (k > i || k <= j);
        if (!stays) {
            o->slots[i] = o->slots[j];
            i = j;
        }
    }
    o->slots[i].msg = NULL;
    o->slots_n--;
    return jb;
}

/* ---------- JetStream batches ---------- */

/* Notes a failure of jb's current attempt (the first reason is kept). Under lock. */
static void js_note_failure(struct js_batch *jb, const char *why)
{
    if (!jb->failed++)
        snprintf(jb->why, sizeof(jb->why), "%s", why);
}

/* One publish or the publishing itself of jb is done: completes jb when it
 * was the last with every PubAck positive, else hands jb to the retry thread. */
static void js_attempt_done(struct nats_out *o, struct js_batch *jb)
{
    pthread_mutex_lock(&o->lock);
    if (--jb->pending) {
        pthread_mutex_unlock(&o->lock);
        return;
    }
    if (!jb->failed && !jb->nomem && !o->closing) {
        struct js_batch **pp = &o->batches;
        while (*pp != jb)
            pp = &(*pp)->next;
        *pp = jb->next;
        pthread_mutex_unlock(&o->lock);
        struct tp_out_batch *b = jb->b;
        free(jb);
        tp_out_batch_complete(b, TP_OK, NULL); /* o may be closed from here on */
        return;
    }
    jb->retry = 1;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    struct nats_out *o = closure;
    pthread_mutex_lock(&o->lock);
    struct js_batch *jb = o->closing ? NULL : map_take(o, msg);
    if (jb && !pa) {
        char why[300];
        snprintf(why, sizeof(why), "%s (%s, code %d)", pae && pae->ErrText ? pae->ErrText : "",
                 natsStatus_GetText(pae ? pae->Err : NATS_ERR), pae ? (int)pae->ErrCode : 0);
        js_note_failure(jb, why);
    }
    pthread_mutex_unlock(&o->lock);
    natsMsg_Destroy(msg);
    if (jb)
        js_attempt_done(o, jb);
}

static natsMsg *build(struct nats_out *o, struct tp_out_batch *b, size_t i, int report,
                      struct tp_buf *subject, int *nomem);

/* Publishes every message of jb asynchronously (one attempt); the PubAck
 * handler (or this call, for the last one) completes or retries jb. */
static void js_publish(struct nats_out *o, struct js_batch *jb, struct tp_buf *subject)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = o->cfg->ack_timeout_ms;
    po.ExpectStream = o->cfg->stream;
    pthread_mutex_lock(&o->lock);
    jb->pending = 1;
    jb->failed = 0;
    jb->retry = 0;
    jb->why[0] = 0;
    pthread_mutex_unlock(&o->lock);
    char id[96];
    struct tp_out_batch *b = jb->b;
    for (size_t i = 0; i < b->n; i++) {
        int nomem = 0;
        natsMsg *nm = build(o, b, i, jb->attempt == 0, subject, &nomem);
        if (!nm && !nomem)
            continue;
        if (o->cfg->dedup) {
            snprintf(id, sizeof(id), "%s-%llu", o->id_prefix,
                     (unsigned long long)(jb->first_id + i));
            po.MsgId = id;
        }
        pthread_mutex_lock(&o->lock);
        if (!nomem && map_put(o, nm, jb) != TP_OK)
            nomem = 1;
        if (nomem) {
            jb->nomem = 1;
            js_note_failure(jb, "out of memory");
            pthread_mutex_unlock(&o->lock);
            natsMsg_Destroy(nm);
            break;
        }
        jb->pending++;
        pthread_mutex_unlock(&o->lock);
        natsMsg *sent = nm;
        natsStatus s = js_PublishMsgAsync(o->js, &nm, &po);
        if (s != NATS_OK) { /* the library did not take it: no PubAck will come */
            char why[300];
            snprintf(why, sizeof(why), "publish: %s", tp__nats_errtext(s));
            pthread_mutex_lock(&o->lock);
            if (map_take(o, sent))
                jb->pending--;
            js_note_failure(jb, why);
            pthread_mutex_unlock(&o->lock);
            natsMsg_Destroy(nm);
            break;
        }
    }
    js_attempt_done(o, jb);
}

/* The retry thread: publishes failed batches again after a back-off, fails
 * them after max_retries, on out of memory or once stop() was called. */
static void *js_retry_main(void *arg)
{
    struct nats_out *o = arg;
    pthread_mutex_lock(&o->lock);
    while (!o->closing) {
        struct js_batch *jb = o->batches;
        while (jb && jb->retry != 1)
            jb = jb->next;
        if (!jb) {
            pthread_cond_wait(&o->cond, &o->lock);
            continue;
        }
        struct tp_error err = {0};
        int status = 0;
        if (jb->nomem)
            status = tp_error_set(&err, TP_NOMEM, "nats output: out of memory");
        else if (o->cfg->max_retries >= 0 && jb->attempt >= o->cfg->max_retries)
            status = tp_error_set(&err, TP_IO, "nats output: batch of %zu not delivered: %s",
                                  jb->b->n, jb->why);
        else if (stopping(o))
            status = tp_error_set(&err, TP_IO,
                                  "nats output: stopping while a batch of %zu is not delivered "
                                  "(%s); its input will be delivered again",
                                  jb->b->n, jb->why);
        if (status) {
            struct js_batch **pp = &o->batches;
            while (*pp != jb)
                pp = &(*pp)->next;
            *pp = jb->next;
            pthread_mutex_unlock(&o->lock);
            tp_out_batch_fail(jb->b, status, &err);
            free(jb);
            pthread_mutex_lock(&o->lock);
            continue;
        }
        int64_t now = tp_mono_ms();
        if (!jb->retry_at) {
            jb->retry_at = now + jb->backoff_ms;
            tp_log_limited(TP_LOG_WARN, "nats-out-retry",
                           "nats output: batch of %zu not delivered (%s); retrying in %lld ms",
                           jb->b->n, jb->why, (long long)jb->backoff_ms);
        }
        if (now < jb->retry_at) { /* waits in slices: stop() and close() signal cond */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ms = jb->retry_at - now < 50 ? jb->retry_at - now : 50;
            ts.tv_nsec += ms * 1000000;
            ts.tv_sec += ts.tv_nsec / 1000000000;
            ts.tv_nsec %= 1000000000;
            pthread_cond_timedwait(&o->cond, &o->lock, &ts);
            continue;
        }
        jb->attempt++;
        jb->retry_at = 0;
        jb->backoff_ms = jb->backoff_ms * 2 > 5000 ? 5000 : jb->backoff_ms * 2;
        jb->retry = 2; /* publishing */
        pthread_mutex_unlock(&o->lock);
        js_publish(o, jb, &o->retry_subject);
        pthread_mutex_lock(&o->lock);
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

static void nats_out_close(void *p);

static int nats_out_open(const void *config, void **out, struct tp_error *err)
{
    struct nats_out *o = calloc(1, sizeof(*o));
    if (!o)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    o->cfg = config;
    const struct out_config *cfg = o->cfg;
    tp_buf_init(&o->subject);
    tp_buf_init(&o->retry_subject);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(o->id_prefix, sizeof(o->id_prefix), "tp-%lx-%lx-%x", (unsigned long)ts.tv_sec,
             (unsigned long)ts.tv_nsec, (unsigned)getpid());
    struct tp_template_error te;
    int rc = tp_template_compile(cfg->subject, &o->tmpl, &te);
    if (rc)
        rc = rc == TP_NOMEM ? tp_error_set(err, rc, "out of memory")
                            : tp_error_set(err, rc, "output.nats.subject: %s", te.why);
    if (!rc && !*cfg->subject)
        rc = tp_error_set(err, TP_CONFIG, "output.nats.subject: expected a non-empty subject");
    if (!rc && cfg->create_stream && !cfg->stream)
        rc = tp_error_set(err, TP_CONFIG, "output.nats.create_stream: needs output.nats.stream");
    if (!rc && (cfg->stream || cfg->create_stream) && !cfg->jetstream)
        rc = tp_error_set(err, TP_CONFIG, "output.nats.stream: needs jetstream: true");
    if (!rc)
        rc = tp__nats_connect(&cfg->conn, "output.nats", &o->nc, err);
    if (!rc && cfg->jetstream) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.PublishAsync.MaxPending = cfg->max_pending;
        jo.PublishAsync.AckHandler = on_pub_ack;
        jo.PublishAsync.AckHandlerClosure = o;
        jo.PublishAsync.StallWait = o->cfg->ack_timeout_ms;
        natsStatus s = natsConnection_JetStream(&o->js, o->nc, &jo);
        if (s != NATS_OK)
            rc =
                tp_error_set(err, TP_IO, "output.nats: JetStream context: %s", tp__nats_errtext(s));
        if (!rc && cfg->create_stream)
            rc = tp__nats_ensure_stream(o->js, cfg->stream, &cfg->stream_subjects, cfg->storage,
                                        err);
        if (!rc && pthread_create(&o->retry_thread, NULL, js_retry_main, o))
            rc = tp_error_set(err, TP_NOMEM, "output.nats: cannot start the retry thread");
        else if (!rc)
            o->has_thread = 1;
    }
    if (rc) {
        nats_out_close(o);
        return rc;
    }
    *out = o;
    return TP_OK;
}

/* Builds the NATS message for message i of b (its subject rendered into
 * subject); NULL when it has no valid subject (then, when `report`, a
 * per-message invalid_topic drop) or on out of memory (*nomem set). */
static natsMsg *build(struct nats_out *o, struct tp_out_batch *b, size_t i, int report,
                      struct tp_buf *subject, int *nomem)
{
    const struct tp_msg *m = b->msgs[i];
    char why[300];
    int rc = tp__nats_subject_render(o->tmpl, m, subject, why, sizeof(why));
    if (rc == TP_NOMEM) {
        *nomem = 1;
        return NULL;
    }
    if (rc) {
        if (report)
            tp_out_batch_drop(b, i, TP_DROP_INVALID_TOPIC, "nats output: %s", why);
        return NULL;
    }
    natsMsg *nm = NULL;
    natsStatus s = natsMsg_Create(&nm, subject->data, NULL, m->payload, (int)m->payload_len);
    for (uint32_t j = 0; s == NATS_OK && o->cfg->headers && j < m->n_meta; j++) {
        const char *k = tp_msg_meta_key(m, j), *v = tp_msg_meta_val(m, j);
        if (tp__nats_header_ok(k, v))
            s = natsMsgHeader_Set(nm, k, v);
    }
    if (s != NATS_OK) {
        natsMsg_Destroy(nm);
        *nomem = 1;
        return NULL;
    }
    return nm;
}

/* One attempt with core NATS: publish everything, then a flush round trip. */
static int core_attempt(struct nats_out *o, struct tp_out_batch *b, int first, char *why,
                        size_t size)
{
    for (size_t i = 0; i < b->n; i++) {
        int nomem = 0;
        natsMsg *nm = build(o, b, i, first, &o->subject, &nomem);
        if (nomem) {
            snprintf(why, size, "out of memory");
            return TP_NOMEM;
        }
        if (!nm)
            continue;
        natsStatus s = natsConnection_PublishMsg(o->nc, nm);
        natsMsg_Destroy(nm);
        if (s != NATS_OK) {
            snprintf(why, size, "publish: %s", tp__nats_errtext(s));
            return TP_IO;
        }
    }
    natsStatus s = natsConnection_FlushTimeout(o->nc, o->cfg->ack_timeout_ms);
    if (s != NATS_OK) {
        snprintf(why, size, "flush: %s", tp__nats_errtext(s));
        return TP_IO;
    }
    return TP_OK;
}

/* JetStream: publishes b and returns; the PubAck handler completes it. */
static int js_submit(struct nats_out *o, struct tp_out_batch *b)
{
    struct js_batch *jb = calloc(1, sizeof(*jb));
    if (!jb) {
        struct tp_error err = {0};
        tp_error_set(&err, TP_NOMEM, "nats output: out of memory");
        return tp_out_batch_fail(b, TP_NOMEM, &err);
    }
    jb->b = b;
    jb->first_id = o->next_id;
    o->next_id += b->n;
    jb->backoff_ms = 100;
    pthread_mutex_lock(&o->lock);
    struct js_batch **pp = &o->batches;
    while (*pp)
        pp = &(*pp)->next;
    *pp = jb;
    pthread_mutex_unlock(&o->lock);
    js_publish(o, jb, &o->subject);
    return TP_OK;
}

static int nats_out_submit(void *p, struct tp_out_batch *b)
{
    struct nats_out *o = p;
    if (o->js)
        return js_submit(o, b);
    int64_t backoff_ms = 100;
    char why[400] = "";
    struct tp_error err = {0};
    for (int64_t attempt = 0;; attempt++) {
        int rc = core_attempt(o, b, attempt == 0, why, sizeof(why));
        if (rc == TP_OK) {
            tp_out_batch_complete(b, TP_OK, NULL);
            return TP_OK;
        }
        if (rc == TP_NOMEM) {
            tp_error_set(&err, rc, "nats output: out of memory");
            return tp_out_batch_fail(b, rc, &err);
        }
        if (o->cfg->max_retries >= 0 && attempt >= o->cfg->max_retries) {
            tp_error_set(&err, TP_IO, "nats output: batch of %zu not delivered: %s", b->n, why);
            return tp_out_batch_fail(b, TP_IO, &err);
        }
        if (stopping(o)) {
            tp_error_set(&err, TP_IO,
                         "nats output: stopping while a batch of %zu is not delivered (%s); its "
                         "input will be delivered again",
                         b->n, why);
            return tp_out_batch_fail(b, TP_IO, &err);
        }
        tp_log_limited(TP_LOG_WARN, "nats-out-retry",
                       "nats output: batch of %zu not delivered (%s); retrying in %lld ms", b->n,
                       why, (long long)backoff_ms);
        sleep_unless_stopped(o, backoff_ms);
        backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
    }
}

/* The signal thread: a batch retried forever (max_retries -1, the server
 * away) fails at its next attempt instead, so SIGTERM ends the run (a
 * JetStream batch still waiting for PubAcks fails once they time out, after
 * at most ack_timeout). */
static void nats_out_stop(void *p)
{
    struct nats_out *o = p;
    __atomic_store_n(&o->stopping, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&o->lock);
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void nats_out_close(void *p)
{
    struct nats_out *o = p;
    pthread_mutex_lock(&o->lock);
    o->closing = 1; /* no completion from here on */
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    if (o->has_thread)
        pthread_join(o->retry_thread, NULL);
    jsCtx_Destroy(o->js);
    if (o->nc) {
        natsConnection_Close(o->nc);
        natsConnection_Destroy(o->nc);
    }
    while (o->batches) { /* abandoned after a fatal error */
        struct js_batch *next = o->batches->next;
        free(o->batches);
        o->batches = next;
    }
    free(o->slots);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->cond);
    tp_template_free(o->tmpl);
    tp_buf_free(&o->subject);
    tp_buf_free(&o->retry_subject);
    free(o);
}

const struct tp_output_plugin tp_output_nats = {
    .name = "nats",
    .options = out_options,
    .config_size = sizeof(struct out_config),
    .open = nats_out_open,
    .submit = nats_out_submit,
    .stop = nats_out_stop,
    .close = nats_out_close,
};

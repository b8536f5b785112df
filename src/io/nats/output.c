/* The `nats` output. Each message goes to the subject rendered from a
 * {{meta.KEY}} template (default: umh_topic) with its metadata as headers.
 * JetStream: submit() publishes a batch with plain core publishes whose reply
 * subjects (<inbox>.<attempt>.<index>, one subscription of ours) receive the
 * PubAcks, and returns; the PubAck callback completes the batch when all its
 * PubAcks arrived (up to output.max_in_flight batches in flight). A batch with
 * a failed or overdue PubAck is published again by the retry thread (same
 * Nats-Msg-Id, so the stream drops the duplicates). Core NATS: publish + flush
 * inside submit (the server got them). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/json.h"
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
              "JetStream: most published messages without a PubAck yet (publishing waits, at most "
              "ack_timeout, for room)",
              .min = 1, .max = INT64_MAX),
    TP_OPTION(struct out_config, max_retries, "max_retries", TP_OPT_INT, "-1",
              "retries of a failed batch before write fails (-1: retry forever)"),
    {0},
};

/* Where one publishing thread builds a message. */
struct scratch {
    struct tp_buf subject;
    struct tp_buf frame; /* header block + payload */
};

/* One batch published to JetStream, from submit until its completion. */
struct js_batch {
    struct tp_out_batch *b;
    uint64_t first_id;     /* Nats-Msg-Id of message i: first_id + i */
    uint64_t attempt_id;   /* PubAcks of this attempt come to <inbox>.<attempt_id>.<i>; 0: none */
    size_t sent;           /* messages published in this attempt */
    size_t answered;       /* PubAcks (positive or not) received for this attempt */
    int publishing;        /* js_publish is still sending this attempt */
    int failed;            /* failed publishes / PubAcks of this attempt */
    int nomem;             /* out of memory: the batch fails without a retry */
    int retry;             /* 1: the attempt failed, the retry thread takes it; 2: retrying */
    char why[300];         /* the first failure of this attempt */
    int64_t attempt;       /* 0: first publish */
    int64_t backoff_ms;    /* wait before the next retry */
    int64_t retry_at;      /* tp_mono_ms of the next retry (0: not scheduled) */
    int64_t deadline;      /* tp_mono_ms when PubAcks still missing fail the attempt */
    struct js_batch *next; /* in-flight list, in submit order */
};

struct nats_out {
    const struct out_config *cfg;
    struct tp_template *tmpl;
    natsConnection *nc;
    jsCtx *js;                     /* JetStream: stream creation */
    struct scratch submit_scratch; /* submit's */
    struct scratch retry_scratch;  /* the retry thread's */
    char id_prefix[48];
    uint64_t next_id;
    char inbox[64]; /* JetStream: PubAcks come to <inbox>.<attempt id>.<index> */
    size_t inbox_len;
    natsSubscription *acks; /* <inbox>.*.* */
    int stopping;           /* atomic: stop() was called; a batch not delivered now fails */
    /* JetStream in-flight state, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a batch to retry, room below max_pending, stop, close */
    struct js_batch *batches;
    uint64_t next_attempt;
    size_t unacked;  /* published in current attempts, no PubAck yet */
    int ack_waiters; /* publishers waiting for unacked < max_pending */
    int acks_closed; /* the PubAck subscription delivered its last callback */
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

/* pthread_cond_timedwait on o->cond for at most ms (under lock). */
static void wait_ms_locked(struct nats_out *o, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    pthread_cond_timedwait(&o->cond, &o->lock, &ts);
}

/* ---------- JetStream batches ---------- */

/* Notes a failure of jb's current attempt (the first reason is kept). Under lock. */
static void js_note_failure(struct js_batch *jb, const char *why)
{
    if (!jb->failed++)
        snprintf(jb->why, sizeof(jb->why), "%s", why);
}

/* Under lock: when jb's attempt is over (published, every PubAck in), either
 * unlinks jb and returns it for completion (all stored), or hands it to the
 * retry thread. NULL when there is nothing to complete. */
static struct js_batch *js_settle_locked(struct nats_out *o, struct js_batch *jb)
{
    if (jb->publishing || jb->retry || jb->answered < jb->sent)
        return NULL;
    jb->attempt_id = 0;
    if (!jb->failed && !jb->nomem && !o->closing) {
        struct js_batch **pp = &o->batches;
        while (*pp != jb)
            pp = &(*pp)->next;
        *pp = jb->next;
        return jb;
    }
    jb->retry = 1;
    pthread_cond_broadcast(&o->cond);
    return NULL;
}

/* Completes a settled batch (outside the lock; o may be closed from here on). */
static void js_complete(struct js_batch *jb)
{
    struct tp_out_batch *b = jb->b;
    free(jb);
    tp_out_batch_complete(b, TP_OK, NULL);
}

/* Under lock: attempts whose PubAcks did not all come within ack_timeout fail
 * (their late PubAcks are ignored); the retry thread takes them. */
static void js_expire_locked(struct nats_out *o, int64_t now)
{
    for (struct js_batch *jb = o->batches; jb; jb = jb->next) {
        if (!jb->attempt_id || jb->publishing || jb->answered >= jb->sent || now < jb->deadline)
            continue;
        char why[300];
        snprintf(why, sizeof(why), "no PubAck for %zu of %zu messages within ack_timeout",
                 jb->sent - jb->answered, jb->sent);
        js_note_failure(jb, why);
        o->unacked -= jb->sent - jb->answered;
        jb->answered = jb->sent;
        js_settle_locked(o, jb); /* failed: to the retry thread */
        if (o->ack_waiters)
            pthread_cond_broadcast(&o->cond);
    }
}

/* 1 when the reply msg is a positive PubAck ({"stream":..,"seq":..});
 * else 0 with the reason in why (a JetStream error, no stream for the
 * subject, an unexpected answer). */
static int pub_ack_ok(natsMsg *msg, char *why, size_t size)
{
    const char *d = natsMsg_GetData(msg);
    size_t n = (size_t)natsMsg_GetDataLength(msg), vl = 0, tl = 0, cl = 0;
    const char *v = NULL, *text = NULL, *code = NULL;
    if (n == 0 && natsMsg_IsNoResponders(msg)) {
        snprintf(why, size, "no JetStream stream stores the subject (no responders)");
        return 0;
    }
    if (d && tp_json_object_member(d, n, "error", &v, &vl)) {
        if (!tp_json_object_member(v, vl, "description", &text, &tl))
            text = "\"\"", tl = 2;
        if (!tp_json_object_member(v, vl, "err_code", &code, &cl) &&
            !tp_json_object_member(v, vl, "code", &code, &cl))
            code = "?", cl = 1;
        snprintf(why, size, "%.*s (code %.*s)", (int)(tl > 2 ? tl - 2 : 0), text + 1, (int)cl,
                 code);
        return 0;
    }
    if (d && tp_json_object_member(d, n, "seq", &v, &vl))
        return 1;
    snprintf(why, size, "unexpected PubAck \"%.100s\"", d ? d : "");
    return 0;
}

/* The PubAck subscription's callback (libnats' delivery thread). */
static void on_pub_ack(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    struct nats_out *o = closure;
    const char *tail = natsMsg_GetSubject(msg) + o->inbox_len; /* ".<attempt id>.<index>" */
    uint64_t aid = *tail == '.' ? strtoull(tail + 1, NULL, 10) : 0;
    char why[300];
    int ok = pub_ack_ok(msg, why, sizeof(why));
    natsMsg_Destroy(msg);
    struct js_batch *done = NULL;
    pthread_mutex_lock(&o->lock);
    struct js_batch *jb = aid ? o->batches : NULL;
    while (jb && jb->attempt_id != aid)
        jb = jb->next;
    if (jb && !o->closing && jb->answered < jb->sent) {
        jb->answered++;
        o->unacked--;
        if (o->ack_waiters)
            pthread_cond_broadcast(&o->cond);
        if (!ok)
            js_note_failure(jb, why);
        done = js_settle_locked(o, jb);
    }
    pthread_mutex_unlock(&o->lock);
    if (done)
        js_complete(done);
}

static void on_acks_closed(void *closure)
{
    struct nats_out *o = closure;
    pthread_mutex_lock(&o->lock);
    o->acks_closed = 1;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

/* Under lock: waits while max_pending publishes are unacknowledged. 0 when
 * there is room; else TP_IO with why (stopping, or no room for ack_timeout). */
static int js_wait_room_locked(struct nats_out *o, char *why, size_t size)
{
    if (o->unacked < (size_t)o->cfg->max_pending)
        return TP_OK;
    int64_t until = tp_mono_ms() + o->cfg->ack_timeout_ms;
    o->ack_waiters++;
    while (o->unacked >= (size_t)o->cfg->max_pending && !o->closing && !stopping(o) &&
           tp_mono_ms() < until)
        wait_ms_locked(o, 50);
    o->ack_waiters--;
    if (o->unacked < (size_t)o->cfg->max_pending)
        return TP_OK;
    snprintf(why, size, "%s",
             stopping(o) || o->closing ? "stopping"
                                       : "max_pending publishes without PubAck for ack_timeout");
    return TP_IO;
}

static natsMsg *build(struct nats_out *o, struct tp_out_batch *b, size_t i, int report,
                      struct scratch *sc, const char *reply, const char *msg_id, int *nomem);

/* Publishes every message of jb (one attempt) with core NATS publishes whose
 * reply subjects collect the PubAcks; on_pub_ack (or this call, or the expiry
 * after ack_timeout) completes jb or hands it to the retry thread. */
static void js_publish(struct nats_out *o, struct js_batch *jb, struct scratch *sc)
{
    pthread_mutex_lock(&o->lock);
    uint64_t aid = jb->attempt_id = ++o->next_attempt;
    jb->publishing = 1;
    jb->sent = jb->answered = 0;
    jb->failed = 0;
    jb->retry = 0;
    jb->why[0] = 0;
    pthread_mutex_unlock(&o->lock);
    char id[96], reply[128];
    struct tp_out_batch *b = jb->b;
    for (size_t i = 0; i < b->n; i++) {
        int nomem = 0;
        if (o->cfg->dedup)
            snprintf(id, sizeof(id), "%s-%llu", o->id_prefix,
                     (unsigned long long)(jb->first_id + i));
        snprintf(reply, sizeof(reply), "%s.%llu.%zu", o->inbox, (unsigned long long)aid, i);
        natsMsg *nm =
            build(o, b, i, jb->attempt == 0, sc, reply, o->cfg->dedup ? id : NULL, &nomem);
        if (!nm && !nomem)
            continue;
        char why[300] = "";
        pthread_mutex_lock(&o->lock);
        int rc = nomem ? TP_NOMEM : js_wait_room_locked(o, why, sizeof(why));
        if (rc) {
            if (rc == TP_NOMEM)
                jb->nomem = 1;
            js_note_failure(jb, rc == TP_NOMEM ? "out of memory" : why);
            pthread_mutex_unlock(&o->lock);
            natsMsg_Destroy(nm);
            break;
        }
        jb->sent++;
        o->unacked++;
        pthread_mutex_unlock(&o->lock);
        natsStatus s = natsConnection_PublishMsg(o->nc, nm);
        natsMsg_Destroy(nm);
        if (s != NATS_OK) { /* not sent: no PubAck will come */
            snprintf(why, sizeof(why), "publish: %s", tp__nats_errtext(s));
            pthread_mutex_lock(&o->lock);
            jb->sent--;
            o->unacked--;
            js_note_failure(jb, why);
            pthread_mutex_unlock(&o->lock);
            break;
        }
    }
    pthread_mutex_lock(&o->lock);
    jb->publishing = 0;
    jb->deadline = tp_mono_ms() + o->cfg->ack_timeout_ms;
    struct js_batch *done = js_settle_locked(o, jb);
    pthread_mutex_unlock(&o->lock);
    if (done)
        js_complete(done);
}

/* The retry thread: fails attempts whose PubAcks are overdue, publishes failed
 * batches again after a back-off, fails them after max_retries, on out of
 * memory or once stop() was called. */
static void *js_retry_main(void *arg)
{
    struct nats_out *o = arg;
    pthread_mutex_lock(&o->lock);
    while (!o->closing) {
        int64_t now = tp_mono_ms();
        js_expire_locked(o, now);
        struct js_batch *jb = o->batches;
        while (jb && jb->retry != 1)
            jb = jb->next;
        if (!jb) {
            wait_ms_locked(o, 50);
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
        if (!jb->retry_at) {
            jb->retry_at = now + jb->backoff_ms;
            tp_log_limited(TP_LOG_WARN, "nats-out-retry",
                           "nats output: batch of %zu not delivered (%s); retrying in %lld ms",
                           jb->b->n, jb->why, (long long)jb->backoff_ms);
        }
        if (now < jb->retry_at) { /* waits in slices: stop() and close() signal cond */
            wait_ms_locked(o, jb->retry_at - now < 50 ? jb->retry_at - now : 50);
            continue;
        }
        jb->attempt++;
        jb->retry_at = 0;
        jb->backoff_ms = jb->backoff_ms * 2 > 5000 ? 5000 : jb->backoff_ms * 2;
        jb->retry = 2; /* publishing */
        pthread_mutex_unlock(&o->lock);
        js_publish(o, jb, &o->retry_scratch);
        pthread_mutex_lock(&o->lock);
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

/* JetStream: the PubAck inbox subscription and the retry thread. */
static int js_open(struct nats_out *o, struct tp_error *err)
{
    const struct out_config *cfg = o->cfg;
    natsStatus s = natsConnection_JetStream(&o->js, o->nc, NULL);
    if (s != NATS_OK)
        return tp_error_set(err, TP_IO, "output.nats: JetStream context: %s", tp__nats_errtext(s));
    if (cfg->create_stream) {
        int rc =
            tp__nats_ensure_stream(o->js, cfg->stream, &cfg->stream_subjects, cfg->storage, err);
        if (rc)
            return rc;
    }
    natsInbox *inbox = NULL;
    s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(o->inbox, sizeof(o->inbox), "%s", (const char *)inbox);
        o->inbox_len = strlen(o->inbox);
        natsInbox_Destroy(inbox);
        char subj[80];
        snprintf(subj, sizeof(subj), "%s.*.*", o->inbox);
        s = natsConnection_Subscribe(&o->acks, o->nc, subj, on_pub_ack, o);
    }
    /* Bounded by max_pending and the window, not by libnats' default limits. */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(o->acks, -1, -1);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(o->acks, on_acks_closed, o);
    if (s != NATS_OK)
        return tp_error_set(err, TP_IO, "output.nats: PubAck subscription: %s",
                            tp__nats_errtext(s));
    if (pthread_create(&o->retry_thread, NULL, js_retry_main, o))
        return tp_error_set(err, TP_NOMEM, "output.nats: cannot start the retry thread");
    o->has_thread = 1;
    return TP_OK;
}

static void nats_out_close(void *p);

static int nats_out_open(const void *config, void **out, struct tp_error *err)
{
    struct nats_out *o = calloc(1, sizeof(*o));
    if (!o)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    o->cfg = config;
    const struct out_config *cfg = o->cfg;
    tp_buf_init(&o->submit_scratch.subject);
    tp_buf_init(&o->submit_scratch.frame);
    tp_buf_init(&o->retry_scratch.subject);
    tp_buf_init(&o->retry_scratch.frame);
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
    if (!rc && cfg->jetstream)
        rc = js_open(o, err);
    if (rc) {
        nats_out_close(o);
        return rc;
    }
    *out = o;
    return TP_OK;
}

/* Builds the NATS message for message i of b (its subject and frame built in
 * sc; reply and msg_id may be NULL); NULL when it has no valid subject (then,
 * when `report`, a per-message invalid_topic drop) or on out of memory
 * (*nomem set). */
static natsMsg *build(struct nats_out *o, struct tp_out_batch *b, size_t i, int report,
                      struct scratch *sc, const char *reply, const char *msg_id, int *nomem)
{
    const struct tp_msg *m = b->msgs[i];
    char why[300];
    int rc = tp__nats_subject_render(o->tmpl, m, &sc->subject, why, sizeof(why));
    if (rc == TP_NOMEM) {
        *nomem = 1;
        return NULL;
    }
    if (rc) {
        if (report)
            tp_out_batch_drop(b, i, TP_DROP_INVALID_TOPIC, "nats output: %s", why);
        return NULL;
    }
    const char *extra[5] = {NULL};
    size_t n_extra = 0;
    if (msg_id) {
        extra[n_extra++] = "Nats-Msg-Id";
        extra[n_extra++] = msg_id;
    }
    if (reply && o->cfg->stream) { /* the server rejects messages stored elsewhere */
        extra[n_extra++] = "Nats-Expected-Stream";
        extra[n_extra++] = o->cfg->stream;
    }
    tp_buf_reset(&sc->frame);
    natsMsg *nm = NULL;
    rc = tp__nats_headers_encode(m, o->cfg->headers, extra, &sc->frame);
    size_t hdr_len = sc->frame.len;
    rc = rc ? rc : tp_buf_append(&sc->frame, m->payload, m->payload_len);
    if (rc || tp__nats_msg_create(&nm, sc->subject.data, reply, sc->frame.data, sc->frame.len,
                                  hdr_len) != NATS_OK) {
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
        natsMsg *nm = build(o, b, i, first, &o->submit_scratch, NULL, NULL, &nomem);
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
    js_publish(o, jb, &o->submit_scratch);
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
    if (o->acks) { /* wait until on_pub_ack can no longer run (it uses o) */
        if (natsSubscription_Unsubscribe(o->acks) != NATS_OK)
            natsConnection_Close(o->nc);
        pthread_mutex_lock(&o->lock);
        for (int64_t until = tp_mono_ms() + 5000; !o->acks_closed && tp_mono_ms() < until;)
            wait_ms_locked(o, 50);
        pthread_mutex_unlock(&o->lock);
        natsSubscription_Destroy(o->acks);
    }
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
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->cond);
    tp_template_free(o->tmpl);
    tp_buf_free(&o->submit_scratch.subject);
    tp_buf_free(&o->submit_scratch.frame);
    tp_buf_free(&o->retry_scratch.subject);
    tp_buf_free(&o->retry_scratch.frame);
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

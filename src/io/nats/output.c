/* The `nats` output on tagproc's own client (client.h). Each message goes
 * to the subject rendered from a {{meta.KEY}} template (default: umh_topic)
 * with its metadata as headers. submit() queues a batch and, while
 * connected, encodes and writes what max_pending allows right there on the
 * writer thread (one write per batch). The output's network thread reads the
 * answers with one read per round, sends what was held back, reconnects,
 * retries and times out. JetStream: every message is a plain publish whose
 * reply subject <inbox>.<batch id>.<index> (one subscription) receives its
 * PubAck; a batch completes when all are positive. Core NATS: a batch
 * completes with the PONG of the PING sent after it (the server got it).
 * After a reconnect every unconfirmed message is sent again in order (the
 * Nats-Msg-Id makes the stream store it once); a failed attempt (negative
 * PubAck, no answer within ack_timeout) is retried after a back-off. Both
 * threads work on the client under one mutex, which the network thread
 * releases while it waits in poll() or connects. */
#include <fcntl.h>
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
              "JetStream: most published messages without a PubAck yet (the rest of the batches "
              "in flight waits to be sent)",
              .min = 1, .max = INT64_MAX),
    TP_OPTION(struct out_config, max_retries, "max_retries", TP_OPT_INT, "-1",
              "retries of a failed batch before write fails (-1: retry forever)"),
    {0},
};

/* Per message state within a batch. */
enum { S_UNSENT, S_SENT, S_FAILED, S_DONE, S_SKIP };

#define SID_ACKS 1

/* One submitted batch, from submit until its completion. */
struct out_batch {
    struct out_batch *next; /* in submit order */
    struct tp_out_batch *b;
    uint64_t id;           /* PubAcks come to <inbox>.<id>.<index> */
    uint64_t first_msg_id; /* Nats-Msg-Id of message i: first_msg_id + i */
    uint8_t *state;
    size_t next_send;   /* messages before it were sent (or skipped) in this attempt */
    size_t n_done;      /* S_DONE + S_SKIP */
    size_t n_sent;      /* S_SENT */
    uint64_t ping, gen; /* core: the PING sent after it, on connection generation gen */
    char why[300];      /* the first failure of this attempt */
    int failed;
    int64_t attempt, backoff_ms;
    int64_t retry_at; /* 0: not waiting for a retry */
    int64_t deadline; /* tp_mono_ms when the attempt fails without its answers */
};

struct nats_out {
    const struct out_config *cfg;
    struct tp_template *tmpl;
    struct tp__nats_conn conn;
    char id_prefix[48];
    uint64_t next_msg_id, next_batch_id;
    size_t inbox_len;
    struct tp_buf subject, hdr; /* scratch for encoding (under lock) */
    int wake[2];
    pthread_t thread;
    int has_thread;
    /* Guards everything below and the client while `live`. */
    pthread_mutex_t lock;
    int live;    /* connected and subscribed: submit may write */
    int polling; /* the network thread waits in poll() */
    int wake_sent;
    int stopping, closing;
    uint64_t subscribed_gen;
    struct out_batch *head, *tail;
    size_t unacked; /* JetStream: sent, no PubAck yet */
};

static void wake_thread(struct nats_out *o)
{
    if (o->polling && !o->wake_sent) {
        o->wake_sent = 1;
        ssize_t w = write(o->wake[1], "w", 1);
        (void)w;
    }
}

static void batch_free(struct out_batch *jb)
{
    free(jb->state);
    free(jb);
}

/* ---------- sending (under lock, connected) ---------- */

/* Appends message i of jb to the socket queue. TP_INVAL: no valid subject
 * (an invalid_topic drop on the first attempt), TP_NOMEM. */
static int encode_msg(struct nats_out *o, struct out_batch *jb, size_t i)
{
    const struct tp_msg *m = jb->b->msgs[i];
    char why[300];
    int rc = tp__nats_subject_render(o->tmpl, m, &o->subject, why, sizeof(why));
    if (rc == TP_INVAL)
        tp_out_batch_drop(jb->b, i, TP_DROP_INVALID_TOPIC, "nats output: %s", why);
    if (rc)
        return rc;
    char id[96], reply[96];
    const char *extra[5] = {NULL};
    size_t n_extra = 0, reply_len = 0;
    if (o->cfg->jetstream && o->cfg->dedup) { /* <id_prefix>-<number> */
        size_t pl = strlen(o->id_prefix);
        memcpy(id, o->id_prefix, pl);
        id[pl] = '-';
        *tp_nats_write_uint(id + pl + 1, jb->first_msg_id + i) = '\0';
        extra[n_extra++] = "Nats-Msg-Id";
        extra[n_extra++] = id;
    }
    if (o->cfg->jetstream && o->cfg->stream) { /* the server rejects messages stored elsewhere */
        extra[n_extra++] = "Nats-Expected-Stream";
        extra[n_extra++] = o->cfg->stream;
    }
    if (o->cfg->jetstream) { /* the PubAck's subject: <inbox>.<batch id>.<index> */
        memcpy(reply, o->conn.inbox, o->inbox_len);
        char *p = reply + o->inbox_len;
        *p++ = '.';
        p = tp_nats_write_uint(p, jb->id);
        *p++ = '.';
        p = tp_nats_write_uint(p, i);
        reply_len = (size_t)(p - reply);
    }
    tp_buf_reset(&o->hdr);
    rc = tp__nats_headers_encode(m, o->cfg->headers, extra, &o->hdr);
    return rc ? rc
              : tp_nats_encode_pub(tp_nats_client_out(&o->conn.c), o->subject.data, o->subject.len,
                                   o->cfg->jetstream ? reply : NULL, reply_len, o->hdr.data,
                                   o->hdr.len, m->payload, m->payload_len);
}

/* Notes a failure of jb's current attempt (the first reason is kept). */
static void note_failure(struct out_batch *jb, const char *why)
{
    if (!jb->failed++)
        snprintf(jb->why, sizeof(jb->why), "%s", why);
}

/* Sends what the batches hold unsent, in order, while max_pending allows.
 * A batch waiting for its retry holds back the batches after it (order). */
static void pump(struct nats_out *o)
{
    int64_t now = tp_mono_ms();
    for (struct out_batch *jb = o->head; jb && o->live; jb = jb->next) {
        if (jb->retry_at)
            return;
        if (jb->next_send == jb->b->n)
            continue;
        size_t before = jb->next_send;
        while (jb->next_send < jb->b->n) {
            size_t i = jb->next_send;
            if (jb->state[i] != S_UNSENT) {
                jb->next_send++;
                continue;
            }
            if (o->cfg->jetstream && o->unacked >= (size_t)o->cfg->max_pending)
                return;
            int rc = encode_msg(o, jb, i);
            if (rc == TP_INVAL) {
                jb->state[i] = S_SKIP;
                jb->n_done++;
            } else if (rc) {
                note_failure(jb, "out of memory");
                jb->state[i] = S_FAILED;
            } else {
                jb->state[i] = S_SENT; /* core: done with the PONG */
                jb->n_sent += o->cfg->jetstream;
                o->unacked += o->cfg->jetstream;
            }
            jb->next_send++;
        }
        if (jb->next_send != before)
            jb->deadline = now + o->cfg->ack_timeout_ms;
        if (!o->cfg->jetstream && jb->next_send == jb->b->n) {
            jb->ping = tp_nats_client_ping(&o->conn.c);
            jb->gen = o->conn.c.generation;
        }
    }
}

/* The connection is gone: what was sent and not confirmed is sent again
 * after the reconnect, in order. */
static void unsend_all(struct nats_out *o)
{
    for (struct out_batch *jb = o->head; jb; jb = jb->next) {
        for (size_t i = 0; i < jb->b->n; i++)
            if (jb->state[i] == S_SENT)
                jb->state[i] = S_UNSENT;
        jb->n_sent = 0;
        jb->ping = 0;
        if (!jb->retry_at)
            jb->next_send = 0;
    }
    o->unacked = 0;
}

/* ---------- completing (under lock; the caller completes `done` after unlocking) ---------- */

static void unlink_batch(struct nats_out *o, struct out_batch *jb)
{
    struct out_batch **pp = &o->head, *prev = NULL;
    while (*pp != jb)
        prev = *pp, pp = &(*pp)->next;
    *pp = jb->next;
    if (o->tail == jb)
        o->tail = prev;
}

/* jb's attempt is over when nothing is unsent or unanswered: completes it
 * (moved to *done) or schedules its retry. */
static void settle(struct nats_out *o, struct out_batch *jb, struct out_batch **done, int64_t now)
{
    if (jb->retry_at || jb->next_send < jb->b->n || jb->n_sent)
        return;
    if (!o->cfg->jetstream && !jb->failed) {
        if (!jb->ping || jb->gen != o->conn.c.generation || o->conn.c.pongs < jb->ping)
            return;
        for (size_t i = 0; i < jb->b->n; i++)
            if (jb->state[i] == S_SENT)
                jb->state[i] = S_DONE, jb->n_done++;
    }
    if (jb->n_done == jb->b->n) {
        unlink_batch(o, jb);
        jb->next = *done;
        *done = jb;
        return;
    }
    jb->retry_at = now + jb->backoff_ms;
    tp_log_limited(TP_LOG_WARN, "nats-out-retry",
                   "nats output: batch of %zu not delivered (%s); retrying in %lld ms", jb->b->n,
                   jb->why, (long long)jb->backoff_ms);
}

/* Attempts without their answers within ack_timeout fail. */
static void expire(struct nats_out *o, int64_t now)
{
    for (struct out_batch *jb = o->head; jb; jb = jb->next) {
        if (jb->retry_at || now < jb->deadline)
            continue;
        int waiting_core = !o->cfg->jetstream && jb->next_send == jb->b->n && !jb->failed;
        if (!jb->n_sent && !waiting_core && (o->live || jb->next_send == jb->b->n))
            continue;
        char why[300];
        if (jb->n_sent)
            snprintf(why, sizeof(why), "no PubAck for %zu of %zu messages within ack_timeout",
                     jb->n_sent, jb->b->n);
        else
            snprintf(why, sizeof(why), "%s",
                     o->live ? "flush: no answer within ack_timeout" : "not connected");
        note_failure(jb, why);
        for (size_t i = 0; i < jb->b->n; i++)
            if (jb->state[i] == S_SENT || (!o->live && jb->state[i] == S_UNSENT))
                jb->state[i] = S_FAILED;
        o->unacked -= o->cfg->jetstream ? jb->n_sent : 0;
        jb->n_sent = 0;
        jb->next_send = jb->b->n;
        jb->ping = 0;
        if (!o->cfg->jetstream) /* a lost flush: everything again */
            for (size_t i = 0; i < jb->b->n; i++)
                if (jb->state[i] != S_SKIP)
                    jb->state[i] = S_FAILED;
    }
}

/* Batches whose retry is due: failed for good (max_retries, stopping) into
 * *failed, or set up for their next attempt. */
static void retry_due(struct nats_out *o, int64_t now, struct out_batch **failed)
{
    for (struct out_batch *jb = o->head, *next; jb; jb = next) {
        next = jb->next;
        if (!jb->retry_at || (now < jb->retry_at && !o->stopping))
            continue;
        if ((o->cfg->max_retries >= 0 && jb->attempt >= o->cfg->max_retries) || o->stopping) {
            unlink_batch(o, jb);
            jb->next = *failed;
            *failed = jb;
            continue;
        }
        jb->attempt++;
        jb->retry_at = 0;
        jb->failed = 0;
        jb->backoff_ms = jb->backoff_ms * 2 > 5000 ? 5000 : jb->backoff_ms * 2;
        for (size_t i = 0; i < jb->b->n; i++)
            if (jb->state[i] == S_FAILED)
                jb->state[i] = S_UNSENT;
        jb->next_send = 0;
        jb->deadline = now + o->cfg->ack_timeout_ms;
    }
}

/* Completes (outside the lock) what settle and retry_due collected. */
static void finish(struct nats_out *o, struct out_batch *done, struct out_batch *failed)
{
    for (struct out_batch *jb = done, *next; jb; jb = next) {
        next = jb->next;
        struct tp_out_batch *b = jb->b;
        batch_free(jb);
        tp_out_batch_complete(b, TP_OK, NULL);
    }
    for (struct out_batch *jb = failed, *next; jb; jb = next) {
        next = jb->next;
        struct tp_error err = {0};
        if (o->stopping && !(o->cfg->max_retries >= 0 && jb->attempt >= o->cfg->max_retries))
            tp_error_set(&err, TP_IO,
                         "nats output: stopping while a batch of %zu is not delivered (%s); its "
                         "input will be delivered again",
                         jb->b->n, jb->why);
        else
            tp_error_set(&err, TP_IO, "nats output: batch of %zu not delivered: %s", jb->b->n,
                         jb->why);
        struct tp_out_batch *b = jb->b;
        batch_free(jb);
        tp_out_batch_fail(b, TP_IO, &err);
    }
}

/* The decimal number at *p (up to end or a '.'; at most 19 digits), *p
 * moved past it. 0 when there is none. */
static int read_uint(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t n = 0;
    while (s < end && *s >= '0' && *s <= '9' && s - *p < 19)
        n = n * 10 + (uint64_t)(*s++ - '0');
    if (s == *p || (s < end && *s != '.'))
        return 0;
    *v = n;
    *p = s;
    return 1;
}

/* A PubAck for <inbox>.<id>.<index>. */
static void on_answer(struct nats_out *o, const struct tp_nats_frame *f)
{
    if (f->subject_len <= o->inbox_len + 1)
        return;
    const char *p = f->subject + o->inbox_len + 1, *end = f->subject + f->subject_len;
    uint64_t id, idx;
    if (!read_uint(&p, end, &id) || p == end)
        return;
    p++; /* the '.' */
    if (!read_uint(&p, end, &idx) || p != end)
        return;
    size_t i = (size_t)idx;
    struct out_batch *jb = o->head;
    while (jb && jb->id != id)
        jb = jb->next;
    if (!jb || i >= jb->b->n || jb->state[i] == S_DONE || jb->state[i] == S_SKIP)
        return;
    char why[300];
    int ok = tp_nats_pub_ack_ok(f->hdr, f->hdr_len, f->payload, f->payload_len, why, sizeof(why));
    if (jb->state[i] == S_SENT) {
        jb->n_sent--;
        o->unacked--;
        jb->state[i] = S_FAILED;
        if (!ok)
            note_failure(jb, why);
    }
    if (ok) { /* stored (also a late answer of an earlier attempt) */
        jb->state[i] = S_DONE;
        jb->n_done++;
    }
}

/* ---------- the network thread ---------- */

static int subscribe(struct nats_out *o)
{
    o->subscribed_gen = o->conn.c.generation;
    if (!o->cfg->jetstream)
        return TP_OK;
    char subj[80];
    snprintf(subj, sizeof(subj), "%s.*.*", o->conn.inbox);
    return tp_nats_encode_sub(tp_nats_client_out(&o->conn.c), subj, NULL, SID_ACKS);
}

static void drain_wake(struct nats_out *o)
{
    char b[64];
    while (read(o->wake[0], b, sizeof(b)) > 0)
        ;
    o->wake_sent = 0;
}

static void *net_main(void *arg)
{
    pthread_setname_np(pthread_self(), "tp-nats-net");
    struct nats_out *o = arg;
    struct tp_nats_client *c = &o->conn.c;
    pthread_mutex_lock(&o->lock);
    while (!o->closing) {
        struct out_batch *done = NULL, *failed = NULL;
        if (!c->connected) {
            o->live = 0;
            unsend_all(o);
            o->polling = 1; /* connect waits on the wake pipe */
            pthread_mutex_unlock(&o->lock);
            tp_nats_client_connect(c, o->wake[0]);
            pthread_mutex_lock(&o->lock);
            o->polling = 0;
            drain_wake(o);
        }
        if (c->connected && o->subscribed_gen != c->generation) {
            if (subscribe(o))
                tp_nats_client_lost(c, "out of memory");
            o->live = c->connected;
        }
        int64_t now = tp_mono_ms();
        expire(o, now);
        retry_due(o, now, &failed);
        pump(o);
        for (struct out_batch *jb = o->head, *next; jb; jb = next) {
            next = jb->next;
            settle(o, jb, &done, now);
        }
        if (done || failed) {
            pthread_mutex_unlock(&o->lock);
            finish(o, done, failed);
            pthread_mutex_lock(&o->lock);
            continue;
        }
        if (!c->connected)
            continue;
        int woken = 0;
        o->polling = 1;
        c->poll_unlock = &o->lock;
        tp_nats_client_poll(c, 50, o->wake[0], &woken);
        c->poll_unlock = NULL;
        o->polling = 0;
        if (woken || o->wake_sent)
            drain_wake(o);
        struct tp_nats_frame f;
        while (tp_nats_client_next(c, &f) == TP_OK)
            if (f.sid == SID_ACKS && o->cfg->jetstream)
                on_answer(o, &f);
        if (c->connected)
            tp_nats_client_send(c);
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

/* ---------- plugin ---------- */

static void nats_out_close(void *p);

static int nats_out_open(const void *config, void **out, struct tp_error *err)
{
    struct nats_out *o = calloc(1, sizeof(*o));
    if (!o)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    o->cfg = config;
    o->wake[0] = o->wake[1] = -1;
    const struct out_config *cfg = o->cfg;
    tp_buf_init(&o->subject);
    tp_buf_init(&o->hdr);
    pthread_mutex_init(&o->lock, NULL);
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
    if (!rc && (pipe(o->wake) || fcntl(o->wake[0], F_SETFL, O_NONBLOCK) ||
                fcntl(o->wake[1], F_SETFL, O_NONBLOCK)))
        rc = tp_error_set(err, TP_IO, "output.nats: cannot create a pipe");
    if (!rc)
        rc = tp__nats_conn_open(&o->conn, &cfg->conn, "output.nats", err);
    o->inbox_len = strlen(o->conn.inbox);
    if (!rc && cfg->create_stream)
        rc =
            tp__nats_ensure_stream(&o->conn, cfg->stream, &cfg->stream_subjects, cfg->storage, err);
    if (!rc) {
        if (pthread_create(&o->thread, NULL, net_main, o))
            rc = tp_error_set(err, TP_NOMEM, "output.nats: cannot start the network thread");
        else
            o->has_thread = 1;
    }
    if (rc) {
        nats_out_close(o);
        return rc;
    }
    *out = o;
    return TP_OK;
}

static int nats_out_submit(void *p, struct tp_out_batch *b)
{
    struct nats_out *o = p;
    struct out_batch *jb = calloc(1, sizeof(*jb));
    uint8_t *state = jb ? calloc(b->n ? b->n : 1, 1) : NULL;
    if (!state) {
        free(jb);
        struct tp_error err = {0};
        tp_error_set(&err, TP_NOMEM, "nats output: out of memory");
        return tp_out_batch_fail(b, TP_NOMEM, &err);
    }
    jb->b = b;
    jb->state = state;
    jb->backoff_ms = 100;
    pthread_mutex_lock(&o->lock);
    jb->id = ++o->next_batch_id;
    jb->first_msg_id = o->next_msg_id;
    o->next_msg_id += b->n;
    jb->deadline = tp_mono_ms() + o->cfg->ack_timeout_ms;
    *(o->tail ? &o->tail->next : &o->head) = jb;
    o->tail = jb;
    if (o->live) {
        pump(o);
        tp_nats_client_send(&o->conn.c);
    }
    /* The network thread takes it from here: bytes the socket did not
     * take, a batch without room or connection, the completion. When all
     * of the batch went out, what completes it (PubAcks, the PONG) wakes
     * the thread from poll() anyway: no wake-up through the pipe. */
    struct tp_nats_client *c = &o->conn.c;
    int all_out = o->live && c->connected && !tp_mqtt_net_want_write(&c->net) &&
                  jb->next_send == b->n && (!o->cfg->jetstream || jb->n_sent > 0);
    if (!all_out)
        wake_thread(o);
    pthread_mutex_unlock(&o->lock);
    return TP_OK;
}

/* The signal thread: a batch retried forever (max_retries -1, the server
 * away) fails at its next attempt instead, so SIGTERM ends the run (a
 * batch still waiting for answers fails once they time out, after at most
 * ack_timeout). */
static void nats_out_stop(void *p)
{
    struct nats_out *o = p;
    pthread_mutex_lock(&o->lock);
    o->stopping = 1;
    wake_thread(o);
    pthread_mutex_unlock(&o->lock);
}

static void nats_out_close(void *p)
{
    struct nats_out *o = p;
    pthread_mutex_lock(&o->lock);
    o->closing = 1; /* no completion from here on */
    if (o->wake[1] >= 0) {
        ssize_t w = write(o->wake[1], "c", 1);
        (void)w;
    }
    pthread_mutex_unlock(&o->lock);
    if (o->has_thread)
        pthread_join(o->thread, NULL);
    if (o->conn.servers && o->conn.c.connected)
        tp_nats_client_flush(&o->conn.c, 2000);
    if (o->conn.servers)
        tp_nats_client_close(&o->conn.c);
    tp__nats_conn_free(&o->conn);
    while (o->head) { /* abandoned after a fatal error */
        struct out_batch *next = o->head->next;
        batch_free(o->head);
        o->head = next;
    }
    pthread_mutex_destroy(&o->lock);
    tp_template_free(o->tmpl);
    tp_buf_free(&o->subject);
    tp_buf_free(&o->hdr);
    if (o->wake[0] >= 0)
        close(o->wake[0]);
    if (o->wake[1] >= 0)
        close(o->wake[1]);
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

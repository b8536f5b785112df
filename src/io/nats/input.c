/* The `nats` input on tagproc's own client (client.h). The network loop
 * runs inside read() on the pipeline's reader thread: one read() drains the
 * socket and whole messages become the batch. Core NATS: subscriptions
 * (optionally in a queue group); at-most-once. JetStream: a durable pull
 * consumer (created if missing, never deleted by us) read with pull requests
 * ($JS.API.CONSUMER.MSG.NEXT, batch + expires) kept ahead of the pipeline;
 * a message is acked (+ACK to its reply subject) only in ack(), after the
 * output acknowledged everything derived from it: at-least-once. ack()
 * queues the ack and wakes read() only when it waits, which sends all queued
 * acks with one write. The output lives in output.c. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
              "core NATS: most messages taken from the socket per read (the rest waits in the "
              "socket: back-pressure)",
              .min = 1, .max = INT64_MAX),
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

/* A delivered JetStream message not yet acked: its ack subject. The ack
 * token handed to the pipeline. */
struct pend {
    struct pend *prev, *next;
    uint32_t len;
    char reply[];
};

/* An outstanding pull request: its id (reply <inbox>.<id>), messages still
 * due and when it expires. */
struct pull {
    uint64_t id;
    int64_t remaining;
    int64_t expires_ms;
};
#define MAX_PULLS 4
/* After a stop: how long past its expiry a pull request may still bring
 * messages (the server ends it with a 408 status; a starved reader thread
 * may read that late, and a message left unread stays unacked until
 * ack_wait). */
#define STOP_GRACE_MS 5000
#define SID_PULL 1 /* JetStream: <inbox>.* ; core: subjects[i] is sid i + 1 */

struct nats_in {
    const struct in_config *cfg;
    int use_js;
    struct tp__nats_conn conn;
    char next_subject[300];  /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> */
    uint64_t subscribed_gen; /* the connection generation subscriptions were made on */
    struct pull pulls[MAX_PULLS];
    size_t n_pulls;
    uint64_t next_pull_id;
    int drain_state; /* core after a stop: 0 running, 1 UNSUB sent (PING #drain_ping), 2 drained */
    uint64_t drain_ping;
    int wake[2];
    /* Guards the fields below (ack() runs on another thread). */
    pthread_mutex_t lock;
    struct tp_buf acks;                 /* queued +ACK publishes */
    struct pend *pend_head, *pend_tail; /* delivered, not yet acked, in order */
    int waiting;                        /* read() waits in poll: an ack must wake it */
    int wake_sent;
    int stop;
    uint64_t acked;
};

/* ---------- message conversion ---------- */

/* Reports f in drops as invalid_input (subject, stream sequence, why, and
 * the payload kept for the dead letter). */
static void drop_invalid(struct nats_in *in, const struct tp_nats_frame *f, const char *why,
                         struct tp_drops *drops)
{
    char where[64] = "";
    struct tp_nats_js_meta md;
    if (in->use_js && tp_nats_js_ack_parse(f->reply, f->reply_len, &md))
        snprintf(where, sizeof(where), " (stream %.*s sequence %.*s)",
                 (int)(md.stream_len < 30 ? md.stream_len : 30), md.stream,
                 (int)(md.sequence_len < 20 ? md.sequence_len : 20), md.sequence);
    tp_drops_add(drops, TP_DROP_INVALID_INPUT, "input", "nats subject %.*s%s: %s",
                 (int)(f->subject_len > 200 ? 200 : f->subject_len), f->subject, where, why);
    tp_drops_set_raw(drops, f->payload, f->payload_len);
}

/* f as a message (*out). TP_INVAL when f is reported in drops as
 * invalid_input: a malformed header block, or more metadata entries than
 * max_meta_keys. TP_NOMEM. */
static int convert(struct nats_in *in, const struct tp_nats_frame *f, struct tp_msg **out,
                   struct tp_drops *drops)
{
    char why[200];
    int rc = tp__nats_msg_from_frame(f, in->use_js, (uint64_t)in->cfg->max_meta_keys, out, why,
                                     sizeof(why));
    if (rc == TP_INVAL)
        drop_invalid(in, f, why, drops);
    return rc;
}

/* ---------- acks ---------- */

/* Queues an ack publish (+ACK, -NAK) to reply. Under lock. */
static int queue_ack(struct nats_in *in, const char *reply, size_t len, const char *what)
{
    return tp_nats_encode_pub(&in->acks, reply, len, NULL, 0, NULL, 0, what, strlen(what));
}

static void pend_unlink(struct nats_in *in, struct pend *p)
{
    *(p->prev ? &p->prev->next : &in->pend_head) = p->next;
    *(p->next ? &p->next->prev : &in->pend_tail) = p->prev;
}

static void nats_in_ack(void *p, void *token)
{
    struct nats_in *in = p;
    struct pend *pe = token;
    pthread_mutex_lock(&in->lock);
    pend_unlink(in, pe);
    if (queue_ack(in, pe->reply, pe->len, "+ACK"))
        tp_log_limited(TP_LOG_WARN, "nats-ack",
                       "nats input: out of memory for an ack; the message will be redelivered");
    else
        in->acked++;
    if (in->waiting && !in->wake_sent) {
        in->wake_sent = 1;
        ssize_t w = write(in->wake[1], "a", 1);
        (void)w;
    }
    pthread_mutex_unlock(&in->lock);
    free(pe);
}

/* Moves the queued acks into the connection's output. */
static void take_acks(struct nats_in *in)
{
    pthread_mutex_lock(&in->lock);
    if (in->acks.len && in->conn.c.connected &&
        tp_buf_append(tp_nats_client_out(&in->conn.c), in->acks.data, in->acks.len) == TP_OK)
        tp_buf_reset(&in->acks);
    pthread_mutex_unlock(&in->lock);
}

/* ---------- open ---------- */

static int deliver_policy_ok(const char *name)
{
    for (size_t i = 0; deliver_policies[i]; i++)
        if (strcmp(name, deliver_policies[i]) == 0)
            return 1;
    return 0;
}

/* Creates the durable pull consumer unless it exists (an existing one keeps its config). */
static int ensure_consumer(struct nats_in *in, const char *filter, struct tp_error *err)
{
    const struct js_in_config *c = in->cfg->jetstream;
    char api[600], why[300];
    struct tp_buf out, req;
    tp_buf_init(&out);
    tp_buf_init(&req);
    int code = 0;
    snprintf(api, sizeof(api), "CONSUMER.INFO.%s.%s", c->stream, c->durable);
    int rc = tp__nats_js_api(&in->conn, api, "", &out, &code, why, sizeof(why));
    if (rc || (code && code != 404)) {
        rc = tp_error_set(err, TP_IO, "input.nats.jetstream: consumer %s on stream %s: %s",
                          c->durable, c->stream, why);
        goto done;
    }
    if (!code)
        goto done;
    rc = tp_buf_puts(&req, "{\"stream_name\":");
    rc = rc ? rc : tp_json_write_string(&req, c->stream, strlen(c->stream));
    rc = rc ? rc : tp_buf_puts(&req, ",\"config\":{\"durable_name\":");
    rc = rc ? rc : tp_json_write_string(&req, c->durable, strlen(c->durable));
    rc = rc ? rc : tp_buf_puts(&req, ",\"ack_policy\":\"explicit\",\"deliver_policy\":\"");
    rc = rc ? rc
            : tp_buf_puts(&req, deliver_policy_ok(c->deliver_policy) ? c->deliver_policy : "all");
    rc = rc ? rc : tp_buf_puts(&req, "\",\"filter_subject\":");
    rc = rc ? rc : tp_json_write_string(&req, filter, strlen(filter));
    if (!rc && c->ack_wait_ms > 0)
        rc = tp_buf_printf(&req, ",\"ack_wait\":%lld", (long long)c->ack_wait_ms * 1000000);
    rc =
        rc ? rc : tp_buf_printf(&req, ",\"max_ack_pending\":%lld}}", (long long)c->max_ack_pending);
    if (rc) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto done;
    }
    snprintf(api, sizeof(api), "CONSUMER.DURABLE.CREATE.%s.%s", c->stream, c->durable);
    rc = tp__nats_js_api(&in->conn, api, req.data, &out, &code, why, sizeof(why));
    if (rc || code) {
        /* Another process may have created it at the same moment. */
        char why2[300];
        snprintf(api, sizeof(api), "CONSUMER.INFO.%s.%s", c->stream, c->durable);
        if (tp__nats_js_api(&in->conn, api, "", &out, &code, why2, sizeof(why2)) == TP_OK &&
            !code) {
            rc = TP_OK;
            goto done;
        }
        rc = tp_error_set(err, TP_IO,
                          "input.nats.jetstream: cannot create consumer %s on stream %s: %s",
                          c->durable, c->stream, why);
        goto done;
    }
    tp_log(TP_LOG_INFO, "created JetStream consumer %s on stream %s", c->durable, c->stream);
done:
    tp_buf_free(&out);
    tp_buf_free(&req);
    return rc;
}

static int open_js(struct nats_in *in, struct tp_error *err)
{
    const struct in_config *cfg = in->cfg;
    const struct js_in_config *c = cfg->jetstream;
    int rc;
    if (strchr(c->durable, '.') || strchr(c->durable, ' ') || strchr(c->durable, '*') ||
        strchr(c->durable, '>'))
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
    if (c->create_stream) {
        struct tp_strlist one = {(char **)&filter, 1};
        rc = tp__nats_ensure_stream(&in->conn, c->stream, cfg->subjects.n ? &cfg->subjects : &one,
                                    c->storage, err);
        if (rc)
            return rc;
    }
    rc = ensure_consumer(in, filter, err);
    if (rc)
        return rc;
    snprintf(in->next_subject, sizeof(in->next_subject), "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
             c->stream, c->durable);
    return TP_OK;
}

static void nats_in_close(void *p);

static int nats_in_open(const void *config, void **out, struct tp_error *err)
{
    struct nats_in *in = calloc(1, sizeof(*in));
    if (!in)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    in->cfg = config;
    in->wake[0] = in->wake[1] = -1;
    pthread_mutex_init(&in->lock, NULL);
    tp_buf_init(&in->acks);
    in->use_js = in->cfg->jetstream != NULL;
    int rc = TP_OK;
    if (!in->use_js && in->cfg->subjects.n == 0)
        rc = tp_error_set(err, TP_CONFIG, "input.nats.subjects: expected at least one subject");
    if (!rc && (pipe(in->wake) || fcntl(in->wake[0], F_SETFL, O_NONBLOCK) ||
                fcntl(in->wake[1], F_SETFL, O_NONBLOCK)))
        rc = tp_error_set(err, TP_IO, "input.nats: cannot create a pipe");
    if (!rc)
        rc = tp__nats_conn_open(&in->conn, &in->cfg->conn, "input.nats", err);
    if (!rc && in->use_js)
        rc = open_js(in, err);
    if (rc) {
        nats_in_close(in);
        return rc;
    }
    *out = in;
    return TP_OK;
}

/* ---------- read ---------- */

/* (Re)subscribes after a (re)connect: the pull inbox, or the core subjects.
 * Pull requests of an earlier connection are gone with it. */
static int subscribe(struct nats_in *in)
{
    struct tp_buf *w = tp_nats_client_out(&in->conn.c);
    int rc = TP_OK;
    in->n_pulls = 0;
    if (in->use_js) {
        char subj[80];
        snprintf(subj, sizeof(subj), "%s.*", in->conn.inbox);
        rc = tp_nats_encode_sub(w, subj, NULL, SID_PULL);
    } else if (in->drain_state == 0) {
        for (size_t i = 0; !rc && i < in->cfg->subjects.n; i++)
            rc = tp_nats_encode_sub(w, in->cfg->subjects.v[i], in->cfg->queue_group, i + 1);
    } else
        in->drain_state = 2; /* stopping: nothing more to drain from a new connection */
    in->subscribed_gen = in->conn.c.generation;
    return rc;
}

static int64_t fetch_wait_ms(const struct nats_in *in)
{
    int64_t ms = in->cfg->jetstream->fetch_wait_ms;
    return ms < 10 ? 10 : ms;
}

/* Forgets pull requests that are over (served, ended by a status, or
 * expired grace_ms ago: the status lost). Returns how many are left. */
static size_t prune_pulls(struct nats_in *in, int64_t now, int64_t grace_ms)
{
    size_t k = 0;
    for (size_t i = 0; i < in->n_pulls; i++)
        if (in->pulls[i].remaining > 0 && in->pulls[i].expires_ms + grace_ms > now)
            in->pulls[k++] = in->pulls[i];
    return in->n_pulls = k;
}

/* Keeps pull requests for at least `want` messages outstanding. */
static void top_up_pulls(struct nats_in *in, int64_t want)
{
    int64_t now = tp_mono_ms(), outstanding = 0;
    prune_pulls(in, now, 1000);
    for (size_t i = 0; i < in->n_pulls; i++)
        outstanding += in->pulls[i].remaining;
    if (outstanding >= want || in->n_pulls == MAX_PULLS)
        return;
    char reply[80], body[96];
    uint64_t id = ++in->next_pull_id;
    snprintf(reply, sizeof(reply), "%s.%llu", in->conn.inbox, (unsigned long long)id);
    int n = snprintf(body, sizeof(body), "{\"batch\":%lld,\"expires\":%lld}", (long long)want,
                     (long long)fetch_wait_ms(in) * 1000000);
    if (tp_nats_encode_pub(tp_nats_client_out(&in->conn.c), in->next_subject,
                           strlen(in->next_subject), reply, strlen(reply), NULL, 0, body,
                           (size_t)n))
        return;
    in->pulls[in->n_pulls++] = (struct pull){id, want, now + fetch_wait_ms(in)};
}

/* A status message for pull request <inbox>.<id> (404 no messages, 408
 * expired, 409 ...): the request is over. */
static void pull_status(struct nats_in *in, const struct tp_nats_frame *f, int code,
                        const char *desc, size_t desc_len)
{
    size_t il = strlen(in->conn.inbox);
    uint64_t id = f->subject_len > il + 1 ? strtoull(f->subject + il + 1, NULL, 10) : 0;
    for (size_t i = 0; i < in->n_pulls; i++)
        if (in->pulls[i].id == id)
            in->pulls[i].remaining = 0;
    if (code == 409) {
        char key[64];
        snprintf(key, sizeof(key), "nats-pull-%.*s", (int)(desc_len > 40 ? 40 : desc_len), desc);
        tp_log_limited(TP_LOG_WARN, key, "nats input: pull request ended by the server: %d %.*s",
                       code, (int)(desc_len > 200 ? 200 : desc_len), desc);
    }
}

/* One message of the oldest pull request still due arrived (requests are
 * served in order). */
static void pull_delivered(struct nats_in *in)
{
    for (size_t i = 0; i < in->n_pulls; i++)
        if (in->pulls[i].remaining > 0) {
            in->pulls[i].remaining--;
            break;
        }
}

/* The ack tokens of one read, in order, linked to the pending list together. */
struct pend_chain {
    struct pend *head, *tail;
};

/* One delivered JetStream message: to the batch with its ack token (added
 * to *chain), or, invalid, dropped and acked at once. */
static void on_js_msg(struct nats_in *in, const struct tp_nats_frame *f, struct tp_batch *batch,
                      struct tp_drops *drops, struct pend_chain *chain)
{
    pull_delivered(in);
    if (!f->reply || f->reply_len > UINT32_MAX)
        return; /* not a JetStream delivery */
    struct tp_msg *t = NULL;
    int rc = convert(in, f, &t, drops);
    if (rc == TP_INVAL) { /* accounted (dead-lettered): done with it */
        pthread_mutex_lock(&in->lock);
        queue_ack(in, f->reply, f->reply_len, "+ACK");
        pthread_mutex_unlock(&in->lock);
        return;
    }
    struct pend *pe = rc ? NULL : malloc(sizeof(*pe) + f->reply_len + 1);
    if (!pe) { /* not acked: the server redelivers it after ack_wait */
        tp_log_limited(TP_LOG_ERROR, "nats-in-nomem",
                       "nats input: out of memory, message left for redelivery");
        tp_msg_free(t);
        return;
    }
    pe->len = (uint32_t)f->reply_len;
    memcpy(pe->reply, f->reply, f->reply_len);
    pe->reply[f->reply_len] = '\0';
    t->ack = pe;
    if (tp_batch_push(batch, t)) { /* t freed; not acked: redelivered */
        tp_log_limited(TP_LOG_ERROR, "nats-in-nomem",
                       "nats input: out of memory, message left for redelivery");
        free(pe);
        return;
    }
    pe->next = NULL;
    pe->prev = chain->tail;
    *(chain->tail ? &chain->tail->next : &chain->head) = pe;
    chain->tail = pe;
}

/* Appends chain to the pending list (one lock per read, not per message;
 * before read() returns, so before any of them can be acked). */
static void pend_splice(struct nats_in *in, struct pend_chain *chain)
{
    if (!chain->head)
        return;
    pthread_mutex_lock(&in->lock);
    chain->head->prev = in->pend_tail;
    *(in->pend_tail ? &in->pend_tail->next : &in->pend_head) = chain->head;
    in->pend_tail = chain->tail;
    pthread_mutex_unlock(&in->lock);
}

/* Handles buffered operations until the batch is full or none is left. */
static void handle_frames(struct nats_in *in, struct tp_batch *batch, size_t max,
                          struct tp_drops *drops)
{
    struct tp_nats_frame f;
    struct pend_chain chain = {NULL, NULL};
    while (batch->len < max && tp_nats_client_next(&in->conn.c, &f) == TP_OK) {
        if (in->use_js) {
            const char *desc;
            size_t dl;
            int code = f.hdr ? tp_nats_status(f.hdr, f.hdr_len, &desc, &dl) : 0;
            if (f.sid != SID_PULL)
                continue;
            if (code && f.payload_len == 0) {
                if (code != 100) /* 100: heartbeat / flow control */
                    pull_status(in, &f, code, desc, dl);
                continue;
            }
            on_js_msg(in, &f, batch, drops, &chain);
        } else if (f.sid >= 1 && f.sid <= in->cfg->subjects.n) {
            struct tp_msg *t = NULL;
            int rc = convert(in, &f, &t, drops);
            if (rc == TP_NOMEM || (!rc && tp_batch_push(batch, t)))
                tp_log_limited(TP_LOG_ERROR, "nats-in-nomem",
                               "nats input: out of memory, a core NATS message lost");
        }
    }
    pend_splice(in, &chain);
}

static int is_stopped(struct nats_in *in)
{
    pthread_mutex_lock(&in->lock);
    int stop = in->stop;
    pthread_mutex_unlock(&in->lock);
    return stop;
}

/* Waits for the socket, wake-ups (acks, stop) or timeout_ms. */
static void wait_io(struct nats_in *in, int timeout_ms)
{
    pthread_mutex_lock(&in->lock);
    int skip = in->acks.len > 0;
    in->waiting = !skip;
    pthread_mutex_unlock(&in->lock);
    if (skip)
        return;
    int woken = 0;
    tp_nats_client_poll(&in->conn.c, timeout_ms, in->wake[0], &woken);
    pthread_mutex_lock(&in->lock);
    in->waiting = 0;
    if (in->wake_sent || woken) {
        char b[64];
        while (read(in->wake[0], b, sizeof(b)) > 0)
            ;
        in->wake_sent = 0;
    }
    pthread_mutex_unlock(&in->lock);
}

/* Core NATS after a stop: UNSUB everything, then hand over what the server
 * sent before it (until the PONG after the UNSUBs). 1 when drained. */
static int core_drained(struct nats_in *in)
{
    struct tp_nats_client *c = &in->conn.c;
    if (in->drain_state == 0) {
        for (size_t i = 0; c->connected && i < in->cfg->subjects.n; i++)
            tp_nats_encode_unsub(tp_nats_client_out(c), i + 1);
        in->drain_ping = c->connected ? tp_nats_client_ping(c) : 0;
        in->drain_state = c->connected ? 1 : 2;
    }
    if (in->drain_state == 1 && (!c->connected || c->pongs >= in->drain_ping))
        in->drain_state = 2;
    return in->drain_state == 2;
}

static int nats_in_read(void *p, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                        struct tp_error *err)
{
    (void)err; /* connection problems are retried, never fatal */
    struct nats_in *in = p;
    struct tp_nats_client *c = &in->conn.c;
    int64_t want = 0;
    if (!in->use_js && (int64_t)max > in->cfg->max_queued)
        max = (size_t)in->cfg->max_queued;
    if (in->use_js)
        want = (int64_t)max < in->cfg->jetstream->max_ack_pending
                   ? (int64_t)max
                   : in->cfg->jetstream->max_ack_pending;
    for (;;) {
        /* A stop hands over what the server still sends: core NATS until
         * the UNSUBs took effect, JetStream until the pull requests made
         * are over (so nothing delivered stays unacked until ack_wait). */
        int stop = is_stopped(in);
        if (stop && (!c->connected || (in->use_js ? !prune_pulls(in, tp_mono_ms(), STOP_GRACE_MS)
                                                  : core_drained(in)))) {
            take_acks(in);
            tp_nats_client_send(c);
            return TP_EOF;
        }
        if (!c->connected) {
            int rc = tp_nats_client_connect(c, in->wake[0]);
            if (rc == TP_EOF) { /* woken: a stop, or an ack to keep for later */
                char b[64];
                while (read(in->wake[0], b, sizeof(b)) > 0)
                    ;
                pthread_mutex_lock(&in->lock);
                in->wake_sent = 0;
                pthread_mutex_unlock(&in->lock);
            }
            if (rc != TP_OK)
                continue;
        }
        if (in->subscribed_gen != c->generation && subscribe(in)) {
            tp_nats_client_lost(c, "out of memory");
            continue;
        }
        take_acks(in);
        if (in->use_js && !stop)
            top_up_pulls(in, want);
        handle_frames(in, batch, max, drops);
        tp_nats_client_send(c); /* a lost connection: reconnected on the next call */
        if (batch->len || drops->n)
            return TP_OK;
        if (!c->connected)
            continue;
        int timeout = 1000;
        if (in->use_js && in->n_pulls) {
            int64_t until = in->pulls[0].expires_ms + 1000 - tp_mono_ms();
            timeout = until < 0 ? 0 : until < timeout ? (int)until : timeout;
        }
        wait_io(in, timeout);
    }
}

static void nats_in_stop(void *p)
{
    struct nats_in *in = p;
    pthread_mutex_lock(&in->lock);
    in->stop = 1;
    if (in->wake[1] >= 0) {
        ssize_t w = write(in->wake[1], "s", 1);
        (void)w;
    }
    pthread_mutex_unlock(&in->lock);
}

/* JetStream after the pipeline stopped reading: the pull requests made may
 * still bring messages; each one is NAK'ed so the server redelivers it at
 * once, ahead of newer ones (left unread it would stay unacked until
 * ack_wait and come back after them). Waits until the requests are over:
 * served, ended by a status, or expired plus a grace. */
static void nak_pull_leftovers(struct nats_in *in)
{
    struct tp_nats_client *c = &in->conn.c;
    size_t naked = 0;
    while (c->connected && prune_pulls(in, tp_mono_ms(), STOP_GRACE_MS / 5)) {
        struct tp_nats_frame f;
        int rc;
        while ((rc = tp_nats_client_next(c, &f)) == TP_OK) {
            if (f.sid != SID_PULL)
                continue;
            const char *desc;
            size_t dl;
            int code = f.hdr ? tp_nats_status(f.hdr, f.hdr_len, &desc, &dl) : 0;
            if (code && f.payload_len == 0) {
                if (code != 100)
                    pull_status(in, &f, code, desc, dl);
                continue;
            }
            pull_delivered(in);
            if (f.reply && f.reply_len <= UINT32_MAX) {
                pthread_mutex_lock(&in->lock);
                if (queue_ack(in, f.reply, f.reply_len, "-NAK") == TP_OK)
                    naked++;
                pthread_mutex_unlock(&in->lock);
            }
        }
        if (rc == TP_IO)
            break;
        take_acks(in);
        int woken;
        if (tp_nats_client_poll(c, 100, -1, &woken) != TP_OK)
            break;
    }
    if (naked)
        tp_log(TP_LOG_INFO,
               "nats input: %zu messages delivered after the stop returned unprocessed", naked);
}

static void nats_in_close(void *p)
{
    struct nats_in *in = p;
    nats_in_stop(in);
    /* Unacked JetStream messages (a fatal stop): nak them for a prompt redelivery. */
    size_t naked = 0;
    pthread_mutex_lock(&in->lock);
    for (struct pend *pe = in->pend_head, *next; pe; pe = next) {
        next = pe->next;
        if (queue_ack(in, pe->reply, pe->len, "-NAK") == TP_OK)
            naked++;
        free(pe);
    }
    in->pend_head = in->pend_tail = NULL;
    pthread_mutex_unlock(&in->lock);
    struct tp_nats_client *c = &in->conn.c;
    if (in->use_js && in->conn.servers)
        nak_pull_leftovers(in);
    if (in->conn.servers && c->connected) {
        take_acks(in);
        if (tp_nats_client_flush(c, 5000) != TP_OK && in->use_js)
            tp_log(TP_LOG_WARN, "nats input: could not confirm the last acks with the server; "
                                "those messages will be redelivered");
    }
    if (in->use_js && in->conn.servers)
        tp_log(TP_LOG_INFO, "nats input: %llu messages acked, %zu returned unprocessed",
               (unsigned long long)in->acked, naked);
    if (in->conn.servers)
        tp_nats_client_close(c);
    tp__nats_conn_free(&in->conn);
    tp_buf_free(&in->acks);
    if (in->wake[0] >= 0)
        close(in->wake[0]);
    if (in->wake[1] >= 0)
        close(in->wake[1]);
    pthread_mutex_destroy(&in->lock);
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

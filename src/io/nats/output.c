/* The `nats` output. Each message goes to the subject rendered from a
 * {{meta.KEY}} template (default: umh_topic) with its metadata as headers.
 * JetStream: asynchronous publishes, then write() waits for every PubAck of
 * the batch, retrying the batch (same Nats-Msg-Id, so the stream drops the
 * duplicates) until all are stored. Core NATS: publish + flush (the server got them). */
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

struct nats_out {
    const struct out_config *cfg;
    struct tp_template *tmpl;
    natsConnection *nc;
    jsCtx *js;
    struct tp_buf subject;
    char id_prefix[48];
    uint64_t next_id;
    int failed; /* publish errors reported by the PubAck handler in this attempt */
    char fail_text[256];
    int stopping; /* atomic: stop() was called; a batch not delivered now fails */
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

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    struct nats_out *o = closure;
    /* Called on the libnats delivery thread before the pending count drops,
     * so write() sees it once js_PublishAsyncComplete returns. */
    __atomic_fetch_add(&o->failed, 1, __ATOMIC_SEQ_CST);
    snprintf(o->fail_text, sizeof(o->fail_text), "%s (%s, code %d)",
             pae->ErrText ? pae->ErrText : "", natsStatus_GetText(pae->Err), (int)pae->ErrCode);
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
        jo.PublishAsync.ErrHandler = on_pub_error;
        jo.PublishAsync.ErrHandlerClosure = o;
        jo.PublishAsync.StallWait = o->cfg->ack_timeout_ms;
        natsStatus s = natsConnection_JetStream(&o->js, o->nc, &jo);
        if (s != NATS_OK)
            rc =
                tp_error_set(err, TP_IO, "output.nats: JetStream context: %s", tp__nats_errtext(s));
        if (!rc && cfg->create_stream)
            rc = tp__nats_ensure_stream(o->js, cfg->stream, &cfg->stream_subjects, cfg->storage,
                                        err);
    }
    if (rc) {
        nats_out_close(o);
        return rc;
    }
    *out = o;
    return TP_OK;
}

/* Builds the NATS message for message i of b; NULL when it has no valid
 * subject (then, when `report`, a per-message invalid_topic drop). */
static natsMsg *build(struct nats_out *o, struct tp_out_batch *b, size_t i, int report, int *nomem)
{
    const struct tp_msg *m = b->msgs[i];
    char why[300];
    int rc = tp__nats_subject_render(o->tmpl, m, &o->subject, why, sizeof(why));
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
    natsStatus s = natsMsg_Create(&nm, o->subject.data, NULL, m->payload, (int)m->payload_len);
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

/* One attempt at publishing msgs[0..n) to JetStream and collecting every PubAck. */
static int js_attempt(struct nats_out *o, struct tp_out_batch *b, int first, uint64_t first_id,
                      char *why, size_t size)
{
    __atomic_store_n(&o->failed, 0, __ATOMIC_SEQ_CST);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = o->cfg->ack_timeout_ms;
    po.ExpectStream = o->cfg->stream;
    char id[96];
    natsStatus s = NATS_OK;
    for (size_t i = 0; i < b->n; i++) {
        int nomem = 0;
        natsMsg *nm = build(o, b, i, first, &nomem);
        if (nomem) {
            snprintf(why, size, "out of memory");
            return TP_NOMEM;
        }
        if (!nm)
            continue;
        if (o->cfg->dedup) {
            snprintf(id, sizeof(id), "%s-%llu", o->id_prefix, (unsigned long long)(first_id + i));
            po.MsgId = id;
        }
        s = js_PublishMsgAsync(o->js, &nm, &po);
        natsMsg_Destroy(nm); /* NULL when the library took it */
        if (s != NATS_OK) {
            snprintf(why, size, "publish: %s", tp__nats_errtext(s));
            break;
        }
    }
    /* Waits for the PubAcks in slices, so that a stop ends the wait. */
    jsPubOptions wait;
    jsPubOptions_Init(&wait);
    wait.MaxWait = 100;
    natsStatus cs;
    for (int64_t until = tp_mono_ms() + o->cfg->ack_timeout_ms + 1000;;) {
        cs = js_PublishAsyncComplete(o->js, &wait);
        if (cs != NATS_TIMEOUT || stopping(o) || tp_mono_ms() >= until)
            break;
    }
    if (cs != NATS_OK) {
        natsMsgList pend = {0};
        if (js_PublishAsyncGetPendingList(&pend, o->js) == NATS_OK)
            natsMsgList_Destroy(&pend);
        if (s == NATS_OK)
            snprintf(why, size, "no acknowledgement within %lld ms",
                     (long long)o->cfg->ack_timeout_ms);
        return TP_IO;
    }
    if (s != NATS_OK)
        return TP_IO;
    int failed = __atomic_load_n(&o->failed, __ATOMIC_SEQ_CST);
    if (failed) {
        snprintf(why, size, "%d publishes not acknowledged: %s", failed, o->fail_text);
        return TP_IO;
    }
    return TP_OK;
}

/* One attempt with core NATS: publish everything, then a flush round trip. */
static int core_attempt(struct nats_out *o, struct tp_out_batch *b, int first, char *why,
                        size_t size)
{
    for (size_t i = 0; i < b->n; i++) {
        int nomem = 0;
        natsMsg *nm = build(o, b, i, first, &nomem);
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

static int nats_out_submit(void *p, struct tp_out_batch *b)
{
    struct nats_out *o = p;
    uint64_t first_id = o->next_id;
    o->next_id += b->n;
    int64_t backoff_ms = 100;
    char why[400] = "";
    struct tp_error err = {0};
    for (int64_t attempt = 0;; attempt++) {
        int rc = o->js ? js_attempt(o, b, attempt == 0, first_id, why, sizeof(why))
                       : core_attempt(o, b, attempt == 0, why, sizeof(why));
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
 * away) fails at its next attempt instead, so SIGTERM ends the run. */
static void nats_out_stop(void *p)
{
    struct nats_out *o = p;
    __atomic_store_n(&o->stopping, 1, __ATOMIC_RELEASE);
}

static void nats_out_close(void *p)
{
    struct nats_out *o = p;
    jsCtx_Destroy(o->js);
    if (o->nc) {
        natsConnection_Close(o->nc);
        natsConnection_Destroy(o->nc);
    }
    tp_template_free(o->tmpl);
    tp_buf_free(&o->subject);
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

/* Kafka input (librdkafka high-level consumer in a consumer group).
 * At-least-once: offsets are stored
 * (enable.auto.offset.store=false) only for messages the pipeline acked,
 * and acks arrive in input order, so a stored offset never passes a message
 * that is still in flight; auto commit writes the stored offsets. Acks only
 * advance a partition's acked offset; it is handed to librdkafka every
 * STORE_EVERY offsets, when the partition has nothing in flight, and before
 * every commit (part_flush). */
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/log.h"
#include "core/clock.h"
#include "core/number.h"
#include "core/plugin.h"
#include "io/kafka/internal.h"

/* Default queued.min.messages (docs/kafka.md, "Draining a backlog"):
 * librdkafka 2.0.2 compares it with the consumer's one shared queue (all
 * partitions), not per partition as documented, and once the queue holds
 * that many records the fetcher re-checks only about once a second: with
 * its default of 100,000 a backlog drained in ~100,000-record bursts with
 * up to a second of idling between them. Overridable in `properties`. */
#define QUEUED_MIN_MESSAGES "500000"

static const char *const start_offsets[] = {"earliest", "latest", NULL};

static const struct tp_option in_options[] = {
    TP_OPTION(struct tp__kafka_in_config, brokers, "brokers", TP_OPT_STRINGS, NULL,
              "bootstrap brokers, host:port", .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct tp__kafka_in_config, topics, "topics", TP_OPT_STRINGS, NULL,
              "topics to subscribe to (a name starting with ^ is a regex)",
              .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct tp__kafka_in_config, consumer_group, "consumer_group", TP_OPT_STRING, NULL,
              "consumer group id (group.id)", .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct tp__kafka_in_config, client_id, "client_id", TP_OPT_STRING, "tagproc",
              "client.id"),
    TP_OPTION(struct tp__kafka_in_config, start_offset, "start_offset", TP_OPT_STRING, "earliest",
              "where to start in a partition without a committed offset", .choices = start_offsets),
    TP_OPTION(struct tp__kafka_in_config, key_filter, "key_filter", TP_OPT_STRING, NULL,
              "regex (Go/RE2 syntax: \\d \\w \\s and [[:digit:]] classes); records whose "
              "key does not match are skipped",
              .flags = TP_OPT_REGEX),
    TP_OPTION(struct tp__kafka_in_config, max_poll_records, "max_poll_records", TP_OPT_INT, "0",
              "most records per read (0: the pipeline batch size)", .min = 0, .max = INT64_MAX),
    TP_OPTION(struct tp__kafka_in_config, revoke_timeout_ms, "revoke_timeout_ms", TP_OPT_DURATION,
              "10000",
              "on a rebalance, how long to wait for in-flight messages of revoked partitions",
              .int_ms = 1, .min = 0, .max = INT64_MAX),
    TP_OPTION(struct tp__kafka_in_config, headers, "headers", TP_OPT_STRING, "all",
              "all: every record header becomes a metadata entry; none: headers are ignored "
              "(never parsed; the kafka_* entries stay)",
              .choices = tp__kafka_header_modes),
    TP_OPTION(struct tp__kafka_in_config, properties, "properties", TP_OPT_STRMAP, NULL,
              "extra librdkafka properties, passed as-is (e.g. security.protocol)"),
    TP_OPTION(struct tp__kafka_in_config, max_meta_keys, "max_meta_keys", TP_OPT_INT,
              TP_JSON_MAX_META_KEYS_TEXT,
              "most metadata entries (record fields + headers) of one record; a record with "
              "more is dropped as invalid_input (dead-lettered with its payload) and its offset "
              "committed",
              .min = 1, .max = UINT32_MAX),
    {0},
};

/* One topic-partition ever seen. `gen` changes on every assign and revoke so
 * that acks of messages read under an older assignment are ignored. */
struct kafka_part {
    char *topic;
    int32_t partition;
    uint32_t gen;
    int assigned;
    int64_t inflight; /* messages handed to the pipeline and not yet acked */
    int64_t skip_to;  /* offset after the last skipped (key_filter) record, or -1 */
    int64_t acked;    /* next offset after the last acked message, or -1 */
    int64_t stored;   /* the last `acked` given to librdkafka's offsets_store, or -1 */
    rd_kafka_topic_partition_list_t *store; /* one element, reused for offsets_store */
};

struct kafka_token {
    struct kafka_part *part;
    int64_t offset;
    uint32_t gen;
    struct kafka_token *next; /* free list */
};

#define TOKENS_PER_SLAB 1024
struct token_slab {
    struct token_slab *next;
    struct kafka_token t[TOKENS_PER_SLAB];
};

struct kafka_in {
    struct tp__kafka_names names; /* first: librdkafka's opaque (internal.h) */
    const struct tp__kafka_in_config *cfg;
    rd_kafka_t *rk;
    regex_t key_re;
    int has_re;
    uint32_t max_meta_keys;
    int no_headers;          /* headers: none */
    atomic_int stop;         /* set by the signal thread, read by the reader */
    atomic_int closing;      /* the pipeline is done: no ack will come any more */
    rd_kafka_queue_t *queue; /* the consumer queue, read in batches */
    /* Set by a revoke served inside a consume call (reader thread): the
     * records that call returned may belong to partitions given up. */
    int revoked_in_call;
    /* The batch the reader is filling (inside read, NULL outside) and where
     * this read started in it: a revoke (served inside read, on the reader's
     * thread) takes the revoked partitions' records back out of it. */
    struct tp_batch *reading;
    size_t reading_from;

    pthread_mutex_t lock; /* parts, tokens */
    pthread_cond_t drained;
    struct kafka_part **parts;
    size_t n_parts, cap_parts;
    struct kafka_part *last;
    struct token_slab *slabs;
    struct kafka_token *free_tokens;
};

/* Caller holds the lock. NULL on allocation failure. */
static struct kafka_part *part_get(struct kafka_in *in, const char *topic, int32_t partition)
{
    if (in->last && in->last->partition == partition && strcmp(in->last->topic, topic) == 0)
        return in->last;
    for (size_t i = 0; i < in->n_parts; i++)
        if (in->parts[i]->partition == partition && strcmp(in->parts[i]->topic, topic) == 0)
            return in->last = in->parts[i];
    if (in->n_parts == in->cap_parts) {
        size_t cap = in->cap_parts ? in->cap_parts * 2 : 16;
        struct kafka_part **v = realloc(in->parts, cap * sizeof(*v));
        if (!v)
            return NULL;
        in->parts = v;
        in->cap_parts = cap;
    }
    struct kafka_part *p = calloc(1, sizeof(*p));
    if (!p || !(p->topic = strdup(topic))) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    p->skip_to = p->acked = p->stored = -1;
    p->store = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(p->store, topic, partition);
    in->parts[in->n_parts++] = p;
    return in->last = p;
}

/* Acked offsets handed to librdkafka at least this often (in offsets):
 * one offsets_store (a librdkafka lock round) per run of acks rather than
 * per message. */
#define STORE_EVERY 256

/* Caller holds the lock: hands p's acked offset to librdkafka (the next
 * commit writes it) if it moved since the last time. */
static void part_flush(struct kafka_in *in, struct kafka_part *p)
{
    if (p->acked <= p->stored)
        return;
    p->stored = p->acked;
    p->store->elems[0].offset = p->acked;
    /* Fails with _STATE when the partition is no longer assigned: ignored,
     * the new owner re-reads from the last committed offset. */
    rd_kafka_offsets_store(in->rk, p->store);
}

/* Caller holds the lock: part_flush for every assigned partition. */
static void flush_all(struct kafka_in *in)
{
    for (size_t i = 0; i < in->n_parts; i++)
        if (in->parts[i]->assigned)
            part_flush(in, in->parts[i]);
}

/* Caller holds the lock: `next` is p's offset to commit; stored at once
 * when p has nothing in flight, else once STORE_EVERY offsets piled up
 * (the reader flushes the rest within its next wait slice). */
static void part_store(struct kafka_in *in, struct kafka_part *p, int64_t next)
{
    if (next <= p->acked)
        return;
    p->acked = next;
    if (p->inflight == 0 || p->acked - p->stored >= STORE_EVERY)
        part_flush(in, p);
}

static struct kafka_token *token_new(struct kafka_in *in)
{
    if (!in->free_tokens) {
        struct token_slab *s = malloc(sizeof(*s));
        if (!s)
            return NULL;
        s->next = in->slabs;
        in->slabs = s;
        for (size_t i = 0; i < TOKENS_PER_SLAB; i++) {
            s->t[i].next = in->free_tokens;
            in->free_tokens = &s->t[i];
        }
    }
    struct kafka_token *t = in->free_tokens;
    in->free_tokens = t->next;
    return t;
}

static void kafka_in_ack(void *state, void *token)
{
    struct kafka_in *in = state;
    struct kafka_token *t = token;
    pthread_mutex_lock(&in->lock);
    struct kafka_part *p = t->part;
    if (t->gen == p->gen) {
        p->inflight--;
        int64_t next = t->offset + 1;
        if (p->inflight == 0 && p->skip_to > next)
            next = p->skip_to;
        part_store(in, p, next);
        if (p->inflight == 0)
            pthread_cond_broadcast(&in->drained);
    }
    t->next = in->free_tokens;
    in->free_tokens = t;
    pthread_mutex_unlock(&in->lock);
}

/* Waits (bounded) until no message of the given partitions is in flight, so
 * that their offsets can be committed before another member takes them. */
static void wait_drained(struct kafka_in *in, const rd_kafka_topic_partition_list_t *parts)
{
    struct timespec deadline = tp_deadline_in_ms(in->cfg->revoke_timeout_ms);
    pthread_mutex_lock(&in->lock);
    for (;;) {
        int64_t busy = 0;
        for (int i = 0; i < parts->cnt; i++) {
            struct kafka_part *p = part_get(in, parts->elems[i].topic, parts->elems[i].partition);
            if (p && p->gen && p->assigned)
                busy += p->inflight;
        }
        int closing = atomic_load(&in->closing);
        if (!busy || closing || pthread_cond_timedwait(&in->drained, &in->lock, &deadline)) {
            if (busy && !closing)
                tp_log(TP_LOG_WARN,
                       "%s: rebalance: %lld message(s) of revoked partitions still in "
                       "flight; they may be delivered again by the new owner",
                       in->names.who, (long long)busy);
            break;
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        struct kafka_part *p = part_get(in, parts->elems[i].topic, parts->elems[i].partition);
        if (p) {
            if (p->assigned)
                part_flush(in, p); /* for the commit that follows */
            p->gen++;
            p->assigned = 0;
        }
    }
    pthread_mutex_unlock(&in->lock);
}

/* A revoke served inside read (on the reader's thread): the records of the
 * revoked partitions that this read already put into the batch never reached
 * the pipeline, so no ack will ever come for them. Take them back out (not
 * processed, offsets not stored): the next owner reads them again from the
 * committed offset, and the revoke waits only for records really in flight. */
static void unread_revoked(struct kafka_in *in, const rd_kafka_topic_partition_list_t *parts)
{
    struct tp_batch *b = in->reading;
    if (!b)
        return;
    size_t kept = in->reading_from, taken = 0;
    pthread_mutex_lock(&in->lock);
    for (size_t i = in->reading_from; i < b->len; i++) {
        struct tp_msg *m = b->msgs[i];
        struct kafka_token *t = m->ack;
        struct kafka_part *p = t->part;
        if (!rd_kafka_topic_partition_list_find(parts, p->topic, p->partition)) {
            b->msgs[kept++] = m;
            continue;
        }
        if (t->gen == p->gen)
            p->inflight--;
        t->next = in->free_tokens;
        in->free_tokens = t;
        m->ack = NULL;
        tp_msg_free(m);
        taken++;
    }
    b->len = kept;
    pthread_mutex_unlock(&in->lock);
    if (taken)
        tp_log(TP_LOG_DEBUG,
               "%s: rebalance: %zu record(s) of revoked partitions not handed over (read "
               "again by the next owner)",
               in->names.who, taken);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kafka_in *in = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        pthread_mutex_lock(&in->lock);
        for (int i = 0; i < parts->cnt; i++) {
            struct kafka_part *p = part_get(in, parts->elems[i].topic, parts->elems[i].partition);
            if (!p)
                continue;
            p->gen++;
            p->assigned = 1;
            p->inflight = 0;
            p->skip_to = p->acked = p->stored = -1;
        }
        pthread_mutex_unlock(&in->lock);
        tp_log(TP_LOG_INFO, "%s: assigned %d partition(s)", in->names.who, parts->cnt);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                tp_log(TP_LOG_ERROR, "%s: assign: %s", in->names.who, rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        tp_log(TP_LOG_INFO, "%s: revoking %d partition(s)", in->names.who, parts->cnt);
        in->revoked_in_call = 1;
        unread_revoked(in, parts);
        wait_drained(in, parts);
        pthread_mutex_lock(&in->lock);
        flush_all(in);
        pthread_mutex_unlock(&in->lock);
        /* Commit what is stored for the partitions we still own, before they go. */
        if (!rd_kafka_assignment_lost(rk)) {
            rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
            if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                tp_log(TP_LOG_WARN, "%s: commit on revoke: %s", in->names.who,
                       rd_kafka_err2str(cerr));
        }
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e)
                rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
        return;
    }
    tp_log(TP_LOG_ERROR, "%s: rebalance error: %s", in->names.who, rd_kafka_err2str(err));
    rd_kafka_assign(rk, NULL);
}

static void kafka_in_close(void *state);

static int kafka_in_open(const void *config, void **out, struct tp_error *err)
{
    const struct tp__kafka_in_config *cfg = config;
    struct kafka_in *in = calloc(1, sizeof(*in));
    if (!in)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    tp__kafka_names_init(&in->names, "input", cfg->connector);
    in->cfg = cfg;
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->drained, NULL);
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    int rc = TP_OK;
    if (cfg->key_filter) {
        int e = regcomp(&in->key_re, cfg->key_filter, REG_EXTENDED | REG_NOSUB);
        if (e) {
            char why[128];
            regerror(e, &in->key_re, why, sizeof(why));
            rc = tp_error_set(err, TP_CONFIG, "%s.key_filter: invalid regex: %s", in->names.path,
                              why);
            goto fail;
        }
        in->has_re = 1;
    }
    if (!cfg->topics.n) {
        rc = tp_error_set(err, TP_CONFIG, "%s.topics: expected at least one topic", in->names.path);
        goto fail;
    }
    /* 0: a config filled by a connector built on this input (uns) */
    in->no_headers = tp__kafka_headers_none(cfg->headers);
    in->max_meta_keys = cfg->max_meta_keys ? (uint32_t)cfg->max_meta_keys : TP_JSON_MAX_META_KEYS;
    rc = tp__kafka_conf_new(in->names.path, &cfg->brokers, cfg->client_id, &conf, err);
    if (rc)
        goto fail;
    if ((rc = tp__kafka_conf_set(conf, in->names.path, "group.id", cfg->consumer_group, err)) ||
        (rc = tp__kafka_conf_set(conf, in->names.path, "auto.offset.reset", cfg->start_offset,
                                 err)) ||
        (rc = tp__kafka_conf_set(conf, in->names.path, "enable.auto.commit", "true", err)) ||
        (rc = tp__kafka_conf_set(conf, in->names.path, "queued.min.messages", QUEUED_MIN_MESSAGES,
                                 err)) ||
        (rc = tp__kafka_conf_apply(conf, in->names.path, &cfg->properties, err)) ||
        /* Not overridable: offsets are stored only for acknowledged messages. */
        (rc = tp__kafka_conf_set(conf, in->names.path, "enable.auto.offset.store", "false", err)))
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, in);
    char why[512];
    in->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!in->rk) {
        rc = tp_error_set(err, TP_CONFIG, "%s: cannot create consumer: %s", in->names.path, why);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(in->rk);
    in->queue = rd_kafka_queue_get_consumer(in->rk);
    subs = rd_kafka_topic_partition_list_new((int)cfg->topics.n);
    for (size_t i = 0; i < cfg->topics.n; i++)
        rd_kafka_topic_partition_list_add(subs, cfg->topics.v[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(in->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (kerr) {
        rc = tp_error_set(err, TP_CONFIG, "%s: cannot subscribe to %s%s: %s", in->names.path,
                          cfg->topics.v[0], cfg->topics.n > 1 ? " and the other topics" : "",
                          rd_kafka_err2str(kerr));
        goto fail;
    }
    *out = in;
    return TP_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    kafka_in_close(in);
    return rc;
}

/* What record_to_msg makes metadata of, looked at once per record: the
 * headers (parsed by librdkafka on first access) and the timestamp. */
struct record_meta {
    rd_kafka_headers_t *hdrs; /* NULL: none */
    size_t n_hdrs;
    int has_ts;
    int64_t ts;
};

/* Fills rm for rkm; returns the number of metadata entries record_to_msg
 * makes of it, at most (kafka_key, _topic, _partition, _offset,
 * _timestamp_ms, one per header unless no_headers: then librdkafka never
 * parses them). */
static size_t record_meta_of(rd_kafka_message_t *rkm, int no_headers, struct record_meta *rm)
{
    rd_kafka_timestamp_type_t tstype;
    rm->ts = rd_kafka_message_timestamp(rkm, &tstype);
    rm->has_ts = tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    rm->hdrs = NULL;
    rm->n_hdrs = 0;
    if (!no_headers && rd_kafka_message_headers(rkm, &rm->hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rm->n_hdrs = rd_kafka_header_cnt(rm->hdrs);
    else
        rm->hdrs = NULL;
    return 3 + (rkm->key != NULL) + (size_t)rm->has_ts + rm->n_hdrs;
}

/* Decimal text of v into buf (room for 21); returns its length. */
static size_t int_text(int64_t v, char *buf)
{
    size_t n = 0;
    if (v < 0)
        buf[n++] = '-';
    return n + (size_t)tp_u64_digits(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, buf + n);
}

/* 1 when header `name` would hide one of the record's own kafka_* entries. */
static int hides_coordinate(const char *name, const rd_kafka_message_t *rkm,
                            const struct record_meta *rm)
{
    if (name[0] != 'k' || strncmp(name, "kafka_", 6) != 0)
        return 0;
    name += 6;
    return strcmp(name, "topic") == 0 || strcmp(name, "partition") == 0 ||
           strcmp(name, "offset") == 0 || (rkm->key && strcmp(name, "key") == 0) ||
           (rm->has_ts && strcmp(name, "timestamp_ms") == 0);
}

#define APPEND_LIT(m, key, val, vlen) tp_msg_meta_append(m, key, sizeof(key) - 1, val, vlen)

/* A record's headers as librdkafka lists them, read once (up to
 * HDRS_AT_ONCE; a record with more is read again from the list). */
#define HDRS_AT_ONCE 32
struct hdr_view {
    const char *name;
    const void *val;
    size_t name_len, len;
};

/* Reads header i of rm into h; 0, or -1 past the list. */
static int hdr_read(const struct record_meta *rm, size_t i, struct hdr_view *h)
{
    if (rd_kafka_header_get_all(rm->hdrs, i, &h->name, &h->val, &h->len))
        return -1;
    h->name_len = strlen(h->name);
    return 0;
}

/* Converts one record into a message, its metadata in one reserved block
 * (no per-entry growth or lookup; repeated header names are merged once at
 * the end, the last value kept, by tp_msg_meta_dedupe, which returns at
 * once when no name repeats); NULL on allocation failure. */
static struct tp_msg *record_to_msg(const rd_kafka_message_t *rkm, const char *topic,
                                    const struct record_meta *rm, size_t n_meta)
{
    struct tp_msg *m = tp_msg_new_payload(rkm->payload ? rkm->payload : "", rkm->len);
    if (!m)
        return NULL;
    char part[24], off[24], ts[24];
    size_t part_len = int_text(rkm->partition, part), off_len = int_text(rkm->offset, off);
    size_t ts_len = rm->has_ts ? int_text(rm->ts, ts) : 0, topic_len = strlen(topic);
    /* keys, values and their NULs */
    size_t bytes = (rkm->key ? sizeof("kafka_key") + rkm->key_len + 1 : 0) + sizeof("kafka_topic") +
                   topic_len + 1 + sizeof("kafka_partition") + part_len + 1 +
                   sizeof("kafka_offset") + off_len + 1 +
                   (rm->has_ts ? sizeof("kafka_timestamp_ms") + ts_len + 1 : 0);
    struct hdr_view hv[HDRS_AT_ONCE], one;
    size_t n_hdrs = 0;
    for (size_t i = 0; i < rm->n_hdrs; i++, n_hdrs++) {
        struct hdr_view *h = i < HDRS_AT_ONCE ? &hv[i] : &one;
        if (hdr_read(rm, i, h))
            break;
        bytes += h->name_len + 1 + (h->val ? h->len : 0) + 1;
    }
    int rc = tp_msg_meta_reserve(m, (uint32_t)n_meta, bytes);
    if (!rc && rkm->key)
        rc = APPEND_LIT(m, "kafka_key", rkm->key, rkm->key_len);
    if (!rc)
        rc = APPEND_LIT(m, "kafka_topic", topic, topic_len);
    if (!rc)
        rc = APPEND_LIT(m, "kafka_partition", part, part_len);
    if (!rc)
        rc = APPEND_LIT(m, "kafka_offset", off, off_len);
    if (!rc && rm->has_ts)
        rc = APPEND_LIT(m, "kafka_timestamp_ms", ts, ts_len);
    for (size_t i = 0; !rc && i < n_hdrs; i++) {
        struct hdr_view *h = i < HDRS_AT_ONCE ? &hv[i] : &one;
        if (i >= HDRS_AT_ONCE && hdr_read(rm, i, h))
            break;
        if (hides_coordinate(h->name, rkm, rm))
            continue; /* never let a header hide the record's own coordinates */
        rc = tp_msg_meta_append(m, h->name, h->name_len, h->val ? h->val : "", h->val ? h->len : 0);
    }
    if (!rc && n_hdrs > 1)
        rc = tp_msg_meta_dedupe(m);
    if (rc) {
        tp_msg_free(m);
        return NULL;
    }
    return m;
}

static int key_matches(struct kafka_in *in, const rd_kafka_message_t *rkm)
{
    char small[256];
    size_t len = rkm->key ? rkm->key_len : 0;
    char *key = len < sizeof(small) ? small : malloc(len + 1);
    if (!key)
        return 1; /* cannot check: deliver rather than lose */
    if (len)
        memcpy(key, rkm->key, len);
    key[len] = '\0';
    int ok = regexec(&in->key_re, key, 0, NULL, 0) == 0;
    if (key != small)
        free(key);
    return ok;
}

/* 1 when topic/partition is assigned to us (a revoke served inside the
 * consume call that returned its record may have taken it away). */
static int still_assigned(struct kafka_in *in, const char *topic, int32_t partition)
{
    pthread_mutex_lock(&in->lock);
    struct kafka_part *p = part_get(in, topic, partition);
    int assigned = p && p->assigned;
    pthread_mutex_unlock(&in->lock);
    return assigned;
}

/* Handles one record: appended to batch (1), skipped or dropped (0) or
 * error (<0). A record with more than max_meta_keys metadata entries is
 * reported in drops (invalid_input, with its coordinates and payload) and
 * then done like a skipped one. */
static int take_record(struct kafka_in *in, rd_kafka_message_t *rkm, struct tp_batch *batch,
                       struct tp_drops *drops)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    if (in->revoked_in_call && !still_assigned(in, topic, rkm->partition))
        return 0; /* fetched before its revoke: the next owner reads it (offset not stored) */
    int skip = in->has_re && !key_matches(in, rkm);
    struct record_meta rm;
    size_t n_meta = skip ? 0 : record_meta_of(rkm, in->no_headers, &rm);
    if (n_meta > in->max_meta_keys) {
        tp_drops_add(drops, TP_DROP_INVALID_INPUT, "input",
                     "kafka topic %s partition %d offset %lld: %zu metadata entries (record "
                     "fields and headers), more than max_meta_keys (%u)",
                     topic, (int)rkm->partition, (long long)rkm->offset, n_meta, in->max_meta_keys);
        tp_drops_set_raw(drops, rkm->payload ? rkm->payload : "", rkm->len);
        skip = 1;
    }
    struct tp_msg *m = skip ? NULL : record_to_msg(rkm, topic, &rm, n_meta);
    if (!skip && !m)
        return -1;
    pthread_mutex_lock(&in->lock);
    struct kafka_part *p = part_get(in, topic, rkm->partition);
    struct kafka_token *t = p && !skip ? token_new(in) : NULL;
    if (!p || (!skip && !t)) {
        pthread_mutex_unlock(&in->lock);
        tp_msg_free(m);
        return -1;
    }
    if (skip) {
        /* Never received: done at once, but only in order behind in-flight ones. */
        if (p->inflight == 0)
            part_store(in, p, rkm->offset + 1);
        else
            p->skip_to = rkm->offset + 1;
        pthread_mutex_unlock(&in->lock);
        return 0;
    }
    t->part = p;
    t->gen = p->gen;
    t->offset = rkm->offset;
    p->inflight++;
    pthread_mutex_unlock(&in->lock);
    m->ack = t;
    if (tp_batch_push(batch, m)) {
        kafka_in_ack(in, t); /* cannot happen without memory; keep counts right */
        return -1;
    }
    return 1;
}

/* Records taken from librdkafka's queue per call. */
#define CONSUME_CHUNK 256

static int kafka_in_read(void *state, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                         struct tp_error *err)
{
    struct kafka_in *in = state;
    if (in->cfg->max_poll_records > 0 && (size_t)in->cfg->max_poll_records < max)
        max = (size_t)in->cfg->max_poll_records;
    rd_kafka_message_t *rkms[CONSUME_CHUNK];
    int rc = TP_OK;
    in->reading = batch;
    in->reading_from = batch->len;
    for (size_t got = 0; rc == TP_OK && (got = batch->len - in->reading_from) < max;) {
        if (atomic_load(&in->stop)) {
            rc = TP_EOF;
            break;
        }
        /* Block (in short slices, to notice stop) only until the first
         * record, then take what is queued without waiting (a call with a
         * timeout waits until its array is full); records dropped by
         * max_meta_keys go out at once. Rebalances are served inside. */
        int wait = !got && !drops->n;
        if (wait) { /* acked offsets of partitions still busy: stored before a wait */
            pthread_mutex_lock(&in->lock);
            flush_all(in);
            pthread_mutex_unlock(&in->lock);
        }
        size_t want = max - got < CONSUME_CHUNK ? max - got : CONSUME_CHUNK;
        in->revoked_in_call = 0;
        ssize_t n = rd_kafka_consume_batch_queue(in->queue, wait ? 100 : 0, rkms, wait ? 1 : want);
        if (n <= 0) {
            char why[256];
            if (n < 0)
                rc = tp_error_set(err, TP_IO, "reading the consumer queue: %s",
                                  rd_kafka_err2str(rd_kafka_last_error()));
            else if (rd_kafka_fatal_error(in->rk, why, sizeof(why)))
                rc = tp_error_set(err, TP_IO, "fatal: %s", why);
            else if (!wait)
                break;
            continue;
        }
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *rkm = rkms[i];
            if (rkm->err) {
                char key[64];
                snprintf(key, sizeof(key), "kafka-consume|%d", rkm->err);
                tp_log_limited(TP_LOG_WARN, key, "%s: %s", in->names.who,
                               rd_kafka_message_errstr(rkm));
            } else if (rc == TP_OK && take_record(in, rkm, batch, drops) < 0) {
                rc = TP_NOMEM; /* the rest of the array is only released */
            }
            rd_kafka_message_destroy(rkm);
        }
    }
    in->reading = NULL;
    return rc;
}

static void kafka_in_stop(void *state)
{
    struct kafka_in *in = state;
    atomic_store(&in->stop, 1);
}

static void kafka_in_close(void *state)
{
    struct kafka_in *in = state;
    if (!in)
        return;
    atomic_store(&in->closing, 1);
    if (in->rk) {
        /* Store every acked offset and commit it now, then leave the group. */
        pthread_mutex_lock(&in->lock);
        flush_all(in);
        pthread_mutex_unlock(&in->lock);
        rd_kafka_resp_err_t e = rd_kafka_commit(in->rk, NULL, 0);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            tp_log(TP_LOG_WARN, "%s: final commit: %s", in->names.who, rd_kafka_err2str(e));
        rd_kafka_consumer_close(in->rk);
    }
    if (in->queue)
        rd_kafka_queue_destroy(in->queue);
    /* The store lists cache partition references (offsets_store sets
     * _private): release them before rd_kafka_destroy, which waits for them. */
    for (size_t i = 0; i < in->n_parts; i++)
        rd_kafka_topic_partition_list_destroy(in->parts[i]->store);
    if (in->rk)
        rd_kafka_destroy(in->rk);
    for (size_t i = 0; i < in->n_parts; i++) {
        free(in->parts[i]->topic);
        free(in->parts[i]);
    }
    free(in->parts);
    while (in->slabs) {
        struct token_slab *s = in->slabs;
        in->slabs = s->next;
        free(s);
    }
    if (in->has_re)
        regfree(&in->key_re);
    pthread_mutex_destroy(&in->lock);
    pthread_cond_destroy(&in->drained);
    free(in);
}

const struct tp_input_plugin tp_input_kafka = {
    .name = "kafka",
    .options = in_options,
    .config_size = sizeof(struct tp__kafka_in_config),
    .open = kafka_in_open,
    .read = kafka_in_read,
    .ack = kafka_in_ack,
    .stop = kafka_in_stop,
    .close = kafka_in_close,
};

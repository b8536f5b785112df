/* Pipeline implementation. Threads: the caller's thread reads input batches
 * and numbers them; `threads` workers each own a processor-chain worker (one
 * JS VM per processor) and process whole batches; one writer thread submits
 * finished batches strictly in sequence order to the output, keeping up to
 * output.max_in_flight of them unconfirmed, and acks the input of each batch
 * once it and all before it are confirmed (plugin.h, the output contract).
 * The ring of batches bounds memory and gives backpressure.
 * Reload: a new processor chain is published as a generation; each batch is
 * tagged with the generation current when a worker takes it, so the switch
 * happens between batches, in sequence order (old chains are refcounted). */
#include "pipeline/pipeline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/plugin.h"
#include "core/route.h"
#include "core/stats.h"
#include "core/tp_assert.h"
#include "pipeline/chain.h"
#include "pipeline/pipeline_config.h"

/* One worker's share of a batch under key routing. Written by that worker
 * only and aligned to a cache line of its own, so the workers sharing a
 * batch never write to the same line (no false sharing per message). */
struct lane {
    struct tp_batch out; /* outputs of the messages routed to this worker */
    size_t *ends;        /* ends[j]: end in out of its j-th message's outputs */
    size_t n;            /* messages processed */
    size_t next, pos;    /* merge cursors: next entry of ends, next of out */
} __attribute__((aligned(64)));

/* One batch travelling from the reader through a worker and the output. */
struct slot {
    struct tp_batch in;  /* the input messages (passed to processors, dead letter) */
    struct tp_batch out; /* the processed messages, in input order */
    /* The input's ack tokens, taken off the messages when the batch is read
     * (so a message can be handed on, and freed, before its input is acked),
     * and how many input messages the batch had. */
    void **acks;
    size_t n_in, cap_acks;
    int done; /* processed by every worker */
    /* With more than one worker, each processes the messages routed to it
     * (route[i]) into its own lane; the last one to finish puts the outputs
     * in input order into out. */
    int remaining;      /* workers yet to process their share (atomic) */
    uint32_t *route;    /* worker of each input message */
    int routed;         /* route is filled in (not needed without processors) */
    struct lane *lanes; /* per worker */
    int confirmed;      /* the output completed `ob` (status, err) */
    int status;
    struct tp_error err;
    struct tp_out_batch ob; /* out, as handed to the output */
    struct tp_pipeline *p;
    int64_t read_ns; /* when the input handed the batch over (latency) */
    /* The generation the batch runs on, pinned (a reference) by the first
     * worker to take it, so that all workers sharing the batch use the same
     * one; released when the last worker is done with it. */
    struct chain_gen *gen;
    /* The generation has no processors: the input messages themselves are
     * the output (moved from in to out when the batch is first taken). */
    int passthrough;
};

/* A processor chain generation. refs: one for being current, one per worker
 * using it; freed at zero. */
struct chain_gen {
    struct tp_chain *chain;
    struct tp_config *cfg; /* owned (reloads); NULL for the start-up config */
    uint64_t id;
    int refs;
};

struct output_inst {
    struct tp_section section;
    const struct tp_output_plugin *plugin;
    void *state;
};

struct tp_pipeline {
    struct tp_root_config root;
    struct tp_section input_section;
    const struct tp_input_plugin *input;
    void *input_state;
    struct output_inst output, dead_letter;
    pthread_mutex_t dead_letter_lock;
    struct chain_gen *gen; /* current generation (lock) */
    int threads;
    struct tp_http_config http; /* parsed `http` section (http_on: present, enabled) */
    int http_on;
    const struct tp_config *cfg; /* the start-up config */
    struct tp_metrics *metrics;  /* owned */
    struct tp_pipeline_hooks hooks;
    int ready;
    size_t batch_size;

    /* ring of in-flight batches, indexed by seq % ring_size */
    pthread_mutex_t lock;
    /* One condition per waiting party, so that an event wakes only the
     * thread(s) it concerns (one shared condition woke every thread on
     * every event: ~24 futex calls per batch). The frequent ones (batch
     * read, processed, confirmed) are signalled just after the lock is
     * released, following the state change under it: a thread woken while
     * the lock is still held would at once block on it again (two more
     * futex calls and a context switch per wake-up). */
    pthread_cond_t work_cond;  /* workers: a batch read, input done, fatal */
    pthread_cond_t write_cond; /* writer: a batch processed or confirmed, input done, fatal */
    pthread_cond_t read_cond;  /* reader (main thread): ring space, a worker started, fatal */
    struct slot *ring;
    size_t ring_size;
    uint64_t next_read; /* seq of the next batch the reader will fill */
    uint64_t next_work; /* 1 + the highest seq a worker has started */
    struct tp_router router;
    uint64_t next_write; /* seq of the next batch the writer submits to the output */
    uint64_t next_ack;   /* seq of the oldest batch not yet confirmed and acked */
    size_t max_in_flight;
    int input_done; /* the reader will add no more batches */
    int fatal;      /* a worker or the writer failed */
    struct tp_error fatal_err;
    atomic_int stop; /* set by the signal thread, read by the reader */
};

static void gen_free(struct chain_gen *g)
{
    if (!g)
        return;
    tp_chain_free(g->chain);
    tp_config_free(g->cfg);
    free(g);
}

/* Drops a reference; frees the generation at zero. Called with p->lock held:
 * returns the generation to free (outside the lock) or NULL. */
static struct chain_gen *gen_unref_locked(struct chain_gen *g)
{
    TP_ASSERT(g->refs > 0);
    return --g->refs == 0 ? g : NULL;
}

/* Takes a reference (p->lock held) on a generation that is still alive. */
static void gen_ref_locked(struct chain_gen *g)
{
    TP_ASSERT(g->refs > 0);
    g->refs++;
}

/* The ring's counters, with p->lock held: batches are acked, submitted,
 * taken and read in this order, and no more than ring_size are in it. */
static void ring_check_locked(const struct tp_pipeline *p)
{
    TP_ASSERT(p->next_ack <= p->next_write && p->next_write <= p->next_work &&
              p->next_work <= p->next_read && p->next_read - p->next_ack <= p->ring_size);
    (void)p;
}

/* ---------- config ---------- */

static int open_output(const struct tp_node *node, const char *section,
                       const struct tp_output_plugin *extra, struct output_inst *o,
                       struct tp_error *err)
{
    int rc = tp__section_parse_with(node, section, "output", "stdout", extra, &o->section, err);
    if (rc)
        return rc;
    o->plugin = o->section.plugin;
    return o->plugin->open(o->section.config, &o->state, err);
}

static void close_output(struct output_inst *o)
{
    if (o->plugin && o->state)
        o->plugin->close(o->state);
    tp__section_free(&o->section);
    memset(o, 0, sizeof(*o));
}

static int open_input(struct tp_pipeline *p, const struct tp_input_plugin *extra,
                      struct tp_error *err)
{
    int rc = tp__section_parse_with(p->root.input, "input", "input", "stdin", extra,
                                    &p->input_section, err);
    if (rc)
        return rc;
    p->input = p->input_section.plugin;
    return p->input->open(p->input_section.config, &p->input_state, err);
}

int tp_pipeline_new(const struct tp_config *cfg, const struct tp_pipeline_opts *opts,
                    struct tp_pipeline **out, struct tp_error *err)
{
    struct tp_pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_cond, NULL);
    pthread_cond_init(&p->write_cond, NULL);
    pthread_cond_init(&p->read_cond, NULL);
    pthread_mutex_init(&p->dead_letter_lock, NULL);
    p->cfg = cfg;
    int rc = tp_options_parse(tp__pipeline_root_options, cfg->root, "", &p->root, err);
    if (rc)
        goto fail;
    if (opts && opts->input)
        p->root.input = opts->input;
    if (opts && opts->output)
        p->root.output = opts->output;
    if (opts && opts->threads > 0)
        p->root.pipeline.threads = opts->threads;
    if (tp__logger_apply(&p->root.logger, tp_log_get_level() == TP_LOG_INFO)) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto fail;
    }

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->threads =
        p->root.pipeline.threads > 0 ? (int)p->root.pipeline.threads : (int)(cpus > 0 ? cpus : 1);
    p->batch_size = (size_t)p->root.pipeline.batch_size;
    if (p->root.http && p->root.http->type != TP_NODE_NULL) {
        rc = tp_options_parse(tp__pipeline_http_options, p->root.http, "http", &p->http, err);
        if (rc)
            goto fail;
        p->http_on = p->http.enabled; /* http.enabled: false is as if http were absent */
    }
    int rules = opts ? opts->rule_metrics : 0;
    p->metrics = tp_metrics_new(rules > 0 || (rules == 0 && p->http_on));
    if (!p->metrics) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto fail;
    }
    p->gen = calloc(1, sizeof(*p->gen));
    if (!p->gen) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto fail;
    }
    p->gen->refs = 1;
    rc = tp_chain_new(p->root.pipeline.processors, "pipeline.processors", p->threads, p->metrics,
                      &p->gen->chain, err);
    if (rc)
        goto fail;
    rc = tp__pipeline_check_files(&p->root, err);
    if (rc)
        goto fail;
    rc = open_output(p->root.output, "output", opts ? opts->output_plugin : NULL, &p->output, err);
    if (rc)
        goto fail;
    if (p->root.dead_letter && p->root.dead_letter->type != TP_NODE_NULL) {
        rc = open_output(p->root.dead_letter, "dead_letter", NULL, &p->dead_letter, err);
        if (rc)
            goto fail;
    }
    rc = open_input(p, opts ? opts->input_plugin : NULL, err);
    if (rc)
        goto fail;
    p->max_in_flight = (size_t)p->output.section.max_in_flight;
    p->ring_size = (size_t)p->threads * 2 + 2 + p->max_in_flight;
    p->ring = calloc(p->ring_size, sizeof(*p->ring));
    if (!p->ring) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto fail;
    }
    rc = tp_router_init(&p->router, p->root.pipeline.key, (uint32_t)p->threads, err);
    if (rc)
        goto fail;
    for (size_t i = 0; i < p->ring_size; i++) {
        struct slot *sl = &p->ring[i];
        tp_batch_init(&sl->in);
        tp_batch_init(&sl->out);
        sl->p = p;
        if ((p->input->ack || p->input->ack_batch) &&
            !(sl->acks = calloc(p->batch_size, sizeof(*sl->acks)))) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            goto fail;
        }
        sl->cap_acks = sl->acks ? p->batch_size : 0;
        if (p->threads == 1)
            continue;
        sl->route = calloc(p->batch_size, sizeof(*sl->route));
        sl->lanes = aligned_alloc(64, (size_t)p->threads * sizeof(*sl->lanes));
        if (sl->lanes)
            memset(sl->lanes, 0, (size_t)p->threads * sizeof(*sl->lanes));
        for (int w = 0; sl->lanes && w < p->threads; w++)
            if (!(sl->lanes[w].ends = calloc(p->batch_size, sizeof(size_t))))
                break;
        if (!sl->route || !sl->lanes || !sl->lanes[p->threads - 1].ends) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            goto fail;
        }
    }
    *out = p;
    return TP_OK;
fail:
    tp_pipeline_free(p);
    return rc;
}

void tp_pipeline_free(struct tp_pipeline *p)
{
    if (!p)
        return;
    if (p->input && p->input_state)
        p->input->close(p->input_state);
    tp__section_free(&p->input_section);
    close_output(&p->output);
    close_output(&p->dead_letter);
    for (size_t i = 0; p->ring && i < p->ring_size; i++) { /* pins left by a failure */
        struct chain_gen *g = p->ring[i].gen;
        if (g && g != p->gen)
            gen_free(gen_unref_locked(g));
        p->ring[i].gen = NULL;
    }
    gen_free(p->gen);
    tp_options_free(tp__pipeline_http_options, &p->http);
    if (p->ring) {
        for (size_t i = 0; i < p->ring_size; i++) {
            struct slot *sl = &p->ring[i];
            tp_batch_free(&sl->in);
            tp_batch_free(&sl->out);
            for (int w = 0; sl->lanes && w < p->threads; w++) {
                tp_batch_free(&sl->lanes[w].out);
                free(sl->lanes[w].ends);
            }
            free(sl->lanes);
            free(sl->route);
            free(sl->acks);
            free(p->ring[i].ob.drops);
        }
        free(p->ring);
    }
    tp_router_free(&p->router);
    tp_options_free(tp__pipeline_root_options, &p->root);
    tp_metrics_free(p->metrics);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work_cond);
    pthread_cond_destroy(&p->write_cond);
    pthread_cond_destroy(&p->read_cond);
    pthread_mutex_destroy(&p->dead_letter_lock);
    free(p);
}

/* ---------- drops ---------- */

static void log_drop(const struct tp_msg *in, const char *proc, const struct tp_drop *d)
{
    struct tp_buf meta;
    tp_buf_init(&meta);
    tp_json_write_meta(&meta, in);
    char key[800], rule[64], where[320];
    snprintf(key, sizeof(key), "%d|%s|%s|%s", (int)d->reason, proc, d->stage, d->error);
    tp_metrics_rule_of_stage(d->stage, rule, sizeof(rule));
    snprintf(where, sizeof(where), "processor=%s stage=%s rule=%s", proc, d->stage, rule);
    enum tp_log_level level = d->reason == TP_DROP_INVALID_INPUT ? TP_LOG_ERROR : TP_LOG_WARN;
    if (in->input_line)
        tp_log_limited(level, key, "dropped message (%s) %s, input line %llu: %s; meta=%s",
                       tp_drop_reason_name(d->reason), where, (unsigned long long)in->input_line,
                       d->error, meta.data ? meta.data : "{}");
    else
        tp_log_limited(level, key, "dropped message (%s) %s: %s; meta=%s",
                       tp_drop_reason_name(d->reason), where, d->error,
                       meta.data ? meta.data : "{}");
    tp_buf_free(&meta);
}

static void set_fatal(struct tp_pipeline *p, const struct tp_error *err);

/* A dead-letter record is written like an output batch of one: the dead
 * letter output gets a few attempts (it retries on its own too), then the
 * failure is fatal: the input of the message stays unacknowledged. */
#define DEAD_LETTER_ATTEMPTS 3

static int dead_letter_write(struct tp_pipeline *p, const struct tp_msg *in,
                             const struct tp_drop *d)
{
    struct tp_error err = {0};
    struct tp_msg *m = tp_msg_clone(in);
    int rc = m ? TP_OK : TP_NOMEM;
    if (!rc)
        rc = tp_msg_meta_sets(m, "tagproc_drop_reason", tp_drop_reason_name(d->reason));
    if (!rc)
        rc = tp_msg_meta_sets(m, "tagproc_drop_stage", d->stage);
    if (!rc)
        rc = tp_msg_meta_sets(m, "tagproc_error", d->error);
    if (rc)
        tp_error_set(&err, rc, "out of memory");
    for (int attempt = 1; rc == TP_OK; attempt++) {
        pthread_mutex_lock(&p->dead_letter_lock);
        rc = tp_output_write_sync(p->dead_letter.plugin, p->dead_letter.state, &m, 1, NULL, NULL,
                                  &err);
        pthread_mutex_unlock(&p->dead_letter_lock);
        if (rc == TP_OK) {
            tp_metrics_dead_letter_sent(p->metrics, 1);
            break;
        }
        if (attempt >= DEAD_LETTER_ATTEMPTS || p->stop)
            break;
        tp_log(TP_LOG_WARN, "dead letter write failed (attempt %d of %d): %s; retrying", attempt,
               DEAD_LETTER_ATTEMPTS, err.msg);
        struct timespec ts = {0, 200000000L * attempt};
        nanosleep(&ts, NULL);
        rc = TP_OK;
    }
    tp_msg_free(m);
    if (rc) {
        struct tp_error fe;
        tp_error_set(&fe, rc, "dead letter: cannot write the record of a %s drop: %s",
                     tp_drop_reason_name(d->reason), err.msg);
        set_fatal(p, &fe);
    }
    return rc;
}

/* Counts, logs and dead-letters one drop of `in` by `proc` (a processor
 * label, "input" or the output's name). Non-zero (and the pipeline fatal)
 * when its dead-letter record could not be written. */
static int account_drop(struct tp_pipeline *p, const char *proc, const struct tp_msg *in,
                        const struct tp_drop *d)
{
    TP_STAT_ADD(tp_metrics_stats(p->metrics), dropped[d->reason], 1);
    tp_metrics_drop(p->metrics, d->reason, d->stage);
    if (d->reason == TP_DROP_FILTERED)
        return TP_OK;
    log_drop(in, proc, d);
    if (p->hooks.dropped)
        p->hooks.dropped(p->hooks.ud, in, proc, d);
    return p->dead_letter.plugin ? dead_letter_write(p, in, d) : TP_OK;
}

/* What a drop callback knows: the pipeline and, on a worker, its chain
 * worker (for the processor that dropped). */
struct drop_ctx {
    struct tp_pipeline *p;
    const struct tp_chain_worker *w;
};

static void on_drop(void *opaque, const struct tp_msg *in, const struct tp_drop *d)
{
    struct drop_ctx *dc = opaque;
    const char *proc = "input";
    if (dc->w && dc->w->proc_index < dc->w->chain->n)
        proc = dc->w->chain->procs[dc->w->proc_index].label;
    account_drop(dc->p, proc, in, d); /* a failure is fatal and set already */
}

/* Input-level drops (undecodable records) have no message: report them with
 * one whose payload is the raw record (its line number is in the error text).
 * A drop the input could not record, or out of memory for its message, is
 * fatal (BEHAVIOUR 4.2): the drop is never silently gone. */
static int report_input_drops(struct tp_pipeline *p, struct tp_drops *drops)
{
    struct drop_ctx dc = {p, NULL};
    int rc = drops->lost ? TP_NOMEM : TP_OK;
    for (size_t i = 0; rc == TP_OK && i < drops->n; i++) {
        const struct tp_drop *d = &drops->v[i];
        /* the record as text, when the input kept it */
        struct tp_msg *m = d->raw ? tp_msg_new_payload(d->raw, d->raw_len) : tp_msg_new();
        if (!m)
            rc = TP_NOMEM;
        if (rc == TP_OK) {
            if (d->raw)
                m->flags |= TP_MSG_PAYLOAD_NOTJSON;
            TP_STAT_ADD(tp_metrics_stats(p->metrics), received, 1);
            on_drop(&dc, m, d);
        }
        tp_msg_free(m);
    }
    tp_drops_reset(drops);
    return rc;
}

/* ---------- threads ---------- */

struct worker_arg {
    struct tp_pipeline *p;
    int index;
    pthread_t thread;
    int started; /* 1 ok, -1 failed */
    struct tp_error err;
};

/* Wakes every waiting thread (fatal, input done); p->lock held. */
static void wake_all_locked(struct tp_pipeline *p)
{
    pthread_cond_broadcast(&p->work_cond);
    pthread_cond_broadcast(&p->write_cond);
    pthread_cond_broadcast(&p->read_cond);
}

static void set_fatal(struct tp_pipeline *p, const struct tp_error *err)
{
    pthread_mutex_lock(&p->lock);
    if (!p->fatal) {
        p->fatal = 1;
        p->fatal_err = *err;
    }
    wake_all_locked(p);
    pthread_mutex_unlock(&p->lock);
}

/* Moves worker w from its generation to g (already referenced for us): the
 * new chain's worker state is created on this thread. On failure the worker
 * keeps the old chain and says so. */
static void worker_switch(struct tp_pipeline *p, struct tp_chain_worker *w, struct chain_gen **mine,
                          struct chain_gen *g, int index)
{
    struct tp_chain_worker nw;
    struct tp_error err = {0};
    struct chain_gen *drop = g;
    if (tp_chain_worker_init(&nw, g->chain, index, &err) == 0) {
        tp_chain_worker_free(w);
        *w = nw;
        drop = *mine;
        *mine = g;
        tp_log(TP_LOG_DEBUG, "worker %d: now running configuration generation %llu", index,
               (unsigned long long)g->id);
    } else { /* retried on the next batch: throttled (the reload itself probed it) */
        tp_log_limited(TP_LOG_ERROR, "worker-switch",
                       "worker %d: cannot start configuration generation %llu (%s); keeping the "
                       "old one",
                       index, (unsigned long long)g->id, err.msg);
    }
    pthread_mutex_lock(&p->lock);
    struct chain_gen *f = gen_unref_locked(drop);
    pthread_mutex_unlock(&p->lock);
    gen_free(f);
}

/* The first worker to take slot s (p->lock held), once s->gen is pinned:
 * without processors the input messages become the output as they are
 * (moved, not copied; their acks were taken off by the reader); with
 * processors and more than one worker, the batch is routed unless the
 * reader did it (it does not when there are no processors: a reload added
 * some since), with this worker's router. */
static void take_slot_locked(struct slot *s, struct tp_router *router)
{
    if (s->gen->chain->n == 0) {
        struct tp_batch in = s->in;
        s->in = s->out; /* empty: the out of the batch before, cleared */
        s->out = in;
        s->passthrough = 1;
        return;
    }
    for (size_t i = 0; s->route && !s->routed && i < s->in.len; i++)
        s->route[i] = tp_route(router, s->in.msgs[i], s->in.msgs[i]->seq);
    s->routed = 1;
}

/* Puts the lanes' outputs of slot s into s->out in input order (each
 * message's outputs stay together, fan-out children in place of their
 * parent). The messages move: the lanes end up empty. */
static int merge_outputs(struct slot *s, int threads)
{
    for (size_t i = 0; i < s->in.len; i++) {
        struct lane *l = &s->lanes[s->route[i]];
        for (size_t end = l->ends[l->next++]; l->pos < end; l->pos++) {
            struct tp_msg *m = l->out.msgs[l->pos];
            l->out.msgs[l->pos] = NULL;
            if (tp_batch_push(&s->out, m)) /* m freed */
                return TP_NOMEM;
        }
    }
    for (int w = 0; w < threads; w++)
        s->lanes[w].out.len = s->lanes[w].n = s->lanes[w].next = s->lanes[w].pos = 0;
    return TP_OK;
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    char name[16]; /* what top -H and /proc/PID/task/TID/comm show */
    snprintf(name, sizeof(name), "tp-rules-%d", wa->index);
    pthread_setname_np(pthread_self(), name);
    struct tp_pipeline *p = wa->p;
    struct tp_chain_worker w;
    struct tp_router router; /* for batches the reader did not route */
    pthread_mutex_lock(&p->lock);
    struct chain_gen *mine = p->gen;
    gen_ref_locked(mine);
    pthread_mutex_unlock(&p->lock);
    int rc = tp_router_init(&router, p->root.pipeline.key, (uint32_t)p->threads, &wa->err);
    if (rc == TP_OK)
        rc = tp_chain_worker_init(&w, mine->chain, wa->index, &wa->err);
    else
        memset(&w, 0, sizeof(w));
    pthread_mutex_lock(&p->lock);
    wa->started = rc ? -1 : 1;
    pthread_cond_signal(&p->read_cond);
    pthread_mutex_unlock(&p->lock);
    struct drop_ctx dc = {p, &w};
    if (rc)
        goto out;
    /* Every worker goes through every batch in sequence order and processes
     * the messages routed to it, so a key's messages keep their order. */
    for (uint64_t seq = 0;; seq++) {
        pthread_mutex_lock(&p->lock);
        while (!p->fatal && seq == p->next_read && !p->input_done)
            pthread_cond_wait(&p->work_cond, &p->lock);
        if (p->fatal || (seq == p->next_read && p->input_done)) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        if (seq + 1 > p->next_work)
            p->next_work = seq + 1;
        ring_check_locked(p);
        struct slot *s = &p->ring[seq % p->ring_size];
        /* The generation is fixed when the batch is first taken, in seq
         * order, and is the same for every worker sharing the batch. */
        if (!s->gen) {
            s->gen = p->gen;
            gen_ref_locked(s->gen);
            take_slot_locked(s, &router);
        }
        struct chain_gen *g = s->gen;
        if (g != mine && g->id > mine->id)
            gen_ref_locked(g);
        else
            g = NULL;
        pthread_mutex_unlock(&p->lock);
        if (g)
            worker_switch(p, &w, &mine, g, wa->index);

        if (s->passthrough) {
            /* moved to s->out when taken: nothing to do */
        } else if (s->lanes) {
            struct lane *l = &s->lanes[wa->index];
            for (size_t i = 0; rc == TP_OK && i < s->in.len; i++) {
                if (s->route[i] != (uint32_t)wa->index)
                    continue;
                rc = tp_chain_process(&w, s->in.msgs[i], &l->out, on_drop, &dc);
                l->ends[l->n++] = l->out.len;
            }
        } else {
            for (size_t i = 0; rc == TP_OK && i < s->in.len; i++)
                rc = tp_chain_process(&w, s->in.msgs[i], &s->out, on_drop, &dc);
        }
        int last = rc == TP_OK && __atomic_sub_fetch(&s->remaining, 1, __ATOMIC_ACQ_REL) == 0;
        if (last && s->lanes && !s->passthrough)
            rc = merge_outputs(s, p->threads);
        if (rc) {
            struct tp_error e;
            tp_error_set(&e, rc, "processing failed: %s", tp_strerror(rc));
            set_fatal(p, &e);
            break;
        }
        if (last) {
            pthread_mutex_lock(&p->lock);
            struct chain_gen *unpinned = gen_unref_locked(s->gen);
            s->gen = NULL;
            s->done = 1;
            pthread_mutex_unlock(&p->lock);
            pthread_cond_signal(&p->write_cond);
            gen_free(unpinned);
        }
    }
    tp_chain_worker_free(&w);
out:
    tp_router_free(&router);
    pthread_mutex_lock(&p->lock);
    struct chain_gen *f = gen_unref_locked(mine);
    pthread_mutex_unlock(&p->lock);
    gen_free(f);
    return NULL;
}

/* The output's completion of a slot's batch (any thread; plugin.h). */
static void output_done(struct tp_out_batch *b, int status, const struct tp_error *err)
{
    struct slot *s = b->opaque;
    struct tp_pipeline *p = s->p;
    pthread_mutex_lock(&p->lock);
    s->status = status;
    if (status && err)
        s->err = *err;
    else if (status)
        tp_error_set(&s->err, status, "output failed: %s", tp_strerror(status));
    s->confirmed = 1;
    pthread_mutex_unlock(&p->lock);
    pthread_cond_signal(&p->write_cond);
}

/* Hands a processed batch to the output (a batch with nothing to write is
 * confirmed at once). Writer thread, without the lock. */
static void submit_slot(struct tp_pipeline *p, struct slot *s, uint64_t seq)
{
    struct tp_out_batch *b = &s->ob;
    struct tp_out_drop *drops = b->drops; /* reused storage */
    size_t cap = b->cap_drops;
    memset(b, 0, sizeof(*b));
    b->drops = drops;
    b->cap_drops = cap;
    b->msgs = s->out.msgs;
    b->n = s->out.len;
    b->seq = seq;
    b->done = output_done;
    b->opaque = s;
    if (!b->n) {
        tp_out_batch_complete(b, TP_OK, NULL);
        return;
    }
    p->output.plugin->submit(p->output.state, b); /* a failure completed b already */
}

/* Frees the messages the output dropped and moves the delivered ones to
 * the front of out, in order; returns how many were delivered. */
static size_t remove_output_drops(struct tp_batch *out, const struct tp_out_batch *b)
{
    if (!b->n_drops)
        return out->len;
    for (size_t i = 0; i < b->n_drops; i++)
        if (b->drops[i].index < out->len) {
            tp_msg_free(out->msgs[b->drops[i].index]);
            out->msgs[b->drops[i].index] = NULL;
        }
    size_t n = 0;
    for (size_t i = 0; i < out->len; i++)
        if (out->msgs[i])
            out->msgs[n++] = out->msgs[i];
    out->len = n;
    return n;
}

/* The oldest batch in flight is confirmed: accounts the output's drops,
 * then acks the batch's input. Writer thread, without the lock. Non-zero
 * (and the pipeline fatal) when the output failed or a dead letter did. */
static int finish_slot(struct tp_pipeline *p, struct slot *s)
{
    if (s->status) {
        set_fatal(p, &s->err);
        return s->status;
    }
    const struct tp_out_batch *b = &s->ob;
    uint64_t dropped = 0;
    for (size_t i = 0; i < b->n_drops; i++) {
        struct tp_drop d = {.reason = b->drops[i].reason, .stage = "output"};
        snprintf(d.error, sizeof(d.error), "%s", b->drops[i].error);
        if (b->drops[i].index >= s->out.len)
            continue;
        dropped++;
        char label[64];
        snprintf(label, sizeof(label), "output.%s", p->output.section.name);
        int rc = account_drop(p, label, s->out.msgs[b->drops[i].index], &d);
        if (rc)
            return rc;
    }
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++)
        if (b->unrecorded[r]) {
            TP_STAT_ADD(tp_metrics_stats(p->metrics), dropped[r], b->unrecorded[r]);
            dropped += b->unrecorded[r];
            tp_log(TP_LOG_ERROR,
                   "output %s dropped %llu message(s) (%s); out of memory for "
                   "their details",
                   p->output.section.name, (unsigned long long)b->unrecorded[r],
                   tp_drop_reason_name((enum tp_drop_reason)r));
        }
    TP_STAT_ADD(tp_metrics_stats(p->metrics), processed, s->out.len - dropped);
    size_t delivered = remove_output_drops(&s->out, b);
    if (p->hooks.written)
        p->hooks.written(p->hooks.ud, b->seq, s->n_in, s->out.msgs, delivered);
    if (delivered)
        tp_metrics_latency(p->metrics, (uint64_t)(tp_mono_ns() - s->read_ns), delivered);
    if (p->input->ack_batch)
        p->input->ack_batch(p->input_state, s->acks, s->n_in);
    else if (p->input->ack)
        for (size_t i = 0; i < s->n_in; i++)
            if (s->acks[i])
                p->input->ack(p->input_state, s->acks[i]);
    if (p->input->recycle) {
        p->input->recycle(p->input_state, &s->out);
        p->input->recycle(p->input_state, &s->in);
    }
    tp_batch_clear(&s->in);
    tp_batch_clear(&s->out);
    return TP_OK;
}

/* Submits processed batches in sequence order while fewer than
 * max_in_flight are unconfirmed, and finishes confirmed ones in the same
 * order: nothing is acked past a batch that is not confirmed, and nothing at
 * all after a failure. Ends when everything read is acked, or on fatal. */
static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "tp-writer");
    struct tp_pipeline *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->fatal) {
        struct slot *head = &p->ring[p->next_ack % p->ring_size];
        struct slot *next = &p->ring[p->next_write % p->ring_size];
        if (p->next_write < p->next_read && next->done &&
            p->next_write - p->next_ack < p->max_in_flight) {
            uint64_t seq = p->next_write++;
            ring_check_locked(p);
            pthread_mutex_unlock(&p->lock);
            submit_slot(p, next, seq);
            pthread_mutex_lock(&p->lock);
        } else if (p->next_ack < p->next_write && head->confirmed) {
            pthread_mutex_unlock(&p->lock);
            int rc = finish_slot(p, head);
            pthread_mutex_lock(&p->lock);
            if (rc)
                break;
            head->done = 0;
            head->confirmed = 0;
            head->passthrough = 0;
            p->next_ack++;
            ring_check_locked(p);
            pthread_cond_signal(&p->read_cond);
        } else if (p->input_done && p->next_ack == p->next_read) {
            break;
        } else {
            pthread_cond_wait(&p->write_cond, &p->lock);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Takes the input's ack tokens off the messages just read into s. */
static int take_acks(struct tp_pipeline *p, struct slot *s)
{
    s->n_in = s->in.len;
    if (!p->input->ack && !p->input->ack_batch)
        return TP_OK;
    if (s->in.len > s->cap_acks) { /* an input handed over more than asked */
        void **a = realloc(s->acks, s->in.len * sizeof(*a));
        if (!a) {
            s->n_in = 0; /* none acked: a fatal failure follows */
            return TP_NOMEM;
        }
        s->acks = a;
        s->cap_acks = s->in.len;
    }
    for (size_t i = 0; i < s->in.len; i++) {
        s->acks[i] = s->in.msgs[i]->ack;
        s->in.msgs[i]->ack = NULL;
    }
    return TP_OK;
}

/* Reads batches into free ring slots until the input ends, stop or fatal.
 * An input failure is returned with err saying which input failed. */
static int read_loop(struct tp_pipeline *p, struct tp_error *err)
{
    struct tp_drops drops;
    tp_drops_init(&drops);
    uint64_t msg_seq = 0;
    int rc = TP_OK;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->fatal && p->next_read - p->next_ack >= p->ring_size)
            pthread_cond_wait(&p->read_cond, &p->lock);
        int fatal = p->fatal;
        /* without processors now, the batch is most likely passed through
         * unrouted (a worker routes it when a reload added some meanwhile) */
        int route = p->threads > 1 && p->gen->chain->n > 0;
        pthread_mutex_unlock(&p->lock);
        if (fatal || atomic_load(&p->stop))
            break;
        struct slot *s = &p->ring[p->next_read % p->ring_size];
        struct tp_error rerr = {0};
        rc = p->input->read(p->input_state, &s->in, p->batch_size, &drops, &rerr);
        s->read_ns = tp_mono_ns();
        if (report_input_drops(p, &drops) != TP_OK) {
            struct tp_error e;
            tp_error_set(&e, TP_NOMEM, "processing failed: %s", tp_strerror(TP_NOMEM));
            set_fatal(p, &e);
        }
        if (take_acks(p, s) != TP_OK) {
            struct tp_error e;
            tp_error_set(&e, TP_NOMEM, "processing failed: %s", tp_strerror(TP_NOMEM));
            set_fatal(p, &e);
        }
        for (size_t i = 0; i < s->in.len; i++) {
            if (route)
                s->route[i] = tp_route(&p->router, s->in.msgs[i], msg_seq);
            s->in.msgs[i]->seq = msg_seq++;
        }
        s->routed = route;
        s->remaining = p->threads;
        TP_STAT_ADD(tp_metrics_stats(p->metrics), received, s->in.len);
        if (s->in.len) {
            pthread_mutex_lock(&p->lock);
            p->next_read++;
            ring_check_locked(p);
            pthread_mutex_unlock(&p->lock);
            pthread_cond_broadcast(&p->work_cond); /* every worker goes through every batch */
        }
        if (rc == TP_EOF) {
            rc = TP_OK;
            break;
        }
        if (rc != TP_OK && rc != TP_AGAIN) {
            tp_error_set(err, rc, "input.%s: read failed: %s", p->input->name,
                         rerr.msg[0] ? rerr.msg : tp_strerror(rc));
            break;
        }
        rc = TP_OK;
    }
    tp_drops_free(&drops);
    pthread_mutex_lock(&p->lock);
    p->input_done = 1;
    wake_all_locked(p);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* ---------- for the layers above ---------- */

void tp_pipeline_set_hooks(struct tp_pipeline *p, const struct tp_pipeline_hooks *h)
{
    if (h)
        p->hooks = *h;
    else
        memset(&p->hooks, 0, sizeof(p->hooks));
}

void tp_pipeline_status(struct tp_pipeline *p, struct tp_pipeline_status *st)
{
    st->input = p->input ? p->input->name : NULL;
    st->output = p->output.plugin ? p->output.plugin->name : NULL;
    st->threads = p->threads;
    pthread_mutex_lock(&p->lock);
    st->queue_waiting = p->next_read - p->next_work;
    st->queue_working = p->next_work - p->next_ack;
    st->queue_in_flight = p->next_write - p->next_ack;
    st->queue_capacity = p->ring_size;
    st->generation = p->gen ? p->gen->id : 0;
    pthread_mutex_unlock(&p->lock);
}

void tp_pipeline_with_config(struct tp_pipeline *p,
                             void (*fn)(void *ud, const struct tp_node *root), void *ud)
{
    pthread_mutex_lock(&p->lock);
    fn(ud, p->gen && p->gen->cfg ? p->gen->cfg->root : p->cfg->root);
    pthread_mutex_unlock(&p->lock);
}

int tp_pipeline_ready(struct tp_pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    int ok = p->ready && !p->fatal && !p->input_done;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

int tp_pipeline_healthy(struct tp_pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    int ok = !p->fatal;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

struct tp_metrics *tp_pipeline_metrics(struct tp_pipeline *p)
{
    return p->metrics;
}

const struct tp_http_config *tp_pipeline_http(const struct tp_pipeline *p)
{
    return p->http_on && p->http.address ? &p->http : NULL;
}

const struct tp_ui_config *tp_pipeline_ui(const struct tp_pipeline *p)
{
    return &p->root.ui;
}

const char *tp_pipeline_dead_letter_name(const struct tp_pipeline *p)
{
    return p->dead_letter.plugin ? p->dead_letter.plugin->name : NULL;
}

int64_t tp_pipeline_stats_interval(const struct tp_pipeline *p)
{
    return p->root.logger.stats_interval;
}

/* ---------- reload ---------- */

int tp_pipeline_reload(struct tp_pipeline *p, struct tp_config *cfg, struct tp_error *err)
{
    struct tp_root_config root;
    memset(&root, 0, sizeof(root));
    struct chain_gen *g = calloc(1, sizeof(*g));
    int rc = g ? TP_OK : tp_error_set(err, TP_NOMEM, "out of memory");
    if (rc == TP_OK)
        rc = tp_options_parse(tp__pipeline_root_options, cfg->root, "", &root, err);
    if (rc == TP_OK)
        rc = tp_chain_new(root.pipeline.processors, "pipeline.processors", p->threads, p->metrics,
                          &g->chain, err);
    if (rc == TP_OK) { /* what a worker will do on switching: if it fails here, reject */
        struct tp_chain_worker probe;
        struct tp_error perr = {0};
        if (tp_chain_worker_init(&probe, g->chain, 0, &perr) == TP_OK)
            tp_chain_worker_free(&probe);
        else
            rc = tp_error_set(err, TP_CONFIG, "cannot start the new processors: %s", perr.msg);
    }
    if (rc != TP_OK) {
        tp_options_free(tp__pipeline_root_options, &root);
        if (g && g->chain)
            tp_chain_free(g->chain);
        free(g);
        tp_config_free(cfg);
        tp_metrics_reload(p->metrics, 0);
        return rc;
    }
    if (root.pipeline.threads != p->root.pipeline.threads ||
        root.pipeline.batch_size != p->root.pipeline.batch_size)
        tp_log(TP_LOG_WARN, "reload: pipeline.threads and pipeline.batch_size change only on "
                            "restart; input, output, dead_letter and http too");
    if (root.logger.level) {
        int level = tp_log_level_parse(root.logger.level);
        if (level >= 0 && level != (int)tp_log_get_level())
            tp_log_set_level((enum tp_log_level)level);
    }
    tp_options_free(tp__pipeline_root_options, &root);
    g->cfg = cfg;
    g->refs = 1;
    pthread_mutex_lock(&p->lock);
    struct chain_gen *old = p->gen;
    g->id = old->id + 1;
    p->gen = g;
    struct chain_gen *f = gen_unref_locked(old);
    pthread_mutex_unlock(&p->lock);
    gen_free(f);
    tp_metrics_reload(p->metrics, 1);
    tp_log(TP_LOG_INFO, "reload: configuration generation %llu from %s published",
           (unsigned long long)g->id, cfg->file ? cfg->file : "?");
    return TP_OK;
}

int tp_pipeline_run(struct tp_pipeline *p, struct tp_error *err)
{
    struct worker_arg *workers = calloc((size_t)p->threads, sizeof(*workers));
    if (!workers)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    int started = 0, rc = TP_OK;
    for (; started < p->threads; started++) {
        workers[started].p = p;
        workers[started].index = started;
        if (pthread_create(&workers[started].thread, NULL, worker_main, &workers[started])) {
            rc = tp_error_set(err, TP_NOMEM, "cannot start worker thread");
            break;
        }
    }
    /* Wait until every worker has its VMs (or failed) before reading. */
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < started; i++) {
        while (workers[i].started == 0)
            pthread_cond_wait(&p->read_cond, &p->lock);
        if (workers[i].started < 0 && rc == TP_OK) {
            *err = workers[i].err;
            rc = TP_CONFIG;
        }
    }
    if (rc) {
        p->fatal = 1;
        wake_all_locked(p);
    }
    pthread_mutex_unlock(&p->lock);
    int started_hook = rc == TP_OK && p->hooks.started;
    if (started_hook && (rc = p->hooks.started(p->hooks.ud, err)) != TP_OK) {
        pthread_mutex_lock(&p->lock);
        p->fatal = 1;
        wake_all_locked(p);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&p->lock);
    p->ready = rc == TP_OK;
    pthread_mutex_unlock(&p->lock);
    pthread_t writer;
    int writer_started = 0;
    if (rc == TP_OK) {
        if (pthread_create(&writer, NULL, writer_main, p) == 0)
            writer_started = 1;
        else
            rc = tp_error_set(err, TP_NOMEM, "cannot start writer thread");
    }
    if (rc == TP_OK)
        rc = read_loop(p, err);
    else {
        pthread_mutex_lock(&p->lock);
        p->input_done = 1;
        wake_all_locked(p);
        pthread_mutex_unlock(&p->lock);
    }
    for (int i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    if (writer_started)
        pthread_join(writer, NULL);
    free(workers);

    if (p->fatal && rc == TP_OK) {
        *err = p->fatal_err;
        rc = TP_IO;
    }
    if (started_hook && p->hooks.finished)
        p->hooks.finished(p->hooks.ud);
    return rc;
}

void tp_pipeline_stop(struct tp_pipeline *p)
{
    p->stop = 1;
    if (p->input && p->input->stop && p->input_state)
        p->input->stop(p->input_state);
    /* Outputs give up waiting only for an unreachable destination; what the
     * input had handed over stays unacknowledged and is delivered again. */
    if (p->output.plugin && p->output.plugin->stop && p->output.state)
        p->output.plugin->stop(p->output.state);
    if (p->dead_letter.plugin && p->dead_letter.plugin->stop && p->dead_letter.state)
        p->dead_letter.plugin->stop(p->dead_letter.state);
}

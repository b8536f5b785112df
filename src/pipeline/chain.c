/* Processor chain implementation (see chain.h). */
#include "pipeline/chain.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"

/* A plugin entry is a map with exactly one key: the plugin name. */
static int plugin_entry(const struct tp_node *item, const char *path, const char *kind,
                        const char **name, const struct tp_node **body, struct tp_error *err)
{
    if (!item || item->type != TP_NODE_MAP || item->n != 1)
        return tp_error_set_at(err, TP_CONFIG, item ? item->file : NULL, item ? item->line : 0,
                               item ? item->col : 0,
                               "%s: expected a map with exactly one %s (%s), got %s%s", path, kind,
                               tp_plugin_names(kind), item ? tp_node_type_name(item) : "null",
                               item && item->type == TP_NODE_MAP ? " with other than one key" : "");
    *name = item->keys[0];
    *body = item->items[0];
    return TP_OK;
}

int tp_chain_new(const struct tp_node *processors, const char *path, int threads,
                 struct tp_metrics *metrics, struct tp_chain **out, struct tp_error *err)
{
    struct tp_chain *c = calloc(1, sizeof(*c));
    if (!c)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    c->threads = threads;
    if (processors && processors->type != TP_NODE_NULL) {
        if (processors->type != TP_NODE_SEQ) {
            tp_chain_free(c);
            return tp_error_set_at(err, TP_CONFIG, processors->file, processors->line,
                                   processors->col, "%s: expected list, got %s", path,
                                   tp_node_type_name(processors));
        }
        c->procs = calloc(processors->n ? processors->n : 1, sizeof(*c->procs));
        if (!c->procs) {
            tp_chain_free(c);
            return tp_error_set(err, TP_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; processors && processors->type == TP_NODE_SEQ && i < processors->n; i++) {
        const struct tp_node *item = processors->items[i], *body = NULL;
        const char *name = NULL;
        char ipath[96];
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        int rc = plugin_entry(item, ipath, "processor", &name, &body, err);
        if (rc)
            goto fail;
        const struct tp_processor_plugin *pl = tp_processor_find(name);
        if (!pl) {
            rc = tp_error_set_at(err, TP_CONFIG, item->key_nodes[0]->file, item->key_nodes[0]->line,
                                 item->key_nodes[0]->col,
                                 "%s.%s: unknown processor; valid processors: %s", ipath, name,
                                 tp_plugin_names("processor"));
            goto fail;
        }
        struct tp_chain_proc *p = &c->procs[c->n];
        snprintf(p->label, sizeof(p->label), "%s.%s", ipath, name);
        p->plugin = pl;
        p->config = calloc(1, pl->config_size ? pl->config_size : 1);
        if (!p->config) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            goto fail;
        }
        c->n++;
        rc = tp_options_parse(pl->options, body, p->label, p->config, err);
        if (rc)
            goto fail;
        struct tp_proc_info info = {
            .index = (int)i, .label = p->label, .threads = threads, .metrics = metrics};
        rc = pl->create(p->config, &info, &p->state, err);
        if (rc)
            goto fail;
        continue;
    fail:
        tp_chain_free(c);
        return rc ? rc : TP_CONFIG;
    }
    *out = c;
    return TP_OK;
}

void tp_chain_free(struct tp_chain *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        struct tp_chain_proc *p = &c->procs[i];
        if (p->state)
            p->plugin->destroy(p->state);
        tp_options_free(p->plugin->options, p->config);
        free(p->config);
    }
    free(c->procs);
    free(c);
}

int tp_chain_worker_init(struct tp_chain_worker *w, const struct tp_chain *c, int worker_index,
                         struct tp_error *err)
{
    memset(w, 0, sizeof(*w));
    w->chain = c;
    tp_batch_init(&w->cur);
    tp_batch_init(&w->next);
    tp_drops_init(&w->drops);
    w->states = calloc(c->n ? c->n : 1, sizeof(*w->states));
    if (!w->states)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        int rc =
            c->procs[i].plugin->worker_new(c->procs[i].state, worker_index, &w->states[i], err);
        if (rc) {
            tp_chain_worker_free(w);
            return rc;
        }
    }
    return TP_OK;
}

void tp_chain_worker_free(struct tp_chain_worker *w)
{
    if (w->states) {
        for (size_t i = 0; i < w->chain->n; i++)
            if (w->states[i])
                w->chain->procs[i].plugin->worker_free(w->states[i]);
        free(w->states);
        w->states = NULL;
    }
    tp_batch_free(&w->cur);
    tp_batch_free(&w->next);
    tp_drops_free(&w->drops);
}

/* Notes which processor made the first non-filtered drop of the input, among
 * the drops from index `from` on (the ones processor `proc` just added). */
static void note_dropper(struct tp_chain_worker *w, size_t proc, size_t from, size_t *first)
{
    for (size_t i = from; i < w->drops.n && *first == SIZE_MAX; i++)
        if (w->drops.v[i].reason != TP_DROP_FILTERED) {
            *first = i;
            w->proc_index = proc;
        }
}

/* Reports what the input lost as one drop at most, however many of its
 * fan-out children were lost: the first non-filtered drop, its error text
 * naming how many messages of the input were lost and why; or, when every
 * drop was `filtered`, one `filtered` drop. So one input is counted, logged
 * and dead-lettered once. */
static void report_drops(struct tp_chain_worker *w, const struct tp_msg *in, size_t first,
                         tp_drop_fn on_drop, void *opaque)
{
    if (w->drops.n == 0)
        return;
    if (first == SIZE_MAX) {
        w->proc_index = 0;
        on_drop(opaque, in, &w->drops.v[0]);
        tp_drops_reset(&w->drops);
        return;
    }
    size_t per_reason[TP_DROP_REASON_COUNT] = {0}, lost = 0;
    for (size_t i = 0; i < w->drops.n; i++)
        if (w->drops.v[i].reason != TP_DROP_FILTERED) {
            per_reason[w->drops.v[i].reason]++;
            lost++;
        }
    struct tp_drop *d = &w->drops.v[first];
    if (lost > 1) {
        char why[160];
        size_t n = (size_t)snprintf(why, sizeof(why), " [%zu messages of this input lost:", lost);
        for (int r = 0; r < TP_DROP_REASON_COUNT && n < sizeof(why); r++)
            if (per_reason[r])
                n += (size_t)snprintf(why + n, sizeof(why) - n, " %zu %s", per_reason[r],
                                      tp_drop_reason_name((enum tp_drop_reason)r));
        size_t len = strlen(d->error), room = sizeof(d->error) - 1;
        size_t wl = strlen(why) + 1; /* with the closing bracket */
        if (len + wl > room)         /* keep the count, shorten the error */
            len = room > wl ? room - wl : 0;
        snprintf(d->error + len, sizeof(d->error) - len, "%s]", why);
    }
    on_drop(opaque, in, d);
    tp_drops_reset(&w->drops);
}

int tp_chain_process(struct tp_chain_worker *w, const struct tp_msg *in, struct tp_batch *out,
                     tp_drop_fn on_drop, void *opaque)
{
    const struct tp_chain *c = w->chain;
    size_t first = out->len;
    if (c->n == 0) {
        struct tp_msg *m = tp_msg_clone(in);
        return m ? tp_batch_push(out, m) : TP_NOMEM;
    }
    tp_drops_reset(&w->drops);
    size_t first_drop = SIZE_MAX; /* index of the first non-filtered drop */
    /* Stage i reads from `src` (the input itself for i == 0) and writes to
     * `dst`; the last stage writes straight into out. */
    struct tp_batch *dst = c->n == 1 ? out : &w->next;
    int rc = c->procs[0].plugin->process(w->states[0], in, dst, &w->drops);
    note_dropper(w, 0, 0, &first_drop);
    for (size_t i = 1; rc == TP_OK && i < c->n; i++) {
        struct tp_batch tmp = w->cur;
        w->cur = w->next; /* what stage i-1 produced */
        w->next = tmp;
        tp_batch_clear(&w->next);
        dst = i + 1 == c->n ? out : &w->next;
        for (size_t j = 0; rc == TP_OK && j < w->cur.len; j++) {
            size_t from = w->drops.n;
            rc = c->procs[i].plugin->process(w->states[i], w->cur.msgs[j], dst, &w->drops);
            note_dropper(w, i, from, &first_drop);
        }
        tp_batch_clear(&w->cur);
    }
    if (rc == TP_OK && w->drops.lost) /* a drop not recorded: never report fewer */
        rc = TP_NOMEM;
    if (rc == TP_OK) /* a fatal status is no drop: the input is not done with */
        report_drops(w, in, first_drop, on_drop, opaque);
    else
        tp_drops_reset(&w->drops);
    for (size_t j = first; j < out->len; j++) {
        out->msgs[j]->seq = in->seq;
        out->msgs[j]->input_line = in->input_line;
    }
    return rc;
}

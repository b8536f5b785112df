/* The tag_processor (SPEC 3): defaults, conditions and advancedProcessing run
 * on the worker's JS VM (src/js/engine), then the Unified Namespace output is
 * built from the final metadata and payload (uns.c). Config keys and stage
 * semantics are those of the benthos-umh tag_processor. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/plugin.h"
#include "js/engine.h"
#include "processors/uns.h"

struct tag_condition {
    struct tp_js_snippet cond;
    struct tp_js_snippet then;
};

struct tag_config {
    struct tp_js_snippet defaults;
    struct tp_list conditions; /* of struct tag_condition */
    struct tp_js_snippet advanced;
    struct tp_js_limits lim;
};

static const struct tp_option condition_options[] = {
    TP_OPTION(struct tag_condition, cond, "if", TP_OPT_JS, NULL,
              "JavaScript expression; when truthy, `then` runs", .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct tag_condition, then, "then", TP_OPT_JS, NULL,
              "JavaScript function body run on matching messages; returns msg, an array or null",
              .flags = TP_OPT_REQUIRED),
    {0},
};

static const struct tp_option tag_options[] = {
    TP_OPTION(struct tag_config, defaults, "defaults", TP_OPT_JS, NULL,
              "JavaScript function body run first on every message"),
    TP_OPTION(struct tag_config, conditions, "conditions", TP_OPT_LIST, NULL,
              "list of {if, then}; every matching condition applies, in order",
              .sub = condition_options, .elem_size = sizeof(struct tag_condition)),
    TP_OPTION(struct tag_config, advanced, "advancedProcessing", TP_OPT_JS, NULL,
              "JavaScript function body run last on every message"),
    TP_JS_LIMIT_OPTIONS(struct tag_config, lim),
    {0},
};

static int tag_create(const void *config, const struct tp_proc_info *info, void **proc,
                      struct tp_error *err)
{
    const struct tag_config *cfg = config;
    const char *label = info && info->label ? info->label : "tag_processor";
    struct tp_js_script *s;
    int rc = tp_js_script_new(label, &cfg->lim, &s, err); /* limits: checked by the table */
    if (rc != 0)
        return rc;
    tp_js_script_set_metrics(s, info ? info->metrics : NULL);
    rc = tp_js_script_add_body(s, &cfg->defaults, "defaults", err);
    const struct tag_condition *conds = cfg->conditions.items;
    for (size_t i = 0; rc == 0 && i < cfg->conditions.n; i++)
        rc = tp_js_script_add_condition(s, &conds[i].cond, &conds[i].then, (int)i, err);
    if (rc == 0)
        rc = tp_js_script_add_body(s, &cfg->advanced, "advancedProcessing", err);
    if (rc != 0) {
        tp_js_script_free(s);
        return rc;
    }
    *proc = s;
    return 0;
}

/* A worker: the JS worker and what the output construction remembers. */
struct tag_worker {
    struct tp_js_worker *js;
    struct tp_uns_memo uns;
};

static int tag_worker_new(void *script, int worker_index, void **worker, struct tp_error *err)
{
    struct tag_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    int rc = tp_js_plugin_worker_new(script, worker_index, (void **)&w->js, err);
    if (rc != 0) {
        free(w);
        return rc;
    }
    *worker = w;
    return 0;
}

static void tag_worker_free(void *worker)
{
    struct tag_worker *w = worker;
    if (!w)
        return;
    tp_js_plugin_worker_free(w->js);
    free(w);
}

struct emit_ctx {
    struct tp_batch *out;
    struct tp_uns_memo *uns;
};

/* Output construction for one surviving message (SPEC 3.5). */
static int emit_uns(void *ud, struct tp_msg *m, const struct tp_value *payload,
                    const struct tp_orig_number *orig, struct tp_drops *drops)
{
    struct emit_ctx *ec = ud;
    char why[256] = "";
    int rc = tp_uns_build(m, payload, orig, ec->uns, why, sizeof(why));
    if (rc == TP_UNS_NOMEM) {
        tp_msg_free(m);
        return TP_NOMEM;
    }
    if (rc != TP_UNS_OK) {
        tp_drops_add(drops, (enum tp_drop_reason)rc, "output", "%s", why);
        tp_msg_free(m);
        return 0;
    }
    return tp_batch_push(ec->out, m) != 0 ? TP_NOMEM : 0; /* the batch frees m */
}

static int tag_process(void *worker, const struct tp_msg *in, struct tp_batch *out,
                       struct tp_drops *drops)
{
    struct tag_worker *w = worker;
    struct emit_ctx ec = {out, &w->uns};
    return tp_js_worker_run(w->js, in, TP_JS_OUT_VALUE, emit_uns, &ec, drops);
}

const struct tp_processor_plugin tp_processor_tag_processor = {
    .name = "tag_processor",
    .options = tag_options,
    .config_size = sizeof(struct tag_config),
    .create = tag_create,
    .worker_new = tag_worker_new,
    .process = tag_process,
    .worker_free = tag_worker_free,
    .destroy = tp_js_plugin_destroy,
};

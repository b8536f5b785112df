/* The nodered_js processor (SPEC 5): one Node-RED style function body with
 * the tag_processor's environment and return rules; the output payload is the
 * compact JSON of msg.payload, metadata written back, no UNS wrapping. */
#include <stddef.h>

#include "config/config.h"
#include "core/plugin.h"
#include "js/engine.h"

struct nodered_config {
    struct tp_js_snippet code;
    struct tp_js_limits lim;
};

static const struct tp_option nodered_options[] = {
    TP_OPTION(struct nodered_config, code, "code", TP_OPT_JS, NULL,
              "JavaScript function body; returns msg, an array of messages or null",
              .flags = TP_OPT_REQUIRED),
    TP_JS_LIMIT_OPTIONS(struct nodered_config, lim),
    {0},
};

static int nodered_create(const void *config, const struct tp_proc_info *info, void **proc,
                          struct tp_error *err)
{
    const struct nodered_config *cfg = config;
    const char *label = info && info->label ? info->label : "nodered_js";
    struct tp_js_script *s;
    int rc = tp_js_script_new(label, &cfg->lim, &s, err); /* limits: checked by the table */
    if (rc != 0)
        return rc;
    tp_js_script_set_metrics(s, info ? info->metrics : NULL);
    if ((rc = tp_js_script_add_body(s, &cfg->code, "code", err)) != 0) {
        tp_js_script_free(s);
        return rc;
    }
    *proc = s;
    return 0;
}

static int emit_json(void *ud, struct tp_msg *m, const struct tp_value *payload,
                     const struct tp_orig_number *orig, struct tp_drops *drops)
{
    (void)orig;
    struct tp_batch *out = ud;
    if (payload->type != TP_VALUE_JSON) {
        tp_drops_add(drops, TP_DROP_JS_ERROR, "output",
                     "msg.payload is undefined or not JSON-serialisable");
        tp_msg_free(m);
        return 0;
    }
    if (tp_msg_set_payload(m, payload->str, payload->len) != 0) {
        tp_msg_free(m);
        return TP_NOMEM;
    }
    m->flags |= TP_MSG_PAYLOAD_JSON;
    return tp_batch_push(out, m) != 0 ? TP_NOMEM : 0; /* the batch frees m */
}

static int nodered_process(void *worker, const struct tp_msg *in, struct tp_batch *out,
                           struct tp_drops *drops)
{
    return tp_js_worker_run(worker, in, TP_JS_OUT_JSON, emit_json, out, drops);
}

const struct tp_processor_plugin tp_processor_nodered_js = {
    .name = "nodered_js",
    .options = nodered_options,
    .config_size = sizeof(struct nodered_config),
    .create = nodered_create,
    .worker_new = tp_js_plugin_worker_new,
    .process = nodered_process,
    .worker_free = tp_js_plugin_worker_free,
    .destroy = tp_js_plugin_destroy,
};

/* Building a script (engine.h): the script with its cache
 * store, and its steps compiled once from the config's snippets (bodies, and
 * conditions with their native form when the `if` has one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "js/cache.h"
#include "js/engine_script.h"
#include "js/vm.h"

int tp_js_script_new(const char *label, const struct tp_js_limits *lim, struct tp_js_script **out,
                     struct tp_error *err)
{
    struct tp_js_script *s = calloc(1, sizeof(*s));
    if (!s)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    s->label = strdup(label ? label : "js");
    s->lim = *lim;
    if (s->lim.timeout_ms <= 0)
        s->lim.timeout_ms = 100;
    if (s->lim.memory_limit_mb <= 0)
        s->lim.memory_limit_mb = 64;
    if (s->lim.cache_max_entries <= 0)
        s->lim.cache_max_entries = 10000;
    if (s->lim.cache_max_bytes <= 0)
        s->lim.cache_max_bytes = TP_JS_DEFAULT_CACHE_MAX_BYTES;
    if (s->lim.max_fan_out <= 0)
        s->lim.max_fan_out = TP_JS_DEFAULT_MAX_FAN_OUT;
    s->cache = tp_js_cache_new((size_t)s->lim.cache_max_entries, (size_t)s->lim.cache_max_bytes);
    s->naive = tp_js_naive();
    s->native = !s->naive && tp_js_native_if();
    if (!s->label || !s->cache) {
        tp_js_script_free(s);
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

void tp_js_script_free(struct tp_js_script *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        tp__js_program_free(s->steps[i].cond);
        tp__js_program_free(s->steps[i].body);
        tp__js_native_if_fini(&s->steps[i].nat);
    }
    free(s->steps);
    tp_js_cache_free(s->cache);
    free(s->label);
    free(s);
}

static int push_step(struct tp_js_script *s, struct tp_js_program *cond, struct tp_js_program *body,
                     struct tp_error *err)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        struct step *v = realloc(s->steps, nc * sizeof(*v));
        if (!v) {
            tp__js_program_free(cond);
            tp__js_program_free(body);
            return tp_error_set(err, TP_NOMEM, "out of memory");
        }
        s->steps = v;
        s->cap = nc;
    }
    s->steps[s->n].cond = cond;
    s->steps[s->n].body = body;
    memset(&s->steps[s->n].nat, 0, sizeof(s->steps[s->n].nat));
    s->steps[s->n].has_nat = 0;
    s->n++;
    return 0;
}

int tp_js_script_add_body(struct tp_js_script *s, const struct tp_js_snippet *body,
                          const char *stage, struct tp_error *err)
{
    struct tp_js_program *p;
    int rc = tp__js_program_new(body, TP_JS_BODY, stage, tp_metrics_stats(s->metrics), &p, err);
    if (rc != 0 || !p)
        return rc;
    return push_step(s, NULL, p, err);
}

int tp_js_script_add_condition(struct tp_js_script *s, const struct tp_js_snippet *cond,
                               const struct tp_js_snippet *then, int index, struct tp_error *err)
{
    char st_if[64], st_then[64];
    snprintf(st_if, sizeof(st_if), "conditions[%d].if", index);
    snprintf(st_then, sizeof(st_then), "conditions[%d].then", index);
    struct tp_js_program *c, *b;
    int rc = tp__js_program_new(cond, TP_JS_EXPR, st_if, tp_metrics_stats(s->metrics), &c, err);
    if (rc != 0)
        return rc;
    rc = tp__js_program_new(then, TP_JS_BODY, st_then, tp_metrics_stats(s->metrics), &b, err);
    if (rc != 0) {
        tp__js_program_free(c);
        return rc;
    }
    if (!c || !b) { /* an empty stage is skipped (still checked for syntax) */
        tp__js_program_free(c);
        tp__js_program_free(b);
        return 0;
    }
    rc = push_step(s, c, b, err);
    if (rc == 0 && s->native) {
        struct step *st = &s->steps[s->n - 1];
        st->has_nat = tp__js_native_if_parse(cond->code, &st->nat);
    }
    return rc;
}

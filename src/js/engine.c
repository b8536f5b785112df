/* The stage runner (SPEC 3.1-3.4, 4.1): a script of compiled stages (built by
 * engine_script.c), workers that own a VM with the stages loaded, and the per-message
 * loop that keeps every in-flight message as a JS object from `defaults` to the
 * output, with fan-out children standing in place of their parent. */
#include "js/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "js/bridge.h"
#include "js/js_internal.h"
#include "js/native_if.h"
#include "js/program.h"
#include "js/engine_script.h"
#include "js/vm.h"
#include "core/metrics.h"

/* A message in flight. */
struct entry {
    JSValue msg;
    const char *stage; /* stage that produced it (for errors found later) */
    int dirty;         /* meta may hold non-string values */
};

struct entries {
    struct entry *v;
    size_t n, cap;
};

struct tp_js_worker {
    struct tp_js_script *s;
    struct tp_js_vm vm;
    int have_vm;
    JSValue *fns;                   /* 2 per step: cond, body (JS_UNDEFINED when absent) */
    struct tp_rule_block *met;      /* per-rule metrics (NULL when off) */
    struct tp_js_native_index nidx; /* native ifs (all NULL when off) */
    struct entries cur, next;
    int nomem; /* a host allocation failed during this message: TP_NOMEM */
    char text[448];
};

/* What stops the rest of a message after a timeout or out-of-memory. */
struct abort_state {
    int active;
    enum tp_drop_reason reason;
    const char *stage;
    char text[448];
};

static void free_fns(struct tp_js_worker *w)
{
    if (!w->fns)
        return;
    for (size_t i = 0; i < 2 * w->s->n; i++)
        JS_FreeValue(w->vm.ctx, w->fns[i]);
    free(w->fns);
    w->fns = NULL;
}

/* Loads every stage into the worker's VM (no compilation). */
static int load_fns(struct tp_js_worker *w, struct tp_error *err)
{
    struct tp_js_script *s = w->s;
    w->fns = calloc(2 * s->n + 1, sizeof(JSValue));
    if (!w->fns)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    for (size_t i = 0; i < 2 * s->n; i++)
        w->fns[i] = JS_UNDEFINED;
    for (size_t i = 0; i < 2 * s->n; i++) {
        struct tp_js_program *p = i % 2 ? s->steps[i / 2].body : s->steps[i / 2].cond;
        if (!p)
            continue;
        w->fns[i] = tp__js_program_load(p, w->vm.ctx);
        if (JS_IsException(w->fns[i])) {
            w->fns[i] = JS_UNDEFINED;
            tp__js_vm_exception(&w->vm, p->filename, w->text, sizeof(w->text));
            return tp_error_set(err, TP_JS, "%s: cannot load bytecode: %s", p->filename, w->text);
        }
    }
    return 0;
}

/* Key atoms and literal indexes of the native ifs (none in naive mode). */
static int native_init(struct tp_js_worker *w, struct tp_error *err)
{
    struct tp_js_script *s = w->s;
    const struct tp_js_native_if **conds = calloc(s->n + 1, sizeof(*conds));
    int rc = conds ? 0 : TP_NOMEM;
    for (size_t i = 0; conds && i < s->n; i++)
        conds[i] = s->steps[i].has_nat ? &s->steps[i].nat : NULL;
    if (rc == 0)
        rc = tp__js_native_index_init(&w->nidx, w->vm.ctx, conds, s->n);
    free(conds);
    return rc ? tp_error_set(err, TP_NOMEM, "out of memory") : 0;
}

/* Per-rule metrics: one rule per step, named after its stage ("defaults",
 * "conditions[3]", "advancedProcessing"); NULL when metrics are off. */
static struct tp_rule_block *metrics_block(const struct tp_js_script *s)
{
    if (!tp_metrics_rules_enabled(s->metrics))
        return NULL;
    char(*names)[64] = calloc(s->n ? s->n : 1, sizeof(*names));
    const char **ptrs = calloc(s->n ? s->n : 1, sizeof(*ptrs));
    struct tp_rule_block *b = NULL;
    if (names && ptrs) {
        for (size_t i = 0; i < s->n; i++) {
            const struct step *st = &s->steps[i];
            tp_metrics_rule_of_stage(st->cond ? st->cond->stage : st->body->stage, names[i],
                                     sizeof(names[i]));
            ptrs[i] = names[i];
        }
        const char *dot = strrchr(s->label, '.');
        b = tp_metrics_block_new(s->metrics, s->label, dot ? dot + 1 : s->label, s->n, ptrs);
    }
    free(names);
    free(ptrs);
    return b;
}

/* Accounts one run of step si: time, match, and the errors among the drops
 * it added (from index first). */
static void metrics_step(struct tp_rule_block *b, const struct tp_js_script *s, size_t si,
                         int timed, uint64_t ticks, int matched, const struct tp_drops *drops,
                         size_t first)
{
    struct tp_rule_ctr *c = &b->rules[si];
    TP_MET_ADD(c->evals, 1);
    if (timed)
        tp_metrics_rule_time(c, ticks);
    if (matched && s->steps[si].cond)
        TP_MET_ADD(c->matches, 1);
    for (size_t i = first; i < drops->n; i++) {
        if (drops->v[i].reason == TP_DROP_JS_TIMEOUT)
            TP_MET_ADD(c->timeouts, 1);
        else if (drops->v[i].reason == TP_DROP_JS_ERROR || drops->v[i].reason == TP_DROP_JS_MEMORY)
            TP_MET_ADD(c->errors, 1);
    }
}

void tp_js_script_set_metrics(struct tp_js_script *s, struct tp_metrics *m)
{
    s->metrics = m;
}

int tp_js_worker_new(struct tp_js_script *s, struct tp_js_worker **out, struct tp_error *err)
{
    struct tp_js_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    w->s = s;
    if (!s->naive) {
        int rc =
            tp__js_vm_init(&w->vm, &s->lim, s->label, s->cache, tp_metrics_stats(s->metrics), err);
        if (rc != 0) {
            free(w);
            return rc;
        }
        w->have_vm = 1;
        rc = load_fns(w, err);
        if (rc == 0 && s->native)
            rc = native_init(w, err);
        if (rc != 0) {
            tp_js_worker_free(w);
            return rc;
        }
    }
    w->met = metrics_block(s);
    *out = w;
    return 0;
}

void tp_js_worker_free(struct tp_js_worker *w)
{
    if (!w)
        return;
    tp_metrics_block_free(w->met);
    if (w->have_vm) {
        tp__js_native_index_fini(&w->nidx, w->vm.ctx);
        free_fns(w);
        tp__js_vm_fini(&w->vm);
    }
    free(w->cur.v);
    free(w->next.v);
    free(w);
}

static int entries_push(struct entries *l, JSValue msg, const char *stage, int dirty)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        struct entry *v = realloc(l->v, nc * sizeof(*v));
        if (!v)
            return TP_NOMEM;
        l->v = v;
        l->cap = nc;
    }
    l->v[l->n].msg = msg;
    l->v[l->n].stage = stage;
    l->v[l->n].dirty = dirty;
    l->n++;
    return 0;
}

/* The function for stage i of the step table (naive: compiled right now). */
static JSValue stage_fn(struct tp_js_worker *w, size_t idx, struct tp_js_program *p)
{
    if (w->s->naive)
        return tp__js_program_compile_in(p, w->vm.ctx, tp_metrics_stats(w->s->metrics));
    return JS_DupValue(w->vm.ctx, w->fns[idx]);
}

/* Stops the rest of the input message: each of its messages still in flight
 * is dropped for the same reason. */
static void abort_input(struct abort_state *ab, enum tp_drop_reason r, const char *stage,
                        const char *text)
{
    if (ab->active)
        return;
    ab->active = 1;
    ab->reason = r;
    ab->stage = stage;
    snprintf(ab->text, sizeof(ab->text), "%s", text);
}

/* Records the pending exception as a drop; a timeout or out-of-memory also
 * aborts the rest of the input message. A failure of the host allocator is
 * not the message's fault: no drop, the run returns TP_NOMEM. */
static void drop_exception(struct tp_js_worker *w, const char *stage, const char *filename,
                           struct abort_state *ab, struct tp_drops *drops)
{
    enum tp_drop_reason r = tp__js_vm_exception(&w->vm, filename, w->text, sizeof(w->text));
    if (w->vm.host_oom) {
        w->nomem = 1;
        abort_input(ab, r, stage, w->text);
        return;
    }
    tp_drops_add(drops, r, stage, "%s", w->text);
    if (r != TP_DROP_JS_ERROR)
        abort_input(ab, r, stage, w->text);
}

static const char *type_name(JSContext *ctx, JSValueConst v)
{
    if (JS_IsArray(ctx, v) > 0)
        return "an array";
    if (JS_IsFunction(ctx, v))
        return "a function";
    switch (JS_VALUE_GET_TAG(v)) {
    case JS_TAG_OBJECT:
        return "an object";
    case JS_TAG_STRING:
        return "a string";
    case JS_TAG_BOOL:
        return "a boolean";
    case JS_TAG_INT:
    case JS_TAG_FLOAT64:
        return "a number";
    case JS_TAG_NULL:
        return "null";
    case JS_TAG_UNDEFINED:
        return "undefined";
    default:
        return "a value of another type";
    }
}

/* r.payload, or prev when r has no payload key. */
static JSValue result_payload(struct tp_js_vm *vm, JSValueConst r, JSValueConst prev)
{
    JSValue v = JS_GetProperty(vm->ctx, r, vm->a_payload);
    if (JS_IsUndefined(v)) {
        int has = JS_HasProperty(vm->ctx, r, vm->a_payload);
        if (has < 0)
            return JS_EXCEPTION;
        if (!has)
            return JS_DupValue(vm->ctx, prev);
    }
    return v;
}

/* r.meta when it is an object, JS_NULL when absent/null/undefined, else a TypeError. */
static JSValue result_meta(struct tp_js_vm *vm, JSValueConst r)
{
    JSValue m = JS_GetProperty(vm->ctx, r, vm->a_meta);
    if (JS_IsException(m) || JS_IsObject(m))
        return m;
    if (JS_IsUndefined(m) || JS_IsNull(m))
        return JS_NULL;
    JS_FreeValue(vm->ctx, m);
    return JS_ThrowTypeError(vm->ctx, "msg.meta must be an object");
}

/* One message from a returned object (single result). */
static JSValue adopt_one(struct tp_js_vm *vm, JSValueConst r, JSValueConst msg, JSValueConst prev)
{
    JSContext *ctx = vm->ctx;
    if (JS_VALUE_GET_PTR(r) == JS_VALUE_GET_PTR(msg) && tp__js_msg_is_plain(vm, r))
        return JS_DupValue(ctx, r); /* `return msg` with payload and meta in place */
    JSValue meta = result_meta(vm, r);
    if (JS_IsException(meta))
        return meta;
    JSValue payload = result_payload(vm, r, prev);
    if (JS_IsException(payload)) {
        JS_FreeValue(ctx, meta);
        return payload;
    }
    if (JS_VALUE_GET_PTR(r) == JS_VALUE_GET_PTR(msg) && JS_IsObject(meta)) {
        /* `return msg`: keep the object, restore a deleted payload. */
        JS_FreeValue(ctx, meta);
        if (JS_SetProperty(ctx, r, vm->a_payload, payload) < 0)
            return JS_EXCEPTION;
        return JS_DupValue(ctx, r);
    }
    if (JS_IsNull(meta))
        meta = JS_NewObject(ctx);
    return tp__js_msg_make(vm, payload, meta);
}

/* Deep copy of a JSON-able object (fan-out children must not share payloads). */
static JSValue clone_json(JSContext *ctx, JSValue v)
{
    JSValue s = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
    JS_FreeValue(ctx, v);
    if (JS_IsException(s) || !JS_IsString(s))
        return s;
    size_t len;
    const char *t = JS_ToCStringLen(ctx, &len, s);
    JS_FreeValue(ctx, s);
    if (!t)
        return JS_EXCEPTION;
    JSValue r = JS_ParseJSON(ctx, t, len, "<payload>");
    JS_FreeCString(ctx, t);
    return r;
}

/* Fan-out: appends one child per non-null element to w->next. Returns 0 with
 * *count children; 1 when w->next would hold more than max_fan_out messages
 * of this input (*count: the elements returned; nothing added); -1 with an
 * exception pending (children removed). */
static int adopt_array(struct tp_js_worker *w, JSValueConst r, JSValueConst prev, const char *stage,
                       size_t *count)
{
    struct tp_js_vm *vm = &w->vm;
    JSContext *ctx = vm->ctx;
    size_t base = w->next.n;
    int64_t len = 0;
    JSValue lv = JS_GetProperty(ctx, r, vm->a_length);
    if (JS_ToInt64(ctx, &len, lv) < 0) {
        JS_FreeValue(ctx, lv);
        return -1;
    }
    JS_FreeValue(ctx, lv);
    if (len > 0 && (uint64_t)len + w->next.n > (uint64_t)w->s->lim.max_fan_out) {
        int64_t kids = 0; /* null elements are no messages */
        for (int64_t k = 0; k < len; k++) {
            JSValue el = JS_GetPropertyUint32(ctx, r, (uint32_t)k);
            if (JS_IsException(el))
                return -1;
            kids += !JS_IsNull(el);
            JS_FreeValue(ctx, el);
        }
        if ((uint64_t)kids + w->next.n > (uint64_t)w->s->lim.max_fan_out) {
            *count = (size_t)kids;
            return 1;
        }
    }
    void *seen[16];
    size_t nseen = 0;
    for (int64_t k = 0; k < len; k++) {
        JSValue el = JS_GetPropertyUint32(ctx, r, (uint32_t)k);
        if (JS_IsException(el))
            goto fail;
        if (JS_IsNull(el))
            continue;
        if (!JS_IsObject(el) || JS_IsFunction(ctx, el) || JS_IsArray(ctx, el) > 0) {
            JS_ThrowTypeError(ctx, "returned array element %lld is %s, expected an object or null",
                              (long long)k, type_name(ctx, el));
            JS_FreeValue(ctx, el);
            goto fail;
        }
        JSValue payload = result_payload(vm, el, prev);
        JSValue meta = JS_IsException(payload) ? JS_EXCEPTION : result_meta(vm, el);
        JS_FreeValue(ctx, el);
        if (JS_IsException(meta)) {
            JS_FreeValue(ctx, payload);
            goto fail;
        }
        JSValue copy = tp__js_meta_copy(vm, meta);
        JS_FreeValue(ctx, meta);
        if (JS_IsObject(payload)) {
            void *ptr = JS_VALUE_GET_PTR(payload);
            int shared = nseen == sizeof(seen) / sizeof(seen[0]);
            for (size_t i = 0; i < nseen && !shared; i++)
                shared = seen[i] == ptr;
            if (shared)
                payload = clone_json(ctx, payload);
            else
                seen[nseen++] = ptr;
        }
        JSValue child = tp__js_msg_make(vm, payload, copy);
        if (JS_IsException(child))
            goto fail;
        if (entries_push(&w->next, child, stage, 0) != 0) {
            JS_FreeValue(ctx, child);
            tp__js_throw_host_oom(vm);
            goto fail;
        }
    }
    *count = w->next.n - base;
    return 0;
fail:
    while (w->next.n > base)
        JS_FreeValue(ctx, w->next.v[--w->next.n].msg);
    return -1;
}

/* Brings meta back to strings before a stage reads it. 0 or -1. */
static int clean_entry(struct tp_js_vm *vm, struct entry *e)
{
    if (!e->dirty)
        return 0;
    JSValue meta = tp__js_msg_get(vm, e->msg, vm->a_meta);
    int rc = JS_IsException(meta) ? -1 : JS_IsObject(meta) ? tp__js_meta_normalize(vm, meta) : 0;
    JS_FreeValue(vm->ctx, meta);
    e->dirty = 0;
    return rc;
}

/* Runs body stage p on e (consumed); results go to w->next. */
static void run_body(struct tp_js_worker *w, size_t idx, struct tp_js_program *p, struct entry *e,
                     struct abort_state *ab, struct tp_drops *drops)
{
    struct tp_js_vm *vm = &w->vm;
    JSContext *ctx = vm->ctx;
    JSValue prev = tp__js_msg_get(vm, e->msg, vm->a_payload);
    JSValue fn = stage_fn(w, idx, p);
    JSValue r = JS_EXCEPTION;
    vm->stage = p->stage;
    if (!JS_IsException(prev) && !JS_IsException(fn))
        r = JS_Call(ctx, fn, JS_UNDEFINED, 1, (JSValueConst *)&e->msg);
    JS_FreeValue(ctx, fn);
    if (JS_IsException(r)) {
        drop_exception(w, p->stage, p->filename, ab, drops);
        goto out;
    }
    if (JS_IsUndefined(r) || JS_IsNull(r)) {
        tp_drops_add(drops, TP_DROP_FILTERED, p->stage, NULL);
    } else if (JS_IsArray(ctx, r) > 0) {
        size_t n = 0;
        int rc = adopt_array(w, r, prev, p->stage, &n);
        if (rc < 0) {
            drop_exception(w, p->stage, p->filename, ab, drops);
        } else if (rc > 0) {
            snprintf(w->text, sizeof(w->text),
                     "fan-out to more than max_fan_out (%lld) messages: %zu returned here, "
                     "%zu more already",
                     (long long)w->s->lim.max_fan_out, n, w->next.n);
            tp_drops_add(drops, TP_DROP_INVALID_VALUE, p->stage, "%s", w->text);
            abort_input(ab, TP_DROP_INVALID_VALUE, p->stage, w->text);
        } else if (n == 0) {
            tp_drops_add(drops, TP_DROP_FILTERED, p->stage, NULL);
        }
    } else if (JS_IsObject(r) && !JS_IsFunction(ctx, r)) {
        JSValue m = adopt_one(vm, r, e->msg, prev);
        if (JS_IsException(m))
            drop_exception(w, p->stage, p->filename, ab, drops);
        else if (entries_push(&w->next, m, p->stage, 1) != 0) {
            JS_FreeValue(ctx, m);
            w->nomem = 1;
        }
    } else {
        tp_drops_add(drops, TP_DROP_JS_ERROR, p->stage,
                     "returned %s: expected an object, an array of objects, null or undefined",
                     type_name(ctx, r));
    }
    JS_FreeValue(ctx, r);
out:
    JS_FreeValue(ctx, prev);
    JS_FreeValue(ctx, e->msg);
}

/* Returns 1 when the step's body ran (its if, if any, was truthy). */
static int run_step(struct tp_js_worker *w, size_t si, struct entry *e, struct abort_state *ab,
                    struct tp_drops *drops)
{
    struct tp_js_vm *vm = &w->vm;
    struct step *st = &w->s->steps[si];
    if (clean_entry(vm, e) != 0) {
        drop_exception(w, e->stage, NULL, ab, drops);
        JS_FreeValue(vm->ctx, e->msg);
        return 0;
    }
    if (st->cond) {
        int truthy = -1;
        if (w->nidx.atoms && w->nidx.atoms[si] != JS_ATOM_NULL)
            truthy = tp__js_native_if_eval(vm, e->msg, w->nidx.atoms[si], &st->nat);
        if (truthy < 0) {
            JSValue fn = stage_fn(w, 2 * si, st->cond);
            JSValue r = JS_EXCEPTION;
            vm->stage = st->cond->stage;
            if (!JS_IsException(fn))
                r = JS_Call(vm->ctx, fn, JS_UNDEFINED, 1, (JSValueConst *)&e->msg);
            JS_FreeValue(vm->ctx, fn);
            if (JS_IsException(r)) {
                drop_exception(w, st->cond->stage, st->cond->filename, ab, drops);
                JS_FreeValue(vm->ctx, e->msg);
                return 0;
            }
            truthy = JS_ToBool(vm->ctx, r);
            JS_FreeValue(vm->ctx, r);
        }
        if (!truthy) {
            if (entries_push(&w->next, e->msg, e->stage, 0) != 0) {
                JS_FreeValue(vm->ctx, e->msg);
                w->nomem = 1;
            }
            return 0;
        }
    }
    run_body(w, 2 * si + 1, st->body, e, ab, drops);
    return 1;
}

/* Output of one surviving message. */
static int emit_entry(struct tp_js_worker *w, const struct tp_msg *in, struct entry *e,
                      enum tp_js_output mode, const struct tp_orig_number *orig, tp_js_emit_fn emit,
                      void *ud, struct abort_state *ab, struct tp_drops *drops)
{
    struct tp_js_vm *vm = &w->vm;
    JSContext *ctx = vm->ctx;
    struct tp_msg *m = tp_msg_new();
    if (!m)
        return TP_NOMEM;
    m->seq = in->seq;
    m->input_line = in->input_line;
    vm->stage = "output";
    JSValue meta = tp__js_msg_get(vm, e->msg, vm->a_meta);
    int rc = JS_IsException(meta) ? -1 : tp__js_meta_export(vm, meta, m);
    JS_FreeValue(ctx, meta);
    if (rc == TP_NOMEM) {
        tp_msg_free(m);
        return TP_NOMEM;
    }
    struct tp_value value;
    struct tp_js_hold hold = {.ctx = ctx};
    if (rc == 0) {
        JSValue payload = tp__js_msg_get(vm, e->msg, vm->a_payload);
        rc = JS_IsException(payload)
                 ? -1
                 : tp__js_value_export(vm, payload, mode == TP_JS_OUT_JSON, orig, &value, &hold);
        JS_FreeValue(ctx, payload);
    }
    if (rc != 0) {
        drop_exception(w, "output", NULL, ab, drops);
        tp_msg_free(m);
        return 0;
    }
    rc = emit(ud, m, &value, orig, drops);
    tp__js_hold_release(&hold);
    return rc;
}

/* Runs the Promise jobs the message's stages queued (vm.c): a job cut by the
 * time or memory limit is one drop of the input (stage "promise job"). */
static void run_pending_jobs(struct tp_js_worker *w, struct tp_drops *drops)
{
    enum tp_drop_reason reason;
    int rc = tp__js_vm_run_jobs(&w->vm, &reason, w->text, sizeof(w->text));
    if (rc < 0)
        w->nomem = 1;
    else if (rc > 0)
        tp_drops_add(drops, reason, "promise job", "%s", w->text);
}

/* Per-rule metrics of one message. */
struct mclock {
    struct tp_rule_block *met; /* NULL: off */
    int timed;
    uint64_t t0, dt;
};

static void mclock_step(struct tp_js_worker *w, struct mclock *mc, size_t si, int matched,
                        const struct tp_drops *drops, size_t first)
{
    if (!mc->met)
        return;
    if (mc->timed) {
        uint64_t t1 = tp_metrics_ticks();
        mc->dt = t1 - mc->t0;
        mc->t0 = t1;
    }
    metrics_step(mc->met, w->s, si, mc->timed, mc->dt, matched, drops, first);
}

/* Where entry e goes next in run r, from step `from` on: the first condition
 * that certainly matches, r->b when none can, or `from` itself when the
 * value is not certain (the step then decides, in JavaScript if need be). */
static size_t run_next(struct tp_js_worker *w, const struct tp_js_native_run *r,
                       const struct entry *e, size_t from)
{
    if (from >= r->b)
        return r->b;
    if (e->dirty)
        return from;
    const char *v = NULL;
    size_t n = 0;
    switch (tp__js_native_read(&w->vm, e->msg, r->atom, &v, &n)) {
    case TP_JS_NATIVE_STRING:
        return tp__js_native_run_next(r, v, n, from);
    case TP_JS_NATIVE_ABSENT:
        return r->b;
    default:
        return from;
    }
}

/* Runs step si on every entry of w->cur (r NULL), or, inside run r, on the
 * entries whose next match is si (the others pass unchanged, as their
 * condition is false), then makes w->next the current list. */
static void run_stage(struct tp_js_worker *w, size_t si, const struct tp_js_native_run *r,
                      struct mclock *mc, struct abort_state *ab, struct tp_drops *drops)
{
    w->next.n = 0;
    for (size_t i = 0; i < w->cur.n; i++) {
        struct entry *e = &w->cur.v[i];
        if (ab->active) {
            tp_drops_add(drops, ab->reason, ab->stage, "%s", ab->text);
            JS_FreeValue(w->vm.ctx, e->msg);
            continue;
        }
        size_t nd = drops->n;
        int matched = 0;
        if (r && run_next(w, r, e, si) != si) {
            if (entries_push(&w->next, e->msg, e->stage, e->dirty) != 0) {
                JS_FreeValue(w->vm.ctx, e->msg);
                w->nomem = 1;
            }
        } else {
            matched = run_step(w, si, e, ab, drops);
        }
        mclock_step(w, mc, si, matched, drops, nd);
    }
    struct entries t = w->cur;
    w->cur = w->next;
    w->next = t;
    w->next.n = 0;
}

/* Runs the steps of run r: only the steps some entry matches are visited,
 * each entry being re-read when visited, so the result is that of running
 * every step in order. Returns r->b. */
static size_t run_indexed(struct tp_js_worker *w, const struct tp_js_native_run *r,
                          struct mclock *mc, struct abort_state *ab, struct tp_drops *drops)
{
    size_t si = r->a;
    while (si < r->b && w->cur.n > 0) {
        size_t m = r->b;
        for (size_t i = 0; i < w->cur.n && !ab->active && m > si; i++) {
            size_t k = run_next(w, r, &w->cur.v[i], si);
            m = k < m ? k : m;
        }
        if (ab->active)
            m = si;
        if (mc->met)
            for (size_t k = si; k < m; k++) /* skipped: evaluated, not matched */
                TP_MET_ADD(mc->met->rules[k].evals, w->cur.n);
        if (m >= r->b)
            break;
        run_stage(w, m, r, mc, ab, drops);
        si = m + 1;
    }
    return r->b;
}

int tp_js_worker_run(struct tp_js_worker *w, const struct tp_msg *in, enum tp_js_output mode,
                     tp_js_emit_fn emit, void *ud, struct tp_drops *drops)
{
    struct tp_js_script *s = w->s;
    struct tp_js_vm *vm = &w->vm;
    struct tp_error err;
    int status = 0;
    if (s->naive) {
        if (tp__js_vm_init(vm, &s->lim, s->label, s->cache, tp_metrics_stats(s->metrics), &err) !=
            0)
            return TP_NOMEM;
    }
    JSContext *ctx = vm->ctx;
    struct abort_state ab = {0};
    struct tp_orig_number orig = {0};
    tp__js_vm_arm(vm);
    vm->in = in;
    w->cur.n = w->next.n = 0;
    JSValue msg = tp__js_msg_new(vm, in, &orig);
    if (JS_IsException(msg)) {
        drop_exception(w, "input", NULL, &ab, drops);
        goto done;
    }
    if (entries_push(&w->cur, msg, "input", 0) != 0) {
        JS_FreeValue(ctx, msg);
        status = TP_NOMEM;
        goto done;
    }
    struct mclock mc = {.met = w->met};
    if (mc.met) {
        TP_MET_ADD(mc.met->msgs_in, 1);
        if ((mc.timed = tp_metrics_sample(mc.met)))
            mc.t0 = tp_metrics_ticks();
    }
    for (size_t si = 0; si < s->n; si++) {
        if (w->nidx.run_at && w->nidx.run_at[si])
            si = run_indexed(w, w->nidx.run_at[si], &mc, &ab, drops) - 1;
        else
            run_stage(w, si, NULL, &mc, &ab, drops);
    }
    for (size_t i = 0; i < w->cur.n; i++) {
        struct entry *e = &w->cur.v[i];
        if (ab.active)
            tp_drops_add(drops, ab.reason, ab.stage, "%s", ab.text);
        else if (status == 0) {
            size_t nd = drops->n;
            status = emit_entry(w, in, e, mode, &orig, emit, ud, &ab, drops);
            if (mc.met && status == 0 && drops->n == nd)
                TP_MET_ADD(mc.met->msgs_out, 1);
        }
        tp__js_msg_release(vm, e->msg); /* may keep the objects for the next message */
    }
    w->cur.n = 0;
done:
    run_pending_jobs(w, drops);
    if (w->nomem) {
        w->nomem = 0;
        status = TP_NOMEM;
    }
    tp__js_in_ident_clear(vm);
    tp__js_vm_disarm(vm);
    vm->stage = "";
    vm->in = NULL;
    if (s->naive)
        tp__js_vm_fini(vm);
    return status;
}

int tp_js_plugin_worker_new(void *script, int worker_index, void **worker, struct tp_error *err)
{
    (void)worker_index;
    return tp_js_worker_new(script, (struct tp_js_worker **)worker, err);
}

void tp_js_plugin_worker_free(void *worker)
{
    tp_js_worker_free(worker);
}

void tp_js_plugin_destroy(void *script)
{
    tp_js_script_free(script);
}

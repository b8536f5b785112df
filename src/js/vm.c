/* The per-worker QuickJS VM: runtime + context with a memory limit, a stack
 * limit and an interrupt handler enforcing the per-message deadline, and the
 * classification of exceptions into drop reasons (SPEC 3.10, 4.2). */
#include "js/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/stats.h"
#include "js/bridge.h"
#include "js/engine.h"
#include "js/js_internal.h"

#define TP_JS_STACK_SIZE (1024 * 1024)

static int naive_forced = -1; /* -1: follow the environment */

void tp_js_set_naive(int on)
{
    __atomic_store_n(&naive_forced, on ? 1 : 0, __ATOMIC_RELAXED);
}

int tp_js_naive(void)
{
    int forced = __atomic_load_n(&naive_forced, __ATOMIC_RELAXED);
    if (forced >= 0)
        return forced;
    const char *e = getenv("TAGPROC_ENGINE");
    return e && strcmp(e, "naive") == 0;
}

/* Called by QuickJS every few thousand operations (and, with our patch, from
 * regular-expression backtracking). Non-zero aborts the script. */
static int interrupt_handler(JSRuntime *rt, void *opaque)
{
    (void)rt;
    struct tp_js_vm *vm = opaque;
    if (vm->deadline_ns == 0)
        return 0;
    if (vm->interrupted || tp_mono_coarse_ns() >= vm->deadline_ns) {
        vm->interrupted = 1;
        return 1;
    }
    return 0;
}

int tp__js_vm_init(struct tp_js_vm *vm, const struct tp_js_limits *lim, const char *label,
                   struct tp_js_cache *cache, struct tp_error *err)
{
    memset(vm, 0, sizeof(*vm));
    vm->label = label;
    vm->stage = "";
    vm->cache = cache;
    vm->mem_limit = (size_t)lim->memory_limit_mb * 1024 * 1024;
    vm->timeout_ns = lim->timeout_ms * 1000000;
    vm->cache_max_bytes = (size_t)lim->cache_max_bytes;
    vm->pool = tp__js_pool_new();
    vm->rt = vm->pool ? tp__js_pool_runtime(vm->pool) : NULL;
    if (!vm->rt) {
        tp__js_pool_free(vm->pool);
        vm->pool = NULL;
        return tp_error_set(err, TP_NOMEM, "cannot create a JavaScript runtime");
    }
    JS_SetMaxStackSize(vm->rt, TP_JS_STACK_SIZE);
    JS_SetInterruptHandler(vm->rt, interrupt_handler, vm);
    vm->ctx = JS_NewContext(vm->rt);
    if (!vm->ctx) {
        JS_FreeRuntime(vm->rt);
        tp__js_pool_free(vm->pool);
        vm->rt = NULL;
        vm->pool = NULL;
        return tp_error_set(err, TP_NOMEM, "cannot create a JavaScript context");
    }
    JS_SetContextOpaque(vm->ctx, vm);
    vm->a_payload = JS_NewAtom(vm->ctx, "payload");
    vm->a_meta = JS_NewAtom(vm->ctx, "meta");
    vm->a_length = JS_NewAtom(vm->ctx, "length");
    JSAtom msg_keys[2] = {vm->a_payload, vm->a_meta};
    tp__js_keep_shapes(vm, msg_keys, 2);
    if (tp__js_env_install(vm) != 0 || tp__js_caches_init(vm) != 0) {
        tp__js_vm_fini(vm);
        return tp_error_set(err, TP_NOMEM, "cannot install the JavaScript environment");
    }
    /* The limit applies to scripts, after the built-ins are in place. */
    JS_SetMemoryLimit(vm->rt, vm->mem_limit);
    TP_STAT_ADD(vms_created, 1);
    return 0;
}

void tp__js_vm_fini(struct tp_js_vm *vm)
{
    if (vm->ctx) {
        tp__js_free_shapes(vm);
        tp__js_caches_free(vm);
        JS_FreeAtom(vm->ctx, vm->a_payload);
        JS_FreeAtom(vm->ctx, vm->a_meta);
        JS_FreeAtom(vm->ctx, vm->a_length);
        JS_FreeContext(vm->ctx);
    }
    if (vm->rt)
        JS_FreeRuntime(vm->rt);
    tp__js_pool_free(vm->pool);
    vm->ctx = NULL;
    vm->rt = NULL;
    vm->pool = NULL;
}

void tp__js_vm_arm(struct tp_js_vm *vm)
{
    /* Stack limits are measured from here: the caller's thread and depth. */
    JS_UpdateStackTop(vm->rt);
    vm->interrupted = 0;
    vm->host_oom = 0;
    tp__js_pool_take_failures(vm->pool);
    vm->deadline_ns = tp_mono_coarse_ns() + vm->timeout_ns;
}

void tp__js_vm_disarm(struct tp_js_vm *vm)
{
    vm->deadline_ns = 0;
    vm->interrupted = 0;
}

void tp__js_free_props(JSContext *ctx, JSPropertyEnum *tab, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        JS_FreeAtom(ctx, tab[i].atom);
    js_free(ctx, tab);
}

/* Line number of the first "at <filename>:<N>" in a stack text, else 0. */
static int stack_line(const char *stack, const char *filename)
{
    if (!stack || !filename || !*filename)
        return 0;
    size_t fl = strlen(filename);
    for (const char *p = strstr(stack, filename); p; p = strstr(p + 1, filename)) {
        if (p[fl] == ':' && p > stack && (p[-1] == ' ' || p[-1] == '('))
            return atoi(p + fl + 1);
    }
    return 0;
}

void tp__js_describe(JSContext *ctx, JSValueConst ex, const char *filename, char *buf, size_t n,
                     int *js_line)
{
    *js_line = 0;
    const char *s = JS_ToCString(ctx, ex);
    if (!s) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        snprintf(buf, n, "exception (not printable)");
    } else {
        snprintf(buf, n, "%s", s);
        JS_FreeCString(ctx, s);
    }
    if (JS_IsObject(ex)) {
        JSValue st = JS_GetPropertyStr(ctx, ex, "stack");
        if (JS_IsException(st)) {
            JS_FreeValue(ctx, JS_GetException(ctx));
        } else if (JS_IsString(st)) {
            const char *t = JS_ToCString(ctx, st);
            if (t) {
                *js_line = stack_line(t, filename);
                JS_FreeCString(ctx, t);
            }
        }
        JS_FreeValue(ctx, st);
    }
}

JSValue tp__js_throw_host_oom(struct tp_js_vm *vm)
{
    vm->host_oom = 1;
    return JS_ThrowOutOfMemory(vm->ctx);
}

enum tp_drop_reason tp__js_vm_exception(struct tp_js_vm *vm, const char *filename, char *buf,
                                        size_t n)
{
    JSContext *ctx = vm->ctx;
    JSValue ex = JS_GetException(ctx);
    enum tp_drop_reason reason = TP_DROP_JS_ERROR;
    unsigned failures = tp__js_pool_take_failures(vm->pool);
    /* Describing the error allocates: lift the limit meanwhile. */
    JS_SetMemoryLimit(vm->rt, (size_t)-1);
    if (vm->interrupted) {
        reason = TP_DROP_JS_TIMEOUT;
        snprintf(buf, n, "JavaScript timeout: the message ran longer than %lld ms",
                 (long long)(vm->timeout_ns / 1000000));
    } else if (vm->host_oom || (failures & TP_JS_POOL_HOST)) {
        vm->host_oom = 1; /* the caller reports TP_NOMEM: no drop reason fits */
        reason = TP_DROP_JS_MEMORY;
        snprintf(buf, n, "out of memory (host allocator)");
    } else {
        int line;
        tp__js_describe(ctx, ex, filename, buf, n, &line);
        /* Over memory_limit_mb: the limit refused a block and what comes out
         * is QuickJS's out-of-memory error (null when even that could not be
         * allocated). A script's own `throw null` or error text is js_error. */
        if ((failures & TP_JS_POOL_LIMIT) &&
            (JS_IsNull(ex) || strcmp(buf, "InternalError: out of memory") == 0)) {
            reason = TP_DROP_JS_MEMORY;
            snprintf(buf, n, "InternalError: out of memory (memory_limit_mb %zu)",
                     vm->mem_limit >> 20);
        } else if (line > 0) {
            size_t l = strlen(buf);
            snprintf(buf + l, n - l, " (JS line %d)", line);
        }
    }
    JS_FreeValue(ctx, ex);
    if (reason == TP_DROP_JS_MEMORY)
        JS_RunGC(vm->rt);
    tp__js_pool_take_failures(vm->pool); /* describing is not the script's doing */
    JS_SetMemoryLimit(vm->rt, vm->mem_limit);
    /* Only one interrupt per message: later stages fail fast on their own. */
    return reason;
}

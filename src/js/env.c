/* `console` and `cache` for scripts. No require, process, timers or modules:
 * the context only has the ECMAScript built-ins plus these two objects (the
 * QuickJS std/os modules are not linked). */
#include "js/env.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "ops/metrics.h"

static const enum tp_log_level console_levels[] = {TP_LOG_DEBUG, TP_LOG_INFO, TP_LOG_INFO,
                                                   TP_LOG_WARN, TP_LOG_ERROR};

static int append_value(JSContext *ctx, struct tp_buf *b, JSValueConst v)
{
    const char *s = NULL;
    size_t len = 0;
    JSValue json = JS_UNDEFINED;
    if (JS_IsObject(v) && !JS_IsFunction(ctx, v)) {
        json = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
        if (JS_IsException(json)) {
            JS_FreeValue(ctx, JS_GetException(ctx));
            json = JS_UNDEFINED;
        }
    }
    if (JS_IsString(json))
        s = JS_ToCStringLen(ctx, &len, json);
    else
        s = JS_ToCStringLen(ctx, &len, v);
    JS_FreeValue(ctx, json);
    if (!s) {
        JS_FreeValue(ctx, JS_GetException(ctx)); /* e.g. a Symbol */
        return tp_buf_puts(b, "[unprintable]");
    }
    int rc = tp_buf_append(b, s, len);
    JS_FreeCString(ctx, s);
    return rc;
}

char *tp__js_env_format_args(JSContext *ctx, int argc, JSValueConst *argv)
{
    struct tp_buf b;
    tp_buf_init(&b);
    if (tp_buf_append(&b, "", 0) != 0) /* allocated and NUL-terminated even for no args */
        return NULL;
    for (int i = 0; i < argc; i++) {
        if ((i > 0 && tp_buf_putc(&b, ' ') != 0) || append_value(ctx, &b, argv[i]) != 0) {
            tp_buf_free(&b);
            return NULL;
        }
    }
    return tp_buf_take(&b, NULL);
}

static JSValue js_console(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                          int magic)
{
    (void)this_val;
    struct tp_js_vm *vm = JS_GetContextOpaque(ctx);
    enum tp_log_level level = console_levels[magic];
    if (!tp_log_enabled(level))
        return JS_UNDEFINED;
    char *text = tp__js_env_format_args(ctx, argc, argv);
    if (!text)
        return JS_ThrowOutOfMemory(ctx);
    char rule[64];
    tp_metrics_rule_of_stage(vm->stage ? vm->stage : "", rule, sizeof(rule));
    tp_log(level, "[processor=%s stage=%s rule=%s] %s", vm->label, vm->stage, rule, text);
    free(text);
    return JS_UNDEFINED;
}

/* The key argument as a non-empty string (TypeError otherwise). */
static const char *cache_key(JSContext *ctx, int argc, JSValueConst *argv, size_t *len)
{
    if (argc < 1 || JS_IsUndefined(argv[0]) || JS_IsNull(argv[0])) {
        JS_ThrowTypeError(ctx, "cache key must be a non-empty string");
        return NULL;
    }
    const char *k = JS_ToCStringLen(ctx, len, argv[0]);
    if (k && *len == 0) {
        JS_FreeCString(ctx, k);
        JS_ThrowTypeError(ctx, "cache key must be a non-empty string");
        return NULL;
    }
    return k;
}

static JSValue js_cache_set(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    struct tp_js_vm *vm = JS_GetContextOpaque(ctx);
    size_t klen, jlen;
    const char *k = cache_key(ctx, argc, argv, &klen);
    if (!k)
        return JS_EXCEPTION;
    JSValue json =
        JS_JSONStringify(ctx, argc > 1 ? argv[1] : JS_UNDEFINED, JS_UNDEFINED, JS_UNDEFINED);
    if (JS_IsException(json)) {
        JS_FreeCString(ctx, k);
        return JS_EXCEPTION;
    }
    if (!JS_IsString(json)) {
        JS_FreeValue(ctx, json);
        JS_FreeCString(ctx, k);
        return JS_ThrowTypeError(ctx, "cache.set: the value is not JSON-serialisable");
    }
    const char *j = JS_ToCStringLen(ctx, &jlen, json);
    JS_FreeValue(ctx, json);
    if (!j) {
        JS_FreeCString(ctx, k);
        return JS_EXCEPTION;
    }
    int rc = tp_js_cache_set(vm->cache, k, klen, j, jlen);
    JS_FreeCString(ctx, j);
    JS_FreeCString(ctx, k);
    if (rc == TP_INVAL)
        return JS_ThrowRangeError(ctx,
                                  "cache.set: the entry (%zu bytes) is larger than "
                                  "cache_max_bytes (%zu)",
                                  klen + jlen, vm->cache_max_bytes);
    if (rc != 0)
        return tp__js_throw_host_oom(vm);
    return JS_UNDEFINED;
}

static JSValue js_cache_get(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    struct tp_js_vm *vm = JS_GetContextOpaque(ctx);
    size_t klen, jlen = 0;
    const char *k = cache_key(ctx, argc, argv, &klen);
    if (!k)
        return JS_EXCEPTION;
    char *j = tp_js_cache_get(vm->cache, k, klen, &jlen);
    JS_FreeCString(ctx, k);
    if (!j)
        return JS_UNDEFINED;
    JSValue v = JS_ParseJSON(ctx, j, jlen, "<cache>");
    free(j);
    return v;
}

static JSValue js_cache_exists(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    struct tp_js_vm *vm = JS_GetContextOpaque(ctx);
    size_t klen;
    const char *k = cache_key(ctx, argc, argv, &klen);
    if (!k)
        return JS_EXCEPTION;
    int found = tp_js_cache_exists(vm->cache, k, klen);
    JS_FreeCString(ctx, k);
    return JS_NewBool(ctx, found);
}

static JSValue js_cache_delete(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    struct tp_js_vm *vm = JS_GetContextOpaque(ctx);
    size_t klen;
    const char *k = cache_key(ctx, argc, argv, &klen);
    if (!k)
        return JS_EXCEPTION;
    int removed = tp_js_cache_delete(vm->cache, k, klen);
    JS_FreeCString(ctx, k);
    return JS_NewBool(ctx, removed);
}

static const JSCFunctionListEntry console_funcs[] = {
    JS_CFUNC_MAGIC_DEF("debug", 1, js_console, 0), JS_CFUNC_MAGIC_DEF("log", 1, js_console, 1),
    JS_CFUNC_MAGIC_DEF("info", 1, js_console, 2),  JS_CFUNC_MAGIC_DEF("warn", 1, js_console, 3),
    JS_CFUNC_MAGIC_DEF("error", 1, js_console, 4),
};

static const JSCFunctionListEntry cache_funcs[] = {
    JS_CFUNC_DEF("set", 2, js_cache_set),
    JS_CFUNC_DEF("get", 1, js_cache_get),
    JS_CFUNC_DEF("exists", 1, js_cache_exists),
    JS_CFUNC_DEF("delete", 1, js_cache_delete),
};

int tp__js_env_install(struct tp_js_vm *vm)
{
    JSContext *ctx = vm->ctx;
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue console = JS_NewObject(ctx);
    JSValue cache = JS_NewObject(ctx);
    int rc = 0;
    if (JS_IsException(console) || JS_IsException(cache)) {
        rc = -1;
    } else {
        JS_SetPropertyFunctionList(ctx, console, console_funcs,
                                   sizeof(console_funcs) / sizeof(console_funcs[0]));
        JS_SetPropertyFunctionList(ctx, cache, cache_funcs,
                                   sizeof(cache_funcs) / sizeof(cache_funcs[0]));
        if (JS_SetPropertyStr(ctx, global, "console", console) < 0)
            rc = -1;
        console = JS_UNDEFINED;
        if (JS_SetPropertyStr(ctx, global, "cache", cache) < 0)
            rc = -1;
        cache = JS_UNDEFINED;
    }
    JS_FreeValue(ctx, console);
    JS_FreeValue(ctx, cache);
    JS_FreeValue(ctx, global);
    return rc;
}

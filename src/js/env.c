/* `console` and `cache` for scripts, and for Node-RED function code `node`
 * (log/warn/error to the tagproc log with the message's metadata) and the
 * `context` / `flow` / `global` stores (get/set, kept in the processor's
 * cache under their own key spaces). No require, process, timers or modules:
 * the context only has the ECMAScript built-ins plus these objects (the
 * QuickJS std/os modules are not linked). */
#include "js/env.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"

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

static const enum tp_log_level node_levels[] = {TP_LOG_INFO, TP_LOG_WARN, TP_LOG_ERROR};

/* node.log / node.warn / node.error: as console, plus the metadata of the
 * message being processed (the input's, as it reached the processor). */
static JSValue js_node(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                       int magic)
{
    (void)this_val;
    struct tp_js_vm *vm = JS_GetContextOpaque(ctx);
    enum tp_log_level level = node_levels[magic];
    if (!tp_log_enabled(level))
        return JS_UNDEFINED;
    char *text = tp__js_env_format_args(ctx, argc, argv);
    struct tp_buf meta;
    tp_buf_init(&meta);
    if (!text || (vm->in ? tp_json_write_meta(&meta, vm->in) : tp_buf_puts(&meta, "{}"))) {
        free(text);
        tp_buf_free(&meta);
        return JS_ThrowOutOfMemory(ctx);
    }
    char rule[64];
    tp_metrics_rule_of_stage(vm->stage ? vm->stage : "", rule, sizeof(rule));
    tp_log(level, "[processor=%s stage=%s rule=%s] %s; meta=%s", vm->label, vm->stage, rule, text,
           meta.data);
    free(text);
    tp_buf_free(&meta);
    return JS_UNDEFINED;
}

/* The key spaces of the processor's store: `cache` keys as they are; the
 * Node-RED stores behind a prefix of their own (magic of the functions). */
enum { SPACE_CACHE, SPACE_CONTEXT, SPACE_FLOW, SPACE_GLOBAL };
static const char *const space_names[] = {"cache", "context", "flow", "global"};
static const char *const space_prefixes[] = {"",
                                             "\x1f"
                                             "context\x1f",
                                             "\x1f"
                                             "flow\x1f",
                                             "\x1f"
                                             "global\x1f"};

/* A store key: the script's key (a non-empty string, TypeError otherwise)
 * with its space's prefix. */
struct store_key {
    const char *js; /* the script's key (JS_FreeCString) */
    char *own;      /* prefixed copy, or NULL */
    const char *k;
    size_t len;
};

static int store_key(JSContext *ctx, int space, int argc, JSValueConst *argv, struct store_key *sk)
{
    memset(sk, 0, sizeof(*sk));
    size_t jl = 0;
    if (argc >= 1 && !JS_IsUndefined(argv[0]) && !JS_IsNull(argv[0]))
        sk->js = JS_ToCStringLen(ctx, &jl, argv[0]);
    if (!sk->js || jl == 0) {
        if (sk->js)
            JS_FreeCString(ctx, sk->js);
        sk->js = NULL;
        JS_ThrowTypeError(ctx, "%s key must be a non-empty string", space_names[space]);
        return -1;
    }
    size_t pl = strlen(space_prefixes[space]);
    sk->k = sk->js;
    sk->len = jl;
    if (pl) {
        if (!(sk->own = malloc(pl + jl))) {
            JS_FreeCString(ctx, sk->js);
            sk->js = NULL;
            tp__js_throw_host_oom(JS_GetContextOpaque(ctx));
            return -1;
        }
        memcpy(sk->own, space_prefixes[space], pl);
        memcpy(sk->own + pl, sk->js, jl);
        sk->k = sk->own;
        sk->len = pl + jl;
    }
    return 0;
}

static void store_key_free(JSContext *ctx, struct store_key *sk)
{
    if (sk->js)
        JS_FreeCString(ctx, sk->js);
    free(sk->own);
}

/* cache.set(key, value); context/flow/global.set(key, value), where an
 * undefined value deletes the key as in Node-RED. */
static JSValue js_store_set(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                            int space)
{
    (void)this_val;
    struct tp_js_vm *vm = JS_GetContextOpaque(ctx);
    struct store_key sk;
    size_t jlen;
    if (store_key(ctx, space, argc, argv, &sk))
        return JS_EXCEPTION;
    JSValueConst v = argc > 1 ? argv[1] : JS_UNDEFINED;
    if (space != SPACE_CACHE && JS_IsUndefined(v)) {
        tp_js_cache_delete(vm->cache, sk.k, sk.len);
        store_key_free(ctx, &sk);
        return JS_UNDEFINED;
    }
    JSValue json = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
    if (JS_IsException(json)) {
        store_key_free(ctx, &sk);
        return JS_EXCEPTION;
    }
    if (!JS_IsString(json)) {
        JS_FreeValue(ctx, json);
        store_key_free(ctx, &sk);
        return JS_ThrowTypeError(ctx, "%s.set: the value is not JSON-serialisable",
                                 space_names[space]);
    }
    const char *j = JS_ToCStringLen(ctx, &jlen, json);
    JS_FreeValue(ctx, json);
    if (!j) {
        store_key_free(ctx, &sk);
        return JS_EXCEPTION;
    }
    int rc = tp_js_cache_set(vm->cache, sk.k, sk.len, j, jlen);
    size_t klen = sk.len;
    JS_FreeCString(ctx, j);
    store_key_free(ctx, &sk);
    if (rc == TP_INVAL)
        return JS_ThrowRangeError(ctx,
                                  "%s.set: the entry (%zu bytes) is larger than "
                                  "cache_max_bytes (%zu)",
                                  space_names[space], klen + jlen, vm->cache_max_bytes);
    if (rc != 0)
        return tp__js_throw_host_oom(vm);
    return JS_UNDEFINED;
}

static JSValue js_store_get(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                            int space)
{
    (void)this_val;
    struct tp_js_vm *vm = JS_GetContextOpaque(ctx);
    struct store_key sk;
    size_t jlen = 0;
    if (store_key(ctx, space, argc, argv, &sk))
        return JS_EXCEPTION;
    char *j = tp_js_cache_get(vm->cache, sk.k, sk.len, &jlen);
    store_key_free(ctx, &sk);
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
    struct store_key sk;
    if (store_key(ctx, SPACE_CACHE, argc, argv, &sk))
        return JS_EXCEPTION;
    int found = tp_js_cache_exists(vm->cache, sk.k, sk.len);
    store_key_free(ctx, &sk);
    return JS_NewBool(ctx, found);
}

static JSValue js_cache_delete(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    struct tp_js_vm *vm = JS_GetContextOpaque(ctx);
    struct store_key sk;
    if (store_key(ctx, SPACE_CACHE, argc, argv, &sk))
        return JS_EXCEPTION;
    int removed = tp_js_cache_delete(vm->cache, sk.k, sk.len);
    store_key_free(ctx, &sk);
    return JS_NewBool(ctx, removed);
}

static const JSCFunctionListEntry console_funcs[] = {
    JS_CFUNC_MAGIC_DEF("debug", 1, js_console, 0), JS_CFUNC_MAGIC_DEF("log", 1, js_console, 1),
    JS_CFUNC_MAGIC_DEF("info", 1, js_console, 2),  JS_CFUNC_MAGIC_DEF("warn", 1, js_console, 3),
    JS_CFUNC_MAGIC_DEF("error", 1, js_console, 4),
};

static const JSCFunctionListEntry node_funcs[] = {
    JS_CFUNC_MAGIC_DEF("log", 1, js_node, 0),
    JS_CFUNC_MAGIC_DEF("warn", 1, js_node, 1),
    JS_CFUNC_MAGIC_DEF("error", 1, js_node, 2),
};

static const JSCFunctionListEntry cache_funcs[] = {
    JS_CFUNC_MAGIC_DEF("set", 2, js_store_set, SPACE_CACHE),
    JS_CFUNC_MAGIC_DEF("get", 1, js_store_get, SPACE_CACHE),
    JS_CFUNC_DEF("exists", 1, js_cache_exists),
    JS_CFUNC_DEF("delete", 1, js_cache_delete),
};

#define STORE_FUNCS(space)                                                                         \
    {                                                                                              \
        JS_CFUNC_MAGIC_DEF("get", 1, js_store_get, space),                                         \
            JS_CFUNC_MAGIC_DEF("set", 2, js_store_set, space)                                      \
    }
static const JSCFunctionListEntry context_funcs[] = STORE_FUNCS(SPACE_CONTEXT);
static const JSCFunctionListEntry flow_funcs[] = STORE_FUNCS(SPACE_FLOW);
static const JSCFunctionListEntry global_funcs[] = STORE_FUNCS(SPACE_GLOBAL);

/* Sets globalThis[name] to a new object with funcs; -1 on failure. */
static int install_object(JSContext *ctx, JSValueConst global, const char *name,
                          const JSCFunctionListEntry *funcs, int n)
{
    JSValue o = JS_NewObject(ctx);
    if (JS_IsException(o))
        return -1;
    JS_SetPropertyFunctionList(ctx, o, funcs, n);
    return JS_SetPropertyStr(ctx, global, name, o) < 0 ? -1 : 0; /* takes o */
}

#define N_FUNCS(a) ((int)(sizeof(a) / sizeof((a)[0])))

int tp__js_env_install(struct tp_js_vm *vm)
{
    JSContext *ctx = vm->ctx;
    JSValue global = JS_GetGlobalObject(ctx);
    int rc =
        install_object(ctx, global, "console", console_funcs, N_FUNCS(console_funcs)) ||
                install_object(ctx, global, "cache", cache_funcs, N_FUNCS(cache_funcs)) ||
                install_object(ctx, global, "node", node_funcs, N_FUNCS(node_funcs)) ||
                install_object(ctx, global, "context", context_funcs, N_FUNCS(context_funcs)) ||
                install_object(ctx, global, "flow", flow_funcs, N_FUNCS(flow_funcs)) ||
                install_object(ctx, global, "global", global_funcs, N_FUNCS(global_funcs))
            ? -1
            : 0;
    JS_FreeValue(ctx, global);
    return rc;
}

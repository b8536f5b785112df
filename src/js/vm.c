/* The per-worker QuickJS VM: runtime + context with a memory limit, a stack
 * limit and an interrupt handler enforcing the per-message deadline, the
 * classification of exceptions into drop reasons (SPEC 3.10, 4.2), and every
 * per-VM cache: key atoms, key texts, value strings, kept shapes and the
 * recycled msg/meta objects (through qjs_internals.c when it is usable). */
#include "js/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/stats.h"
#include "js/js_internal.h"
#include "js/qjs_internals.h"

#define TP_JS_STACK_SIZE (1024 * 1024)

static int naive_on = 0, native_if_on = 1;

void tp_js_set_naive(int on)
{
    __atomic_store_n(&naive_on, on ? 1 : 0, __ATOMIC_RELAXED);
}

int tp_js_naive(void)
{
    return __atomic_load_n(&naive_on, __ATOMIC_RELAXED);
}

void tp_js_set_native_if(int on)
{
    __atomic_store_n(&native_if_on, on ? 1 : 0, __ATOMIC_RELAXED);
}

int tp_js_native_if(void)
{
    return __atomic_load_n(&native_if_on, __ATOMIC_RELAXED);
}

/* Called by QuickJS every few thousand operations (and, with our patch, from
 * regular-expression backtracking). Non-zero aborts the script.
 * The limit is on the time the message's JavaScript ran, not on the time
 * that passed: the cheap wall-clock deadline only triggers a look at the
 * thread's CPU time (sampled first at the first check, so only messages
 * that run long pay the system calls). A thread the machine did not run
 * for a while (load, SIGSTOP) gets the rest of its budget. */
static int interrupt_handler(JSRuntime *rt, void *opaque)
{
    (void)rt;
    struct tp_js_vm *vm = opaque;
    if (vm->deadline_ns == 0)
        return 0;
    if (vm->interrupted)
        return 1;
    if (vm->cpu_base_ns == 0)
        vm->cpu_base_ns = tp_thread_cpu_ns();
    if (tp_mono_coarse_ns() < vm->deadline_ns)
        return 0;
    int64_t ran = tp_thread_cpu_ns() - vm->cpu_base_ns;
    if (ran >= vm->timeout_ns) {
        vm->interrupted = 1;
        return 1;
    }
    vm->deadline_ns = tp_mono_coarse_ns() + (vm->timeout_ns - ran);
    return 0;
}

static int caches_init(struct tp_js_vm *vm);
static void caches_free(struct tp_js_vm *vm);
static void free_shapes(struct tp_js_vm *vm);

int tp__js_vm_init(struct tp_js_vm *vm, const struct tp_js_limits *lim, const char *label,
                   struct tp_js_cache *cache, struct tp_stats *stats, struct tp_error *err)
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
    if (tp__js_env_install(vm) != 0 || caches_init(vm) != 0) {
        tp__js_vm_fini(vm);
        return tp_error_set(err, TP_NOMEM, "cannot install the JavaScript environment");
    }
    /* The limit applies to scripts, after the built-ins are in place. */
    JS_SetMemoryLimit(vm->rt, vm->mem_limit);
    TP_STAT_ADD(stats, vms_created, 1);
    return 0;
}

void tp__js_vm_fini(struct tp_js_vm *vm)
{
    if (vm->ctx) {
        free_shapes(vm);
        caches_free(vm);
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
    vm->cpu_base_ns = 0;
}

void tp__js_vm_disarm(struct tp_js_vm *vm)
{
    vm->deadline_ns = 0;
    vm->interrupted = 0;
    vm->host_oom = 0;
}

int tp__js_vm_run_jobs(struct tp_js_vm *vm, enum tp_drop_reason *reason, char *buf, size_t n)
{
    if (!JS_IsJobPending(vm->rt))
        return 0;
    int was_interrupted = vm->interrupted, rc = 0;
    tp__js_pool_take_failures(vm->pool); /* from the stages: already accounted */
    JSContext *jctx;
    while (JS_IsJobPending(vm->rt))
        if (JS_ExecutePendingJob(vm->rt, &jctx) < 0)
            JS_FreeValue(vm->ctx, JS_GetException(vm->ctx));
    unsigned failures = tp__js_pool_take_failures(vm->pool);
    if (vm->host_oom || (failures & TP_JS_POOL_HOST)) {
        rc = -1;
    } else if (vm->interrupted && !was_interrupted) {
        *reason = TP_DROP_JS_TIMEOUT;
        snprintf(buf, n, "JavaScript timeout: a Promise job ran past the message's %lld ms",
                 (long long)(vm->timeout_ns / 1000000));
        rc = 1;
    } else if (failures & TP_JS_POOL_LIMIT) {
        *reason = TP_DROP_JS_MEMORY;
        snprintf(buf, n, "InternalError: out of memory in a Promise job (memory_limit_mb %zu)",
                 vm->mem_limit >> 20);
        rc = 1;
    }
    if (failures & (TP_JS_POOL_LIMIT | TP_JS_POOL_HOST))
        JS_RunGC(vm->rt);
    return rc;
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

/* ---- per-VM caches ---- */

/* A sampling hash of s (its length and first and last 8 bytes), cheaper
 * than tp_hash_bytes on this per-key path: collisions only cost a cache
 * miss, every hit is confirmed by tp__js_same_bytes. */
static uint64_t sample_hash(const char *s, size_t n)
{
    uint64_t a, b = 0;
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
    } else {
        a = tp__js_small_word(s, n);
    }
    /* products move entropy up: the slot index is taken from the top bits */
    uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ n;
    h ^= h >> 31;
    return (h * 0xD6E8FEB86659FD93ull) >> 40;
}

/* The caches, the spares and (when qjs_internals.c is usable) the
 * {payload, meta} template whose shape identifies msg objects. */
static int caches_init(struct tp_js_vm *vm)
{
    vm->caches = calloc(1, sizeof(*vm->caches));
    if (!vm->caches)
        return TP_NOMEM;
    for (int i = 0; i < TP_JS_VAL_SLOTS; i++)
        vm->caches->vals[i].str = JS_UNDEFINED;
    vm->spare_msg = vm->spare_meta = vm->msg_tmpl = JS_UNDEFINED;
    /* Without a live {} every new object (JSON payloads, meta) would create
     * and free its empty shape. */
    vm->empty_tmpl = JS_NewObject(vm->ctx);
    if (JS_IsException(vm->empty_tmpl)) {
        vm->empty_tmpl = JS_UNDEFINED;
        return TP_NOMEM;
    }
    vm->peek_ok = tp__qjs_check(vm->ctx);
    static int told; /* once per process */
    if (!__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
        tp_log(TP_LOG_DEBUG, "JavaScript fast paths: %s",
               vm->peek_ok          ? "QuickJS internals in use"
               : tp__qjs_built_in() ? "off (QuickJS internals do not match this QuickJS)"
                                    : "off (built with TP_QJS_INTERNALS=OFF: public API only)");
    if (vm->peek_ok) {
        JSContext *ctx = vm->ctx;
        JSValue o = JS_NewObject(ctx);
        if (JS_IsException(o) ||
            JS_DefinePropertyValue(ctx, o, vm->a_payload, JS_UNDEFINED, JS_PROP_C_W_E) < 0 ||
            JS_DefinePropertyValue(ctx, o, vm->a_meta, JS_UNDEFINED, JS_PROP_C_W_E) < 0) {
            JS_FreeValue(ctx, o);
            return TP_NOMEM;
        }
        vm->obj_proto = tp__qjs_proto(o);
        vm->msg_shape = tp__qjs_shape(o);
        vm->msg_tmpl = o;
        vm->in_memo = calloc(1, sizeof(*vm->in_memo));
        vm->out_memo = calloc(1, sizeof(*vm->out_memo));
        if (!vm->in_memo || !vm->out_memo)
            return TP_NOMEM;
        vm->in_memo->kept = vm->out_memo->pin = JS_UNDEFINED;
    }
    return 0;
}

static void caches_free(struct tp_js_vm *vm)
{
    struct tp_js_caches *c = vm->caches;
    if (!c)
        return;
    JS_FreeValue(vm->ctx, vm->spare_msg);
    JS_FreeValue(vm->ctx, vm->spare_meta);
    JS_FreeValue(vm->ctx, vm->msg_tmpl);
    JS_FreeValue(vm->ctx, vm->empty_tmpl);
    if (vm->in_memo)
        tp__js_in_memo_clear(vm);
    if (vm->out_memo)
        tp__js_out_memo_clear(vm);
    free(vm->in_memo);
    free(vm->out_memo);
    vm->in_memo = NULL;
    vm->out_memo = NULL;
    vm->spare_msg = vm->spare_meta = vm->msg_tmpl = vm->empty_tmpl = JS_UNDEFINED;
    vm->msg_shape = NULL;
    for (int i = 0; i < TP_JS_KEY_SLOTS; i++) {
        if (c->keys[i].atom != JS_ATOM_NULL)
            JS_FreeAtom(vm->ctx, c->keys[i].atom);
        if (c->atoms[i].atom != JS_ATOM_NULL)
            JS_FreeAtom(vm->ctx, c->atoms[i].atom);
    }
    for (int i = 0; i < TP_JS_VAL_SLOTS; i++)
        JS_FreeValue(vm->ctx, c->vals[i].str);
    free(c);
    vm->caches = NULL;
}

JSAtom tp__js_atom_utf8(JSContext *ctx, const char *s, size_t n)
{
    if (tp__js_all_ascii(s, n)) /* ASCII bytes match only the same ASCII atom */
        return JS_NewAtomLen(ctx, s, n);
    JSValue str = JS_NewStringLen(ctx, s, n);
    if (JS_IsException(str))
        return JS_ATOM_NULL;
    JSAtom a = JS_ValueToAtom(ctx, str);
    JS_FreeValue(ctx, str);
    return a;
}

JSAtom tp__js_key_atom(struct tp_js_vm *vm, const char *s, size_t n)
{
    if (!vm->caches || n > sizeof(vm->caches->keys[0].bytes))
        return tp__js_atom_utf8(vm->ctx, s, n);
    uint64_t h = sample_hash(s, n);
    struct tp_js_key_slot *sl = &vm->caches->keys[h % TP_JS_KEY_SLOTS];
    if (sl->atom != JS_ATOM_NULL && sl->len == n && tp__js_same_bytes(sl->bytes, s, n))
        return JS_DupAtom(vm->ctx, sl->atom);
    JSAtom a = tp__js_atom_utf8(vm->ctx, s, n);
    if (a == JS_ATOM_NULL)
        return a;
    if (sl->atom != JS_ATOM_NULL)
        JS_FreeAtom(vm->ctx, sl->atom);
    sl->atom = JS_DupAtom(vm->ctx, a);
    sl->len = (uint32_t)n;
    memcpy(sl->bytes, s, n);
    return a;
}

JSValue tp__js_meta_value(struct tp_js_vm *vm, const char *s, size_t n, int *ascii)
{
    int dummy;
    if (!ascii)
        ascii = &dummy;
    if (!vm->caches || !vm->peek_ok || n > 64) {
        *ascii = tp__js_all_ascii(s, n);
        return JS_NewStringLen(vm->ctx, s, n);
    }
    uint64_t h = sample_hash(s, n);
    struct tp_js_val_slot *sl = &vm->caches->vals[h % TP_JS_VAL_SLOTS];
    /* cached strings are ASCII: equal bytes mean an equal string */
    *ascii = 1;
    if (sl->bytes && sl->len == n && tp__js_same_bytes(sl->bytes, s, n))
        return JS_DupValue(vm->ctx, sl->str);
    if (!tp__js_all_ascii(s, n)) {
        *ascii = 0;
        return JS_NewStringLen(vm->ctx, s, n);
    }
    JSValue v = JS_NewStringLen(vm->ctx, s, n);
    if (JS_IsException(v))
        return v;
    JS_FreeValue(vm->ctx, sl->str);
    sl->str = JS_DupValue(vm->ctx, v);
    sl->bytes = tp__qjs_latin1(v, &sl->len); /* an 8-bit string: ASCII */
    return v;
}

/* 1 when s is a canonical array index above the tagged-int range: such keys
 * are listed first by JS_GetOwnPropertyNames, so the shape order is not the
 * enumeration order. */
static int index_like(const char *s, size_t n)
{
    if (n == 0 || n > 10 || (s[0] == '0' && n > 1))
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v <= 4294967294ull;
}

const struct tp_js_atom_slot *tp__js_atom_key_miss(struct tp_js_vm *vm, JSAtom a)
{
    static const struct tp_js_atom_slot slow = {.kind = TP_JS_KEY_SLOW};
    struct tp_js_atom_slot *sl = &vm->caches->atoms[(a * 2654435761u) % TP_JS_KEY_SLOTS];
    JSContext *ctx = vm->ctx;
    JSValue v = JS_AtomToValue(ctx, a);
    int kind = TP_JS_KEY_SLOW;
    size_t len = 0;
    const char *s = NULL;
    if (JS_VALUE_GET_TAG(v) == JS_TAG_SYMBOL) {
        kind = TP_JS_KEY_SKIP;
    } else if (JS_IsString(v)) {
        s = JS_ToCStringLen(ctx, &len, v);
        if (s && len <= sizeof(sl->bytes) && !index_like(s, len))
            kind = TP_JS_KEY_STRING;
    }
    JS_FreeValue(ctx, v);
    if (!s && kind != TP_JS_KEY_SKIP) {
        JS_FreeValue(ctx, JS_GetException(ctx)); /* out of memory: the slow path reports it */
        return &slow;
    }
    if (sl->atom != JS_ATOM_NULL)
        JS_FreeAtom(ctx, sl->atom);
    sl->atom = JS_DupAtom(ctx, a);
    sl->kind = (uint16_t)kind;
    sl->len = (uint16_t)(kind == TP_JS_KEY_STRING ? len : 0);
    if (kind == TP_JS_KEY_STRING)
        memcpy(sl->bytes, s, len);
    if (s)
        JS_FreeCString(ctx, s);
    return sl;
}

static void free_slots(struct tp_js_vm *vm, struct tp_js_shape_slot *slots)
{
    for (int i = 0; i < TP_JS_SHAPE_SLOTS; i++) {
        struct tp_js_shape_slot *sl = &slots[i];
        for (uint32_t k = 0; sl->objs && k < sl->n; k++)
            JS_FreeValue(vm->ctx, sl->objs[k]);
        free(sl->objs);
        memset(sl, 0, sizeof(*sl));
    }
}

static void free_shapes(struct tp_js_vm *vm)
{
    free_slots(vm, vm->shapes);
    free_slots(vm, vm->json_shapes);
}

static uint64_t shape_sig(const JSAtom *atoms, uint32_t n)
{
    uint64_t sig = 1469598103934665603ull ^ n;
    for (uint32_t i = 0; i < n; i++)
        sig = (sig ^ atoms[i]) * 1099511628211ull;
    return sig;
}

/* The slot of slots keeping sig, or NULL; *victim gets the slot to replace. */
static struct tp_js_shape_slot *find_slot(struct tp_js_vm *vm, struct tp_js_shape_slot *slots,
                                          uint64_t sig, uint32_t n,
                                          struct tp_js_shape_slot **victim)
{
    *victim = &slots[0];
    for (int i = 0; i < TP_JS_SHAPE_SLOTS; i++) {
        struct tp_js_shape_slot *sl = &slots[i];
        if (sl->objs && sl->sig == sig && sl->n == n) {
            sl->used = ++vm->shape_tick;
            return sl;
        }
        if (!sl->objs || sl->used < (*victim)->used)
            *victim = sl;
        if (!sl->objs)
            break;
    }
    return NULL;
}

/* Fills victim with an object for every prefix of atoms. */
static const JSValue *keep_in(struct tp_js_vm *vm, struct tp_js_shape_slot *victim,
                              const JSAtom *atoms, uint32_t n, uint64_t sig)
{
    JSContext *ctx = vm->ctx;
    for (uint32_t k = 0; victim->objs && k < victim->n; k++)
        JS_FreeValue(ctx, victim->objs[k]);
    free(victim->objs);
    memset(victim, 0, sizeof(*victim));
    JSValue *objs = malloc(n * sizeof(*objs));
    if (!objs)
        return NULL;
    for (uint32_t k = 0; k < n; k++) {
        objs[k] = JS_NewObject(ctx);
        for (uint32_t j = 0; j <= k && !JS_IsException(objs[k]); j++) {
            if (JS_DefinePropertyValue(ctx, objs[k], atoms[j], JS_UNDEFINED, JS_PROP_C_W_E) < 0) {
                JS_FreeValue(ctx, objs[k]);
                objs[k] = JS_EXCEPTION;
            }
        }
        if (JS_IsException(objs[k])) { /* out of memory: keep nothing */
            JS_FreeValue(ctx, JS_GetException(ctx));
            for (uint32_t j = 0; j < k; j++)
                JS_FreeValue(ctx, objs[j]);
            free(objs);
            return NULL;
        }
    }
    victim->objs = objs;
    victim->n = n;
    victim->sig = sig;
    victim->used = ++vm->shape_tick;
    return &objs[n - 1];
}

const JSValue *tp__js_keep_shapes(struct tp_js_vm *vm, const JSAtom *atoms, uint32_t n)
{
    if (n == 0 || n > TP_JS_SHAPE_MAX_KEYS)
        return NULL;
    uint64_t sig = shape_sig(atoms, n);
    struct tp_js_shape_slot *victim, *sl = find_slot(vm, vm->shapes, sig, n, &victim);
    return sl ? &sl->objs[n - 1] : keep_in(vm, victim, atoms, n, sig);
}

const JSValue *tp__js_keep_json_shape(struct tp_js_vm *vm, const JSAtom *atoms, uint32_t n)
{
    if (n == 0 || n > TP_JS_SHAPE_MAX_KEYS)
        return NULL;
    uint64_t sig = shape_sig(atoms, n);
    struct tp_js_shape_slot *victim, *sl = find_slot(vm, vm->json_shapes, sig, n, &victim);
    if (sl)
        return &sl->objs[n - 1];
    uint64_t *seen = &vm->json_seen[sig % TP_JS_JSON_SEEN];
    if (*seen != sig) {
        *seen = sig;
        return NULL;
    }
    return keep_in(vm, victim, atoms, n, sig);
}

void tp__js_in_ident_clear(struct tp_js_vm *vm)
{
    struct tp_js_in_memo *im = vm->in_memo;
    if (!im)
        return;
    for (uint32_t i = 0; i < im->nvals; i++)
        JS_FreeValue(vm->ctx, im->vals[i]);
    im->nvals = 0;
    im->msg = NULL;
}

void tp__js_in_memo_clear(struct tp_js_vm *vm)
{
    struct tp_js_in_memo *im = vm->in_memo;
    tp__js_in_ident_clear(vm);
    for (uint32_t i = 0; i < im->n; i++)
        JS_FreeAtom(vm->ctx, im->atoms[i]);
    JS_FreeValue(vm->ctx, im->kept);
    im->n = 0;
    im->kept = JS_UNDEFINED;
}

void tp__js_out_memo_clear(struct tp_js_vm *vm)
{
    struct tp_js_out_memo *om = vm->out_memo;
    JS_FreeValue(vm->ctx, om->pin);
    om->shape = NULL;
    om->pin = JS_UNDEFINED;
}

/* ---- recycled msg and meta objects ----
 * A finished message's objects that nothing else references (reference count
 * 1: ours) are kept as spares. The next msg object takes the spare msg (same
 * {payload, meta} shape, values written in place) and the next meta object
 * takes the spare meta, switched to the shape of the new key sequence (a
 * shape kept alive by tp__js_keep_shapes, so only reference counts change).
 * This replaces two object allocations and a property definition per key,
 * the largest per-message cost of building msg. */

void tp__js_msg_release(struct tp_js_vm *vm, JSValue msg)
{
    JSContext *ctx = vm->ctx;
    if (!vm->peek_ok || !JS_IsUndefined(vm->spare_msg) ||
        !tp__qjs_reusable(msg, vm->msg_shape, vm->obj_proto)) {
        JS_FreeValue(ctx, msg);
        return;
    }
    JSValue payload = tp__qjs_slot_swap(msg, 0, JS_UNDEFINED);
    JSValue meta = tp__qjs_slot_swap(msg, 1, JS_UNDEFINED);
    vm->spare_msg = msg;
    JS_FreeValue(ctx, payload);
    if (JS_IsUndefined(vm->spare_meta) && tp__qjs_reusable(meta, NULL, vm->obj_proto))
        vm->spare_meta = meta;
    else
        JS_FreeValue(ctx, meta);
}

JSValue tp__js_msg_reuse(struct tp_js_vm *vm, JSValue payload, JSValue meta)
{
    JSValue msg = vm->spare_msg;
    if (JS_IsUndefined(msg))
        return JS_UNDEFINED;
    vm->spare_msg = JS_UNDEFINED;
    tp__qjs_slot_swap(msg, 0, payload); /* the spare holds undefined: nothing to free */
    tp__qjs_slot_swap(msg, 1, meta);
    return msg;
}

JSValue tp__js_meta_reuse(struct tp_js_vm *vm, const JSValue *kept, const JSAtom *atoms, uint32_t n,
                          JSValue *vals)
{
    JSValue meta = vm->spare_meta;
    if (JS_IsUndefined(meta) || !kept || n == 0)
        return JS_UNDEFINED;
    int rc = tp__qjs_reshape(vm->ctx, meta, *kept, atoms, n, vals, vm->obj_proto);
    if (rc == 1)
        return JS_UNDEFINED;
    vm->spare_meta = JS_UNDEFINED;
    if (rc < 0) {
        JS_FreeValue(vm->ctx, meta);
        return JS_UNDEFINED;
    }
    return meta;
}

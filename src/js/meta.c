/* Metadata fast paths of the bridge: per-VM caches (key bytes -> atom,
 * atom -> key bytes, repeated value bytes -> JS string) and the reading of
 * metadata objects straight from their QuickJS shape (peek.h) instead of
 * JS_GetOwnPropertyNames + JS_GetProperty + JS_ToCString per entry. Every fast
 * path declines (returns "not handled") on anything unusual: the public-API
 * walk in bridge.c is the reference behaviour. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tp_assert.h"
#include "js/bridge.h"
#include "js/peek.h"

enum { KEY_STRING = 1, KEY_SKIP, KEY_SLOW };

static uint64_t load_tail(const char *s, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, s, n);
    return w;
}

/* A sampling hash of s (its length and first and last 8 bytes), cheaper
 * than tp_hash_bytes on this per-key path: collisions only cost a cache
 * miss, every hit is confirmed by same_bytes. */
static uint64_t sample_hash(const char *s, size_t n)
{
    uint64_t a, b;
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
    } else {
        a = load_tail(s, n);
        b = 0;
    }
    /* products move entropy up: the slot index is taken from the top bits */
    uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ n;
    h ^= h >> 31;
    return (h * 0xD6E8FEB86659FD93ull) >> 40;
}

static int same_bytes(const void *x, const void *y, size_t n)
{
    const char *a = x, *b = y;
    uint64_t u, v;
    if (n < 8)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&u, a + i, 8);
        memcpy(&v, b + i, 8);
        if (u != v)
            return 0;
    }
    memcpy(&u, a + n - 8, 8);
    memcpy(&v, b + n - 8, 8);
    return u == v;
}

static int all_ascii(const char *s, size_t n)
{
    uint64_t hi = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        hi |= w;
    }
    if (i < n)
        hi |= load_tail(s + i, n - i);
    return (hi & 0x8080808080808080ull) == 0;
}

int tp__js_caches_init(struct tp_js_vm *vm)
{
    vm->caches = calloc(1, sizeof(*vm->caches));
    if (!vm->caches)
        return TP_NOMEM;
    for (int i = 0; i < TP_JS_VAL_SLOTS; i++)
        vm->caches->vals[i] = JS_UNDEFINED;
    vm->spare_msg = vm->spare_meta = vm->msg_tmpl = JS_UNDEFINED;
    vm->peek_ok = tp__js_peek_check(vm->ctx);
    if (vm->peek_ok) {
        JSContext *ctx = vm->ctx;
        JSValue o = JS_NewObject(ctx);
        if (JS_IsException(o) ||
            JS_DefinePropertyValue(ctx, o, vm->a_payload, JS_UNDEFINED, JS_PROP_C_W_E) < 0 ||
            JS_DefinePropertyValue(ctx, o, vm->a_meta, JS_UNDEFINED, JS_PROP_C_W_E) < 0) {
            JS_FreeValue(ctx, o);
            return TP_NOMEM;
        }
        struct tpq_object *p = tpq_plain_object(o);
        vm->obj_proto = p->shape->proto;
        vm->msg_shape = p->shape;
        vm->msg_tmpl = o;
    }
    return 0;
}

void tp__js_caches_free(struct tp_js_vm *vm)
{
    struct tp_js_caches *c = vm->caches;
    if (!c)
        return;
    tp__js_spares_free(vm);
    for (int i = 0; i < TP_JS_KEY_SLOTS; i++) {
        if (c->keys[i].atom != JS_ATOM_NULL)
            JS_FreeAtom(vm->ctx, c->keys[i].atom);
        if (c->atoms[i].atom != JS_ATOM_NULL)
            JS_FreeAtom(vm->ctx, c->atoms[i].atom);
    }
    for (int i = 0; i < TP_JS_VAL_SLOTS; i++)
        JS_FreeValue(vm->ctx, c->vals[i]);
    free(c);
    vm->caches = NULL;
}

JSAtom tp__js_key_atom(struct tp_js_vm *vm, const char *s, size_t n)
{
    if (!vm->caches || n > sizeof(vm->caches->keys[0].bytes))
        return JS_NewAtomLen(vm->ctx, s, n);
    uint64_t h = sample_hash(s, n);
    struct tp_js_key_slot *sl = &vm->caches->keys[h % TP_JS_KEY_SLOTS];
    if (sl->atom != JS_ATOM_NULL && sl->len == n && same_bytes(sl->bytes, s, n))
        return JS_DupAtom(vm->ctx, sl->atom);
    JSAtom a = JS_NewAtomLen(vm->ctx, s, n);
    if (a == JS_ATOM_NULL)
        return a;
    if (sl->atom != JS_ATOM_NULL)
        JS_FreeAtom(vm->ctx, sl->atom);
    sl->atom = JS_DupAtom(vm->ctx, a);
    sl->len = (uint32_t)n;
    memcpy(sl->bytes, s, n);
    return a;
}

JSValue tp__js_meta_value(struct tp_js_vm *vm, const char *s, size_t n)
{
    if (!vm->caches || !vm->peek_ok || n > 64)
        return JS_NewStringLen(vm->ctx, s, n);
    uint64_t h = sample_hash(s, n);
    JSValue *sl = &vm->caches->vals[h % TP_JS_VAL_SLOTS];
    if (JS_VALUE_GET_TAG(*sl) == JS_TAG_STRING) {
        /* cached strings are ASCII: equal bytes mean an equal string */
        struct tpq_string *str = tpq_string(*sl);
        if (str->len == n && !str->is_wide_char && same_bytes(str->u.str8, s, n))
            return JS_DupValue(vm->ctx, *sl);
    }
    if (!all_ascii(s, n))
        return JS_NewStringLen(vm->ctx, s, n);
    JSValue v = JS_NewStringLen(vm->ctx, s, n);
    if (JS_IsException(v))
        return v;
    JS_FreeValue(vm->ctx, *sl);
    *sl = JS_DupValue(vm->ctx, v);
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

/* The cached key text of a string-keyed property atom. */
static const struct tp_js_atom_slot *atom_slot(struct tp_js_vm *vm, JSAtom a)
{
    static const struct tp_js_atom_slot slow = {.kind = KEY_SLOW};
    if (a & TPQ_ATOM_TAG_INT)
        return &slow;
    struct tp_js_atom_slot *sl = &vm->caches->atoms[(a * 2654435761u) % TP_JS_KEY_SLOTS];
    if (sl->atom == a)
        return sl;
    JSContext *ctx = vm->ctx;
    JSValue v = JS_AtomToValue(ctx, a);
    int kind = KEY_SLOW;
    size_t len = 0;
    const char *s = NULL;
    if (JS_VALUE_GET_TAG(v) == JS_TAG_SYMBOL) {
        kind = KEY_SKIP;
    } else if (JS_IsString(v)) {
        s = JS_ToCStringLen(ctx, &len, v);
        if (s && len <= sizeof(sl->bytes) && !index_like(s, len))
            kind = KEY_STRING;
    }
    JS_FreeValue(ctx, v);
    if (!s && kind != KEY_SKIP) {
        JS_FreeValue(ctx, JS_GetException(ctx)); /* out of memory: the slow path reports it */
        return &slow;
    }
    if (sl->atom != JS_ATOM_NULL)
        JS_FreeAtom(ctx, sl->atom);
    sl->atom = JS_DupAtom(ctx, a);
    sl->kind = (uint16_t)kind;
    sl->len = (uint16_t)(kind == KEY_STRING ? len : 0);
    if (kind == KEY_STRING)
        memcpy(sl->bytes, s, len);
    if (s)
        JS_FreeCString(ctx, s);
    return sl;
}

int tp__js_meta_strings_only(struct tp_js_vm *vm, JSValueConst meta)
{
    if (!vm->peek_ok)
        return 0;
    struct tpq_object *p = tpq_plain_object(meta);
    if (!p)
        return 0;
    const struct tpq_shape *sh = p->shape;
    for (int i = 0; i < sh->prop_count; i++) {
        const struct tpq_shape_prop *pr = &sh->prop[i];
        if (pr->atom == JS_ATOM_NULL)
            continue;
        if ((pr->flags & JS_PROP_TMASK) != JS_PROP_NORMAL ||
            JS_VALUE_GET_TAG(p->prop[i].u.value) != JS_TAG_STRING)
            return 0;
    }
    return 1;
}

/* Bytes of a JS string for metadata: Latin-1 strings need one byte more per
 * character >= 0x80 in UTF-8. Returns the UTF-8 length, or -1 for a wide string. */
static int64_t utf8_len(const struct tpq_string *s)
{
    if (s->is_wide_char)
        return -1;
    size_t n = s->len, extra = 0;
    const char *b = (const char *)s->u.str8;
    if (all_ascii(b, n))
        return (int64_t)n;
    for (size_t i = 0; i < n; i++)
        extra += (uint8_t)b[i] >> 7;
    return (int64_t)(n + extra);
}

/* Writes the Latin-1 string s as UTF-8 (utf8_len bytes) to o. */
static void put_latin1(char *o, const struct tpq_string *s)
{
    const uint8_t *b = s->u.str8;
    for (uint32_t i = 0; i < s->len; i++) {
        if (b[i] < 0x80) {
            *o++ = (char)b[i];
        } else {
            *o++ = (char)(0xc0 | (b[i] >> 6));
            *o++ = (char)(0x80 | (b[i] & 0x3f));
        }
    }
}

#define FAST_MAX_KEYS 64

int tp__js_meta_export_fast(struct tp_js_vm *vm, JSValueConst meta, struct tp_msg *m)
{
    if (!vm->peek_ok || !vm->caches)
        return 1;
    struct tpq_object *p = tpq_plain_object(meta);
    if (!p || p->shape->prop_count > FAST_MAX_KEYS)
        return 1;
    const struct tpq_shape *sh = p->shape;
    const struct tp_js_atom_slot *keys[FAST_MAX_KEYS];
    int64_t vlen[FAST_MAX_KEYS];
    JSAtom seq[FAST_MAX_KEYS], atoms[FAST_MAX_KEYS];
    uint32_t n = 0;
    size_t bytes = 0;
    /* Pass 1: everything must be plain data whose text needs no JavaScript. */
    for (int i = 0; i < sh->prop_count; i++) {
        const struct tpq_shape_prop *pr = &sh->prop[i];
        keys[i] = NULL;
        if (pr->atom == JS_ATOM_NULL)
            continue;
        if ((pr->flags & JS_PROP_TMASK) != JS_PROP_NORMAL)
            return 1;
        if (!(pr->flags & JS_PROP_ENUMERABLE))
            continue;
        const struct tp_js_atom_slot *k = atom_slot(vm, pr->atom);
        if (k->kind == KEY_SLOW)
            return 1;
        if (k->kind == KEY_SKIP)
            continue;
        JSValueConst v = p->prop[i].u.value;
        switch (JS_VALUE_GET_TAG(v)) {
        case JS_TAG_STRING:
            vlen[i] = utf8_len(tpq_string(v));
            if (vlen[i] < 0)
                return 1;
            break;
        case JS_TAG_INT:
        case JS_TAG_FLOAT64:
            vlen[i] = 32; /* room; written below */
            break;
        case JS_TAG_BOOL:
            vlen[i] = JS_VALUE_GET_BOOL(v) ? 4 : 5;
            break;
        case JS_TAG_NULL:
        case JS_TAG_UNDEFINED:
            continue; /* removed */
        default:
            return 1;
        }
        keys[i] = k;
        atoms[i] = pr->atom;
        seq[n++] = pr->atom;
        bytes += k->len + (size_t)vlen[i] + 2;
    }
    /* A later miss may have reused the slot of an earlier key. */
    for (int i = 0; i < sh->prop_count; i++)
        if (keys[i] && keys[i]->atom != atoms[i])
            return 1;
    /* 2 more entries and room for umh_topic/topic, added by the output. */
    if (tp_msg_meta_reserve(m, n + 2, bytes + 256) != 0)
        return TP_NOMEM;
    for (int i = 0; i < sh->prop_count; i++) {
        const struct tp_js_atom_slot *k = keys[i];
        if (!k)
            continue;
        JSValueConst v = p->prop[i].u.value;
        char num[32];
        int rc;
        switch (JS_VALUE_GET_TAG(v)) {
        case JS_TAG_STRING: {
            const struct tpq_string *s = tpq_string(v);
            if ((uint32_t)vlen[i] == s->len) {
                rc = tp_msg_meta_append(m, k->bytes, k->len, (const char *)s->u.str8, s->len);
            } else {
                char *utf8 = malloc((size_t)vlen[i]);
                if (!utf8)
                    return TP_NOMEM;
                put_latin1(utf8, s);
                rc = tp_msg_meta_append(m, k->bytes, k->len, utf8, (size_t)vlen[i]);
                free(utf8);
            }
            break;
        }
        case JS_TAG_INT:
        case JS_TAG_FLOAT64: {
            double d =
                JS_VALUE_GET_TAG(v) == JS_TAG_INT ? JS_VALUE_GET_INT(v) : JS_VALUE_GET_FLOAT64(v);
            size_t len = tp_number_text(d, num);
            rc = tp_msg_meta_append(m, k->bytes, k->len, num, len);
            break;
        }
        default: /* bool */
            rc = JS_VALUE_GET_BOOL(v) ? tp_msg_meta_append(m, k->bytes, k->len, "true", 4)
                                      : tp_msg_meta_append(m, k->bytes, k->len, "false", 5);
        }
        if (rc != 0)
            return TP_NOMEM;
    }
    tp__js_keep_shapes(vm, seq, n);
    return 0;
}

int tp__js_peek_check(JSContext *ctx)
{
    JSValue o = JS_NewObject(ctx), arr = JS_NewArray(ctx);
    JSValue wide = JS_NewString(ctx, "\xc3\xa9\xe2\x82\xac"); /* U+00E9 U+20AC */
    JSAtom a = JS_NewAtom(ctx, "tp_peek_a"), b = JS_NewAtom(ctx, "tp_peek_b");
    int ok = !JS_IsException(o) && !JS_IsException(arr) && !JS_IsException(wide) &&
             a != JS_ATOM_NULL && b != JS_ATOM_NULL &&
             JS_DefinePropertyValue(ctx, o, a, JS_NewString(ctx, "xyz"), JS_PROP_C_W_E) >= 0 &&
             JS_DefinePropertyValue(ctx, o, b, JS_NewInt32(ctx, 7), JS_PROP_ENUMERABLE) >= 0;
    if (ok) {
        struct tpq_object *p = tpq_plain_object(o);
        ok = p && p->header.ref_count == 1 && p->shape->prop_count == 2 &&
             p->shape->deleted_prop_count == 0 && p->shape->prop[0].atom == a &&
             p->shape->prop[0].flags == JS_PROP_C_W_E && p->shape->prop[1].atom == b &&
             p->shape->prop[1].flags == JS_PROP_ENUMERABLE &&
             JS_VALUE_GET_TAG(p->prop[0].u.value) == JS_TAG_STRING &&
             JS_VALUE_GET_TAG(p->prop[1].u.value) == JS_TAG_INT &&
             JS_VALUE_GET_INT(p->prop[1].u.value) == 7;
        if (ok) {
            struct tpq_string *s = tpq_string(p->prop[0].u.value);
            ok = s->len == 3 && !s->is_wide_char && memcmp(s->u.str8, "xyz", 4) == 0;
        }
        /* two objects with the same keys share one shape, counted twice */
        JSValue o2 = JS_NewObject(ctx);
        struct tpq_object *p2 = tpq_plain_object(o2);
        ok = ok && p2 &&
             JS_DefinePropertyValue(ctx, o2, a, JS_NewString(ctx, "u"), JS_PROP_C_W_E) >= 0 &&
             JS_DefinePropertyValue(ctx, o2, b, JS_NewInt32(ctx, 8), JS_PROP_ENUMERABLE) >= 0 &&
             p2->shape == p->shape && p->shape->header.ref_count == 2 && !p2->first_weak_ref &&
             p2->extensible;
        JS_FreeValue(ctx, o2);
        ok = ok && p->shape->header.ref_count == 1;
        struct tpq_string *w = tpq_string(wide);
        ok = ok && !tpq_plain_object(arr) && w->len == 2 && w->is_wide_char &&
             w->u.str16[0] == 0xe9 && w->u.str16[1] == 0x20ac && w->ref_count == 1;
    }
    if (!ok)
        JS_FreeValue(ctx, JS_GetException(ctx)); /* JS_NULL when none */
    JS_FreeAtom(ctx, a);
    JS_FreeAtom(ctx, b);
    JS_FreeValue(ctx, o);
    JS_FreeValue(ctx, arr);
    JS_FreeValue(ctx, wide);
    return ok;
}

/* ---- recycling msg and meta objects ----
 * A finished message's objects that nothing else references (reference count
 * 1: ours) are kept as spares. The next msg object takes the spare msg (same
 * {payload, meta} shape, values written in place) and the next meta object
 * takes the spare meta, switched to the shape of the new key sequence (a
 * shape kept alive by tp__js_keep_shapes, so only reference counts change).
 * This replaces two object allocations and a property definition per key,
 * the largest per-message cost of building msg. */

static int proto_ok(struct tp_js_vm *vm, const struct tpq_object *p)
{
    return p->shape->proto == vm->obj_proto && p->extensible && !p->first_weak_ref;
}

static int msg_shape_ok(struct tp_js_vm *vm, const struct tpq_object *p)
{
    return (void *)p->shape == vm->msg_shape && proto_ok(vm, p);
}

void tp__js_msg_release(struct tp_js_vm *vm, JSValue msg)
{
    JSContext *ctx = vm->ctx;
    struct tpq_object *p = vm->peek_ok ? tpq_plain_object(msg) : NULL;
    if (!p || p->header.ref_count != 1 || !JS_IsUndefined(vm->spare_msg) || !msg_shape_ok(vm, p)) {
        JS_FreeValue(ctx, msg);
        return;
    }
    JSValue payload = p->prop[0].u.value, meta = p->prop[1].u.value;
    p->prop[0].u.value = JS_UNDEFINED;
    p->prop[1].u.value = JS_UNDEFINED;
    vm->spare_msg = msg;
    JS_FreeValue(ctx, payload);
    struct tpq_object *m = tpq_plain_object(meta);
    if (m && m->header.ref_count == 1 && JS_IsUndefined(vm->spare_meta) && proto_ok(vm, m))
        vm->spare_meta = meta;
    else
        JS_FreeValue(ctx, meta);
}

JSValue tp__js_msg_take(struct tp_js_vm *vm, JSValue payload, JSValue meta)
{
    if (JS_IsUndefined(vm->spare_msg) || JS_IsException(payload) || JS_IsException(meta))
        return tp__js_msg_make(vm, payload, meta);
    JSValue msg = vm->spare_msg;
    struct tpq_object *p = JS_VALUE_GET_PTR(msg);
    TP_ASSERT(p->header.ref_count == 1 && (void *)p->shape == vm->msg_shape);
    vm->spare_msg = JS_UNDEFINED;
    p->prop[0].u.value = payload;
    p->prop[1].u.value = meta;
    return msg;
}

JSValue tp__js_meta_take(struct tp_js_vm *vm, const JSValue *kept, const JSAtom *atoms, uint32_t n,
                         JSValue *vals)
{
    JSContext *ctx = vm->ctx;
    if (JS_IsUndefined(vm->spare_meta) || !kept || n == 0)
        return JS_UNDEFINED;
    const struct tpq_object *k = tpq_plain_object(*kept);
    struct tpq_shape *sh = k ? k->shape : NULL;
    if (!sh || sh->prop_count != (int)n || sh->deleted_prop_count != 0 ||
        sh->proto != vm->obj_proto)
        return JS_UNDEFINED;
    for (uint32_t i = 0; i < n; i++)
        if (sh->prop[i].atom != atoms[i] || sh->prop[i].flags != JS_PROP_C_W_E)
            return JS_UNDEFINED;
    JSValue meta = vm->spare_meta;
    struct tpq_object *p = JS_VALUE_GET_PTR(meta);
    struct tpq_shape *old = p->shape;
    /* the spare is ours alone; the kept object holds a reference to sh */
    TP_ASSERT(p->header.ref_count == 1 && old->header.ref_count >= 1 && sh->header.ref_count >= 1);
    for (int i = 0; i < old->prop_count; i++)
        if (old->prop[i].atom != JS_ATOM_NULL && (old->prop[i].flags & JS_PROP_TMASK))
            return JS_UNDEFINED;
    if (sh->prop_size > old->prop_size) {
        void *np = js_realloc(ctx, p->prop, sizeof(struct tpq_property) * (size_t)sh->prop_size);
        if (!np) {
            JS_FreeValue(ctx, JS_GetException(ctx));
            return JS_UNDEFINED;
        }
        p->prop = np;
    }
    vm->spare_meta = JS_UNDEFINED;
    for (int i = 0; i < old->prop_count; i++) {
        if (old->prop[i].atom == JS_ATOM_NULL)
            continue;
        JSValue v = p->prop[i].u.value;
        p->prop[i].u.value = JS_UNDEFINED;
        JS_FreeValue(ctx, v);
    }
    if (old != sh) {
        /* Freeing the values may have dropped other users of the old shape:
         * p must not hold its last reference (only QuickJS may free shapes). */
        if (old->header.ref_count < 2) {
            JS_FreeValue(ctx, meta);
            return JS_UNDEFINED;
        }
        sh->header.ref_count++;
        old->header.ref_count--;
        TP_ASSERT(old->header.ref_count >= 1);
        p->shape = sh;
    }
    for (uint32_t i = 0; i < n; i++)
        p->prop[i].u.value = vals[i];
    return meta;
}

void tp__js_spares_free(struct tp_js_vm *vm)
{
    JS_FreeValue(vm->ctx, vm->spare_msg);
    JS_FreeValue(vm->ctx, vm->spare_meta);
    JS_FreeValue(vm->ctx, vm->msg_tmpl);
    vm->spare_msg = vm->spare_meta = vm->msg_tmpl = JS_UNDEFINED;
    vm->msg_shape = NULL;
}

/* The msg object when it has exactly the {payload, meta} shape, else NULL. */
static struct tpq_object *std_msg(struct tp_js_vm *vm, JSValueConst msg)
{
    if (!vm->msg_shape || JS_VALUE_GET_TAG(msg) != JS_TAG_OBJECT)
        return NULL;
    struct tpq_object *p = JS_VALUE_GET_PTR(msg);
    return (void *)p->shape == vm->msg_shape ? p : NULL;
}

JSValue tp__js_msg_get(struct tp_js_vm *vm, JSValueConst msg, JSAtom which)
{
    struct tpq_object *p = std_msg(vm, msg);
    if (p && (which == vm->a_payload || which == vm->a_meta))
        return JS_DupValue(vm->ctx, p->prop[which == vm->a_meta].u.value);
    return JS_GetProperty(vm->ctx, msg, which);
}

int tp__js_msg_is_plain(struct tp_js_vm *vm, JSValueConst msg)
{
    struct tpq_object *p = std_msg(vm, msg);
    return p && JS_VALUE_GET_TAG(p->prop[1].u.value) == JS_TAG_OBJECT;
}

/* msg <-> JSValue. The hot path of the engine: property names are interned
 * atoms kept by the VM, bare JSON numbers skip the JSON parser, and metadata
 * strings that are already strings are left untouched. */
#include "js/bridge.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "js/json_parse.h"
#include "js/qjs_internals.h"

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int word(const char *s, size_t n, const char *w)
{
    return n == strlen(w) && memcmp(s, w, n) == 0;
}

JSValue tp__js_payload_new(struct tp_js_vm *vm, const char *p, size_t len, uint32_t flags,
                           struct tp_orig_number *orig)
{
    JSContext *ctx = vm->ctx;
    if (orig)
        memset(orig, 0, sizeof(*orig));
    if (flags & TP_MSG_PAYLOAD_NOTJSON)
        return JS_NewStringLen(ctx, p, len);
    size_t b = 0, e = len;
    while (b < e && is_ws(p[b]))
        b++;
    while (e > b && is_ws(p[e - 1]))
        e--;
    if (b == e)
        return JS_NewStringLen(ctx, p, len);
    const char *s = p + b;
    size_t n = e - b;
    char c = s[0];
    if (c == '-' || is_digit(c)) {
        if (!tp_number_is(s, n, 0))
            return JS_NewStringLen(ctx, p, len);
        char tmp[64];
        double d;
        if (tp_number_fast(s, n, &d)) {
            /* the exact fast path: strtod's value without its cost */
        } else if (n < sizeof(tmp)) {
            memcpy(tmp, s, n);
            tmp[n] = '\0';
            d = strtod(tmp, NULL);
        } else {
            char *big = strndup(s, n);
            if (!big)
                return tp__js_throw_host_oom(vm);
            d = strtod(big, NULL);
            free(big);
        }
        if (orig) {
            orig->present = 1;
            orig->number = d;
            orig->text = s;
            orig->len = n;
        }
        if (d >= -2147483648.0 && d <= 2147483647.0 && (double)(int32_t)d == d &&
            !(d == 0 && s[0] == '-'))
            return JS_NewInt32(ctx, (int32_t)d);
        return JS_NewFloat64(ctx, d);
    }
    if (c == 't' && word(s, n, "true"))
        return JS_TRUE;
    if (c == 'f' && word(s, n, "false"))
        return JS_FALSE;
    if (c == 'n' && word(s, n, "null"))
        return JS_NULL;
    if (c == '"' || c == '{' || c == '[') {
        JSValue v = tp__js_json_parse(vm, s, n);
        if (!JS_IsUndefined(v))
            return v;
        /* The payload is NUL-terminated (tp_msg invariant), as JS_ParseJSON needs. */
        v = JS_ParseJSON(ctx, p, len, "<payload>");
        if (!JS_IsException(v))
            return v;
        JSValue ex = JS_GetException(ctx);
        int oom = !JS_IsObject(ex);
        JS_FreeValue(ctx, ex);
        if (oom)
            return JS_ThrowOutOfMemory(ctx);
    }
    return JS_NewStringLen(ctx, p, len);
}

JSValue tp__js_msg_make(struct tp_js_vm *vm, JSValue payload, JSValue meta)
{
    JSContext *ctx = vm->ctx;
    if (JS_IsException(payload) || JS_IsException(meta)) {
        JS_FreeValue(ctx, payload);
        JS_FreeValue(ctx, meta);
        return JS_EXCEPTION;
    }
    JSValue obj = JS_NewObject(ctx);
    if (JS_IsException(obj)) {
        JS_FreeValue(ctx, payload);
        JS_FreeValue(ctx, meta);
        return obj;
    }
    if (JS_DefinePropertyValue(ctx, obj, vm->a_payload, payload, JS_PROP_C_W_E) < 0 ||
        JS_DefinePropertyValue(ctx, obj, vm->a_meta, meta, JS_PROP_C_W_E) < 0) {
        JS_FreeValue(ctx, obj);
        return JS_EXCEPTION;
    }
    return obj;
}

/* meta for the entries of in, built key by key. */
static JSValue meta_build(struct tp_js_vm *vm, const struct tp_msg *in)
{
    JSContext *ctx = vm->ctx;
    JSValue meta = JS_NewObject(ctx);
    int rc = JS_IsException(meta) ? -1 : 0;
    for (uint32_t i = 0; i < in->n_meta && rc == 0; i++) {
        const struct tp_meta *e = &in->meta[i];
        JSAtom a = tp__js_key_atom(vm, in->strs + e->key_off, e->key_len);
        if (a == JS_ATOM_NULL) {
            rc = -1;
            break;
        }
        JSValue v = tp__js_meta_value(vm, in->strs + e->val_off, e->val_len, NULL);
        rc = JS_DefinePropertyValue(ctx, meta, a, v, JS_PROP_C_W_E) < 0 ? -1 : 0;
        JS_FreeAtom(ctx, a);
    }
    if (rc != 0) {
        JS_FreeValue(ctx, meta);
        return JS_EXCEPTION;
    }
    return meta;
}

/* 1 when in's keys are exactly those of the input memo, in order. */
static int in_memo_hit(const struct tp_js_in_memo *im, const struct tp_msg *in)
{
    if (!im || im->n != in->n_meta)
        return 0;
    const char *b = im->bytes;
    for (uint32_t i = 0; i < im->n; i++) {
        const struct tp_meta *e = &in->meta[i];
        if (e->key_len != im->lens[i] || !tp__js_same_bytes(in->strs + e->key_off, b, e->key_len))
            return 0;
        b += e->key_len;
    }
    return 1;
}

/* Makes in's keys (atoms, the kept object of their shape) the input memo.
 * 1 done, 0 when the keys do not fit (the memo is then empty). */
static int in_memo_set(struct tp_js_vm *vm, const struct tp_msg *in, const JSAtom *atoms,
                       JSValueConst kept)
{
    struct tp_js_in_memo *im = vm->in_memo;
    tp__js_in_memo_clear(vm);
    size_t bytes = 0;
    for (uint32_t i = 0; i < in->n_meta; i++)
        bytes += in->meta[i].key_len;
    if (bytes > sizeof(im->bytes))
        return 0;
    char *b = im->bytes;
    for (uint32_t i = 0; i < in->n_meta; i++) {
        const struct tp_meta *e = &in->meta[i];
        memcpy(b, in->strs + e->key_off, e->key_len);
        b += e->key_len;
        im->lens[i] = (uint16_t)e->key_len;
        im->atoms[i] = JS_DupAtom(vm->ctx, atoms[i]);
    }
    im->kept = JS_DupValue(vm->ctx, kept);
    im->n = in->n_meta;
    im->ascii_keys = tp__js_all_ascii(im->bytes, bytes);
    return 1;
}

/* meta for the entries of in on a recycled object or with cached atoms;
 * JS_UNDEFINED when meta_build must do it (no keys, too many keys). */
static JSValue meta_fast(struct tp_js_vm *vm, const struct tp_msg *in)
{
    JSContext *ctx = vm->ctx;
    JSAtom own[TP_JS_SHAPE_MAX_KEYS];
    JSValue vals[TP_JS_SHAPE_MAX_KEYS];
    uint32_t n = in->n_meta;
    if (n == 0 || n > TP_JS_SHAPE_MAX_KEYS)
        return JS_UNDEFINED;
    JSValue meta = JS_EXCEPTION;
    uint32_t i = 0, nv = 0; /* own atoms and values to free */
    const JSAtom *atoms = own;
    const JSValue *kept;
    struct tp_js_in_memo *im = vm->in_memo; /* holds the keys of in, or NULL */
    if (in_memo_hit(im, in)) {              /* the keys of the previous message */
        atoms = im->atoms;
        kept = &im->kept;
    } else {
        for (; i < n; i++) {
            const struct tp_meta *e = &in->meta[i];
            own[i] = tp__js_key_atom(vm, in->strs + e->key_off, e->key_len);
            if (own[i] == JS_ATOM_NULL)
                goto out;
        }
        kept = tp__js_keep_shapes(vm, own, n);
        if (!kept || !im || !in_memo_set(vm, in, own, *kept))
            im = NULL;
    }
    if (im) /* the previous message's hold ended with it; this one's starts */
        tp__js_in_ident_clear(vm);
    if (im && !im->ascii_keys)
        im = NULL;
    for (; nv < n; nv++) {
        const struct tp_meta *e = &in->meta[nv];
        int ascii;
        vals[nv] = tp__js_meta_value(vm, in->strs + e->val_off, e->val_len, &ascii);
        if (JS_IsException(vals[nv]))
            goto out;
        if (im) { /* for the export of the unchanged entries (meta_export_fast) */
            im->vals[nv] = ascii ? JS_DupValue(ctx, vals[nv]) : JS_UNDEFINED;
            im->nvals = nv + 1;
        }
    }
    if (im)
        im->msg = in;
    meta = tp__js_meta_reuse(vm, kept, atoms, n, vals);
    if (!JS_IsUndefined(meta)) {
        nv = 0; /* consumed */
        goto out;
    }
    meta = JS_NewObject(ctx);
    int rc = JS_IsException(meta) ? -1 : 0;
    uint32_t k = 0;
    while (k < n && rc == 0) { /* each define consumes its value, even when it fails */
        rc = JS_DefinePropertyValue(ctx, meta, atoms[k], vals[k], JS_PROP_C_W_E) < 0 ? -1 : 0;
        vals[k++] = JS_UNDEFINED;
    }
    if (rc != 0) {
        JS_FreeValue(ctx, meta);
        meta = JS_EXCEPTION;
    }
out:
    for (uint32_t j = 0; j < nv; j++)
        JS_FreeValue(ctx, vals[j]);
    for (uint32_t j = 0; j < i; j++) /* every own atom is a reference of our own */
        JS_FreeAtom(ctx, own[j]);
    return meta;
}

JSValue tp__js_msg_new(struct tp_js_vm *vm, const struct tp_msg *in, struct tp_orig_number *orig)
{
    JSValue meta = meta_fast(vm, in);
    if (JS_IsUndefined(meta))
        meta = meta_build(vm, in);
    if (JS_IsException(meta))
        return meta;
    JSValue payload = tp__js_payload_new(vm, in->payload, in->payload_len, in->flags, orig);
    if (!JS_IsException(payload)) {
        JSValue msg = tp__js_msg_reuse(vm, payload, meta);
        if (!JS_IsUndefined(msg))
            return msg;
    }
    return tp__js_msg_make(vm, payload, meta);
}

int tp__js_msg_is_plain(struct tp_js_vm *vm, JSValueConst msg)
{
    JSValueConst meta;
    return tp__qjs_shaped_slot(msg, vm->msg_shape, 1, &meta) && JS_IsObject(meta);
}

/* The metadata string for a JS value: a string value, JS_UNDEFINED when the
 * key is to be removed, or JS_EXCEPTION. */
static JSValue meta_string(JSContext *ctx, JSValueConst v)
{
    switch (JS_VALUE_GET_TAG(v)) {
    case JS_TAG_STRING:
        return JS_DupValue(ctx, v);
    case JS_TAG_NULL:
    case JS_TAG_UNDEFINED:
        return JS_UNDEFINED;
    case JS_TAG_BOOL:
        return JS_NewString(ctx, JS_VALUE_GET_BOOL(v) ? "true" : "false");
    case JS_TAG_OBJECT: {
        JSValue s = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
        if (JS_IsException(s) || JS_IsString(s))
            return s;
        JS_FreeValue(ctx, s); /* a function: nothing to write */
        return JS_UNDEFINED;
    }
    default:
        return JS_ToString(ctx, v); /* numbers as String(n); symbols throw */
    }
}

enum walk_mode { WALK_NORMALIZE, WALK_COPY, WALK_EXPORT };

/* Visits the own enumerable string keys of meta in order. */
static int meta_walk(struct tp_js_vm *vm, JSValueConst meta, enum walk_mode mode, JSValueConst dst,
                     struct tp_msg *m)
{
    JSContext *ctx = vm->ctx;
    JSPropertyEnum *tab = NULL;
    uint32_t len = 0;
    if (JS_GetOwnPropertyNames(ctx, &tab, &len, meta, JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY) < 0)
        return -1;
    if (mode != WALK_COPY && len <= TP_JS_SHAPE_MAX_KEYS) {
        JSAtom atoms[TP_JS_SHAPE_MAX_KEYS];
        for (uint32_t i = 0; i < len; i++)
            atoms[i] = tab[i].atom;
        tp__js_keep_shapes(vm, atoms, len);
    }
    int rc = 0;
    for (uint32_t i = 0; i < len && rc == 0; i++) {
        JSAtom a = tab[i].atom;
        JSValue v = JS_GetProperty(ctx, meta, a);
        if (JS_IsException(v)) {
            rc = -1;
            break;
        }
        if (mode == WALK_NORMALIZE && JS_IsString(v)) {
            JS_FreeValue(ctx, v);
            continue;
        }
        JSValue s = meta_string(ctx, v);
        JS_FreeValue(ctx, v);
        if (JS_IsException(s)) {
            rc = -1;
            break;
        }
        if (mode == WALK_NORMALIZE) {
            if (JS_IsUndefined(s))
                rc = JS_DeleteProperty(ctx, meta, a, JS_PROP_THROW) < 0 ? -1 : 0;
            else
                rc = JS_SetProperty(ctx, meta, a, s) < 0 ? -1 : 0;
        } else if (mode == WALK_COPY) {
            if (!JS_IsUndefined(s))
                rc = JS_DefinePropertyValue(ctx, dst, a, s, JS_PROP_C_W_E) < 0 ? -1 : 0;
        } else if (!JS_IsUndefined(s)) {
            size_t kl, vl; /* lengths: a key or value may hold U+0000 */
            JSValue key = JS_AtomToString(ctx, a);
            const char *k = JS_IsException(key) ? NULL : JS_ToCStringLen(ctx, &kl, key);
            const char *val = JS_ToCStringLen(ctx, &vl, s);
            JS_FreeValue(ctx, key);
            JS_FreeValue(ctx, s);
            if (!k || !val)
                rc = -1;
            else if (tp_msg_meta_set(m, k, kl, val, vl) != 0)
                rc = TP_NOMEM;
            if (k)
                JS_FreeCString(ctx, k);
            if (val)
                JS_FreeCString(ctx, val);
        }
    }
    tp__js_free_props(ctx, tab, len);
    return rc;
}

int tp__js_meta_normalize(struct tp_js_vm *vm, JSValueConst meta)
{
    if (vm->peek_ok && tp__qjs_string_values(meta)) /* nothing to normalise */
        return 0;
    return meta_walk(vm, meta, WALK_NORMALIZE, JS_UNDEFINED, NULL);
}

JSValue tp__js_meta_copy(struct tp_js_vm *vm, JSValueConst meta)
{
    JSValue dst = JS_NewObject(vm->ctx);
    if (JS_IsException(dst) || !JS_IsObject(meta))
        return dst;
    if (meta_walk(vm, meta, WALK_COPY, dst, NULL) != 0) {
        JS_FreeValue(vm->ctx, dst);
        return JS_EXCEPTION;
    }
    return dst;
}

/* Bytes of a Latin-1 JS string as UTF-8: one more per character >= 0x80. */
static size_t utf8_len(const uint8_t *b, uint32_t n)
{
    size_t extra = 0;
    if (tp__js_all_ascii((const char *)b, n))
        return n;
    for (uint32_t i = 0; i < n; i++)
        extra += b[i] >> 7;
    return n + extra;
}

/* Writes the n Latin-1 characters at b as UTF-8 (utf8_len bytes) to o. */
static void put_latin1(char *o, const uint8_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (b[i] < 0x80) {
            *o++ = (char)b[i];
        } else {
            *o++ = (char)(0xc0 | (b[i] >> 6));
            *o++ = (char)(0x80 | (b[i] & 0x3f));
        }
    }
}

/* Appends one metadata entry of the fast path (a plain value whose text needs
 * no JavaScript) under key k (kl bytes). 0 or TP_NOMEM. */
static int export_entry(struct tp_msg *m, const char *k, size_t kl, const struct tp_qjs_prop *pr,
                        size_t vlen)
{
    char num[32];
    JSValueConst v = pr->value;
    switch (JS_VALUE_GET_TAG(v)) {
    case JS_TAG_STRING: {
        uint32_t n = pr->len;
        const uint8_t *b = pr->latin1;
        if (vlen == n)
            return tp_msg_meta_append(m, k, kl, (const char *)b, n);
        char *utf8 = malloc(vlen);
        if (!utf8)
            return TP_NOMEM;
        put_latin1(utf8, b, n);
        int rc = tp_msg_meta_append(m, k, kl, utf8, vlen);
        free(utf8);
        return rc;
    }
    case JS_TAG_INT:
    case JS_TAG_FLOAT64: {
        double d =
            JS_VALUE_GET_TAG(v) == JS_TAG_INT ? JS_VALUE_GET_INT(v) : JS_VALUE_GET_FLOAT64(v);
        size_t len = tp_number_text(d, num);
        return tp_msg_meta_append(m, k, kl, num, len);
    }
    default: /* bool */
        return JS_VALUE_GET_BOOL(v) ? tp_msg_meta_append(m, k, kl, "true", 4)
                                    : tp_msg_meta_append(m, k, kl, "false", 5);
    }
}

/* The room a value of the fast path needs as text, 0 when it is not
 * exported (null, undefined), SIZE_MAX when the fast path cannot write it. */
static size_t export_len(JSValueConst v, const struct tp_qjs_prop *pr)
{
    switch (JS_VALUE_GET_TAG(v)) {
    case JS_TAG_STRING:
        return pr->latin1 ? utf8_len(pr->latin1, pr->len) + 1 : SIZE_MAX; /* + 1: never 0 */
    case JS_TAG_INT:
    case JS_TAG_FLOAT64:
        return 32;
    case JS_TAG_BOOL:
        return 6;
    case JS_TAG_NULL:
    case JS_TAG_UNDEFINED:
        return 0;
    default:
        return SIZE_MAX;
    }
}

/* Makes meta's shape the output memo: slot i is key ks[i] (NULL: not
 * metadata). pin: an object of exactly that shape, or nothing is kept. */
static void out_memo_set(struct tp_js_vm *vm, JSValueConst meta, const struct tp_qjs_prop *props,
                         int np, const struct tp_js_atom_slot *const *ks, const JSValue *pin)
{
    struct tp_js_out_memo *om = vm->out_memo;
    tp__js_out_memo_clear(vm);
    if (!pin || tp__qjs_shape(*pin) != tp__qjs_shape(meta))
        return;
    size_t off = 0;
    for (int i = 0; i < np; i++) {
        if (!ks[i] || ks[i]->atom != props[i].atom) { /* not metadata, or a reused cache slot */
            if (ks[i])
                return;
            om->key[i].len = TP_JS_MEMO_SKIP;
            continue;
        }
        if (off + ks[i]->len > sizeof(om->bytes))
            return;
        memcpy(om->bytes + off, ks[i]->bytes, ks[i]->len);
        om->key[i].off = (uint16_t)off;
        om->key[i].len = ks[i]->len;
        off += ks[i]->len;
    }
    om->np = np;
    om->pin = JS_DupValue(vm->ctx, *pin);
    om->shape = tp__qjs_shape(meta);
}

/* How many of meta's first property slots (props, np of them) are the
 * input message's first entries, unchanged: each an enumerable data property
 * still holding, under the entry's key, the very string made from the
 * entry's value (both ASCII: their bytes round-trip). JS strings are
 * immutable and the input memo holds a reference to each, so no other string
 * can have its address. Their atoms go to seq, their bytes (NULs included)
 * are added to *used. */
static uint32_t unchanged_prefix(const struct tp_js_vm *vm, const struct tp_qjs_prop *props, int np,
                                 JSAtom *seq, size_t *used)
{
    const struct tp_js_in_memo *im = vm->in_memo;
    if (!im || !im->msg)
        return 0;
    const struct tp_meta *e = im->msg->meta;
    uint32_t k = 0, max = im->nvals < (uint32_t)np ? im->nvals : (uint32_t)np;
    for (; k < max; k++) {
        const struct tp_qjs_prop *pr = &props[k];
        if (pr->atom != im->atoms[k] ||
            (pr->flags & (JS_PROP_TMASK | JS_PROP_ENUMERABLE)) !=
                (JS_PROP_NORMAL | JS_PROP_ENUMERABLE) ||
            JS_VALUE_GET_TAG(pr->value) != JS_TAG_STRING ||
            JS_VALUE_GET_TAG(im->vals[k]) != JS_TAG_STRING ||
            JS_VALUE_GET_PTR(pr->value) != JS_VALUE_GET_PTR(im->vals[k]))
            break;
        seq[k] = pr->atom;
        *used += e[k].key_len + e[k].val_len + 2;
    }
    return k;
}

/* Appends meta's entries to m straight from the object's own properties
 * (qjs_internals.c) instead of JS_GetOwnPropertyNames + JS_GetProperty +
 * JS_ToCString per entry: 0 done, 1 not handled (anything unusual: the
 * public-API walk is the reference behaviour), TP_NOMEM. Never runs
 * JavaScript. What each property slot is as metadata (its key, or none)
 * depends only on the shape: for the shape of the output memo it is read
 * from there instead of looking up each atom. */
static int meta_export_fast(struct tp_js_vm *vm, JSValueConst meta, struct tp_msg *m)
{
    struct tp_qjs_prop props[TP_JS_SHAPE_MAX_KEYS];
    if (!vm->peek_ok || !vm->caches)
        return 1;
    int np = tp__qjs_plain_props(meta, props, TP_JS_SHAPE_MAX_KEYS);
    if (np < 0)
        return 1;
    const struct tp_js_out_memo *om = vm->out_memo;
    int hit = om && om->shape && om->np == np && tp__qjs_shape(meta) == om->shape;
    const struct tp_js_atom_slot *ks[TP_JS_SHAPE_MAX_KEYS]; /* cache slots (no hit) */
    const char *kb[TP_JS_SHAPE_MAX_KEYS];
    size_t kl[TP_JS_SHAPE_MAX_KEYS], vlen[TP_JS_SHAPE_MAX_KEYS];
    JSAtom seq[TP_JS_SHAPE_MAX_KEYS];
    /* Slots [0, k): the input's entries [0, k), unchanged (only into an
     * empty m, whose offsets are then those of the input). */
    size_t used = 0; /* their bytes in the input */
    uint32_t k =
        hit && m->n_meta == 0 && m->strs_len == 0 ? unchanged_prefix(vm, props, np, seq, &used) : 0;
    uint32_t n = k;
    size_t bytes = 0;
    /* Pass 1: everything must be plain data whose text needs no JavaScript. */
    for (int i = (int)k; i < np; i++) {
        const struct tp_qjs_prop *pr = &props[i];
        kb[i] = NULL;
        if (hit) {
            if (om->key[i].len == TP_JS_MEMO_SKIP)
                continue;
            kb[i] = om->bytes + om->key[i].off;
            kl[i] = om->key[i].len;
        } else {
            ks[i] = NULL;
            if (pr->atom == JS_ATOM_NULL)
                continue;
            if ((pr->flags & JS_PROP_TMASK) != JS_PROP_NORMAL)
                return 1;
            if (!(pr->flags & JS_PROP_ENUMERABLE))
                continue;
            const struct tp_js_atom_slot *key = tp__js_atom_key(vm, pr->atom);
            if (key->kind == TP_JS_KEY_SLOW)
                return 1;
            if (key->kind == TP_JS_KEY_SKIP)
                continue;
            ks[i] = key;
            kb[i] = key->bytes;
            kl[i] = key->len;
        }
        vlen[i] = export_len(pr->value, pr);
        if (vlen[i] == SIZE_MAX)
            return 1;
        if (vlen[i] == 0) { /* null or undefined: removed */
            kb[i] = NULL;
            continue;
        }
        vlen[i] -= JS_VALUE_GET_TAG(pr->value) == JS_TAG_STRING;
        seq[n++] = pr->atom;
        bytes += kl[i] + vlen[i] + 2;
    }
    /* A later miss may have reused the slot of an earlier key. */
    for (int i = 0; !hit && i < np; i++)
        if (ks[i] && ks[i]->atom != props[i].atom)
            return 1;
    /* 2 more entries and room for umh_topic/topic, added by the output. */
    const struct tp_msg *in = vm->in_memo ? vm->in_memo->msg : NULL;
    /* The input's strings are copied whole (its entries then stay valid as
     * they are) when the unchanged entries are most of them: not when, say,
     * a large entry the rules deleted is. */
    int whole = k && in->strs_len <= 2 * used + 256;
    if (tp_msg_meta_reserve(m, n + 2, (whole ? in->strs_len : used) + bytes + 256) != 0)
        return TP_NOMEM;
    if (whole) {
        memcpy(m->strs, in->strs, in->strs_len);
        memcpy(m->meta, in->meta, k * sizeof(*m->meta));
        m->strs_len = in->strs_len;
        m->n_meta = k;
    }
    for (uint32_t j = 0; !whole && j < k; j++) {
        const struct tp_meta *e = &in->meta[j];
        if (tp_msg_meta_append(m, in->strs + e->key_off, e->key_len, in->strs + e->val_off,
                               e->val_len) != 0)
            return TP_NOMEM;
    }
    for (int i = (int)k; i < np; i++)
        if (kb[i] && export_entry(m, kb[i], kl[i], &props[i], vlen[i]) != 0)
            return TP_NOMEM;
    if (!hit && vm->out_memo) /* on a hit the memo pins the shape already */
        out_memo_set(vm, meta, props, np, ks, tp__js_keep_shapes(vm, seq, n));
    return 0;
}

int tp__js_meta_export(struct tp_js_vm *vm, JSValueConst meta, struct tp_msg *m)
{
    if (!JS_IsObject(meta))
        return 0;
    int rc = meta_export_fast(vm, meta, m);
    if (rc != 1)
        return rc;
    return meta_walk(vm, meta, WALK_EXPORT, JS_UNDEFINED, m);
}

void tp__js_hold_release(struct tp_js_hold *hold)
{
    if (hold->cstr)
        JS_FreeCString(hold->ctx, hold->cstr);
    hold->cstr = NULL;
}

/* Sets out to the JSON text of v (TP_VALUE_UNDEFINED when JSON has none). */
static int export_json(JSContext *ctx, JSValueConst v, struct tp_value *out,
                       struct tp_js_hold *hold)
{
    JSValue s = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
    if (JS_IsException(s))
        return -1;
    if (!JS_IsString(s)) {
        JS_FreeValue(ctx, s);
        out->type = TP_VALUE_UNDEFINED;
        return 0;
    }
    hold->cstr = JS_ToCStringLen(ctx, &out->len, s);
    JS_FreeValue(ctx, s);
    if (!hold->cstr)
        return -1;
    out->type = TP_VALUE_JSON;
    out->str = hold->cstr;
    return 0;
}

/* JSON text of a number without going through QuickJS's slow dtoa. */
static void number_json(double d, const struct tp_orig_number *orig, struct tp_value *out,
                        struct tp_js_hold *hold)
{
    out->type = TP_VALUE_JSON;
    if (orig && orig->present && orig->number == d) {
        out->str = orig->text;
        out->len = orig->len;
    } else if (!isfinite(d)) {
        out->str = "null"; /* as JSON.stringify */
        out->len = 4;
    } else {
        out->len = tp_number_text(d, hold->num);
        out->str = hold->num;
    }
}

/* JSON mode: every value as its JSON text (undefined when JSON has none). */
static int export_json_mode(JSContext *ctx, JSValueConst v, const struct tp_orig_number *orig,
                            struct tp_value *out, struct tp_js_hold *hold)
{
    switch (JS_VALUE_GET_TAG(v)) {
    case JS_TAG_INT:
        number_json(JS_VALUE_GET_INT(v), orig, out, hold);
        return 0;
    case JS_TAG_FLOAT64:
        number_json(JS_VALUE_GET_FLOAT64(v), orig, out, hold);
        return 0;
    case JS_TAG_BOOL:
        out->type = TP_VALUE_JSON;
        out->str = JS_VALUE_GET_BOOL(v) ? "true" : "false";
        out->len = strlen(out->str);
        return 0;
    case JS_TAG_NULL:
        out->type = TP_VALUE_JSON;
        out->str = "null";
        out->len = 4;
        return 0;
    default:
        return export_json(ctx, v, out, hold);
    }
}

int tp__js_value_export(struct tp_js_vm *vm, JSValueConst v, int json,
                        const struct tp_orig_number *orig, struct tp_value *out,
                        struct tp_js_hold *hold)
{
    JSContext *ctx = vm->ctx;
    memset(out, 0, sizeof(*out));
    hold->ctx = ctx;
    hold->cstr = NULL;
    if (json)
        return export_json_mode(ctx, v, orig, out, hold);
    switch (JS_VALUE_GET_TAG(v)) {
    case JS_TAG_UNDEFINED:
        out->type = TP_VALUE_UNDEFINED;
        return 0;
    case JS_TAG_NULL:
        out->type = TP_VALUE_NULL;
        return 0;
    case JS_TAG_BOOL:
        out->type = TP_VALUE_BOOL;
        out->boolean = JS_VALUE_GET_BOOL(v);
        return 0;
    case JS_TAG_INT:
        out->type = TP_VALUE_NUMBER;
        out->number = JS_VALUE_GET_INT(v);
        return 0;
    case JS_TAG_FLOAT64:
        out->type = TP_VALUE_NUMBER;
        out->number = JS_VALUE_GET_FLOAT64(v);
        return 0;
    case JS_TAG_STRING:
        hold->cstr = JS_ToCStringLen(ctx, &out->len, v);
        if (!hold->cstr)
            return -1;
        out->type = TP_VALUE_STRING;
        out->str = hold->cstr;
        return 0;
    case JS_TAG_OBJECT:
        if (JS_IsFunction(ctx, v)) {
            out->type = TP_VALUE_UNDEFINED;
            return 0;
        }
        return export_json(ctx, v, out, hold);
    default: /* symbols, big numbers: as JSON would (undefined or a TypeError) */
        return export_json(ctx, v, out, hold);
    }
}

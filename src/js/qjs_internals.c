/* The one file that reads QuickJS private layouts (the pinned 2021-03-27
 * release): strings, ordinary objects and their shapes, copied from
 * quickjs.c and verified on a live runtime by tp__qjs_check(). Compiled with
 * TP_QJS_INTERNALS=0 (CMake option TP_QJS_INTERNALS=OFF) it holds no layout:
 * the check fails and every function declines, leaving the public API. */
#include "js/qjs_internals.h"

#include <stddef.h>
#include <string.h>

#include "core/tp_assert.h"

#ifndef TP_QJS_INTERNALS
#define TP_QJS_INTERNALS 1
#endif

int tp__qjs_built_in(void)
{
    return TP_QJS_INTERNALS;
}

#if TP_QJS_INTERNALS

struct tpq_list {
    struct tpq_list *prev, *next;
};

/* JSGCObjectHeader */
struct tpq_gc_header {
    int ref_count;
    unsigned int gc_obj_type : 4;
    uint8_t mark : 4;
    uint8_t dummy1;
    uint16_t dummy2;
    struct tpq_list link;
};

/* JSString */
struct tpq_string {
    int ref_count;
    uint32_t len : 31;
    uint8_t is_wide_char : 1;
    uint32_t hash : 30;
    uint8_t atom_type : 2;
    uint32_t hash_next;
    union {
        uint8_t str8[0];
        uint16_t str16[0];
    } u;
};

/* JSShapeProperty */
struct tpq_shape_prop {
    uint32_t hash_next : 26;
    uint32_t flags : 6;
    JSAtom atom;
};

/* JSShape */
struct tpq_shape {
    struct tpq_gc_header header;
    uint8_t is_hashed;
    uint8_t has_small_array_index;
    uint32_t hash;
    uint32_t prop_hash_mask;
    int prop_size;
    int prop_count;
    int deleted_prop_count;
    struct tpq_shape *shape_hash_next;
    struct tpq_object *proto;
    struct tpq_shape_prop prop[0];
};

/* JSProperty (only the plain-value member is used) */
struct tpq_property {
    union {
        JSValue value;
        struct {
            void *getter, *setter;
        } getset;
    } u;
};

/* JSObject (leading part) */
struct tpq_object {
    union {
        struct tpq_gc_header header;
        struct {
            int gc_ref_count;
            uint8_t gc_mark;
            uint8_t extensible : 1;
            uint8_t free_mark : 1;
            uint8_t is_exotic : 1;
            uint8_t fast_array : 1;
            uint8_t is_constructor : 1;
            uint8_t is_uncatchable_error : 1;
            uint8_t tmp_mark : 1;
            uint8_t is_HTMLDDA : 1;
            uint16_t class_id;
        };
    };
    struct tpq_shape *shape;
    struct tpq_property *prop;
    void *first_weak_ref;
};

#define TPQ_CLASS_OBJECT 1 /* JS_CLASS_OBJECT */

/* The object of v when it is an ordinary object (class Object, no exotic
 * behaviour), else NULL. */
static struct tpq_object *plain_object(JSValueConst v)
{
    if (JS_VALUE_GET_TAG(v) != JS_TAG_OBJECT)
        return NULL;
    struct tpq_object *p = JS_VALUE_GET_PTR(v);
    if (p->class_id != TPQ_CLASS_OBJECT || p->is_exotic || p->fast_array)
        return NULL;
    return p;
}

static struct tpq_string *string_of(JSValueConst v)
{
    return JS_VALUE_GET_PTR(v);
}

int tp__qjs_check(JSContext *ctx)
{
    JSValue o = JS_NewObject(ctx), arr = JS_NewArray(ctx);
    JSValue wide = JS_NewString(ctx, "\xc3\xa9\xe2\x82\xac"); /* U+00E9 U+20AC */
    JSAtom a = JS_NewAtom(ctx, "tp_peek_a"), b = JS_NewAtom(ctx, "tp_peek_b");
    int ok = !JS_IsException(o) && !JS_IsException(arr) && !JS_IsException(wide) &&
             a != JS_ATOM_NULL && b != JS_ATOM_NULL &&
             JS_DefinePropertyValue(ctx, o, a, JS_NewString(ctx, "xyz"), JS_PROP_C_W_E) >= 0 &&
             JS_DefinePropertyValue(ctx, o, b, JS_NewInt32(ctx, 7), JS_PROP_ENUMERABLE) >= 0;
    if (ok) {
        struct tpq_object *p = plain_object(o);
        ok = p && p->header.ref_count == 1 && p->shape->prop_count == 2 &&
             p->shape->deleted_prop_count == 0 && p->shape->prop[0].atom == a &&
             p->shape->prop[0].flags == JS_PROP_C_W_E && p->shape->prop[1].atom == b &&
             p->shape->prop[1].flags == JS_PROP_ENUMERABLE &&
             JS_VALUE_GET_TAG(p->prop[0].u.value) == JS_TAG_STRING &&
             JS_VALUE_GET_TAG(p->prop[1].u.value) == JS_TAG_INT &&
             JS_VALUE_GET_INT(p->prop[1].u.value) == 7;
        if (ok) {
            struct tpq_string *s = string_of(p->prop[0].u.value);
            ok = s->len == 3 && !s->is_wide_char && memcmp(s->u.str8, "xyz", 4) == 0;
        }
        /* two objects with the same keys share one shape, counted twice */
        JSValue o2 = JS_NewObject(ctx);
        struct tpq_object *p2 = plain_object(o2);
        ok = ok && p2 &&
             JS_DefinePropertyValue(ctx, o2, a, JS_NewString(ctx, "u"), JS_PROP_C_W_E) >= 0 &&
             JS_DefinePropertyValue(ctx, o2, b, JS_NewInt32(ctx, 8), JS_PROP_ENUMERABLE) >= 0 &&
             p2->shape == p->shape && p->shape->header.ref_count == 2 && !p2->first_weak_ref &&
             p2->extensible;
        JS_FreeValue(ctx, o2);
        ok = ok && p->shape->header.ref_count == 1;
        struct tpq_string *w = string_of(wide);
        ok = ok && !plain_object(arr) && w->len == 2 && w->is_wide_char && w->u.str16[0] == 0xe9 &&
             w->u.str16[1] == 0x20ac && w->ref_count == 1;
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

const void *tp__qjs_shape(JSValueConst v)
{
    if (JS_VALUE_GET_TAG(v) != JS_TAG_OBJECT)
        return NULL;
    return ((const struct tpq_object *)JS_VALUE_GET_PTR(v))->shape;
}

const void *tp__qjs_proto(JSValueConst v)
{
    if (JS_VALUE_GET_TAG(v) != JS_TAG_OBJECT)
        return NULL;
    return ((const struct tpq_object *)JS_VALUE_GET_PTR(v))->shape->proto;
}

int tp__qjs_plain_props(JSValueConst v, struct tp_qjs_prop *props, int max)
{
    const struct tpq_object *p = plain_object(v);
    if (!p || p->shape->prop_count > max)
        return -1;
    const struct tpq_shape *sh = p->shape;
    for (int i = 0; i < sh->prop_count; i++) {
        props[i].atom = sh->prop[i].atom;
        props[i].flags = (int)sh->prop[i].flags;
        props[i].value = p->prop[i].u.value;
        props[i].latin1 = NULL;
        if ((sh->prop[i].flags & JS_PROP_TMASK) == JS_PROP_NORMAL &&
            JS_VALUE_GET_TAG(props[i].value) == JS_TAG_STRING) {
            const struct tpq_string *str = string_of(props[i].value);
            if (!str->is_wide_char) {
                props[i].latin1 = str->u.str8;
                props[i].len = str->len;
            }
        }
    }
    return sh->prop_count;
}

int tp__qjs_string_values(JSValueConst v)
{
    const struct tpq_object *p = plain_object(v);
    if (!p)
        return 0;
    const struct tpq_shape *sh = p->shape;
    for (int i = 0; i < sh->prop_count; i++) {
        if (sh->prop[i].atom == JS_ATOM_NULL)
            continue;
        if ((sh->prop[i].flags & JS_PROP_TMASK) != JS_PROP_NORMAL ||
            JS_VALUE_GET_TAG(p->prop[i].u.value) != JS_TAG_STRING)
            return 0;
    }
    return 1;
}

/* Index of atom among p's own properties, -1 when absent, -2 when it is not
 * a plain data property. */
static int own_index(const struct tpq_object *p, JSAtom atom)
{
    const struct tpq_shape *sh = p->shape;
    for (int i = 0; i < sh->prop_count; i++) {
        if (sh->prop[i].atom != atom)
            continue;
        return (sh->prop[i].flags & JS_PROP_TMASK) == JS_PROP_NORMAL ? i : -2;
    }
    return -1;
}

int tp__qjs_own_data(JSValueConst v, JSAtom atom, JSValueConst *value)
{
    const struct tpq_object *p = plain_object(v);
    if (!p)
        return -1;
    int i = own_index(p, atom);
    if (i < 0)
        return i == -1 ? 0 : -1;
    *value = p->prop[i].u.value;
    return 1;
}

int tp__qjs_proto_lacks(JSValueConst v, JSAtom atom)
{
    const void *proto = tp__qjs_proto(v);
    if (!proto)
        return 0;
    const struct tpq_object *op = plain_object(JS_MKPTR(JS_TAG_OBJECT, (void *)proto));
    return op && op->shape->proto == NULL && own_index(op, atom) == -1;
}

const uint8_t *tp__qjs_latin1(JSValueConst v, uint32_t *len)
{
    if (JS_VALUE_GET_TAG(v) != JS_TAG_STRING)
        return NULL;
    const struct tpq_string *s = string_of(v);
    if (s->is_wide_char)
        return NULL;
    *len = s->len;
    return s->u.str8;
}

int tp__qjs_shaped_slot(JSValueConst v, const void *shape, int i, JSValueConst *out)
{
    if (!shape || JS_VALUE_GET_TAG(v) != JS_TAG_OBJECT)
        return 0;
    const struct tpq_object *p = JS_VALUE_GET_PTR(v);
    if ((const void *)p->shape != shape)
        return 0;
    *out = p->prop[i].u.value;
    return 1;
}

JSValue tp__qjs_slot_swap(JSValueConst v, int i, JSValue x)
{
    struct tpq_object *p = JS_VALUE_GET_PTR(v);
    TP_ASSERT(i < p->shape->prop_count && (p->shape->prop[i].flags & JS_PROP_TMASK) == 0);
    JSValue old = p->prop[i].u.value;
    p->prop[i].u.value = x;
    return old;
}

int tp__qjs_reusable(JSValueConst v, const void *shape, const void *proto)
{
    const struct tpq_object *p = plain_object(v);
    return p && p->header.ref_count == 1 && (!shape || (const void *)p->shape == shape) &&
           (const void *)p->shape->proto == proto && p->extensible && !p->first_weak_ref;
}

int tp__qjs_reshape(JSContext *ctx, JSValueConst v, JSValueConst kept, const JSAtom *atoms,
                    uint32_t n, JSValue *vals, const void *proto)
{
    const struct tpq_object *k = plain_object(kept);
    struct tpq_shape *sh = k ? k->shape : NULL;
    if (!sh || sh->prop_count != (int)n || sh->deleted_prop_count != 0 ||
        (const void *)sh->proto != proto)
        return 1;
    for (uint32_t i = 0; i < n; i++)
        if (sh->prop[i].atom != atoms[i] || sh->prop[i].flags != JS_PROP_C_W_E)
            return 1;
    struct tpq_object *p = JS_VALUE_GET_PTR(v);
    struct tpq_shape *old = p->shape;
    /* v is the caller's alone; the kept object holds a reference to sh */
    TP_ASSERT(p->header.ref_count == 1 && old->header.ref_count >= 1 && sh->header.ref_count >= 1);
    for (int i = 0; i < old->prop_count; i++)
        if (old->prop[i].atom != JS_ATOM_NULL && (old->prop[i].flags & JS_PROP_TMASK))
            return 1;
    if (sh->prop_size > old->prop_size) {
        void *np = js_realloc(ctx, p->prop, sizeof(struct tpq_property) * (size_t)sh->prop_size);
        if (!np) {
            JS_FreeValue(ctx, JS_GetException(ctx));
            return 1;
        }
        p->prop = np;
    }
    for (int i = 0; i < old->prop_count; i++) {
        if (old->prop[i].atom == JS_ATOM_NULL)
            continue;
        JSValue x = p->prop[i].u.value;
        p->prop[i].u.value = JS_UNDEFINED;
        JS_FreeValue(ctx, x);
    }
    if (old != sh) {
        /* Freeing the values may have dropped other users of the old shape:
         * p must not hold its last reference (only QuickJS may free shapes). */
        if (old->header.ref_count < 2)
            return -1;
        sh->header.ref_count++;
        old->header.ref_count--;
        TP_ASSERT(old->header.ref_count >= 1);
        p->shape = sh;
    }
    for (uint32_t i = 0; i < n; i++)
        p->prop[i].u.value = vals[i];
    return 0;
}

#else /* public API only: every fast path declines */

int tp__qjs_check(JSContext *ctx)
{
    (void)ctx;
    return 0;
}

const void *tp__qjs_shape(JSValueConst v)
{
    (void)v;
    return NULL;
}

const void *tp__qjs_proto(JSValueConst v)
{
    (void)v;
    return NULL;
}

int tp__qjs_plain_props(JSValueConst v, struct tp_qjs_prop *props, int max)
{
    (void)v, (void)props, (void)max;
    return -1;
}

int tp__qjs_string_values(JSValueConst v)
{
    (void)v;
    return 0;
}

int tp__qjs_own_data(JSValueConst v, JSAtom atom, JSValueConst *value)
{
    (void)v, (void)atom, (void)value;
    return -1;
}

int tp__qjs_proto_lacks(JSValueConst v, JSAtom atom)
{
    (void)v, (void)atom;
    return 0;
}

const uint8_t *tp__qjs_latin1(JSValueConst v, uint32_t *len)
{
    (void)v, (void)len;
    return NULL;
}

int tp__qjs_shaped_slot(JSValueConst v, const void *shape, int i, JSValueConst *out)
{
    (void)v, (void)shape, (void)i, (void)out;
    return 0;
}

JSValue tp__qjs_slot_swap(JSValueConst v, int i, JSValue x)
{
    (void)v, (void)i;
    return x; /* never called: nothing is reusable */
}

int tp__qjs_reusable(JSValueConst v, const void *shape, const void *proto)
{
    (void)v, (void)shape, (void)proto;
    return 0;
}

int tp__qjs_reshape(JSContext *ctx, JSValueConst v, JSValueConst kept, const JSAtom *atoms,
                    uint32_t n, JSValue *vals, const void *proto)
{
    (void)ctx, (void)v, (void)kept, (void)atoms, (void)n, (void)vals, (void)proto;
    return 1;
}

#endif

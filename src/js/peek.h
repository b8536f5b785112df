/* Read-only views of a few QuickJS internals (the pinned 2021-03-27 release):
 * strings, plain objects and their shapes, so the bridge can read metadata
 * objects without allocating. The layouts copy quickjs.c; tp__js_peek_check()
 * verifies them on a live runtime at start-up and the bridge uses these views
 * only when that check passed (the public API otherwise). Internal to src/js. */
#ifndef TP_JS_PEEK_H
#define TP_JS_PEEK_H

#include <stdint.h>

#include "quickjs.h"

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
    void *proto;
    struct tpq_shape_prop prop[0];
};

/* JSProperty (only the plain-value member is read) */
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
#define TPQ_ATOM_TAG_INT (1U << 31)

/* The object of v when it is an ordinary object (class Object, no exotic
 * behaviour), else NULL. */
static inline struct tpq_object *tpq_plain_object(JSValueConst v)
{
    if (JS_VALUE_GET_TAG(v) != JS_TAG_OBJECT)
        return NULL;
    struct tpq_object *p = JS_VALUE_GET_PTR(v);
    if (p->class_id != TPQ_CLASS_OBJECT || p->is_exotic || p->fast_array)
        return NULL;
    return p;
}

static inline struct tpq_string *tpq_string(JSValueConst v)
{
    return JS_VALUE_GET_PTR(v);
}

/* 1 when the layouts above match the running QuickJS (checked once per VM
 * on objects and strings it creates). */
int tp__js_peek_check(JSContext *ctx);

#endif

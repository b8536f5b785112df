/* Read and write access to QuickJS objects and strings below the public API
 * (their private layouts), for the allocation-free fast paths of the bridge,
 * the VM's recycled objects and the native `if`. qjs_internals.c is the only
 * file that knows those layouts. Built with TP_QJS_INTERNALS=OFF (CMake) it
 * knows none: tp__qjs_check() is 0 and every function declines, so callers
 * take their public-API path. Internal to src/js. */
#ifndef TP_JS_QJS_INTERNALS_H
#define TP_JS_QJS_INTERNALS_H

#include <stdint.h>

#include "quickjs.h"

/* 1 when this build reads QuickJS internals (TP_QJS_INTERNALS=ON). */
int tp__qjs_built_in(void);

/* 1 when this build reads QuickJS internals and the layouts match the
 * runtime of ctx (checked on objects and strings it creates). Callers use
 * the functions below only on runtimes where this returned 1. */
int tp__qjs_check(JSContext *ctx);

/* Identities (compared, never dereferenced by callers): the shape (property
 * layout) of an object, and the prototype of an object's shape; NULL when v
 * is not an object. */
const void *tp__qjs_shape(JSValueConst v);
const void *tp__qjs_proto(JSValueConst v);

/* One own property of an ordinary object, in its shape order. atom is
 * JS_ATOM_NULL for a deleted slot; value is borrowed (meaningful only when
 * flags & JS_PROP_TMASK is JS_PROP_NORMAL); when it is an 8-bit string,
 * latin1/len are its characters (as tp__qjs_latin1), else latin1 is NULL. */
struct tp_qjs_prop {
    JSAtom atom;
    int flags; /* JS_PROP_* */
    JSValueConst value;
    const uint8_t *latin1;
    uint32_t len;
};

/* The own properties of v into props (at most max) when v is an ordinary
 * object (class Object, no exotic behaviour, not a fast array): returns their
 * count, or -1 (not such an object, or more than max properties). */
int tp__qjs_plain_props(JSValueConst v, struct tp_qjs_prop *props, int max);

/* 1 when v is an ordinary object whose own properties are all plain data
 * properties holding strings (deleted slots aside); else 0. */
int tp__qjs_string_values(JSValueConst v);

/* Own property atom of the ordinary object v: 1 with *value (borrowed) when it
 * is a plain data property, 0 when v has no such own property, -1 otherwise
 * (an accessor, or v is not an ordinary object). */
int tp__qjs_own_data(JSValueConst v, JSAtom atom, JSValueConst *value);

/* 1 when the prototype of v is an ordinary object without an own property
 * atom and whose own prototype is null (Object.prototype, unmodified there). */
int tp__qjs_proto_lacks(JSValueConst v, JSAtom atom);

/* The characters of an 8-bit (Latin-1) string value, *len of them; NULL when
 * v is not a string or is a wide (UTF-16) one. */
const uint8_t *tp__qjs_latin1(JSValueConst v, uint32_t *len);

/* 1 with *out = own property i (borrowed) when v is an object whose shape is
 * exactly `shape` (so the caller knows which property i is); else 0. */
int tp__qjs_shaped_slot(JSValueConst v, const void *shape, int i, JSValueConst *out);
/* Stores x (consumed) as the value of own data property i of the object v
 * and returns the previous value (now the caller's). The caller knows v's
 * shape. */
JSValue tp__qjs_slot_swap(JSValueConst v, int i, JSValue x);

/* 1 when v can be recycled in place: an ordinary object referenced only by
 * the caller, extensible, without weak references, whose prototype is proto
 * and, when shape is not NULL, whose shape is shape. */
int tp__qjs_reusable(JSValueConst v, const void *shape, const void *proto);

/* Turns the reusable object v into one holding exactly atoms[i] = vals[i]
 * (i < n, plain enumerable writable configurable properties), taking the
 * shape of `kept`, an object that already has exactly those properties with
 * those flags and prototype proto. Returns 0 done (vals consumed), 1 declined
 * with v unchanged, -1 declined with v's values already freed (the caller
 * frees v). vals are not consumed when declining. */
int tp__qjs_reshape(JSContext *ctx, JSValueConst v, JSValueConst kept, const JSAtom *atoms,
                    uint32_t n, JSValue *vals, const void *proto);

#endif

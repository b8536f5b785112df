/* Marshalling between tagproc messages and JavaScript values (SPEC 2, 3.3):
 * msg = {payload, meta} in, metadata strings and a tp_value out, through the
 * public QuickJS API, the VM's caches (vm.c) and, when usable on the VM, the
 * allocation-free reads of qjs_internals.c. Internal to src/js. Functions
 * returning -1 leave a JS exception pending in vm->ctx. */
#ifndef TP_JS_BRIDGE_H
#define TP_JS_BRIDGE_H

#include "core/msg.h"
#include "js/js_internal.h"
#include "js/qjs_internals.h"
#include "core/number.h"

/* The payload bytes as JS: JSON when valid (bare numbers without a parse),
 * else a string. orig (may be NULL) gets the number when the payload is a
 * bare JSON number. JS_EXCEPTION only when out of memory. */
JSValue tp__js_payload_new(struct tp_js_vm *vm, const char *p, size_t len, uint32_t flags,
                           struct tp_orig_number *orig);

/* {payload, meta} for an input message. */
JSValue tp__js_msg_new(struct tp_js_vm *vm, const struct tp_msg *in, struct tp_orig_number *orig);
/* {payload, meta} from two values (both consumed). */
JSValue tp__js_msg_make(struct tp_js_vm *vm, JSValue payload, JSValue meta);

/* Converts the values of meta in place to metadata strings (SPEC 3.3): null
 * and undefined keys are removed. 0 or -1. */
int tp__js_meta_normalize(struct tp_js_vm *vm, JSValueConst meta);
/* A new object holding the converted entries of meta (undefined/null: empty). */
JSValue tp__js_meta_copy(struct tp_js_vm *vm, JSValueConst meta);
/* Appends the converted entries of meta to m. 0, -1 or TP_NOMEM. */
int tp__js_meta_export(struct tp_js_vm *vm, JSValueConst meta, struct tp_msg *m);

/* msg.payload or msg.meta (which: vm->a_payload / vm->a_meta), read in
 * place when msg has the usual {payload, meta} shape. New reference.
 * Inline: the stage loop reads them several times per message. */
static inline JSValue tp__js_msg_get(struct tp_js_vm *vm, JSValueConst msg, JSAtom which)
{
    JSValueConst v;
    if ((which == vm->a_payload || which == vm->a_meta) &&
        tp__qjs_shaped_slot(msg, vm->msg_shape, which == vm->a_meta, &v))
        return JS_DupValue(vm->ctx, v);
    return JS_GetProperty(vm->ctx, msg, which);
}
/* 1 when msg is exactly {payload, meta} with meta an object (nothing to
 * adopt when a stage returns it). */
int tp__js_msg_is_plain(struct tp_js_vm *vm, JSValueConst msg);

/* What must stay alive while a tp_value points into JS strings. */
struct tp_js_hold {
    JSContext *ctx;
    const char *cstr;
    char num[32];
};
/* Describes v as a tp_value: json 0 by type (strings as text, objects as
 * JSON), json 1 always as JSON text (TP_VALUE_UNDEFINED when JSON has none),
 * where a number that equals orig (may be NULL) is written with the input's
 * own text. 0 or -1. */
int tp__js_value_export(struct tp_js_vm *vm, JSValueConst v, int json,
                        const struct tp_orig_number *orig, struct tp_value *out,
                        struct tp_js_hold *hold);
void tp__js_hold_release(struct tp_js_hold *hold);

#endif

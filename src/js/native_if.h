/* Conditions evaluated without JavaScript: `if` expressions of the shape
 * msg.meta.KEY OP "LITERAL" (OP ===, ==, !==, !=) are recognised at start-up
 * and compared in C against the meta value read straight from the object;
 * whatever is not certain is left to the JavaScript function. Internal to src/js. */
#ifndef TP_JS_NATIVE_IF_H
#define TP_JS_NATIVE_IF_H

#include <stddef.h>
#include <stdint.h>

#include "js/js_internal.h"

struct tp_js_native_if {
    char *key; /* NUL-terminated, klen bytes */
    size_t klen;
    char *lit; /* the literal's value (ASCII), NUL-terminated, llen bytes */
    size_t llen;
    int negated; /* !== or != */
};

/* Parses the `if` source text; 1 with *out filled (free with
 * tp__js_native_if_fini) when it has the shape, 0 when it does not (or when
 * out of memory: the JavaScript function is always correct). */
int tp__js_native_if_parse(const char *src, struct tp_js_native_if *out);
void tp__js_native_if_fini(struct tp_js_native_if *ni);

enum tp_js_native_read {
    TP_JS_NATIVE_UNKNOWN, /* not certain: evaluate in JavaScript */
    TP_JS_NATIVE_ABSENT,  /* msg.meta[key] is undefined */
    TP_JS_NATIVE_STRING,  /* msg.meta[key] is the Latin-1 string *s (*n bytes) */
};

/* Reads msg.meta[key] without running JavaScript (qjs_internals.c): only when
 * msg has the usual {payload, meta} shape, meta is a plain object and the key
 * is an own plain data property holding an 8-bit string, or is absent from
 * meta and Object.prototype (meta's prototype). */
enum tp_js_native_read tp__js_native_read(struct tp_js_vm *vm, JSValueConst msg, JSAtom key,
                                          const char **s, size_t *n);

/* ni evaluated on msg: 1 true, 0 false, -1 unknown (call the function). */
int tp__js_native_if_eval(struct tp_js_vm *vm, JSValueConst msg, JSAtom key,
                          const struct tp_js_native_if *ni);

/* An index over a run of consecutive ===/== conditions on the same key
 * (steps [a, b) of a script): literal -> ascending step indices. */
struct tp_js_native_slot {
    const char *lit; /* borrowed from the condition; NULL: empty slot */
    size_t len;
    uint32_t off, cnt; /* into idx */
};
struct tp_js_native_run {
    size_t a, b;
    JSAtom atom; /* borrowed from the worker */
    struct tp_js_native_slot *tab;
    size_t mask;
    uint32_t *idx;
};

/* Builds the index of steps [a, b); conds[i] is step i's condition (all on the
 * same key, not negated). 0 or TP_NOMEM. */
int tp__js_native_run_build(struct tp_js_native_run *r, const struct tp_js_native_if *const *conds,
                            size_t a, size_t b, JSAtom atom);
void tp__js_native_run_fini(struct tp_js_native_run *r);
/* The first step >= from whose literal is s (n bytes), or r->b. */
size_t tp__js_native_run_next(const struct tp_js_native_run *r, const char *s, size_t n,
                              size_t from);

/* A worker's view of a script's native ifs: per step the key atom
 * (JS_ATOM_NULL when the step has no native if) and the run starting there. */
struct tp_js_native_index {
    JSAtom *atoms;
    struct tp_js_native_run *runs;
    size_t nruns, n;
    struct tp_js_native_run **run_at; /* per step: the run starting there, or NULL */
};

/* conds[i]: step i's native if or NULL. Indexes every run of at least two
 * ===/== conditions on the same key. 0 or TP_NOMEM (idx left empty). */
int tp__js_native_index_init(struct tp_js_native_index *idx, JSContext *ctx,
                             const struct tp_js_native_if *const *conds, size_t n);
void tp__js_native_index_fini(struct tp_js_native_index *idx, JSContext *ctx);

#endif

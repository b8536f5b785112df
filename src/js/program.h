/* One JavaScript snippet wrapped into a function, compiled once to QuickJS
 * bytecode at start-up (SPEC 3.1) and loaded into each worker's VM. Internal
 * to src/js (uses QuickJS types). */
#ifndef TP_JS_PROGRAM_H
#define TP_JS_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "js/js_internal.h"

enum tp_js_kind {
    TP_JS_BODY, /* function body, strict mode: (function(msg){"use strict";BODY\n}) */
    TP_JS_EXPR, /* expression, sloppy mode: (function(msg){return (EXPR\n);}) */
};

struct tp_js_program {
    enum tp_js_kind kind;
    char *src; /* wrapped source, NUL-terminated */
    size_t src_len;
    char *filename; /* QuickJS file name: the snippet's key path */
    char *stage;    /* "defaults", "conditions[1].if", ... */
    uint8_t *bc;    /* bytecode of the wrapping script */
    size_t bc_len;
};

/* Wraps and compiles snippet s (counts programs_compiled in stats, which may
 * be NULL: counted nowhere). A blank or absent
 * snippet gives *out = NULL and 0. A syntax error gives TP_CONFIG with err at
 * the YAML position: "<path>: SyntaxError: <message> (JS line N)".
 * Free with tp__js_program_free. */
int tp__js_program_new(const struct tp_js_snippet *s, enum tp_js_kind kind, const char *stage,
                       struct tp_stats *stats, struct tp_js_program **out, struct tp_error *err);
void tp__js_program_free(struct tp_js_program *p);

/* The function value from the bytecode (no compilation), or JS_EXCEPTION. */
JSValue tp__js_program_load(const struct tp_js_program *p, JSContext *ctx);
/* The function value compiled from source in ctx (naive mode; counts
 * programs_compiled in stats, may be NULL), or JS_EXCEPTION. */
JSValue tp__js_program_compile_in(const struct tp_js_program *p, JSContext *ctx,
                                  struct tp_stats *stats);

#endif

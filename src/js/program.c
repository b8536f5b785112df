/* Compile once: each snippet is wrapped on a single first line (so JS line
 * numbers are snippet line numbers), compiled in a scratch runtime with
 * JS_EVAL_FLAG_COMPILE_ONLY and kept as bytecode; workers load the bytecode
 * and evaluate the wrapping script once to obtain the function. */
#include "js/program.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"

static const char body_prefix[] = "(function(msg){\"use strict\";";
static const char body_suffix[] = "\n})";
static const char expr_prefix[] = "(function(msg){return (";
static const char expr_suffix[] = "\n);})";

static int blank(const char *s)
{
    if (!s)
        return 1;
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* Number of lines of code (a final newline does not start a line). */
static int snippet_lines(const char *code)
{
    int n = 1;
    for (const char *c = code; *c; c++)
        if (*c == '\n' && c[1])
            n++;
    return n;
}

void tp__js_program_free(struct tp_js_program *p)
{
    if (!p)
        return;
    free(p->src);
    free(p->filename);
    free(p->stage);
    free(p->bc);
    free(p);
}

static int wrap(struct tp_js_program *p, const char *code)
{
    const char *pre = p->kind == TP_JS_BODY ? body_prefix : expr_prefix;
    const char *suf = p->kind == TP_JS_BODY ? body_suffix : expr_suffix;
    size_t lp = strlen(pre), lc = strlen(code), ls = strlen(suf);
    p->src = malloc(lp + lc + ls + 1);
    if (!p->src)
        return TP_NOMEM;
    memcpy(p->src, pre, lp);
    memcpy(p->src + lp, code, lc);
    memcpy(p->src + lp + lc, suf, ls + 1);
    p->src_len = lp + lc + ls;
    return 0;
}

/* Compiles in the scratch context; on success fills p->bc. */
static int compile(struct tp_js_program *p, const struct tp_js_snippet *s, JSContext *ctx,
                   struct tp_stats *stats, struct tp_error *err)
{
    JSValue obj = JS_Eval(ctx, p->src, p->src_len, p->filename,
                          JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY);
    TP_STAT_ADD(stats, programs_compiled, 1);
    if (JS_IsException(obj)) {
        JSValue ex = JS_GetException(ctx);
        char text[384];
        int js_line = 0, line = s->line, col = s->col;
        tp__js_describe(ctx, ex, p->filename, text, sizeof(text), &js_line);
        JS_FreeValue(ctx, ex);
        /* YAML habits: `# note` in a rule reads to QuickJS as a private name. */
        const char *hint = strstr(text, "private name") && strchr(s->code, '#')
                               ? " (hint: JavaScript comments are // or /* */, not #)"
                               : "";
        int last = snippet_lines(s->code);
        if (js_line > last) /* found at the wrapper's closing line: the snippet's end */
            js_line = last;
        if (js_line > 0)
            tp_js_snippet_position(s, js_line, 1, &line, &col);
        if (js_line > 0)
            return tp_error_set_at(err, TP_CONFIG, s->file, line, col, "%s: %s (JS line %d)%s",
                                   p->filename, text, js_line, hint);
        return tp_error_set_at(err, TP_CONFIG, s->file, line, col, "%s: %s%s", p->filename, text,
                               hint);
    }
    size_t len = 0;
    uint8_t *bc = JS_WriteObject(ctx, &len, obj, JS_WRITE_OBJ_BYTECODE);
    JS_FreeValue(ctx, obj);
    if (!bc)
        return tp_error_set(err, TP_NOMEM, "%s: cannot serialise bytecode", p->filename);
    p->bc = malloc(len);
    if (p->bc) {
        memcpy(p->bc, bc, len);
        p->bc_len = len;
    }
    js_free(ctx, bc);
    return p->bc ? 0 : tp_error_set(err, TP_NOMEM, "out of memory");
}

int tp__js_program_new(const struct tp_js_snippet *s, enum tp_js_kind kind, const char *stage,
                       struct tp_stats *stats, struct tp_js_program **out, struct tp_error *err)
{
    *out = NULL;
    if (!s || blank(s->code))
        return 0;
    struct tp_js_program *p = calloc(1, sizeof(*p));
    if (!p)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    p->kind = kind;
    p->stage = strdup(stage);
    p->filename = strdup(s->path ? s->path : stage);
    if (!p->stage || !p->filename || wrap(p, s->code) != 0) {
        tp__js_program_free(p);
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    int rc;
    JSRuntime *rt = JS_NewRuntime();
    JSContext *ctx = rt ? JS_NewContext(rt) : NULL;
    if (!ctx)
        rc = tp_error_set(err, TP_NOMEM, "cannot create a JavaScript runtime");
    else
        rc = compile(p, s, ctx, stats, err);
    if (ctx)
        JS_FreeContext(ctx);
    if (rt)
        JS_FreeRuntime(rt);
    if (rc != 0) {
        tp__js_program_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

JSValue tp__js_program_load(const struct tp_js_program *p, JSContext *ctx)
{
    JSValue obj = JS_ReadObject(ctx, p->bc, p->bc_len, JS_READ_OBJ_BYTECODE);
    if (JS_IsException(obj))
        return obj;
    return JS_EvalFunction(ctx, obj); /* consumes obj; the script's value is the function */
}

JSValue tp__js_program_compile_in(const struct tp_js_program *p, JSContext *ctx,
                                  struct tp_stats *stats)
{
    TP_STAT_ADD(stats, programs_compiled, 1);
    return JS_Eval(ctx, p->src, p->src_len, p->filename, JS_EVAL_TYPE_GLOBAL);
}

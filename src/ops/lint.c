/* Config linter (see lint.h). Works on the option structs the processors
 * themselves parse (found through their option tables, so no plugin layout
 * is assumed) and on a small JavaScript tokenizer: enough to find literal
 * assignments, `return`, and writes to msg; not a parser. */
#include "ops/lint.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "pipeline/pipeline.h"
#include "core/plugin.h"
#include "core/stats.h"
#include "config/override.h"
#include "ops/ruletest.h"
#include "js/engine.h"
#include "processors/uns.h"

/* ---------- findings ---------- */

static void add(struct tp_lint_report *rep, enum tp_lint_severity sev, const char *file, int line,
                int col, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void add(struct tp_lint_report *rep, enum tp_lint_severity sev, const char *file, int line,
                int col, const char *fmt, ...)
{
    if (rep->n == rep->cap) {
        size_t nc = rep->cap ? rep->cap * 2 : 16;
        struct tp_lint_finding *v = realloc(rep->v, nc * sizeof(*v));
        if (!v) {
            rep->nomem = 1;
            return;
        }
        rep->v = v;
        rep->cap = nc;
    }
    struct tp_lint_finding *f = &rep->v[rep->n];
    f->severity = sev;
    f->blocks_run = 0;
    f->line = file ? line : 0;
    f->col = file ? col : 0;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Errors read exactly like every other config error (SPEC 1:
     * "FILE:LINE:COL: key.path: problem"); warnings say that they are. */
    const char *what = sev == TP_LINT_ERROR ? "" : "warning: ";
    if (file && line > 0)
        snprintf(f->text, sizeof(f->text), "%s:%d:%d: %s%s", file, line, col, what, msg);
    else
        snprintf(f->text, sizeof(f->text), "%s%s%s%s", file ? file : "", file ? ": " : "", what,
                 msg);
    for (size_t i = 0; i < rep->n; i++)
        if (strcmp(rep->v[i].text, f->text) == 0)
            return; /* found by two checks: reported once */
    rep->n++;
    if (sev == TP_LINT_ERROR)
        rep->errors++;
    else
        rep->warnings++;
}

/* An error that stops the config from running (not only a rule finding). */
static void add_blocking(struct tp_lint_report *rep, const struct tp_error *err)
{
    size_t before = rep->n;
    add(rep, TP_LINT_ERROR, tp_error_file(err), err->line, err->col, "%s", err->msg);
    if (rep->n > before) {
        rep->v[rep->n - 1].blocks_run = 1;
        rep->blocking++;
    }
}

void tp_lint_report_free(struct tp_lint_report *rep)
{
    free(rep->v);
    memset(rep, 0, sizeof(*rep));
}

/* ---------- tokenizer ---------- */

enum tok_type { T_IDENT, T_STR, T_NUM, T_PUNCT, T_TEMPLATE, T_REGEX };

struct tok {
    enum tok_type t;
    const char *s; /* in the source */
    size_t len;
    int line, col; /* 1-based inside the snippet */
};

struct toks {
    struct tok *v;
    size_t n, cap;
};

static const char *const puncts[] = {
    ">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "?\?=", "=>",
    "==",   "!=",  "<=",  ">=",  "&&",  "||",  "??",  "?.",  "++",  "--",  "+=",   "-=",
    "*=",   "/=",  "%=",  "&=",  "|=",  "^=",  "<<",  ">>",  "**",  NULL,
};

static int push_tok(struct toks *ts, enum tok_type t, const char *s, size_t len, int line, int col)
{
    if (ts->n == ts->cap) {
        size_t nc = ts->cap ? ts->cap * 2 : 64;
        struct tok *v = realloc(ts->v, nc * sizeof(*v));
        if (!v)
            return -1;
        ts->v = v;
        ts->cap = nc;
    }
    ts->v[ts->n++] = (struct tok){t, s, len, line, col};
    return 0;
}

static int tok_is(const struct tok *t, const char *text)
{
    return t && strlen(text) == t->len && memcmp(t->s, text, t->len) == 0;
}

/* A `/` starts a regular expression unless it follows a value. */
static int regex_allowed(const struct toks *ts)
{
    if (ts->n == 0)
        return 1;
    const struct tok *p = &ts->v[ts->n - 1];
    if (p->t == T_PUNCT)
        return !(tok_is(p, ")") || tok_is(p, "]") || tok_is(p, "}"));
    if (p->t == T_IDENT) {
        static const char *const kw[] = {"return",     "typeof", "case", "do",   "else",
                                         "in",         "of",     "new",  "void", "throw",
                                         "instanceof", "delete", NULL};
        for (int i = 0; kw[i]; i++)
            if (tok_is(p, kw[i]))
                return 1;
    }
    return 0;
}

static void adv(const char **p, int *line, int *col)
{
    if (**p == '\n')
        (*line)++, *col = 1;
    else
        (*col)++;
    (*p)++;
}

static int tokenize(const char *src, struct toks *ts)
{
    const char *p = src;
    int line = 1, col = 1;
#define ADV() adv(&p, &line, &col)
    while (*p) {
        if (isspace((unsigned char)*p)) {
            ADV();
            continue;
        }
        if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n')
                ADV();
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            ADV(), ADV();
            while (*p && !(p[0] == '*' && p[1] == '/'))
                ADV();
            if (*p)
                ADV(), ADV();
            continue;
        }
        const char *start = p;
        int l0 = line, c0 = col;
        enum tok_type t;
        if (*p == '"' || *p == '\'') {
            char q = *p;
            ADV();
            while (*p && *p != q && *p != '\n') {
                if (*p == '\\' && p[1])
                    ADV();
                ADV();
            }
            if (*p == q)
                ADV();
            t = T_STR;
        } else if (*p == '`') {
            int depth = 0;
            ADV();
            while (*p && (*p != '`' || depth > 0)) {
                if (*p == '\\' && p[1])
                    ADV();
                else if (p[0] == '$' && p[1] == '{')
                    depth++;
                else if (*p == '}' && depth > 0)
                    depth--;
                ADV();
            }
            if (*p)
                ADV();
            t = T_TEMPLATE;
        } else if (isalpha((unsigned char)*p) || *p == '_' || *p == '$' || (*p & 0x80)) {
            while (isalnum((unsigned char)*p) || *p == '_' || *p == '$' || (*p & 0x80))
                ADV();
            t = T_IDENT;
        } else if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
            while (isalnum((unsigned char)*p) || *p == '.' || *p == '_')
                ADV();
            t = T_NUM;
        } else if (*p == '/' && regex_allowed(ts)) {
            int cls = 0;
            ADV();
            while (*p && *p != '\n' && (*p != '/' || cls)) {
                if (*p == '\\' && p[1])
                    ADV();
                else if (*p == '[')
                    cls = 1;
                else if (*p == ']')
                    cls = 0;
                ADV();
            }
            if (*p == '/')
                ADV();
            while (isalpha((unsigned char)*p))
                ADV();
            t = T_REGEX;
        } else {
            size_t n = 1;
            for (int i = 0; puncts[i]; i++)
                if (strncmp(p, puncts[i], strlen(puncts[i])) == 0) {
                    n = strlen(puncts[i]);
                    break;
                }
            for (size_t i = 0; i < n; i++)
                ADV();
            t = T_PUNCT;
        }
        if (push_tok(ts, t, start, (size_t)(p - start), l0, c0) != 0)
            return -1;
    }
#undef ADV
    return 0;
}

/* The text of a simple string literal (no escapes); -1 otherwise. */
static int literal_text(const struct tok *t, char *out, size_t size)
{
    if (t->t != T_STR && !(t->t == T_TEMPLATE && !memchr(t->s, '$', t->len)))
        return -1;
    if (t->len < 2 || memchr(t->s, '\\', t->len) || t->len - 2 >= size)
        return -1;
    memcpy(out, t->s + 1, t->len - 2);
    out[t->len - 2] = '\0';
    return 0;
}

/* ---------- checks ---------- */

struct snip {
    const struct tp_js_snippet *js;
    const char *path; /* key path for messages */
};

static void at(const struct snip *s, const struct tok *t, int *line, int *col)
{
    tp_js_snippet_position(s->js, t ? t->line : 1, t ? t->col : 1, line, col);
}

/* Topic checks of a literal written to one of the four topic fields, using
 * the output's own rules with neutral values for the other parts. */
static void check_topic_literal(struct tp_lint_report *rep, const struct snip *s,
                                const struct tok *field_tok, const char *field,
                                const struct tok *lit)
{
    char v[256], why[256] = "";
    if (literal_text(lit, v, sizeof(v)) != 0)
        return;
    struct tp_buf topic;
    tp_buf_init(&topic);
    int bad = 0;
    if (strcmp(field, "location_path") == 0)
        bad = !*v ? (snprintf(why, sizeof(why), "location_path is empty"), 1)
                  : tp_uns_topic(v, "_c", NULL, "t", &topic, why, sizeof(why)) != 0;
    else if (strcmp(field, "data_contract") == 0)
        bad = !*v ? (snprintf(why, sizeof(why), "data_contract is empty"), 1)
                  : tp_uns_topic("l", v, NULL, "t", &topic, why, sizeof(why)) != 0;
    else if (strcmp(field, "virtual_path") == 0) {
        char t[256];
        snprintf(t, sizeof(t), "%s", v);
        char *b = t, *e = t + strlen(t);
        while (*b && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            *--e = '\0';
        if (*b)
            bad = tp_uns_topic("l", "_c", b, "t", &topic, why, sizeof(why)) != 0;
    } else if (strcmp(field, "tag_name") == 0)
        bad = !*v ? (snprintf(why, sizeof(why), "tag_name is empty"), 1)
                  : tp_uns_topic("l", "_c", NULL, v, &topic, why, sizeof(why)) != 0;
    tp_buf_free(&topic);
    if (!bad)
        return;
    int line, col;
    at(s, lit, &line, &col);
    (void)field_tok;
    add(rep, TP_LINT_ERROR, s->js->file, line, col,
        "%s: msg.meta.%s = \"%s\" breaks the topic rules (%s): every message would be dropped "
        "(invalid_topic)",
        s->path, field, v, why);
}

static int is_assign_op(const struct tok *t)
{
    static const char *const ops[] = {
        "=",  "+=", "-=", "*=",  "/=",  "%=",   "**=", "<<=", ">>=", ">>>=",
        "&=", "|=", "^=", "&&=", "||=", "?\?=", "++",  "--",  NULL};
    if (!t || t->t != T_PUNCT)
        return 0;
    for (int i = 0; ops[i]; i++)
        if (tok_is(t, ops[i]))
            return 1;
    return 0;
}

/* Index after the member chain starting at msg token i (".x", "?.x", "[...]"). */
static size_t member_chain_end(const struct toks *ts, size_t i)
{
    size_t j = i + 1;
    for (;;) {
        if (j + 1 < ts->n && (tok_is(&ts->v[j], ".") || tok_is(&ts->v[j], "?.")) &&
            ts->v[j + 1].t == T_IDENT) {
            j += 2;
        } else if (j < ts->n && tok_is(&ts->v[j], "[")) {
            int depth = 0;
            for (; j < ts->n; j++) {
                depth += tok_is(&ts->v[j], "[") - tok_is(&ts->v[j], "]");
                if (depth == 0)
                    break;
            }
            j++;
        } else
            return j;
    }
}

/* Literal assignments to the topic fields: msg.meta.F = "..." or msg.meta["F"] = "...". */
static void check_meta_literals(struct tp_lint_report *rep, const struct snip *s,
                                const struct toks *ts)
{
    static const char *const fields[] = {"location_path", "data_contract", "virtual_path",
                                         "tag_name", NULL};
    for (size_t i = 0; i + 5 < ts->n; i++) {
        const struct tok *v = ts->v;
        if (!tok_is(&v[i], "msg") || (i > 0 && tok_is(&v[i - 1], ".")) || !tok_is(&v[i + 1], ".") ||
            !tok_is(&v[i + 2], "meta"))
            continue;
        size_t k = i + 3;
        char field[64];
        if (tok_is(&v[k], ".") && v[k + 1].t == T_IDENT && v[k + 1].len < sizeof(field)) {
            snprintf(field, sizeof(field), "%.*s", (int)v[k + 1].len, v[k + 1].s);
            k += 2;
        } else if (tok_is(&v[k], "[") && k + 2 < ts->n && tok_is(&v[k + 2], "]") &&
                   literal_text(&v[k + 1], field, sizeof(field)) == 0) {
            k += 3;
        } else
            continue;
        if (k + 1 >= ts->n || !tok_is(&v[k], "="))
            continue;
        const struct tok *lit = &v[k + 1];
        const struct tok *after = k + 2 < ts->n ? &v[k + 2] : NULL;
        /* Only a whole literal: followed by ; } , ) end of code, or a new line. */
        if (after && !tok_is(after, ";") && !tok_is(after, "}") && after->line == lit->line)
            continue;
        for (int f = 0; fields[f]; f++)
            if (strcmp(field, fields[f]) == 0)
                check_topic_literal(rep, s, &v[i], field, lit);
    }
}

/* Node-RED habits without meaning here: msg.topic (the topic is metadata),
 * `return [[...]]` (one array per output: tagproc has one output) and the
 * asynchronous node API. One warning each, at the first place. */
static void check_node_red(struct tp_lint_report *rep, const struct snip *s, const struct toks *ts)
{
    int topic = 0, outputs = 0, async = 0, line, col;
    for (size_t i = 0; i + 2 < ts->n; i++) {
        const struct tok *v = &ts->v[i];
        if (i > 0 && (tok_is(&v[-1], ".") || tok_is(&v[-1], "?.")))
            continue;
        if (!topic && tok_is(v, "msg") && (tok_is(&v[1], ".") || tok_is(&v[1], "?.")) &&
            tok_is(&v[2], "topic")) {
            topic = 1;
            at(s, v, &line, &col);
            add(rep, TP_LINT_WARNING, s->js->file, line, col,
                "%s: msg.topic has no meaning in tagproc (a Node-RED habit): it is neither set "
                "from the input nor used by an output; use metadata (msg.meta.KEY, and "
                "${! meta(\"KEY\") } in the output's topic)",
                s->path);
        } else if (!outputs && tok_is(v, "return") && tok_is(&v[1], "[") && tok_is(&v[2], "[")) {
            outputs = 1;
            at(s, v, &line, &col);
            add(rep, TP_LINT_WARNING, s->js->file, line, col,
                "%s: `return [[...]]` is Node-RED's multiple outputs; tagproc has one output "
                "and takes an array of messages as a fan-out: return msg or [msg1, msg2]",
                s->path);
        } else if (!async && tok_is(v, "node") && tok_is(&v[1], ".") &&
                   (tok_is(&v[2], "send") || tok_is(&v[2], "done") || tok_is(&v[2], "status"))) {
            async = 1;
            at(s, v, &line, &col);
            add(rep, TP_LINT_WARNING, s->js->file, line, col,
                "%s: node.%.*s is not available (only node.log, node.warn and node.error): "
                "return the message(s) instead",
                s->path, (int)v[2].len, v[2].s);
        }
    }
}

static void check_body(struct tp_lint_report *rep, const struct snip *s, const struct toks *ts)
{
    check_meta_literals(rep, s, ts);
    check_node_red(rep, s, ts);
    for (size_t i = 0; i < ts->n; i++)
        if (ts->v[i].t == T_IDENT && tok_is(&ts->v[i], "return"))
            return;
    int line, col;
    at(s, ts->n ? &ts->v[0] : NULL, &line, &col);
    add(rep, TP_LINT_WARNING, s->js->file, line, col,
        "%s: no `return`: the function returns undefined, so every message is dropped "
        "(filtered); end with `return msg;`",
        s->path);
}

static void check_if(struct tp_lint_report *rep, const struct snip *s, const struct toks *ts)
{
    for (size_t i = 0; i < ts->n; i++) {
        const struct tok *t = &ts->v[i];
        if (!tok_is(t, "msg") ||
            (i > 0 && (tok_is(&ts->v[i - 1], ".") || tok_is(&ts->v[i - 1], "?."))))
            continue;
        size_t e = member_chain_end(ts, i);
        int pre = i > 0 && (tok_is(&ts->v[i - 1], "++") || tok_is(&ts->v[i - 1], "--") ||
                            tok_is(&ts->v[i - 1], "delete"));
        if (pre || (e < ts->n && is_assign_op(&ts->v[e]))) {
            int line, col;
            at(s, t, &line, &col);
            add(rep, TP_LINT_WARNING, s->js->file, line, col,
                "%s: the if expression modifies msg (`%.*s`); what an if changes is unspecified: "
                "use == / === to compare, change msg in `then`",
                s->path, (int)((e < ts->n ? ts->v[e].s + ts->v[e].len : t->s + t->len) - t->s),
                t->s);
            return;
        }
    }
}

/* Tokens joined by single spaces: equal for the same code, whatever the layout. */
static char *normalized(const struct toks *ts)
{
    struct tp_buf b;
    tp_buf_init(&b);
    tp_buf_puts(&b, "");
    for (size_t i = 0; i < ts->n; i++) {
        if (i)
            tp_buf_putc(&b, ' ');
        tp_buf_append(&b, ts->v[i].s, ts->v[i].len);
    }
    size_t len;
    return tp_buf_take(&b, &len);
}

/* ---------- per processor ---------- */

static const struct tp_option *find_opt(const struct tp_option *t, const char *name,
                                        enum tp_opt_type type)
{
    for (; t && t->name; t++)
        if (strcmp(t->name, name) == 0 && t->type == type)
            return t;
    return NULL;
}

static void compile_check(struct tp_lint_report *rep, const struct tp_js_snippet *js,
                          const char *label, const char *stage, int is_if)
{
    if (!js->code)
        return;
    struct tp_js_limits lim = {.timeout_ms = 100, .memory_limit_mb = 64, .cache_max_entries = 16};
    struct tp_js_script *sc;
    struct tp_error err = {0};
    if (tp_js_script_new(label, &lim, &sc, &err) != 0)
        return;
    struct tp_js_snippet none = {0};
    int rc = is_if ? tp_js_script_add_condition(sc, js, &none, 0, &err)
                   : tp_js_script_add_body(sc, js, stage, &err);
    tp_js_script_free(sc); /* a check with no metrics registry: in no pipeline's counters */
    if (rc == TP_CONFIG)
        add_blocking(rep, &err);
}

struct cond_info {
    char *if_norm, *then_norm;
};

static void lint_snippet(struct tp_lint_report *rep, const struct tp_js_snippet *js,
                         const char *label, const char *stage, int is_if, unsigned flags,
                         char **norm)
{
    if (!js->code || !*js->code)
        return;
    if (flags & TP_LINT_COMPILE)
        compile_check(rep, js, label, stage, is_if);
    struct toks ts = {0};
    if (tokenize(js->code, &ts) != 0)
        rep->nomem = 1;
    else {
        struct snip s = {js, js->path ? js->path : stage};
        if (ts.n == 0)
            ;
        else if (is_if)
            check_if(rep, &s, &ts);
        else
            check_body(rep, &s, &ts);
        if (norm && !(*norm = normalized(&ts)))
            rep->nomem = 1;
    }
    free(ts.v);
}

static void lint_processor(struct tp_lint_report *rep, const struct tp_processor_plugin *pl,
                           const void *cfg, const char *label, unsigned flags)
{
    static const char *const bodies[] = {"defaults", "code", NULL};
    for (int b = 0; bodies[b]; b++) {
        const struct tp_option *o = find_opt(pl->options, bodies[b], TP_OPT_JS);
        if (o)
            lint_snippet(rep, (const void *)((const char *)cfg + o->offset), label, bodies[b], 0,
                         flags, NULL);
    }
    const struct tp_option *co = find_opt(pl->options, "conditions", TP_OPT_LIST);
    const struct tp_option *ifo = co ? find_opt(co->sub, "if", TP_OPT_JS) : NULL;
    const struct tp_option *tho = co ? find_opt(co->sub, "then", TP_OPT_JS) : NULL;
    if (ifo && tho) {
        const struct tp_list *l = (const void *)((const char *)cfg + co->offset);
        struct cond_info *ci = calloc(l->n ? l->n : 1, sizeof(*ci));
        if (!ci)
            rep->nomem = 1;
        for (size_t i = 0; ci && i < l->n; i++) {
            const char *item = (const char *)l->items + i * co->elem_size;
            const struct tp_js_snippet *ifs = (const void *)(item + ifo->offset);
            const struct tp_js_snippet *ths = (const void *)(item + tho->offset);
            char st[64];
            snprintf(st, sizeof(st), "conditions[%zu].if", i);
            lint_snippet(rep, ifs, label, st, 1, flags, &ci[i].if_norm);
            snprintf(st, sizeof(st), "conditions[%zu].then", i);
            lint_snippet(rep, ths, label, st, 0, flags, &ci[i].then_norm);
            for (size_t k = 0; ci[i].if_norm && k < i; k++) {
                if (!ci[k].if_norm || strcmp(ci[k].if_norm, ci[i].if_norm) != 0)
                    continue;
                int line, col;
                tp_js_snippet_position(ifs, 1, 1, &line, &col);
                if (ci[i].then_norm && ci[k].then_norm &&
                    strcmp(ci[i].then_norm, ci[k].then_norm) == 0)
                    add(rep, TP_LINT_WARNING, ifs->file, line, col,
                        "%s: condition %zu is identical to condition %zu (same if and then): it "
                        "is shadowed by the earlier one and its then runs a second time on the "
                        "same messages",
                        ifs->path, i, k);
                else
                    add(rep, TP_LINT_WARNING, ifs->file, line, col,
                        "%s: duplicate if expression (same as conditions[%zu].if); every "
                        "matching condition applies, so both thens run: merge them",
                        ifs->path, k);
                break;
            }
        }
        for (size_t i = 0; ci && i < l->n; i++) {
            free(ci[i].if_norm);
            free(ci[i].then_norm);
        }
        free(ci);
    }
    const struct tp_option *ao = find_opt(pl->options, "advancedProcessing", TP_OPT_JS);
    if (ao)
        lint_snippet(rep, (const void *)((const char *)cfg + ao->offset), label,
                     "advancedProcessing", 0, flags, NULL);
}

static void found_blocking(void *rep, const struct tp_error *err)
{
    add_blocking(rep, err);
}

static int lint_config(const struct tp_config *cfg, unsigned flags, struct tp_lint_report *rep);

/* File order: by line and column, stable (an insertion sort over a few
 * findings). */
static void sort_by_position(struct tp_lint_report *rep)
{
    for (size_t i = 1; i < rep->n; i++) {
        struct tp_lint_finding f = rep->v[i];
        size_t j = i;
        while (j > 0 && (rep->v[j - 1].line > f.line ||
                         (rep->v[j - 1].line == f.line && rep->v[j - 1].col > f.col))) {
            rep->v[j] = rep->v[j - 1];
            j--;
        }
        rep->v[j] = f;
    }
}

static void lint_ignored_keys(const struct tp_config *cfg, struct tp_lint_report *rep)
{
    struct tp_buf names;
    tp_buf_init(&names);
    const struct tp_node *first = NULL;
    if (tp_pipeline_ignored_keys(cfg, &names, &first) == TP_OK && first)
        add(rep, TP_LINT_WARNING, first->file, first->line, first->col,
            "Benthos keys without meaning in tagproc, accepted and ignored: %s", names.data);
    tp_buf_free(&names);
}

static void found_deprecated(void *ud, const struct tp_error *err)
{
    add(ud, TP_LINT_WARNING, tp_error_file(err), err->line, err->col, "%s", err->msg);
}

int tp_lint_config(const struct tp_config *cfg, unsigned flags, struct tp_lint_report *rep)
{
    int rc = lint_config(cfg, flags, rep);
    sort_by_position(rep);
    return rc ? rc : rep->nomem ? TP_NOMEM : TP_OK;
}

static int lint_config(const struct tp_config *cfg, unsigned flags, struct tp_lint_report *rep)
{
    struct tp_error err = {0};
    tp_pipeline_check(cfg, found_blocking, rep);
    lint_ignored_keys(cfg, rep);
    tp_pipeline_deprecated(cfg, found_deprecated, rep);
    const struct tp_node *pipe = tp_node_get(cfg->root, "pipeline");
    const struct tp_node *procs = pipe ? tp_node_get(pipe, "processors") : NULL;
    if (procs && procs->type != TP_NODE_SEQ && procs->type != TP_NODE_NULL) {
        tp_error_set_at(&err, TP_CONFIG, procs->file, procs->line, procs->col,
                        "pipeline.processors: expected list, got %s", tp_node_type_name(procs));
        add_blocking(rep, &err);
    }
    if (!procs || procs->type != TP_NODE_SEQ)
        return 0;
    for (size_t i = 0; i < procs->n; i++) {
        const struct tp_node *item = procs->items[i];
        if (item->type != TP_NODE_MAP || item->n != 1) {
            tp_error_set_at(&err, TP_CONFIG, item->file, item->line, item->col,
                            "pipeline.processors[%zu]: expected a map with exactly one processor "
                            "(%s), got %s%s",
                            i, tp_plugin_names("processor"), tp_node_type_name(item),
                            item->type == TP_NODE_MAP ? " with other than one key" : "");
            add_blocking(rep, &err);
            continue;
        }
        const struct tp_processor_plugin *pl = tp_processor_find(item->keys[0]);
        char label[192];
        snprintf(label, sizeof(label), "pipeline.processors[%zu].%s", i, item->keys[0]);
        if (!pl) {
            const struct tp_node *k = item->key_nodes[0];
            tp_error_set_at(&err, TP_CONFIG, k->file, k->line, k->col,
                            "%s: unknown processor; valid processors: %s", label,
                            tp_plugin_names("processor"));
            add_blocking(rep, &err);
            continue;
        }
        void *pc = calloc(1, pl->config_size ? pl->config_size : 1);
        if (!pc)
            return TP_NOMEM;
        if (tp_options_parse_all(pl->options, item->items[0], label, pc, found_blocking, rep) ==
            TP_OK)
            lint_processor(rep, pl, pc, label, flags);
        tp_options_free(pl->options, pc);
        free(pc);
    }
    return 0;
}

/* ---------- command line ---------- */

/* A rule test file: by its name, or by its `cases:` list. */
static int is_rule_test(const char *path, const struct tp_config *cfg)
{
    size_t n = strlen(path);
    return (n > 10 && strcmp(path + n - 10, ".test.yaml") == 0) ||
           (n > 9 && strcmp(path + n - 9, ".test.yml") == 0) || tp_node_get(cfg->root, "cases");
}

int tp_lint_main(int argc, char **argv, void (*usage)(FILE *out))
{
    static const struct option longopts[] = {
        {"strict", no_argument, NULL, 's'},
        {"set", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int strict = 0, c;
    char *sets[64];
    size_t nsets = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 's') {
            strict = 1;
        } else if (c == 'S' && nsets < 64) {
            sets[nsets++] = optarg;
        } else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "tagproc lint: missing CONFIG\n");
        return 2;
    }
    int errors = 0, warnings = 0;
    for (int i = optind; i < argc; i++) {
        struct tp_config *cfg = NULL;
        struct tp_error err = {0};
        if (tp_config_load_file(argv[i], &cfg, &err) != 0) {
            char text[1024];
            tp_error_format(&err, text, sizeof(text));
            printf("%s\n", text);
            errors++;
            continue;
        }
        struct tp_lint_report rep = {0};
        if (is_rule_test(argv[i], cfg)) {
            tp_ruletest_check(argv[i], found_blocking, &rep);
        } else {
            int set_rc = TP_OK;
            for (size_t k = 0; k < nsets && set_rc == TP_OK; k++)
                set_rc = tp_config_set(cfg, sets[k], &err);
            if (set_rc != TP_OK)
                add_blocking(&rep, &err);
            else if (tp_lint_config(cfg, TP_LINT_COMPILE, &rep) != TP_OK) {
                fprintf(stderr, "%s: out of memory: cannot check it\n", argv[i]);
                errors++;
            }
        }
        for (size_t k = 0; k < rep.n; k++)
            printf("%s\n", rep.v[k].text);
        errors += rep.errors;
        warnings += rep.warnings;
        tp_lint_report_free(&rep);
        tp_config_free(cfg);
    }
    fprintf(stderr, "%d error%s, %d warning%s\n", errors, errors == 1 ? "" : "s", warnings,
            warnings == 1 ? "" : "s");
    return errors ? 2 : (warnings && strict) ? 1 : 0;
}

/* Native evaluation of the common `if` shape (msg.meta.KEY === "literal" and
 * its ==, !==, != and bracket/reversed forms): a strict recogniser of the
 * source text, and a metadata read that never runs JavaScript and reports
 * "unknown" for anything it cannot decide exactly like JavaScript would. */
#include "js/native_if.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "js/qjs_internals.h"

struct cursor {
    const char *p;
};

static void skip_ws(struct cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')
        c->p++;
}

static int ident_start(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '$';
}

static int ident_char(char ch)
{
    return ident_start(ch) || (ch >= '0' && ch <= '9');
}

/* A quoted string with simple escapes and printable ASCII only; the value
 * goes to buf (at most cap bytes). Returns its length or -1. */
static long parse_string(struct cursor *c, char *buf, size_t cap)
{
    char q = *c->p;
    if (q != '"' && q != '\'')
        return -1;
    const char *p = c->p + 1;
    size_t n = 0;
    for (;; p++) {
        char ch = *p;
        if (ch == q)
            break;
        if (ch == '\\') {
            p++;
            switch (*p) {
            case '\\':
            case '\'':
            case '"':
                ch = *p;
                break;
            case 'n':
                ch = '\n';
                break;
            case 't':
                ch = '\t';
                break;
            case 'r':
                ch = '\r';
                break;
            default:
                return -1;
            }
        } else if ((unsigned char)ch < 0x20 || (unsigned char)ch > 0x7e) {
            return -1; /* end of text, line breaks, non-ASCII */
        }
        if (n == cap)
            return -1;
        buf[n++] = ch;
    }
    c->p = p + 1;
    return (long)n;
}

/* msg.meta.KEY or msg.meta["KEY"]; the key (identifier characters, or a
 * bracketed string that is not index-like) goes to buf. Length or -1. */
static long parse_meta(struct cursor *c, char *buf, size_t cap)
{
    static const char head[] = "msg.meta";
    if (strncmp(c->p, head, sizeof(head) - 1) != 0)
        return -1;
    const char *p = c->p + sizeof(head) - 1;
    long n = 0;
    if (*p == '.') {
        p++;
        if (!ident_start(*p))
            return -1;
        while (ident_char(*p)) {
            if ((size_t)n == cap)
                return -1;
            buf[n++] = *p++;
        }
    } else if (*p == '[') {
        struct cursor s = {p + 1};
        n = parse_string(&s, buf, cap);
        if (n <= 0 || *s.p != ']')
            return -1;
        int digits = 1;
        for (long i = 0; i < n; i++)
            digits &= buf[i] >= '0' && buf[i] <= '9';
        if (digits)
            return -1; /* index-like keys are stored differently */
        p = s.p + 1;
    } else {
        return -1;
    }
    c->p = p;
    return n;
}

/* === == !== != ; 1 negated, 0 not, -1 none. */
static int parse_op(struct cursor *c)
{
    const char *p = c->p;
    int neg = 0;
    if (*p == '!')
        neg = 1;
    else if (*p != '=')
        return -1;
    if (p[1] != '=')
        return -1;
    p += 2;
    if (*p == '=')
        p++;
    c->p = p;
    return neg;
}

int tp__js_native_if_parse(const char *src, struct tp_js_native_if *out)
{
    char key[256], lit[1024];
    long kn = -1, ln = -1;
    int neg, parens = 0;
    struct cursor c = {src};
    memset(out, 0, sizeof(*out));
    if (!src)
        return 0;
    skip_ws(&c);
    while (*c.p == '(') {
        c.p++;
        parens++;
        skip_ws(&c);
    }
    if (*c.p == 'm') {
        if ((kn = parse_meta(&c, key, sizeof(key) - 1)) < 0)
            return 0;
    } else if ((ln = parse_string(&c, lit, sizeof(lit) - 1)) < 0) {
        return 0;
    }
    skip_ws(&c);
    if ((neg = parse_op(&c)) < 0)
        return 0;
    skip_ws(&c);
    if (kn < 0) {
        if ((kn = parse_meta(&c, key, sizeof(key) - 1)) < 0)
            return 0;
    } else if ((ln = parse_string(&c, lit, sizeof(lit) - 1)) < 0) {
        return 0;
    }
    for (;;) {
        skip_ws(&c);
        if (*c.p == ')' && parens > 0) {
            c.p++;
            parens--;
        } else if (c.p[0] == '/' && c.p[1] == '/') {
            while (*c.p && *c.p != '\n' && *c.p != '\r')
                c.p++;
        } else {
            break;
        }
    }
    if (*c.p || parens)
        return 0;
    out->key = malloc((size_t)kn + 1);
    out->lit = malloc((size_t)ln + 1);
    if (!out->key || !out->lit) {
        tp__js_native_if_fini(out);
        return 0;
    }
    memcpy(out->key, key, (size_t)kn);
    out->key[kn] = 0;
    memcpy(out->lit, lit, (size_t)ln);
    out->lit[ln] = 0;
    out->klen = (size_t)kn;
    out->llen = (size_t)ln;
    out->negated = neg;
    return 1;
}

void tp__js_native_if_fini(struct tp_js_native_if *ni)
{
    free(ni->key);
    free(ni->lit);
    memset(ni, 0, sizeof(*ni));
}

enum tp_js_native_read tp__js_native_read(struct tp_js_vm *vm, JSValueConst msg, JSAtom key,
                                          const char **s, size_t *n)
{
    JSValueConst meta, v;
    if (!vm->peek_ok || !tp__qjs_shaped_slot(msg, vm->msg_shape, 1, &meta))
        return TP_JS_NATIVE_UNKNOWN; /* not the usual {payload, meta} msg */
    int own = tp__qjs_own_data(meta, key, &v);
    if (own > 0) {
        uint32_t len = 0;
        const uint8_t *b = tp__qjs_latin1(v, &len);
        if (!b)
            return TP_JS_NATIVE_UNKNOWN; /* not a string, or a wide one */
        *s = (const char *)b;
        *n = len;
        return TP_JS_NATIVE_STRING;
    }
    /* Absent: undefined unless Object.prototype (whose prototype is null) has it. */
    if (own < 0 || !vm->obj_proto || tp__qjs_proto(meta) != vm->obj_proto ||
        !tp__qjs_proto_lacks(meta, key))
        return TP_JS_NATIVE_UNKNOWN;
    return TP_JS_NATIVE_ABSENT;
}

int tp__js_native_if_eval(struct tp_js_vm *vm, JSValueConst msg, JSAtom key,
                          const struct tp_js_native_if *ni)
{
    const char *s = NULL;
    size_t n = 0;
    enum tp_js_native_read r = tp__js_native_read(vm, msg, key, &s, &n);
    if (r == TP_JS_NATIVE_UNKNOWN)
        return -1;
    /* A string literal equals only the same string; == adds no coercion
     * between two strings, and undefined == "..." is false. */
    int eq = r == TP_JS_NATIVE_STRING && n == ni->llen && memcmp(s, ni->lit, n) == 0;
    return eq != ni->negated;
}

static struct tp_js_native_slot *find_slot(const struct tp_js_native_run *r, const char *s,
                                           size_t n)
{
    size_t i = (size_t)tp_hash_bytes(s, n) & r->mask;
    for (;; i = (i + 1) & r->mask) {
        struct tp_js_native_slot *sl = &r->tab[i];
        if (!sl->lit || (sl->len == n && memcmp(sl->lit, s, n) == 0))
            return sl;
    }
}

int tp__js_native_run_build(struct tp_js_native_run *r, const struct tp_js_native_if *const *conds,
                            size_t a, size_t b, JSAtom atom)
{
    memset(r, 0, sizeof(*r));
    r->a = a;
    r->b = b;
    r->atom = atom;
    size_t cap = 4;
    while (cap < 2 * (b - a))
        cap *= 2;
    r->tab = calloc(cap, sizeof(*r->tab));
    r->idx = calloc(b - a, sizeof(*r->idx));
    if (!r->tab || !r->idx) {
        tp__js_native_run_fini(r);
        return TP_NOMEM;
    }
    r->mask = cap - 1;
    for (size_t i = a; i < b; i++) { /* count */
        struct tp_js_native_slot *sl = find_slot(r, conds[i]->lit, conds[i]->llen);
        sl->lit = conds[i]->lit;
        sl->len = conds[i]->llen;
        sl->cnt++;
    }
    uint32_t off = 0;
    for (size_t i = 0; i < cap; i++) { /* offsets; cnt becomes the fill count */
        if (!r->tab[i].lit)
            continue;
        r->tab[i].off = off;
        off += r->tab[i].cnt;
        r->tab[i].cnt = 0;
    }
    for (size_t i = a; i < b; i++) { /* fill in ascending order */
        struct tp_js_native_slot *sl = find_slot(r, conds[i]->lit, conds[i]->llen);
        r->idx[sl->off + sl->cnt++] = (uint32_t)i;
    }
    return 0;
}

void tp__js_native_run_fini(struct tp_js_native_run *r)
{
    free(r->tab);
    free(r->idx);
    r->tab = NULL;
    r->idx = NULL;
}

size_t tp__js_native_run_next(const struct tp_js_native_run *r, const char *s, size_t n,
                              size_t from)
{
    const struct tp_js_native_slot *sl = find_slot(r, s, n);
    if (!sl->lit)
        return r->b;
    const uint32_t *v = r->idx + sl->off;
    size_t lo = 0, hi = sl->cnt; /* first v[k] >= from */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sl->cnt ? v[lo] : r->b;
}

void tp__js_native_index_fini(struct tp_js_native_index *idx, JSContext *ctx)
{
    for (size_t i = 0; i < idx->nruns; i++)
        tp__js_native_run_fini(&idx->runs[i]);
    if (idx->atoms)
        for (size_t i = 0; i < idx->n; i++)
            if (idx->atoms[i] != JS_ATOM_NULL)
                JS_FreeAtom(ctx, idx->atoms[i]);
    free(idx->runs);
    free(idx->run_at);
    free(idx->atoms);
    memset(idx, 0, sizeof(*idx));
}

/* 1 when conditions a and b are ===/== on the same key. */
static int same_run(const struct tp_js_native_if *a, const struct tp_js_native_if *b)
{
    return a && b && !a->negated && !b->negated && a->klen == b->klen &&
           memcmp(a->key, b->key, a->klen) == 0;
}

int tp__js_native_index_init(struct tp_js_native_index *idx, JSContext *ctx,
                             const struct tp_js_native_if *const *conds, size_t n)
{
    memset(idx, 0, sizeof(*idx));
    idx->n = n;
    idx->atoms = calloc(n + 1, sizeof(*idx->atoms));
    idx->run_at = calloc(n + 1, sizeof(*idx->run_at));
    idx->runs = calloc(n / 2 + 1, sizeof(*idx->runs));
    if (!idx->atoms || !idx->run_at || !idx->runs)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (!conds[i])
            continue;
        idx->atoms[i] = tp__js_atom_utf8(ctx, conds[i]->key, conds[i]->klen);
        if (idx->atoms[i] == JS_ATOM_NULL)
            goto nomem;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        size_t j = i + 1;
        while (j < n && same_run(conds[i], conds[j]))
            j++;
        if (j - i < 2)
            continue;
        struct tp_js_native_run *r = &idx->runs[idx->nruns];
        if (tp__js_native_run_build(r, conds, i, j, idx->atoms[i]) != 0)
            goto nomem;
        idx->nruns++;
        idx->run_at[i] = r;
        i = j - 1;
    }
    return 0;
nomem:
    JS_FreeValue(ctx, JS_GetException(ctx));
    tp__js_native_index_fini(idx, ctx);
    return TP_NOMEM;
}

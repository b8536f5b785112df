/* Template compiler and renderer (see template.h): the text is cut into
 * literal and metadata-key parts once; rendering appends them in order. */
#include "core/template.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct part {
    int is_meta;
    char *text; /* literal text, or the metadata key */
    size_t len;
};

struct tp_template {
    struct part *parts;
    size_t n;
};

static int add_part(struct tp_template *t, int is_meta, const char *s, size_t len)
{
    if (len == 0 && !is_meta)
        return TP_OK;
    struct part *p = realloc(t->parts, (t->n + 1) * sizeof(*p));
    if (!p)
        return TP_NOMEM;
    t->parts = p;
    char *text = strndup(s, len);
    if (!text)
        return TP_NOMEM;
    t->parts[t->n++] = (struct part){is_meta, text, len};
    return TP_OK;
}

static void trim(const char **a, const char **b)
{
    while (*a < *b && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t'))
        (*b)--;
}

static int key_char(char c)
{
    return c > ' ' && c != '"' && c != '\'' && c != '(' && c != ')' && c != '}' && c != '{' &&
           c != 0x7f;
}

/* `meta("k")`, `meta('k')` or `@k` between a and b (trimmed): the key, else NULL. */
static const char *bloblang_meta_key(const char *a, const char *b, size_t *klen)
{
    if (a < b && *a == '@') {
        const char *k = a + 1;
        for (const char *p = k; p < b; p++)
            if (!key_char(*p))
                return NULL;
        *klen = (size_t)(b - k);
        return *klen ? k : NULL;
    }
    if (b - a < 8 || strncmp(a, "meta(", 5) != 0 || b[-1] != ')')
        return NULL;
    const char *q = a + 5, *e = b - 1;
    trim(&q, &e);
    if (e - q < 2 || (*q != '"' && *q != '\'') || e[-1] != *q)
        return NULL;
    for (const char *p = q + 1; p < e - 1; p++)
        if (*p == *q || *p == '\\')
            return NULL;
    *klen = (size_t)(e - q - 2);
    return *klen ? q + 1 : NULL;
}

static int fail(struct tp_template_error *te, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct tp_template_error *te, size_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    te->offset = off;
    vsnprintf(te->why, sizeof(te->why), fmt, ap);
    va_end(ap);
    return TP_CONFIG;
}

int tp_template_compile(const char *text, struct tp_template **out, struct tp_template_error *te)
{
    *out = NULL;
    struct tp_template *t = calloc(1, sizeof(*t));
    if (!t)
        return TP_NOMEM;
    const char *s = text;
    int rc = TP_OK;
    while (rc == TP_OK && *s) {
        const char *mus = strstr(s, "{{"), *blob = strstr(s, "${!");
        const char *open = mus && (!blob || mus < blob) ? mus : blob;
        if (!open) {
            rc = add_part(t, 0, s, strlen(s));
            break;
        }
        if ((rc = add_part(t, 0, s, (size_t)(open - s))))
            break;
        size_t off = (size_t)(open - text);
        const char *close, *a, *b, *key = NULL;
        size_t klen = 0;
        if (open == mus) {
            if (!(close = strstr(open + 2, "}}"))) {
                rc = fail(te, off, "unclosed \"{{\"");
                break;
            }
            a = open + 2, b = close;
            trim(&a, &b);
            if (b - a > 5 && strncmp(a, "meta.", 5) == 0 && !memchr(a, ' ', (size_t)(b - a)))
                key = a + 5, klen = (size_t)(b - a - 5);
            close += 2;
            if (!key) {
                rc =
                    fail(te, off, "expected {{meta.KEY}}, got \"%.*s\"", (int)(close - open), open);
                break;
            }
        } else {
            if (!(close = strchr(open + 3, '}'))) {
                rc = fail(te, off, "unclosed \"${!\"");
                break;
            }
            a = open + 3, b = close;
            trim(&a, &b);
            key = bloblang_meta_key(a, b, &klen);
            close += 1;
            if (!key) {
                rc = fail(te, off,
                          "unsupported Bloblang interpolation \"%.*s\": only ${! meta(\"key\") } "
                          "and ${! @key } are supported",
                          (int)(close - open), open);
                break;
            }
        }
        rc = add_part(t, 1, key, klen);
        s = close;
    }
    if (rc) {
        tp_template_free(t);
        return rc;
    }
    *out = t;
    return TP_OK;
}

int tp_template_render(const struct tp_template *t, const struct tp_msg *m, struct tp_buf *out,
                       const char **missing)
{
    tp_buf_reset(out);
    for (size_t i = 0; i < t->n; i++) {
        const struct part *p = &t->parts[i];
        const char *v = p->text;
        size_t vlen = p->len;
        if (p->is_meta && !(v = tp_msg_meta_get(m, p->text, &vlen))) {
            if (missing && !*missing)
                *missing = p->text;
            continue;
        }
        if (tp_buf_append(out, v, vlen))
            return TP_NOMEM;
    }
    if (tp_buf_reserve(out, 1))
        return TP_NOMEM;
    out->data[out->len] = '\0';
    return TP_OK;
}

int tp_template_is_literal(const struct tp_template *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->parts[i].is_meta)
            return 0;
    return 1;
}

void tp_template_free(struct tp_template *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->parts[i].text);
    free(t->parts);
    free(t);
}

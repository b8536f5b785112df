/* Go/RE2 regular expressions into POSIX extended ones (see regex_syntax.h): one
 * pass over the pattern, escapes and bracket expressions rewritten, the rest
 * copied as written. */
#include "config/regex_syntax.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"

/* RE2's ASCII class \c (or its negation \C) as POSIX bracket contents, or NULL. */
static const char *class_body(char c)
{
    switch (tolower((unsigned char)c)) {
    case 'd':
        return "0-9";
    case 'w':
        return "0-9A-Za-z_";
    case 's':
        return "\t\n\f\r ";
    }
    return NULL;
}

/* The character an RE2 control escape (\t \n \r \f \v) stands for, or 0. */
static char control_char(char c)
{
    switch (c) {
    case 't':
        return '\t';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 'f':
        return '\f';
    case 'v':
        return '\v';
    }
    return 0;
}

static int refuse(struct tp_regex_error *e, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct tp_regex_error *e, size_t at, const char *fmt, ...)
{
    e->offset = at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->why, sizeof(e->why), fmt, ap);
    va_end(ap);
    return TP_CONFIG;
}

static int unsupported(struct tp_regex_error *e, size_t at, char c)
{
    return refuse(e, at,
                  "the escape \\%c has no POSIX form (supported: \\d \\w \\s \\D \\W \\S, "
                  "\\t \\n \\r \\f \\v, \\b \\B, escaped punctuation, [[:digit:]] and the other "
                  "[[:class:]]es)",
                  c);
}

/* The escape at re[*i] (a backslash, then a character), outside brackets. */
static int escape(const char *re, size_t *i, struct tp_buf *b, struct tp_regex_error *e)
{
    size_t at = *i;
    char c = re[at + 1];
    *i += 2;
    const char *cls = class_body(c);
    if (cls)
        return tp_buf_printf(b, "[%s%s]", isupper((unsigned char)c) ? "^" : "", cls);
    if (control_char(c))
        return tp_buf_putc(b, control_char(c));
    if (c == 'b' || c == 'B') /* word boundaries: glibc's regcomp has them */
        return tp_buf_append(b, re + at, 2);
    if (isalnum((unsigned char)c))
        return unsupported(e, at, c);
    if (strchr(".[]()*+?{}|^$\\", c))
        return tp_buf_append(b, re + at, 2);
    return tp_buf_putc(b, c); /* other punctuation is itself (glibc: \< is a word start) */
}

/* The bracket expression at re[*i] ('['). POSIX takes a backslash inside
 * brackets literally and places ']' first, '-' last and '^' anywhere but
 * first: escaped ones are collected and put there. An unterminated one is
 * copied as written, for regcomp to report. */
static int bracket(const char *re, size_t *i, struct tp_buf *b, struct tp_regex_error *e)
{
    size_t j = *i + 1;
    int neg = re[j] == '^';
    j += (size_t)neg;
    int rb = re[j] == ']', dash = 0, caret = 0, rc = TP_OK;
    j += (size_t)rb;
    struct tp_buf body;
    tp_buf_init(&body);
    while (rc == TP_OK && re[j] && re[j] != ']') {
        char c = re[j + 1];
        if (re[j] == '[' && (c == ':' || c == '.' || c == '=')) { /* [:digit:] ... */
            const char close[3] = {c, ']', '\0'};
            const char *end = strstr(re + j + 2, close);
            if (!end)
                break;
            if (c == ':' && re[j + 2] == '^')
                rc = refuse(e, j,
                            "the negated class %.*s has no POSIX form inside [...] (write "
                            "[^[:name:]] alone)",
                            (int)(end + 2 - (re + j)), re + j);
            else
                rc = tp_buf_append(&body, re + j, (size_t)(end + 2 - (re + j)));
            j = (size_t)(end + 2 - re);
        } else if (re[j] == '\\' && c) {
            const char *cls = class_body(c);
            if (cls && isupper((unsigned char)c))
                rc = refuse(e, j,
                            "\\%c inside [...] has no POSIX form (write [^...] listing what "
                            "to exclude, e.g. [^0-9] for \\D)",
                            c);
            else if (cls)
                rc = tp_buf_puts(&body, cls);
            else if (control_char(c))
                rc = tp_buf_putc(&body, control_char(c));
            else if (c == ']')
                rb = 1;
            else if (c == '-')
                dash = 1;
            else if (c == '^')
                caret = 1;
            else if (isalnum((unsigned char)c))
                rc = unsupported(e, j, c);
            else
                rc = tp_buf_putc(&body, c); /* \\ \. \[ ...: the character */
            j += 2;
        } else {
            rc = tp_buf_putc(&body, re[j++]);
        }
    }
    if (rc == TP_OK && re[j] != ']') { /* unterminated */
        tp_buf_free(&body);
        rc = tp_buf_puts(b, re + *i);
        *i += strlen(re + *i);
        return rc;
    }
    /* A literal '-' at either end of the body joins the escaped ones (last),
     * so that nothing around it makes it a range. */
    size_t from = 0, len = body.len;
    if (len && rb && body.data[0] == '-')
        from++, dash = 1;
    if (len > from && body.data[len - 1] == '-')
        len--, dash = 1;
    if (rc == TP_OK) {
        if (!neg && !rb && len == from && caret) /* only '^' (and '-') */
            rc = tp_buf_puts(b, dash ? "[-^]" : "\\^");
        else
            rc =
                tp_buf_printf(b, "[%s%s%.*s%s%s]", neg ? "^" : "", rb ? "]" : "", (int)(len - from),
                              body.data ? body.data + from : "", caret ? "^" : "", dash ? "-" : "");
    }
    tp_buf_free(&body);
    *i = j + 1;
    return rc;
}

int tp_regex_to_posix(const char *re, char **out, struct tp_regex_error *e)
{
    struct tp_buf b;
    tp_buf_init(&b);
    int rc = TP_OK;
    *out = NULL;
    for (size_t i = 0; rc == TP_OK && re[i];) {
        if (re[i] == '[')
            rc = bracket(re, &i, &b, e);
        else if (re[i] == '\\' && re[i + 1])
            rc = escape(re, &i, &b, e);
        else
            rc = tp_buf_putc(&b, re[i++]);
    }
    if (rc == TP_OK && !(*out = tp_buf_take(&b, NULL)))
        rc = TP_NOMEM;
    tp_buf_free(&b);
    return rc;
}

/* Implementation of the growable byte buffer (see buf.h). */
#include "core/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void tp_buf_init(struct tp_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void tp_buf_free(struct tp_buf *b)
{
    free(b->data);
    tp_buf_init(b);
}

int tp_buf_reserve(struct tp_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return TP_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return TP_NOMEM;
    b->data = p;
    b->cap = cap;
    return TP_OK;
}

int tp_buf_append(struct tp_buf *b, const char *s, size_t n)
{
    if (tp_buf_reserve(b, n))
        return TP_NOMEM;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return TP_OK;
}

int tp_buf_puts(struct tp_buf *b, const char *s)
{
    return tp_buf_append(b, s, strlen(s));
}

int tp_buf_putc(struct tp_buf *b, char c)
{
    return tp_buf_append(b, &c, 1);
}

int tp_buf_base64(struct tp_buf *b, const void *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    if (tp_buf_reserve(b, (n + 2) / 3 * 4))
        return TP_NOMEM;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        tp_buf_append(b, q, 4);
    }
    return 0;
}

int tp_buf_printf(struct tp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || tp_buf_reserve(b, (size_t)n))
        return TP_NOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TP_OK;
}

char *tp_buf_take(struct tp_buf *b, size_t *len)
{
    if (tp_buf_reserve(b, 0))
        return NULL;
    char *p = b->data;
    if (len)
        *len = b->len;
    tp_buf_init(b);
    return p;
}

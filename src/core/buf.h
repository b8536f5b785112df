/* A growable byte buffer used for building output text (JSON lines, topics). */
#ifndef TP_BUF_H
#define TP_BUF_H

#include <stddef.h>

struct tp_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len, cap;
};

void tp_buf_init(struct tp_buf *b);
void tp_buf_free(struct tp_buf *b);
static inline void tp_buf_reset(struct tp_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}
/* Ensures room for `extra` more bytes (+NUL). 0 or TP_NOMEM. */
int tp_buf_reserve(struct tp_buf *b, size_t extra);
int tp_buf_append(struct tp_buf *b, const char *s, size_t n);
int tp_buf_puts(struct tp_buf *b, const char *s);
int tp_buf_putc(struct tp_buf *b, char c);
int tp_buf_printf(struct tp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the standard base64 (RFC 4648, padded) of n bytes. 0 or TP_NOMEM. */
int tp_buf_base64(struct tp_buf *b, const void *data, size_t n);
/* Hands the storage to the caller (malloc'd, NUL-terminated) and resets b. */
char *tp_buf_take(struct tp_buf *b, size_t *len);

#endif

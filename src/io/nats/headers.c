/* Reading the header block of a received NATS message (HMSG): one
 * "key: value" line per header after the NATS/1.0 line. An empty value stays
 * empty (libnats 3.x, used before, took the next line as the value) and a
 * malformed block is reported, never read as "no headers" (docs/nats.md). */
#include "io/nats/internal.h"

#include <stdio.h>
#include <string.h>

/* Line ends: CRLF. */
static size_t line_len(const char *p, const char *end, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl || nl == p || nl[-1] != '\r')
        return SIZE_MAX;
    *next = nl + 1;
    return (size_t)(nl - 1 - p);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int tp__nats_headers_parse(const char *block, size_t len, tp__nats_header_fn fn, void *arg,
                           char *why, size_t size)
{
    const char *p = block, *end = block + len, *next = NULL;
    if (len == 0)
        return 0;
    size_t first = line_len(p, end, &next);
    if (first == SIZE_MAX || first < 8 || memcmp(p, "NATS/1.0", 8) != 0) {
        snprintf(why, size, "header block does not start with a NATS/1.0 line");
        return TP_INVAL;
    }
    for (int line = 2;; line++) {
        p = next;
        size_t n = p < end ? line_len(p, end, &next) : SIZE_MAX;
        if (n == SIZE_MAX) {
            snprintf(why, size, "header line %d does not end with CRLF", line);
            return TP_INVAL;
        }
        if (n == 0) {
            if (next == end)
                return 0;
            snprintf(why, size, "bytes after the end of the header block (line %d)", line);
            return TP_INVAL;
        }
        if (is_blank(*p)) {
            snprintf(why, size, "header line %d starts with a space (folded lines are not read)",
                     line);
            return TP_INVAL;
        }
        const char *colon = memchr(p, ':', n);
        if (!colon) {
            snprintf(why, size, "header line %d has no ':'", line);
            return TP_INVAL;
        }
        const char *v = colon + 1, *v_end = p + n;
        while (v < v_end && is_blank(*v))
            v++;
        while (v_end > v && is_blank(v_end[-1]))
            v_end--;
        int rc = fn(arg, p, (size_t)(colon - p), v, (size_t)(v_end - v));
        if (rc)
            return rc;
    }
}

/* Implementation of the status table and tp_error helpers (see error.h). */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const status_text[] = {
#define TP_STATUS_TEXT(name, text) text,
    TP_STATUS_MAP(TP_STATUS_TEXT)
#undef TP_STATUS_TEXT
};

const char *tp_strerror(int status)
{
    if (status < 0 || status >= TP_STATUS_COUNT)
        return "unknown status";
    return status_text[status];
}

static void set_msg(struct tp_error *err, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void set_msg(struct tp_error *err, const char *fmt, va_list ap)
{
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int tp_error_set(struct tp_error *err, int status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        set_msg(err, fmt, ap);
        va_end(ap);
        err->file[0] = '\0';
        err->line = 0;
        err->col = 0;
    }
    return status;
}

int tp_error_set_at(struct tp_error *err, int status, const char *file, int line, int col,
                    const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        set_msg(err, fmt, ap);
        va_end(ap);
        snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
        err->line = line;
        err->col = col;
    }
    return status;
}

const char *tp_error_file(const struct tp_error *err)
{
    return err->file[0] ? err->file : NULL;
}

void tp_error_format(const struct tp_error *err, char *buf, size_t size)
{
    if (err->file[0] && err->line > 0)
        snprintf(buf, size, "%s:%d:%d: %s", err->file, err->line, err->col, err->msg);
    else if (err->file[0]) /* a position-less source, e.g. a --set override */
        snprintf(buf, size, "%s: %s", err->file, err->msg);
    else
        snprintf(buf, size, "%s", err->msg);
}

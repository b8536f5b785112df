/* Status codes and error detail shared by every module.
 * One X-macro gives the enum and tp_strerror(); details (message and, for
 * config or JS problems, a file position) go into a caller-owned tp_error.
 * Library code never prints: it fills a tp_error and returns a status. */
#ifndef TP_ERROR_H
#define TP_ERROR_H

#include <stddef.h>

#define TP_STATUS_MAP(X)                                                                           \
    X(OK, "ok")                                                                                    \
    X(EOF, "end of input")                                                                         \
    X(AGAIN, "try again")                                                                          \
    X(NOMEM, "out of memory")                                                                      \
    X(INVAL, "invalid argument")                                                                   \
    X(CONFIG, "configuration error")                                                               \
    X(IO, "input/output error")                                                                    \
    X(PARSE, "parse error")                                                                        \
    X(JS, "javascript error")                                                                      \
    X(UNSUPPORTED, "not supported")

enum tp_status {
#define TP_STATUS_ENUM(name, text) TP_##name,
    TP_STATUS_MAP(TP_STATUS_ENUM)
#undef TP_STATUS_ENUM
        TP_STATUS_COUNT
};

/* Error detail. The error owns a copy of everything it prints: `file` is
 * copied in (an error may outlive the config it points into, e.g. a rejected
 * reload frees that config before the error is formatted); "" when there is
 * no position. line/col are 1-based, 0 when unknown. */
struct tp_error {
    char msg[512];
    char file[256];
    int line;
    int col;
};

/* Static text for a status; never NULL. */
const char *tp_strerror(int status);

/* Fills err (if not NULL) with printf-style text and no position; returns status. */
int tp_error_set(struct tp_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, with a file position. */
int tp_error_set_at(struct tp_error *err, int status, const char *file, int line, int col,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* err's file, or NULL when it has none. */
const char *tp_error_file(const struct tp_error *err);

/* Writes "FILE:LINE:COL: msg" ("FILE: msg" when line is 0, just msg without a file) into buf. */
void tp_error_format(const struct tp_error *err, char *buf, size_t size);

#endif

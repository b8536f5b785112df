/* The logger: levels, text to stderr, and a rate limit for repeated identical
 * errors (the counters are never rate-limited, only the log). */
#ifndef TP_LOG_H
#define TP_LOG_H

#include <stddef.h>

enum tp_log_level {
    TP_LOG_TRACE,
    TP_LOG_DEBUG,
    TP_LOG_INFO,
    TP_LOG_WARN,
    TP_LOG_ERROR,
    TP_LOG_OFF
};

void tp_log_set_level(enum tp_log_level level);
enum tp_log_level tp_log_get_level(void);
/* Parses "trace|debug|info|warn|error|off"; -1 when unknown. */
int tp_log_level_parse(const char *s);
enum tp_log_format {
    TP_LOG_TEXT,   /* "TIME level message" (default) */
    TP_LOG_JSON,   /* one JSON object per line: {"time","level","msg", static fields} */
    TP_LOG_LOGFMT, /* time=... level=info msg="..." key=value (Benthos' logfmt) */
};
/* Parses "text|json|logfmt"; -1 when unknown. */
int tp_log_format_parse(const char *s);
/* Sets the line format, whether lines carry a timestamp (default 1), and
 * fields added to every line (copied; keys[i]=vals[i], n may be 0). 0 or TP_NOMEM. */
int tp_log_configure(enum tp_log_format format, int add_timestamp, char *const *keys,
                     char *const *vals, size_t n);

void tp_log(enum tp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs unless a line with the same `key` was logged more than a few times in
 * the last seconds; suppressed lines are summarised later ("N similar suppressed"). */
void tp_log_limited(enum tp_log_level level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints the "N similar log lines suppressed" notice of every key with
 * suppressed lines now (the stats line and the exit summary call it). */
void tp_log_flush_suppressed(void);

#define tp_log_enabled(level) ((level) >= tp_log_get_level())

#endif

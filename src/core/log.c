/* The logger: one line per event to stderr (text or JSON), a global level,
 * and a per-key rate limit so that a bad rule firing on every message does
 * not flood the log (counters elsewhere still see every event). */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/json.h"

#define LIMIT_SLOTS 256
#define LIMIT_BURST 5
#define LIMIT_WINDOW_S 10

static enum tp_log_level current_level = TP_LOG_INFO;
static enum tp_log_format log_format = TP_LOG_TEXT;
static int log_timestamp = 1;
static struct tp_buf static_text; /* static fields, pre-rendered for log_format */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

struct limit_slot {
    unsigned long hash;
    time_t window_start;
    unsigned count;
    unsigned suppressed;
    enum tp_log_level level; /* of the suppressed lines */
};
static struct limit_slot limits[LIMIT_SLOTS];

void tp_log_set_level(enum tp_log_level level)
{
    __atomic_store_n(&current_level, level, __ATOMIC_RELAXED);
}

enum tp_log_level tp_log_get_level(void)
{
    return __atomic_load_n(&current_level, __ATOMIC_RELAXED);
}

int tp_log_format_parse(const char *s)
{
    static const char *const names[] = {"text", "json", "logfmt"};
    for (int i = 0; i < 3; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* A logfmt value: bare when it has no space, quote or '=', else quoted. */
static int logfmt_value(struct tp_buf *b, const char *v)
{
    if (*v && !strpbrk(v, " \"=\\\t\n"))
        return tp_buf_puts(b, v);
    int rc = tp_buf_putc(b, '"');
    for (; *v && !rc; v++) {
        if (*v == '"' || *v == '\\')
            rc = tp_buf_putc(b, '\\');
        if (!rc)
            rc = *v == '\n' ? tp_buf_puts(b, "\\n") : tp_buf_putc(b, *v);
    }
    return rc ? rc : tp_buf_putc(b, '"');
}

int tp_log_configure(enum tp_log_format format, int add_timestamp, char *const *keys,
                     char *const *vals, size_t n)
{
    struct tp_buf b;
    tp_buf_init(&b);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (format == TP_LOG_JSON) {
            rc = tp_buf_putc(&b, ',');
            rc = rc ? rc : tp_json_write_string(&b, keys[i], strlen(keys[i]));
            rc = rc ? rc : tp_buf_putc(&b, ':');
            rc = rc ? rc : tp_json_write_string(&b, vals[i], strlen(vals[i]));
        } else {
            rc = tp_buf_printf(&b, " %s=", keys[i]);
            rc = rc ? rc : logfmt_value(&b, vals[i]);
        }
    }
    if (rc) {
        tp_buf_free(&b);
        return rc;
    }
    pthread_mutex_lock(&log_lock);
    log_format = format;
    log_timestamp = add_timestamp;
    tp_buf_free(&static_text);
    static_text = b;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

int tp_log_level_parse(const char *s)
{
    for (int i = 0; i <= TP_LOG_OFF; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return TP_LOG_WARN;
    if (strcasecmp(s, "none") == 0)
        return TP_LOG_OFF;
    return -1;
}

/* Text format: one event is one line, whatever the text holds (console.log
 * output, exception text, input metadata). Control characters (newline, ESC,
 * ...; C0, DEL and the C1 range U+0080-U+009F) are written as escapes, so
 * the text cannot forge log lines or drive the terminal. */
static void put_escaped(struct tp_buf *b, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\n')
            tp_buf_puts(b, "\\n");
        else if (*p == '\r')
            tp_buf_puts(b, "\\r");
        else if (*p == '\t')
            tp_buf_puts(b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            tp_buf_printf(b, "\\x%02x", *p);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            tp_buf_printf(b, "\\u%04x", *++p);
        else
            tp_buf_putc(b, (char)*p);
    }
}

static void emit(enum tp_log_level level, const char *text)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[80];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(ts.tv_nsec / 1000000) % 1000);
    const char *fields = static_text.data ? static_text.data : "";
    struct tp_buf b;
    tp_buf_init(&b);
    if (log_format == TP_LOG_TEXT) {
        tp_buf_printf(&b, "%s%s%-5s ", log_timestamp ? when : "", log_timestamp ? " " : "",
                      level_names[level]);
        put_escaped(&b, text);
        tp_buf_printf(&b, "%s\n", fields);
    } else if (log_format == TP_LOG_JSON) {
        if (log_timestamp)
            tp_buf_printf(&b, "{\"time\":\"%s\",", when);
        else
            tp_buf_putc(&b, '{');
        tp_buf_printf(&b, "\"level\":\"%s\",\"msg\":", level_names[level]);
        tp_json_write_string(&b, text, strlen(text));
        tp_buf_printf(&b, "%s}\n", fields);
    } else {
        if (log_timestamp)
            tp_buf_printf(&b, "time=%s ", when);
        tp_buf_printf(&b, "level=%s msg=", level_names[level]);
        logfmt_value(&b, text);
        tp_buf_printf(&b, "%s\n", fields);
    }
    if (b.data)
        fputs(b.data, stderr);
    tp_buf_free(&b);
}

static void vlog(enum tp_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void vlog(enum tp_log_level level, const char *fmt, va_list ap)
{
    char text[2048];
    vsnprintf(text, sizeof(text), fmt, ap);
    pthread_mutex_lock(&log_lock);
    emit(level, text);
    pthread_mutex_unlock(&log_lock);
}

void tp_log(enum tp_log_level level, const char *fmt, ...)
{
    if (!tp_log_enabled(level) || level >= TP_LOG_OFF)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

static unsigned long hash_key(const char *s)
{
    unsigned long h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

/* Returns 1 when the line may be logged; reports suppressed lines of the
 * slot's previous window first. Called with log_lock held. */
static int limit_pass(enum tp_log_level level, const char *key)
{
    unsigned long h = hash_key(key);
    struct limit_slot *s = &limits[h % LIMIT_SLOTS];
    time_t now = time(NULL);
    if (s->hash != h || now - s->window_start >= LIMIT_WINDOW_S) {
        if (s->suppressed) {
            char text[256];
            snprintf(text, sizeof(text), "%u similar log lines suppressed (rate limit)",
                     s->suppressed);
            emit(level, text);
        }
        s->hash = h;
        s->window_start = now;
        s->count = 0;
        s->suppressed = 0;
    }
    if (s->count < LIMIT_BURST) {
        s->count++;
        return 1;
    }
    s->suppressed++;
    s->level = level;
    return 0;
}

void tp_log_flush_suppressed(void)
{
    pthread_mutex_lock(&log_lock);
    for (int i = 0; i < LIMIT_SLOTS; i++) {
        struct limit_slot *s = &limits[i];
        if (!s->suppressed)
            continue;
        char text[256];
        snprintf(text, sizeof(text), "%u similar log lines suppressed (rate limit)", s->suppressed);
        emit(s->level, text);
        s->suppressed = 0;
    }
    pthread_mutex_unlock(&log_lock);
}

void tp_log_limited(enum tp_log_level level, const char *key, const char *fmt, ...)
{
    if (!tp_log_enabled(level) || level >= TP_LOG_OFF)
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    if (limit_pass(level, key))
        emit(level, text);
    pthread_mutex_unlock(&log_lock);
}

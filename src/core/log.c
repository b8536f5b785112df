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
static int json_format;
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

void tp_log_set_json(int on)
{
    json_format = on;
}

int tp_log_level_parse(const char *s)
{
    for (int i = 0; i <= TP_LOG_OFF; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return TP_LOG_WARN;
    return -1;
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
    if (json_format) {
        struct tp_buf b;
        tp_buf_init(&b);
        tp_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", when, level_names[level]);
        tp_json_write_string(&b, text, strlen(text));
        tp_buf_puts(&b, "}\n");
        if (b.data)
            fputs(b.data, stderr);
        tp_buf_free(&b);
    } else {
        fprintf(stderr, "%s %-5s %s\n", when, level_names[level], text);
    }
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

/* Drop reasons and the per-message drop list (see drop.h). */
#include "core/drop.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[] = {
#define TP_DROP_NAME(name, text) text,
    TP_DROP_REASON_MAP(TP_DROP_NAME)
#undef TP_DROP_NAME
};

const char *tp_drop_reason_name(enum tp_drop_reason r)
{
    if ((int)r < 0 || r >= TP_DROP_REASON_COUNT)
        return "unknown";
    return reason_names[r];
}

void tp_drops_init(struct tp_drops *d)
{
    memset(d, 0, sizeof(*d));
}

void tp_drops_reset(struct tp_drops *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].raw);
        d->v[i].raw = NULL;
    }
    d->n = 0;
    d->lost = 0;
}

void tp_drops_free(struct tp_drops *d)
{
    tp_drops_reset(d);
    free(d->v);
    tp_drops_init(d);
}

void tp_drops_add(struct tp_drops *d, enum tp_drop_reason reason, const char *stage,
                  const char *fmt, ...)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        struct tp_drop *p = realloc(d->v, cap * sizeof(*p));
        if (p) {
            d->v = p;
            d->cap = cap;
        }
    }
    if (d->n == d->cap) { /* out of memory: the holder fails (see drop.h) */
        d->lost++;
        return;
    }
    struct tp_drop *e = &d->v[d->n++];
    e->raw = NULL;
    e->raw_len = 0;
    e->reason = reason;
    snprintf(e->stage, sizeof(e->stage), "%s", stage ? stage : "");
    e->error[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->error, sizeof(e->error), fmt, ap);
        va_end(ap);
    }
}

void tp_drops_set_raw(struct tp_drops *d, const char *raw, size_t len)
{
    if (!d->n || d->lost) /* the last add may have failed: not its drop */
        return;
    struct tp_drop *e = &d->v[d->n - 1];
    free(e->raw);
    e->raw_len = 0;
    e->raw = malloc(len + 1);
    if (!e->raw) {
        d->lost++;
        return;
    }
    memcpy(e->raw, raw, len);
    e->raw[len] = '\0';
    e->raw_len = len;
}

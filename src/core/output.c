/* The output side of the plugin contract (plugin.h): an output's drop list
 * and completion of a batch in flight, and a synchronous write on top of
 * submit for one-off writes (dead letter, tests, tools). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "core/tp_assert.h"

void tp_out_batch_drop(struct tp_out_batch *b, size_t i, enum tp_drop_reason reason,
                       const char *fmt, ...)
{
    TP_ASSERT(i < b->n);
    if (b->n_drops == b->cap_drops) {
        size_t cap = b->cap_drops ? b->cap_drops * 2 : 4;
        struct tp_out_drop *v = realloc(b->drops, cap * sizeof(*v));
        if (!v) {
            if ((int)reason >= 0 && reason < TP_DROP_REASON_COUNT)
                b->unrecorded[reason]++;
            return;
        }
        b->drops = v;
        b->cap_drops = cap;
    }
    struct tp_out_drop *d = &b->drops[b->n_drops++];
    d->index = i;
    d->reason = reason;
    d->error[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->error, sizeof(d->error), fmt, ap);
        va_end(ap);
    }
}

void tp_out_batch_complete(struct tp_out_batch *b, int status, const struct tp_error *err)
{
    b->done(b, status, err);
}

int tp_out_batch_fail(struct tp_out_batch *b, int status, const struct tp_error *err)
{
    tp_out_batch_complete(b, status, err);
    return status;
}

/* ---------- synchronous write ---------- */

struct sync_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int finished;
    int status;
    struct tp_error err;
};

static void sync_done(struct tp_out_batch *b, int status, const struct tp_error *err)
{
    struct sync_wait *w = b->opaque;
    pthread_mutex_lock(&w->lock);
    w->finished = 1;
    w->status = status;
    if (status && err)
        w->err = *err;
    else if (status)
        tp_error_set(&w->err, status, "output failed: %s", tp_strerror(status));
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int tp_output_write_sync(const struct tp_output_plugin *p, void *out, struct tp_msg *const *msgs,
                         size_t n, struct tp_out_drop **drops, size_t *n_drops,
                         struct tp_error *err)
{
    struct sync_wait w = {.status = 0};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    struct tp_out_batch b = {.msgs = msgs, .n = n, .done = sync_done, .opaque = &w};
    p->submit(out, &b);
    pthread_mutex_lock(&w.lock);
    while (!w.finished)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    if (w.status && err)
        *err = w.err;
    if (drops) {
        *drops = b.drops;
        *n_drops = b.n_drops;
    } else {
        free(b.drops);
    }
    return w.status;
}

/* Helpers shared by the tests of the JavaScript processors: build a processor
 * of a given plugin from a YAML options map, run messages through it and look
 * at the outputs (their metadata byte for byte) and drops. Header-only
 * (static functions). */
#ifndef TP_JS_TEST_UTIL_H
#define TP_JS_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "core/msg.h"
#include "core/plugin.h"
#include "msg_test_util.h"

/* The metrics registry processors opened by fx_open count into (NULL: none). */
static struct tp_metrics *fx_metrics;

struct proc_fx {
    const struct tp_processor_plugin *pl;
    struct tp_config *cfg;
    void *conf;
    void *proc;
    void *worker[2];
    struct tp_batch out;
    struct tp_drops drops;
};

/* Parses yaml as the plugin's options (path `path`) and creates the processor
 * plus `workers` workers. Returns the create status (err filled). */
static int fx_open(struct proc_fx *f, const struct tp_processor_plugin *pl, const char *path,
                   const char *yaml, int workers, struct tp_error *err)
{
    memset(f, 0, sizeof(*f));
    f->pl = pl;
    tp_batch_init(&f->out);
    tp_drops_init(&f->drops);
    int rc = tp_config_load_string("test.yaml", yaml, strlen(yaml), &f->cfg, err);
    if (rc != 0)
        return rc;
    f->conf = calloc(1, pl->config_size);
    rc = tp_options_parse(pl->options, f->cfg->root, path, f->conf, err);
    if (rc != 0)
        return rc;
    struct tp_proc_info info = {0, path, workers, fx_metrics};
    rc = pl->create(f->conf, &info, &f->proc, err);
    if (rc != 0) {
        f->proc = NULL;
        return rc;
    }
    for (int i = 0; i < workers; i++) {
        rc = pl->worker_new(f->proc, i, &f->worker[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void fx_close(struct proc_fx *f)
{
    for (int i = 0; i < 2; i++)
        if (f->worker[i])
            f->pl->worker_free(f->worker[i]);
    if (f->proc)
        f->pl->destroy(f->proc);
    if (f->conf) {
        tp_options_free(f->pl->options, f->conf);
        free(f->conf);
    }
    tp_config_free(f->cfg);
    tp_batch_free(&f->out);
    tp_drops_free(&f->drops);
}

/* Opens or fails the test with the error text. */
static void fx_must_open(struct proc_fx *f, const struct tp_processor_plugin *pl, const char *path,
                         const char *yaml, int workers)
{
    struct tp_error err = {0};
    int rc = fx_open(f, pl, path, yaml, workers, &err);
    if (rc != 0)
        fail_msg("open failed: %s (line %d col %d)", err.msg, err.line, err.col);
}

/* Runs m (freed) through worker w after clearing outputs and drops. */
static void fx_run_on(struct proc_fx *f, int w, struct tp_msg *m)
{
    tp_batch_clear(&f->out);
    tp_drops_reset(&f->drops);
    assert_int_equal(f->pl->process(f->worker[w], m, &f->out, &f->drops), 0);
    tp_msg_free(m);
}

static void fx_run(struct proc_fx *f, struct tp_msg *m)
{
    fx_run_on(f, 0, m);
}

static const char *out_payload(struct proc_fx *f, size_t i)
{
    assert_true(i < f->out.len);
    return f->out.msgs[i]->payload;
}

static inline const char *out_meta(struct proc_fx *f, size_t i, const char *key)
{
    assert_true(i < f->out.len);
    return tp_msg_meta_get(f->out.msgs[i], key, NULL);
}

/* Asserts exactly one drop with that reason and stage; returns its error text. */
static inline const char *one_drop(struct proc_fx *f, enum tp_drop_reason r, const char *stage)
{
    if (f->drops.n != 1)
        fail_msg("expected 1 drop, got %zu (first: %s %s %s)", f->drops.n,
                 f->drops.n ? tp_drop_reason_name(f->drops.v[0].reason) : "-",
                 f->drops.n ? f->drops.v[0].stage : "-", f->drops.n ? f->drops.v[0].error : "-");
    assert_int_equal(f->out.len, 0);
    if (f->drops.v[0].reason != r || strcmp(f->drops.v[0].stage, stage) != 0)
        fail_msg("drop: got %s at %s (%s), want %s at %s",
                 tp_drop_reason_name(f->drops.v[0].reason), f->drops.v[0].stage,
                 f->drops.v[0].error, tp_drop_reason_name(r), stage);
    return f->drops.v[0].error;
}

/* Appends "key=value;" per output entry, with the stored lengths (NUL bytes
 * kept); returns the length. */
static inline size_t meta_bytes(const struct tp_msg *m, char *buf, size_t cap)
{
    size_t o = 0;
    for (uint32_t k = 0; k < m->n_meta; k++) {
        const struct tp_meta *e = &m->meta[k];
        assert_true(o + e->key_len + e->val_len + 2 <= cap);
        memcpy(buf + o, m->strs + e->key_off, e->key_len);
        o += e->key_len;
        buf[o++] = '=';
        memcpy(buf + o, m->strs + e->val_off, e->val_len);
        o += e->val_len;
        buf[o++] = ';';
    }
    return o;
}

/* Bytes as text with non-printable and non-ASCII bytes as \xHH. */
static inline const char *escaped(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

/* Fails unless output i's metadata is exactly want (want_len bytes). */
static inline void expect_meta(struct proc_fx *f, size_t i, const char *want, size_t want_len,
                               const char *what)
{
    char got[1024], e1[4096], e2[4096];
    assert_true(i < f->out.len);
    size_t n = meta_bytes(f->out.msgs[i], got, sizeof got);
    if (n != want_len || memcmp(got, want, n) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", what, escaped(got, n, e1, sizeof e1),
                 escaped(want, want_len, e2, sizeof e2));
}

#endif

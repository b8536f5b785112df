/* Rule unit tests (see ruletest.h and docs/OPERATIONS.md). A test file:
 *   config: my-pipeline.yaml          # relative to the test file, or
 *   processors: [...]                 # inline, as under pipeline.processors
 *   cases:
 *     - name: x axis
 *       input: {payload: 23.5, meta: {opcua_node_id: "ns=1;i=2245"}}
 *       expect: [{topic: umh.v1..., value: 23.5, meta: {virtual_path: axis.x}}]
 *     - name: no tag name
 *       input: {payload: 1}
 *       drop: missing_field           # or {reason, stage}, or a list */
#include "ops/ruletest.h"

#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "pipeline/chain.h"
#include "processors/uns.h"
#include "core/json.h"
#include "core/log.h"
#include "core/msg.h"

#define DEFAULT_NOW_MS "1700000000000"

/* Rewrites the numbers of a compact JSON text by value: a fraction or an
 * exponent that is an integer below 2^53 becomes that integer (1.0 -> 1,
 * 1e2 -> 100), other non-integers the shortest text of their double
 * (0.10 -> 0.1); integers as written keep every digit. Strings are left alone. */
static void numbers_by_value(struct tp_buf *b)
{
    struct tp_buf o;
    tp_buf_init(&o);
    int in_str = 0;
    for (size_t i = 0; b->data && i < b->len; i++) {
        char ch = b->data[i];
        if (in_str) {
            tp_buf_putc(&o, ch);
            if (ch == '\\' && i + 1 < b->len)
                tp_buf_putc(&o, b->data[++i]);
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
            tp_buf_putc(&o, ch);
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            size_t n = strspn(b->data + i, "-+0123456789.eE");
            char num[64];
            snprintf(num, sizeof(num), "%.*s", (int)(n < 63 ? n : 63), b->data + i);
            double v = strtod(num, NULL);
            if (!strpbrk(num, ".eE") || n >= 63)
                tp_buf_append(&o, b->data + i, n);
            else if (v == (double)(int64_t)v && fabs(v) < 9007199254740992.0)
                tp_buf_printf(&o, "%lld", (long long)v);
            else {
                char txt[32];
                for (int prec = 15; prec <= 17; prec++) /* the shortest text of v */
                    if (snprintf(txt, sizeof(txt), "%.*g", prec, v) > 0 && strtod(txt, NULL) == v)
                        break;
                tp_buf_puts(&o, txt);
            }
            i += n - 1;
        } else {
            tp_buf_putc(&o, ch);
        }
    }
    tp_buf_reset(b);
    if (o.data)
        tp_buf_append(b, o.data, o.len);
    tp_buf_free(&o);
}

/* Canonical JSON of a text for comparing by value (sorted keys, numbers by
 * value); the text as a JSON string when it is not JSON. */
static void canonical(const char *s, size_t len, struct tp_buf *out)
{
    tp_buf_reset(out);
    if (tp_json_canonical(s, len, out) != 0) {
        tp_buf_reset(out);
        tp_json_write_string(out, s, len);
        return;
    }
    numbers_by_value(out);
}

/* ---------- one case ---------- */

struct outcome {
    struct tp_batch out;
    struct tp_buf drops; /* "reason stage: error" lines */
    char reasons[16][64];
    char stages[16][64];
    size_t n_drops, n_nonfiltered;
};

static void on_drop(void *opaque, const struct tp_msg *in, const struct tp_drop *d)
{
    (void)in;
    struct outcome *o = opaque;
    tp_buf_printf(&o->drops, "      drop: %s at %s%s%s\n", tp_drop_reason_name(d->reason), d->stage,
                  d->error[0] ? ": " : "", d->error);
    if (o->n_drops < 16) {
        snprintf(o->reasons[o->n_drops], 64, "%s", tp_drop_reason_name(d->reason));
        snprintf(o->stages[o->n_drops], 64, "%s", d->stage);
    }
    o->n_drops++;
    if (d->reason != TP_DROP_FILTERED)
        o->n_nonfiltered++;
}

static struct tp_msg *make_input(const struct tp_node *input, struct tp_buf *why)
{
    struct tp_msg *m = tp_msg_new();
    if (!m)
        return NULL;
    const struct tp_node *payload = tp_node_get(input, "payload");
    const struct tp_node *meta = tp_node_get(input, "meta");
    if (payload && payload->type == TP_NODE_SCALAR && !tp_node_is_json_literal(payload)) {
        tp_msg_set_payload(m, payload->value, payload->value_len);
        m->flags |= TP_MSG_PAYLOAD_NOTJSON;
    } else if (payload) {
        struct tp_buf b;
        tp_buf_init(&b);
        tp_node_json(payload, TP_NODE_JSON_LITERALS, &b);
        tp_msg_set_payload(m, b.data, b.len);
        m->flags |= TP_MSG_PAYLOAD_JSON;
        tp_buf_free(&b);
    }
    for (size_t i = 0; meta && meta->type == TP_NODE_MAP && i < meta->n; i++) {
        const struct tp_node *v = meta->items[i];
        if (v->type != TP_NODE_SCALAR) {
            tp_buf_printf(why, "input.meta.%s: expected a string", meta->keys[i]);
            tp_msg_free(m);
            return NULL;
        }
        tp_msg_meta_sets(m, meta->keys[i], v->value);
    }
    m->input_line = (uint64_t)input->line;
    return m;
}

/* The V of {"timestamp_ms":T,"value":V}, or NULL. */
static const char *payload_value(const struct tp_msg *m, size_t *len, const char **ts,
                                 size_t *ts_len)
{
    static const char pre[] = "{\"timestamp_ms\":";
    if (strncmp(m->payload, pre, sizeof(pre) - 1) != 0)
        return NULL;
    const char *v = strstr(m->payload, ",\"value\":");
    if (!v || m->payload_len < 1 || m->payload[m->payload_len - 1] != '}')
        return NULL;
    *ts = m->payload + sizeof(pre) - 1;
    *ts_len = (size_t)(v - *ts);
    v += 9;
    *len = (size_t)(m->payload + m->payload_len - 1 - v);
    return v;
}

/* Compares one expected output; appends "-expected / +actual" lines to diff. */
static int compare_output(const struct tp_node *exp, const struct tp_msg *m, size_t idx,
                          struct tp_buf *diff)
{
    int ok = 1;
    struct tp_buf a, b;
    tp_buf_init(&a);
    tp_buf_init(&b);
    for (size_t k = 0; exp->type == TP_NODE_MAP && k < exp->n; k++) {
        const char *key = exp->keys[k];
        const struct tp_node *v = exp->items[k];
        if (strcmp(key, "topic") == 0) {
            const char *t = tp_msg_meta_get(m, "umh_topic", NULL);
            if (!t || strcmp(t, v->value ? v->value : "") != 0) {
                tp_buf_printf(diff, "      output[%zu].topic\n        - %s\n        + %s\n", idx,
                              v->value ? v->value : "", t ? t : "(none)");
                ok = 0;
            }
        } else if (strcmp(key, "value") == 0 || strcmp(key, "timestamp_ms") == 0) {
            const char *ts, *val;
            size_t ts_len, val_len;
            val = payload_value(m, &val_len, &ts, &ts_len);
            tp_buf_reset(&a);
            tp_node_json(v, TP_NODE_JSON_LITERALS, &a);
            struct tp_buf ca;
            tp_buf_init(&ca);
            canonical(a.data, a.len, &ca);
            if (!val)
                canonical("(no UNS payload)", 16, &b);
            else if (key[0] == 'v')
                canonical(val, val_len, &b);
            else
                canonical(ts, ts_len, &b);
            if (strcmp(ca.data, b.data) != 0) {
                tp_buf_printf(
                    diff,
                    "      output[%zu].%s (JSON compared by value)\n        - %s\n        + %s\n",
                    idx, key, ca.data, b.data);
                ok = 0;
            }
            tp_buf_free(&ca);
        } else if (strcmp(key, "payload") == 0) {
            tp_buf_reset(&a);
            tp_node_json(v, TP_NODE_JSON_LITERALS, &a);
            struct tp_buf ca;
            tp_buf_init(&ca);
            canonical(a.data, a.len, &ca);
            canonical(m->payload, m->payload_len, &b);
            if (strcmp(ca.data, b.data) != 0) {
                tp_buf_printf(diff,
                              "      output[%zu].payload (JSON compared by value)\n        - %s\n  "
                              "      + %s\n",
                              idx, ca.data, b.data);
                ok = 0;
            }
            tp_buf_free(&ca);
        } else if (strcmp(key, "meta") == 0) {
            for (size_t j = 0; v->type == TP_NODE_MAP && j < v->n; j++) {
                const char *want = v->items[j]->type == TP_NODE_NULL ? NULL : v->items[j]->value;
                const char *got = tp_msg_meta_get(m, v->keys[j], NULL);
                if ((!want && !got) || (want && got && strcmp(want, got) == 0))
                    continue;
                tp_buf_printf(diff, "      output[%zu].meta.%s\n        - %s\n        + %s\n", idx,
                              v->keys[j], want ? want : "(absent)", got ? got : "(absent)");
                ok = 0;
            }
        } else {
            tp_buf_printf(diff,
                          "      output[%zu]: unknown key \"%s\" (topic, value, "
                          "timestamp_ms, payload, meta)\n",
                          idx, key);
            ok = 0;
        }
    }
    tp_buf_free(&a);
    tp_buf_free(&b);
    return ok;
}

/* Expected drops as "reason" / "reason@stage" items. */
static int compare_drops(const struct tp_node *drop, const struct outcome *o, struct tp_buf *diff)
{
    const struct tp_node *one = drop;
    size_t n = drop->type == TP_NODE_SEQ ? drop->n : 1;
    int ok = n == o->n_drops;
    for (size_t i = 0; ok && i < n && i < 16; i++) {
        one = drop->type == TP_NODE_SEQ ? drop->items[i] : drop;
        const char *reason = one->type == TP_NODE_MAP ? NULL : one->value;
        const char *stage = NULL;
        if (one->type == TP_NODE_MAP) {
            const struct tp_node *r = tp_node_get(one, "reason"), *s = tp_node_get(one, "stage");
            reason = r ? r->value : NULL;
            stage = s ? s->value : NULL;
        }
        if (!reason || strcmp(reason, o->reasons[i]) != 0 ||
            (stage && strcmp(stage, o->stages[i]) != 0))
            ok = 0;
    }
    if (!ok) {
        struct tp_buf e;
        tp_buf_init(&e);
        tp_node_json(drop, TP_NODE_JSON_LITERALS, &e);
        tp_buf_printf(diff, "      drops\n        - %s\n        + %zu drop(s):\n%s", e.data,
                      o->n_drops, o->drops.data ? o->drops.data : "");
        tp_buf_free(&e);
    }
    return ok;
}

static int run_case(struct tp_chain_worker *w, const char *file, const struct tp_node *c,
                    size_t index, int verbose)
{
    const struct tp_node *name = tp_node_get(c, "name"), *input = tp_node_get(c, "input");
    const struct tp_node *expect = tp_node_get(c, "expect"), *drop = tp_node_get(c, "drop");
    char title[300];
    snprintf(title, sizeof(title), "%s:%d: case %zu%s%s%s", file, c->line, index, name ? " \"" : "",
             name ? name->value : "", name ? "\"" : "");
    struct tp_buf diff;
    tp_buf_init(&diff);
    struct outcome o;
    memset(&o, 0, sizeof(o));
    tp_batch_init(&o.out);
    tp_buf_init(&o.drops);
    int ok = 1;
    struct tp_msg *in = input && input->type == TP_NODE_MAP ? make_input(input, &diff) : NULL;
    if (!in) {
        tp_buf_printf(&diff, "      %s\n", input ? "bad input" : "missing input: {payload, meta}");
        ok = 0;
    } else if (tp_chain_process(w, in, &o.out, on_drop, &o) != 0) {
        tp_buf_puts(&diff, "      processing failed (fatal error)\n");
        ok = 0;
    } else {
        size_t n_exp = expect && expect->type == TP_NODE_SEQ ? expect->n : 0;
        if (expect && expect->type == TP_NODE_MAP)
            n_exp = 1;
        if (n_exp != o.out.len) {
            tp_buf_printf(&diff, "      outputs\n        - %zu\n        + %zu\n", n_exp, o.out.len);
            ok = 0;
        }
        for (size_t i = 0; i < n_exp && i < o.out.len; i++) {
            const struct tp_node *e = expect->type == TP_NODE_SEQ ? expect->items[i] : expect;
            ok &= compare_output(e, o.out.msgs[i], i, &diff);
        }
        if (drop)
            ok &= compare_drops(drop, &o, &diff);
        else if (o.n_nonfiltered) {
            tp_buf_printf(&diff, "      unexpected drop (add `drop:` if intended):\n%s",
                          o.drops.data);
            ok = 0;
        }
    }
    if (!ok || verbose) {
        printf("%s %s\n", ok ? "ok  " : "FAIL", title);
        if (!ok) {
            fputs(diff.data ? diff.data : "", stdout);
            if (o.out.len)
                printf("      actual outputs:\n");
            for (size_t i = 0; i < o.out.len; i++) {
                struct tp_buf env;
                tp_buf_init(&env);
                tp_json_encode_envelope(o.out.msgs[i], &env);
                printf("        %s\n", env.data ? env.data : "");
                tp_buf_free(&env);
            }
        }
    }
    tp_msg_free(in);
    tp_batch_free(&o.out);
    tp_buf_free(&o.drops);
    tp_buf_free(&diff);
    return ok;
}

/* ---------- one file ---------- */

/* A pipeline config given where a rule test was expected gets a hint. */
static int is_pipeline_config(const struct tp_node *root)
{
    return !tp_node_get(root, "cases") &&
           (tp_node_get(root, "input") || tp_node_get(root, "pipeline") ||
            tp_node_get(root, "output"));
}

/* Loads a rule test file and the processors it tests (`config:` relative
 * to the file, or inline `processors:`). */
static int load_test(const char *path, struct tp_config **tcfg, struct tp_config **cfg,
                     const struct tp_node **procs, const struct tp_node **cases,
                     struct tp_error *err)
{
    int rc = tp_config_load_file(path, tcfg, err);
    if (rc)
        return rc;
    const struct tp_node *root = (*tcfg)->root;
    if (is_pipeline_config(root))
        return tp_error_set_at(err, TP_CONFIG, (*tcfg)->file, 1, 1,
                               "this is a pipeline config, not a rule test file (a rule test has "
                               "`config:` or `processors:`, and `cases:`); run it with "
                               "`tagproc -c %s`, check it with `tagproc lint %s`",
                               path, path);
    const struct tp_node *cpath = tp_node_get(root, "config");
    *procs = tp_node_get(root, "processors");
    *cases = tp_node_get(root, "cases");
    for (size_t i = 0; i < root->n; i++) {
        const char *k = root->keys[i];
        if (strcmp(k, "config") && strcmp(k, "processors") && strcmp(k, "cases")) {
            const struct tp_node *kn = root->key_nodes[i];
            return tp_error_set_at(err, TP_CONFIG, kn->file, kn->line, kn->col,
                                   "%s: unknown key; valid keys: config, processors, cases", k);
        }
    }
    if (!*cases || (*cases)->type != TP_NODE_SEQ || (!cpath == !*procs))
        return tp_error_set_at(err, TP_CONFIG, (*tcfg)->file, 1, 1,
                               "expected `cases` (a list) and exactly one of `config` or "
                               "`processors`");
    if (!cpath)
        return TP_OK;
    char *full = NULL;
    if (cpath->value[0] == '/') {
        full = strdup(cpath->value);
    } else {
        char *dup = strdup(path);
        if (dup && asprintf(&full, "%s/%s", dirname(dup), cpath->value) < 0)
            full = NULL;
        free(dup);
    }
    if (!full)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    rc = tp_config_load_file(full, cfg, err);
    free(full);
    if (rc)
        return rc;
    const struct tp_node *pipe = tp_node_get((*cfg)->root, "pipeline");
    *procs = pipe ? tp_node_get(pipe, "processors") : NULL;
    return TP_OK;
}

static int run_file(const char *path, int verbose, int *passed, int *failed)
{
    struct tp_config *tcfg = NULL, *cfg = NULL;
    struct tp_chain *chain = NULL;
    struct tp_chain_worker w;
    const struct tp_node *procs = NULL, *cases = NULL;
    int have_worker = 0, rc = 0;
    struct tp_error err = {0};
    char text[1024];
    if (load_test(path, &tcfg, &cfg, &procs, &cases, &err) != 0)
        goto error;
    if (tp_chain_new(procs, "pipeline.processors", 1, NULL, &chain, &err) != 0 ||
        tp_chain_worker_init(&w, chain, 0, &err) != 0)
        goto error;
    have_worker = 1;
    for (size_t i = 0; i < cases->n; i++) {
        if (run_case(&w, path, cases->items[i], i, verbose))
            (*passed)++;
        else
            (*failed)++;
    }
    goto out;
error:
    tp_error_format(&err, text, sizeof(text));
    printf("ERROR %s: %s\n", path, text);
    rc = 2;
out:
    if (have_worker)
        tp_chain_worker_free(&w);
    tp_chain_free(chain);
    tp_config_free(cfg);
    tp_config_free(tcfg);
    return rc ? 2 : 0;
}

/* ---------- the schema, for lint ---------- */

/* Reports each key of map not in `valid` (a space-separated list). */
static int unknown_keys(const struct tp_node *map, const char *path, const char *valid,
                        void (*found)(void *, const struct tp_error *), void *ctx)
{
    int n = 0;
    for (size_t i = 0; map && map->type == TP_NODE_MAP && i < map->n; i++) {
        char word[64];
        snprintf(word, sizeof(word), " %s ", map->keys[i]);
        char list[256];
        snprintf(list, sizeof(list), " %s ", valid);
        if (strstr(list, word))
            continue;
        struct tp_error err = {0};
        const struct tp_node *k = map->key_nodes[i];
        tp_error_set_at(&err, TP_CONFIG, k->file, k->line, k->col,
                        "%s.%s: unknown key; valid keys: %s", path, map->keys[i], valid);
        found(ctx, &err), n++;
    }
    return n;
}

static int expect_map(const struct tp_node *n, const char *path, const char *what,
                      void (*found)(void *, const struct tp_error *), void *ctx)
{
    if (n && n->type == TP_NODE_MAP)
        return 0;
    struct tp_error err = {0};
    tp_error_set_at(&err, TP_CONFIG, n ? n->file : NULL, n ? n->line : 0, n ? n->col : 0,
                    "%s: expected %s, got %s", path, what, tp_node_type_name(n));
    found(ctx, &err);
    return 1;
}

static int check_case(const struct tp_node *c, size_t index,
                      void (*found)(void *, const struct tp_error *), void *ctx)
{
    char path[64];
    snprintf(path, sizeof(path), "cases[%zu]", index);
    if (expect_map(c, path, "a map {name, input, expect, drop}", found, ctx))
        return 1;
    int n = unknown_keys(c, path, "name input expect drop", found, ctx);
    char sub[96];
    snprintf(sub, sizeof(sub), "%s.input", path);
    const struct tp_node *input = tp_node_get(c, "input");
    if (expect_map(input, sub, "a map {payload, meta}", found, ctx))
        n++;
    else
        n += unknown_keys(input, sub, "payload meta", found, ctx);
    const struct tp_node *expect = tp_node_get(c, "expect");
    size_t n_exp = expect && expect->type == TP_NODE_SEQ ? expect->n : expect ? 1 : 0;
    for (size_t i = 0; i < n_exp; i++) {
        const struct tp_node *e = expect->type == TP_NODE_SEQ ? expect->items[i] : expect;
        snprintf(sub, sizeof(sub), "%s.expect[%zu]", path, i);
        if (expect_map(e, sub, "a map {topic, value, timestamp_ms, payload, meta}", found, ctx))
            n++;
        else
            n += unknown_keys(e, sub, "topic value timestamp_ms payload meta", found, ctx);
    }
    return n;
}

int tp_ruletest_check(const char *path, void (*found)(void *ctx, const struct tp_error *err),
                      void *ctx)
{
    struct tp_config *tcfg = NULL, *cfg = NULL;
    struct tp_chain *chain = NULL;
    const struct tp_node *procs = NULL, *cases = NULL;
    struct tp_error err = {0};
    int n = 0;
    if (load_test(path, &tcfg, &cfg, &procs, &cases, &err) != 0 ||
        tp_chain_new(procs, "pipeline.processors", 1, NULL, &chain, &err) != 0) {
        found(ctx, &err), n++;
    } else {
        for (size_t i = 0; i < cases->n; i++)
            n += check_case(cases->items[i], i, found, ctx);
    }
    tp_chain_free(chain);
    tp_config_free(cfg);
    tp_config_free(tcfg);
    return n;
}

int tp_ruletest_main(int argc, char **argv, void (*usage)(FILE *out))
{
    int verbose = 0, first = 1;
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "-v"))
        verbose = 1, first = 2;
    if (first >= argc) {
        fprintf(stderr, "tagproc test: missing FILE\n");
        return 2;
    }
    if (!tp_now_fixed()) /* TAGPROC_FIXED_NOW_MS, read by the CLI, wins */
        tp_now_fix(DEFAULT_NOW_MS);
    if (tp_log_get_level() == TP_LOG_INFO)
        tp_log_set_level(TP_LOG_ERROR); /* drops are part of the report */
    int passed = 0, failed = 0, errors = 0;
    for (int i = first; i < argc; i++)
        errors += run_file(argv[i], verbose, &passed, &failed) != 0;
    printf("%d passed, %d failed%s\n", passed, failed, errors ? " (and files with errors)" : "");
    return errors ? 2 : failed ? 1 : 0;
}

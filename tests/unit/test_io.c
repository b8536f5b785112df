/* Unit tests for the basic I/O plugins: file/stdin line inputs (bad lines are
 * dropped with their number and reading goes on, blank lines, CRLF, long
 * lines, stop), file/stdout outputs (truncate vs append, round trip) and the
 * simulator (determinism, node cycling, count, stop). Configs go through the
 * real option tables. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/json.h"
#include "core/plugin.h"

extern const struct tp_input_plugin tp_input_stdin, tp_input_file, tp_input_simulator;
extern const struct tp_output_plugin tp_output_stdout, tp_output_file, tp_output_drop;

/* Where a read failure would be described (the reads here must not fail). */
static struct tp_error read_err;

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/tp_test_io_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in_tmp(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* A plugin config parsed from YAML through the plugin's option table. */
struct cfg {
    struct tp_config *yaml;
    const struct tp_option *table;
    void *data;
};

static void cfg_parse(struct cfg *c, const struct tp_option *table, size_t size, const char *yaml)
{
    struct tp_error err = {0};
    c->table = table;
    c->data = calloc(1, size);
    assert_non_null(c->data);
    if (tp_config_load_string("test.yaml", yaml, strlen(yaml), &c->yaml, &err))
        fail_msg("yaml: %s", err.msg);
    if (tp_options_parse(table, c->yaml->root, "plugin", c->data, &err))
        fail_msg("options: %s", err.msg);
}

static void cfg_free(struct cfg *c)
{
    tp_options_free(c->table, c->data);
    free(c->data);
    tp_config_free(c->yaml);
}

static void *input_open(const struct tp_input_plugin *p, struct cfg *c, const char *yaml)
{
    struct tp_error err = {0};
    void *in = NULL;
    cfg_parse(c, p->options, p->config_size, yaml);
    if (p->open(c->data, &in, &err))
        fail_msg("open %s: %s", p->name, err.msg);
    return in;
}

/* Reads everything (max messages per call) into batch; drops into drops. */
static void read_all(const struct tp_input_plugin *p, void *in, size_t max, struct tp_batch *batch,
                     struct tp_drops *drops)
{
    for (int calls = 0; calls < 100000; calls++) {
        size_t before = batch->len;
        struct tp_error err = {0};
        int rc = p->read(in, batch, max, drops, &err);
        assert_true(batch->len - before <= max);
        if (rc == TP_EOF)
            return;
        assert_int_equal(rc, TP_OK);
    }
    fail_msg("input never reached end of input");
}

static void test_file_input_json_lines(void **state)
{
    (void)state;
    char path[128], yaml[256];
    path_in_tmp(path, sizeof(path), "in.jsonl");
    const char *text = "{\"payload\":1,\"meta\":{\"a\":\"x\"}}\n"
                       "\n"
                       "   \t\r\n"
                       "{\"payload\":\"bad\"\n"
                       "{\"payload\":2}\r\n"
                       "{\"meta\":{\"k\":1}}\n"
                       "[1]\n"
                       "{\"payload\":{\"v\":1.50}}";
    write_file(path, text, strlen(text));
    snprintf(yaml, sizeof(yaml), "path: %s\n", path);

    for (size_t max = 1; max <= 64; max *= 8) {
        struct cfg c;
        void *in = input_open(&tp_input_file, &c, yaml);
        struct tp_batch b;
        struct tp_drops d;
        tp_batch_init(&b);
        tp_drops_init(&d);
        read_all(&tp_input_file, in, max, &b, &d);
        assert_int_equal(b.len, 3);
        assert_string_equal(b.msgs[0]->payload, "1");
        assert_int_equal(b.msgs[0]->input_line, 1);
        assert_string_equal(tp_msg_meta_get(b.msgs[0], "a", NULL), "x");
        assert_string_equal(b.msgs[1]->payload, "2");
        assert_int_equal(b.msgs[1]->input_line, 5);
        assert_string_equal(b.msgs[2]->payload, "{\"v\":1.50}");
        assert_int_equal(b.msgs[2]->input_line, 8);
        assert_int_equal(d.n, 3);
        for (size_t i = 0; i < d.n; i++) {
            assert_int_equal(d.v[i].reason, TP_DROP_INVALID_INPUT);
            assert_string_equal(d.v[i].stage, "input");
        }
        assert_true(strncmp(d.v[0].error, "line 4: ", 8) == 0);
        assert_string_equal(d.v[1].error,
                            "line 6: meta value for \"k\" is not a string at column 15");
        assert_true(strncmp(d.v[2].error, "line 7: line is not a JSON object", 33) == 0);
        /* after the end, reads keep saying so */
        assert_int_equal(tp_input_file.read(in, &b, 10, &d, &read_err), TP_EOF);
        assert_int_equal(b.len, 3);
        tp_batch_free(&b);
        tp_drops_free(&d);
        tp_input_file.close(in);
        cfg_free(&c);
    }
}

static void test_file_input_lines_codec(void **state)
{
    (void)state;
    char path[128], yaml[256];
    path_in_tmp(path, sizeof(path), "raw.txt");
    const char *text = "hello world\r\n\n{\"not\": \"decoded\"}\n  \nlast";
    write_file(path, text, strlen(text));
    snprintf(yaml, sizeof(yaml), "path: %s\ncodec: lines\n", path);
    struct cfg c;
    void *in = input_open(&tp_input_file, &c, yaml);
    struct tp_batch b;
    struct tp_drops d;
    tp_batch_init(&b);
    tp_drops_init(&d);
    read_all(&tp_input_file, in, 16, &b, &d);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.msgs[0]->payload, "hello world");
    assert_string_equal(b.msgs[1]->payload, "{\"not\": \"decoded\"}");
    assert_int_equal(b.msgs[1]->input_line, 3);
    assert_string_equal(b.msgs[2]->payload, "last");
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.msgs[i]->n_meta, 0);
    assert_int_equal(d.n, 0);
    tp_batch_free(&b);
    tp_drops_free(&d);
    tp_input_file.close(in);
    cfg_free(&c);
}

static void test_file_input_long_lines(void **state)
{
    (void)state;
    char path[128], yaml[256];
    path_in_tmp(path, sizeof(path), "long.jsonl");
    size_t big = 3u << 20; /* 3 MiB: larger than the reader's first buffer */
    char *text = malloc(big + 256);
    assert_non_null(text);
    size_t off = (size_t)sprintf(text, "{\"payload\":1}\n{\"payload\":\"");
    memset(text + off, 'y', big);
    off += big;
    off += (size_t)sprintf(text + off, "\"}\n{\"payload\":3}\n");
    write_file(path, text, off);
    free(text);

    /* default limit: the big line is read */
    snprintf(yaml, sizeof(yaml), "path: %s\n", path);
    struct cfg c;
    void *in = input_open(&tp_input_file, &c, yaml);
    struct tp_batch b;
    struct tp_drops d;
    tp_batch_init(&b);
    tp_drops_init(&d);
    read_all(&tp_input_file, in, 8, &b, &d);
    assert_int_equal(b.len, 3);
    assert_int_equal(b.msgs[1]->payload_len, big);
    assert_string_equal(b.msgs[2]->payload, "3");
    assert_int_equal(d.n, 0);
    tp_input_file.close(in);
    cfg_free(&c);
    tp_batch_clear(&b);

    /* a small limit: the big line is dropped, reading goes on */
    snprintf(yaml, sizeof(yaml), "path: %s\nmax_line_bytes: 1000\n", path);
    in = input_open(&tp_input_file, &c, yaml);
    read_all(&tp_input_file, in, 8, &b, &d);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.msgs[0]->payload, "1");
    assert_string_equal(b.msgs[1]->payload, "3");
    assert_int_equal(b.msgs[1]->input_line, 3);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].error, "line 2: longer than max_line_bytes (1000)");
    tp_input_file.close(in);
    cfg_free(&c);
    tp_batch_free(&b);
    tp_drops_free(&d);
}

static struct tp_msg *msg_with(const char *payload, const char *k, const char *v)
{
    struct tp_msg *m = tp_msg_new();
    assert_non_null(m);
    assert_int_equal(tp_msg_set_payload(m, payload, strlen(payload)), TP_OK);
    if (k)
        assert_int_equal(tp_msg_meta_sets(m, k, v), TP_OK);
    return m;
}

static void write_out(const struct tp_output_plugin *p, const char *yaml, struct tp_msg **msgs,
                      size_t n)
{
    struct cfg c;
    struct tp_error err = {0};
    void *out = NULL;
    cfg_parse(&c, p->options, p->config_size, yaml);
    if (p->open(c.data, &out, &err))
        fail_msg("open %s: %s", p->name, err.msg);
    assert_int_equal(tp_output_write_sync(p, out, msgs, n, NULL, NULL, &err), TP_OK);
    p->close(out);
    cfg_free(&c);
}

static void test_file_output_modes(void **state)
{
    (void)state;
    char path[128], yaml[256];
    path_in_tmp(path, sizeof(path), "out.jsonl");
    struct tp_msg *m[3] = {msg_with("23.5", "umh_topic", "umh.v1.a._h.t"),
                           msg_with("not json", "k", "v\n"), msg_with("{\"a\": 1}", NULL, NULL)};
    const char *l0 = "{\"topic\":\"umh.v1.a._h.t\",\"payload\":23.5,\"meta\":{\"umh_topic\":"
                     "\"umh.v1.a._h.t\"}}\n";
    const char *l1 = "{\"payload\":\"not json\",\"meta\":{\"k\":\"v\\n\"}}\n";
    const char *l2 = "{\"payload\":{\"a\": 1},\"meta\":{}}\n";
    char want[1024];

    snprintf(yaml, sizeof(yaml), "path: %s\n", path); /* default: truncate */
    write_out(&tp_output_file, yaml, m, 2);
    snprintf(want, sizeof(want), "%s%s", l0, l1);
    assert_string_equal(read_file(path), want);

    snprintf(yaml, sizeof(yaml), "path: %s\nmode: append\n", path);
    write_out(&tp_output_file, yaml, m + 2, 1);
    snprintf(want, sizeof(want), "%s%s%s", l0, l1, l2);
    assert_string_equal(read_file(path), want);

    /* round trip through the file input */
    snprintf(yaml, sizeof(yaml), "path: %s\n", path);
    struct cfg c;
    void *in = input_open(&tp_input_file, &c, yaml);
    struct tp_batch b;
    struct tp_drops d;
    tp_batch_init(&b);
    tp_drops_init(&d);
    read_all(&tp_input_file, in, 16, &b, &d);
    assert_int_equal(b.len, 3);
    assert_int_equal(d.n, 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(b.msgs[i]->n_meta, m[i]->n_meta);
        for (uint32_t k = 0; k < m[i]->n_meta; k++)
            assert_string_equal(tp_msg_meta_val(b.msgs[i], k), tp_msg_meta_val(m[i], k));
    }
    assert_string_equal(b.msgs[0]->payload, "23.5");
    assert_string_equal(b.msgs[1]->payload, "not json");
    assert_string_equal(b.msgs[2]->payload, "{\"a\":1}");
    tp_batch_free(&b);
    tp_drops_free(&d);
    tp_input_file.close(in);
    cfg_free(&c);

    snprintf(yaml, sizeof(yaml), "path: %s\nmode: truncate\n", path);
    write_out(&tp_output_file, yaml, m + 1, 1);
    assert_string_equal(read_file(path), l1);

    write_out(&tp_output_drop, "{}", m, 3);
    for (int i = 0; i < 3; i++)
        tp_msg_free(m[i]);
}

/* A missing input file, or an output file in a missing directory, is a
 * config error at the path's position, found when the options are parsed. */
static void expect_path_error(const struct tp_option *table, size_t size, const char *yaml,
                              const char *needle)
{
    struct tp_config *yaml_cfg = NULL;
    struct tp_error err = {0};
    void *data = calloc(1, size);
    assert_non_null(data);
    assert_int_equal(tp_config_load_string("test.yaml", yaml, strlen(yaml), &yaml_cfg, &err), 0);
    assert_int_equal(tp_options_parse(table, yaml_cfg->root, "plugin", data, &err), TP_CONFIG);
    if (!strstr(err.msg, needle))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, needle);
    assert_string_equal(err.file, "test.yaml");
    assert_int_equal(err.line, 1);
    assert_int_equal(err.col, 7);
    free(data);
    tp_config_free(yaml_cfg);
}

static void test_file_errors(void **state)
{
    (void)state;
    expect_path_error(tp_input_file.options, tp_input_file.config_size,
                      "path: /nonexistent/dir/x.jsonl\n",
                      "cannot read \"/nonexistent/dir/x.jsonl\"");
    expect_path_error(tp_input_file.options, tp_input_file.config_size, "path: /tmp\n",
                      "is a directory");
    expect_path_error(tp_output_file.options, tp_output_file.config_size,
                      "path: /nonexistent/dir/x.jsonl\n", "directory \"/nonexistent/dir\"");
}

/* Redirects a standard fd to a pipe for the duration of a test. */
struct redirect {
    int fd, saved, pipe[2];
};

static void redirect_begin(struct redirect *r, int fd)
{
    r->fd = fd;
    assert_int_equal(pipe(r->pipe), 0);
    r->saved = dup(fd);
    assert_true(r->saved >= 0);
    assert_true(dup2(fd == 0 ? r->pipe[0] : r->pipe[1], fd) >= 0);
}

static void redirect_end(struct redirect *r)
{
    assert_true(dup2(r->saved, r->fd) >= 0);
    close(r->saved);
    close(r->pipe[0]);
    close(r->pipe[1]);
}

struct reader_arg {
    const struct tp_input_plugin *p;
    void *in;
    struct tp_batch batch;
    struct tp_drops drops;
    int rc;
};

static void *reader_thread(void *arg)
{
    struct reader_arg *a = arg;
    struct tp_error err = {0};
    a->rc = a->p->read(a->in, &a->batch, 16, &a->drops, &err);
    return NULL;
}

static void test_stdin_read_and_stop(void **state)
{
    (void)state;
    struct redirect r;
    redirect_begin(&r, 0);
    const char *lines = "{\"payload\":\"a\"}\nnot json\n{\"payload\":\"b\"}\n";
    assert_int_equal(write(r.pipe[1], lines, strlen(lines)), (ssize_t)strlen(lines));

    struct cfg c;
    struct reader_arg a = {.p = &tp_input_stdin};
    a.in = input_open(&tp_input_stdin, &c, "{}");
    tp_batch_init(&a.batch);
    tp_drops_init(&a.drops);
    /* whatever is buffered comes back without waiting for more */
    while (a.batch.len < 2)
        assert_int_equal(tp_input_stdin.read(a.in, &a.batch, 16, &a.drops, &read_err), TP_OK);
    assert_string_equal(a.batch.msgs[0]->payload, "a");
    assert_string_equal(a.batch.msgs[1]->payload, "b");
    assert_int_equal(a.batch.msgs[1]->input_line, 3);
    assert_int_equal(a.drops.n, 1);
    assert_true(strncmp(a.drops.v[0].error, "line 2: ", 8) == 0);

    /* nothing more to read: the read blocks until stop */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_thread, &a), 0);
    tp_input_stdin.stop(a.in);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, TP_EOF);
    assert_int_equal(a.batch.len, 2);

    tp_batch_free(&a.batch);
    tp_drops_free(&a.drops);
    tp_input_stdin.close(a.in);
    cfg_free(&c);
    redirect_end(&r);
}

static void test_stdout_output(void **state)
{
    (void)state;
    struct tp_msg *m[2] = {msg_with("1", "a", "b"), msg_with("x\"y", NULL, NULL)};
    struct redirect r;
    fflush(stdout);
    redirect_begin(&r, 1);
    write_out(&tp_output_stdout, "{}", m, 2);
    char buf[256];
    ssize_t n = read(r.pipe[0], buf, sizeof(buf) - 1);
    redirect_end(&r);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"payload\":1,\"meta\":{\"a\":\"b\"}}\n"
                             "{\"payload\":\"x\\\"y\",\"meta\":{}}\n");
    tp_msg_free(m[0]);
    tp_msg_free(m[1]);
}

/* The first n messages of a simulator run, each as its envelope line. */
static char **sim_lines(const char *yaml, size_t n, size_t *got, int *eof)
{
    struct cfg c;
    void *in = input_open(&tp_input_simulator, &c, yaml);
    struct tp_batch b;
    struct tp_drops d;
    tp_batch_init(&b);
    tp_drops_init(&d);
    *eof = 0;
    while (b.len < n && !*eof) {
        int rc = tp_input_simulator.read(in, &b, 7, &d, &read_err);
        *eof = rc == TP_EOF;
        if (!*eof)
            assert_int_equal(rc, TP_OK);
    }
    char **out = calloc(b.len, sizeof(*out));
    for (size_t i = 0; i < b.len; i++) {
        struct tp_buf buf;
        tp_buf_init(&buf);
        assert_int_equal(tp_json_encode_envelope(b.msgs[i], &buf), TP_OK);
        out[i] = tp_buf_take(&buf, NULL);
    }
    *got = b.len;
    tp_batch_free(&b);
    tp_drops_free(&d);
    tp_input_simulator.close(in);
    cfg_free(&c);
    return out;
}

static void free_lines(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static const char *want_node(size_t i)
{
    static char id[32];
    snprintf(id, sizeof(id), "ns=1;i=%zu", 2200 + i % 5);
    return id;
}

static void test_simulator(void **state)
{
    (void)state;
    size_t n1, n2, n3;
    int eof;
    char **a = sim_lines("seed: 7\ntimestamps: fixed\nnodes: 5\n", 100, &n1, &eof);
    char **b = sim_lines("seed: 7\ntimestamps: fixed\nnodes: 5\n", 100, &n2, &eof);
    char **c = sim_lines("seed: 8\ntimestamps: fixed\nnodes: 5\n", 100, &n3, &eof);
    assert_true(n1 >= 100 && n2 >= 100 && n3 >= 100);
    int differs = 0;
    for (size_t i = 0; i < 100; i++) {
        assert_string_equal(a[i], b[i]);
        differs |= strcmp(a[i], c[i]) != 0;
        /* every line is a valid envelope with the OPC UA metadata */
        struct tp_msg *m = tp_msg_new();
        struct tp_error err;
        assert_int_equal(
            tp_json_decode_envelope(a[i], strlen(a[i]), m, TP_JSON_MAX_META_KEYS, &err), TP_OK);
        char want[64];
        snprintf(want, sizeof(want), "ns=1;i=%zu", 2200 + i % 5);
        assert_string_equal(tp_msg_meta_get(m, "opcua_node_id", NULL), want);
        snprintf(want, sizeof(want), "%llu", 1700000000000ULL + i);
        assert_string_equal(tp_msg_meta_get(m, "timestamp_ms", NULL), want);
        assert_non_null(tp_msg_meta_get(m, "opcua_tag_name", NULL));
        assert_non_null(tp_msg_meta_get(m, "opcua_tag_group", NULL));
        const char *type = tp_msg_meta_get(m, "opcua_tag_type", NULL);
        assert_non_null(type);
        if (strcmp(type, "number") == 0 || strcmp(type, "bool") == 0)
            assert_true(tp_json_is_valid(m->payload, m->payload_len));
        /* the opcua input's keys, in its order, then timestamp_ms */
        static const char *const keys[] = {
            "opcua_source_timestamp", "opcua_server_timestamp", "opcua_attr_nodeid",
            "opcua_attr_nodeclass",   "opcua_attr_browsename",  "opcua_attr_description",
            "opcua_attr_accesslevel", "opcua_attr_datatype",    "opcua_attr_statuscode",
            "opcua_tag_group",        "opcua_tag_name",         "opcua_tag_path",
            "opcua_tag_type",         "opcua_node_id",          "timestamp_ms"};
        assert_int_equal(m->n_meta, sizeof(keys) / sizeof(keys[0]));
        for (uint32_t k = 0; k < m->n_meta; k++)
            assert_string_equal(tp_msg_meta_key(m, k), keys[k]);
        assert_string_equal(tp_msg_meta_get(m, "opcua_attr_nodeid", NULL), want_node(i));
        assert_string_equal(tp_msg_meta_get(m, "opcua_attr_statuscode", NULL), "Good");
        assert_string_equal(tp_msg_meta_get(m, "opcua_attr_datatype", NULL),
                            strcmp(type, "number") == 0 ? "Double"
                            : strcmp(type, "bool") == 0 ? "Boolean"
                                                        : "String");
        assert_string_equal(tp_msg_meta_get(m, "opcua_tag_path", NULL),
                            tp_msg_meta_get(m, "opcua_tag_group", NULL));
        assert_string_equal(tp_msg_meta_get(m, "opcua_server_timestamp", NULL),
                            tp_msg_meta_get(m, "opcua_source_timestamp", NULL));
        if (i == 0) {
            assert_string_equal(tp_msg_meta_get(m, "opcua_source_timestamp", NULL),
                                "2023-11-14T22:13:20.000Z");
            assert_string_equal(tp_msg_meta_get(m, "opcua_tag_name", NULL), "Temperature");
            assert_string_equal(tp_msg_meta_get(m, "opcua_attr_browsename", NULL), "Temperature");
            assert_string_equal(tp_msg_meta_get(m, "opcua_attr_nodeclass", NULL),
                                "NodeClassVariable");
            assert_string_equal(type, "number");
        }
        tp_msg_free(m);
    }
    assert_true(differs);
    free_lines(a, n1);
    free_lines(b, n2);
    free_lines(c, n3);

    /* metadata: short, the six keys benchmarks use */
    a = sim_lines("timestamps: fixed\nnodes: 2\nmetadata: short\n", 1, &n1, &eof);
    assert_non_null(strstr(a[0],
                           "\"meta\":{\"opcua_node_id\":\"ns=1;i=2200\",\"opcua_tag_name\":"
                           "\"Temperature\",\"opcua_tag_group\":\"Line1.Machine1\","
                           "\"opcua_tag_type\":\"number\",\"opcua_source_timestamp\":"
                           "\"2023-11-14T22:13:20.000Z\",\"timestamp_ms\":\"1700000000000\"}"));
    free_lines(a, n1);

    /* count is honoured, then end of input */
    a = sim_lines("count: 10\nnodes: 3\n", 1000, &n1, &eof);
    assert_int_equal(n1, 10);
    assert_true(eof);
    free_lines(a, n1);

    /* tag names are unique */
    a = sim_lines("timestamps: fixed\nnodes: 30\n", 30, &n1, &eof);
    for (size_t i = 0; i < 30; i++)
        for (size_t j = i + 1; j < 30; j++) {
            const char *ni = strstr(a[i], "opcua_tag_name"), *nj = strstr(a[j], "opcua_tag_name");
            assert_true(strncmp(ni, nj, (size_t)(strchr(ni + 17, '"') - ni) + 1) != 0);
        }
    free_lines(a, n1);
}

static void test_simulator_stop(void **state)
{
    (void)state;
    struct cfg c;
    struct reader_arg a = {.p = &tp_input_simulator};
    /* one message per 1000 s: the first is due at once, the second is not */
    a.in = input_open(&tp_input_simulator, &c, "rate: 0.001\n");
    tp_batch_init(&a.batch);
    tp_drops_init(&a.drops);
    assert_int_equal(tp_input_simulator.read(a.in, &a.batch, 16, &a.drops, &read_err), TP_OK);
    assert_int_equal(a.batch.len, 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_thread, &a), 0);
    tp_input_simulator.stop(a.in);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, TP_EOF);
    assert_int_equal(a.batch.len, 1);
    tp_batch_free(&a.batch);
    tp_drops_free(&a.drops);
    tp_input_simulator.close(a.in);
    cfg_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_input_json_lines), cmocka_unit_test(test_file_input_lines_codec),
        cmocka_unit_test(test_file_input_long_lines), cmocka_unit_test(test_file_output_modes),
        cmocka_unit_test(test_file_errors),           cmocka_unit_test(test_stdin_read_and_stop),
        cmocka_unit_test(test_stdout_output),         cmocka_unit_test(test_simulator),
        cmocka_unit_test(test_simulator_stop),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}

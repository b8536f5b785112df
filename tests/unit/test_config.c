/* Unit tests of the configuration module: YAML -> node tree with positions,
 * YAML syntax errors, and typed option tables (unknown keys, wrong types,
 * missing required keys, defaults, JS snippet positions, freeing). */
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
#include "core/buf.h"

/* ---- option tables shaped like the real plugins ---- */

struct cond {
    struct tp_js_snippet if_;
    struct tp_js_snippet then;
};

static const struct tp_option cond_opts[] = {
    {.name = "if",
     .type = TP_OPT_JS,
     .offset = offsetof(struct cond, if_),
     .flags = TP_OPT_REQUIRED,
     .desc = "JS expression"},
    {.name = "then",
     .type = TP_OPT_JS,
     .offset = offsetof(struct cond, then),
     .flags = TP_OPT_REQUIRED,
     .desc = "JS function body"},
    {0},
};

struct tagp {
    struct tp_js_snippet defaults;
    struct tp_list conditions;
    struct tp_js_snippet adv;
    int64_t timeout_ms;
};

static const struct tp_option tagp_opts[] = {
    {.name = "defaults", .type = TP_OPT_JS, .offset = offsetof(struct tagp, defaults)},
    {.name = "conditions",
     .type = TP_OPT_LIST,
     .offset = offsetof(struct tagp, conditions),
     .sub = cond_opts,
     .elem_size = sizeof(struct cond)},
    {.name = "advancedProcessing", .type = TP_OPT_JS, .offset = offsetof(struct tagp, adv)},
    {.name = "timeout_ms",
     .type = TP_OPT_INT,
     .offset = offsetof(struct tagp, timeout_ms),
     .def = "100"},
    {0},
};

struct broker {
    char *host;
    int64_t port;
};

static const struct tp_option broker_opts[] = {
    {.name = "host",
     .type = TP_OPT_STRING,
     .offset = offsetof(struct broker, host),
     .def = "localhost"},
    {.name = "port", .type = TP_OPT_INT, .offset = offsetof(struct broker, port), .def = "1883"},
    {0},
};

static const char *const modes[] = {"fast", "safe", NULL};

struct sink {
    char *name;
    char *mode;
    int64_t count;
    double ratio;
    int enabled;
    struct tp_strlist topics;
    struct tp_strlist deftopics;
    struct tp_strmap headers;
    struct broker broker;
    const struct tp_node *raw;
    struct tp_js_snippet js;
};

static const struct tp_option sink_opts[] = {
    {.name = "name", .type = TP_OPT_STRING, .offset = offsetof(struct sink, name)},
    {.name = "mode",
     .type = TP_OPT_STRING,
     .offset = offsetof(struct sink, mode),
     .def = "safe",
     .choices = modes},
    {.name = "count", .type = TP_OPT_INT, .offset = offsetof(struct sink, count), .def = "100"},
    {.name = "ratio", .type = TP_OPT_DOUBLE, .offset = offsetof(struct sink, ratio), .def = "0.5"},
    {.name = "enabled",
     .type = TP_OPT_BOOL,
     .offset = offsetof(struct sink, enabled),
     .def = "true"},
    {.name = "topics", .type = TP_OPT_STRINGS, .offset = offsetof(struct sink, topics)},
    {.name = "deftopics",
     .type = TP_OPT_STRINGS,
     .offset = offsetof(struct sink, deftopics),
     .def = "[a, b]"},
    {.name = "headers", .type = TP_OPT_STRMAP, .offset = offsetof(struct sink, headers)},
    {.name = "broker",
     .type = TP_OPT_OBJECT,
     .offset = offsetof(struct sink, broker),
     .sub = broker_opts},
    {.name = "raw", .type = TP_OPT_NODE, .offset = offsetof(struct sink, raw)},
    {.name = "js", .type = TP_OPT_JS, .offset = offsetof(struct sink, js), .def = "return msg;"},
    {0},
};

/* ---- helpers ---- */

static struct tp_config *load(const char *yaml)
{
    struct tp_config *cfg = NULL;
    struct tp_error err = {0};
    int rc = tp_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &err);
    if (rc)
        fail_msg("load failed: %s", err.msg);
    return cfg;
}

/* Expects a load error; returns the formatted "FILE:LINE:COL: msg". */
static void load_fails(const char *yaml, char *out, size_t size)
{
    struct tp_config *cfg = NULL;
    struct tp_error err = {0};
    assert_int_equal(tp_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &err), TP_CONFIG);
    assert_null(cfg);
    tp_error_format(&err, out, size);
}

/* Parses yaml's `at` map (dotted path of plain keys, or "" for the root)
 * with table into out; returns the status and the formatted error. */
static int parse_at(struct tp_config *cfg, const char *at, const struct tp_option *table, void *out,
                    char *msg, size_t size)
{
    const struct tp_node *n = cfg->root;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", at);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        n = tp_node_get(n, k);
    struct tp_error err = {0};
    int rc = tp_options_parse(table, n, at, out, &err);
    if (msg) {
        msg[0] = '\0';
        if (rc)
            tp_error_format(&err, msg, size);
    }
    return rc;
}

/* ---- tree and positions ---- */

static void test_node_positions(void **state)
{
    (void)state;
    struct tp_config *cfg = load("input:\n"
                                 "  stdin: {}\n"
                                 "pipeline:\n"
                                 "  threads: 4\n"
                                 "  processors:\n"
                                 "    - tag_processor:\n"
                                 "        defaults: |\n"
                                 "          msg.meta.a = 1;\n"
                                 "          return msg;\n"
                                 "        name: 'quoted'\n");
    assert_non_null(cfg);
    assert_string_equal(cfg->file, "t.yaml");
    const struct tp_node *root = cfg->root;
    assert_int_equal(root->type, TP_NODE_MAP);
    assert_int_equal(root->n, 2);
    assert_string_equal(root->keys[1], "pipeline");
    assert_int_equal(root->key_nodes[1]->line, 3);
    assert_int_equal(root->key_nodes[1]->col, 1);

    const struct tp_node *stdin_n = tp_node_get(tp_node_get(root, "input"), "stdin");
    assert_int_equal(stdin_n->type, TP_NODE_MAP);
    assert_int_equal(stdin_n->n, 0);
    assert_int_equal(stdin_n->line, 2);
    assert_int_equal(stdin_n->col, 10);

    const struct tp_node *pipe = tp_node_get(root, "pipeline");
    assert_int_equal(pipe->line, 4);
    assert_int_equal(pipe->col, 3);
    const struct tp_node *threads = tp_node_get(pipe, "threads");
    assert_int_equal(threads->type, TP_NODE_SCALAR);
    assert_string_equal(threads->value, "4");
    assert_string_equal(threads->file, "t.yaml");
    assert_int_equal(threads->line, 4);
    assert_int_equal(threads->col, 12);

    const struct tp_node *procs = tp_node_get(pipe, "processors");
    assert_int_equal(procs->type, TP_NODE_SEQ);
    assert_int_equal(procs->n, 1);
    const struct tp_node *tp = tp_node_get(procs->items[0], "tag_processor");
    assert_int_equal(tp->line, 7);
    assert_int_equal(tp->col, 9);

    const struct tp_node *def = tp_node_get(tp, "defaults");
    assert_true(def->block);
    assert_false(def->quoted);
    assert_string_equal(def->value, "msg.meta.a = 1;\nreturn msg;\n");
    assert_int_equal(def->line, 7);
    assert_int_equal(def->col, 19); /* the indicator */
    assert_int_equal(def->content_line, 8);
    assert_int_equal(def->content_col, 11);

    const struct tp_node *name = tp_node_get(tp, "name");
    assert_true(name->quoted);
    assert_string_equal(name->value, "quoted");
    assert_int_equal(name->line, 10);
    assert_int_equal(name->col, 15);
    assert_int_equal(name->content_col, 16);

    assert_null(tp_node_get(tp, "absent"));
    assert_null(tp_node_get(threads, "x"));
    assert_string_equal(tp_node_type_name(procs), "list");
    assert_string_equal(tp_node_type_name(threads), "string");
    assert_string_equal(tp_node_type_name(stdin_n), "map");
    assert_string_equal(tp_node_type_name(NULL), "null");
    tp_config_free(cfg);
}

static void test_block_content_positions(void **state)
{
    (void)state;
    struct tp_config *cfg = load("a: |-  # comment\n"
                                 "\n"
                                 "     first\n"
                                 "       more\n"
                                 "b: >\n"
                                 "   folded\n"
                                 "   text\n"
                                 "c: ~\n"
                                 "d:\n"
                                 "e: plain\n");
    const struct tp_node *a = tp_node_get(cfg->root, "a");
    assert_string_equal(a->value, "\nfirst\n  more");
    assert_int_equal(a->content_line, 2); /* the blank line is JS line 1 */
    assert_int_equal(a->content_col, 6);
    const struct tp_node *b = tp_node_get(cfg->root, "b");
    assert_true(b->block);
    assert_string_equal(b->value, "folded text\n");
    assert_int_equal(b->content_line, 6);
    assert_int_equal(b->content_col, 4);
    assert_int_equal(tp_node_get(cfg->root, "c")->type, TP_NODE_NULL);
    assert_string_equal(tp_node_get(cfg->root, "c")->value, "");
    assert_int_equal(tp_node_get(cfg->root, "d")->type, TP_NODE_NULL);
    const struct tp_node *e = tp_node_get(cfg->root, "e");
    assert_int_equal(e->content_line, 10);
    assert_int_equal(e->content_col, 4);
    tp_config_free(cfg);
}

/* ---- YAML syntax errors ---- */

static void test_yaml_errors(void **state)
{
    (void)state;
    char msg[600];
    load_fails("a: 1\nb: c: 2\n", msg, sizeof(msg));
    assert_string_equal(msg, "t.yaml:2:5: mapping values are not allowed in this context");

    /* bad indentation: a key less indented than its siblings */
    load_fails("a:\n  b: 1\n c: 2\n", msg, sizeof(msg));
    assert_non_null(strstr(msg, "t.yaml:3:2: did not find expected key"));

    load_fails("a:\n\tb: 1\n", msg, sizeof(msg));
    assert_non_null(strstr(msg, "t.yaml:2:1: found character that cannot start any token"));
    assert_non_null(strstr(msg, "tab"));

    load_fails("a: \"abc\nb: 1\n", msg, sizeof(msg));
    assert_non_null(strstr(msg, "t.yaml:"));
    assert_non_null(strstr(msg, "quoted scalar"));

    load_fails("a: 1\nb: 2\na: 3\n", msg, sizeof(msg));
    assert_non_null(strstr(msg, "t.yaml:3:1: duplicate key \"a\""));
    assert_non_null(strstr(msg, "line 1"));

    load_fails("x:\n  k: 1\n  j: 2\n  k: 3\n", msg, sizeof(msg));
    assert_non_null(strstr(msg, "t.yaml:4:3: duplicate key \"k\" (first defined at line 2"));

    load_fails("a: &x 1\nb: *x\n", msg, sizeof(msg));
    assert_non_null(strstr(msg, "t.yaml:2:4: YAML aliases"));

    load_fails("- 1\n- 2\n", msg, sizeof(msg));
    assert_string_equal(msg, "t.yaml:1:1: the top level must be a map, got list");
    load_fails("", msg, sizeof(msg));
    assert_non_null(strstr(msg, "empty configuration"));
    load_fails("a: 1\n---\nb: 2\n", msg, sizeof(msg));
    assert_non_null(strstr(msg, "t.yaml:2:1: only one YAML document"));
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/tp_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = "a:\n  b: [1, 2]\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    struct tp_config *cfg = NULL;
    struct tp_error err = {0};
    assert_int_equal(tp_config_load_file(path, &cfg, &err), TP_OK);
    assert_string_equal(cfg->file, path);
    const struct tp_node *b = tp_node_get(tp_node_get(cfg->root, "a"), "b");
    assert_int_equal(b->type, TP_NODE_SEQ);
    assert_int_equal(b->n, 2);
    assert_string_equal(b->items[1]->value, "2");
    assert_int_equal(b->items[1]->line, 2);
    assert_int_equal(b->items[1]->col, 10);
    tp_config_free(cfg);
    unlink(path);
    assert_int_equal(tp_config_load_file(path, &cfg, &err), TP_IO);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, path));
}

/* ---- typed options ---- */

static void test_unknown_key(void **state)
{
    (void)state;
    struct tp_config *cfg = load("pipeline:\n"
                                 "  processors:\n"
                                 "    - tag_processor:\n"
                                 "        defaults: 'return msg;'\n"
                                 "        defualts: x\n");
    const struct tp_node *procs = tp_node_get(tp_node_get(cfg->root, "pipeline"), "processors");
    const struct tp_node *tp = tp_node_get(procs->items[0], "tag_processor");
    struct tagp out = {0};
    struct tp_error err = {0};
    assert_int_equal(
        tp_options_parse(tagp_opts, tp, "pipeline.processors[0].tag_processor", &out, &err),
        TP_CONFIG);
    char msg[600];
    tp_error_format(&err, msg, sizeof(msg));
    assert_string_equal(msg, "t.yaml:5:9: pipeline.processors[0].tag_processor.defualts: unknown "
                             "key; valid keys: defaults, conditions, advancedProcessing, "
                             "timeout_ms");
    /* the partially filled struct was released */
    assert_null(out.defaults.code);
    tp_config_free(cfg);
}

static void test_wrong_types(void **state)
{
    (void)state;
    struct {
        const char *yaml, *expect;
    } cases[] = {
        {"s:\n  count: abc\n", "t.yaml:2:10: s.count: expected integer, got string \"abc\""},
        {"s:\n  count: 1.5\n", "t.yaml:2:10: s.count: expected integer, got number 1.5"},
        {"s:\n  count: 99999999999999999999\n",
         "t.yaml:2:10: s.count: integer out of range: 99999999999999999999"},
        {"s:\n  ratio: x1\n", "t.yaml:2:10: s.ratio: expected number, got string \"x1\""},
        {"s:\n  enabled: maybe\n",
         "t.yaml:2:12: s.enabled: expected boolean (true or false), got string \"maybe\""},
        {"s:\n  name: [a]\n", "t.yaml:2:9: s.name: expected string, got list"},
        {"s:\n  mode: slow\n", "t.yaml:2:9: s.mode: expected one of: fast, safe, got \"slow\""},
        {"s:\n  topics: {a: 1}\n",
         "t.yaml:2:11: s.topics: expected string or list of strings, got map"},
        {"s:\n  topics: [a, {b: 1}]\n", "t.yaml:2:15: s.topics[1]: expected string, got map"},
        {"s:\n  headers: [a]\n", "t.yaml:2:12: s.headers: expected map of strings, got list"},
        {"s:\n  broker: 5\n", "t.yaml:2:11: s.broker: expected map, got integer 5"},
        {"s:\n  broker:\n    port: \"x\"\n",
         "t.yaml:3:11: s.broker.port: expected integer, got string \"x\""},
        {"s:\n  js: {a: 1}\n", "t.yaml:2:7: s.js: expected JavaScript code (a string), got map"},
        {"s: [1]\n", "t.yaml:1:4: s: expected map, got list"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tp_config *cfg = load(cases[i].yaml);
        struct sink out = {0};
        char msg[600];
        assert_int_equal(parse_at(cfg, "s", sink_opts, &out, msg, sizeof(msg)), TP_CONFIG);
        assert_string_equal(msg, cases[i].expect);
        tp_config_free(cfg);
    }

    struct tp_config *cfg = load("input:\n  simulator:\n    nodes: abc\n");
    struct tp_option sim[] = {{.name = "nodes", .type = TP_OPT_INT}, {0}};
    int64_t nodes = 0;
    char msg[600];
    assert_int_equal(parse_at(cfg, "input.simulator", sim, &nodes, msg, sizeof(msg)), TP_CONFIG);
    assert_string_equal(msg, "t.yaml:3:12: input.simulator.nodes: expected integer, got string "
                             "\"abc\"");
    tp_config_free(cfg);
}

static void test_missing_required_in_list(void **state)
{
    (void)state;
    struct tp_config *cfg = load("tp:\n"
                                 "  conditions:\n"
                                 "    - if: a === 1\n"
                                 "      then: return msg;\n"
                                 "    - then: |\n"
                                 "        return null;\n");
    struct tagp out = {0};
    char msg[600];
    assert_int_equal(parse_at(cfg, "tp", tagp_opts, &out, msg, sizeof(msg)), TP_CONFIG);
    assert_string_equal(msg, "t.yaml:5:7: tp.conditions[1]: missing required key \"if\"");
    assert_null(out.conditions.items);
    tp_config_free(cfg);

    /* an empty element and a wrong element type */
    cfg = load("tp:\n  conditions:\n    -\n");
    assert_int_equal(parse_at(cfg, "tp", tagp_opts, &out, msg, sizeof(msg)), TP_CONFIG);
    assert_non_null(strstr(msg, "tp.conditions[0]: missing required key \"if\""));
    tp_config_free(cfg);
    cfg = load("tp:\n  conditions:\n    - x\n");
    assert_int_equal(parse_at(cfg, "tp", tagp_opts, &out, msg, sizeof(msg)), TP_CONFIG);
    assert_string_equal(msg, "t.yaml:3:7: tp.conditions[0]: expected map, got string \"x\"");
    tp_config_free(cfg);
}

static void test_defaults_and_values(void **state)
{
    (void)state;
    struct tp_config *cfg = load("s:\n"
                                 "  name: n1\n"
                                 "  ratio: -2.5e1\n"
                                 "  enabled: FALSE\n"
                                 "  count: -42\n"
                                 "  headers:\n"
                                 "    a: x\n"
                                 "    b: 2\n"
                                 "  broker:\n"
                                 "    host: mq\n"
                                 "  raw:\n"
                                 "    kafka: {}\n");
    struct sink out = {0};
    char msg[600];
    assert_int_equal(parse_at(cfg, "s", sink_opts, &out, msg, sizeof(msg)), TP_OK);
    assert_string_equal(out.name, "n1");
    assert_string_equal(out.mode, "safe");
    assert_int_equal(out.count, -42);
    assert_true(out.ratio == -25.0);
    assert_int_equal(out.enabled, 0);
    assert_int_equal(out.topics.n, 0);
    assert_null(out.topics.v);
    assert_int_equal(out.deftopics.n, 2);
    assert_string_equal(out.deftopics.v[1], "b");
    assert_int_equal(out.headers.n, 2);
    assert_string_equal(out.headers.keys[1], "b");
    assert_string_equal(out.headers.vals[1], "2");
    assert_string_equal(out.broker.host, "mq");
    assert_int_equal(out.broker.port, 1883);
    assert_non_null(out.raw);
    assert_int_equal(out.raw->type, TP_NODE_MAP);
    assert_non_null(tp_node_get(out.raw, "kafka"));
    assert_string_equal(out.js.code, "return msg;");
    assert_null(out.js.file);
    tp_options_free(sink_opts, &out);
    assert_null(out.name);
    assert_null(out.broker.host);
    tp_options_free(sink_opts, &out); /* idempotent */
    tp_config_free(cfg);
}

static void test_null_map(void **state)
{
    (void)state;
    const char *docs[] = {"s: {}\n", "s:\n", "s: ~\n", "t: 1\n"};
    for (size_t i = 0; i < 4; i++) {
        struct tp_config *cfg = load(docs[i]);
        struct sink out = {0};
        assert_int_equal(parse_at(cfg, "s", sink_opts, &out, NULL, 0), TP_OK);
        assert_null(out.name);
        assert_string_equal(out.mode, "safe");
        assert_int_equal(out.count, 100);
        assert_true(out.ratio == 0.5);
        assert_int_equal(out.enabled, 1);
        assert_string_equal(out.broker.host, "localhost");
        assert_int_equal(out.broker.port, 1883);
        assert_null(out.raw);
        tp_options_free(sink_opts, &out);
        tp_config_free(cfg);
    }
    /* null values count as absent: defaults apply */
    struct tp_config *cfg = load("s:\n  count:\n  broker: ~\n  mode: ~\n");
    struct sink out = {0};
    assert_int_equal(parse_at(cfg, "s", sink_opts, &out, NULL, 0), TP_OK);
    assert_int_equal(out.count, 100);
    assert_string_equal(out.mode, "safe");
    assert_int_equal(out.broker.port, 1883);
    tp_options_free(sink_opts, &out);
    tp_config_free(cfg);
}

static void test_strings_single_or_list(void **state)
{
    (void)state;
    struct tp_config *cfg = load("s:\n  topics: one\n  deftopics:\n    - x\n    - 'y'\n    - z\n");
    struct sink out = {0};
    assert_int_equal(parse_at(cfg, "s", sink_opts, &out, NULL, 0), TP_OK);
    assert_int_equal(out.topics.n, 1);
    assert_string_equal(out.topics.v[0], "one");
    assert_int_equal(out.deftopics.n, 3);
    assert_string_equal(out.deftopics.v[0], "x");
    assert_string_equal(out.deftopics.v[1], "y");
    assert_string_equal(out.deftopics.v[2], "z");
    tp_options_free(sink_opts, &out);
    tp_config_free(cfg);
}

static void test_js_positions(void **state)
{
    (void)state;
    struct tp_config *cfg = load("tp:\n"
                                 "  defaults: |\n"
                                 "    msg.meta.a = 1;\n"
                                 "    return msg;\n"
                                 "  conditions:\n"
                                 "    - if: msg.meta.x === \"1\"\n"
                                 "      then: \"return msg;\"\n"
                                 "    - if: 'true'\n"
                                 "      then:\n");
    struct tagp out = {0};
    char msg[600];
    assert_int_equal(parse_at(cfg, "tp", tagp_opts, &out, msg, sizeof(msg)), TP_OK);
    assert_int_equal(out.timeout_ms, 100);
    assert_null(out.adv.code);

    const struct tp_js_snippet *d = &out.defaults;
    assert_string_equal(d->code, "msg.meta.a = 1;\nreturn msg;\n");
    assert_string_equal(d->path, "tp.defaults");
    assert_string_equal(d->file, "t.yaml");
    assert_true(d->block);
    assert_int_equal(d->line, 3);
    assert_int_equal(d->col, 5);
    int line, col;
    tp_js_snippet_position(d, 1, 1, &line, &col);
    assert_int_equal(line, 3);
    assert_int_equal(col, 5);
    tp_js_snippet_position(d, 2, 8, &line, &col); /* "msg" in "return msg;" */
    assert_int_equal(line, 4);
    assert_int_equal(col, 12);

    assert_int_equal(out.conditions.n, 2);
    struct cond *c = out.conditions.items;
    assert_string_equal(c[0].if_.path, "tp.conditions[0].if");
    assert_string_equal(c[0].if_.code, "msg.meta.x === \"1\"");
    assert_false(c[0].if_.block);
    tp_js_snippet_position(&c[0].if_, 1, 10, &line, &col); /* "x": "m" is at col 11 */
    assert_int_equal(line, 6);
    assert_int_equal(col, 20);

    const struct tp_js_snippet *t = &c[0].then;
    assert_string_equal(t->path, "tp.conditions[0].then");
    assert_int_equal(t->line, 7);
    assert_int_equal(t->col, 14); /* after the opening quote */
    tp_js_snippet_position(t, 1, 8, &line, &col);
    assert_int_equal(line, 7);
    assert_int_equal(col, 21);

    assert_string_equal(c[1].if_.code, "true");
    assert_int_equal(c[1].if_.col, 12);
    /* a present but empty snippet: "" with a position */
    assert_non_null(c[1].then.code);
    assert_string_equal(c[1].then.code, "");
    assert_string_equal(c[1].then.path, "tp.conditions[1].then");
    tp_options_free(tagp_opts, &out);
    assert_null(out.conditions.items);
    tp_config_free(cfg);
}

/* Errors half-way through nested lists must not leak (checked by ASan). */
static void test_free_after_error(void **state)
{
    (void)state;
    struct tp_config *cfg = load("tp:\n"
                                 "  defaults: return msg;\n"
                                 "  conditions:\n"
                                 "    - if: a\n"
                                 "      then: b\n"
                                 "    - if: c\n"
                                 "      then: d\n"
                                 "      else: e\n");
    struct tagp out = {0};
    char msg[600];
    assert_int_equal(parse_at(cfg, "tp", tagp_opts, &out, msg, sizeof(msg)), TP_CONFIG);
    assert_string_equal(msg, "t.yaml:8:7: tp.conditions[1].else: unknown key; valid keys: if, "
                             "then");
    assert_null(out.defaults.code);
    assert_null(out.conditions.items);
    tp_options_free(tagp_opts, &out);
    tp_config_free(cfg);
}

static void test_markdown(void **state)
{
    (void)state;
    struct tp_buf b;
    tp_buf_init(&b);
    assert_int_equal(tp_options_markdown(sink_opts, "output.sink", &b), TP_OK);
    assert_non_null(b.data);
    assert_non_null(strstr(b.data, "### output.sink\n"));
    assert_non_null(strstr(b.data, "| key | type | default | required | description |"));
    assert_non_null(strstr(b.data, "| `count` | integer | `100` | no |"));
    assert_non_null(strstr(b.data, "`fast`, `safe`"));
    assert_non_null(strstr(b.data, "### output.sink.broker\n"));
    assert_non_null(strstr(b.data, "| `port` | integer | `1883` | no |"));
    tp_buf_reset(&b);
    assert_int_equal(tp_options_markdown(tagp_opts, "tag_processor", &b), TP_OK);
    assert_non_null(strstr(b.data, "### tag_processor.conditions\n"));
    assert_non_null(strstr(b.data, "| `if` | JavaScript |  | yes | JS expression |"));
    tp_buf_free(&b);
}

/* ---- durations, ranges, optional objects, deprecated forms ---- */

struct timing {
    int64_t wait_ms, legacy_ms, keep_ms, count;
    double ratio;
    struct broker *extra; /* optional object */
};

static const struct tp_option timing_opts[] = {
    TP_OPTION(struct timing, wait_ms, "wait", TP_OPT_DURATION, "500ms", "a duration", .min = 1,
              .max = 3600000),
    TP_OPTION(struct timing, legacy_ms, "legacy", TP_OPT_DURATION, "30s",
              "bare integers are seconds, deprecated", .int_ms = 1000,
              .flags = TP_OPT_INT_DEPRECATED),
    TP_OPTION(struct timing, keep_ms, "keep_ms", TP_OPT_DURATION, "100", "bare integers are ms",
              .int_ms = 1),
    TP_OPTION(struct timing, count, "count", TP_OPT_INT, "1", "at least 1", .min = 1,
              .max = INT64_MAX),
    TP_OPTION(struct timing, ratio, "ratio", TP_OPT_DOUBLE, "0.5", "0..1", .min = 0, .max = 1),
    TP_OPTION(struct timing, extra, "extra", TP_OPT_OPTIONAL, NULL, "optional broker",
              .sub = broker_opts, .elem_size = sizeof(struct broker)),
    {0},
};

static int parse_timing(const char *yaml, struct timing *t, char *msg, size_t size)
{
    struct tp_config *cfg = load(yaml);
    memset(t, 0, sizeof(*t));
    int rc = parse_at(cfg, "t", timing_opts, t, msg, size);
    tp_config_free(cfg);
    return rc;
}

static void test_durations(void **state)
{
    (void)state;
    struct timing t;
    char msg[600];
    assert_int_equal(parse_timing("t: {}\n", &t, msg, sizeof(msg)), TP_OK);
    assert_int_equal(t.wait_ms, 500);
    assert_int_equal(t.legacy_ms, 30000);
    assert_int_equal(t.keep_ms, 100);
    assert_null(t.extra);
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"250ms", 250},  {"5s", 5000},     {"1.5s", 1500},  {"2m", 120000},
                {"1h", 3600000}, {"1m30s", 90000}, {"\"2s\"", 2000}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "t: {wait: %s}\n", good[i].text);
        assert_int_equal(parse_timing(yaml, &t, msg, sizeof(msg)), TP_OK);
        assert_int_equal(t.wait_ms, good[i].ms);
    }
    /* old integer forms: the key's unit */
    assert_int_equal(parse_timing("t: {legacy: 7, keep_ms: 250}\n", &t, msg, sizeof(msg)), TP_OK);
    assert_int_equal(t.legacy_ms, 7000);
    assert_int_equal(t.keep_ms, 250);
    assert_int_equal(parse_timing("t: {keep_ms: 2s}\n", &t, msg, sizeof(msg)), TP_OK);
    assert_int_equal(t.keep_ms, 2000);
    /* errors: positioned, with the expected form or range */
    const char *bad[][2] = {
        {"t: {wait: 5}\n",
         "t.yaml:1:11: t.wait: expected duration (500ms, 5s, 2m, 1h30m), got integer 5"},
        {"t: {wait: -1s}\n",
         "t.yaml:1:11: t.wait: expected duration (500ms, 5s, 2m, 1h30m), got string \"-1s\""},
        {"t: {wait: 5 s}\n",
         "t.yaml:1:11: t.wait: expected duration (500ms, 5s, 2m, 1h30m), got string \"5 s\""},
        {"t: {wait: 2h}\n", "t.yaml:1:11: t.wait: expected a duration in 1ms..1h, got 2h"},
        {"t: {wait: 0}\n", "t.yaml:1:11: t.wait: expected a duration in 1ms..1h, got 0"},
        {"t: {count: 0}\n", "t.yaml:1:12: t.count: expected an integer of at least 1, got 0"},
        {"t: {ratio: 1.5}\n", "t.yaml:1:12: t.ratio: expected a number in 0..1, got 1.5"},
        {"t: {extra: 5}\n", "t.yaml:1:12: t.extra: expected map, got integer 5"},
        {"t: {extra: {port: x}}\n", "t.yaml:1:19: t.extra.port: expected integer, got string "
                                    "\"x\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_timing(bad[i][0], &t, msg, sizeof(msg)), TP_CONFIG);
        assert_string_equal(msg, bad[i][1]);
    }
    /* an optional object present: allocated, defaults applied, freed with the rest */
    assert_int_equal(parse_timing("t: {extra: {port: 8883}}\n", &t, msg, sizeof(msg)), TP_OK);
    assert_non_null(t.extra);
    assert_string_equal(t.extra->host, "localhost");
    assert_int_equal(t.extra->port, 8883);
    tp_options_free(timing_opts, &t);
    assert_null(t.extra);
}

/* .given: set for a key present (with any value, the default's too, or 0),
 * not for an absent or null one; the default still applies to those. */
struct given_cfg {
    int64_t wait_ms, count;
    int wait_given, count_given;
};

static const struct tp_option given_opts[] = {
    TP_OPTION(struct given_cfg, wait_ms, "wait", TP_OPT_DURATION, NULL, "no default",
              .given = TP_OPT_GIVEN_AT(struct given_cfg, wait_given)),
    TP_OPTION(struct given_cfg, count, "count", TP_OPT_INT, "3", "a default",
              .given = TP_OPT_GIVEN_AT(struct given_cfg, count_given)),
    {0},
};

static void test_option_given(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        int64_t wait_ms, count;
        int wait_given, count_given;
    } cases[] = {
        {"t: {}\n", 0, 3, 0, 0},
        {"t: {wait: 0}\n", 0, 3, 1, 0},
        {"t: {wait: 5ms, count: 3}\n", 5, 3, 1, 1},
        {"t: {wait: ~, count: 0}\n", 0, 0, 0, 1},
    };
    char msg[600];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tp_config *cfg = load(cases[i].yaml);
        struct given_cfg g = {0};
        assert_int_equal(parse_at(cfg, "t", given_opts, &g, msg, sizeof(msg)), TP_OK);
        assert_int_equal(g.wait_ms, cases[i].wait_ms);
        assert_int_equal(g.count, cases[i].count);
        assert_int_equal(g.wait_given, cases[i].wait_given);
        assert_int_equal(g.count_given, cases[i].count_given);
        tp_config_free(cfg);
    }
    /* a value that does not convert is an error, not "given" */
    struct tp_config *cfg = load("t: {wait: x}\n");
    struct given_cfg g = {0};
    assert_int_equal(parse_at(cfg, "t", given_opts, &g, msg, sizeof(msg)), TP_CONFIG);
    assert_int_equal(g.wait_given, 0);
    tp_config_free(cfg);
}

struct found {
    int n;
    char last[600];
};

static void on_found(void *ud, const struct tp_error *err)
{
    struct found *f = ud;
    f->n++;
    tp_error_format(err, f->last, sizeof(f->last));
}

static void test_deprecated_forms(void **state)
{
    (void)state;
    struct tp_config *cfg = load("t:\n  legacy: 30\n  keep_ms: 5\n  wait: 1s\n");
    struct found f = {0};
    assert_int_equal(
        tp_options_deprecated(timing_opts, tp_node_get(cfg->root, "t"), "t", on_found, &f), 1);
    assert_int_equal(f.n, 1);
    assert_string_equal(f.last, "t.yaml:2:11: t.legacy: a bare integer (counted in units of 1s) "
                                "is deprecated; write the unit, e.g. 30s");
    tp_config_free(cfg);
    cfg = load("t:\n  legacy: 30s\n");
    f.n = 0;
    assert_int_equal(
        tp_options_deprecated(timing_opts, tp_node_get(cfg->root, "t"), "t", on_found, &f), 0);
    tp_config_free(cfg);
}

static void test_markdown_ranges_and_durations(void **state)
{
    (void)state;
    struct tp_buf b;
    tp_buf_init(&b);
    assert_int_equal(tp_options_markdown(timing_opts, "t", &b), 0);
    assert_non_null(strstr(b.data, "| `wait` | duration | `500ms` | no | a duration Range: "
                                   "1ms..1h. |"));
    assert_non_null(strstr(b.data, "A bare integer counts seconds (deprecated: write the unit"));
    assert_non_null(strstr(b.data, "| `count` | integer | `1` | no | at least 1 Range: at least "
                                   "1. |"));
    assert_non_null(strstr(b.data, "| `extra` | object (optional) |"));
    assert_non_null(strstr(b.data, "### t.extra"));
    tp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_positions),
        cmocka_unit_test(test_block_content_positions),
        cmocka_unit_test(test_option_given),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_missing_required_in_list),
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_null_map),
        cmocka_unit_test(test_strings_single_or_list),
        cmocka_unit_test(test_js_positions),
        cmocka_unit_test(test_free_after_error),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_deprecated_forms),
        cmocka_unit_test(test_markdown_ranges_and_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

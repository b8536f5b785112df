/* Fuzz target for the config parser: bytes -> tp_config_load_string, a check
 * of the tree's invariants, then tp_options_parse with realistic nested option
 * tables (a root-like table, every input/output/processor plugin's own table
 * where the YAML names one, and a table using every option type on each map)
 * and tp_options_free. Must never crash, trip a sanitizer or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_plugins.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Mirrors the shape of the pipeline's root table (pipeline.c keeps its own static). */
struct fz_pipeline {
    int64_t threads, batch_size;
    const struct tp_node *processors;
};
struct fz_logger {
    char *level, *format;
};
struct fz_root {
    const struct tp_node *input, *output, *dead_letter;
    struct fz_pipeline pipeline;
    struct fz_logger logger;
};

static const char *const fz_levels[] = {"trace", "debug", "info", "warn", "error", "off", NULL};

static const struct tp_option fz_pipeline_opts[] = {
    TP_OPTION(struct fz_pipeline, threads, "threads", TP_OPT_INT, "0", ""),
    TP_OPTION(struct fz_pipeline, batch_size, "batch_size", TP_OPT_INT, "256", ""),
    TP_OPTION(struct fz_pipeline, processors, "processors", TP_OPT_NODE, NULL, ""),
    {0},
};
static const struct tp_option fz_logger_opts[] = {
    TP_OPTION(struct fz_logger, level, "level", TP_OPT_STRING, "info", "", .choices = fz_levels),
    TP_OPTION(struct fz_logger, format, "format", TP_OPT_STRING, "text", ""),
    {0},
};
static const struct tp_option fz_root_opts[] = {
    TP_OPTION(struct fz_root, input, "input", TP_OPT_NODE, NULL, ""),
    TP_OPTION(struct fz_root, pipeline, "pipeline", TP_OPT_OBJECT, NULL, "",
              .sub = fz_pipeline_opts),
    TP_OPTION(struct fz_root, output, "output", TP_OPT_NODE, NULL, ""),
    TP_OPTION(struct fz_root, dead_letter, "dead_letter", TP_OPT_NODE, NULL, ""),
    TP_OPTION(struct fz_root, logger, "logger", TP_OPT_OBJECT, NULL, "", .sub = fz_logger_opts),
    {0},
};

/* A table with every option type, applied to every map of the tree. */
struct fz_item {
    char *name;
    int64_t n;
    struct tp_js_snippet code;
};
struct fz_obj {
    double d;
    int b;
    struct tp_strmap m;
};
struct fz_all {
    char *s, *choice;
    int64_t i;
    double d;
    int b;
    struct tp_js_snippet js;
    struct tp_strlist l;
    struct tp_strmap m;
    struct tp_list list;
    struct fz_obj obj;
    const struct tp_node *node;
    int64_t dur, legacy;
    struct fz_obj *opt; /* optional object */
};

static const char *const fz_choices[] = {"a", "b", "umh.messages", NULL};

static const struct tp_option fz_item_opts[] = {
    TP_OPTION(struct fz_item, name, "name", TP_OPT_STRING, NULL, "", .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct fz_item, n, "n", TP_OPT_INT, "3", ""),
    TP_OPTION(struct fz_item, code, "code", TP_OPT_JS, NULL, ""),
    {0},
};
static const struct tp_option fz_obj_opts[] = {
    TP_OPTION(struct fz_obj, d, "d", TP_OPT_DOUBLE, "1.5", ""),
    TP_OPTION(struct fz_obj, b, "b", TP_OPT_BOOL, "true", ""),
    TP_OPTION(struct fz_obj, m, "m", TP_OPT_STRMAP, NULL, ""),
    {0},
};
static const struct tp_option fz_all_opts[] = {
    TP_OPTION(struct fz_all, s, "s", TP_OPT_STRING, "x", ""),
    TP_OPTION(struct fz_all, choice, "choice", TP_OPT_STRING, "a", "", .choices = fz_choices),
    TP_OPTION(struct fz_all, i, "i", TP_OPT_INT, "-7", ""),
    TP_OPTION(struct fz_all, d, "d", TP_OPT_DOUBLE, NULL, ""),
    TP_OPTION(struct fz_all, b, "b", TP_OPT_BOOL, "false", ""),
    TP_OPTION(struct fz_all, js, "js", TP_OPT_JS, NULL, ""),
    TP_OPTION(struct fz_all, l, "l", TP_OPT_STRINGS, NULL, ""),
    TP_OPTION(struct fz_all, m, "m", TP_OPT_STRMAP, NULL, ""),
    TP_OPTION(struct fz_all, list, "list", TP_OPT_LIST, NULL, "", .sub = fz_item_opts,
              .elem_size = sizeof(struct fz_item)),
    TP_OPTION(struct fz_all, obj, "obj", TP_OPT_OBJECT, NULL, "", .sub = fz_obj_opts),
    TP_OPTION(struct fz_all, node, "node", TP_OPT_NODE, NULL, ""),
    TP_OPTION(struct fz_all, dur, "dur", TP_OPT_DURATION, "1s", "", .min = 0, .max = 86400000),
    TP_OPTION(struct fz_all, legacy, "legacy", TP_OPT_DURATION, "30", "", .int_ms = 1000,
              .flags = TP_OPT_INT_DEPRECATED),
    TP_OPTION(struct fz_all, opt, "opt", TP_OPT_OPTIONAL, NULL, "", .sub = fz_obj_opts,
              .elem_size = sizeof(struct fz_obj)),
    {0},
};

static void check(int ok, const char *what);

/* tp_options_deprecated's findings carry a message and a position. */
static void fz_found(void *ud, const struct tp_error *err)
{
    (void)ud;
    check(err->msg[0] != '\0' && err->line > 0, "deprecation positioned");
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_config: invariant violated: %s\n", what);
        abort();
    }
}

static void check_error(const struct tp_error *err)
{
    check(memchr(err->msg, '\0', sizeof(err->msg)) != NULL, "error text is NUL-terminated");
    check(err->msg[0] != '\0', "a failure has an error text");
    char text[1024];
    tp_error_format(err, text, sizeof(text));
    check(strlen(text) < sizeof(text), "formatted error fits");
}

/* Tree invariants, node by node (recursion bounded: the loader's own depth is what is tested). */
static void check_tree(const struct tp_node *n, int depth)
{
    check(n != NULL, "node present");
    check(n->file != NULL && n->line >= 1 && n->col >= 1, "node has a position");
    check(tp_node_type_name(n) != NULL, "type name");
    if (depth > 1000)
        return;
    switch (n->type) {
    case TP_NODE_NULL:
    case TP_NODE_SCALAR:
        check(n->value != NULL && n->value[n->value_len] == '\0', "scalar value NUL-terminated");
        break;
    case TP_NODE_MAP:
        for (size_t i = 0; i < n->n; i++) {
            check(n->keys[i] != NULL && n->key_nodes[i] != NULL, "map key present");
            check(tp_node_get(n, n->keys[i]) != NULL, "lookup of an existing key");
            check_tree(n->key_nodes[i], depth + 1);
            check_tree(n->items[i], depth + 1);
        }
        break;
    case TP_NODE_SEQ:
        for (size_t i = 0; i < n->n; i++)
            check_tree(n->items[i], depth + 1);
        break;
    }
}

/* Parses body with a plugin's table into a fresh config and frees it again. */
static void parse_plugin(const struct tp_option *table, size_t size, const struct tp_node *body,
                         const char *path)
{
    void *conf = calloc(1, size ? size : 1);
    if (!conf)
        return;
    struct tp_error err;
    memset(&err, 0, sizeof(err));
    if (tp_options_parse(table, body, path, conf, &err) != 0)
        check_error(&err);
    tp_options_free(table, conf);
    tp_options_free(table, conf); /* must be idempotent */
    free(conf);
}

/* section: {name: body} where name is a plugin of the given kind. */
static void parse_section(const struct tp_node *sec, const char *kind)
{
    if (!sec || sec->type != TP_NODE_MAP || sec->n != 1)
        return;
    const char *name = sec->keys[0];
    char path[128];
    snprintf(path, sizeof(path), "%s.%.64s", kind, name);
    if (strcmp(kind, "input") == 0) {
        const struct tp_input_plugin *p = tp_input_find(name);
        if (p)
            parse_plugin(p->options, p->config_size, sec->items[0], path);
    } else if (strcmp(kind, "processor") == 0) {
        const struct tp_processor_plugin *p = tp_processor_find(name);
        if (p)
            parse_plugin(p->options, p->config_size, sec->items[0], path);
    } else {
        const struct tp_output_plugin *p = tp_output_find(name);
        if (p)
            parse_plugin(p->options, p->config_size, sec->items[0], path);
    }
}

/* The every-type table on each map of the tree (bounded). */
static void parse_all_maps(const struct tp_node *n, int *budget, int depth)
{
    if (!n || *budget <= 0 || depth > 1000)
        return;
    if (n->type == TP_NODE_MAP) {
        (*budget)--;
        struct fz_all all;
        memset(&all, 0, sizeof(all));
        struct tp_error err;
        memset(&err, 0, sizeof(err));
        if (tp_options_parse(fz_all_opts, n, "x", &all, &err) != 0) {
            check_error(&err);
        } else {
            check(all.s != NULL && all.choice != NULL, "defaults applied");
            check(all.dur >= 0 && all.dur <= 86400000 && all.legacy >= 0, "duration in range");
            check(!all.opt || all.opt->d == all.opt->d, "optional object parsed");
            for (size_t i = 0; i < all.list.n; i++)
                check(((struct fz_item *)all.list.items)[i].name != NULL, "required key set");
            if (all.js.code) {
                int line, col;
                tp_js_snippet_position(&all.js, 2, 3, &line, &col);
                check(line >= 1 && col >= 1, "snippet position");
            }
        }
        tp_options_free(fz_all_opts, &all);
        check(all.opt == NULL, "optional object freed");
        tp_options_deprecated(fz_all_opts, n, "x", fz_found, NULL);
    }
    if (n->type == TP_NODE_MAP || n->type == TP_NODE_SEQ)
        for (size_t i = 0; i < n->n; i++)
            parse_all_maps(n->items[i], budget, depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tp_plugins_use(&tp_builtin_plugins);
    struct tp_config *cfg = NULL;
    struct tp_error err;
    memset(&err, 0, sizeof(err));
    if (tp_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, &err) != 0) {
        check(cfg == NULL, "no config on failure");
        check_error(&err);
        return 0;
    }
    check(cfg != NULL && cfg->root != NULL && cfg->root->type == TP_NODE_MAP, "root is a map");
    check_tree(cfg->root, 0);

    struct fz_root root;
    memset(&root, 0, sizeof(root));
    memset(&err, 0, sizeof(err));
    if (tp_options_parse(fz_root_opts, cfg->root, "", &root, &err) != 0)
        check_error(&err);
    else
        check(root.logger.level != NULL && root.logger.format != NULL, "root defaults applied");
    tp_options_free(fz_root_opts, &root);

    /* The plugin tables, wherever the config names a plugin (even if the
     * root table rejected something else). */
    parse_section(tp_node_get(cfg->root, "input"), "input");
    parse_section(tp_node_get(cfg->root, "output"), "output");
    parse_section(tp_node_get(cfg->root, "dead_letter"), "output");
    const struct tp_node *procs = tp_node_get(tp_node_get(cfg->root, "pipeline"), "processors");
    if (procs && procs->type == TP_NODE_SEQ)
        for (size_t i = 0; i < procs->n && i < 16; i++)
            parse_section(procs->items[i], "processor");
    /* and the processor tables directly on the root ("tag_processor: {...}") */
    for (size_t i = 0; i < cfg->root->n && i < 16; i++) {
        const struct tp_processor_plugin *p = tp_processor_find(cfg->root->keys[i]);
        if (p)
            parse_plugin(p->options, p->config_size, cfg->root->items[i], cfg->root->keys[i]);
    }

    int budget = 64;
    parse_all_maps(cfg->root, &budget, 0);
    tp_config_free(cfg);
    return 0;
}

/* Top-level config of a pipeline: the option tables of the root sections,
 * plugin sections resolved to their plugin and parsed options, the Markdown
 * reference of the root tables, and side-effect-free checks for lint. */
#include "pipeline/pipeline_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/log.h"
#include "pipeline/pipeline.h"

static const char *const log_levels[] = {"trace", "debug", "info", "warn", "warning",
                                         "error", "off",   "none", NULL};
static const char *const log_formats[] = {"text", "json", "logfmt", NULL};

/* A Benthos option that has no meaning here: accepted, named in one warning. */
#define IGNORED(T, field, key)                                                                     \
    TP_OPTION(T, field, key, TP_OPT_NODE, NULL,                                                    \
              "Benthos option without meaning in tagproc: accepted and named in a warning",        \
              .flags = TP_OPT_IGNORED)

static const struct tp_option logger_options[] = {
    TP_OPTION(struct tp_logger_config, level, "level", TP_OPT_STRING, "info",
              "log level, any case (overridden by --log-level)", .flags = TP_OPT_NOCASE,
              .choices = log_levels),
    TP_OPTION(struct tp_logger_config, format, "format", TP_OPT_STRING, "text", "log line format",
              .flags = TP_OPT_NOCASE, .choices = log_formats),
    TP_OPTION(struct tp_logger_config, stats_interval, "stats_interval", TP_OPT_INT, "60",
              "seconds between the periodic `stats:` line at info level (0: none)"),
    TP_OPTION(struct tp_logger_config, add_timestamp, "add_timestamp", TP_OPT_BOOL, "true",
              "start every line with its time"),
    TP_OPTION(struct tp_logger_config, static_fields, "static_fields", TP_OPT_STRMAP, NULL,
              "fields added to every line (e.g. {\"@service\": gateway})"),
    IGNORED(struct tp_logger_config, file, "file"),
    IGNORED(struct tp_logger_config, level_name, "level_name"),
    IGNORED(struct tp_logger_config, timestamp_name, "timestamp_name"),
    IGNORED(struct tp_logger_config, message_name, "message_name"),
    {0},
};

int tp__logger_apply(const struct tp_logger_config *lc, int set_level)
{
    int level = lc->level ? tp_log_level_parse(lc->level) : -1;
    if (set_level && level >= 0)
        tp_log_set_level((enum tp_log_level)level);
    int format = lc->format ? tp_log_format_parse(lc->format) : -1;
    return tp_log_configure(format < 0 ? TP_LOG_TEXT : (enum tp_log_format)format,
                            lc->add_timestamp, lc->static_fields.keys, lc->static_fields.vals,
                            lc->static_fields.n);
}

static const struct tp_option pipeline_options[] = {
    TP_OPTION(struct tp_pipeline_section, threads, "threads", TP_OPT_INT, "0",
              "worker threads; 0 = one per CPU", .min = 0, .max = 1024),
    TP_OPTION(struct tp_pipeline_section, batch_size, "batch_size", TP_OPT_INT, "256",
              "maximum messages per batch handed to a worker", .min = 1, .max = 65536),
    TP_OPTION(
        struct tp_pipeline_section, key, "key", TP_OPT_STRING, NULL,
        "routing key template (e.g. ${! meta(\"machine\") }): one key's messages are processed "
        "in order by one worker; default: the input's natural key (umh_topic, else opcua_node_id, "
        "mqtt_topic, kafka_key, nats_subject)",
        .flags = TP_OPT_TEMPLATE),
    TP_OPTION(
        struct tp_pipeline_section, processors, "processors", TP_OPT_NODE, NULL,
        "list of processors run in order, each {tag_processor: {...}} or {nodered_js: {...}}."),
    {0},
};

static const struct tp_option basic_auth_options[] = {
    TP_OPTION(struct tp_http_basic_auth, username, "username", TP_OPT_STRING, NULL,
              "user name; when set, every URL but /health and /ready needs it"),
    TP_OPTION(struct tp_http_basic_auth, password_hash, "password_hash", TP_OPT_STRING, NULL,
              "crypt(3) hash of the password: bcrypt `$2b$` (`mkpasswd -m bcrypt`), sha-256 `$5$` "
              "(`openssl passwd -5`), sha-512 `$6$` or yescrypt `$y$`"),
    {0},
};

const struct tp_option tp__pipeline_http_options[] = {
    TP_OPTION(struct tp_http_config, enabled, "enabled", TP_OPT_BOOL, "true",
              "false: no operations endpoint (as if the section were absent)"),
    TP_OPTION(
        struct tp_http_config, address, "address", TP_OPT_STRING, "127.0.0.1:4195",
        "IPv4 HOST:PORT serving the Topic Browser (/), its API, /metrics, /ready and /health (port "
        "0: any free port, logged); a non-loopback address without basic_auth is warned about"),
    TP_OPTION(struct tp_http_config, max_connections, "max_connections", TP_OPT_INT, "2000",
              "open connections at most; more are refused", .min = 1, .max = 1000000),
    TP_OPTION(struct tp_http_config, timeout_ms, "timeout_s", TP_OPT_DURATION, "10",
              "how long an idle connection is kept (live streams excepted; whole seconds)",
              .int_ms = 1000, .min = 1000, .max = 86400000),
    TP_OPTION(struct tp_http_config, basic_auth, "basic_auth", TP_OPT_OBJECT, NULL,
              "HTTP basic authentication (off when absent).", .sub = basic_auth_options),
    IGNORED(struct tp_http_config, root_path, "root_path"),
    IGNORED(struct tp_http_config, debug_endpoints, "debug_endpoints"),
    IGNORED(struct tp_http_config, cert_file, "cert_file"),
    IGNORED(struct tp_http_config, key_file, "key_file"),
    IGNORED(struct tp_http_config, cors, "cors"),
    {0},
};

static const struct tp_option ui_options[] = {
    TP_OPTION(struct tp_ui_config, enabled, "enabled", TP_OPT_BOOL, "true",
              "serve the Topic Browser, its API and `tagproc tap` (needs `http`)"),
    TP_OPTION(struct tp_ui_config, max_topics, "max_topics", TP_OPT_INT, "100000",
              "topics kept; messages of further topics are counted only", .min = 1,
              .max = 100000000),
    TP_OPTION(struct tp_ui_config, history, "history", TP_OPT_INT, "100",
              "recent values kept per topic (sparkline and history table)", .min = 0,
              .max = 100000),
    {0},
};

const struct tp_option tp__pipeline_root_options[] = {
    TP_OPTION(struct tp_root_config, input, "input", TP_OPT_NODE, NULL,
              "one input plugin, e.g. {stdin: {}} (default stdin)."),
    TP_OPTION(struct tp_root_config, pipeline, "pipeline", TP_OPT_OBJECT, NULL,
              "the processing section.", .sub = pipeline_options),
    TP_OPTION(
        struct tp_root_config, output, "output", TP_OPT_NODE, NULL,
        "one output plugin, e.g. {stdout: {}} (default stdout), and optionally `max_in_flight`: "
        "batches handed to the output and not yet confirmed by it (1..1024, default 16)."),
    TP_OPTION(struct tp_root_config, dead_letter, "dead_letter", TP_OPT_NODE, NULL,
              "optional output plugin receiving every non-filtered drop."),
    TP_OPTION(struct tp_root_config, logger, "logger", TP_OPT_OBJECT, NULL, "logging.",
              .sub = logger_options),
    TP_OPTION(
        struct tp_root_config, http, "http", TP_OPT_NODE, NULL,
        "operations endpoint (Topic Browser, API, metrics, readiness, health); off when absent. "
        "See `http`."),
    TP_OPTION(struct tp_root_config, ui, "ui", TP_OPT_OBJECT, NULL,
              "the Topic Browser on the `http` address.", .sub = ui_options),
    IGNORED(struct tp_root_config, metrics, "metrics"),
    IGNORED(struct tp_root_config, tracer, "tracer"),
    IGNORED(struct tp_root_config, buffer, "buffer"),
    IGNORED(struct tp_root_config, shutdown_delay, "shutdown_delay"),
    IGNORED(struct tp_root_config, shutdown_timeout, "shutdown_timeout"),
    IGNORED(struct tp_root_config, tests, "tests"),
    IGNORED(struct tp_root_config, input_resources, "input_resources"),
    IGNORED(struct tp_root_config, processor_resources, "processor_resources"),
    IGNORED(struct tp_root_config, output_resources, "output_resources"),
    IGNORED(struct tp_root_config, cache_resources, "cache_resources"),
    IGNORED(struct tp_root_config, rate_limit_resources, "rate_limit_resources"),
    {0},
};

int tp_pipeline_options_markdown(struct tp_buf *out)
{
    int rc = tp_options_markdown(tp__pipeline_root_options, "root", out);
    return rc ? rc : tp_options_markdown(tp__pipeline_http_options, "http", out);
}

/* output.max_in_flight: the key beside the plugin in an output section. */
#define MAX_IN_FLIGHT_KEY "max_in_flight"
#define MAX_IN_FLIGHT_DEFAULT 16
#define MAX_IN_FLIGHT_MAX 1024

static int parse_max_in_flight(const struct tp_node *key, const struct tp_node *v,
                               const char *section, int64_t *out, struct tp_error *err)
{
    char *end = NULL;
    long long n = 0;
    if (v->type == TP_NODE_SCALAR && !v->quoted && v->value[0])
        n = strtoll(v->value, &end, 10);
    if (!end || *end || n < 1 || n > MAX_IN_FLIGHT_MAX)
        return tp_error_set_at(err, TP_CONFIG, key->file, key->line, key->col,
                               "%s." MAX_IN_FLIGHT_KEY ": expected an integer 1..%d, got %s",
                               section, MAX_IN_FLIGHT_MAX,
                               v->type == TP_NODE_SCALAR ? v->value : tp_node_type_name(v));
    *out = n;
    return TP_OK;
}

int tp__section_parse(const struct tp_node *node, const char *section, const char *kind,
                      const char *dflt, struct tp_section *s, struct tp_error *err)
{
    return tp__section_parse_with(node, section, kind, dflt, NULL, s, err);
}

/* Parses a section; with on_error, every option problem goes there (lint)
 * and only a section that names no plugin returns an error unreported. */
static int section_parse(const struct tp_node *node, const char *section, const char *kind,
                         const char *dflt, const void *extra, struct tp_section *s,
                         tp_options_error_fn on_error, void *ud, struct tp_error *err)
{
    memset(s, 0, sizeof(*s));
    s->max_in_flight = MAX_IN_FLIGHT_DEFAULT;
    const struct tp_node *body = NULL, *plugin_key = NULL;
    int is_output = strcmp(kind, "output") == 0;
    s->name = dflt;
    if (node && node->type != TP_NODE_NULL) {
        size_t plugins = node->type == TP_NODE_MAP ? node->n : 0;
        for (size_t i = 0; is_output && node->type == TP_NODE_MAP && i < node->n; i++)
            if (strcmp(node->keys[i], MAX_IN_FLIGHT_KEY) == 0) {
                int rc = parse_max_in_flight(node->key_nodes[i], node->items[i], section,
                                             &s->max_in_flight, err);
                if (rc)
                    return rc;
                plugins--;
            } else {
                s->name = node->keys[i];
                body = node->items[i];
                plugin_key = node->key_nodes[i];
            }
        if (node->type != TP_NODE_MAP || plugins != 1)
            return tp_error_set_at(err, TP_CONFIG, node->file, node->line, node->col,
                                   "%s: expected a map with exactly one %s (%s)%s", section, kind,
                                   tp_plugin_names(kind),
                                   is_output ? " and optionally " MAX_IN_FLIGHT_KEY : "");
        if (!is_output) {
            s->name = node->keys[0];
            body = node->items[0];
            plugin_key = node->key_nodes[0];
        }
    }
    size_t size = 0;
    if (!is_output) {
        const struct tp_input_plugin *pl = extra ? extra : NULL;
        if (!pl || strcmp(pl->name, s->name) != 0)
            pl = tp_input_find(s->name);
        if (pl)
            s->plugin = pl, s->options = pl->options, size = pl->config_size;
    } else {
        const struct tp_output_plugin *pl = extra ? extra : NULL;
        if (!pl || strcmp(pl->name, s->name) != 0)
            pl = tp_output_find(s->name);
        if (pl)
            s->plugin = pl, s->options = pl->options, size = pl->config_size;
    }
    if (!s->plugin) {
        const struct tp_node *k = plugin_key;
        return tp_error_set_at(err, TP_CONFIG, k->file, k->line, k->col,
                               "%s.%s: unknown %s; valid %ss: %s", section, s->name, kind, kind,
                               tp_plugin_names(kind));
    }
    s->config = calloc(1, size ? size : 1);
    if (!s->config)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    char path[64];
    snprintf(path, sizeof(path), "%s.%s", section, s->name);
    if (!s->options)
        return TP_OK;
    if (on_error)
        return tp_options_parse_all(s->options, body, path, s->config, on_error, ud);
    return tp_options_parse(s->options, body, path, s->config, err);
}

int tp__section_parse_with(const struct tp_node *node, const char *section, const char *kind,
                           const char *dflt, const void *extra, struct tp_section *s,
                           struct tp_error *err)
{
    return section_parse(node, section, kind, dflt, extra, s, NULL, NULL, err);
}

void tp__section_free(struct tp_section *s)
{
    if (s->config && s->options)
        tp_options_free(s->options, s->config);
    free(s->config);
    memset(s, 0, sizeof(*s));
}

/* ---------- checks without side effects (lint) ---------- */

void tp_pipeline_apply_logger(const struct tp_config *cfg)
{
    struct tp_logger_config lc;
    memset(&lc, 0, sizeof(lc));
    if (tp_options_parse(logger_options, tp_node_get(cfg->root, "logger"), "logger", &lc, NULL) ==
        TP_OK)
        tp__logger_apply(&lc, tp_log_get_level() == TP_LOG_INFO);
    tp_options_free(logger_options, &lc);
}

/* ---------- checks without side effects (lint) ---------- */

struct counted {
    tp_options_error_fn found;
    void *ctx;
    int n;
};

static void count_error(void *ud, const struct tp_error *err)
{
    struct counted *c = ud;
    c->found(c->ctx, err);
    c->n++;
}

static void check_section(const struct tp_node *node, const char *section, const char *kind,
                          const char *dflt, struct counted *c)
{
    struct tp_section s;
    struct tp_error err = {0};
    int before = c->n;
    if (section_parse(node, section, kind, dflt, NULL, &s, count_error, c, &err) && c->n == before)
        count_error(c, &err);
    tp__section_free(&s);
}

int tp_pipeline_check(const struct tp_config *cfg, tp_options_error_fn found, void *ctx)
{
    struct counted c = {found, ctx, 0};
    struct tp_root_config root;
    memset(&root, 0, sizeof(root));
    tp_options_parse_all(tp__pipeline_root_options, cfg->root, "", &root, count_error, &c);
    check_section(root.input, "input", "input", "stdin", &c);
    check_section(root.output, "output", "output", "stdout", &c);
    if (root.dead_letter && root.dead_letter->type != TP_NODE_NULL)
        check_section(root.dead_letter, "dead_letter", "output", "stdout", &c);
    if (root.http && root.http->type != TP_NODE_NULL) {
        struct tp_http_config h = {0};
        tp_options_parse_all(tp__pipeline_http_options, root.http, "http", &h, count_error, &c);
        tp_options_free(tp__pipeline_http_options, &h);
    }
    tp_options_free(tp__pipeline_root_options, &root);
    return c.n;
}

/* Appends the dotted paths of the TP_OPT_IGNORED keys of map (and of its
 * nested maps) to names; *first is the key node of the first one. */
static int collect_ignored(const struct tp_option *table, const struct tp_node *map,
                           const char *path, struct tp_buf *names, const struct tp_node **first)
{
    if (!table || !map || map->type != TP_NODE_MAP)
        return TP_OK;
    for (size_t i = 0; i < map->n; i++) {
        const struct tp_option *o = table;
        while (o->name && strcmp(o->name, map->keys[i]))
            o++;
        if (!o->name)
            continue;
        char kp[256];
        snprintf(kp, sizeof(kp), "%s%s%s", path, *path ? "." : "", map->keys[i]);
        int rc = TP_OK;
        if (o->flags & TP_OPT_IGNORED) {
            rc = tp_buf_printf(names, "%s%s", names->len ? ", " : "", kp);
            if (!*first)
                *first = map->key_nodes[i];
        } else if (o->type == TP_OPT_OBJECT || o->type == TP_OPT_OPTIONAL) {
            rc = collect_ignored(o->sub, map->items[i], kp, names, first);
        }
        if (rc)
            return rc;
    }
    return TP_OK;
}

/* The option table of the plugin a section ({kafka: {...}}, beside an
 * output's max_in_flight) names, its body and key path; NULL when none. */
static const struct tp_option *section_table(const struct tp_config *cfg, const char *section,
                                             const char *kind, const struct tp_node **body,
                                             char *path, size_t size)
{
    const struct tp_node *n = tp_node_get(cfg->root, section);
    for (size_t i = 0; n && n->type == TP_NODE_MAP && i < n->n; i++) {
        if (strcmp(n->keys[i], MAX_IN_FLIGHT_KEY) == 0)
            continue;
        const struct tp_option *table = NULL;
        if (strcmp(kind, "input") == 0) {
            const struct tp_input_plugin *pl = tp_input_find(n->keys[i]);
            table = pl ? pl->options : NULL;
        } else {
            const struct tp_output_plugin *pl = tp_output_find(n->keys[i]);
            table = pl ? pl->options : NULL;
        }
        *body = n->items[i];
        snprintf(path, size, "%s.%s", section, n->keys[i]);
        return table;
    }
    return NULL;
}

static const char *const sections[][2] = {
    {"input", "input"}, {"output", "output"}, {"dead_letter", "output"}};

int tp_pipeline_ignored_keys(const struct tp_config *cfg, struct tp_buf *names,
                             const struct tp_node **first)
{
    *first = NULL;
    int rc = collect_ignored(tp__pipeline_root_options, cfg->root, "", names, first);
    const struct tp_node *http = tp_node_get(cfg->root, "http");
    if (!rc)
        rc = collect_ignored(tp__pipeline_http_options, http, "http", names, first);
    for (size_t i = 0; !rc && i < sizeof(sections) / sizeof(sections[0]); i++) {
        const struct tp_node *body = NULL;
        char path[128];
        const struct tp_option *table =
            section_table(cfg, sections[i][0], sections[i][1], &body, path, sizeof(path));
        if (table)
            rc = collect_ignored(table, body, path, names, first);
    }
    return rc;
}

int tp_pipeline_deprecated(const struct tp_config *cfg, tp_options_error_fn found, void *ud)
{
    int n = tp_options_deprecated(tp__pipeline_root_options, cfg->root, "", found, ud);
    n += tp_options_deprecated(tp__pipeline_http_options, tp_node_get(cfg->root, "http"), "http",
                               found, ud);
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
        const struct tp_node *body = NULL;
        char path[128];
        const struct tp_option *table =
            section_table(cfg, sections[i][0], sections[i][1], &body, path, sizeof(path));
        if (table)
            n += tp_options_deprecated(table, body, path, found, ud);
    }
    return n;
}

/* ---------- positions for plugin errors ---------- */

/* The node at one step "key" or "key[N]..." below n, or NULL. */
static const struct tp_node *step(const struct tp_node *n, const char *seg, size_t len)
{
    size_t klen = strcspn(seg, "[");
    if (klen > len)
        klen = len;
    char key[128];
    if (klen >= sizeof(key))
        return NULL;
    memcpy(key, seg, klen);
    key[klen] = '\0';
    n = klen ? tp_node_get(n, key) : n;
    for (size_t i = klen; n && i < len && seg[i] == '[';) {
        char *end;
        unsigned long idx = strtoul(seg + i + 1, &end, 10);
        if (*end != ']' || n->type != TP_NODE_SEQ || idx >= n->n)
            return NULL;
        n = n->items[idx];
        i = (size_t)(end - seg) + 1;
    }
    return n;
}

void tp_pipeline_error_locate(const struct tp_config *cfg, struct tp_error *err)
{
    if (!cfg || !cfg->root || err->file[0])
        return;
    size_t plen = 0;
    while (isalnum((unsigned char)err->msg[plen]) || strchr("_.[]", err->msg[plen]))
        plen++;
    if (plen == 0 || err->msg[plen] != ':')
        return;
    const struct tp_node *n = cfg->root, *found = NULL;
    for (const char *seg = err->msg; n && seg < err->msg + plen;) {
        size_t len = strcspn(seg, ".:");
        if ((n = step(n, seg, len)) != NULL)
            found = n;
        seg += len + 1;
    }
    if (found && found != cfg->root) {
        snprintf(err->file, sizeof(err->file), "%s", found->file ? found->file : "");
        err->line = found->line;
        err->col = found->col;
    }
}

/* ---------- one file as input and output ---------- */

/* The path node of a {file: {path: X}} section, or NULL. */
static const struct tp_node *file_path_node(const struct tp_node *section)
{
    if (!section || section->type != TP_NODE_MAP || section->n != 1 ||
        strcmp(section->keys[0], "file") != 0)
        return NULL;
    const struct tp_node *p = tp_node_get(section->items[0], "path");
    return p && p->type == TP_NODE_SCALAR ? p : NULL;
}

int tp__pipeline_check_files(const struct tp_root_config *root, struct tp_error *err)
{
    const struct tp_node *in = file_path_node(root->input);
    struct stat ist, ost;
    if (!in || stat(in->value, &ist) != 0)
        return TP_OK;
    const struct tp_node *outs[2] = {root->output, root->dead_letter};
    static const char *const names[2] = {"output", "dead_letter"};
    for (int i = 0; i < 2; i++) {
        const struct tp_node *out = file_path_node(outs[i]);
        if (out && stat(out->value, &ost) == 0 && ost.st_dev == ist.st_dev &&
            ost.st_ino == ist.st_ino)
            return tp_error_set_at(
                err, TP_CONFIG, out->file, out->line, out->col,
                "%s.file.path: \"%s\" is the input file (input.file.path at %s:%d:%d): writing "
                "it would destroy the input (truncate) or read back the output (append)",
                names[i], out->value, in->file, in->line, in->col);
    }
    return TP_OK;
}

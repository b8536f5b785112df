/* Top-level config of a pipeline: the option tables of the root sections,
 * plugin sections resolved to their plugin and parsed options, the Markdown
 * reference of the root tables, and side-effect-free checks for lint. */
#include "core/pipeline_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/pipeline.h"

static const char *const log_levels[] = {"trace", "debug", "info", "warn", "error", "off", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

static const struct tp_option logger_options[] = {
    {"level", TP_OPT_STRING, offsetof(struct tp_logger_config, level), "info",
     "log level (overridden by --log-level)", 0, NULL, 0, log_levels},
    {"format", TP_OPT_STRING, offsetof(struct tp_logger_config, format), "text", "log line format",
     0, NULL, 0, log_formats},
    {"stats_interval", TP_OPT_INT, offsetof(struct tp_logger_config, stats_interval), "60",
     "seconds between the periodic `stats:` line at info level (0: none)", 0, NULL, 0, NULL},
    {0},
};

static const struct tp_option pipeline_options[] = {
    {"threads", TP_OPT_INT, offsetof(struct tp_pipeline_section, threads), "0",
     "worker threads; 0 = one per CPU", TP_OPT_RANGE, NULL, 0, NULL, 0, 1024},
    {"batch_size", TP_OPT_INT, offsetof(struct tp_pipeline_section, batch_size), "256",
     "maximum messages per batch handed to a worker", TP_OPT_RANGE, NULL, 0, NULL, 1, 65536},
    {"processors", TP_OPT_NODE, offsetof(struct tp_pipeline_section, processors), NULL,
     "list of processors run in order, each {tag_processor: {...}} or {nodered_js: {...}}.", 0,
     NULL, 0, NULL},
    {0},
};

static const struct tp_option basic_auth_options[] = {
    {"username", TP_OPT_STRING, offsetof(struct tp_http_basic_auth, username), NULL,
     "user name; when set, every URL but /health and /ready needs it", 0, NULL, 0, NULL},
    {"password_hash", TP_OPT_STRING, offsetof(struct tp_http_basic_auth, password_hash), NULL,
     "crypt(3) hash of the password: bcrypt `$2b$` (`mkpasswd -m bcrypt`), sha-256 `$5$` "
     "(`openssl passwd -5`), sha-512 `$6$` or yescrypt `$y$`",
     0, NULL, 0, NULL},
    {0},
};

const struct tp_option tp__pipeline_http_options[] = {
    {"address", TP_OPT_STRING, offsetof(struct tp_http_config, address), "127.0.0.1:4195",
     "IPv4 HOST:PORT serving the Topic Browser (/), its API, /metrics, /ready and /health (port "
     "0: any free port, logged); a non-loopback address without basic_auth is warned about",
     0, NULL, 0, NULL},
    {"max_connections", TP_OPT_INT, offsetof(struct tp_http_config, max_connections), "2000",
     "open connections at most; more are refused", 0, NULL, 0, NULL},
    {"timeout_s", TP_OPT_INT, offsetof(struct tp_http_config, timeout_s), "10",
     "seconds an idle connection is kept (live streams excepted)", 0, NULL, 0, NULL},
    {"basic_auth", TP_OPT_OBJECT, offsetof(struct tp_http_config, basic_auth), NULL,
     "HTTP basic authentication (off when absent).", 0, basic_auth_options, 0, NULL},
    {0},
};

static const struct tp_option ui_options[] = {
    {"enabled", TP_OPT_BOOL, offsetof(struct tp_ui_config, enabled), "true",
     "serve the Topic Browser, its API and `tagproc tap` (needs `http`)", 0, NULL, 0, NULL},
    {"max_topics", TP_OPT_INT, offsetof(struct tp_ui_config, max_topics), "100000",
     "topics kept; messages of further topics are counted only", 0, NULL, 0, NULL},
    {"history", TP_OPT_INT, offsetof(struct tp_ui_config, history), "100",
     "recent values kept per topic (sparkline and history table)", 0, NULL, 0, NULL},
    {0},
};

const struct tp_option tp__pipeline_root_options[] = {
    {"input", TP_OPT_NODE, offsetof(struct tp_root_config, input), NULL,
     "one input plugin, e.g. {stdin: {}} (default stdin).", 0, NULL, 0, NULL},
    {"pipeline", TP_OPT_OBJECT, offsetof(struct tp_root_config, pipeline), NULL,
     "the processing section.", 0, pipeline_options, 0, NULL},
    {"output", TP_OPT_NODE, offsetof(struct tp_root_config, output), NULL,
     "one output plugin, e.g. {stdout: {}} (default stdout), and optionally `max_in_flight`: "
     "batches handed to the output and not yet confirmed by it (1..1024, default 16).",
     0, NULL, 0, NULL},
    {"dead_letter", TP_OPT_NODE, offsetof(struct tp_root_config, dead_letter), NULL,
     "optional output plugin receiving every non-filtered drop.", 0, NULL, 0, NULL},
    {"logger", TP_OPT_OBJECT, offsetof(struct tp_root_config, logger), NULL, "logging.", 0,
     logger_options, 0, NULL},
    {"http", TP_OPT_NODE, offsetof(struct tp_root_config, http), NULL,
     "operations endpoint (Topic Browser, API, metrics, readiness, health); off when absent. "
     "See `http`.",
     0, NULL, 0, NULL},
    {"ui", TP_OPT_OBJECT, offsetof(struct tp_root_config, ui), NULL,
     "the Topic Browser on the `http` address.", 0, ui_options, 0, NULL},
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

int tp__section_parse_with(const struct tp_node *node, const char *section, const char *kind,
                           const char *dflt, const void *extra, struct tp_section *s,
                           struct tp_error *err)
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
    return s->options ? tp_options_parse(s->options, body, path, s->config, err) : TP_OK;
}

void tp__section_free(struct tp_section *s)
{
    if (s->config && s->options)
        tp_options_free(s->options, s->config);
    free(s->config);
    memset(s, 0, sizeof(*s));
}

/* ---------- checks without side effects (lint) ---------- */

static int check_section(const struct tp_node *node, const char *section, const char *kind,
                         const char *dflt, struct tp_error *err)
{
    struct tp_section s;
    int rc = tp__section_parse(node, section, kind, dflt, &s, err);
    tp__section_free(&s);
    return rc;
}

int tp_pipeline_check(const struct tp_config *cfg,
                      void (*found)(void *ctx, const struct tp_error *err), void *ctx)
{
    struct tp_root_config root;
    struct tp_error err = {0};
    int n = 0;
    memset(&root, 0, sizeof(root));
    if (tp_options_parse(tp__pipeline_root_options, cfg->root, "", &root, &err) != TP_OK) {
        found(ctx, &err), n++;
        /* The parse stopped at its first problem: each nested table alone. */
        for (const struct tp_option *o = tp__pipeline_root_options; o->name; o++) {
            if (o->type != TP_OPT_OBJECT)
                continue;
            struct tp_root_config one;
            memset(&one, 0, sizeof(one));
            char *part = (char *)&one + o->offset;
            if (tp_options_parse(o->sub, tp_node_get(cfg->root, o->name), o->name, part, &err))
                found(ctx, &err), n++;
            tp_options_free(o->sub, part);
        }
    }
    tp_options_free(tp__pipeline_root_options, &root);
    const struct tp_node *input = tp_node_get(cfg->root, "input"),
                         *output = tp_node_get(cfg->root, "output"),
                         *dead = tp_node_get(cfg->root, "dead_letter"),
                         *http = tp_node_get(cfg->root, "http");
    if (check_section(input, "input", "input", "stdin", &err))
        found(ctx, &err), n++;
    if (check_section(output, "output", "output", "stdout", &err))
        found(ctx, &err), n++;
    if (dead && dead->type != TP_NODE_NULL &&
        check_section(dead, "dead_letter", "output", "stdout", &err))
        found(ctx, &err), n++;
    if (http && http->type != TP_NODE_NULL) {
        struct tp_http_config h = {0};
        if (tp_options_parse(tp__pipeline_http_options, http, "http", &h, &err))
            found(ctx, &err), n++;
        tp_options_free(tp__pipeline_http_options, &h);
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

/* The running pipeline: input -> batches -> worker threads (processor chain)
 * -> output released in input order, plus dead letter, accounting (its own
 * metrics registry) and a clean drain on stop. The operations layer (HTTP
 * endpoint, Topic Browser, reports) is above it: it reads the pipeline
 * through the accessors below and hears of batches and drops through hooks. */
#ifndef TP_PIPELINE_H
#define TP_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"

struct tp_pipeline;
struct tp_input_plugin;
struct tp_output_plugin;
struct tp_metrics;
struct tp_msg;
struct tp_drop;

/* The `http` config section (checked by the pipeline with the rest of the
 * file, served by the operations layer: ops/http.h). */
struct tp_http_basic_auth {
    char *username;
    char *password_hash; /* crypt(3) hash: bcrypt $2b$, sha-256 $5$, sha-512 $6$, yescrypt $y$ */
};

struct tp_http_config {
    int enabled; /* false: as if the http section were absent */
    char *address;
    int64_t max_connections;
    int64_t timeout_ms; /* the timeout_s key: idle connections */
    struct tp_http_basic_auth basic_auth;
    /* Benthos keys without meaning here (accepted, named in a lint warning) */
    const struct tp_node *root_path, *debug_endpoints, *cert_file, *key_file, *cors;
};

/* The `ui` config section (the Topic Browser, ops/ui.h). */
struct tp_ui_config {
    int enabled;
    int64_t max_topics; /* topics kept; messages of further topics are only counted */
    int64_t history;    /* history entries per topic (sparkline and table) */
};

/* Optional replacements for parts of the config (benchmarks, rule tests). */
struct tp_pipeline_opts {
    const struct tp_node *input;  /* an input section ({simulator: {...}}) or NULL */
    const struct tp_node *output; /* an output section or NULL */
    int threads;                  /* > 0 replaces pipeline.threads */
    /* Tests: plugins known by their name besides the built-in ones. */
    const struct tp_input_plugin *input_plugin;
    const struct tp_output_plugin *output_plugin;
    /* Per-rule metrics: 1 on, -1 off, 0 on when the config has an enabled
     * `http` section (the CLI maps TAGPROC_RULE_METRICS onto it). */
    int rule_metrics;
};

/* Builds everything the config describes: parses and checks every section,
 * compiles all JS (once), opens input, output and dead letter. Errors carry
 * the config position. opts may be NULL. Caller frees with tp_pipeline_free; cfg must outlive p. */
int tp_pipeline_new(const struct tp_config *cfg, const struct tp_pipeline_opts *opts,
                    struct tp_pipeline **out, struct tp_error *err);

/* Runs until the input ends or tp_pipeline_stop; drains and flushes before
 * returning. 0, or a status with err filled for a fatal failure. */
int tp_pipeline_run(struct tp_pipeline *p, struct tp_error *err);

/* Asks a running pipeline to stop reading and drain (thread-safe, not
 * async-signal-safe: call it from a signal-waiting thread). */
void tp_pipeline_stop(struct tp_pipeline *p);

void tp_pipeline_free(struct tp_pipeline *p);

/* ---- for the layers above (operations: HTTP, Topic Browser, reports) ---- */

/* What the pipeline tells the layer above. Every hook is optional; set them
 * before tp_pipeline_run. */
struct tp_pipeline_hooks {
    void *ud;
    /* The caller's thread in tp_pipeline_run, once every worker started and
     * before the first read. Non-zero (err filled) makes the run fail. */
    int (*started)(void *ud, struct tp_error *err);
    /* The caller's thread, at the end of tp_pipeline_run when started ran. */
    void (*finished)(void *ud);
    /* The writer thread: batch seq (n_in input messages) was confirmed by
     * the output, which delivered out[0..n) (its drops left out); the
     * messages are valid during the call. */
    void (*written)(void *ud, uint64_t seq, size_t n_in, struct tp_msg *const *out, size_t n);
    /* Any thread: a non-filtered drop of `in` by proc (a processor label,
     * "input" or "output.NAME"), after it was counted and logged. */
    void (*dropped)(void *ud, const struct tp_msg *in, const char *proc, const struct tp_drop *d);
};
void tp_pipeline_set_hooks(struct tp_pipeline *p, const struct tp_pipeline_hooks *h);

/* A snapshot of the pipeline's state (any thread). */
struct tp_pipeline_status {
    const char *input, *output; /* plugin names */
    int threads;
    uint64_t queue_waiting, queue_working, queue_capacity; /* batches */
    uint64_t queue_in_flight; /* batches submitted, not yet confirmed by the output */
    uint64_t generation;      /* configuration generation */
};
void tp_pipeline_status(struct tp_pipeline *p, struct tp_pipeline_status *st);
/* 1 when processing (workers started, input not ended, no fatal error) /
 * healthy (no fatal error). Any thread. */
int tp_pipeline_ready(struct tp_pipeline *p);
int tp_pipeline_healthy(struct tp_pipeline *p);
/* Calls fn with the root of the configuration in use (the processors of the
 * current generation), which stays valid during the call. Any thread. */
void tp_pipeline_with_config(struct tp_pipeline *p,
                             void (*fn)(void *ud, const struct tp_node *root), void *ud);
/* The pipeline's metrics registry (lives as long as p). */
struct tp_metrics *tp_pipeline_metrics(struct tp_pipeline *p);
/* Parsed sections: http (NULL when absent or enabled: false), ui, the dead
 * letter output's plugin name (NULL: none), logger.stats_interval. */
const struct tp_http_config *tp_pipeline_http(const struct tp_pipeline *p);
const struct tp_ui_config *tp_pipeline_ui(const struct tp_pipeline *p);
const char *tp_pipeline_dead_letter_name(const struct tp_pipeline *p);
int64_t tp_pipeline_stats_interval(const struct tp_pipeline *p);

/* Hot reload: builds the processors of cfg (taken: freed on failure, else
 * kept as long as its chain is in use) and publishes them; every batch taken
 * by a worker after this call runs on them, earlier ones on the old chain,
 * so output order and completeness are kept. Only pipeline.processors (and
 * logger.level) change; other sections need a restart. On error the running
 * chain stays and err says why. Thread-safe. Counted in the metrics. */
int tp_pipeline_reload(struct tp_pipeline *p, struct tp_config *cfg, struct tp_error *err);

/* Checks every section but the processors (root keys, pipeline, logger,
 * input, output, dead_letter and http option tables) without opening
 * anything; every problem of every section, calling found() for each.
 * Returns the number of calls. */
int tp_pipeline_check(const struct tp_config *cfg, tp_options_error_fn found, void *ctx);
/* Applies cfg's logger section (format, timestamp, static fields; the
 * level unless the command line set one). A bad section is left to the
 * validation. */
void tp_pipeline_apply_logger(const struct tp_config *cfg);
/* Calls found() for every value of the root, http, input, output and
 * dead_letter sections written in a deprecated form (tp_options_deprecated).
 * Returns the number of calls. */
int tp_pipeline_deprecated(const struct tp_config *cfg, tp_options_error_fn found, void *ud);
/* Appends to names the keys valid in Benthos but without meaning here that
 * cfg uses ("metrics, http.cors"); *first: the first one's key node or NULL. */
int tp_pipeline_ignored_keys(const struct tp_config *cfg, struct tp_buf *names,
                             const struct tp_node **first);

/* A TP_CONFIG error from a plugin names its key path ("output.nats.stream:
 * ...") but no position: give it the position of that key in cfg (or of the
 * nearest enclosing key present). Errors with a position stay as they are. */
void tp_pipeline_error_locate(const struct tp_config *cfg, struct tp_error *err);

/* Appends the Markdown reference of the root option table (and `http`). */
int tp_pipeline_options_markdown(struct tp_buf *out);

#endif

/* The running pipeline: input -> batches -> worker threads (processor chain)
 * -> output released in input order, plus dead letter, accounting and a
 * clean drain on stop. */
#ifndef TP_PIPELINE_H
#define TP_PIPELINE_H

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"

struct tp_pipeline;
struct tp_input_plugin;
struct tp_output_plugin;

/* Optional replacements for parts of the config (benchmarks, rule tests). */
struct tp_pipeline_opts {
    const struct tp_node *input;  /* an input section ({simulator: {...}}) or NULL */
    const struct tp_node *output; /* an output section or NULL */
    int threads;                  /* > 0 replaces pipeline.threads */
    /* Tests: plugins known by their name besides the built-in ones. */
    const struct tp_input_plugin *input_plugin;
    const struct tp_output_plugin *output_plugin;
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

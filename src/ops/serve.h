/* The operations side of a running pipeline: the HTTP endpoint (/metrics,
 * /ready, /health), the Topic Browser and the start banner / stats lines.
 * The CLI attaches it to a pipeline, which it reads only through the
 * pipeline's accessors and hooks (pipeline/pipeline.h). */
#ifndef TP_SERVE_H
#define TP_SERVE_H

#include "config/config.h"
#include "core/error.h"
#include "pipeline/pipeline.h"

struct tp_serve;

/* Prepares the Topic Browser (when `http` is on) and sets p's hooks: the
 * HTTP server starts and the banner is logged when the pipeline's workers
 * are ready; batches and drops feed the Topic Browser and the debug lines.
 * cfg is p's start-up config. Errors name the config position. Free with
 * tp_serve_free before tp_pipeline_free(p). */
int tp_serve_attach(struct tp_pipeline *p, const struct tp_config *cfg, struct tp_serve **out,
                    struct tp_error *err);
/* Stops the HTTP server (scrapes end first) and frees the Topic Browser. */
void tp_serve_free(struct tp_serve *s);

#endif

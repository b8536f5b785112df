/* Operations attached to a pipeline (see serve.h): the HTTP handlers read
 * the pipeline's status and metrics registry, the hooks start the server and
 * the reports when the workers are ready and feed the Topic Browser. */
#include "ops/serve.h"

#include <stdlib.h>

#include "core/log.h"
#include "core/metrics.h"
#include "ops/http.h"
#include "ops/metrics.h"
#include "ops/report.h"
#include "ops/ui.h"

struct tp_serve {
    struct tp_pipeline *p;
    const struct tp_config *cfg;
    const struct tp_http_config *http; /* NULL: no endpoint */
    struct tp_ui *ui;                  /* the Topic Browser's state, or NULL */
    struct tp_http *server;
    struct tp_report *report;
};

static void serve_status(void *ud, struct tp_pipeline_status *st)
{
    struct tp_serve *s = ud;
    tp_pipeline_status(s->p, st);
}

static void put_config(void *ud, const struct tp_node *root)
{
    tp_ui_config_json(root, ud);
}

/* /config: the configuration in use (processors of the current generation). */
static void serve_config_json(void *ud, struct tp_buf *out)
{
    struct tp_serve *s = ud;
    tp_pipeline_with_config(s->p, put_config, out);
}

static void http_metrics(void *ud, struct tp_buf *out)
{
    struct tp_serve *s = ud;
    struct tp_pipeline_status st;
    tp_pipeline_status(s->p, &st);
    tp_metrics_write(tp_pipeline_metrics(s->p), out, st.input, st.output);
    tp_buf_printf(out,
                  "# HELP tagproc_queue_batches batches in the pipeline ring, by state\n"
                  "# TYPE tagproc_queue_batches gauge\n"
                  "tagproc_queue_batches{queue=\"waiting\"} %llu\n"
                  "tagproc_queue_batches{queue=\"processing_or_output\"} %llu\n"
                  "tagproc_queue_batches{queue=\"output_in_flight\"} %llu\n"
                  "tagproc_queue_batches{queue=\"capacity\"} %llu\n"
                  "# HELP tagproc_config_generation configuration generation in use (0 = "
                  "start-up, +1 per reload)\n"
                  "# TYPE tagproc_config_generation gauge\n"
                  "tagproc_config_generation %llu\n"
                  "# HELP tagproc_worker_threads worker threads\n"
                  "# TYPE tagproc_worker_threads gauge\n"
                  "tagproc_worker_threads %d\n",
                  (unsigned long long)st.queue_waiting, (unsigned long long)st.queue_working,
                  (unsigned long long)st.queue_in_flight, (unsigned long long)st.queue_capacity,
                  (unsigned long long)st.generation, st.threads);
}

static int http_ready(void *ud)
{
    struct tp_serve *s = ud;
    return tp_pipeline_ready(s->p);
}

static int http_healthy(void *ud)
{
    struct tp_serve *s = ud;
    return tp_pipeline_healthy(s->p);
}

static struct tp_ui_source source(struct tp_serve *s)
{
    struct tp_ui_source src = {s, serve_status, serve_config_json, tp_pipeline_metrics(s->p)};
    return src;
}

/* The workers are ready: the endpoint, the banner and the stats lines. */
static int on_started(void *ud, struct tp_error *err)
{
    struct tp_serve *s = ud;
    if (s->http) {
        struct tp_http_handlers h = {s, http_metrics, http_ready, http_healthy, s->ui, source(s)};
        int rc = tp_http_start(s->http, &h, &s->server, err);
        if (rc != TP_OK)
            return rc;
        tp_log(TP_LOG_INFO, "http: serving %s/metrics, /ready, /health on port %d (%s)",
               s->ui ? "the Topic Browser on /, /api/..., " : "", tp_http_port(s->server),
               s->http->address);
    }
    struct tp_pipeline_status st;
    tp_pipeline_status(s->p, &st);
    struct tp_report_info ri = {s->cfg->file,
                                st.input,
                                st.output,
                                tp_pipeline_dead_letter_name(s->p),
                                st.threads,
                                s->server ? s->http->address : NULL,
                                s->server ? tp_http_port(s->server) : 0,
                                s->ui != NULL};
    struct tp_ui_source src = source(s);
    src.config_json = NULL;
    s->report = tp_report_start(&ri, tp_pipeline_stats_interval(s->p), &src);
    tp_ui_start(s->ui);
    return TP_OK;
}

static void on_finished(void *ud)
{
    struct tp_serve *s = ud;
    tp_report_finish(s->report);
    s->report = NULL;
}

static void on_written(void *ud, uint64_t seq, size_t n_in, struct tp_msg *const *out, size_t n)
{
    struct tp_serve *s = ud;
    tp_report_batch(seq, n_in, out, n);
    tp_ui_observe(s->ui, out, n);
}

static void on_dropped(void *ud, const struct tp_msg *in, const char *proc, const struct tp_drop *d)
{
    struct tp_serve *s = ud;
    tp_ui_drop(s->ui, in, proc, d);
}

int tp_serve_attach(struct tp_pipeline *p, const struct tp_config *cfg, struct tp_serve **out,
                    struct tp_error *err)
{
    struct tp_serve *s = calloc(1, sizeof(*s));
    if (!s)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    s->p = p;
    s->cfg = cfg;
    s->http = tp_pipeline_http(p);
    if (s->http) {
        struct tp_ui_source src = source(s);
        s->ui = tp_ui_new(tp_pipeline_ui(p), &src);
    }
    struct tp_pipeline_hooks h = {s, on_started, on_finished, on_written, on_dropped};
    tp_pipeline_set_hooks(p, &h);
    *out = s;
    return TP_OK;
}

void tp_serve_free(struct tp_serve *s)
{
    if (!s)
        return;
    tp_pipeline_set_hooks(s->p, NULL);
    tp_http_stop(s->server); /* first: scrapes read the rest */
    tp_ui_free(s->ui);
    free(s);
}

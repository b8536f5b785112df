/* The Topic Browser's state and its HTTP side: a bounded store of the topics
 * the output saw (latest value, metadata, a short history), the recent drops,
 * live streams (Server-Sent Events for the browser and for `tagproc tap`),
 * and the read-only JSON API and embedded page (docs/OPERATIONS.md). */
#ifndef TP_UI_H
#define TP_UI_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/drop.h"
#include "core/error.h"
#include "core/msg.h"
#include "pipeline/pipeline.h"

/* Where /api/stats, /config and the stats lines read from (the pipeline's
 * accessors, or a test's fakes). */
struct tp_ui_source {
    void *ud;
    void (*status)(void *ud, struct tp_pipeline_status *st);
    /* Appends the effective configuration as JSON, secrets redacted. */
    void (*config_json)(void *ud, struct tp_buf *out);
    struct tp_metrics *metrics; /* latency totals, per-rule counters (may be NULL) */
};

struct tp_ui;
struct tp_node;

/* NULL when cfg->enabled is 0 or on allocation failure (then: no UI). */
struct tp_ui *tp_ui_new(const struct tp_ui_config *cfg, const struct tp_ui_source *src);
/* Starts the 1 s ticker (rates, live updates). */
int tp_ui_start(struct tp_ui *ui);
/* Ends every live stream (they see end of stream); call before stopping
 * the HTTP server. */
void tp_ui_close_streams(struct tp_ui *ui);
void tp_ui_free(struct tp_ui *ui);

/* The writer thread, after the output confirmed a batch: records each
 * delivered message (cheap: one lock per batch, no copy: the latest
 * message's payload and metadata buffers are swapped with the topic's older
 * ones, which the messages then carry to the caller's free) and feeds tap
 * streams. Pass only messages the output delivered. ui may be NULL. */
void tp_ui_observe(struct tp_ui *ui, struct tp_msg *const *msgs, size_t n);
/* A non-filtered drop of input message `in` in processor `proc` (any thread). */
void tp_ui_drop(struct tp_ui *ui, const struct tp_msg *in, const char *proc,
                const struct tp_drop *d);

/* ---- HTTP (ui_api.c); conn is a struct MHD_Connection * ---- */

/* Answers url (GET) when it belongs to the UI or API; 0 when the URL is not
 * one of them (the caller answers 404), else the MHD result + 1. ui may be
 * NULL (UI off): only /version and /config are served then. */
int tp_ui_http(struct tp_ui *ui, const struct tp_ui_source *src, void *conn, const char *url);

/* Appends a configuration tree as JSON; values of keys that look secret
 * (password, secret, token, key, credential, ...) become "***". */
void tp_ui_config_json(const struct tp_node *root, struct tp_buf *out);

/* 1 when topic[0..len) matches an MQTT-style pattern whose levels are
 * separated by '.' or '/': '+' is one level, a final '#' any rest. */
int tp_ui_topic_pattern_match(const char *pattern, const char *topic, size_t len);

#endif

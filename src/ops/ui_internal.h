/* Internal to the Topic Browser (ui_store.c, ui_stream.c, ui_api.c): the
 * topic and drop stores, the live streams and the functions between them. */
#ifndef TP_UI_INTERNAL_H
#define TP_UI_INTERNAL_H

#include <pthread.h>

#include "ops/ui.h"

#define UI_PAYLOAD_MAX 1024 /* payload bytes kept per topic (latest value) */
#define UI_POINT_TEXT 24    /* value text kept per history entry */
#define UI_DROPS_RECENT 20  /* dropped messages kept per reason */
#define UI_DROP_KEYS 256    /* distinct (reason, processor, stage) counters */

/* One history entry: when and the value's text (cut: longer than text);
 * its number is parsed when the history is read. */
struct ui_point {
    int64_t t_ms;
    char text[UI_POINT_TEXT - 1];
    uint8_t cut;
};

struct ui_topic {
    char *name;
    uint32_t name_len, hash;
    uint64_t count, count_at_tick, tick; /* tick: last update */
    double rate;                         /* messages/s over the last tick */
    int64_t last_ms;                     /* receive time of the latest message */
    char *payload;                       /* latest payload (first UI_PAYLOAD_MAX bytes) */
    uint32_t payload_len, payload_cap;
    uint32_t payload_full_len;
    struct tp_meta *meta; /* latest metadata: entries into strs */
    uint32_t n_meta, meta_cap;
    char *strs;
    uint32_t strs_len, strs_cap;
    struct ui_point *hist; /* ring of hist_len entries, newest at hist_head-1 */
    uint32_t hist_cap, hist_head, hist_len;
};

struct ui_drop_rec {
    int64_t t_ms;
    char proc[96], stage[64], rule[64], error[448];
    char *meta_json; /* {"k":"v",...} */
    char *payload;   /* first UI_PAYLOAD_MAX bytes */
};

struct ui_drop_key {
    int reason;
    char proc[96], stage[64];
    uint64_t count;
};

struct ui_stream;

struct tp_ui {
    struct tp_ui_config cfg;
    struct tp_ui_source src;
    pthread_mutex_t lock; /* topics, drops, tick */
    struct ui_topic **topics;
    size_t n_topics;
    uint32_t *index; /* open addressing: topic index + 1, 0 = empty */
    size_t index_cap;
    uint64_t topics_over_limit; /* messages whose topic did not fit */
    uint64_t tick;
    int64_t started_ms;
    /* stats deltas, computed by the ticker */
    uint64_t last_received, last_processed, last_lat_sum, last_lat_n;
    double rate_in, rate_out, latency_ms;
    /* drops */
    struct ui_drop_rec recent[TP_DROP_REASON_COUNT][UI_DROPS_RECENT];
    unsigned recent_head[TP_DROP_REASON_COUNT], recent_len[TP_DROP_REASON_COUNT];
    struct ui_drop_key drop_keys[UI_DROP_KEYS];
    size_t n_drop_keys;
    uint64_t drop_keys_other;
    /* streams (ui_stream.c) */
    pthread_mutex_t stream_lock;
    struct ui_stream *streams;
    int n_tap;         /* atomic: tap streams open */
    uint64_t tap_lost; /* atomic: stream lines lost to slow readers */
    int closing;
    pthread_t ticker;
    int ticker_started;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    int stop;
};

int64_t tp__ui_now_ms(void);
/* The topic name of a message: meta umh_topic, else topic, else "(no topic)". */
const char *tp__ui_msg_topic(const struct tp_msg *m, size_t *len);
/* Appends {"k":"v",...} of a metadata array. */
void tp__ui_meta_json(struct tp_buf *out, const struct tp_meta *meta, uint32_t n, const char *strs);
/* A double as JSON (null when not finite). */
void tp__ui_number(struct tp_buf *out, double v);

/* ui_store.c: JSON of the stores (lock taken inside). */
void tp__ui_topics_json(struct tp_ui *ui, const char *query, size_t limit, struct tp_buf *out);
int tp__ui_topic_json(struct tp_ui *ui, const char *name, struct tp_buf *out); /* 0: unknown */
void tp__ui_drops_json(struct tp_ui *ui, struct tp_buf *out);
/* Topics changed since tick `since` (at most `limit`), for live updates; lock held. */
void tp__ui_changed_json_locked(struct tp_ui *ui, uint64_t since, size_t limit, struct tp_buf *out);
/* Per-tick work: rates of every topic; lock held. */
void tp__ui_tick_locked(struct tp_ui *ui, double dt_s);
void tp__ui_stores_free(struct tp_ui *ui);

/* ui_api.c: /api/stats (ui may be NULL) and its per-tick rates. */
void tp__ui_stats_json(struct tp_ui *ui, const struct tp_ui_source *src, struct tp_buf *out);
void tp__ui_stats_tick(struct tp_ui *ui, double dt_s);

/* The page and its assets, embedded at build time (ui_assets.c, generated
 * by cmake/embed_assets.cmake from src/ops/ui/). */
struct tp_ui_asset {
    const char *path, *type;
    const unsigned char *data;
    size_t len;
};
extern const struct tp_ui_asset tp_ui_assets[];
extern const size_t tp_ui_n_assets;

/* ui_stream.c: a new live stream answering conn. kind "events" or "tap". */
int tp__ui_stream_open(struct tp_ui *ui, void *conn, int tap, const char *topic_filter, int drops);
/* Feeds tap streams (writer thread / drop path). */
void tp__ui_tap_messages(struct tp_ui *ui, struct tp_msg *const *msgs, size_t n);
void tp__ui_tap_drop(struct tp_ui *ui, const struct tp_msg *in, const char *proc,
                     const struct tp_drop *d);

#endif

/* The Topic Browser's stores: every topic the output saw (latest payload and
 * metadata, a ring of recent values, a rate), bounded by ui.max_topics and
 * ui.history, and the recent drops per reason; plus their JSON views. The
 * writer records a batch under one lock without allocating for known topics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/json.h"
#include "core/stats.h"
#include "ops/metrics.h"
#include "ops/ui_internal.h"

int64_t tp__ui_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *tp__ui_msg_topic(const struct tp_msg *m, size_t *len)
{
    const char *t = tp_msg_meta_get(m, "umh_topic", len);
    if (!t)
        t = tp_msg_meta_get(m, "topic", len);
    if (!t) {
        t = "(no topic)";
        *len = strlen(t);
    }
    return t;
}

void tp__ui_meta_json(struct tp_buf *out, const struct tp_meta *meta, uint32_t n, const char *strs)
{
    tp_buf_putc(out, '{');
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            tp_buf_putc(out, ',');
        tp_json_write_string(out, strs + meta[i].key_off, meta[i].key_len);
        tp_buf_putc(out, ':');
        tp_json_write_string(out, strs + meta[i].val_off, meta[i].val_len);
    }
    tp_buf_putc(out, '}');
}

void tp__ui_number(struct tp_buf *out, double v)
{
    if (isfinite(v))
        tp_buf_printf(out, "%.15g", v);
    else
        tp_buf_puts(out, "null");
}

/* FNV-1a style over 8-byte words: topic names are long (~90 bytes) and
 * hashed once per message on the writer thread. */
static uint32_t hash_name(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 1099511628211ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, s + i, len - i);
    h = (h ^ w) * 1099511628211ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* ---------- recording ---------- */

static int grow(void **p, uint32_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = (uint32_t)n;
    return 0;
}

static int index_insert(struct tp_ui *ui, uint32_t hash, size_t topic)
{
    if ((ui->n_topics + 1) * 2 > ui->index_cap) {
        size_t cap = ui->index_cap ? ui->index_cap * 2 : 1024;
        uint32_t *ix = calloc(cap, sizeof(*ix));
        if (!ix)
            return -1;
        for (size_t i = 0; i < ui->n_topics; i++) {
            size_t j = ui->topics[i]->hash & (cap - 1);
            while (ix[j])
                j = (j + 1) & (cap - 1);
            ix[j] = (uint32_t)i + 1;
        }
        free(ui->index);
        ui->index = ix;
        ui->index_cap = cap;
    }
    size_t j = hash & (ui->index_cap - 1);
    while (ui->index[j])
        j = (j + 1) & (ui->index_cap - 1);
    ui->index[j] = (uint32_t)topic + 1;
    return 0;
}

static struct ui_topic *find_topic(struct tp_ui *ui, const char *name, size_t len, uint32_t hash)
{
    if (!ui->index_cap)
        return NULL;
    for (size_t j = hash & (ui->index_cap - 1); ui->index[j]; j = (j + 1) & (ui->index_cap - 1)) {
        struct ui_topic *t = ui->topics[ui->index[j] - 1];
        if (t->hash == hash && t->name_len == len && memcmp(t->name, name, len) == 0)
            return t;
    }
    return NULL;
}

static struct ui_topic *add_topic(struct tp_ui *ui, const char *name, size_t len, uint32_t hash)
{
    if (ui->n_topics >= (size_t)ui->cfg.max_topics)
        return NULL;
    if ((ui->n_topics & (ui->n_topics - 1)) == 0) { /* grow at powers of two */
        size_t cap = ui->n_topics ? ui->n_topics * 2 : 64;
        struct ui_topic **v = realloc(ui->topics, cap * sizeof(*v));
        if (!v)
            return NULL;
        ui->topics = v;
    }
    struct ui_topic *t = calloc(1, sizeof(*t));
    if (!t || !(t->name = malloc(len + 1)) || index_insert(ui, hash, ui->n_topics)) {
        if (t)
            free(t->name);
        free(t);
        return NULL;
    }
    memcpy(t->name, name, len);
    t->name[len] = '\0';
    t->name_len = (uint32_t)len;
    t->hash = hash;
    ui->topics[ui->n_topics++] = t;
    return t;
}

/* Reads a decimal integer at p (as strtoll would, without its locale work). */
static const char *read_int(const char *p, int64_t *v)
{
    int neg = *p == '-';
    const char *q = p + neg;
    int64_t n = 0;
    for (; *q >= '0' && *q <= '9'; q++)
        n = n * 10 + (*q - '0');
    if (q == p + neg)
        return p;
    *v = neg ? -n : n;
    return q;
}

/* Keeps the value's text and timestamp of a UNS payload
 * {"timestamp_ms":T,"value":V} (or the payload itself) in pt; the number is
 * parsed only when the history is read (point_value). */
static void record_point(struct ui_point *pt, const char *p, size_t len)
{
    const char *v = p;
    if (len && p[0] == '{') {
        static const char ts_key[] = "{\"timestamp_ms\":";
        const char *t =
            strncmp(p, ts_key, sizeof(ts_key) - 1) == 0 ? p + 1 : strstr(p, "\"timestamp_ms\":");
        if (t)
            t = read_int(t + 15, &pt->t_ms);
        v = t && strncmp(t, ",\"value\":", 9) == 0 ? t + 1 : strstr(p, "\"value\":");
        v = v ? v + 8 : p;
    }
    while (*v == ' ')
        v++;
    const char *end = v;
    if (*v == '"') { /* string value: up to its closing quote */
        for (end = v + 1; *end && *end != '"'; end++)
            if (*end == '\\' && end[1])
                end++;
        if (*end)
            end++;
    } else if (v == p)
        end = p + len;
    else
        while (*end && *end != ',' && *end != '}')
            end++;
    size_t n = (size_t)(end - v);
    pt->cut = n > sizeof(pt->text) - 1;
    if (pt->cut)
        n = sizeof(pt->text) - 1;
    memcpy(pt->text, v, n);
    pt->text[n] = '\0';
}

/* The numeric value of a history entry: the number, true 1, false 0, else NaN. */
static double point_value(const struct ui_point *pt)
{
    if (strcmp(pt->text, "true") == 0)
        return 1;
    if (strcmp(pt->text, "false") == 0)
        return 0;
    char *e;
    double d = strtod(pt->text, &e);
    return e != pt->text && *e == '\0' && !pt->cut ? d : NAN;
}

#define SWAP(a, b)                                                                                 \
    do {                                                                                           \
        __typeof__(a) swap_tmp_ = (a);                                                             \
        (a) = (b);                                                                                 \
        (b) = swap_tmp_;                                                                           \
    } while (0)

/* Keeps m's payload and metadata as the topic's latest: by swapping buffers
 * with m (whose caller frees it, with the topic's previous buffers), so a
 * message costs no copy; a payload over UI_PAYLOAD_MAX is copied cut. */
static void keep_latest(struct ui_topic *t, struct tp_msg *m)
{
    t->payload_full_len = (uint32_t)m->payload_len;
    if (m->payload_len <= UI_PAYLOAD_MAX) {
        uint32_t len = (uint32_t)m->payload_len;
        char *old = t->payload;
        t->payload = m->payload;
        m->payload = old ? old : t->payload; /* never NULL for m's owner */
        if (!old) {
            t->payload = malloc(len + 1);
            if (t->payload)
                memcpy(t->payload, m->payload, len + 1);
        }
        m->payload_len = old ? t->payload_len : m->payload_len;
        t->payload_len = t->payload ? len : 0;
        t->payload_cap = t->payload ? len + 1 : 0;
    } else if (grow((void **)&t->payload, &t->payload_cap, UI_PAYLOAD_MAX + 1, 1) == 0) {
        memcpy(t->payload, m->payload, UI_PAYLOAD_MAX);
        t->payload[UI_PAYLOAD_MAX] = '\0';
        t->payload_len = UI_PAYLOAD_MAX;
    }
    SWAP(t->meta, m->meta);
    SWAP(t->n_meta, m->n_meta);
    SWAP(t->meta_cap, m->cap_meta);
    SWAP(t->strs, m->strs);
    SWAP(t->strs_len, m->strs_len);
    SWAP(t->strs_cap, m->strs_cap);
}

static void record(struct tp_ui *ui, struct ui_topic *t, struct tp_msg *m, int64_t now)
{
    t->count++;
    t->tick = ui->tick;
    t->last_ms = now;
    if (ui->cfg.history > 0 && t->hist_len == t->hist_cap &&
        t->hist_cap < (uint32_t)ui->cfg.history) {
        /* grow the ring (only while it is not wrapped yet) */
        uint32_t cap = t->hist_cap ? t->hist_cap * 2 : 8;
        if (cap > (uint32_t)ui->cfg.history)
            cap = (uint32_t)ui->cfg.history;
        struct ui_point *h = realloc(t->hist, cap * sizeof(*h));
        if (h) { /* not wrapped yet: entries 0..len-1 in order */
            t->hist = h;
            t->hist_cap = cap;
            t->hist_head = t->hist_len;
        }
    }
    if (t->hist_cap) {
        struct ui_point *pt = &t->hist[t->hist_head];
        pt->t_ms = now;
        record_point(pt, m->payload, m->payload_len);
        t->hist_head = (t->hist_head + 1) % t->hist_cap;
        if (t->hist_len < t->hist_cap)
            t->hist_len++;
    }
    keep_latest(t, m);
}

void tp_ui_observe(struct tp_ui *ui, struct tp_msg *const *msgs, size_t n)
{
    if (!ui || !n)
        return;
    if (__atomic_load_n(&ui->n_tap, __ATOMIC_RELAXED)) /* before record() takes the buffers */
        tp__ui_tap_messages(ui, msgs, n);
    int64_t now = tp__ui_now_ms();
    pthread_mutex_lock(&ui->lock);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *name = tp__ui_msg_topic(msgs[i], &len);
        uint32_t h = hash_name(name, len);
        struct ui_topic *t = find_topic(ui, name, len, h);
        if (!t)
            t = add_topic(ui, name, len, h);
        if (t)
            record(ui, t, msgs[i], now);
        else
            ui->topics_over_limit++;
    }
    pthread_mutex_unlock(&ui->lock);
}

static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memmove(dst, src, n);
    dst[n] = '\0';
}

void tp_ui_drop(struct tp_ui *ui, const struct tp_msg *in, const char *proc,
                const struct tp_drop *d)
{
    if (!ui)
        return;
    struct tp_buf meta;
    tp_buf_init(&meta);
    tp__ui_meta_json(&meta, in->meta, in->n_meta, in->strs);
    size_t plen = in->payload_len < UI_PAYLOAD_MAX ? in->payload_len : UI_PAYLOAD_MAX;
    char *payload = malloc(plen + 1);
    if (payload) {
        memcpy(payload, in->payload, plen);
        payload[plen] = '\0';
    }
    pthread_mutex_lock(&ui->lock);
    unsigned r = (unsigned)d->reason;
    struct ui_drop_rec *rec = &ui->recent[r][ui->recent_head[r]];
    free(rec->meta_json);
    free(rec->payload);
    rec->t_ms = tp__ui_now_ms();
    copy_text(rec->proc, sizeof(rec->proc), proc);
    copy_text(rec->stage, sizeof(rec->stage), d->stage);
    tp_metrics_rule_of_stage(d->stage, rec->rule, sizeof(rec->rule));
    copy_text(rec->error, sizeof(rec->error), d->error);
    rec->meta_json = tp_buf_take(&meta, NULL);
    rec->payload = payload;
    ui->recent_head[r] = (ui->recent_head[r] + 1) % UI_DROPS_RECENT;
    if (ui->recent_len[r] < UI_DROPS_RECENT)
        ui->recent_len[r]++;
    size_t k = 0;
    while (k < ui->n_drop_keys &&
           !(ui->drop_keys[k].reason == (int)r && strcmp(ui->drop_keys[k].proc, rec->proc) == 0 &&
             strcmp(ui->drop_keys[k].stage, rec->stage) == 0))
        k++;
    if (k == ui->n_drop_keys && k < UI_DROP_KEYS) {
        ui->drop_keys[k].reason = (int)r;
        copy_text(ui->drop_keys[k].proc, sizeof(ui->drop_keys[k].proc), rec->proc);
        copy_text(ui->drop_keys[k].stage, sizeof(ui->drop_keys[k].stage), rec->stage);
        ui->drop_keys[k].count = 0;
        ui->n_drop_keys++;
    }
    if (k < ui->n_drop_keys)
        ui->drop_keys[k].count++;
    else
        ui->drop_keys_other++;
    pthread_mutex_unlock(&ui->lock);
    tp_buf_free(&meta);
    if (__atomic_load_n(&ui->n_tap, __ATOMIC_RELAXED))
        tp__ui_tap_drop(ui, in, proc, d);
}

void tp__ui_tick_locked(struct tp_ui *ui, double dt_s)
{
    for (size_t i = 0; i < ui->n_topics; i++) {
        struct ui_topic *t = ui->topics[i];
        t->rate = dt_s > 0 ? (double)(t->count - t->count_at_tick) / dt_s : 0;
        t->count_at_tick = t->count;
    }
    ui->tick++;
}

void tp__ui_stores_free(struct tp_ui *ui)
{
    for (size_t i = 0; i < ui->n_topics; i++) {
        struct ui_topic *t = ui->topics[i];
        free(t->name);
        free(t->payload);
        free(t->meta);
        free(t->strs);
        free(t->hist);
        free(t);
    }
    free(ui->topics);
    free(ui->index);
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++)
        for (int i = 0; i < UI_DROPS_RECENT; i++) {
            free(ui->recent[r][i].meta_json);
            free(ui->recent[r][i].payload);
        }
}

/* ---------- JSON views ---------- */

/* The latest value's text: the UNS value, or the payload itself. */
static void topic_summary(struct tp_buf *out, const struct ui_topic *t, int64_t now)
{
    tp_buf_puts(out, "{\"name\":");
    tp_json_write_string(out, t->name, t->name_len);
    tp_buf_printf(out, ",\"count\":%llu,\"rate\":", (unsigned long long)t->count);
    tp__ui_number(out, t->rate);
    tp_buf_printf(out, ",\"age_ms\":%lld,\"value\":", (long long)(now - t->last_ms));
    if (t->hist_len) {
        const struct ui_point *pt = &t->hist[(t->hist_head + t->hist_cap - 1) % t->hist_cap];
        tp_json_write_string(out, pt->text, strlen(pt->text));
    } else
        tp_json_write_string(out, t->payload ? t->payload : "", t->payload_len);
    tp_buf_putc(out, '}');
}

static int meta_matches(const struct ui_topic *t, const char *key, size_t klen, const char *val)
{
    for (uint32_t i = 0; i < t->n_meta; i++)
        if (t->meta[i].key_len == klen && memcmp(t->strs + t->meta[i].key_off, key, klen) == 0 &&
            strstr(t->strs + t->meta[i].val_off, val))
            return 1;
    return 0;
}

void tp__ui_topics_json(struct tp_ui *ui, const char *query, size_t limit, struct tp_buf *out)
{
    const char *eq = query ? strchr(query, '=') : NULL;
    size_t shown = 0, matched = 0;
    tp_buf_puts(out, "{\"topics\":[");
    pthread_mutex_lock(&ui->lock);
    int64_t now = tp__ui_now_ms();
    for (size_t i = 0; i < ui->n_topics; i++) {
        const struct ui_topic *t = ui->topics[i];
        if (query && *query &&
            !(eq ? meta_matches(t, query, (size_t)(eq - query), eq + 1)
                 : !!strcasestr(t->name, query)))
            continue;
        matched++;
        if (shown >= limit)
            continue;
        if (shown++)
            tp_buf_putc(out, ',');
        topic_summary(out, t, now);
    }
    tp_buf_printf(out,
                  "],\"matched\":%zu,\"shown\":%zu,\"total\":%zu,\"max_topics\":%lld,"
                  "\"over_limit_messages\":%llu}",
                  matched, shown, ui->n_topics, (long long)ui->cfg.max_topics,
                  (unsigned long long)ui->topics_over_limit);
    pthread_mutex_unlock(&ui->lock);
}

void tp__ui_changed_json_locked(struct tp_ui *ui, uint64_t since, size_t limit, struct tp_buf *out)
{
    int64_t now = tp__ui_now_ms();
    size_t n = 0;
    tp_buf_puts(out, "[");
    for (size_t i = 0; i < ui->n_topics && n < limit; i++) {
        const struct ui_topic *t = ui->topics[i];
        if (t->tick + 2 < since) /* also the tick after its last update (rate 0) */
            continue;
        if (n++)
            tp_buf_putc(out, ',');
        topic_summary(out, t, now);
    }
    tp_buf_puts(out, "]");
}

int tp__ui_topic_json(struct tp_ui *ui, const char *name, struct tp_buf *out)
{
    size_t len = strlen(name);
    pthread_mutex_lock(&ui->lock);
    const struct ui_topic *t = find_topic(ui, name, len, hash_name(name, len));
    if (t) {
        tp_buf_puts(out, "{\"name\":");
        tp_json_write_string(out, t->name, t->name_len);
        tp_buf_printf(out, ",\"count\":%llu,\"rate\":", (unsigned long long)t->count);
        tp__ui_number(out, t->rate);
        tp_buf_printf(out, ",\"received_ms\":%lld,\"payload\":", (long long)t->last_ms);
        tp_json_write_string(out, t->payload ? t->payload : "", t->payload_len);
        tp_buf_printf(out, ",\"payload_bytes\":%u,\"meta\":", t->payload_full_len);
        tp__ui_meta_json(out, t->meta, t->n_meta, t->strs);
        tp_buf_printf(out, ",\"history_max\":%lld,\"history\":[", (long long)ui->cfg.history);
        for (uint32_t k = 0; k < t->hist_len; k++) {
            const struct ui_point *pt =
                &t->hist[(t->hist_head + t->hist_cap - t->hist_len + k) % t->hist_cap];
            tp_buf_printf(out, "%s{\"t\":%lld,\"value\":", k ? "," : "", (long long)pt->t_ms);
            tp__ui_number(out, point_value(pt));
            tp_buf_puts(out, ",\"text\":");
            tp_json_write_string(out, pt->text, strlen(pt->text));
            tp_buf_putc(out, '}');
        }
        tp_buf_puts(out, "]}");
    }
    pthread_mutex_unlock(&ui->lock);
    return t != NULL;
}

void tp__ui_drops_json(struct tp_ui *ui, struct tp_buf *out)
{
    tp_buf_puts(out, "{\"by_reason\":{");
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++)
        tp_buf_printf(
            out, "%s\"%s\":%llu", r ? "," : "", tp_drop_reason_name((enum tp_drop_reason)r),
            (unsigned long long)TP_STAT_GET(tp_metrics_stats(ui->src.metrics), dropped[r]));
    tp_buf_puts(out, "},\"by_stage\":[");
    pthread_mutex_lock(&ui->lock);
    for (size_t k = 0; k < ui->n_drop_keys; k++) {
        const struct ui_drop_key *dk = &ui->drop_keys[k];
        char rule[64];
        tp_metrics_rule_of_stage(dk->stage, rule, sizeof(rule));
        tp_buf_printf(out, "%s{\"reason\":\"%s\",\"processor\":", k ? "," : "",
                      tp_drop_reason_name((enum tp_drop_reason)dk->reason));
        tp_json_write_string(out, dk->proc, strlen(dk->proc));
        tp_buf_puts(out, ",\"stage\":");
        tp_json_write_string(out, dk->stage, strlen(dk->stage));
        tp_buf_puts(out, ",\"rule\":");
        tp_json_write_string(out, rule, strlen(rule));
        tp_buf_printf(out, ",\"count\":%llu}", (unsigned long long)dk->count);
    }
    tp_buf_printf(out, "],\"other_stages\":%llu,\"recent\":{",
                  (unsigned long long)ui->drop_keys_other);
    int first = 1;
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++) {
        if (!ui->recent_len[r])
            continue;
        tp_buf_printf(out, "%s\"%s\":[", first ? "" : ",",
                      tp_drop_reason_name((enum tp_drop_reason)r));
        first = 0;
        for (unsigned k = 0; k < ui->recent_len[r]; k++) { /* newest first */
            const struct ui_drop_rec *rec =
                &ui->recent[r][(ui->recent_head[r] + UI_DROPS_RECENT - 1 - k) % UI_DROPS_RECENT];
            tp_buf_printf(out, "%s{\"time_ms\":%lld,\"processor\":", k ? "," : "",
                          (long long)rec->t_ms);
            tp_json_write_string(out, rec->proc, strlen(rec->proc));
            tp_buf_puts(out, ",\"stage\":");
            tp_json_write_string(out, rec->stage, strlen(rec->stage));
            tp_buf_puts(out, ",\"rule\":");
            tp_json_write_string(out, rec->rule, strlen(rec->rule));
            tp_buf_puts(out, ",\"error\":");
            tp_json_write_string(out, rec->error, strlen(rec->error));
            tp_buf_printf(out, ",\"meta\":%s,\"payload\":", rec->meta_json ? rec->meta_json : "{}");
            tp_json_write_string(out, rec->payload ? rec->payload : "",
                                 rec->payload ? strlen(rec->payload) : 0);
            tp_buf_putc(out, '}');
        }
        tp_buf_putc(out, ']');
    }
    pthread_mutex_unlock(&ui->lock);
    tp_buf_puts(out, "}}");
}

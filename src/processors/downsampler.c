/* The downsampler processor (benthos-umh's, docs/UMH.md): per-topic
 * (umh_topic) deadband or swinging-door compression of UMH-core time-series
 * payloads {"timestamp_ms":T,"value":V}. Numbers are compressed, strings,
 * booleans and other values pass on change; `max_time` forces a heartbeat.
 * State is per worker: key routing sends one series to one worker. */
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/json.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/plugin.h"

/* ---------- configuration ---------- */

struct ds_algo {
    double threshold;         /* absolute */
    double threshold_percent; /* deadband: of the last kept value's magnitude */
    int64_t max_time;         /* ms; 0: no heartbeat */
};

struct ds_late {
    char *late_policy; /* passthrough | drop; NULL: not set */
};

struct ds_default {
    struct ds_algo deadband, swinging_door;
    struct ds_late late;
};

struct ds_override {
    char *pattern; /* glob on the topic, or on its last segment */
    char *topic;   /* exact topic */
    struct ds_algo deadband, swinging_door;
    struct ds_late late;
};

struct ds_config {
    struct ds_default def;
    struct tp_list overrides; /* of struct ds_override */
};

static const struct tp_option deadband_options[] = {
    TP_OPTION(
        struct ds_algo, threshold, "threshold", TP_OPT_DOUBLE, "0",
        "a number is kept when it differs from the last kept one by at least this much (0: by "
        "anything)",
        .min = 0, .max = INT64_MAX),
    TP_OPTION(struct ds_algo, threshold_percent, "threshold_percent", TP_OPT_DOUBLE, "0",
              "instead of threshold: at least this percentage of the last kept value's magnitude",
              .min = 0, .max = INT64_MAX),
    TP_OPTION(
        struct ds_algo, max_time, "max_time", TP_OPT_DURATION, "0",
        "a point this long (by timestamp_ms) after the last kept one is always kept; 0: never"),
    {0},
};

static const struct tp_option swinging_door_options[] = {
    TP_OPTION(
        struct ds_algo, threshold, "threshold", TP_OPT_DOUBLE, "0",
        "half-width of the door: the largest vertical deviation from the trend line (0: keep every "
        "point)",
        .min = 0, .max = INT64_MAX),
    TP_OPTION(
        struct ds_algo, max_time, "max_time", TP_OPT_DURATION, "0",
        "a point this long (by timestamp_ms) after the last kept one is always kept; 0: never"),
    {0},
};

static const char *const late_policies[] = {"passthrough", "drop", NULL};

static const struct tp_option late_options[] = {
    TP_OPTION(
        struct ds_late, late_policy, "late_policy", TP_OPT_STRING, NULL,
        "a point older than the last one of its topic: passthrough (kept, metadata late_oos=true; "
        "the default) or drop (filtered).",
        .choices = late_policies),
    {0},
};

#define ALGO_SECTIONS(T)                                                                           \
    TP_OPTION(T, deadband, "deadband", TP_OPT_OBJECT, NULL,                                        \
              "deadband parameters (chosen when any is non-zero).", .sub = deadband_options),      \
        TP_OPTION(T, swinging_door, "swinging_door", TP_OPT_OBJECT, NULL,                          \
                  "swinging-door parameters (chosen when any is non-zero and deadband's are "      \
                  "not).",                                                                         \
                  .sub = swinging_door_options),                                                   \
        TP_OPTION(T, late, "late_policy", TP_OPT_OBJECT, NULL, "out-of-order points.",             \
                  .sub = late_options)

static const struct tp_option default_options[] = {
    ALGO_SECTIONS(struct ds_default),
    {0},
};

static const struct tp_option override_options[] = {
    TP_OPTION(
        struct ds_override, pattern, "pattern", TP_OPT_STRING, NULL,
        "shell pattern (*, ?, [...]) matched against the whole umh_topic, then against its last "
        "segment"),
    TP_OPTION(struct ds_override, topic, "topic", TP_OPT_STRING, NULL,
              "exact umh_topic (instead of pattern)"),
    ALGO_SECTIONS(struct ds_override),
    {0},
};

static const struct tp_option ds_options[] = {
    TP_OPTION(struct ds_config, def, "default", TP_OPT_OBJECT, NULL,
              "parameters of every topic no override matches.", .sub = default_options),
    TP_OPTION(struct ds_config, overrides, "overrides", TP_OPT_LIST, NULL,
              "per-topic parameters; the first matching override applies over the defaults.",
              .sub = override_options, .elem_size = sizeof(struct ds_override)),
    {0},
};

/* ---------- effective parameters (default, then one per override) ---------- */

/* A string-keyed open-addressing hash table (series per worker; owners). */
struct ds_entry {
    char *key;
    uint64_t hash;
    void *val;
};

struct ds_table {
    struct ds_entry *v;
    size_t n, cap; /* cap: power of two */
};

enum ds_kind { DS_DEADBAND, DS_SWINGING_DOOR };

struct ds_params {
    enum ds_kind kind;
    struct ds_algo a;
    int late_drop;
    char desc[160]; /* the downsampled_by metadata value */
};

struct ds_proc {
    const struct ds_config *cfg;
    struct ds_params *params; /* [0]: default; [1 + i]: override i */
    int threads;
    /* series -> worker that first processed it, to warn when key routing
     * splits a series over workers (its state would be split too) */
    pthread_mutex_t owners_lock;
    struct ds_table owners;
};

static int algo_set(const struct ds_algo *a)
{
    return a->threshold != 0 || a->threshold_percent != 0 || a->max_time != 0;
}

/* Values set in `over` replace those of `base` (a percent replaces an absolute
 * threshold and the other way round). */
static void algo_merge(struct ds_algo *base, const struct ds_algo *over)
{
    if (over->threshold != 0 || over->threshold_percent != 0) {
        base->threshold = over->threshold;
        base->threshold_percent = over->threshold_percent;
    }
    if (over->max_time != 0)
        base->max_time = over->max_time;
}

/* A duration as written in configs: 90m -> "90m", 3600000 -> "1h". */
static int put_duration(char *o, size_t size, int64_t ms)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    size_t i = 0;
    while (ms % units[i].ms)
        i++;
    return snprintf(o, size, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
}

static void describe(struct ds_params *p)
{
    int n;
    if (p->kind == DS_SWINGING_DOOR)
        n = snprintf(p->desc, sizeof(p->desc), "swinging_door(threshold=%g", p->a.threshold);
    else if (p->a.threshold_percent != 0)
        n = snprintf(p->desc, sizeof(p->desc), "deadband(threshold_percent=%g",
                     p->a.threshold_percent);
    else
        n = snprintf(p->desc, sizeof(p->desc), "deadband(threshold=%g", p->a.threshold);
    if (p->a.max_time) {
        n += snprintf(p->desc + n, sizeof(p->desc) - (size_t)n, ",max_time=");
        n += put_duration(p->desc + n, sizeof(p->desc) - (size_t)n, p->a.max_time);
    }
    snprintf(p->desc + n, sizeof(p->desc) - (size_t)n, ")");
}

static int check_algo(const struct ds_algo *a, const char *label, const char *where,
                      struct tp_error *err)
{
    /* not negative: the option table */
    if (a->threshold != 0 && a->threshold_percent != 0)
        return tp_error_set(err, TP_CONFIG,
                            "%s.%s: threshold and threshold_percent exclude each other", label,
                            where);
    return TP_OK;
}

/* benthos-umh's selection: deadband when its section has a value, else
 * swinging_door when its section has one, else deadband (any change). */
static void resolve_default(const struct ds_default *d, struct ds_params *p)
{
    memset(p, 0, sizeof(*p));
    p->kind =
        !algo_set(&d->deadband) && algo_set(&d->swinging_door) ? DS_SWINGING_DOOR : DS_DEADBAND;
    p->a = p->kind == DS_SWINGING_DOOR ? d->swinging_door : d->deadband;
    p->late_drop = d->late.late_policy && strcmp(d->late.late_policy, "drop") == 0;
    describe(p);
}

static void resolve_override(const struct ds_params *def, const struct ds_override *o,
                             struct ds_params *p)
{
    *p = *def;
    if (algo_set(&o->deadband)) {
        p->kind = DS_DEADBAND;
        algo_merge(&p->a, &o->deadband);
    }
    if (algo_set(&o->swinging_door)) {
        p->kind = DS_SWINGING_DOOR;
        algo_merge(&p->a, &o->swinging_door);
        p->a.threshold_percent = 0;
    }
    if (o->late.late_policy)
        p->late_drop = strcmp(o->late.late_policy, "drop") == 0;
    describe(p);
}

static const struct ds_params *params_for(const struct ds_proc *pr, const char *topic)
{
    const struct ds_override *ov = pr->cfg->overrides.items;
    const char *last = strrchr(topic, '.');
    last = last ? last + 1 : topic;
    for (size_t i = 0; i < pr->cfg->overrides.n; i++) {
        const struct ds_override *o = &ov[i];
        if ((o->topic && strcmp(o->topic, topic) == 0) ||
            (o->pattern &&
             (fnmatch(o->pattern, topic, 0) == 0 || fnmatch(o->pattern, last, 0) == 0)))
            return &pr->params[1 + i];
    }
    return &pr->params[0];
}

/* ---------- the hash table ---------- */

static struct ds_entry *table_find(struct ds_table *t, const char *key, size_t klen, uint64_t h)
{
    if (!t->cap)
        return NULL;
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        struct ds_entry *e = &t->v[i];
        if (!e->key)
            return NULL;
        if (e->hash == h && strncmp(e->key, key, klen) == 0 && e->key[klen] == '\0')
            return e;
    }
}

/* Adds key (copied) with val; NULL on allocation failure. */
static struct ds_entry *table_add(struct ds_table *t, const char *key, size_t klen, uint64_t h,
                                  void *val)
{
    if ((t->n + 1) * 4 > t->cap * 3) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct ds_entry *v = calloc(cap, sizeof(*v));
        if (!v)
            return NULL;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->v[i].key)
                continue;
            size_t j = t->v[i].hash & (cap - 1);
            while (v[j].key)
                j = (j + 1) & (cap - 1);
            v[j] = t->v[i];
        }
        free(t->v);
        t->v = v;
        t->cap = cap;
    }
    size_t i = h & (t->cap - 1);
    while (t->v[i].key)
        i = (i + 1) & (t->cap - 1);
    if (!(t->v[i].key = strndup(key, klen)))
        return NULL;
    t->v[i].hash = h;
    t->v[i].val = val;
    t->n++;
    return &t->v[i];
}

static void table_clear(struct ds_table *t, void (*free_val)(void *))
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->v[i].key) {
            free(t->v[i].key);
            if (free_val)
                free_val(t->v[i].val);
        }
    free(t->v);
    memset(t, 0, sizeof(*t));
}

/* ---------- create / workers ---------- */

static void ds_destroy(void *proc)
{
    struct ds_proc *pr = proc;
    if (!pr)
        return;
    table_clear(&pr->owners, NULL);
    pthread_mutex_destroy(&pr->owners_lock);
    free(pr->params);
    free(pr);
}

static int ds_create(const void *config, const struct tp_proc_info *info, void **proc,
                     struct tp_error *err)
{
    const struct ds_config *cfg = config;
    const char *label = info && info->label ? info->label : "downsampler";
    char where[64];
    int rc = check_algo(&cfg->def.deadband, label, "default.deadband", err);
    if (!rc)
        rc = check_algo(&cfg->def.swinging_door, label, "default.swinging_door", err);
    const struct ds_override *ov = cfg->overrides.items;
    for (size_t i = 0; !rc && i < cfg->overrides.n; i++) {
        snprintf(where, sizeof(where), "overrides[%zu]", i);
        if (!ov[i].pattern == !ov[i].topic)
            rc = tp_error_set(err, TP_CONFIG, "%s.%s: give exactly one of pattern and topic", label,
                              where);
        if (!rc)
            rc = check_algo(&ov[i].deadband, label, where, err);
        if (!rc)
            rc = check_algo(&ov[i].swinging_door, label, where, err);
    }
    if (rc)
        return rc;
    struct ds_proc *pr = calloc(1, sizeof(*pr));
    if (!pr || !(pr->params = calloc(1 + cfg->overrides.n, sizeof(*pr->params)))) {
        free(pr);
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    pthread_mutex_init(&pr->owners_lock, NULL);
    pr->cfg = cfg;
    pr->threads = info ? info->threads : 1;
    resolve_default(&cfg->def, &pr->params[0]);
    for (size_t i = 0; i < cfg->overrides.n; i++)
        resolve_override(&pr->params[0], &ov[i], &pr->params[1 + i]);
    *proc = pr;
    return TP_OK;
}

/* One topic's state. */
struct series {
    const struct ds_params *par;
    int has_kept;
    int64_t last_seen; /* timestamp of the newest point processed */
    int64_t kept_t;    /* the last kept point */
    int kept_numeric;
    double kept_v;
    char *kept_text; /* non-numeric: the value's JSON text */
    size_t kept_len;
    double lo, hi; /* swinging door: slopes (per ms) bounding the door from (kept_t, kept_v) */
};

static void series_free(void *v)
{
    struct series *s = v;
    if (s)
        free(s->kept_text);
    free(s);
}

struct ds_worker {
    struct ds_proc *pr;
    int index;
    struct ds_table series;
};

static int ds_worker_new(void *proc, int worker_index, void **worker, struct tp_error *err)
{
    struct ds_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    w->pr = proc;
    w->index = worker_index;
    *worker = w;
    return TP_OK;
}

static void ds_worker_free(void *worker)
{
    struct ds_worker *w = worker;
    if (!w)
        return;
    table_clear(&w->series, series_free);
    free(w);
}

/* Notes that worker w processes `topic`; warns once when another worker did
 * first (the routing key does not determine the series). */
static void note_owner(struct ds_worker *w, const char *topic, size_t tlen, uint64_t h)
{
    struct ds_proc *pr = w->pr;
    if (pr->threads <= 1)
        return;
    pthread_mutex_lock(&pr->owners_lock);
    struct ds_entry *e = table_find(&pr->owners, topic, tlen, h);
    if (!e) {
        table_add(&pr->owners, topic, tlen, h, (void *)(intptr_t)(w->index + 1));
    } else if ((intptr_t)e->val != w->index + 1 && (intptr_t)e->val > 0) {
        e->val = (void *)(intptr_t)-1; /* warned */
        tp_log_limited(
            TP_LOG_WARN, "downsampler.split",
            "downsampler: topic %s is processed by more than one worker, so its state is "
            "split and points may be kept that should not be: set pipeline.key to metadata "
            "that determines the topic (e.g. the input's tag id), or use threads: 1",
            topic);
    }
    pthread_mutex_unlock(&pr->owners_lock);
}

static struct series *series_get(struct ds_worker *w, const char *topic, size_t tlen)
{
    uint64_t h = tp_hash_bytes(topic, tlen);
    struct ds_entry *e = table_find(&w->series, topic, tlen, h);
    if (e)
        return e->val;
    struct series *s = calloc(1, sizeof(*s));
    if (!s || !table_add(&w->series, topic, tlen, h, s)) {
        free(s);
        return NULL;
    }
    s->par = params_for(w->pr, topic);
    note_owner(w, topic, tlen, h);
    return s;
}

/* ---------- the algorithms ---------- */

/* Why a point was filtered, for the drop's error text; empty when kept. */
struct verdict {
    char why[200];
};

static int is_number_text(const char *v, size_t n)
{
    return n && (*v == '-' || (*v >= '0' && *v <= '9'));
}

static void keep(struct series *s, int64_t t, int numeric, double v)
{
    s->has_kept = 1;
    s->kept_t = t;
    s->kept_numeric = numeric;
    s->kept_v = v;
    s->lo = -INFINITY;
    s->hi = INFINITY;
}

/* Deadband on a number: 1 keep, 0 filter (why filled). */
static int deadband(struct series *s, double v, struct verdict *vd)
{
    const struct ds_algo *a = &s->par->a;
    double delta = fabs(v - s->kept_v);
    double limit =
        a->threshold_percent != 0 ? fabs(s->kept_v) * a->threshold_percent / 100.0 : a->threshold;
    if (limit > 0 ? delta >= limit : delta > 0)
        return 1;
    snprintf(vd->why, sizeof(vd->why),
             "deadband: change %g from the last kept value %g is below %g", delta, s->kept_v,
             limit);
    return 0;
}

/* Swinging door on a number: the door opens from the last kept point; a point
 * whose +-threshold band leaves no slope common to every point since is kept
 * and starts a new door. */
static int swinging_door(struct series *s, int64_t t, double v, struct verdict *vd)
{
    double d = s->par->a.threshold;
    if (d <= 0)
        return 1;
    double dt = (double)(t - s->kept_t);
    if (dt <= 0) {
        snprintf(vd->why, sizeof(vd->why),
                 "swinging_door: same timestamp as the last kept point (%" PRId64 ")", t);
        return 0;
    }
    double lo = fmax(s->lo, (v - d - s->kept_v) / dt);
    double hi = fmin(s->hi, (v + d - s->kept_v) / dt);
    if (lo > hi)
        return 1;
    s->lo = lo;
    s->hi = hi;
    snprintf(vd->why, sizeof(vd->why), "swinging_door: %g lies inside the door (threshold %g)", v,
             d);
    return 0;
}

/* Decides for one point; 1 keep (state updated), 0 filter. */
static int decide(struct series *s, int64_t t, const char *vtext, size_t vlen, struct verdict *vd)
{
    int numeric = is_number_text(vtext, vlen);
    double v = numeric ? strtod(vtext, NULL) : 0;
    int kept;
    if (!s->has_kept)
        kept = 1;
    else if (s->par->a.max_time > 0 && t - s->kept_t >= s->par->a.max_time)
        kept = 1;
    else if (!numeric || !s->kept_numeric) {
        kept = numeric != s->kept_numeric || vlen != s->kept_len ||
               memcmp(vtext, s->kept_text, vlen) != 0;
        if (!kept)
            snprintf(vd->why, sizeof(vd->why), "unchanged value %.*s", (int)(vlen > 64 ? 64 : vlen),
                     vtext);
    } else if (s->par->kind == DS_SWINGING_DOOR)
        kept = swinging_door(s, t, v, vd);
    else
        kept = deadband(s, v, vd);
    if (!kept)
        return 0;
    char *text = NULL;
    if (!numeric && !(text = strndup(vtext, vlen)))
        return -1;
    free(s->kept_text);
    s->kept_text = text;
    s->kept_len = numeric ? 0 : vlen;
    keep(s, t, numeric, v);
    return 1;
}

/* ---------- processing ---------- */

static int emit(const struct tp_msg *in, struct tp_batch *out, const char *key, const char *val)
{
    struct tp_msg *m = tp_msg_clone(in);
    if (!m || (key && tp_msg_meta_sets(m, key, val))) {
        tp_msg_free(m);
        return TP_NOMEM;
    }
    return tp_batch_push(out, m) ? TP_NOMEM : TP_OK;
}

static int ds_process(void *worker, const struct tp_msg *in, struct tp_batch *out,
                      struct tp_drops *drops)
{
    struct ds_worker *w = worker;
    size_t tlen, vlen, tslen;
    const char *topic = tp_msg_meta_get(in, "umh_topic", &tlen);
    const char *vtext, *tstext;
    /* not a time-series point: passes unchanged */
    if (!topic || !tp_json_object_member(in->payload, in->payload_len, "value", &vtext, &vlen) ||
        !tp_json_object_member(in->payload, in->payload_len, "timestamp_ms", &tstext, &tslen) ||
        !is_number_text(tstext, tslen))
        return emit(in, out, NULL, NULL);
    int64_t t = (int64_t)strtod(tstext, NULL);
    struct series *s = series_get(w, topic, tlen);
    if (!s)
        return TP_NOMEM;
    if (s->has_kept && t < s->last_seen) {
        if (!s->par->late_drop)
            return emit(in, out, "late_oos", "true");
        tp_drops_add(drops, TP_DROP_FILTERED, "downsampler",
                     "late point: timestamp_ms %" PRId64 " is older than %" PRId64
                     " already seen on %s (late_policy: drop)",
                     t, s->last_seen, topic);
        return TP_OK;
    }
    s->last_seen = t;
    struct verdict vd = {{0}};
    int kept = decide(s, t, vtext, vlen, &vd);
    if (kept < 0)
        return TP_NOMEM;
    if (kept)
        return emit(in, out, "downsampled_by", s->par->desc);
    tp_drops_add(drops, TP_DROP_FILTERED, "downsampler", "%s", vd.why);
    return TP_OK;
}

const struct tp_processor_plugin tp_processor_downsampler = {
    .name = "downsampler",
    .options = ds_options,
    .config_size = sizeof(struct ds_config),
    .create = ds_create,
    .worker_new = ds_worker_new,
    .process = ds_process,
    .worker_free = ds_worker_free,
    .destroy = ds_destroy,
};

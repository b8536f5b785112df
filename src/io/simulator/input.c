/* The simulator input: OPC UA-like tags (numbers that drift smoothly, booleans
 * that toggle now and then, mode strings) with the metadata the opcua input
 * attaches (opcua_attr_*, opcua_tag_*, ...; `metadata: short` for the six
 * keys benchmarks use). Deterministic for a seed; with `timestamps: fixed` the output
 * is reproducible byte for byte. Built for benchmarks: per-node strings are
 * precomputed and a message costs a few small allocations. */
#include <math.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/plugin.h"

#define FIXED_EPOCH_MS 1700000000000LL

struct sim_config {
    int64_t nodes;
    double rate;
    int64_t count;
    int64_t seed;
    char *timestamps;
    char *metadata;
};

static const char *const timestamp_modes[] = {"now", "fixed", NULL};
static const char *const metadata_modes[] = {"opcua", "short", NULL};

static const struct tp_option sim_options[] = {
    TP_OPTION(struct sim_config, nodes, "nodes", TP_OPT_INT, "42",
              "number of simulated tags; message k is for node k % nodes", .min = 1,
              .max = 1000000),
    TP_OPTION(struct sim_config, rate, "rate", TP_OPT_DOUBLE, "0",
              "messages per second over all nodes; 0: as fast as possible", .min = 0,
              .max = INT64_MAX),
    TP_OPTION(struct sim_config, count, "count", TP_OPT_INT, "0",
              "total messages, then end of input; 0: endless", .min = 0, .max = INT64_MAX),
    TP_OPTION(struct sim_config, seed, "seed", TP_OPT_INT, "1",
              "random seed; the same seed gives the same values"),
    TP_OPTION(struct sim_config, timestamps, "timestamps", TP_OPT_STRING, "now",
              "now: the current time; fixed: 1700000000000 ms + message index (reproducible)",
              .choices = timestamp_modes),
    TP_OPTION(struct sim_config, metadata, "metadata", TP_OPT_STRING, "opcua",
              "opcua: every key of the opcua input (opcua_attr_nodeid, opcua_attr_datatype, "
              "opcua_tag_path, ...) plus timestamp_ms; short: opcua_node_id, opcua_tag_name, "
              "opcua_tag_group, opcua_tag_type, opcua_source_timestamp, timestamp_ms",
              .choices = metadata_modes),
    {0},
};

enum kind_type { K_NUMBER, K_BOOL, K_MODE, K_SERIAL };

static const struct kind {
    const char *name;
    enum kind_type type;
    double base, amp, noise, period_s;
} kinds[] = {
    {"Temperature", K_NUMBER, 65.0, 8.0, 0.3, 600},
    {"Pressure", K_NUMBER, 4.2, 0.6, 0.02, 300},
    {"Speed", K_NUMBER, 1450.0, 120.0, 4.0, 120},
    {"Running", K_BOOL, 0, 0, 0, 0},
    {"Mode", K_MODE, 0, 0, 0, 0},
    {"FlowRate", K_NUMBER, 12.5, 2.5, 0.1, 240},
    {"Vibration", K_NUMBER, 2.1, 0.8, 0.15, 60},
    {"PowerConsumption", K_NUMBER, 37.5, 6.0, 0.5, 900},
    {"DoorOpen", K_BOOL, 0, 0, 0, 0},
    {"Humidity", K_NUMBER, 45.0, 5.0, 0.4, 1800},
    {"Torque", K_NUMBER, 120.0, 25.0, 2.0, 90},
    {"SerialNumber", K_SERIAL, 0, 0, 0, 0},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *const modes[] = {"AUTO", "MANUAL", "SETUP", "MAINTENANCE", "IDLE"};
#define N_MODES (sizeof(modes) / sizeof(modes[0]))

struct node {
    const struct kind *kind;
    char node_id[32];
    char tag_name[48];
    char group[48];
    char serial[24];
    double phase;
    int state;           /* bool value or mode index */
    struct tp_msg *tmpl; /* metadata in final order; cloned per message */
};

struct sim {
    struct node *nodes;
    uint64_t n_nodes, count, next;
    double rate;
    int fixed;
    int short_meta; /* metadata: short */
    uint64_t rng;
    int64_t start_ns; /* monotonic time of the first read (rate limiting) */
    int started;
    int stop;
    int wake_fd;
    int64_t ts_sec; /* cached RFC 3339 seconds prefix */
    char ts_prefix[32];
};

/* splitmix64: small, fast, and good enough for simulated noise. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sim_close(void *in);

static int meta(struct tp_msg *m, const char *key, const char *val)
{
    return tp_msg_meta_append(m, key, strlen(key), val, strlen(val));
}

#define TS_PLACEHOLDER "2023-11-14T22:13:20.000Z"

/* The metadata of node n in final order, with same-length placeholder
 * timestamps (overwritten per message). The full set is the opcua input's,
 * in its order (docs/opcua.md); NULL on allocation failure. */
static struct tp_msg *make_template(const struct node *n, int short_meta)
{
    static const char *const type_names[] = {"number", "bool", "string", "string"};
    static const char *const datatypes[] = {"Double", "Boolean", "String", "String"};
    struct tp_msg *m = tp_msg_new();
    if (!m)
        return NULL;
    const char *type = type_names[n->kind->type];
    int rc;
    if (short_meta)
        rc = meta(m, "opcua_node_id", n->node_id) || meta(m, "opcua_tag_name", n->tag_name) ||
             meta(m, "opcua_tag_group", n->group) || meta(m, "opcua_tag_type", type) ||
             meta(m, "opcua_source_timestamp", TS_PLACEHOLDER);
    else {
        char desc[96];
        snprintf(desc, sizeof(desc), "Simulated %s", n->kind->name);
        rc = meta(m, "opcua_source_timestamp", TS_PLACEHOLDER) ||
             meta(m, "opcua_server_timestamp", TS_PLACEHOLDER) ||
             meta(m, "opcua_attr_nodeid", n->node_id) ||
             meta(m, "opcua_attr_nodeclass", "NodeClassVariable") ||
             meta(m, "opcua_attr_browsename", n->kind->name) ||
             meta(m, "opcua_attr_description", desc) ||
             meta(m, "opcua_attr_accesslevel", "AccessLevelTypeCurrentRead") ||
             meta(m, "opcua_attr_datatype", datatypes[n->kind->type]) ||
             meta(m, "opcua_attr_statuscode", "Good") || meta(m, "opcua_tag_group", n->group) ||
             meta(m, "opcua_tag_name", n->tag_name) || meta(m, "opcua_tag_path", n->group) ||
             meta(m, "opcua_tag_type", type) || meta(m, "opcua_node_id", n->node_id);
    }
    if (rc || meta(m, "timestamp_ms", "1700000000000")) {
        tp_msg_free(m);
        return NULL;
    }
    return m;
}

static int sim_open(const void *config, void **out, struct tp_error *err)
{
    const struct sim_config *c = config;
    struct sim *s = calloc(1, sizeof(*s));
    if (!s || !(s->nodes = calloc((size_t)c->nodes, sizeof(*s->nodes)))) {
        free(s);
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0) {
        free(s->nodes);
        free(s);
        return tp_error_set(err, TP_IO, "simulator: eventfd failed");
    }
    s->n_nodes = (uint64_t)c->nodes;
    s->count = (uint64_t)c->count;
    s->rate = c->rate;
    s->fixed = c->timestamps && strcmp(c->timestamps, "fixed") == 0;
    s->rng = (uint64_t)c->seed;
    s->ts_sec = -1;
    int short_meta = s->short_meta = c->metadata && strcmp(c->metadata, "short") == 0;
    for (uint64_t i = 0; i < s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        uint64_t cycle = i / N_KINDS, machine = cycle + 1;
        n->kind = &kinds[i % N_KINDS];
        snprintf(n->node_id, sizeof(n->node_id), "ns=1;i=%llu", (unsigned long long)(2200 + i));
        if (cycle == 0)
            snprintf(n->tag_name, sizeof(n->tag_name), "%s", n->kind->name);
        else
            snprintf(n->tag_name, sizeof(n->tag_name), "%s_%llu", n->kind->name,
                     (unsigned long long)cycle);
        snprintf(n->group, sizeof(n->group), "Line%llu.Machine%llu",
                 (unsigned long long)((machine - 1) / 4 + 1),
                 (unsigned long long)((machine - 1) % 4 + 1));
        snprintf(n->serial, sizeof(n->serial), "SN-%06llX",
                 (unsigned long long)(rng_next(&s->rng) & 0xffffff));
        n->phase = rng_unit(&s->rng) * 2 * M_PI;
        n->state = (int)(rng_next(&s->rng) % (n->kind->type == K_MODE ? N_MODES : 2));
        n->tmpl = make_template(n, short_meta);
        if (!n->tmpl) {
            s->n_nodes = i + 1;
            sim_close(s);
            return tp_error_set(err, TP_NOMEM, "out of memory");
        }
    }
    *out = s;
    return TP_OK;
}

/* Writes v with two decimals ("-12.30"); returns the length. */
static size_t fmt_fixed2(char *o, double v)
{
    long long x = llround(v * 100.0);
    char tmp[24];
    size_t n = 0, len = 0;
    unsigned long long u = x < 0 ? (unsigned long long)-x : (unsigned long long)x;
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
    tmp[n++] = '.';
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0)
        o[len++] = '-';
    while (n)
        o[len++] = tmp[--n];
    return len;
}

static size_t fmt_u64(char *o, uint64_t u)
{
    char tmp[24];
    size_t n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        o[len++] = tmp[--n];
    o[len] = '\0';
    return len;
}

/* RFC 3339 UTC with milliseconds; the seconds part is cached. */
static size_t fmt_rfc3339(struct sim *s, char *o, int64_t ms)
{
    int64_t sec = ms / 1000;
    if (sec != s->ts_sec) {
        struct tm tm;
        time_t t = (time_t)sec;
        gmtime_r(&t, &tm);
        strftime(s->ts_prefix, sizeof(s->ts_prefix), "%Y-%m-%dT%H:%M:%S", &tm);
        s->ts_sec = sec;
    }
    int frac = (int)(ms % 1000);
    memcpy(o, s->ts_prefix, 19);
    o[19] = '.';
    o[20] = (char)('0' + frac / 100);
    o[21] = (char)('0' + frac / 10 % 10);
    o[22] = (char)('0' + frac % 10);
    o[23] = 'Z';
    o[24] = '\0';
    return 24;
}

static struct tp_msg *make_msg(struct sim *s, uint64_t k, int64_t t_ms)
{
    struct node *n = &s->nodes[k % s->n_nodes];
    char payload[48];
    size_t plen;
    int json = 1;
    double u = rng_unit(&s->rng);
    switch (n->kind->type) {
    case K_NUMBER: {
        double t = (double)(t_ms - FIXED_EPOCH_MS) / 1000.0;
        double v = n->kind->base + n->kind->amp * sin(2 * M_PI * t / n->kind->period_s + n->phase) +
                   n->kind->noise * (2 * u - 1);
        plen = fmt_fixed2(payload, v);
        break;
    }
    case K_BOOL:
        if (u < 0.02)
            n->state = !n->state;
        plen = n->state ? 4 : 5;
        memcpy(payload, n->state ? "true" : "false", plen);
        break;
    case K_MODE:
        if (u < 0.01)
            n->state = (int)((unsigned)(u * 1e4) % N_MODES);
        plen = strlen(modes[n->state]);
        memcpy(payload, modes[n->state], plen);
        json = 0;
        break;
    default:
        plen = strlen(n->serial);
        memcpy(payload, n->serial, plen);
        json = 0;
    }
    char ts[40], ms[24];
    size_t tslen = fmt_rfc3339(s, ts, t_ms);
    size_t mslen = fmt_u64(ms, (uint64_t)t_ms);

    /* the template holds every key in order with same-length placeholder
     * values, so the two timestamps are overwritten in place */
    struct tp_msg *m = tp_msg_clone(n->tmpl);
    if (!m || tp_msg_set_payload(m, payload, plen))
        goto fail;
    m->flags |= json ? TP_MSG_PAYLOAD_JSON : TP_MSG_PAYLOAD_NOTJSON;
    if (tp_msg_meta_set(m, "opcua_source_timestamp", 22, ts, tslen) ||
        (!s->short_meta && tp_msg_meta_set(m, "opcua_server_timestamp", 22, ts, tslen)) ||
        tp_msg_meta_set(m, "timestamp_ms", 12, ms, mslen))
        goto fail;
    return m;
fail:
    tp_msg_free(m);
    return NULL;
}

/* Sleeps until the monotonic time due_ns; 1 when a stop request came first. */
static int sleep_until(struct sim *s, int64_t due_ns)
{
    for (;;) {
        if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
            return 1;
        int64_t rem = due_ns - tp_mono_ns();
        if (rem <= 0)
            return 0;
        if (rem > 2000000) { /* long waits: a poll that a stop request interrupts */
            struct pollfd pfd = {s->wake_fd, POLLIN, 0};
            poll(&pfd, 1, (int)((rem - 1000000) / 1000000));
            continue;
        }
        struct timespec ts = {(time_t)(due_ns / 1000000000LL), (long)(due_ns % 1000000000LL)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

static int sim_read(void *in, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                    struct tp_error *err)
{
    struct sim *s = in;
    (void)drops;
    if (!s->started) {
        s->start_ns = tp_mono_ns();
        s->started = 1;
    }
    int64_t now_ms = 0;
    for (size_t got = 0; got < max; got++) {
        if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) || (s->count && s->next >= s->count))
            return TP_EOF;
        uint64_t k = s->next;
        if (s->rate > 0) {
            int64_t due = s->start_ns + (int64_t)((double)k * 1e9 / s->rate);
            if (due > tp_mono_ns()) {
                if (got > 0)
                    return TP_OK; /* hand over what is due now */
                if (sleep_until(s, due))
                    return TP_EOF;
            }
        }
        int64_t t_ms;
        if (s->fixed) {
            t_ms = FIXED_EPOCH_MS + (int64_t)k;
        } else {
            if (s->rate > 0 || (got & 63) == 0)
                now_ms = clock_ns(CLOCK_REALTIME) / 1000000;
            t_ms = now_ms;
        }
        struct tp_msg *m = make_msg(s, k, t_ms);
        if (!m || tp_batch_push(batch, m))
            return tp_error_set(err, TP_NOMEM, "out of memory");
        s->next++;
    }
    if (s->count && s->next >= s->count)
        return TP_EOF;
    return TP_OK;
}

static void sim_stop(void *in)
{
    struct sim *s = in;
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof(one)) < 0) {
        /* counter saturated: a wake-up is already pending */
    }
}

static void sim_close(void *in)
{
    struct sim *s = in;
    if (!s)
        return;
    close(s->wake_fd);
    for (uint64_t i = 0; i < s->n_nodes; i++)
        tp_msg_free(s->nodes[i].tmpl);
    free(s->nodes);
    free(s);
}

const struct tp_input_plugin tp_input_simulator = {
    .name = "simulator",
    .options = sim_options,
    .config_size = sizeof(struct sim_config),
    .open = sim_open,
    .read = sim_read,
    .ack = NULL,
    .stop = sim_stop,
    .close = sim_close,
};

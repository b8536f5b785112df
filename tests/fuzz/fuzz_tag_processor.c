/* Fuzz target for the JS bridge through the tag_processor plugin: one fixed
 * config (defaults, conditions, advancedProcessing whose behaviour the message
 * selects, small limits) is created once; each input is one message. Input:
 * first line = payload bytes, every further line = one metadata entry
 * "key=value" (a line without '=' is a key with an empty value). Checks: every
 * message comes out or is dropped with a valid reason; every output has a UNS
 * topic and a {"timestamp_ms":T,"value":V} JSON payload; `in` is not modified.
 * TAGPROC_FUZZ_VERBOSE=1 prints outputs and drops, TAGPROC_FUZZ_LOG=<level> logs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_plugins.h"
#include "config/config.h"
#include "core/json.h"
#include "core/log.h"
#include "core/plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char config_yaml[] =
    "tag_processor:\n"
    "  defaults: |\n"
    "    msg.meta.location_path = msg.meta.location_path ?? \"enterprise.plant1.area.line.cell\";\n"
    "    msg.meta.data_contract = msg.meta.data_contract || \"_historian\";\n"
    "    msg.meta.tag_name = msg.meta.opcua_tag_name || msg.meta.tag_name;\n"
    "    return msg;\n"
    "  conditions:\n"
    "    - if: msg.meta.opcua_node_id === \"ns=1;i=2245\"  // the x axis\n"
    "      then: |\n"
    "        msg.meta.virtual_path = \"axis.x.position\";\n"
    "        return msg;\n"
    "    - if: typeof msg.payload === \"number\" && msg.payload < 0\n"
    "      then: return null;\n"
    "    - if: msg.meta.mode === \"fanout\"\n"
    "      then: |\n"
    "        const n = Math.min(Number(msg.meta.n) || 2, 6);\n"
    "        const out = [];\n"
    "        for (let i = 0; i < n; i++)\n"
    "          out.push(i === 1 ? null : {payload: msg.payload,\n"
    "                                     meta: {...msg.meta, tag_name: "
    "`${msg.meta.tag_name}_${i}`}});\n"
    "        return out;\n"
    "    - if: msg.meta.mode === \"throw\"\n"
    "      then: throw new Error(\"boom \" + msg.meta.tag_name);\n"
    "    - if: msg.meta.mode === \"cache\"\n"
    "      then: |\n"
    "        const k = \"k\" + msg.meta.tag_name;\n"
    "        const prev = cache.get(k);\n"
    "        cache.set(k, {p: msg.payload ?? null, c: (prev?.c ?? 0) + 1});\n"
    "        msg.meta.count = cache.get(k).c;\n"
    "        if (msg.meta.n === \"del\") cache.delete(k);\n"
    "        msg.meta.seen = cache.exists(k);\n"
    "        return msg;\n"
    "    - if: msg.meta.mode === \"replace\"\n"
    "      then: |\n"
    "        return {payload: msg.meta.n, meta: {location_path: msg.meta.location_path,\n"
    "                data_contract: msg.meta.data_contract, tag_name: msg.payload}};\n"
    "  advancedProcessing: |\n"
    "    switch (msg.meta.op) {\n"
    "    case \"double\": msg.payload = parseFloat(msg.payload) * 2; break;\n"
    "    case \"string\": msg.payload = String(msg.payload); break;\n"
    "    case \"object\": msg.payload = {v: msg.payload, m: msg.meta, a: [1, \"x\", null]}; "
    "break;\n"
    "    case \"array\": return [msg, null, {payload: [msg.payload], meta: msg.meta}];\n"
    "    case \"empty\": return [];\n"
    "    case \"drop\": return undefined;\n"
    "    case \"bad\": return 42;\n"
    "    case \"badarray\": return [msg, 7];\n"
    "    case \"json\": msg.payload = JSON.parse(msg.meta.n); break;\n"
    "    case \"meta\":\n"
    "      msg.meta.obj = {a: [1, 2], s: msg.payload}; msg.meta.nul = null;\n"
    "      msg.meta.big = 1e21; msg.meta.b = true; msg.meta.u = undefined; break;\n"
    "    case \"nometa\": return {payload: msg.payload};\n"
    "    case \"nopayload\": return {meta: msg.meta};\n"
    "    case \"regex\": msg.meta.match = /^(a+)+$/.test(String(msg.payload)); break;\n"
    "    case \"loop\": for (;;) {}\n"
    "    case \"alloc\": { const a = []; for (;;) a.push(new Array(100000).fill(msg.payload)); }\n"
    "    case \"recurse\": { const f = (x) => f(x + 1) + 1; f(0); break; }\n"
    "    case \"log\": console.log(\"payload\", msg.payload, msg.meta); break;\n"
    "    case \"undeclared\": undeclaredVariable = 1; break;\n"
    "    }\n"
    "    return msg;\n"
    "  timeout_ms: 20\n"
    "  memory_limit_mb: 16\n"
    "  cache_max_entries: 16\n";

static struct {
    const struct tp_processor_plugin *plugin;
    struct tp_config *cfg;
    void *config, *proc, *worker;
    int verbose; /* TAGPROC_FUZZ_VERBOSE set: print every output and drop */
} fz;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_tag_processor: %s\n", what);
    abort();
}

static void teardown(void)
{
    if (fz.worker)
        fz.plugin->worker_free(fz.worker);
    if (fz.proc)
        fz.plugin->destroy(fz.proc);
    if (fz.config) {
        tp_options_free(fz.plugin->options, fz.config);
        free(fz.config);
    }
    tp_config_free(fz.cfg);
    memset(&fz, 0, sizeof(fz));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *lvl = getenv("TAGPROC_FUZZ_LOG");
    int level = lvl ? tp_log_level_parse(lvl) : -1;
    tp_log_set_level(level >= 0 ? (enum tp_log_level)level : TP_LOG_OFF);
    fz.verbose = getenv("TAGPROC_FUZZ_VERBOSE") != NULL;

    struct tp_error err;
    memset(&err, 0, sizeof(err));
    char text[1024];
    tp_plugins_use(&tp_builtin_plugins);
    fz.plugin = tp_processor_find("tag_processor");
    if (!fz.plugin)
        die("no tag_processor plugin");
    if (tp_config_load_string("fuzz_tag_processor.yaml", config_yaml, sizeof(config_yaml) - 1,
                              &fz.cfg, &err) != 0)
        goto fail;
    fz.config = calloc(1, fz.plugin->config_size);
    if (!fz.config)
        die("out of memory");
    if (tp_options_parse(fz.plugin->options, tp_node_get(fz.cfg->root, "tag_processor"),
                         "tag_processor", fz.config, &err) != 0)
        goto fail;
    struct tp_proc_info info = {0, "pipeline.processors[0].tag_processor", 1};
    if (fz.plugin->create(fz.config, &info, &fz.proc, &err) != 0)
        goto fail;
    if (fz.plugin->worker_new(fz.proc, 0, &fz.worker, &err) != 0)
        goto fail;
    atexit(teardown);
    return 0;
fail:
    tp_error_format(&err, text, sizeof(text));
    fprintf(stderr, "fuzz_tag_processor: set-up failed: %s\n", text);
    abort();
}

/* One input -> one message (see the file comment for the format). */
static struct tp_msg *make_msg(const uint8_t *data, size_t size)
{
    struct tp_msg *m = tp_msg_new();
    if (!m)
        die("out of memory");
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    const char *stop = nl ? nl : end;
    if (tp_msg_set_payload(m, p, (size_t)(stop - p)) != 0)
        die("out of memory");
    m->seq = 7;
    m->input_line = 1;
    p = nl ? nl + 1 : end;
    for (int n = 0; p < end && n < 64; n++) {
        nl = memchr(p, '\n', (size_t)(end - p));
        stop = nl ? nl : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop, *val = eq ? eq + 1 : stop;
        if (tp_msg_meta_set(m, p, (size_t)(kend - p), val, (size_t)(stop - val)) != 0)
            die("out of memory");
        p = nl ? nl + 1 : end;
    }
    return m;
}

static int topic_ok(const char *t, size_t n)
{
    if (n < 8 || memcmp(t, "umh.v1.", 7) != 0 || t[n - 1] == '.' || strstr(t, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* {"timestamp_ms":<integer>,"value":<JSON>} with exactly that key order. */
static int payload_ok(const char *p, size_t n)
{
    static const char head[] = "{\"timestamp_ms\":", mid[] = ",\"value\":";
    if (!tp_json_is_valid(p, n) || n < sizeof(head) || memcmp(p, head, sizeof(head) - 1) != 0)
        return 0;
    size_t i = sizeof(head) - 1;
    if (i < n && p[i] == '-')
        i++;
    size_t digits = i;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    if (i == digits || n - i < sizeof(mid) || memcmp(p + i, mid, sizeof(mid) - 1) != 0)
        return 0;
    i += sizeof(mid) - 1;
    return p[n - 1] == '}' && tp_json_is_valid(p + i, n - 1 - i);
}

static void check_output(const struct tp_msg *o)
{
    size_t ulen, tlen;
    const char *umh = tp_msg_meta_get(o, "umh_topic", &ulen);
    const char *topic = tp_msg_meta_get(o, "topic", &tlen);
    if (!umh || !topic || ulen != tlen || memcmp(umh, topic, ulen) != 0)
        die("output without umh_topic = topic");
    if (!topic_ok(umh, ulen)) {
        fprintf(stderr, "topic: %.*s\n", (int)ulen, umh);
        die("output topic breaks the UNS rules");
    }
    if (!o->payload || o->payload[o->payload_len] != '\0' ||
        !payload_ok(o->payload, o->payload_len)) {
        fprintf(stderr, "payload: %.*s\n", (int)o->payload_len, o->payload ? o->payload : "");
        die("output payload is not {\"timestamp_ms\":T,\"value\":V}");
    }
    for (uint32_t i = 0; i < o->n_meta; i++)
        if (tp_msg_meta_key(o, i)[o->meta[i].key_len] != '\0' ||
            tp_msg_meta_val(o, i)[o->meta[i].val_len] != '\0')
            die("metadata not NUL-terminated");
}

static void check_drop(const struct tp_drop *d)
{
    if ((unsigned)d->reason >= TP_DROP_REASON_COUNT || d->reason == TP_DROP_INVALID_INPUT)
        die("drop with an invalid reason");
    if (!tp_drop_reason_name(d->reason))
        die("drop reason without a name");
    if (!memchr(d->stage, '\0', sizeof(d->stage)) || !d->stage[0])
        die("drop without a stage");
    if (!memchr(d->error, '\0', sizeof(d->error)))
        die("drop error not NUL-terminated");
    if (d->reason != TP_DROP_FILTERED && !d->error[0]) {
        fprintf(stderr, "reason %s stage %s\n", tp_drop_reason_name(d->reason), d->stage);
        die("a non-filtered drop without an error text");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz.worker)
        LLVMFuzzerInitialize(NULL, NULL);
    struct tp_msg *in = make_msg(data, size);
    struct tp_msg *copy = tp_msg_clone(in);
    if (!copy)
        die("out of memory");
    struct tp_batch out;
    struct tp_drops drops;
    tp_batch_init(&out);
    tp_drops_init(&drops);
    if (fz.plugin->process(fz.worker, in, &out, &drops) != 0)
        die("process failed for a single message");
    if (out.len == 0 && drops.n == 0)
        die("a message neither came out nor was dropped");
    for (size_t i = 0; i < out.len; i++) {
        check_output(out.msgs[i]);
        if (fz.verbose)
            fprintf(stderr, "  out %s %s\n", tp_msg_meta_get(out.msgs[i], "umh_topic", NULL),
                    out.msgs[i]->payload);
    }
    for (size_t i = 0; i < drops.n; i++) {
        check_drop(&drops.v[i]);
        if (fz.verbose)
            fprintf(stderr, "  drop %s at %s: %s\n", tp_drop_reason_name(drops.v[i].reason),
                    drops.v[i].stage, drops.v[i].error);
    }
    /* `in` stays the caller's and is not modified */
    if (in->payload_len != copy->payload_len ||
        memcmp(in->payload, copy->payload, in->payload_len) != 0 || in->n_meta != copy->n_meta ||
        in->strs_len != copy->strs_len ||
        (in->strs_len && memcmp(in->strs, copy->strs, in->strs_len) != 0))
        die("process modified its input message");
    tp_batch_free(&out);
    tp_drops_free(&drops);
    tp_msg_free(in);
    tp_msg_free(copy);
    return 0;
}

/* `tagproc bench`: runs a workload through the real pipeline (simulator or a
 * JSONL file -> processors -> drop output) and reports messages/s, CPU µs per
 * message, compilations and VM creations per batch of nodes, peak RSS and
 * memory per worker. Workload configs are generated here as YAML text so the
 * very same code path as `tagproc -c` is measured. */
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "pipeline/chain.h"
#include "core/log.h"
#include "pipeline/pipeline.h"
#include "core/metrics.h"
#include "core/stats.h"
#include "js/vm.h"

struct bench_args {
    const char *workload; /* seed | production | mapping | passthrough | marshal */
    const char *mode;     /* pooled | naive */
    const char *config;   /* user config (-c) */
    const char *input;    /* user JSONL input (--input) */
    long messages;
    int threads;
    int json;
};

struct bench_result {
    double seconds, cpu_seconds;
    uint64_t received, processed, dropped, compilations, vms;
    long peak_rss_kb;
    int nodes;
};

/* Appends the tag_processor of a built-in workload: `nodes` simulated nodes,
 * `conds` conditions; mapping = one condition per node setting tag_name too. */
static void workload_processors(struct tp_buf *y, int conds, int mapping)
{
    tp_buf_puts(y, "pipeline:\n  processors:\n    - tag_processor:\n"
                   "        defaults: |\n"
                   "          msg.meta.location_path = "
                   "\"enterprise.plant1.machiningArea.cnc-line.cnc5.plc123\";\n"
                   "          msg.meta.data_contract = \"_historian\";\n"
                   "          msg.meta.tag_name = msg.meta.opcua_tag_name;\n"
                   "          return msg;\n"
                   "        conditions:\n");
    for (int i = 0; i < conds; i++) {
        tp_buf_printf(y,
                      "          - if: msg.meta.opcua_node_id === \"ns=1;i=%d\"\n"
                      "            then: |\n"
                      "              msg.meta.virtual_path = \"axis.n%d\";\n",
                      2200 + i, i);
        if (mapping)
            tp_buf_printf(y, "              msg.meta.tag_name = \"tag_%d\";\n", i);
        tp_buf_puts(y, "              return msg;\n");
    }
    tp_buf_puts(y,
                "        advancedProcessing: |\n"
                "          if (typeof msg.payload === \"number\") msg.payload = msg.payload * 2;\n"
                "          return msg;\n");
}

/* Builds the YAML of a built-in workload; returns its node count or -1. */
static int workload_yaml(const char *name, struct tp_buf *y)
{
    if (strcmp(name, "seed") == 0) {
        workload_processors(y, 3, 0);
        return 42;
    }
    if (strcmp(name, "production") == 0) {
        workload_processors(y, 5, 0);
        return 1000;
    }
    if (strcmp(name, "mapping") == 0) {
        workload_processors(y, 1000, 1);
        return 1000;
    }
    if (strcmp(name, "passthrough") == 0) { /* pipeline and I/O cost only */
        tp_buf_puts(y, "pipeline:\n  processors: []\n");
        return 42;
    }
    if (strcmp(name, "minimal") == 0) { /* marshalling + UNS output, almost no JS */
        tp_buf_puts(y, "pipeline:\n  processors:\n    - tag_processor:\n"
                       "        defaults: |\n"
                       "          msg.meta.location_path = \"enterprise.plant1\";\n"
                       "          msg.meta.data_contract = \"_historian\";\n"
                       "          msg.meta.tag_name = msg.meta.opcua_tag_name;\n"
                       "          return msg;\n");
        return 42;
    }
    if (strcmp(name, "marshal") == 0) { /* msg in and out of JS, nothing else */
        tp_buf_puts(y, "pipeline:\n  processors:\n    - nodered_js:\n        code: return msg;\n");
        return 42;
    }
    return -1;
}

static double now_s(void)
{
    return (double)tp_mono_ns() / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int load_yaml(const char *name, const char *text, struct tp_config **cfg)
{
    struct tp_error err = {0};
    if (tp_config_load_string(name, text, strlen(text), cfg, &err)) {
        char msg[1024];
        tp_error_format(&err, msg, sizeof(msg));
        fprintf(stderr, "tagproc bench: %s\n", msg);
        return -1;
    }
    return 0;
}

static int run_once(const struct bench_args *a, struct bench_result *r)
{
    struct tp_buf y, io;
    tp_buf_init(&y);
    tp_buf_init(&io);
    struct tp_config *cfg = NULL, *io_cfg = NULL;
    struct tp_pipeline *p = NULL;
    struct tp_error err = {0};
    int rc = -1;

    r->nodes = 42;
    if (a->config) {
        if (tp_config_load_file(a->config, &cfg, &err))
            goto report;
    } else {
        r->nodes = workload_yaml(a->workload, &y);
        if (r->nodes < 0) {
            fprintf(stderr, "tagproc bench: unknown workload \"%s\"\n", a->workload);
            goto done;
        }
        if (load_yaml("<bench workload>", y.data, &cfg))
            goto done;
    }
    if (a->input)
        tp_buf_printf(&io, "input:\n  file:\n    path: \"%s\"\n", a->input);
    else
        tp_buf_printf(&io,
                      "input:\n  simulator:\n    nodes: %d\n    count: %ld\n"
                      "    timestamps: fixed\n    metadata: short\n",
                      r->nodes, a->messages);
    tp_buf_puts(&io, "output:\n  drop: {}\n");
    if (load_yaml("<bench io>", io.data, &io_cfg))
        goto done;

    tp_js_set_naive(strcmp(a->mode, "naive") == 0);
    struct tp_pipeline_opts opts = {
        .input = tp_node_get(io_cfg->root, "input"),
        .output = tp_node_get(io_cfg->root, "output"),
        .threads = a->threads,
    };
    double t0 = now_s(), c0 = cpu_s();
    if (tp_pipeline_new(cfg, &opts, &p, &err))
        goto report;
    if (tp_pipeline_run(p, &err))
        goto report;
    r->seconds = now_s() - t0;
    r->cpu_seconds = cpu_s() - c0;
    struct tp_stats counts; /* this run's pipeline's */
    tp_stats_snapshot(tp_metrics_stats(tp_pipeline_metrics(p)), &counts);
    r->received = counts.received;
    r->processed = counts.processed;
    r->dropped = 0;
    for (int i = 0; i < TP_DROP_REASON_COUNT; i++)
        if (i != TP_DROP_FILTERED)
            r->dropped += counts.dropped[i];
    r->compilations = counts.programs_compiled;
    r->vms = counts.vms_created;
    r->peak_rss_kb = peak_rss_kb();
    rc = 0;
    goto done;
report : {
    char msg[1024];
    tp_error_format(&err, msg, sizeof(msg));
    fprintf(stderr, "tagproc bench: %s\n", msg);
}
done:
    tp_pipeline_free(p);
    tp_config_free(cfg);
    tp_config_free(io_cfg);
    tp_buf_free(&y);
    tp_buf_free(&io);
    return rc;
}

/* Resident set size now, in KB (from /proc/self/statm), or -1. */
static long resident_kb(void)
{
    long size = 0, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(f);
    }
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Memory one more worker costs (its VMs with every stage loaded), from RSS. */
static long memory_per_worker_kb(const struct bench_args *a)
{
    struct tp_buf y;
    tp_buf_init(&y);
    struct tp_config *cfg = NULL;
    struct tp_chain *chain = NULL;
    struct tp_error err = {0};
    long per = -1;
    enum { N = 16 };
    struct tp_chain_worker w[N];
    int made = 0;
    if (a->config ? tp_config_load_file(a->config, &cfg, &err) != 0
                  : (workload_yaml(a->workload, &y) < 0 ||
                     load_yaml("<bench workload>", y.data, &cfg) != 0))
        goto done;
    tp_js_set_naive(0);
    const struct tp_node *pl = tp_node_get(cfg->root, "pipeline");
    if (tp_chain_new(tp_node_get(pl, "processors"), "pipeline.processors", N, NULL, &chain, &err))
        goto done;
    long kb0 = resident_kb();
    for (; made < N; made++)
        if (tp_chain_worker_init(&w[made], chain, made, &err))
            break;
    if (made > 0 && kb0 >= 0)
        per = (resident_kb() - kb0) / made;
    for (int i = 0; i < made; i++)
        tp_chain_worker_free(&w[i]);
done:
    tp_chain_free(chain);
    tp_config_free(cfg);
    tp_buf_free(&y);
    return per;
}

int tp_bench_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"workload", required_argument, NULL, 'w'},
        {"mode", required_argument, NULL, 'm'},
        {"messages", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"input", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct bench_args a = {"seed", "pooled", NULL, NULL, 1000000, 1, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'w':
            a.workload = optarg;
            break;
        case 'm':
            a.mode = optarg;
            break;
        case 'n':
            a.messages = atol(optarg);
            break;
        case 't':
            a.threads = atoi(optarg);
            break;
        case 'j':
            a.json = 1;
            break;
        case 'c':
            a.config = optarg;
            break;
        case 'i':
            a.input = optarg;
            break;
        case 'h':
            tp_cli_print_help(stdout, tp_cli_find("bench"));
            return 0;
        default:
            tp_cli_print_help(stderr, tp_cli_find("bench"));
            return 2;
        }
    }
    if (strcmp(a.mode, "pooled") && strcmp(a.mode, "naive")) {
        fprintf(stderr, "tagproc bench: --mode must be pooled or naive\n");
        return 2;
    }
    if (a.messages <= 0 || a.threads <= 0) {
        fprintf(stderr, "tagproc bench: --messages and --threads must be positive\n");
        return 2;
    }
    if (tp_log_get_level() == TP_LOG_INFO)
        tp_log_set_level(TP_LOG_ERROR); /* drops of user configs must not flood the report */
    struct bench_result r = {0};
    if (run_once(&a, &r))
        return 1;
    long per_worker = memory_per_worker_kb(&a);
    double msgs = (double)(r.received ? r.received : 1);
    double batches = msgs / r.nodes;
    const char *wl = a.config ? a.config : a.workload;
    if (a.json) { /* only the JSON object: the output is for programs */
        printf("{\"workload\":\"%s\",\"mode\":\"%s\",\"threads\":%d,\"messages\":%llu,"
               "\"processed\":%llu,\"dropped\":%llu,\"seconds\":%.6f,\"msgs_per_sec\":%.0f,"
               "\"cpu_us_per_msg\":%.4f,\"compilations\":%llu,\"vms_created\":%llu,"
               "\"compilations_per_batch\":%.3f,\"vms_per_batch\":%.3f,\"peak_rss_kb\":%ld,"
               "\"memory_per_worker_kb\":%ld}\n",
               wl, a.mode, a.threads, (unsigned long long)r.received,
               (unsigned long long)r.processed, (unsigned long long)r.dropped, r.seconds,
               msgs / r.seconds, r.cpu_seconds * 1e6 / msgs, (unsigned long long)r.compilations,
               (unsigned long long)r.vms, (double)r.compilations / batches, (double)r.vms / batches,
               r.peak_rss_kb, per_worker);
        return 0;
    }
    printf("workload          %s\n", wl);
    printf("mode              %s\n", a.mode);
    printf("threads           %d\n", a.threads);
    printf("messages          %llu in, %llu out, %llu dropped (not filtered)\n",
           (unsigned long long)r.received, (unsigned long long)r.processed,
           (unsigned long long)r.dropped);
    printf("msgs/s            %.0f\n", msgs / r.seconds);
    printf("cpu us/msg        %.3f\n", r.cpu_seconds * 1e6 / msgs);
    printf("compilations      %llu (%.2f per batch of %d)\n", (unsigned long long)r.compilations,
           (double)r.compilations / batches, r.nodes);
    printf("vms created       %llu (%.2f per batch of %d)\n", (unsigned long long)r.vms,
           (double)r.vms / batches, r.nodes);
    printf("peak rss          %ld KB\n", r.peak_rss_kb);
    printf("memory per worker %ld KB\n", per_worker);
    return 0;
}

/* Command-line interface. `tagproc -c CONFIG` (or `tagproc run -c CONFIG`)
 * runs a pipeline; signals are handled by a dedicated thread that asks the
 * pipeline to drain, so SIGINT/SIGTERM end with exit code 0 and nothing lost. */
#include "cli.h"

#include "bench.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/log.h"
#include "core/pipeline.h"
#include "core/stats.h"
#include "ops/lint.h"
#include "ops/ruletest.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tagproc [run] -c CONFIG.yaml [options]\n"
            "       tagproc bench [--workload W] [--mode pooled|naive] ... (tagproc bench --help)\n"
            "\n"
            "Runs the pipeline described by CONFIG.yaml (input -> processors -> output).\n"
            "\n"
            "options:\n"
            "  -c, --config FILE     pipeline configuration (YAML)\n"
            "      --stats FILE      on exit, write counters as JSON:\n"
            "                        {\"received\":N,\"processed\":N,\"dropped\":{...}}\n"
            "      --log-level LEVEL trace, debug, info, warn, error or off (default info)\n"
            "  -h, --help            this help\n"
            "  -V, --version         print the version\n"
            "\n"
            "Exit status: 0 when the input ended or SIGINT/SIGTERM drained the pipeline;\n"
            "1 on a fatal error; 2 on a configuration error.\n");
}

struct signal_ctx {
    struct tp_pipeline *pipeline;
    sigset_t set;
};

static void *signal_main(void *arg)
{
    struct signal_ctx *sc = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&sc->set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) /* the pipeline finished by itself */
            return NULL;
        tp_log(TP_LOG_INFO, "received %s: stopping input, draining", strsignal(sig));
        tp_pipeline_stop(sc->pipeline);
    }
}

static int run_pipeline(const char *config_path, const char *stats_path)
{
    struct tp_error err = {0};
    struct tp_config *cfg = NULL;
    struct tp_pipeline *p = NULL;
    char text[1024];
    int code = 0;

    if (tp_config_load_file(config_path, &cfg, &err)) {
        tp_error_format(&err, text, sizeof(text));
        fprintf(stderr, "tagproc: %s\n", text);
        return 2;
    }
    /* The lint error checks (syntax errors come from compiling, below). */
    struct tp_lint_report rep = {0};
    tp_lint_config(cfg, 0, &rep);
    for (size_t i = 0; i < rep.n; i++)
        if (rep.v[i].severity == TP_LINT_ERROR)
            fprintf(stderr, "tagproc: %s\n", rep.v[i].text);
    int lint_errors = rep.errors;
    tp_lint_report_free(&rep);
    if (lint_errors) {
        tp_config_free(cfg);
        return 2;
    }
    /* Signals go to the signal thread only: block them before any thread starts. */
    struct signal_ctx sc;
    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGINT);
    sigaddset(&sc.set, SIGTERM);
    sigaddset(&sc.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (tp_pipeline_new(cfg, NULL, &p, &err)) {
        tp_error_format(&err, text, sizeof(text));
        fprintf(stderr, "tagproc: %s\n", text);
        tp_config_free(cfg);
        return 2;
    }
    sc.pipeline = p;
    pthread_t sig_thread;
    int sig_started = pthread_create(&sig_thread, NULL, signal_main, &sc) == 0;

    if (tp_pipeline_run(p, &err)) {
        tp_error_format(&err, text, sizeof(text));
        fprintf(stderr, "tagproc: %s\n", text);
        code = 1;
    }
    if (sig_started) {
        pthread_kill(sig_thread, SIGUSR1);
        pthread_join(sig_thread, NULL);
    }
    tp_pipeline_free(p);
    tp_config_free(cfg);
    if (stats_path && tp_stats_write_file(stats_path)) {
        fprintf(stderr, "tagproc: cannot write stats file %s\n", stats_path);
        code = code ? code : 1;
    }
    return code;
}

int tp_cli_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},    {"stats", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *stats = NULL;
    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        return tp_bench_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "lint") == 0)
        return tp_lint_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "test") == 0)
        return tp_ruletest_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "run") == 0) {
        argv++;
        argc--;
    }
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 's':
            stats = optarg;
            break;
        case 'l': {
            int level = tp_log_level_parse(optarg);
            if (level < 0) {
                fprintf(stderr, "tagproc: --log-level: unknown level \"%s\"\n", optarg);
                return 2;
            }
            tp_log_set_level((enum tp_log_level)level);
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("tagproc %s (QuickJS 2021-03-27)\n", TP_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tagproc: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!config) {
        fprintf(stderr, "tagproc: missing -c CONFIG\n");
        usage(stderr);
        return 2;
    }
    return run_pipeline(config, stats);
}

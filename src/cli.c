/* Command-line interface. `tagproc -c CONFIG` (or `tagproc run -c CONFIG`)
 * runs a pipeline; signals are handled by a dedicated thread that asks the
 * pipeline to drain, so SIGINT/SIGTERM end with exit code 0 and nothing lost. */
#include "cli.h"

#include "bench.h"

#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/plugin.h"
#include "core/pipeline.h"
#include "core/stats.h"
#include "ops/lint.h"
#include "ops/metrics.h"
#include "ops/ruletest.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tagproc [run] -c CONFIG.yaml [options]\n"
            "       tagproc bench [--workload W] [--mode pooled|naive] ... (tagproc bench --help)\n"
            "       tagproc lint [--strict] CONFIG.yaml...   (static checks of the rules)\n"
            "       tagproc test [-v] FILE.test.yaml...     (rule unit tests)\n"
            "\n"
            "Runs the pipeline described by CONFIG.yaml (input -> processors -> output).\n"
            "\n"
            "options:\n"
            "  -c, --config FILE     pipeline configuration (YAML)\n"
            "      --stats FILE      on exit, write counters as JSON:\n"
            "                        {\"received\":N,\"processed\":N,\"dropped\":{...}}\n"
            "      --log-level LEVEL trace, debug, info, warn, error or off (default info)\n"
            "      --watch           reload the processors when CONFIG changes (as SIGHUP)\n"
            "  -h, --help            this help\n"
            "  -V, --version         print the version\n"
            "\n"
            "SIGHUP reloads the processors from CONFIG (after lint; a bad config is\n"
            "rejected and the running one stays).\n"
            "\n"
            "Exit status: 0 when the input ended or SIGINT/SIGTERM drained the pipeline;\n"
            "1 on a fatal error; 2 on a configuration error.\n");
}

struct signal_ctx {
    struct tp_pipeline *pipeline;
    const char *config_path;
    sigset_t set;
    pthread_mutex_t reload_lock; /* SIGHUP and --watch reload one at a time */
    int stop_fd;                 /* eventfd: ends the watch thread */
};

/* Reads, lints and publishes CONFIG; on any problem the running chain stays. */
static void reload_config(struct signal_ctx *sc, const char *why)
{
    struct tp_error err = {0};
    struct tp_config *cfg = NULL;
    char text[1024];
    pthread_mutex_lock(&sc->reload_lock);
    tp_log(TP_LOG_INFO, "reload (%s): reading %s", why, sc->config_path);
    if (tp_config_load_file(sc->config_path, &cfg, &err) != 0) {
        tp_error_format(&err, text, sizeof(text));
        tp_log(TP_LOG_ERROR, "reload rejected, keeping the running configuration: %s", text);
        tp_metrics_reload(0);
        goto out;
    }
    struct tp_lint_report rep = {0};
    tp_lint_config(cfg, 0, &rep);
    for (size_t i = 0; i < rep.n; i++)
        if (rep.v[i].severity == TP_LINT_ERROR)
            tp_log(TP_LOG_ERROR, "reload rejected, keeping the running configuration: %s",
                   rep.v[i].text);
    int bad = rep.errors;
    tp_lint_report_free(&rep);
    if (bad) {
        tp_config_free(cfg);
        tp_metrics_reload(0);
        goto out;
    }
    if (tp_pipeline_reload(sc->pipeline, cfg, &err) != 0) { /* cfg taken */
        tp_error_format(&err, text, sizeof(text));
        tp_log(TP_LOG_ERROR, "reload rejected, keeping the running configuration: %s", text);
    }
out:
    pthread_mutex_unlock(&sc->reload_lock);
}

static void *signal_main(void *arg)
{
    struct signal_ctx *sc = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&sc->set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) /* the pipeline finished by itself */
            return NULL;
        if (sig == SIGHUP) {
            reload_config(sc, "SIGHUP");
            continue;
        }
        tp_log(TP_LOG_INFO, "received %s: stopping input, draining", strsignal(sig));
        tp_pipeline_stop(sc->pipeline);
    }
}

/* --watch: inotify on the config's directory (editors replace files); a
 * burst of events gives one reload once the directory is quiet for 100 ms. */
static void *watch_main(void *arg)
{
    struct signal_ctx *sc = arg;
    char *dup_dir = strdup(sc->config_path), *dup_base = strdup(sc->config_path);
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (!dup_dir || !dup_base || fd < 0 ||
        inotify_add_watch(fd, dirname(dup_dir), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
        tp_log(TP_LOG_ERROR, "--watch: cannot watch %s", sc->config_path);
        goto out;
    }
    const char *base = basename(dup_base);
    int pending = 0;
    for (;;) {
        struct pollfd pfd[2] = {{fd, POLLIN, 0}, {sc->stop_fd, POLLIN, 0}};
        int n = poll(pfd, 2, pending ? 100 : -1);
        if (n < 0)
            continue;
        if (pfd[1].revents)
            break;
        if (n == 0 && pending) {
            pending = 0;
            reload_config(sc, "config file changed");
            continue;
        }
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t len;
        while ((len = read(fd, buf, sizeof(buf))) > 0)
            for (char *q = buf; q < buf + len;) {
                const struct inotify_event *ev = (const struct inotify_event *)q;
                if (ev->len && strcmp(ev->name, base) == 0)
                    pending = 1;
                q += sizeof(*ev) + ev->len;
            }
    }
out:
    if (fd >= 0)
        close(fd);
    free(dup_dir);
    free(dup_base);
    return NULL;
}

static int run_pipeline(const char *config_path, const char *stats_path, int watch)
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
    /* The lint error checks, reported before start. They do not stop it: a
     * config written for the reference must run unchanged, and what they find
     * (e.g. a literal breaking the topic rules) is a per-message drop there
     * (SPEC 3.5). Syntax errors stop start-up when the processors compile. */
    struct tp_lint_report rep = {0};
    tp_lint_config(cfg, 0, &rep);
    for (size_t i = 0; i < rep.n; i++)
        if (rep.v[i].severity == TP_LINT_ERROR)
            tp_log(TP_LOG_WARN, "lint: %s", rep.v[i].text);
    tp_lint_report_free(&rep);
    /* Signals go to the signal thread only: block them before any thread starts. */
    struct signal_ctx sc = {.config_path = config_path, .stop_fd = -1};
    pthread_mutex_init(&sc.reload_lock, NULL);
    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGHUP);
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
    pthread_t watch_thread;
    int watch_started = 0;
    if (watch && (sc.stop_fd = eventfd(0, EFD_CLOEXEC)) >= 0)
        watch_started = pthread_create(&watch_thread, NULL, watch_main, &sc) == 0;

    if (tp_pipeline_run(p, &err)) {
        tp_error_format(&err, text, sizeof(text));
        fprintf(stderr, "tagproc: %s\n", text);
        code = 1;
    }
    if (watch_started) {
        uint64_t one = 1;
        if (write(sc.stop_fd, &one, sizeof(one)) != sizeof(one))
            tp_log(TP_LOG_WARN, "--watch: cannot stop the watch thread");
        pthread_join(watch_thread, NULL);
    }
    if (sc.stop_fd >= 0)
        close(sc.stop_fd);
    if (sig_started) {
        pthread_kill(sig_thread, SIGUSR1);
        pthread_join(sig_thread, NULL);
    }
    pthread_mutex_destroy(&sc.reload_lock);
    tp_pipeline_free(p);
    tp_config_free(cfg);
    if (stats_path && tp_stats_write_file(stats_path)) {
        fprintf(stderr, "tagproc: cannot write stats file %s\n", stats_path);
        code = code ? code : 1;
    }
    return code;
}

/* Hidden `tagproc config-doc`: docs/CONFIG.md, generated from the option
 * tables of the root and of every plugin (a test keeps the file current). */
static int config_doc(void)
{
    struct tp_buf b;
    tp_buf_init(&b);
    tp_buf_puts(&b, "# Configuration reference\n\n"
                    "Generated by `tagproc config-doc` from the option tables in the code; do "
                    "not edit by hand\n(`tagproc config-doc > docs/CONFIG.md`; a test fails "
                    "when this file is stale).\nBehaviour is specified in the SPEC; "
                    "operations (metrics, lint, rule tests, reload) in\n"
                    "[OPERATIONS.md](OPERATIONS.md).\n\n## Top level\n\n");
    int rc = tp_pipeline_options_markdown(&b);
    static const char *const kinds[] = {"input", "processor", "output"};
    for (int k = 0; rc == 0 && k < 3; k++) {
        tp_buf_printf(&b, "## %ss\n\n", kinds[k]);
        char names[512];
        snprintf(names, sizeof(names), "%s", tp_plugin_names(kinds[k]));
        for (char *save = NULL, *n = strtok_r(names, ", ", &save); n && rc == 0;
             n = strtok_r(NULL, ", ", &save)) {
            const struct tp_option *opts = k == 0   ? tp_input_find(n)->options
                                           : k == 1 ? tp_processor_find(n)->options
                                                    : tp_output_find(n)->options;
            char title[128];
            snprintf(title, sizeof(title), "%s.%s", k == 1 ? "processors[]" : kinds[k], n);
            rc = tp_options_markdown(opts, title, &b);
        }
    }
    if (rc == 0 && b.data)
        fputs(b.data, stdout);
    tp_buf_free(&b);
    return rc ? 1 : 0;
}

int tp_cli_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"stats", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"watch", no_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *stats = NULL;
    int watch = 0;
    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        return tp_bench_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "lint") == 0)
        return tp_lint_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "config-doc") == 0)
        return config_doc();
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
        case 'w':
            watch = 1;
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
    return run_pipeline(config, stats, watch);
}

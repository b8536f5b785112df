/* The sub-command table: the one place that documents each command. `--help`,
 * `tagproc help COMMAND`, the man page tagproc(1) (cli_man.c) and the bash
 * completion are printed from it, so none of them can drift from the others. */
#include "cli.h"

#include <string.h>

#include "bench.h"
#include "ops/lint.h"
#include "ops/ruletest.h"
#include "ops/tap.h"

static int help_main(int argc, char **argv);

/* The commands implemented in the operations layer print their help from
 * this table through these. */
static void lint_usage(FILE *out)
{
    tp_cli_print_help(out, tp_cli_find("lint"));
}
static int lint_main(int argc, char **argv)
{
    return tp_lint_main(argc, argv, lint_usage);
}
static void test_usage(FILE *out)
{
    tp_cli_print_help(out, tp_cli_find("test"));
}
static int test_main(int argc, char **argv)
{
    return tp_ruletest_main(argc, argv, test_usage);
}
static void tap_usage(FILE *out)
{
    tp_cli_print_help(out, tp_cli_find("tap"));
}
static int tap_main(int argc, char **argv)
{
    return tp_tap_main(argc, argv, tap_usage);
}

static const struct tp_cli_option run_options[] = {
    {"-c, --config FILE", "pipeline configuration (YAML); - reads it from standard input"},
    {"--set KEY.PATH=VALUE",
     "override one config value, typed like the YAML value (repeatable), e.g. "
     "--set pipeline.threads=4 or --set 'pipeline.processors[0].tag_processor.defaults=return "
     "msg;'"},
    {"--stats FILE",
     "on exit, write counters as JSON: {\"received\":N,\"processed\":N,\"dropped\":{...}}"},
    {"--log-level LEVEL", "trace, debug, info, warn, error or off (default info)"},
    {"--watch", "reload the processors when CONFIG changes (as SIGHUP)"},
    {"-h, --help", "this help"},
    {"-V, --version", "print the version"},
    {NULL, NULL},
};

static const struct tp_cli_option lint_options[] = {
    {"--strict", "exit 1 when there are warnings"},
    {"--set KEY.PATH=VALUE", "override one config value before checking it (repeatable)"},
    {"-h, --help", "this help"},
    {NULL, NULL},
};

static const struct tp_cli_option test_options[] = {
    {"-v", "print every case, not only the failed ones"},
    {"-h, --help", "this help"},
    {NULL, NULL},
};

static const struct tp_cli_option bench_options[] = {
    {"--workload W", "seed, production, mapping, passthrough, marshal or minimal (default seed)"},
    {"--mode M", "pooled (default) or naive"},
    {"--messages N", "messages to process (default 1000000)"},
    {"--threads N", "worker threads (default 1)"},
    {"-c, --config FILE", "measure the processors of this config instead of a workload"},
    {"--input FILE.jsonl", "replay these envelopes instead of the simulator"},
    {"--json", "print only one JSON object instead of the table"},
    {"-h, --help", "this help"},
    {NULL, NULL},
};

static const struct tp_cli_option tap_options[] = {
    {"--url URL",
     "the instance's http.address (default http://127.0.0.1:4195; http://USER:PASSWORD@HOST:PORT "
     "for basic auth)"},
    {"--topic PATTERN",
     "only topics matching PATTERN: levels separated by '.' or '/', '+' matches one level, a "
     "final '#' the rest (e.g. 'umh.v1.plant1.#')"},
    {"--drops", "print the dropped messages (reason, processor, stage, error) instead"},
    {"-h, --help", "this help"},
    {NULL, NULL},
};

static const struct tp_cli_option help_only[] = {
    {"-h, --help", "this help"},
    {NULL, NULL},
};

const struct tp_cli_command tp_cli_commands[] = {
    {"run", "[run] -c CONFIG.yaml [options]\n[run] CONFIG.yaml [options]",
     "run the pipeline described by CONFIG.yaml (the default command)",
     "Runs the pipeline described by CONFIG.yaml (input -> processors -> output). The config "
     "is validated first: every finding is printed once, in the configured log format "
     "(logger.format), and a config that cannot run exits with status 2.\n\n"
     "SIGHUP reloads the processors from CONFIG (validated the same way; a bad config is "
     "rejected and the running one stays). Under systemd (Type=notify) tagproc reports "
     "READY, RELOADING, STOPPING and WATCHDOG.\n\n"
     "Exit status: 0 when the input ended or SIGINT/SIGTERM drained the pipeline; 1 on a fatal "
     "error; 2 on a configuration error.",
     run_options, tp_cli_run_main, 0},
    {"lint", "lint [--strict] [--set KEY.PATH=VALUE] FILE.yaml...",
     "validate configs and rule test files without running them",
     "Runs the same validation as `tagproc run` and compiles every JavaScript snippet, then "
     "checks the rules: topic literals (SPEC 3.5), bodies without return, if expressions that "
     "modify msg, duplicate or identical conditions. Rule test files (*.test.yaml) are "
     "checked against the rule test schema (see `tagproc help test`). Findings are "
     "FILE:LINE:COL lines, all of them at once.\n\n"
     "Exit status: 0 clean (warnings allowed), 1 warnings with --strict, 2 errors.",
     lint_options, lint_main, 0},
    {"test", "test [-v] FILE.test.yaml...", "run rule unit tests (FILE.test.yaml)",
     "Runs rule unit tests: each case's input through the processors of the test's config, "
     "compared with the expected outputs or drops. JSON values are compared by value: numbers "
     "numerically (1 equals 1.0), objects without regard to key order. The clock is fixed at "
     "TAGPROC_FIXED_NOW_MS (default 1700000000000). See docs/OPERATIONS.md.\n\n"
     "Exit status: 0 all passed, 1 a case failed, 2 a file could not be used.",
     test_options, test_main, 0},
    {"bench",
     "bench [--workload W] [--mode pooled|naive] [--messages N] [--threads N] [--json]\n"
     "bench -c CONFIG.yaml [--input FILE.jsonl] [--messages N] [--json]",
     "measure the processors' throughput on this machine",
     "Measures processors in process: simulator (or --input) -> processors -> drop. With -c, "
     "the config's own processors are measured (its input/output are replaced): how many tags "
     "per second this machine takes with your rules.",
     bench_options, tp_bench_main, 0},
    {"tap", "tap [--url http://127.0.0.1:4195] [--topic 'umh.v1.plant1.#'] [--drops]",
     "print the live output messages (or drops) of a running instance",
     "Prints the live output messages of a running tagproc as JSON lines, one per message: "
     "{\"kind\":\"output\",\"time_ms\":T,\"topic\":\"...\",\"message\":{...}}; with --drops "
     "the dropped messages with reason, processor, stage and error. The instance needs an "
     "`http` section and `ui.enabled` (the default); tap reads its /api/tap stream. A reader "
     "slower than the pipeline loses lines (reported on standard error); the pipeline never "
     "waits for it. Ends when the instance stops, or with Ctrl-C.\n\n"
     "Exit status: 0 when the instance ended the stream; 1 when it cannot be reached or "
     "refused; 2 on a usage error.",
     tap_options, tap_main, 0},
    {"help", "help [COMMAND]", "show the help of tagproc or of one command",
     "Without COMMAND, lists the commands; with COMMAND, prints its help (the same as "
     "`tagproc COMMAND --help`).",
     help_only, help_main, 0},
    {"config-doc", "config-doc", "print the configuration reference (docs/CONFIG.md)",
     "Prints the Markdown reference of every configuration key, generated from the option "
     "tables in the code.",
     help_only, tp_cli_config_doc_main, 1},
    {"man", "man", "print the manual page tagproc(1) (roff)",
     "Prints the manual page, generated from this command table and the option tables "
     "(docs/tagproc.1).",
     help_only, tp_cli_man_main, 1},
    {"completion", "completion bash", "print the bash completion script",
     "Prints the bash completion script for tagproc (installed by the package as "
     "/usr/share/bash-completion/completions/tagproc).",
     help_only, tp_cli_completion_main, 1},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct tp_cli_command *tp_cli_find(const char *name)
{
    for (const struct tp_cli_command *c = tp_cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* Prints text wrapped at 78 columns, each line indented by `indent`, the
 * first line starting at column `first` (already printed). */
static void wrap(FILE *f, const char *text, int indent, int first)
{
    int col = first;
    const char *p = text;
    while (*p) {
        if (*p == '\n') {
            fputc('\n', f);
            col = 0;
            p++;
            continue;
        }
        size_t w = strcspn(p, " \n");
        if (col > indent && col + 1 + (int)w > 78) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col < indent) {
            fprintf(f, "%*s", indent - col, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, w, f);
        col += (int)w;
        p += w;
        while (*p == ' ')
            p++;
    }
    if (col)
        fputc('\n', f);
}

static void print_synopsis(FILE *f, const struct tp_cli_command *c, const char *first)
{
    const char *s = c->synopsis;
    for (int i = 0; *s; i++) {
        size_t n = strcspn(s, "\n");
        fprintf(f, "%s tagproc %.*s\n", i ? "      " : first, (int)n, s);
        s += n + (s[n] == '\n');
    }
}

void tp_cli_print_help(FILE *f, const struct tp_cli_command *c)
{
    print_synopsis(f, c, "usage:");
    fputc('\n', f);
    wrap(f, c->description, 0, 0);
    fputs("\noptions:\n", f);
    for (const struct tp_cli_option *o = c->options; o->flags; o++) {
        int n = fprintf(f, "  %s", o->flags);
        if (n > 23) {
            fputc('\n', f);
            n = 0;
        }
        wrap(f, o->desc, 24, n);
    }
}

void tp_cli_print_overview(FILE *f)
{
    print_synopsis(f, tp_cli_find("run"), "usage:");
    fputs("       tagproc COMMAND [options]   (tagproc help COMMAND)\n\ncommands:\n", f);
    for (const struct tp_cli_command *c = tp_cli_commands; c->name; c++)
        if (!c->hidden)
            fprintf(f, "  %-10s  %s\n", c->name, c->summary);
    fputs("\nRun `tagproc help run` for the options of run; `man tagproc` for everything.\n", f);
}

int tp_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

static int help_main(int argc, char **argv)
{
    if (argc < 2) {
        tp_cli_print_overview(stdout);
        return 0;
    }
    const struct tp_cli_command *c = tp_cli_find(argv[1]);
    if (!c) {
        fprintf(stderr, "tagproc help: unknown command \"%s\"\n", argv[1]);
        tp_cli_print_overview(stderr);
        return 2;
    }
    tp_cli_print_help(stdout, c);
    return 0;
}

/* Command-line dispatcher: `tagproc COMMAND ...` runs a sub-command of the
 * table in cli_commands.c (`COMMAND --help` prints its help from the table);
 * anything else is `tagproc run ...` (cli_run.c). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_plugins.h"
#include "js/vm.h"
#include "processors/uns.h"

static int rule_metrics; /* TAGPROC_RULE_METRICS as tp_pipeline_opts.rule_metrics */

int tp_cli_rule_metrics(void)
{
    return rule_metrics;
}

/* Reads the environment switches once (see cli.h); a bad value is named. */
static void read_switches(void)
{
    const char *e = getenv("TAGPROC_ENGINE");
    tp_js_set_naive(e && strcmp(e, "naive") == 0);
    e = getenv("TAGPROC_NATIVE_IF");
    tp_js_set_native_if(!(e && strcmp(e, "0") == 0));
    e = getenv("TAGPROC_FIXED_NOW_MS");
    if (e && *e && tp_now_fix(e) != 0)
        fprintf(stderr, "tagproc: TAGPROC_FIXED_NOW_MS=%s is not integer milliseconds: ignored\n",
                e);
    e = getenv("TAGPROC_RULE_METRICS");
    rule_metrics = !e || !*e ? 0 : strcmp(e, "0") == 0 ? -1 : strcmp(e, "1") == 0 ? 1 : 0;
}

int tp_cli_main(int argc, char **argv)
{
    tp_plugins_use(&tp_builtin_plugins);
    read_switches();
    if (argc < 2) {
        fprintf(stderr, "tagproc: missing -c CONFIG\n");
        tp_cli_print_overview(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)
        return tp_cli_run_main(argc, argv);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        tp_cli_print_help(stdout, tp_cli_find("run"));
        fputc('\n', stdout);
        tp_cli_print_overview(stdout);
        return 0;
    }
    const struct tp_cli_command *c = tp_cli_find(argv[1]);
    if (!c) /* `tagproc -c X`, `tagproc X.yaml` */
        return tp_cli_run_main(argc, argv);
    if (tp_cli_wants_help(argc - 1, argv + 1)) {
        tp_cli_print_help(stdout, c);
        return 0;
    }
    return c->main(argc - 1, argv + 1);
}

/* Command-line dispatcher: `tagproc COMMAND ...` runs a sub-command of the
 * table in cli_commands.c (`COMMAND --help` prints its help from the table);
 * anything else is `tagproc run ...` (cli_run.c). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int tp_cli_main(int argc, char **argv)
{
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

/* tagproc entry point: everything is in the CLI module. */
#include "cli.h"

int main(int argc, char **argv)
{
    return tp_cli_main(argc, argv);
}

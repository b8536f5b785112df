/* `tagproc tap`: prints the live output messages (or drops) of a running
 * tagproc as JSON lines, read from its /api/tap Server-Sent Events stream. */
#ifndef TP_TAP_H
#define TP_TAP_H

#include <stdio.h>

int tp_tap_main(int argc, char **argv, void (*usage)(FILE *out));

#endif

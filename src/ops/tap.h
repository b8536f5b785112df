/* `tagproc tap`: prints the live output messages (or drops) of a running
 * tagproc as JSON lines, read from its /api/tap Server-Sent Events stream. */
#ifndef TP_TAP_H
#define TP_TAP_H

int tp_tap_main(int argc, char **argv);

#endif

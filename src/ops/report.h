/* A process that says what it is doing: the start banner, the periodic
 * `stats:` line (logger.stats_interval), the exit summary, and debug/trace
 * lines per batch and per output message. */
#ifndef TP_REPORT_H
#define TP_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"
#include "ops/ui.h"

struct tp_report_info {
    const char *config_file;
    const char *input, *output, *dead_letter; /* plugin names; dead_letter may be NULL */
    int threads;
    const char *http_address; /* NULL: no http */
    int http_port;
    int ui; /* Topic Browser on */
};

struct tp_report;

/* Logs the banner and starts the stats line thread (interval_s 0: none).
 * status (may be NULL) supplies queue depths. NULL on allocation failure
 * (then there are no stats lines; everything else works). */
struct tp_report *tp_report_start(const struct tp_report_info *info, int64_t interval_s,
                                  const struct tp_ui_source *status);
/* Stops the thread and logs the exit summary (and suppressed-line counts). */
void tp_report_finish(struct tp_report *r);

/* Debug: one line per batch; trace: one per output message (cheap when off). */
void tp_report_batch(uint64_t seq, size_t in, struct tp_msg *const *out, size_t n);

#endif

/* A pipeline's counters: snapshot and their JSON file for --stats (see stats.h). */
#include "core/stats.h"

#include <stdio.h>

void tp_stats_snapshot(const struct tp_stats *st, struct tp_stats *out)
{
    out->received = TP_STAT_GET(st, received);
    out->processed = TP_STAT_GET(st, processed);
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++)
        out->dropped[r] = TP_STAT_GET(st, dropped[r]);
    out->programs_compiled = TP_STAT_GET(st, programs_compiled);
    out->vms_created = TP_STAT_GET(st, vms_created);
}

int tp_stats_write_file(const struct tp_stats *st, const char *path)
{
    struct tp_stats s;
    tp_stats_snapshot(st, &s);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\"received\":%llu,\"processed\":%llu,\"dropped\":{",
            (unsigned long long)s.received, (unsigned long long)s.processed);
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++)
        fprintf(f, "%s\"%s\":%llu", r ? "," : "", tp_drop_reason_name((enum tp_drop_reason)r),
                (unsigned long long)s.dropped[r]);
    fprintf(f, "},\"programs_compiled\":%llu,\"vms_created\":%llu}\n",
            (unsigned long long)s.programs_compiled, (unsigned long long)s.vms_created);
    return fclose(f) == 0 ? 0 : -1;
}

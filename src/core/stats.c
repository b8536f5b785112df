/* Process-wide counters and their JSON file for --stats (see stats.h). */
#include "core/stats.h"

#include <stdio.h>

struct tp_stats tp_stats;

int tp_stats_write_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\"received\":%llu,\"processed\":%llu,\"dropped\":{",
            (unsigned long long)TP_STAT_GET(received), (unsigned long long)TP_STAT_GET(processed));
    for (int r = 0; r < TP_DROP_REASON_COUNT; r++)
        fprintf(f, "%s\"%s\":%llu", r ? "," : "", tp_drop_reason_name((enum tp_drop_reason)r),
                (unsigned long long)TP_STAT_GET(dropped[r]));
    fprintf(f, "},\"programs_compiled\":%llu,\"vms_created\":%llu}\n",
            (unsigned long long)TP_STAT_GET(programs_compiled),
            (unsigned long long)TP_STAT_GET(vms_created));
    return fclose(f) == 0 ? 0 : -1;
}

/* systemd notifications (see sdnotify.h). STATUS= lines make
 * `systemctl status tagproc` say what the service is doing. */
#include "ops/sdnotify.h"

#include <systemd/sd-daemon.h>

void tp_sd_ready(void)
{
    sd_notify(0, "READY=1\nSTATUS=running");
}

void tp_sd_reloading(void)
{
    sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
}

void tp_sd_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=draining the pipeline");
}

uint64_t tp_sd_watchdog_interval_us(void)
{
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec / 2 : 0;
}

void tp_sd_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
}

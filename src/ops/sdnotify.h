/* systemd service notifications (Type=notify) through libsystemd's
 * sd_notify: READY, RELOADING, STOPPING and the watchdog keep-alive. Every
 * call is a no-op when tagproc does not run under systemd. */
#ifndef TP_SDNOTIFY_H
#define TP_SDNOTIFY_H

#include <stdint.h>

void tp_sd_ready(void);
void tp_sd_reloading(void);
void tp_sd_stopping(void);
/* Keep-alive interval: half of WatchdogSec in microseconds, 0 when off. */
uint64_t tp_sd_watchdog_interval_us(void);
void tp_sd_watchdog(void);

#endif

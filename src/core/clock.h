/* The clocks of the code base, one helper each: monotonic time (exact and
 * coarse) for durations and timeouts, and the absolute CLOCK_REALTIME
 * deadline a pthread_cond_timedwait needs. Wall-clock time for messages is
 * tp_now_ms (processors/uns.h, with its test override). */
#ifndef TP_CLOCK_H
#define TP_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds / milliseconds. */
int64_t tp_mono_ns(void);
int64_t tp_mono_ms(void);
/* CLOCK_MONOTONIC_COARSE in nanoseconds (a few ms resolution, much cheaper). */
int64_t tp_mono_coarse_ns(void);

/* CPU time the calling thread has used, in nanoseconds (a system call:
 * for rare checks, not per message). */
int64_t tp_thread_cpu_ns(void);

/* The CLOCK_REALTIME time ms milliseconds from now (ms < 0 counts as 0), for
 * pthread_cond_timedwait on a default condition variable. */
struct timespec tp_deadline_in_ms(int64_t ms);

#endif

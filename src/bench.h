/* `tagproc bench`: built-in deterministic workloads (seed, production,
 * mapping) or the user's own processors, measured in process. */
#ifndef TP_BENCH_H
#define TP_BENCH_H

/* argv[0] is "bench". Returns the process exit code. */
int tp_bench_main(int argc, char **argv);

#endif

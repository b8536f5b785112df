/* TP_ASSERT(cond): an internal invariant (ring counters, refcounts, pool
 * blocks, ...). Compiled in only for the sanitizer builds (TP_ASSERTS is set by
 * TP_SANITIZE and TP_FUZZ in CMakeLists.txt), where a violation aborts with
 * FILE:LINE and the expression; in the release build it costs nothing and the
 * condition is not evaluated, so it must have no side effects. */
#ifndef TP_ASSERT_H
#define TP_ASSERT_H

#ifdef TP_ASSERTS
#include <stdio.h>
#include <stdlib.h>

#define TP_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s: TP_ASSERT(%s) failed\n", __FILE__, __LINE__, __func__,     \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
#else
#define TP_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

#endif

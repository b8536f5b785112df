/* The one general-purpose hash of byte strings (64-bit FNV-1a), for hash
 * tables and key routing. Inline: it runs per metadata key and message. */
#ifndef TP_HASH_H
#define TP_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t tp_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

#endif

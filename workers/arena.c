/*
 * Bump allocator for worker threads: one malloc at worker start, then pointer arithmetic.
 */
#include "mailca/arena.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

mc_err mc_arena_init(mc_arena *a, size_t cap)
{
    a->base = malloc(cap);
    a->cap = a->base ? cap : 0;
    a->used = 0;
    return a->base ? MC_OK : MC_ERR_NOMEM;
}

void *mc_arena_alloc(mc_arena *a, size_t n)
{
    size_t start = (a->used + 15u) & ~(size_t)15u;
    if (start > a->cap || n > a->cap - start)
        return NULL;
    a->used = start + n;
    return a->base + start;
}

void *mc_arena_dup(mc_arena *a, const void *p, size_t len)
{
    void *q = mc_arena_alloc(a, len ? len : 1);
    if (q && len)
        memcpy(q, p, len);
    return q;
}

void mc_arena_shrink(mc_arena *a, void *p, size_t newlen)
{
    size_t off = (size_t)((uint8_t *)p - a->base);
    assert(off <= a->used && newlen <= a->used - off); /* p is the latest allocation */
    a->used = off + newlen;
}

void mc_arena_reset(mc_arena *a)
{
    a->used = 0;
}

void mc_arena_free(mc_arena *a)
{
    free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

/*
 * mc_arena: a per-worker bump allocator. A worker resets it after each certificate (or batch), so
 * the hot path does not call malloc per certificate. Not thread-safe: one arena per thread.
 */
#ifndef MAILCA_ARENA_H
#define MAILCA_ARENA_H

#include "mailca/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mc_arena {
    uint8_t *base;
    size_t cap;
    size_t used;
} mc_arena;

/* Allocates cap bytes of backing store with malloc; free with mc_arena_free. */
mc_err mc_arena_init(mc_arena *a, size_t cap);

/* Returns n bytes aligned to 16, or NULL when the arena is full (never falls back to malloc).
 * The memory lives until mc_arena_reset or mc_arena_free. */
void *mc_arena_alloc(mc_arena *a, size_t n);

/* Copies len bytes into the arena; NULL when full. */
void *mc_arena_dup(mc_arena *a, const void *p, size_t len);

/* Shrinks the most recent allocation p to newlen bytes (a buffer reserved at its maximum size
 * and filled with less), so the arena's touched memory follows what is used. p must be the
 * latest allocation and newlen no larger than it was. */
void mc_arena_shrink(mc_arena *a, void *p, size_t newlen);

/* Forgets every allocation; the backing store is kept. */
void mc_arena_reset(mc_arena *a);

/* Releases the backing store. Safe on a zeroed arena. */
void mc_arena_free(mc_arena *a);

#endif

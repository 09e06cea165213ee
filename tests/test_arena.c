/*
 * Unit tests for the per-worker bump allocator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/arena.h"

static void test_alloc_align_and_full(void **state)
{
    (void)state;
    mc_arena a;
    assert_int_equal(mc_arena_init(&a, 256), MC_OK);
    uint8_t *p = mc_arena_alloc(&a, 3);
    uint8_t *q = mc_arena_alloc(&a, 5);
    assert_non_null(p);
    assert_ptr_equal(q, p + 16);              /* 16-byte alignment */
    assert_null(mc_arena_alloc(&a, 1000));    /* full: never falls back to malloc */
    assert_non_null(mc_arena_alloc(&a, 200)); /* a failed request consumed nothing */
    mc_arena_reset(&a);
    assert_ptr_equal(mc_arena_alloc(&a, 1), p);
    mc_arena_free(&a);
}

static void test_shrink_returns_the_tail(void **state)
{
    (void)state;
    mc_arena a;
    assert_int_equal(mc_arena_init(&a, 1 << 16), MC_OK);
    uint8_t *big = mc_arena_alloc(&a, 8192); /* reserved at the maximum TBS size */
    mc_arena_shrink(&a, big, 600);           /* filled with 600 bytes */
    assert_int_equal(a.used, (size_t)(big - a.base) + 600);
    uint8_t *next = mc_arena_alloc(&a, 10);
    assert_ptr_equal(next, big + 608); /* right after, aligned */
    const char s[] = "kept";
    char *d = mc_arena_dup(&a, s, sizeof s);
    assert_string_equal(d, "kept");
    mc_arena_free(&a);
    assert_null(a.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_align_and_full),
        cmocka_unit_test(test_shrink_returns_the_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

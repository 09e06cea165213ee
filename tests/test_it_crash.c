/*
 * Durability (issue 5): the engine is killed with SIGKILL at random points of a large batch,
 * several times, then run to completion on the same orders. Afterwards every order has exactly
 * one certificate, no serial was used twice, every certificate a killed run had already released
 * (its results file) is in storage with the same bytes, and the final run returns those same
 * certificates for orders issued before (order ids are idempotency keys). Intents recorded before
 * a crash and never signed are finished by re-signing the recorded TBS with the recorded serial.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/itutil.h"

#include "mailca/result.h"

#include <fcntl.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILLS 4

static mc_it_ca g;

static int group_setup(void **state)
{
    (void)state;
    return mc_it_ca_setup("it-crash-", &g);
}

static int group_teardown(void **state)
{
    (void)state;
    mc_it_ca_free(&g);
    return 0;
}

typedef struct issued {
    char id[160];
    uint8_t serial[20];
    size_t serial_len;
    uint8_t *der;
    size_t der_len;
} issued;

/* The complete results of a results file that may end in the middle of a record (the writer was
 * killed): every issued one is appended to v. */
static void read_partial(const char *path, issued **v, size_t *n, size_t *cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return; /* killed before it wrote anything */
    msgpack_unpacker up;
    msgpack_unpacked u;
    assert_true(msgpack_unpacker_init(&up, 1 << 16));
    msgpack_unpacked_init(&u);
    for (;;) {
        assert_true(msgpack_unpacker_reserve_buffer(&up, 1 << 16));
        size_t got = fread(msgpack_unpacker_buffer(&up), 1, 1 << 16, f);
        msgpack_unpacker_buffer_consumed(&up, got);
        while (msgpack_unpacker_next(&up, &u) == MSGPACK_UNPACK_SUCCESS) {
            mc_result r;
            mc_errdetail e;
            assert_int_equal(mc_result_decode(&u.data, &r, &e), MC_OK);
            if (r.status != MC_STATUS_ISSUED)
                continue;
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 1024;
                *v = realloc(*v, *cap * sizeof **v);
                assert_non_null(*v);
            }
            issued *it = &(*v)[(*n)++];
            snprintf(it->id, sizeof it->id, "%.*s", (int)r.order_id_len, r.order_id);
            assert_true(r.serial_len <= sizeof it->serial);
            memcpy(it->serial, r.serial, r.serial_len);
            it->serial_len = r.serial_len;
            it->der = malloc(r.cert_len);
            assert_non_null(it->der);
            memcpy(it->der, r.cert, r.cert_len);
            it->der_len = r.cert_len;
        }
        if (!got)
            break;
    }
    msgpack_unpacked_destroy(&u);
    msgpack_unpacker_destroy(&up);
    fclose(f);
}

static void test_kill_and_restart(void **state)
{
    (void)state;
    const char *sc = getenv("MAILCA_TEST_SCALE");
    int n = 20000 / (sc && atoi(sc) > 1 ? atoi(sc) : 1);
    char orders[700], cfg[700], db[700], results[700];
    snprintf(orders, sizeof orders, "%s/orders.msgpack", g.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    snprintf(db, sizeof db, "%s/mailca.db", g.ca);
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    mc_it_run r;
    int st =
        mc_it_mailca(&r, "gen-orders", "--count", count, "--key-form", "public-key", orders, NULL);
    if (st != 0)
        fail_msg("gen-orders: %s", r.err);
    mc_it_run_free(&r);

    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    print_message("kill points seeded with %u\n", seed);
    issued *before = NULL;
    size_t nbefore = 0, capbefore = 0;
    int killed = 0;
    for (int k = 0; k < KILLS; k++) {
        snprintf(results, sizeof results, "%s/killed-%d.msgpack", g.dir, k);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            execl(mc_it_bin(), "mailca", "batch", "--quiet", "--config", cfg, orders, results,
                  (char *)NULL);
            _exit(127);
        }
        /* between 50 and 650 ms in: start-up, mid-batch or near the end */
        usleep((useconds_t)(50000 + rand() % 600000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        read_partial(results, &before, &nbefore, &capbefore);
    }
    print_message("%d of %d runs killed; %zu certificates released before the kills\n", killed,
                  KILLS, nbefore);
    assert_true(killed >= 1);

    /* Run to completion. */
    snprintf(results, sizeof results, "%s/final.msgpack", g.dir);
    st = mc_it_mailca(&r, "batch", "--quiet", "--config", cfg, orders, results, NULL);
    if (st != 0)
        fail_msg("final batch: exit %d: %s", st, r.err);
    mc_it_run_free(&r);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, (size_t)n);
    uint8_t *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    sqlite3 *sdb = mc_it_db_open(db);
    assert_non_null(sdb);
    for (size_t i = 0; i < res.n; i++) {
        const mc_result *x = &res.r[i];
        assert_int_equal(x->status, MC_STATUS_ISSUED);
        assert_true(x->seq < (uint64_t)n);
        assert_int_equal(seen[x->seq], 0);
        seen[x->seq] = 1;
        /* stored, byte for byte */
        uint8_t *der = NULL;
        size_t dl = 0;
        assert_int_equal(mc_it_db_cert(sdb, x->serial, x->serial_len, &der, &dl), 1);
        assert_int_equal(dl, x->cert_len);
        assert_memory_equal(der, x->cert, dl);
        free(der);
    }
    /* exactly one certificate per order, every intent finished, no serial twice */
    assert_int_equal(mc_it_db_count(sdb, "certificates"), n);
    assert_int_equal(mc_it_db_count(sdb, "intents"), n);
    sqlite3_stmt *q;
    assert_int_equal(
        sqlite3_prepare_v2(sdb, "SELECT count(DISTINCT serial) FROM certificates", -1, &q, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(q, 0), n);
    sqlite3_finalize(q);
    /* what a killed run released is what the final run returns for that order */
    for (size_t i = 0; i < nbefore; i++) {
        const mc_result *x = NULL;
        for (size_t j = 0; j < res.n && !x; j++)
            if (strcmp(res.r[j].order_id, before[i].id) == 0)
                x = &res.r[j];
        assert_non_null(x);
        assert_int_equal(x->serial_len, before[i].serial_len);
        assert_memory_equal(x->serial, before[i].serial, before[i].serial_len);
        assert_int_equal(x->cert_len, before[i].der_len);
        assert_memory_equal(x->cert, before[i].der, before[i].der_len);
        free(before[i].der);
    }
    free(before);
    free(seen);
    sqlite3_close(sdb);
    mc_it_results_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_and_restart)};
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

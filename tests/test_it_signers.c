/*
 * Signing sessions in flight for a latency-bound HSM (issue 4, engine.sessions / --sessions):
 * the engine runs against the fault-injecting module (tests/p11fault) wrapping SoftHSM2 with a
 * delay added to every C_Sign, as a network HSM answers. The module counts how many C_Sign calls
 * were inside it at once (max_concurrent), which shows what the engine keeps in flight without
 * timing anything: with the default, each worker signs itself (at most `workers` calls at once);
 * with --sessions N, the workers' signer threads keep more in flight. Every order still gets one
 * certificate that verifies, one serial each, and a session killed under a signer thread is
 * reopened and the same TBS re-signed.
 *
 * The C_Sign deadline (hsm.sign_timeout_ms): a call that stalls past it is abandoned, its order
 * signed again on a new session (the same TBS: same serial) and the late answer dropped; calls
 * that hang for good end their orders `failed` after the attempts, nothing signed twice, and the
 * same orders resubmitted once the HSM answers again are issued under the serials recorded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/itutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mc_it_ca g;
static char g_cfg[800], g_control[700], g_stats[700];

/* Rewrites the control file atomically (the module notices the new inode). */
static void control(const char *text)
{
    assert_int_equal(mc_it_replace_file(g_control, text), 0);
}

/* A copy of the CA's config whose module is the fault module (wrapping SoftHSM2). */
static int group_setup(void **state)
{
    (void)state;
    const char *fault = getenv("MAILCA_P11FAULT");
    if (!fault || !fault[0] || mc_it_ca_setup("it-signers-", &g) != 0)
        return -1;
    char src[700];
    snprintf(src, sizeof src, "%s/mailca.yaml", g.ca);
    snprintf(g_cfg, sizeof g_cfg, "%s/fault.yaml", g.ca);
    snprintf(g_control, sizeof g_control, "%s/p11fault.rules", g.dir);
    snprintf(g_stats, sizeof g_stats, "%s/p11fault.stats", g.dir);
    size_t len = 0;
    char *y = (char *)mc_it_read_file(src, &len);
    if (!y)
        return -1;
    FILE *out = fopen(g_cfg, "w");
    if (!out) {
        free(y);
        return -1;
    }
    int replaced = 0;
    for (char *line = strtok(y, "\n"); line; line = strtok(NULL, "\n")) {
        if (!replaced && strncmp(line, "  module:", 9) == 0) {
            fprintf(out, "  module: \"%s\"\n", fault);
            replaced = 1;
        } else {
            fprintf(out, "%s\n", line);
        }
    }
    fclose(out);
    free(y);
    setenv("P11FAULT_CONTROL", g_control, 1);
    setenv("P11FAULT_STATS", g_stats, 1);
    return replaced ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    unsetenv("P11FAULT_CONTROL");
    unsetenv("P11FAULT_STATS");
    mc_it_ca_free(&g);
    return 0;
}

static void gen(const char *path, int n)
{
    mc_it_run r;
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    int st =
        mc_it_mailca(&r, "gen-orders", "--count", count, "--key-form", "public-key", path, NULL);
    if (st != 0)
        fail_msg("gen-orders: exit %d: %s", st, r.err);
    mc_it_run_free(&r);
}

/* C_Sign's counters from the stats file the module wrote when the engine finalized it. */
static void sign_stats(unsigned long *calls, unsigned long *injected, unsigned long *max_conc)
{
    FILE *fp = fopen(g_stats, "r");
    assert_non_null(fp);
    char line[256];
    int found = 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "C_Sign calls=%lu injected=%lu max_concurrent=%lu", calls, injected,
                   max_conc) == 3)
            found = 1;
    fclose(fp);
    assert_true(found);
    print_message("C_Sign: %lu calls, %lu failed on purpose, at most %lu at once\n", *calls,
                  *injected, *max_conc);
}

/* Runs `mailca batch` on orders with the given --sessions (NULL: the default), --procs (NULL:
 * 0, worker threads, whose signing this file watches from the engine process, whatever auto
 * would choose) and config (NULL: the fault module's), into results; returns the batch's stderr
 * (caller frees). */
static char *run_batch(const char *orders, const char *results, const char *sessions,
                       const char *procs, const char *cfg, int want_exit)
{
    const char *args[16];
    int k = 0;
    args[k++] = "batch";
    args[k++] = "--quiet";
    args[k++] = "--workers";
    args[k++] = "2";
    if (sessions) {
        args[k++] = "--sessions";
        args[k++] = sessions;
    }
    args[k++] = "--procs";
    args[k++] = procs ? procs : "0";
    args[k++] = "--config";
    args[k++] = cfg ? cfg : g_cfg;
    args[k++] = orders;
    args[k++] = results;
    args[k] = NULL;
    mc_it_run r;
    int st = mc_it_mailca_argv(&r, 300, args);
    if (st != want_exit) /* 3: some orders failed (retryable) */
        fail_msg("%s: batch exit %d: %s", orders, st, r.err);
    char *err = strdup(r.err ? r.err : "");
    mc_it_run_free(&r);
    assert_non_null(err);
    return err;
}

/* Runs a batch of n fresh orders (see run_batch); checks one issued, verifying certificate per
 * order with distinct serials. Returns the batch's stderr (caller frees). */
static char *run_and_check_cfg(const char *tag, int n, const char *sessions, const char *procs,
                               const char *cfg)
{
    char orders[700], results[700];
    snprintf(orders, sizeof orders, "%s/%s.msgpack", g.dir, tag);
    snprintf(results, sizeof results, "%s/%s-results.msgpack", g.dir, tag);
    gen(orders, n);
    unlink(g_stats);
    char *err = run_batch(orders, results, sessions, procs, cfg, 0);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, (size_t)n);
    uint8_t *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    for (size_t i = 0; i < res.n; i++) {
        const mc_result *x = &res.r[i];
        assert_true(x->seq < (uint64_t)n);
        assert_int_equal(seen[x->seq], 0);
        seen[x->seq] = 1;
        if (x->status != MC_STATUS_ISSUED)
            fail_msg("%s: order %s: status %d: %s", tag, x->order_id, x->status, x->error.message);
        assert_int_equal(
            mc_it_verify(g.root, g.ica, x->cert, x->cert_len, X509_PURPOSE_SMIME_SIGN, NULL), 1);
        for (size_t j = 0; j < i; j++)
            assert_false(res.r[j].serial_len == x->serial_len &&
                         memcmp(res.r[j].serial, x->serial, x->serial_len) == 0);
    }
    free(seen);
    mc_it_results_free(&res);
    return err;
}

static void run_and_check(const char *tag, int n, const char *sessions, const char *procs)
{
    free(run_and_check_cfg(tag, n, sessions, procs, NULL));
}

/* Default: two workers, each signing on its own session: never more than two C_Sign at once. */
static void test_default_signs_on_workers(void **state)
{
    (void)state;
    control("C_Sign delay_us=2000\n");
    int n = mc_it_scaled(300, 60);
    run_and_check("default", n, NULL, NULL);
    unsigned long calls = 0, injected = 0, conc = 0;
    sign_stats(&calls, &injected, &conc);
    assert_true(calls >= (unsigned long)n); /* plus the key check at open */
    assert_int_equal(injected, 0);
    assert_true(conc >= 1 && conc <= 2);
}

/* --sessions 16 over two workers: eight signer threads each, each with its own session. */
static void test_sessions_in_flight(void **state)
{
    (void)state;
    control("C_Sign delay_us=2000\n");
    int n = mc_it_scaled(1200, 120);
    run_and_check("sessions16", n, "16", NULL);
    unsigned long calls = 0, injected = 0, conc = 0;
    sign_stats(&calls, &injected, &conc);
    assert_true(calls >= (unsigned long)n);
    assert_true(conc > 2);   /* more than the workers alone can have in flight */
    assert_true(conc <= 17); /* 16 signer sessions (+ the engine's key check at open) */
}

/* A session dies under a signer thread: it is reopened and the same TBS signed again, nothing
 * lost, no serial twice; the injected failures are counted. */
static void test_signer_session_recovers(void **state)
{
    (void)state;
    control("C_Sign delay_us=500\n"
            "C_Sign after=40 count=3 rv=CKR_SESSION_HANDLE_INVALID close_session\n");
    int n = mc_it_scaled(400, 80);
    run_and_check("recover", n, "8", NULL);
    unsigned long calls = 0, injected = 0, conc = 0;
    sign_stats(&calls, &injected, &conc);
    assert_int_equal(injected, 3);
    assert_true(calls >= (unsigned long)n + 3);
}

/* Worker processes get their share of signer threads too (--procs 2 --sessions 8). */
static void test_sessions_in_worker_processes(void **state)
{
    (void)state;
    control("C_Sign delay_us=1000\n");
    int n = mc_it_scaled(400, 80);
    run_and_check("procs", n, "8", "2");
}

/* A copy of the fault config with hsm.sign_timeout_ms set to ms (written to path). */
static void cfg_with_deadline(char *path, size_t cap, int ms)
{
    snprintf(path, cap, "%s/fault-deadline-%d.yaml", g.ca, ms);
    assert_int_equal(mc_it_config_with_deadline(g_cfg, path, ms), 0);
}

static long long db_count(const char *table)
{
    char db[700];
    snprintf(db, sizeof db, "%s/mailca.db", g.ca);
    sqlite3 *h = mc_it_db_open(db);
    assert_non_null(h);
    long long n = mc_it_db_count(h, table);
    sqlite3_close(h);
    return n;
}

/* One C_Sign stalls for a second, past a 300 ms deadline: the signer is abandoned, the order
 * signed again on a new session, and the stalled call's late signature dropped: every order
 * issued once (run_and_check_cfg), one certificate per intent, and the abandoned call reported.
 */
static void test_stalled_call_abandoned(void **state)
{
    (void)state;
    char cfg[800];
    cfg_with_deadline(cfg, sizeof cfg, 300);
    control("C_Sign after=40 count=1 delay_us=1000000\n");
    int n = mc_it_scaled(300, 80);
    long long i0 = db_count("intents"), c0 = db_count("certificates");
    char *err = run_and_check_cfg("stall", n, NULL, NULL, cfg);
    /* at least the stalled one (a loaded machine may stall another call past 300 ms too) */
    const char *at = strstr(err, "failures (");
    unsigned long abandoned = 0;
    if (!at || sscanf(at, "failures (%lu C_Sign abandoned", &abandoned) != 1 || abandoned < 1)
        fail_msg("the abandoned call is not reported: %s", err);
    free(err);
    assert_int_equal(db_count("intents") - i0, n);
    assert_int_equal(db_count("certificates") - c0, n);
    unsigned long calls = 0, injected = 0, conc = 0;
    sign_stats(&calls, &injected, &conc);
    assert_true(calls >= (unsigned long)n + 2); /* the stalled call and its second signature */
}

/* Every C_Sign after the 30th hangs for good (deadline 200 ms): the orders that cannot be signed
 * end `failed` after their attempts (intents recorded, nothing issued for them), the run still
 * ends; once the HSM answers again, the same orders resubmitted are all issued, those that
 * failed under the serial their intent recorded, and no order has two certificates. */
static void test_hung_calls_fail_then_resume(void **state)
{
    (void)state;
    char cfg[800], orders[700], results[700], results2[700];
    cfg_with_deadline(cfg, sizeof cfg, 200);
    snprintf(orders, sizeof orders, "%s/hang.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/hang-results.msgpack", g.dir);
    snprintf(results2, sizeof results2, "%s/hang-results2.msgpack", g.dir);
    const int n = 160;
    gen(orders, n);
    long long i0 = db_count("intents"), c0 = db_count("certificates");
    control("C_Sign after=30 hang\n");
    free(run_batch(orders, results, NULL, NULL, cfg, 3));
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, (size_t)n);
    size_t issued = 0, failed = 0;
    for (size_t i = 0; i < res.n; i++) {
        const mc_result *x = &res.r[i];
        if (x->status == MC_STATUS_ISSUED) {
            issued++;
            continue;
        }
        assert_int_equal(x->status, MC_STATUS_FAILED);
        if (!strstr(x->error.message, "did not answer C_Sign") &&
            !strstr(x->error.message, "no HSM session is left"))
            fail_msg("order %s failed for another reason: %s", x->order_id, x->error.message);
        if (failed++ == 0)
            print_message("first failure: %s\n", x->error.message);
    }
    print_message("hung HSM: %zu issued, %zu failed\n", issued, failed);
    assert_true(issued < 30); /* the key check at open signs too */
    assert_int_equal(issued + failed, (size_t)n);
    assert_int_equal(db_count("intents") - i0, n);
    assert_int_equal(db_count("certificates") - c0, (long long)issued);
    mc_it_results_free(&res);

    /* the HSM answers again: the same orders */
    control("# no faults\n");
    free(run_batch(orders, results2, NULL, NULL, cfg, 0));
    assert_int_equal(mc_it_results_load(results2, &res), 0);
    assert_int_equal(res.n, (size_t)n);
    char db[700];
    snprintf(db, sizeof db, "%s/mailca.db", g.ca);
    sqlite3 *h = mc_it_db_open(db);
    assert_non_null(h);
    sqlite3_stmt *q = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(h, "SELECT serial FROM intents WHERE order_id = ?1", -1, &q, NULL),
        SQLITE_OK);
    for (size_t i = 0; i < res.n; i++) {
        const mc_result *x = &res.r[i];
        if (x->status != MC_STATUS_ISSUED)
            fail_msg("order %s: status %d: %s", x->order_id, x->status, x->error.message);
        assert_int_equal(
            mc_it_verify(g.root, g.ica, x->cert, x->cert_len, X509_PURPOSE_SMIME_SIGN, NULL), 1);
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, x->order_id, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal((size_t)sqlite3_column_bytes(q, 0), x->serial_len);
        assert_memory_equal(sqlite3_column_blob(q, 0), x->serial, x->serial_len);
    }
    sqlite3_finalize(q);
    sqlite3_close(h);
    mc_it_results_free(&res);
    assert_int_equal(db_count("intents") - i0, n);
    assert_int_equal(db_count("certificates") - c0, n);
}

/* The token loses its login mid-batch (the fault module calls the real C_Logout, as a token
 * reset does): the failing order is signed again on a new session, which logs in again with the
 * PIN read from the config's source; every order is issued once. */
static void test_login_lost_logs_in_again(void **state)
{
    (void)state;
    control("C_Sign after=40 count=1 rv=CKR_USER_NOT_LOGGED_IN logout\n");
    int n = mc_it_scaled(300, 80);
    long long c0 = db_count("certificates");
    free(run_and_check_cfg("logout", n, NULL, NULL, NULL));
    assert_int_equal(db_count("certificates") - c0, n);
    unsigned long calls = 0, injected = 0, conc = 0;
    sign_stats(&calls, &injected, &conc);
    assert_int_equal(injected, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_signs_on_workers),
        cmocka_unit_test(test_sessions_in_flight),
        cmocka_unit_test(test_signer_session_recovers),
        cmocka_unit_test(test_sessions_in_worker_processes),
        cmocka_unit_test(test_stalled_call_abandoned),
        cmocka_unit_test(test_hung_calls_fail_then_resume),
        cmocka_unit_test(test_login_lost_logs_in_again),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

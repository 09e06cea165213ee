/*
 * Certificate Transparency through the engine (issue 5): with `ct.logs` and `ct.profiles` in the
 * config, `mailca batch` commits every certificate together with its outbox rows, a drain thread
 * submits them while the batch runs, and `mailca ct drain` submits what is left; each certificate
 * ends with a stored SCT from the log. Without `ct.profiles` nothing is queued (S/MIME: opt-in).
 * A log outage of 30 s (503 to every submission) while batches run: every certificate is issued,
 * and every submission is delivered once the log is back, its SCT verified by OpenSSL's own CT
 * code. The outage is 30 s in the normal build and 5 s under MAILCA_TEST_SCALE > 1 (ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctlog.h" /* bench/ctlog.h: the RFC 6962 log server */
#include "support/itutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static mc_it_ca g;
static mc_ctlog *logsrv;

static int group_setup(void **state)
{
    (void)state;
    if (mc_it_ca_setup("it-ctpipe-", &g) != 0)
        return -1;
    mc_errdetail err;
    if (mc_ctlog_start(&logsrv, &err) != MC_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mc_ctlog_stop(logsrv);
    mc_it_ca_free(&g);
    return 0;
}

/* Copies the config with the ct section filled in (profiles "" leaves CT off). */
static void write_config(const char *out, const char *profiles, const char *db)
{
    char in[700], line[4096], section[64] = "";
    snprintf(in, sizeof in, "%s/mailca.yaml", g.ca);
    FILE *f = fopen(in, "r"), *o = fopen(out, "w");
    assert_non_null(f);
    assert_non_null(o);
    while (fgets(line, sizeof line, f)) {
        if (line[0] != ' ' && line[0] != '#')
            sscanf(line, "%63[^:]", section);
        if (strcmp(section, "ct") == 0 && strstr(line, "logs:"))
            fprintf(o, "  logs: \"%s %s\"\n", mc_ctlog_url(logsrv), mc_ctlog_key_b64(logsrv));
        else if (strcmp(section, "ct") == 0 && strstr(line, "profiles:"))
            fprintf(o, "  profiles: \"%s\"\n", profiles);
        else if (strcmp(section, "store") == 0 && strstr(line, "sqlite:"))
            fprintf(o, "  sqlite: \"%s\"\n", db);
        else
            fputs(line, o);
    }
    fclose(f);
    fclose(o);
}

static long long count(const char *db, const char *sql)
{
    sqlite3 *s = mc_it_db_open(db);
    sqlite3_stmt *q = NULL;
    long long n = -1;
    assert_non_null(s);
    if (sqlite3_prepare_v2(s, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(s);
    return n;
}

static void run(const char *cfg, const char *cmd1, const char *cmd2, const char *a, const char *b)
{
    mc_it_run r;
    int st = b ? mc_it_mailca(&r, cmd1, "--quiet", "--config", cfg, a, b, NULL)
               : mc_it_mailca(&r, cmd1, cmd2, "--config", cfg, NULL);
    if (st != 0)
        fail_msg("mailca %s: exit %d: %s", cmd1, st, r.err);
    mc_it_run_free(&r);
}

static void test_ct_through_the_engine(void **state)
{
    (void)state;
    char cfg[700], db[700], orders[700], results[700];
    snprintf(cfg, sizeof cfg, "%s/ct.yaml", g.ca);
    snprintf(db, sizeof db, "%s/ct.db", g.dir);
    snprintf(orders, sizeof orders, "%s/ct-orders.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/ct-results.msgpack", g.dir);
    write_config(cfg, "*", db);
    mc_it_run r;
    assert_int_equal(mc_it_mailca(&r, "gen-orders", "--count", "40", orders, NULL), 0);
    mc_it_run_free(&r);
    run(cfg, "batch", NULL, orders, results);
    assert_int_equal(count(db, "SELECT count(*) FROM certificates"), 40);
    /* every certificate has its submission queued (same transaction) */
    assert_int_equal(count(db, "SELECT count(*) FROM ct_outbox"), 40);
    run(cfg, "ct", "drain", NULL, NULL);
    assert_int_equal(count(db, "SELECT count(*) FROM ct_scts"), 40);
    assert_int_equal(count(db, "SELECT count(DISTINCT serial) FROM ct_scts"), 40);
    assert_int_equal(count(db, "SELECT count(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 "
                               "FROM ct_scts s WHERE s.serial = c.serial)"),
                     0);
}

static void test_ct_off_without_profiles(void **state)
{
    (void)state;
    char cfg[700], db[700], orders[700], results[700];
    snprintf(cfg, sizeof cfg, "%s/ct-off.yaml", g.ca);
    snprintf(db, sizeof db, "%s/ct-off.db", g.dir);
    snprintf(orders, sizeof orders, "%s/off-orders.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/off-results.msgpack", g.dir);
    write_config(cfg, "", db);
    mc_it_run r;
    assert_int_equal(mc_it_mailca(&r, "gen-orders", "--count", "10", orders, NULL), 0);
    mc_it_run_free(&r);
    run(cfg, "batch", NULL, orders, results);
    assert_int_equal(count(db, "SELECT count(*) FROM certificates"), 10);
    assert_int_equal(count(db, "SELECT count(*) FROM ct_outbox"), 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Runs a batch; returns the certs/sec it reports. */
static double timed_batch(const char *cfg, const char *orders, const char *results)
{
    mc_it_run r;
    double rate = -1;
    int st = mc_it_mailca(&r, "batch", "--config", cfg, orders, results, NULL);
    if (st != 0)
        fail_msg("mailca batch: exit %d: %s", st, r.err);
    const char *p = strstr(r.err, " s (");
    if (p)
        rate = atof(p + 4);
    mc_it_run_free(&r);
    return rate;
}

/* Every stored SCT verifies with OpenSSL's CT code against the log key, for its certificate. */
static long long verified_scts(const char *db)
{
    sqlite3 *s = mc_it_db_open(db);
    sqlite3_stmt *q = NULL;
    long long ok = 0;
    unsigned char *ica = NULL;
    int ica_len = i2d_X509(g.ica, &ica);
    assert_true(ica_len > 0);
    assert_non_null(s);
    assert_int_equal(sqlite3_prepare_v2(s,
                                        "SELECT c.der, t.sct FROM ct_scts t JOIN certificates c "
                                        "ON c.serial = t.serial WHERE t.precert = 0",
                                        -1, &q, NULL),
                     SQLITE_OK);
    while (sqlite3_step(q) == SQLITE_ROW)
        ok += mc_ctlog_openssl_validate(
                  mc_ctlog_key_b64(logsrv), sqlite3_column_blob(q, 1),
                  (size_t)sqlite3_column_bytes(q, 1), 0, sqlite3_column_blob(q, 0),
                  (size_t)sqlite3_column_bytes(q, 0), ica, (size_t)ica_len) == 1;
    sqlite3_finalize(q);
    sqlite3_close(s);
    OPENSSL_free(ica);
    return ok;
}

/* A 30 s outage of the log while batches run: issuance goes on, nothing is lost. */
static void test_ct_log_outage(void **state)
{
    (void)state;
    const char *sc = getenv("MAILCA_TEST_SCALE");
    int scaled = sc && atoi(sc) > 1;
    const double outage_s = scaled ? 5 : 30;
    const int per_batch = scaled ? 100 : 1000, during = scaled ? 2 : 4;
    char cfg[700], db[700], orders[8][700], results[700], cnt[16];
    snprintf(cfg, sizeof cfg, "%s/ct-outage.yaml", g.ca);
    snprintf(db, sizeof db, "%s/ct-outage.db", g.dir);
    snprintf(results, sizeof results, "%s/outage-results.msgpack", g.dir);
    snprintf(cnt, sizeof cnt, "%d", per_batch);
    write_config(cfg, "*", db);
    for (int i = 0; i <= during; i++) {
        snprintf(orders[i], sizeof orders[i], "%s/outage-%d.msgpack", g.dir, i);
        mc_it_run r;
        assert_int_equal(mc_it_mailca(&r, "gen-orders", "--count", cnt, orders[i], NULL), 0);
        mc_it_run_free(&r);
    }
    /* the log up */
    double rate_up = timed_batch(cfg, orders[0], results);
    run(cfg, "ct", "drain", NULL, NULL);
    mc_ctlog_stats before;
    mc_ctlog_get_stats(logsrv, &before);
    /* the log down: every submission answered 503 with Retry-After: 1 */
    mc_ctlog_fault(logsrv, MC_CTLOG_503, -1, 1);
    double t0 = now_s(), rate_down = 0;
    for (int i = 1; i <= during; i++) {
        rate_down += timed_batch(cfg, orders[i], results) / during;
        double next = t0 + outage_s * i / (during + 1);
        if (now_s() < next)
            sleep_s(next - now_s());
    }
    if (now_s() < t0 + outage_s)
        sleep_s(t0 + outage_s - now_s());
    const long long total = (long long)per_batch * (during + 1);
    assert_int_equal(count(db, "SELECT count(*) FROM certificates"), total);
    assert_int_equal(count(db, "SELECT count(*) FROM ct_outbox"), total);
    /* nothing submitted during the outage got through */
    assert_int_equal(count(db, "SELECT count(*) FROM ct_outbox WHERE state = 1"), per_batch);
    mc_ctlog_stats mid;
    mc_ctlog_get_stats(logsrv, &mid);
    assert_true(mid.faults > before.faults);
    /* the log back: `mailca ct drain` delivers everything (rows come due within Retry-After) */
    mc_ctlog_fault(logsrv, MC_CTLOG_OK, 0, -1);
    double t1 = now_s();
    long long pending = -1;
    for (int tries = 0; tries < 60; tries++) {
        run(cfg, "ct", "drain", NULL, NULL);
        if ((pending = count(db, "SELECT count(*) FROM ct_outbox WHERE state <> 1")) == 0)
            break;
        sleep_s(0.5);
    }
    double drain_s = now_s() - t1;
    assert_int_equal(pending, 0);
    assert_int_equal(count(db, "SELECT count(*) FROM ct_scts"), total);
    assert_int_equal(verified_scts(db), total);
    fprintf(stderr,
            "CT outage %.0f s: issuance %.0f certs/s with the log up, %.0f during the outage; "
            "%lld submissions delivered %.1f s after recovery (%.0f/s, with process starts)\n",
            outage_s, rate_up, rate_down, total - per_batch, drain_s,
            (double)(total - per_batch) / drain_s);
}

/* Feeds an orders file into a FIFO that `mailca batch` reads: the first 64 KiB (the intake's
 * read size), then, once the hung log has been sent submissions (the drain thread is waiting on
 * it), the rest; end_s is when the last byte went in. */
typedef struct feeder {
    const char *fifo, *orders;
    uint64_t submissions_before;
    int ok;
    double end_s;
} feeder;

static void *feed_main(void *arg)
{
    feeder *f = arg;
    FILE *in = fopen(f->orders, "rb");
    FILE *out = fopen(f->fifo, "wb"); /* blocks until mailca opens it */
    static char buf[1 << 20];
    size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
    if (in)
        fclose(in);
    if (!out)
        return NULL;
    if (n > 65536 && fwrite(buf, 1, 65536, out) == 65536 && fflush(out) == 0) {
        mc_ctlog_stats ls;
        for (int i = 0; i < 600; i++) { /* up to 30 s */
            mc_ctlog_get_stats(logsrv, &ls);
            if (ls.submissions > f->submissions_before)
                break;
            sleep_s(0.05);
        }
        f->ok = ls.submissions > f->submissions_before;
        f->ok &= fwrite(buf + 65536, 1, n - 65536, out) == n - 65536;
    }
    fclose(out);
    f->end_s = now_s();
    return NULL;
}

/* A log that takes requests and never answers (ct.timeout_ms 30 s, the default) while a batch
 * runs: the batch ends promptly when its last order is in (the drain thread abandons what is in
 * flight after the sink's stop grace, 1 s), every certificate is issued and its submission kept
 * in the outbox, and `mailca ct drain` delivers them once the log answers again. The orders come
 * through a FIFO, so the run is still going when the drain thread has requests hanging. */
static void test_ct_hung_log_does_not_hold_the_run(void **state)
{
    (void)state;
    enum { N = 400 };
    char cfg[700], db[700], orders[700], fifo[700], results[700];
    snprintf(cfg, sizeof cfg, "%s/ct-hung.yaml", g.ca);
    snprintf(db, sizeof db, "%s/ct-hung.db", g.dir);
    snprintf(orders, sizeof orders, "%s/hung-orders.msgpack", g.dir);
    snprintf(fifo, sizeof fifo, "%s/hung-orders.fifo", g.dir);
    snprintf(results, sizeof results, "%s/hung-results.msgpack", g.dir);
    write_config(cfg, "*", db);
    mc_it_run r;
    assert_int_equal(mc_it_mailca(&r, "gen-orders", "--count", "400", orders, NULL), 0);
    mc_it_run_free(&r);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    mc_ctlog_stats before;
    mc_ctlog_get_stats(logsrv, &before);
    mc_ctlog_fault(logsrv, MC_CTLOG_HANG, -1, -1);
    feeder f = {.fifo = fifo, .orders = orders, .submissions_before = before.submissions};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, feed_main, &f), 0);
    run(cfg, "batch", NULL, fifo, results);
    double ended = now_s();
    pthread_join(th, NULL);
    mc_ctlog_fault(logsrv, MC_CTLOG_OK, 0, -1);
    assert_true(f.ok); /* the drain thread had requests hanging while orders were still coming */
    const char *sc = getenv("MAILCA_TEST_SCALE");
    double took = ended - f.end_s;
    /* the stop grace (1 s) and the rest of the orders, not the 30 s request timeout */
    assert_true(took < (sc && atoi(sc) > 1 ? 20.0 : 6.0));
    assert_int_equal(count(db, "SELECT count(*) FROM certificates"), N);
    assert_int_equal(count(db, "SELECT count(*) FROM ct_outbox WHERE state = 0"), N);
    /* the requests in flight at the end: at most per_log_in_flight (16), abandoned */
    long long abandoned = count(db, "SELECT count(*) FROM ct_outbox WHERE message LIKE "
                                    "'no answer within 1000 ms of the drainer''s stop%'");
    assert_true(abandoned >= 1 && abandoned <= 16);
    assert_int_equal(count(db, "SELECT count(*) FROM ct_scts"), 0);
    run(cfg, "ct", "drain", NULL, NULL);
    assert_int_equal(count(db, "SELECT count(*) FROM ct_outbox WHERE state = 1"), N);
    assert_int_equal(verified_scts(db), N);
    fprintf(stderr, "hung log: the batch ended %.2f s after its last order (ct.timeout_ms 30000)\n",
            took);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ct_through_the_engine),
        cmocka_unit_test(test_ct_off_without_profiles),
        cmocka_unit_test(test_ct_hung_log_does_not_hold_the_run),
        cmocka_unit_test(test_ct_log_outage),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

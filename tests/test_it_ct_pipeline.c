/*
 * Certificate Transparency through the engine (issue 5): with `ct.logs` and `ct.profiles` in the
 * config, `mailca batch` commits every certificate together with its outbox rows, a drain thread
 * submits them while the batch runs, and `mailca ct drain` submits what is left; each certificate
 * ends with a stored SCT from the log. Without `ct.profiles` nothing is queued (S/MIME: opt-in).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/ctlog.h"
#include "support/itutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mc_it_ca g;
static mc_ctlog *logsrv;

static int group_setup(void **state)
{
    (void)state;
    if (mc_it_ca_setup("it-ctpipe-", &g) != 0)
        return -1;
    logsrv = mc_ctlog_start();
    return logsrv ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mc_ctlog_stop(logsrv);
    X509_free(g.root);
    X509_free(g.ica);
    EVP_PKEY_free(g.key);
    free(g.csr);
    mc_it_rmtree(g.dir);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ct_through_the_engine),
        cmocka_unit_test(test_ct_off_without_profiles),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

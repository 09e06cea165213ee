/*
 * `mailca revoke` end to end: 300 certificates issued with `mailca batch` (200 orders of account
 * acct-bench-platform over 20 subject keys, 100 of acct-other-platform over 10 keys: the
 * generator's account renamed in the orders file), then revoked by subject key (keyCompromise,
 * SBR 4.9.1.1 item 3) and by account, each first with --dry-run. The counts printed and the rows
 * in SQLite are asserted exactly; the subject key hash is computed here from a certificate with
 * OpenSSL, independently of the engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailca/lint.h"
#include "support/itutil.h"

static struct {
    mc_it_ca it;
    char cfg[1024], db[1024];
} g;

static int group_setup(void **state)
{
    (void)state;
    if (mc_it_ca_setup("it-revoke-", &g.it) != 0)
        return -1;
    snprintf(g.cfg, sizeof g.cfg, "%s/mailca.yaml", g.it.ca);
    snprintf(g.db, sizeof g.db, "%s/mailca.db", g.it.ca);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mc_it_ca_free(&g.it);
    return 0;
}

static long long q_int(const char *sql)
{
    sqlite3 *db = mc_it_db_open(g.db);
    sqlite3_stmt *st = NULL;
    long long v = -1;
    assert_non_null(db);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Generates n orders over pool keys into path; with account, renames the generator's account
 * (the same length, so the msgpack stays valid). */
static void gen_orders(const char *path, const char *count, const char *pool, const char *account)
{
    mc_it_run r;
    mc_it_mailca(&r, "gen-orders", "--count", count, "--pool", pool, path, NULL);
    if (r.status != 0)
        fail_msg("gen-orders: %d: %s", r.status, r.err);
    mc_it_run_free(&r);
    if (!account)
        return;
    const char *from = "acct-bench-platform";
    assert_int_equal(strlen(account), strlen(from));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)len);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    size_t renamed = 0;
    for (char *p = buf; (p = memmem(p, (size_t)(buf + len - p), from, strlen(from))) != NULL;
         p += strlen(from), renamed++)
        memcpy(p, account, strlen(account));
    assert_int_equal(renamed, strtoul(count, NULL, 10));
    assert_int_equal(mc_it_write_file(path, buf, (size_t)len), 0);
    free(buf);
}

static void batch(const char *orders, const char *results, const char *want)
{
    mc_it_run r;
    mc_it_mailca(&r, "batch", "--config", g.cfg, orders, results, NULL);
    if (r.status != 0 || !strstr(r.err, want))
        fail_msg("mailca batch: %d, want \"%s\": %s", r.status, want, r.err);
    mc_it_run_free(&r);
}

/* Runs `mailca revoke --config cfg args...` and checks its report line contains want. */
static void revoke(const char *want, const char *const *args)
{
    const char *argv[16] = {"revoke", "--config", g.cfg};
    size_t n = 3;
    for (; *args && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    mc_it_run r;
    mc_it_mailca_argv(&r, 120, argv);
    if (r.status != 0 || !strstr(r.out, want))
        fail_msg("mailca revoke: %d, want \"%s\": out %s err %s", r.status, want, r.out, r.err);
    mc_it_run_free(&r);
}

static void test_revoke_by_key_and_account(void **state)
{
    (void)state;
    char o1[1100], o2[1100], r1[1100], r2[1100];
    snprintf(o1, sizeof o1, "%s/a.msgpack", g.it.dir);
    snprintf(o2, sizeof o2, "%s/b.msgpack", g.it.dir);
    snprintf(r1, sizeof r1, "%s/a-results.msgpack", g.it.dir);
    snprintf(r2, sizeof r2, "%s/b-results.msgpack", g.it.dir);
    gen_orders(o1, "200", "20", NULL);
    gen_orders(o2, "100", "10", "acct-other-platform");
    batch(o1, r1, "200 orders: 200 issued, 0 rejected, 0 failed");
    batch(o2, r2, "100 orders: 100 issued, 0 rejected, 0 failed");
    assert_int_equal(q_int("SELECT count(*) FROM certificates WHERE status = 'issued'"), 300);
    /* each records the lint set its issuance enforced: the one `mailca init` pinned (the
     * build's), beside the build's own */
    char lsql[256];
    snprintf(lsql, sizeof lsql,
             "SELECT count(*) FROM intents WHERE lint_enforced = '%s' AND lint_version = '%s'",
             MC_LINT_SET_VERSION, MC_LINT_SET_VERSION);
    assert_int_equal(q_int(lsql), 300);
    /* by a recorded warning (docs: test_it_enforced selects demoted error lints this way): the
     * command runs and a lint that never fired selects none */
    const char *lw_none[] = {"--lint-warning", "e_qc_natural_serial_number_format",
                             "--reason",       "superseded",
                             "--dry-run",      NULL};
    revoke("dry run, nothing written: 0 selected, 0 would be revoked", lw_none);
    /* an id this build does not know is refused, not answered with nothing */
    mc_it_run lw;
    const char *lw_bad[] = {"revoke",
                            "--config",
                            g.cfg,
                            "--lint-warning",
                            "e_qc_natural_serial_numbr_format",
                            "--reason",
                            "superseded",
                            "--dry-run",
                            NULL};
    mc_it_mailca_argv(&lw, 60, lw_bad);
    if (lw.status != 1 || !strstr(lw.err, "not a lint id of this build"))
        fail_msg("misspelt --lint-warning: exit %d: %s", lw.status, lw.err);
    mc_it_run_free(&lw);
    /* by the lint set of the build that issued them: all 300; a misspelt set is refused, not
     * answered with an empty selection */
    const char *lv_dry[] = {"--lint-version", MC_LINT_SET_VERSION, "--reason",
                            "superseded",     "--dry-run",         NULL};
    revoke("dry run, nothing written: 300 selected, 300 would be revoked", lv_dry);
    mc_it_run lr;
    const char *lv_bad[] = {
        "revoke",     "--config",  g.cfg, "--lint-version", "mailca-lints-2026.11.02", "--reason",
        "superseded", "--dry-run", NULL};
    mc_it_mailca_argv(&lr, 60, lv_bad);
    if (lr.status != 1 || !strstr(lr.err, "lint-version"))
        fail_msg("misspelt --lint-version: exit %d: %s", lr.status, lr.err);
    mc_it_run_free(&lr);

    /* the subject key of the first certificate of the second account: 10 certificates */
    mc_it_results res;
    assert_int_equal(mc_it_results_load(r2, &res), 0);
    assert_int_equal(res.n, 100);
    const uint8_t *p = res.r[0].cert;
    X509 *x = d2i_X509(NULL, &p, (long)res.r[0].cert_len);
    assert_non_null(x);
    uint8_t *spki = NULL;
    int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
    assert_true(spki_len > 0);
    uint8_t md[32];
    unsigned md_len = 0;
    assert_int_equal(EVP_Digest(spki, (size_t)spki_len, md, &md_len, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    X509_free(x);
    mc_it_results_free(&res);
    char hex[65], sql[512];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM intents WHERE hex(spki_sha256) = upper('%s')",
             hex);
    assert_int_equal(q_int(sql), 10);

    const char *key_dry[] = {"--key-sha256", hex, "--reason", "keyCompromise", "--dry-run", NULL};
    revoke("dry run, nothing written: 10 selected, 10 would be revoked (keyCompromise)", key_dry);
    assert_int_equal(q_int("SELECT count(*) FROM certificates WHERE status <> 'issued'"), 0);
    const char *key[] = {"--key-sha256", hex, "--reason", "keyCompromise", NULL};
    revoke("10 selected, 10 revoked (keyCompromise), 0 changed reason to keyCompromise, 0 already "
           "revoked\nmailca revoke: 1 subject key(s) recorded as compromised",
           key);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM certificates AS c JOIN intents AS i ON i.serial = c.serial"
             " WHERE c.status = 'revoked' AND c.revocation_reason = 1"
             " AND hex(i.spki_sha256) = upper('%s') AND c.revoked_at IS NOT NULL",
             hex);
    assert_int_equal(q_int(sql), 10);
    assert_int_equal(q_int("SELECT count(*) FROM certificates WHERE status = 'revoked'"), 10);

    const char *acct_dry[] = {
        "--account", "acct-other-platform", "--reason", "cessationOfOperation", "--dry-run", NULL};
    revoke("dry run, nothing written: 100 selected, 90 would be revoked", acct_dry);
    assert_int_equal(q_int("SELECT count(*) FROM certificates WHERE status = 'revoked'"), 10);
    const char *acct[] = {"--account", "acct-other-platform", "--reason", "cessationOfOperation",
                          NULL};
    revoke("100 selected, 90 revoked (cessationOfOperation), 0 changed reason to keyCompromise, "
           "10 already revoked",
           acct);
    assert_int_equal(q_int("SELECT count(*) FROM certificates WHERE status = 'revoked'"), 100);
    assert_int_equal(q_int("SELECT count(*) FROM certificates WHERE revocation_reason = 5"), 90);
    assert_int_equal(q_int("SELECT count(*) FROM certificates WHERE revocation_reason = 1"), 10);
    /* SBR 5.4.1 2.i: each revocation (not the dry runs) is in the audit log, with the selection
     * as typed (the config's path left out), who, and what changed */
    assert_int_equal(q_int("SELECT count(*) FROM audit_log WHERE event = 'revoke'"), 2);
    assert_int_equal(q_int("SELECT count(*) FROM audit_log AS a WHERE event = 'revoke.start'"
                           " AND EXISTS (SELECT 1 FROM audit_log AS b WHERE b.event = 'revoke'"
                           " AND b.subject = a.subject AND b.id > a.id)"),
                     2);
    assert_int_equal(q_int("SELECT count(*) FROM audit_log WHERE event = 'revoke'"
                           " AND subject = '--account acct-other-platform --reason"
                           " cessationOfOperation' AND actor LIKE 'user %'"
                           " AND json_extract(detail, '$.reason') = 'cessationOfOperation'"
                           " AND json_extract(detail, '$.revoked') = 90"
                           " AND json_extract(detail, '$.unchanged') = 10"),
                     1);
    assert_int_equal(q_int("SELECT count(*) FROM audit_log WHERE event = 'revoke'"
                           " AND json_extract(detail, '$.keys_compromised') = 1"
                           " AND json_extract(detail, '$.reason') = 'keyCompromise'"),
                     1);
    assert_int_equal(q_int("SELECT count(*) FROM certificates AS c JOIN intents AS i"
                           " ON i.serial = c.serial WHERE c.status = 'issued'"
                           " AND i.account = 'acct-bench-platform'"),
                     200);

    /* refused reasons and selectors: nothing written */
    mc_it_run r;
    const char *hold[] = {"revoke",   "--config",        g.cfg, "--account", "acct-bench-platform",
                          "--reason", "certificateHold", NULL};
    mc_it_mailca_argv(&r, 60, hold);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "SBR 4.9.13"));
    mc_it_run_free(&r);
    /* selectors combine (AND): an account and a serial of another account select nothing */
    const char *two[] = {"--account", "a", "--serial", "01", "--reason", "superseded", NULL};
    revoke("0 selected, 0 revoked (superseded)", two);
    /* no selector at all is refused, never every certificate */
    const char *none[] = {"revoke", "--config", g.cfg, "--reason", "superseded", NULL};
    mc_it_mailca_argv(&r, 60, none);
    if (r.status != 1 || !strstr(r.err, "no selector given"))
        fail_msg("revoke without a selector: exit %d: %s", r.status, r.err);
    mc_it_run_free(&r);
    assert_int_equal(q_int("SELECT count(*) FROM certificates WHERE status = 'revoked'"), 100);

    /* SBR 6.1.1.3 (4): the same 100 orders under new ids (same keys, same account): the 10 for
     * the compromised key are refused and leave no intent; the other 90 are issued */
    char o3[1100], r3[1100], first_id[128];
    snprintf(o3, sizeof o3, "%s/c.msgpack", g.it.dir);
    snprintf(r3, sizeof r3, "%s/c-results.msgpack", g.it.dir);
    assert_int_equal(mc_it_results_load(r2, &res), 0);
    snprintf(first_id, sizeof first_id, "%s", res.r[0].order_id);
    mc_it_results_free(&res);
    char *dash = strrchr(first_id, '-');
    assert_non_null(dash);
    *dash = '\0'; /* the id prefix shared by the file's orders */
    size_t len = 0;
    char *buf = (char *)mc_it_read_file(o2, &len);
    assert_non_null(buf);
    size_t renamed = 0, plen = strlen(first_id);
    for (char *q = buf; (q = memmem(q, (size_t)(buf + len - q), first_id, plen)) != NULL;
         q += plen, renamed++)
        q[0] = q[0] == 'x' ? 'y' : 'x';
    assert_int_equal(renamed, 100);
    assert_int_equal(mc_it_write_file(o3, buf, len), 0);
    free(buf);
    long long intents = q_int("SELECT count(*) FROM intents");
    batch(o3, r3, "100 orders: 90 issued, 10 rejected, 0 failed");
    assert_int_equal(q_int("SELECT count(*) FROM intents"), intents + 90);
    assert_int_equal(mc_it_results_load(r3, &res), 0);
    size_t refused = 0;
    for (size_t i = 0; i < res.n; i++)
        if (res.r[i].status == MC_STATUS_REJECTED) {
            assert_string_equal(res.r[i].error.rule, "SBR 6.1.1.3");
            assert_string_equal(res.r[i].error.field, "csr");
            assert_non_null(strstr(res.r[i].error.message, hex));
            refused++;
        }
    assert_int_equal(refused, 10);
    mc_it_results_free(&res);
}

/* Reads a DER CRL file; fails the test when it does not parse. */
static X509_CRL *crl_load(const char *path)
{
    size_t len = 0;
    uint8_t *der = mc_it_read_file(path, &len);
    assert_non_null(der);
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    assert_ptr_equal(p, der + len);
    free(der);
    return crl;
}

/* X509_verify_cert of a certificate with its issuing CA's CRL (leaf checked against it). */
static int verify_with_crl(X509_CRL *crl, const uint8_t *der, size_t len, int *error)
{
    const unsigned char *p = der;
    X509 *leaf = d2i_X509(NULL, &p, (long)len);
    assert_non_null(leaf);
    int ok = mc_it_verify_crl(g.it.root, g.it.ica, crl, leaf, error);
    assert_true(ok >= 0);
    X509_free(leaf);
    return ok;
}

/* `mailca crl` after the revocations above: the CRL verifies with the issuing CA's key, lists
 * exactly the store's revoked certificates, each with the reason it was revoked for (10
 * keyCompromise, 90 cessationOfOperation), and OpenSSL's chain check with it refuses a revoked
 * leaf and accepts an issued one; a second CRL takes the next number. */
static void test_crl(void **state)
{
    (void)state;
    char out[1100], out2[1100], r1[1100], r2[1100];
    snprintf(out, sizeof out, "%s/ca.crl", g.it.dir);
    snprintf(out2, sizeof out2, "%s/ca2.crl", g.it.dir);
    snprintf(r1, sizeof r1, "%s/a-results.msgpack", g.it.dir);
    snprintf(r2, sizeof r2, "%s/b-results.msgpack", g.it.dir);
    mc_it_run r;
    const char *args[] = {"crl", "--config", g.cfg, "--out", out, NULL};
    mc_it_mailca_argv(&r, 120, args);
    if (r.status != 0 || !strstr(r.out, "CRL number 1, 100 revoked certificate(s)"))
        fail_msg("mailca crl: exit %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);
    X509_CRL *crl = crl_load(out);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(g.it.ica)), 1);
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(rev), (int)q_int("SELECT count(*) FROM certificates"
                                                          " WHERE status = 'revoked'"));
    int kc = 0, cess = 0;
    for (int i = 0; i < sk_X509_REVOKED_num(rev); i++) {
        ASN1_ENUMERATED *reason =
            X509_REVOKED_get_ext_d2i(sk_X509_REVOKED_value(rev, i), NID_crl_reason, NULL, NULL);
        assert_non_null(reason);
        long v = ASN1_ENUMERATED_get(reason);
        kc += v == 1;
        cess += v == 5;
        ASN1_ENUMERATED_free(reason);
    }
    assert_int_equal(kc, 10);
    assert_int_equal(cess, 90);

    /* revoked (the second account's) and issued (the first's) leaves, judged with the CRL */
    mc_it_results res;
    int error = 0;
    assert_int_equal(mc_it_results_load(r2, &res), 0);
    assert_int_equal(verify_with_crl(crl, res.r[5].cert, res.r[5].cert_len, &error), 0);
    assert_int_equal(error, X509_V_ERR_CERT_REVOKED);
    mc_it_results_free(&res);
    assert_int_equal(mc_it_results_load(r1, &res), 0);
    if (verify_with_crl(crl, res.r[0].cert, res.r[0].cert_len, &error) != 1)
        fail_msg("an issued certificate with the CRL: %s", X509_verify_cert_error_string(error));
    mc_it_results_free(&res);
    X509_CRL_free(crl);

    /* the next CRL has the next number; nextUpdate beyond SBR 4.9.7's ten days is refused */
    const char *args2[] = {"crl", "--config",           g.cfg, "--out",
                           out2,  "--next-update-days", "3",   NULL};
    mc_it_mailca_argv(&r, 120, args2);
    if (r.status != 0 || !strstr(r.out, "CRL number 2, 100 revoked certificate(s)"))
        fail_msg("mailca crl: exit %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);
    const char *bad[] = {"crl", "--config", g.cfg, "--out", out2, "--next-update-days", "11", NULL};
    mc_it_mailca_argv(&r, 120, bad);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "SBR 4.9.7"));
    mc_it_run_free(&r);
    crl = crl_load(out2);
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(num);
    assert_int_equal(ASN1_INTEGER_get(num), 2);
    ASN1_INTEGER_free(num);
    X509_CRL_free(crl);
    /* SBR 5.4.1 2.v: each CRL published is in the audit log (the refused one is not) */
    assert_int_equal(q_int("SELECT count(*) FROM audit_log WHERE event = 'crl.published'"), 2);
    assert_int_equal(q_int("SELECT count(*) FROM audit_log WHERE event = 'crl.published'"
                           " AND json_extract(detail, '$.first_number') = 2"
                           " AND json_extract(detail, '$.entries') = 100"
                           " AND json_extract(detail, '$.next_update') -"
                           " json_extract(detail, '$.this_update') = 3 * 86400"),
                     1);

    /* `mailca status` says whether the CRL is current (SBR 4.9.7: reissued at least weekly) */
    const char *st[] = {"status", "--config", g.cfg, NULL};
    mc_it_mailca_argv(&r, 120, st);
    if (r.status != 0 || !strstr(r.out, "crl: current (number 2, "))
        fail_msg("status: exit %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);
    /* a latest CRL made 8 days ago, valid 10: overdue, and status fails */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(g.db, &db), SQLITE_OK);
    char sql[256];
    long long t = (long long)time(NULL);
    snprintf(sql, sizeof sql,
             "INSERT INTO crls (number, this_update, next_update, entries, created_at,"
             " published_at) VALUES (3, %lld, %lld, 100, %lld, %lld)",
             t - 8 * 86400, t + 2 * 86400, t - 8 * 86400, t - 8 * 86400);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    mc_it_mailca_argv(&r, 120, st);
    if (r.status != 1 || !strstr(r.out, "crl: OVERDUE"))
        fail_msg("status with an old CRL: exit %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);

    /* two runs finishing out of order: a file already holding a CRL whose number is not lower
     * is kept (here number 4 is made, then taken back from the store, and made again) */
    char out4[1100];
    snprintf(out4, sizeof out4, "%s/ca4.crl", g.it.dir);
    const char *args4[] = {"crl", "--config", g.cfg, "--out", out4, NULL};
    mc_it_mailca_argv(&r, 120, args4);
    if (r.status != 0 || !strstr(r.out, "CRL number 4,"))
        fail_msg("mailca crl: exit %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM crls WHERE number = 4", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    mc_it_mailca_argv(&r, 120, args4);
    if (r.status != 1 || !strstr(r.err, "already holds CRL number 4"))
        fail_msg("a CRL over one not older: exit %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);
    crl = crl_load(out4);
    num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_int_equal(ASN1_INTEGER_get(num), 4);
    ASN1_INTEGER_free(num);
    X509_CRL_free(crl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revoke_by_key_and_account),
        cmocka_unit_test(test_crl),
    };
    return cmocka_run_group_tests_name("it_revoke", tests, group_setup, group_teardown);
}

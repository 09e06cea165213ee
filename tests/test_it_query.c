/*
 * `mailca query` end to end: 60 certificates issued with `mailca batch` on a SoftHSM2 token
 * (orders from gen-orders: mailboxes user<i>@org<i mod 20>.example.com, each validated by SBR
 * 3.2.2.2), then listed and counted with the command. Every JSON line is read back with SQLite's
 * JSON functions and compared with the certificate the batch returned for that order (serial
 * and notBefore read from the DER with OpenSSL, independently of the store); selectors are
 * checked against the counts the orders imply; a revocation by a combined selector (domain and
 * lint set) revokes exactly those certificates, which the query then shows revoked. All of it
 * twice: on the CA's SQLite store and on a PostgreSQL store (a private server started here).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailca/lint.h"
#include "support/itutil.h"
#include "support/pgserver.h"

#define N_ORDERS 60

static struct {
    mc_it_ca it;
    char cfg[1024];    /* the CA's config: its SQLite store */
    char pg_cfg[1100]; /* the same with store.sqlite a PostgreSQL URI */
    const char *cur;   /* the config the commands run with */
    mc_pgserver *pg;
} g;

static int group_setup(void **state)
{
    (void)state;
    mc_errdetail err;
    char uri[600];
    mc_err_clear(&err);
    if (mc_it_ca_setup("it-query-", &g.it) != 0)
        return -1;
    snprintf(g.cfg, sizeof g.cfg, "%s/mailca.yaml", g.it.ca);
    snprintf(g.pg_cfg, sizeof g.pg_cfg, "%s/mailca-pg.yaml", g.it.ca);
    if (mc_pgserver_start(&g.pg, &err) != MC_OK) {
        fprintf(stderr, "private PostgreSQL server: %s\n", err.message);
        return -1;
    }
    snprintf(uri, sizeof uri, "\"%s\"", mc_pgserver_uri(g.pg));
    return mc_it_config_set(g.cfg, g.pg_cfg, "store.sqlite", uri);
}

static int group_teardown(void **state)
{
    (void)state;
    mc_pgserver_stop(g.pg);
    mc_it_ca_free(&g.it);
    return 0;
}

/* Runs `mailca query --config cfg args...`; fails the test unless it exits with want_status. */
static void query(mc_it_run *r, int want_status, const char *const *args)
{
    const char *argv[24] = {"query", "--config", g.cur};
    size_t n = 3;
    for (; *args && n < 23; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    mc_it_mailca_argv(r, 120, argv);
    if (r->status != want_status)
        fail_msg("mailca query: exit %d, want %d: out %.300s err %s", r->status, want_status,
                 r->out, r->err);
}

/* `mailca query --count` with args: the number it prints. */
static long count(const char *const *args)
{
    const char *argv[24] = {"--count"};
    size_t n = 1;
    for (; *args && n < 23; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    mc_it_run r;
    query(&r, 0, argv);
    char *end = NULL;
    long v = strtol(r.out, &end, 10);
    if (!end || strcmp(end, "\n") != 0)
        fail_msg("--count printed '%s'", r.out);
    mc_it_run_free(&r);
    return v;
}

static char *json_text(sqlite3 *db, const char *line, const char *path)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT json_valid(?1), json_extract(?1, ?2)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    if (sqlite3_column_int(st, 0) != 1)
        fail_msg("not a JSON line: %s", line);
    const unsigned char *t = sqlite3_column_text(st, 1);
    char *out = strdup(t ? (const char *)t : "<null>");
    sqlite3_finalize(st);
    return out;
}

static void expect_text(sqlite3 *db, const char *line, const char *path, const char *want)
{
    char *got = json_text(db, line, path);
    if (strcmp(got, want) != 0)
        fail_msg("%s: '%s', want '%s' in %s", path, got, want, line);
    free(got);
}

/* The serial (lower-case hex of the DER INTEGER's content octets, as the store keeps them) and
 * notBefore (ISO 8601) of a certificate. */
static void cert_facts(const uint8_t *der, size_t len, char *serial, size_t scap, char *nb,
                       size_t ncap)
{
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    assert_non_null(bn);
    char *hex = BN_bn2hex(bn);
    assert_non_null(hex);
    /* BN_bn2hex drops the leading zero octet a positive serial with its top bit set carries */
    size_t off = 0;
    if (BN_num_bits(bn) % 8 == 0)
        off = (size_t)snprintf(serial, scap, "00");
    snprintf(serial + off, scap - off, "%s", hex);
    for (char *c = serial; *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
    OPENSSL_free(hex);
    BN_free(bn);
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm), 1);
    strftime(nb, ncap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    X509_free(x);
}

/* The scenario on the store of config cfg (tag names its files). */
static void query_issued(const char *cfg, const char *tag)
{
    char orders[1100], results[1100];
    g.cur = cfg;
    snprintf(orders, sizeof orders, "%s/orders-%s.msgpack", g.it.dir, tag);
    snprintf(results, sizeof results, "%s/results-%s.msgpack", g.it.dir, tag);
    mc_it_run r;
    mc_it_mailca(&r, "gen-orders", "--count", "60", "--pool", "20", orders, NULL);
    if (r.status != 0)
        fail_msg("gen-orders: %d: %s", r.status, r.err);
    mc_it_run_free(&r);
    mc_it_mailca(&r, "batch", "--config", cfg, orders, results, NULL);
    if (r.status != 0 || !strstr(r.err, "60 orders: 60 issued, 0 rejected, 0 failed"))
        fail_msg("mailca batch: %d: %s", r.status, r.err);
    mc_it_run_free(&r);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, N_ORDERS);

    /* no selector: every certificate */
    const char *none[] = {NULL};
    assert_int_equal(count(none), N_ORDERS);

    /* JSON Lines: one valid object per certificate, each as the batch returned it */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    query(&r, 0, none);
    size_t lines = 0, matched = 0;
    for (char *line = r.out, *nl; *line; line = nl + 1, lines++) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *order = json_text(db, line, "$.order_id");
        for (size_t i = 0; i < res.n; i++) {
            if (strcmp(res.r[i].order_id, order) != 0)
                continue;
            char serial[64], nb[32];
            cert_facts(res.r[i].cert, res.r[i].cert_len, serial, sizeof serial, nb, sizeof nb);
            expect_text(db, line, "$.serial", serial);
            expect_text(db, line, "$.not_before", nb);
            matched++;
        }
        free(order);
        expect_text(db, line, "$.account", "acct-bench-platform");
        expect_text(db, line, "$.status", "issued");
        expect_text(db, line, "$.revoked_at", "<null>");
        expect_text(db, line, "$.lint_version", MC_LINT_SET_VERSION);
        expect_text(db, line, "$.engine_version", MAILCA_VERSION);
        expect_text(db, line, "$.mailboxes[1]", "<null>");
        /* the evidence is the recorded JSON text, itself parseable */
        char *ev = json_text(db, line, "$.evidence");
        expect_text(db, ev, "$.mailboxes[0].method", "3.2.2.2");
        free(ev);
    }
    assert_int_equal(lines, N_ORDERS);
    assert_int_equal(matched, N_ORDERS);
    mc_it_run_free(&r);

    /* selectors against what the orders imply: user<i>@org<i mod 20>, all by 3.2.2.2 */
    const char *dom3[] = {"--domain", "org3.example.com", NULL};
    assert_int_equal(count(dom3), 3);
    const char *dom3_up[] = {"--domain", "ORG3.example.COM", NULL};
    assert_int_equal(count(dom3_up), 3);
    const char *dom_parent[] = {"--domain", "example.com", NULL};
    assert_int_equal(count(dom_parent), 0);
    const char *m2[] = {"--method", "3.2.2.2", NULL};
    assert_int_equal(count(m2), N_ORDERS);
    const char *m1[] = {"--method", "3.2.2.1", NULL};
    assert_int_equal(count(m1), 0);
    /* the test CA runs with CAA lookups off: every evidence records it (SBR 4.2.2.1) */
    const char *caa[] = {"--caa-unchecked", "--domain", "org5.example.com", NULL};
    assert_int_equal(count(caa), 3);
    char lv[128];
    snprintf(lv, sizeof lv, "%s", MC_LINT_SET_VERSION);
    const char *lint[] = {"--lint-version", lv,  "--lint-enforced", lv, "--engine-version",
                          MAILCA_VERSION,   NULL};
    assert_int_equal(count(lint), N_ORDERS);
    const char *future[] = {"--issued-after", "now", NULL};
    assert_int_equal(count(future), 0);
    const char *valid_now[] = {"--unexpired-at", "now", "--expired-at", "2100-01-01", NULL};
    assert_int_equal(count(valid_now), N_ORDERS);
    /* nothing matches: the query ran, exit 0, no output */
    const char *nobody[] = {"--account", "nobody", NULL};
    query(&r, 0, nobody);
    assert_string_equal(r.out, "");
    mc_it_run_free(&r);

    /* bad values: exit 1, the option and the rule named */
    const char *bad_m[] = {"--method", "3.2.2.9", NULL};
    query(&r, 1, bad_m);
    assert_non_null(strstr(r.err, "--method"));
    assert_non_null(strstr(r.err, "SBR 3.2.2"));
    mc_it_run_free(&r);
    const char *bad_win[] = {"--issued-after", "2026-02-01", "--issued-before", "2026-01-01", NULL};
    query(&r, 1, bad_win);
    assert_non_null(strstr(r.err, "--issued-before"));
    mc_it_run_free(&r);
    const char *bad_mix[] = {"--count", "--format", "csv", NULL};
    query(&r, 1, bad_mix);
    mc_it_run_free(&r);
    const char *bad_fmt[] = {"--format", "xml", NULL};
    query(&r, 1, bad_fmt);
    mc_it_run_free(&r);

    /* revoke by a combined selector: the domain's three, not one more */
    const char *rv_dry[] = {"revoke",           "--config",       cfg, "--domain",
                            "org3.example.com", "--lint-version", lv,  "--reason",
                            "superseded",       "--dry-run",      NULL};
    mc_it_mailca_argv(&r, 120, rv_dry);
    if (r.status != 0 || !strstr(r.out, "dry run, nothing written: 3 selected, 3 would be revoked"))
        fail_msg("revoke --dry-run: %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);
    const char *rv[] = {"revoke",         "--config", cfg,        "--domain",   "org3.example.com",
                        "--lint-version", lv,         "--reason", "superseded", NULL};
    mc_it_mailca_argv(&r, 120, rv);
    if (r.status != 0 || !strstr(r.out, "3 selected, 3 revoked (superseded)"))
        fail_msg("revoke: %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);
    const char *revoked[] = {"--status", "revoked", NULL};
    assert_int_equal(count(revoked), 3);
    const char *issued[] = {"--status", "issued", NULL};
    assert_int_equal(count(issued), N_ORDERS - 3);

    /* CSV: header, then the revoked ones with their reason, CRLF line ends */
    const char *csv[] = {
        "--status", "revoked", "--format", "csv", "--fields", "mailboxes,status,reason", NULL};
    query(&r, 0, csv);
    const char *want_rows[] = {"user3@org3.example.com,revoked,superseded\r\n",
                               "user23@org3.example.com,revoked,superseded\r\n",
                               "user43@org3.example.com,revoked,superseded\r\n"};
    assert_true(strncmp(r.out, "mailboxes,status,reason\r\n", 25) == 0);
    for (size_t i = 0; i < 3; i++)
        if (!strstr(r.out, want_rows[i]))
            fail_msg("csv lacks %s: %s", want_rows[i], r.out);
    size_t crlf = 0;
    for (const char *p = r.out; (p = strstr(p, "\r\n")) != NULL; p += 2)
        crlf++;
    assert_int_equal(crlf, 4);
    mc_it_run_free(&r);

    /* no selector is refused for revoke, and --help says an empty query lists everything */
    const char *rv_all[] = {"revoke", "--config", cfg, "--reason", "superseded", NULL};
    mc_it_mailca_argv(&r, 60, rv_all);
    assert_int_equal(r.status, 1);
    mc_it_run_free(&r);
    assert_int_equal(count(revoked), 3);
    const char *help[] = {"query", "--help", NULL};
    mc_it_mailca_argv(&r, 60, help);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "No selector: every certificate"));
    mc_it_run_free(&r);
    sqlite3_close(db);
    mc_it_results_free(&res);
}

static void test_query_sqlite(void **state)
{
    (void)state;
    query_issued(g.cfg, "sqlite");
}

/* The same commands over a PostgreSQL store (streamed in single-row mode there). */
static void test_query_postgresql(void **state)
{
    (void)state;
    query_issued(g.pg_cfg, "pg");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_sqlite),
        cmocka_unit_test(test_query_postgresql),
    };
    return cmocka_run_group_tests_name("it_query", tests, group_setup, group_teardown);
}

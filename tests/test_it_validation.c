/*
 * Order validation in the pipeline (issue 6): the SBR 4.2.1 reuse window of each mailbox's
 * validation evidence is checked at issuance, and with CAA checks on (config caa.enabled), a
 * mailbox domain whose CAA cannot be looked up fails the order, retryable, and nothing is signed
 * (SBR 4.2.2.1: fail closed). The CAA decisions themselves are tested against a real DNS server in
 * test_it_caa.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/csrgen.h"
#include "support/itutil.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static mc_it_ca g;

static int group_setup(void **state)
{
    (void)state;
    return mc_it_ca_setup("it-validation-", &g);
}

static int group_teardown(void **state)
{
    (void)state;
    mc_it_ca_free(&g);
    return 0;
}

/* Writes one order per (id, method, age in seconds), for accounts[i] (NULL: all the same). */
static void write_orders_for(const char *path, const char *const *ids, const char *const *methods,
                             const int64_t *ages, const char *const *accounts, size_t n)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "user%zu@example.com", i);
        mc_csrgen_mailbox mb = {addr, methods[i], now - ages[i], "ref-1"};
        mc_csrgen_order o = {.id = ids[i],
                             .account = accounts ? accounts[i] : "acct-validation",
                             .profile = "mailbox-strict",
                             .usage = "signing",
                             .mailboxes = &mb,
                             .n_mailboxes = 1,
                             .csr = g.csr,
                             .csr_len = g.csr_len};
        assert_int_equal(mc_csrgen_order_pack(&o, &sb), 0);
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(sb.data, 1, sb.size, f), sb.size);
    fclose(f);
    msgpack_sbuffer_destroy(&sb);
}

static void write_orders(const char *path, const char *const *ids, const char *const *methods,
                         const int64_t *ages, size_t n)
{
    write_orders_for(path, ids, methods, ages, NULL, n);
}

static const mc_result *by_id(const mc_it_results *res, const char *id)
{
    for (size_t i = 0; i < res->n; i++)
        if (strcmp(res->r[i].order_id, id) == 0)
            return &res->r[i];
    fail_msg("no result for %s", id);
    return NULL;
}

static void run_batch(const char *cfg, const char *orders, const char *results, int want_status)
{
    mc_it_run r;
    int st = mc_it_mailca(&r, "batch", "--quiet", "--config", cfg, orders, results, NULL);
    if (st != want_status)
        fail_msg("batch: exit %d (want %d): %s", st, want_status, r.err);
    mc_it_run_free(&r);
}

/* SBR 4.2.1: 30 days for 3.2.2.2 (email a random value), 398 for 3.2.2.1 (domain). */
static void test_evidence_windows(void **state)
{
    (void)state;
    char orders[700], results[700], cfg[700];
    snprintf(orders, sizeof orders, "%s/ev.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/ev-results.msgpack", g.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    const char *ids[] = {"ev-fresh", "ev-expired", "ev-domain-100d", "ev-domain-expired"};
    const char *methods[] = {"3.2.2.2", "3.2.2.2", "3.2.2.1", "3.2.2.1"};
    const int64_t ages[] = {3600, 31 * 86400LL, 100 * 86400LL, 399 * 86400LL};
    write_orders(orders, ids, methods, ages, 4);
    run_batch(cfg, orders, results, 0);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, 4);
    assert_int_equal(by_id(&res, "ev-fresh")->status, MC_STATUS_ISSUED);
    assert_int_equal(by_id(&res, "ev-domain-100d")->status, MC_STATUS_ISSUED);
    const char *bad[] = {"ev-expired", "ev-domain-expired"};
    for (int i = 0; i < 2; i++) {
        const mc_result *r = by_id(&res, bad[i]);
        assert_int_equal(r->status, MC_STATUS_REJECTED);
        assert_string_equal(r->error.rule, "SBR 4.2.1");
        assert_string_equal(r->error.field, "mailboxes[0].validated_at");
        assert_non_null(strstr(r->error.message, "user"));
    }
    mc_it_results_free(&res);
}

/* Issue 6: a subject key belongs to the first account that used it. Another account's order for
 * the same key is rejected (naming the key field and the rule) and leaves no intent; the owning
 * account may use it again; a second run answers the same. */
static void test_key_reuse_across_accounts(void **state)
{
    (void)state;
    char orders[700], results[700], cfg[700], db[700];
    snprintf(orders, sizeof orders, "%s/kr.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/kr-results.msgpack", g.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    snprintf(db, sizeof db, "%s/mailca.db", g.ca);
    /* g.csr's key is the same in every order of this file's tests: "acct-validation" owns it
     * after test_evidence_windows (or the first order here). */
    const char *ids[] = {"kr-owner", "kr-other", "kr-owner-again", "kr-prefix"};
    const char *methods[] = {"3.2.2.2", "3.2.2.2", "3.2.2.2", "3.2.2.2"};
    const int64_t ages[] = {60, 60, 60, 60};
    const char *accounts[] = {"acct-validation", "acct-intruder", "acct-validation", "acct-valid"};
    write_orders_for(orders, ids, methods, ages, accounts, 4);
    sqlite3 *sdb = mc_it_db_open(db);
    assert_non_null(sdb);
    long long before = mc_it_db_count(sdb, "intents");
    for (int run = 0; run < 2; run++) {
        run_batch(cfg, orders, results, 0);
        mc_it_results res;
        assert_int_equal(mc_it_results_load(results, &res), 0);
        assert_int_equal(res.n, 4);
        assert_int_equal(by_id(&res, "kr-owner")->status, MC_STATUS_ISSUED);
        assert_int_equal(by_id(&res, "kr-owner-again")->status, MC_STATUS_ISSUED);
        const char *bad[] = {"kr-other", "kr-prefix"};
        for (int i = 0; i < 2; i++) {
            const mc_result *r = by_id(&res, bad[i]);
            assert_int_equal(r->status, MC_STATUS_REJECTED);
            assert_string_equal(r->error.rule, "orders.md key-reuse");
            assert_string_equal(r->error.field, "csr");
            assert_non_null(strstr(r->error.message, "another account"));
            assert_null(strstr(r->error.message, "acct-validation"));
            assert_int_equal(r->serial_len, 0);
        }
        mc_it_results_free(&res);
        /* two intents (and certificates) for the owner; none for the others */
        assert_int_equal(mc_it_db_count(sdb, "intents"), before + 2);
    }
    sqlite3_close(sdb);
}

/* Rewrites the config's caa section: on, one resolver that never answers, a short timeout. */
static void enable_caa(const char *cfg, const char *out)
{
    FILE *f = fopen(cfg, "r"), *o = fopen(out, "w");
    char line[1024], section[64] = "";
    assert_non_null(f);
    assert_non_null(o);
    while (fgets(line, sizeof line, f)) {
        if (line[0] != ' ' && line[0] != '#')
            sscanf(line, "%63[^:]", section);
        if (strcmp(section, "caa") == 0 && strstr(line, "enabled:"))
            fputs("  enabled: true\n", o);
        else if (strcmp(section, "caa") == 0 && strstr(line, "resolvers:"))
            fputs("  resolvers: \"127.0.0.1@9\"\n", o); /* discard port: nothing answers */
        else if (strcmp(section, "caa") == 0 && strstr(line, "issuer_domains:"))
            fputs("  issuer_domains: \"mailca.test\"\n", o);
        else if (strcmp(section, "caa") == 0 && strstr(line, "timeout_ms:"))
            fputs("  timeout_ms: 300\n", o);
        else
            fputs(line, o);
    }
    fclose(f);
    fclose(o);
}

static void test_caa_fails_closed(void **state)
{
    (void)state;
    char orders[700], results[700], cfg[700], caa_cfg[700], db[700];
    snprintf(orders, sizeof orders, "%s/caa.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/caa-results.msgpack", g.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    snprintf(caa_cfg, sizeof caa_cfg, "%s/mailca-caa.yaml", g.ca);
    snprintf(db, sizeof db, "%s/mailca.db", g.ca);
    enable_caa(cfg, caa_cfg);
    sqlite3 *sdb = mc_it_db_open(db);
    assert_non_null(sdb);
    long long before = mc_it_db_count(sdb, "intents");
    const char *ids[] = {"caa-1", "caa-2", "caa-3"};
    const char *methods[] = {"3.2.2.2", "3.2.2.2", "3.2.2.2"};
    const int64_t ages[] = {60, 60, 60};
    write_orders(orders, ids, methods, ages, 3);
    run_batch(caa_cfg, orders, results, 3); /* 3: some orders failed */
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, 3);
    for (size_t i = 0; i < res.n; i++) {
        assert_int_equal(res.r[i].status, MC_STATUS_FAILED);
        assert_int_equal(res.r[i].error.code, MC_ERR_DNS);
        assert_string_equal(res.r[i].error.field, "mailboxes[0].address");
    }
    mc_it_results_free(&res);
    /* nothing was recorded for signing */
    assert_int_equal(mc_it_db_count(sdb, "intents"), before);
    sqlite3_close(sdb);
}

/* The low 80 bits of the SHA-1 of `openssl rsa -noout -modulus` for key, as openssl-blacklist
 * writes them (computed with BN_print, as that command does). */
static void weak_fp(EVP_PKEY *key, char out[21])
{
    BIGNUM *n = NULL;
    assert_true(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1);
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_true(BIO_puts(b, "Modulus=") > 0 && BN_print(b, n) == 1 && BIO_puts(b, "\n") > 0);
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    uint8_t h[20];
    unsigned hl = 0;
    assert_true(EVP_Digest(p, (size_t)len, h, &hl, EVP_sha1(), NULL) == 1);
    for (int i = 0; i < 10; i++)
        snprintf(out + 2 * i, 3, "%02x", h[10 + i]);
    BIO_free(b);
    BN_free(n);
}

/* SBR 6.1.1.3 item 5: with keys.weak_rsa_blocklist set, an order whose RSA key is on the list
 * is rejected (field csr, the rule) and leaves no intent; another RSA key and an EC key are
 * issued. The same with worker processes, which load the list from the run's config. */
static void test_weak_key_list(void **state)
{
    (void)state;
    char orders[700], results[700], cfg[700], weak_cfg[700], list[700], db[700], val[800];
    snprintf(orders, sizeof orders, "%s/weak.msgpack", g.dir);
    snprintf(results, sizeof results, "%s/weak-results.msgpack", g.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca);
    snprintf(weak_cfg, sizeof weak_cfg, "%s/mailca-weak.yaml", g.ca);
    snprintf(list, sizeof list, "%s/blacklist.RSA-2048", g.dir);
    snprintf(db, sizeof db, "%s/mailca.db", g.ca);
    EVP_PKEY *weak = mc_csrgen_key(MC_KEY_RSA, 2048), *good = mc_csrgen_key(MC_KEY_RSA, 2048);
    assert_non_null(weak);
    assert_non_null(good);
    char fp[21], text[128];
    weak_fp(weak, fp);
    snprintf(text, sizeof text, "# test list\n00005890bc78bcbee3ca\n%s\n", fp);
    assert_int_equal(mc_it_write_file(list, text, strlen(text)), 0);
    snprintf(val, sizeof val, "\"%s\"", list);
    assert_int_equal(mc_it_config_set(cfg, weak_cfg, "keys.weak_rsa_blocklist", val), 0);
    size_t wl = 0, gl = 0;
    uint8_t *wcsr = mc_csrgen_csr(weak, NULL, 0, &wl), *gcsr = mc_csrgen_csr(good, NULL, 0, &gl);
    assert_non_null(wcsr);
    assert_non_null(gcsr);
    sqlite3 *sdb = mc_it_db_open(db);
    assert_non_null(sdb);
    for (int procs = 0; procs <= 2; procs += 2) {
        char ids[3][32];
        const uint8_t *csrs[3] = {wcsr, gcsr, g.csr};
        size_t lens[3] = {wl, gl, g.csr_len};
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        int64_t now = (int64_t)time(NULL);
        for (int i = 0; i < 3; i++) {
            snprintf(ids[i], sizeof ids[i], "weak-p%d-%d", procs, i);
            char addr[64];
            snprintf(addr, sizeof addr, "weak%d-%d@example.com", procs, i);
            mc_csrgen_mailbox mb = {addr, "3.2.2.2", now - 60, "ref-weak"};
            mc_csrgen_order o = {.id = ids[i],
                                 .account = "acct-validation",
                                 .profile = "mailbox-strict",
                                 .usage = "signing",
                                 .mailboxes = &mb,
                                 .n_mailboxes = 1,
                                 .csr = csrs[i],
                                 .csr_len = lens[i]};
            assert_int_equal(mc_csrgen_order_pack(&o, &sb), 0);
        }
        assert_int_equal(mc_it_write_file(orders, sb.data, sb.size), 0);
        msgpack_sbuffer_destroy(&sb);
        long long before = mc_it_db_count(sdb, "intents");
        mc_it_run r;
        char pn[8];
        snprintf(pn, sizeof pn, "%d", procs);
        int st = mc_it_mailca(&r, "batch", "--quiet", "--procs", pn, "--config", weak_cfg, orders,
                              results, NULL);
        if (st != 0)
            fail_msg("batch --procs %d: exit %d (want 0: rejections are answers): %s", procs, st,
                     r.err);
        /* configured: no notice that RSA keys go unchecked */
        assert_null(strstr(r.err, "no weak-key list"));
        mc_it_run_free(&r);
        mc_it_results res;
        assert_int_equal(mc_it_results_load(results, &res), 0);
        assert_int_equal(res.n, 3);
        const mc_result *w = by_id(&res, ids[0]);
        assert_int_equal(w->status, MC_STATUS_REJECTED);
        assert_string_equal(w->error.field, "csr");
        assert_string_equal(w->error.rule, "SBR 6.1.1.3");
        assert_non_null(strstr(w->error.message, "weak key"));
        assert_int_equal(by_id(&res, ids[1])->status, MC_STATUS_ISSUED);
        assert_int_equal(by_id(&res, ids[2])->status, MC_STATUS_ISSUED);
        mc_it_results_free(&res);
        assert_int_equal(mc_it_db_count(sdb, "intents"), before + 2);
    }
    sqlite3_close(sdb);
    /* without the list the same key is issued, and the run says RSA keys went unchecked */
    mc_it_run r;
    int st = mc_it_mailca(&r, "batch", "--quiet", "--config", cfg, orders, results, NULL);
    assert_int_equal(st, 0);
    assert_non_null(strstr(r.err, "no weak-key list"));
    mc_it_run_free(&r);
    free(wcsr);
    free(gcsr);
    EVP_PKEY_free(weak);
    EVP_PKEY_free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evidence_windows),
        cmocka_unit_test(test_caa_fails_closed),
        cmocka_unit_test(test_key_reuse_across_accounts),
        cmocka_unit_test(test_weak_key_list),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

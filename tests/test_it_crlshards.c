/*
 * Partitioned CRLs end to end (ca.crl_shards, `mailca crl --out-dir`), through the real binary
 * and a SoftHSM2 token: 20 certificates issued with one CRL URL, then 160 with ca.crl_shards 8.
 * OpenSSL reads each sharded certificate's cRLDistributionPoints and finds the shard of its
 * serial (computed here from the serial's last four octets, independently of the engine);
 * certificates are revoked (subject keys, keyCompromise), the shards are built, and
 * OpenSSL checks every shard CRL: signed by the issuing CA, a critical issuingDistributionPoint
 * naming exactly its URL (RFC 5280 5.2.5), every revoked certificate in exactly one shard (its
 * own), X509_verify_cert with X509_V_FLAG_CRL_CHECK refusing each revoked certificate and
 * accepting each good one with its shard's CRL, and finding another shard's out of scope.
 * Then: numbers never go backwards per shard, `mailca status` judges the shards, lowering
 * ca.crl_shards keeps serving the shards issued certificates name, and the refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support/itutil.h"

#define SHARDS 8
#define URL_TMPL MC_IT_BASE_URL "/crl/{shard}.crl"

static struct {
    mc_it_ca it;
    char cfg1[1024], cfg8[1024], cfg4[1024], db[1024], dir[1100];
} g;

static int group_setup(void **state)
{
    (void)state;
    if (mc_it_ca_setup("it-crlshards-", &g.it) != 0)
        return -1;
    char tmp[1100];
    snprintf(g.cfg1, sizeof g.cfg1, "%s/mailca.yaml", g.it.ca);
    snprintf(tmp, sizeof tmp, "%s/tmp.yaml", g.it.ca);
    snprintf(g.cfg8, sizeof g.cfg8, "%s/shards8.yaml", g.it.ca);
    snprintf(g.cfg4, sizeof g.cfg4, "%s/shards4.yaml", g.it.ca);
    snprintf(g.db, sizeof g.db, "%s/mailca.db", g.it.ca);
    snprintf(g.dir, sizeof g.dir, "%s/crl", g.it.dir);
    if (mc_it_config_set(g.cfg1, tmp, "ca.crl_url", "\"" URL_TMPL "\"") != 0 ||
        mc_it_config_set(tmp, g.cfg8, "ca.crl_shards", "8") != 0 ||
        mc_it_config_set(g.cfg8, g.cfg4, "ca.crl_shards", "4") != 0 || mkdir(g.dir, 0755) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mc_it_ca_free(&g.it);
    return 0;
}

static void run_ok(const char *want, const char *const *argv)
{
    mc_it_run r;
    mc_it_mailca_argv(&r, 300, argv);
    if (r.status != 0 || !strstr(r.out, want))
        fail_msg("mailca %s: exit %d, want \"%s\": out %s err %s", argv[0], r.status, want, r.out,
                 r.err);
    mc_it_run_free(&r);
}

static void run_fails(int status, const char *want_err, const char *const *argv)
{
    mc_it_run r;
    mc_it_mailca_argv(&r, 120, argv);
    if (r.status != status || !strstr(r.err, want_err))
        fail_msg("mailca %s: exit %d (want %d), want \"%s\": out %s err %s", argv[0], r.status,
                 status, want_err, r.out, r.err);
    mc_it_run_free(&r);
}

static void issue(const char *cfg, const char *name, const char *count, const char *pool,
                  mc_it_results *res)
{
    char orders[1100], results[1100], want[64];
    snprintf(orders, sizeof orders, "%s/%s.msgpack", g.it.dir, name);
    snprintf(results, sizeof results, "%s/%s-results.msgpack", g.it.dir, name);
    const char *gen[] = {"gen-orders", "--count", count, "--pool", pool, orders, NULL};
    mc_it_run r;
    mc_it_mailca_argv(&r, 120, gen);
    assert_int_equal(r.status, 0);
    mc_it_run_free(&r);
    snprintf(want, sizeof want, "%s orders: %s issued", count, count);
    mc_it_mailca(&r, "batch", "--config", cfg, orders, results, NULL);
    if (r.status != 0 || !strstr(r.err, want))
        fail_msg("mailca batch: %d: %s", r.status, r.err);
    mc_it_run_free(&r);
    assert_int_equal(mc_it_results_load(results, res), 0);
}

/* One issued certificate as the test sees it. */
typedef struct cert {
    X509 *x;
    uint8_t serial[32];
    size_t serial_len;
    int shard; /* from the serial; -1 for the unsharded ones */
    int revoked;
} cert;

/* The shard of a serial, computed here: its last four octets, big-endian, modulo SHARDS. */
static int shard_of(const uint8_t *s, size_t n)
{
    uint32_t v = 0;
    for (size_t i = n > 4 ? n - 4 : 0; i < n; i++)
        v = (v << 8) | s[i];
    return (int)(v % SHARDS);
}

static void crldp_uri(X509 *x, char *buf, size_t cap)
{
    STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
    assert_non_null(dps);
    assert_int_equal(sk_DIST_POINT_num(dps), 1);
    DIST_POINT *dp = sk_DIST_POINT_value(dps, 0);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
    assert_int_equal(gn->type, GEN_URI);
    size_t l = (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier);
    assert_true(l < cap);
    memcpy(buf, ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), l);
    buf[l] = '\0';
    CRL_DIST_POINTS_free(dps);
}

static X509_CRL *crl_load(const char *path)
{
    size_t len = 0;
    uint8_t *der = mc_it_read_file(path, &len);
    if (!der)
        fail_msg("no CRL at %s", path);
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    assert_ptr_equal(p, der + len);
    free(der);
    return crl;
}

static X509_CRL *shard_crl(int k)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%04d.crl", g.dir, k);
    return crl_load(path);
}

static long crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(num);
    long v = ASN1_INTEGER_get(num);
    ASN1_INTEGER_free(num);
    return v;
}

/* X509_verify_cert of a leaf with one CRL of the issuing CA (the leaf checked against it). */
static int verify_with_crl(X509_CRL *crl, X509 *leaf, int *error)
{
    int ok = mc_it_verify_crl(g.it.root, g.it.ica, crl, leaf, error);
    assert_true(ok >= 0);
    return ok;
}

/* The shard CRL k: signed by the issuing CA, number, and a critical issuingDistributionPoint
 * whose fullName is exactly shard k's URL, onlyContainsUserCerts (RFC 5280 5.2.5). */
static void check_shard(X509_CRL *crl, int k)
{
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(g.it.ica)), 1);
    int i = X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1);
    assert_true(i >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_CRL_get_ext(crl, i)), 1);
    ISSUING_DIST_POINT *idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, NULL, NULL);
    assert_non_null(idp);
    assert_true(idp->onlyuser > 0);
    assert_int_equal(idp->distpoint->type, 0);
    assert_int_equal(sk_GENERAL_NAME_num(idp->distpoint->name.fullname), 1);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(idp->distpoint->name.fullname, 0);
    char want[256];
    snprintf(want, sizeof want, MC_IT_BASE_URL "/crl/%04d.crl", k);
    assert_int_equal(gn->type, GEN_URI);
    assert_int_equal(ASN1_STRING_length(gn->d.uniformResourceIdentifier), (int)strlen(want));
    assert_memory_equal(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), want, strlen(want));
    ISSUING_DIST_POINT_free(idp);
}

/* Entries of a CRL: an empty shard has no revokedCertificates (RFC 5280 5.1.2.6), for which
 * OpenSSL's stack is NULL and its count -1. */
static int crl_entries(X509_CRL *crl)
{
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    return rev ? sk_X509_REVOKED_num(rev) : 0;
}

static int crl_lists(X509_CRL *crl, const cert *c)
{
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    for (int i = 0; i < sk_X509_REVOKED_num(rev); i++) {
        const ASN1_INTEGER *sn = X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rev, i));
        if ((size_t)sn->length == c->serial_len && memcmp(sn->data, c->serial, c->serial_len) == 0)
            return 1;
    }
    return 0;
}

static void load_certs(const mc_it_results *res, cert *v, int sharded)
{
    for (size_t i = 0; i < res->n; i++) {
        const uint8_t *p = res->r[i].cert;
        cert *c = &v[i];
        memset(c, 0, sizeof *c);
        c->x = d2i_X509(NULL, &p, (long)res->r[i].cert_len);
        assert_non_null(c->x);
        const ASN1_INTEGER *sn = X509_get0_serialNumber(c->x);
        assert_true(sn->length > 0 && (size_t)sn->length <= sizeof c->serial);
        c->serial_len = (size_t)sn->length;
        memcpy(c->serial, sn->data, c->serial_len);
        c->shard = sharded ? shard_of(c->serial, c->serial_len) : -1;
        char got[256], want[256];
        crldp_uri(c->x, got, sizeof got);
        if (sharded)
            snprintf(want, sizeof want, MC_IT_BASE_URL "/crl/%04d.crl", c->shard);
        else
            snprintf(want, sizeof want, MC_IT_BASE_URL "/issuing-ca.crl");
        assert_string_equal(got, want);
    }
}

/* The status of each certificate, from the store. */
static void mark_revoked(cert *v, size_t n)
{
    sqlite3 *db = mc_it_db_open(g.db);
    assert_non_null(db);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT status FROM certificates WHERE serial = ?1", -1, &st, NULL),
        SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_blob(st, 1, v[i].serial, (int)v[i].serial_len, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        v[i].revoked = strcmp((const char *)sqlite3_column_text(st, 0), "revoked") == 0;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Revokes every certificate of the subject key of c (keyCompromise). */
static void revoke_key_of(const cert *c, const char *cfg)
{
    uint8_t *spki = NULL;
    int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c->x), &spki);
    assert_true(spki_len > 0);
    uint8_t md[32];
    unsigned md_len = 0;
    assert_int_equal(EVP_Digest(spki, (size_t)spki_len, md, &md_len, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    const char *argv[] = {"revoke",   "--config",      cfg, "--key-sha256", hex,
                          "--reason", "keyCompromise", NULL};
    run_ok("revoked (keyCompromise)", argv);
}

static void test_crl_shards(void **state)
{
    (void)state;
    /* 20 certificates under one CRL URL (before sharding), 160 under 8 shards */
    mc_it_results r1, r8;
    issue(g.cfg1, "plain", "20", "2", &r1);
    issue(g.cfg8, "sharded", "160", "16", &r8);
    const size_t n1 = r1.n, n8 = r8.n, n = n1 + n8;
    cert *v = calloc(n, sizeof *v);
    assert_non_null(v);
    load_certs(&r1, v, 0);
    load_certs(&r8, v + n1, 1);
    mc_it_results_free(&r1);
    mc_it_results_free(&r8);
    int per_shard[SHARDS] = {0};
    for (size_t i = n1; i < n; i++)
        per_shard[v[i].shard]++;
    for (int k = 0; k < SHARDS; k++) /* 160 random serials: every shard has some */
        assert_true(per_shard[k] > 0);

    /* revoked: one key of the unsharded ones, three of the sharded ones (gen-orders spreads
     * orders over its keys at random: the counts come from the store) */
    revoke_key_of(&v[0], g.cfg1);
    revoke_key_of(&v[n1 + 0], g.cfg8);
    revoke_key_of(&v[n1 + 1], g.cfg8);
    revoke_key_of(&v[n1 + 2], g.cfg8);
    mark_revoked(v, n);
    size_t revoked_plain = 0, revoked_sharded = 0;
    for (size_t i = 0; i < n; i++)
        *(i < n1 ? &revoked_plain : &revoked_sharded) += (size_t)v[i].revoked;
    assert_true(revoked_plain > 0 && revoked_plain < n1);
    assert_true(revoked_sharded > 0 && revoked_sharded < n8);
    char want[160], want2[160];
    snprintf(want, sizeof want, "8 shard CRL(s), numbers 1..8, %zu revoked certificate(s)",
             revoked_sharded);
    snprintf(want2, sizeof want2, "%zu revoked certificate(s) name no shard of ca.crl_url",
             revoked_plain);

    /* every shard, empty ones too; the unsharded revoked ones are in none (said so) */
    const char *crl8[] = {"crl", "--config", g.cfg8, "--out-dir", g.dir, NULL};
    mc_it_run r;
    mc_it_mailca_argv(&r, 300, crl8);
    if (r.status != 0 || !strstr(r.out, want) || !strstr(r.out, want2))
        fail_msg("mailca crl --out-dir: exit %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);
    X509_CRL *crls[SHARDS];
    size_t listed = 0;
    for (int k = 0; k < SHARDS; k++) {
        crls[k] = shard_crl(k);
        check_shard(crls[k], k);
        assert_int_equal(crl_number(crls[k]), k + 1);
        listed += (size_t)crl_entries(crls[k]);
    }
    assert_int_equal(listed, revoked_sharded);
    size_t refused = 0, accepted = 0;
    for (size_t i = n1; i < n; i++) {
        const cert *c = &v[i];
        /* in its own shard when revoked, in no other shard at all */
        for (int k = 0; k < SHARDS; k++)
            assert_int_equal(crl_lists(crls[k], c), c->revoked && k == c->shard);
        int error = 0, ok = verify_with_crl(crls[c->shard], c->x, &error);
        if (c->revoked) {
            assert_int_equal(ok, 0);
            assert_int_equal(error, X509_V_ERR_CERT_REVOKED);
            refused++;
        } else {
            if (ok != 1)
                fail_msg("a good certificate with its shard: %s",
                         X509_verify_cert_error_string(error));
            accepted++;
        }
        /* another shard's CRL is not in scope (its issuingDistributionPoint names another
         * URL): OpenSSL says so rather than taking it as a complete CRL */
        ok = verify_with_crl(crls[(c->shard + 1) % SHARDS], c->x, &error);
        assert_int_equal(ok, 0);
        assert_int_equal(error, X509_V_ERR_DIFFERENT_CRL_SCOPE);
    }
    assert_int_equal(refused, revoked_sharded);
    assert_int_equal(accepted, n8 - revoked_sharded);
    /* the files the URLs name, one lock for the run, no temporary left */
    char p[1200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/.mailca-crl.lock", g.dir);
    assert_int_equal(stat(p, &sb), 0);
    snprintf(p, sizeof p, "%s/0000.crl.lock", g.dir);
    assert_int_not_equal(stat(p, &sb), 0);
    snprintf(p, sizeof p, "%s/0008.crl", g.dir);
    assert_int_not_equal(stat(p, &sb), 0);

    /* the full CRL (--out) at any shard count: every revoked certificate, no IDP; the
     * certificates issued before sharding are judged with it */
    char full[1200];
    snprintf(full, sizeof full, "%s/issuing-ca.crl", g.it.dir);
    const char *crlf[] = {"crl", "--config", g.cfg8, "--out", full, NULL};
    snprintf(want, sizeof want, "CRL number 9, %zu revoked certificate(s)",
             revoked_plain + revoked_sharded);
    run_ok(want, crlf);
    X509_CRL *fc = crl_load(full);
    assert_int_equal(X509_CRL_get_ext_by_NID(fc, NID_issuing_distribution_point, -1), -1);
    for (size_t i = 0; i < n1; i++) {
        int error = 0, ok = verify_with_crl(fc, v[i].x, &error);
        assert_int_equal(ok, !v[i].revoked);
        if (v[i].revoked)
            assert_int_equal(error, X509_V_ERR_CERT_REVOKED);
    }
    X509_CRL_free(fc);

    /* the next run: every shard's number goes up (one sequence across the CA) */
    const char *st8[] = {"status", "--config", g.cfg8, NULL};
    run_ok("crl shards: current (8 of 8 published", st8);
    run_ok("\"crl_shards\":{\"shards\":8,\"published\":8,",
           (const char *const[]){"status", "--config", g.cfg8, "--json", NULL});
    snprintf(want, sizeof want, "8 shard CRL(s), numbers 10..17, %zu revoked certificate(s)",
             revoked_sharded);
    run_ok(want, crl8);
    for (int k = 0; k < SHARDS; k++) {
        X509_CRL *c = shard_crl(k);
        check_shard(c, k);
        assert_true(crl_number(c) > crl_number(crls[k]));
        assert_int_equal(crl_entries(c), crl_entries(crls[k]));
        X509_CRL_free(c);
    }

    /* fewer shards from now on: shards 4..7, which issued certificates name, are still
     * published, and still refuse their revoked certificates */
    run_ok("8 shard CRL(s), numbers 18..25",
           (const char *const[]){"crl", "--config", g.cfg4, "--out-dir", g.dir, NULL});
    for (size_t i = n1; i < n; i++)
        if (v[i].revoked && v[i].shard >= 4) {
            X509_CRL *c = shard_crl(v[i].shard);
            int error = 0;
            assert_int_equal(verify_with_crl(c, v[i].x, &error), 0);
            assert_int_equal(error, X509_V_ERR_CERT_REVOKED);
            X509_CRL_free(c);
        }

    /* a shard older than a week: status says which check fails */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(g.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE crls SET this_update = this_update - 8 * 86400"
                                  " WHERE number = (SELECT max(number) FROM crls WHERE shard = 5)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    mc_it_mailca_argv(&r, 120, st8);
    if (r.status != 1 || !strstr(r.out, "crl shards: OVERDUE"))
        fail_msg("status with an old shard: exit %d: %s %s", r.status, r.out, r.err);
    mc_it_run_free(&r);

    /* refusals: --out-dir with one CRL URL, both outputs, a folder that is not there */
    run_fails(1, "ca.crl_shards is 1",
              (const char *const[]){"crl", "--config", g.cfg1, "--out-dir", g.dir, NULL});
    run_fails(
        2, "usage",
        (const char *const[]){"crl", "--config", g.cfg8, "--out", full, "--out-dir", g.dir, NULL});
    snprintf(p, sizeof p, "%s/missing", g.it.dir);
    run_fails(1, "not a folder",
              (const char *const[]){"crl", "--config", g.cfg8, "--out-dir", p, NULL});

    for (int k = 0; k < SHARDS; k++)
        X509_CRL_free(crls[k]);
    for (size_t i = 0; i < n; i++)
        X509_free(v[i].x);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crl_shards),
    };
    return cmocka_run_group_tests_name("it_crlshards", tests, group_setup, group_teardown);
}

/*
 * Issuing keys beyond ECDSA and RSA PKCS#1 v1.5 (issue 4): `mailca init --key rsa2048-pss`
 * (RSASSA-PSS SHA-256, CKM_RSA_PKCS_PSS) and `--key ed25519` (CKM_EDDSA over the whole TBS)
 * create CAs whose certificates carry the SBR 7.1.3.2 encodings, and `mailca batch` issues a few
 * hundred certificates with each that all verify against the chain with OpenSSL and pass
 * `mailca lint`. Also: init refuses a signature algorithm that does not fit the key; the bench-only
 * import of one issuing key into several tokens (mc_ca_init bench_tokens) yields tokens that each
 * sign for the issuing certificate; `mailca bench --tokens 2` runs both set-ups end to end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/alg.h"
#include "mailca/ca.h"
#include "mailca/config.h"
#include "mailca/hsmpool.h"
#include "support/itutil.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDERS mc_it_scaled(300, 0)

static char g_dir[512];

static void run_ok(mc_it_run *r)
{
    if (r->status != 0)
        fail_msg("mailca exited with %d%s\nstderr: %s\nstdout: %s", r->status,
                 r->timed_out ? " (timed out)" : "", r->err, r->out);
}

static int group_setup(void **state)
{
    (void)state;
    if (!mc_it_bin()) {
        fprintf(stderr, "MAILCA_BIN is not set (run through ctest)\n");
        return -1;
    }
    return mc_it_tmpdir("it-issuerkeys-", g_dir, sizeof g_dir);
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0] && !getenv("MAILCA_KEEP_TMP"))
        mc_it_rmtree(g_dir);
    return 0;
}

/* The signature AlgorithmIdentifier of x (outer), DER, equals alg's SBR 7.1.3.2 bytes. */
static void check_algid(X509 *x, mc_sigalg alg, const char *what)
{
    const X509_ALGOR *a = NULL;
    X509_get0_signature(NULL, &a, x);
    assert_non_null(a);
    unsigned char *der = NULL;
    int n = i2d_X509_ALGOR(a, &der);
    mc_bytes want = mc_sigalg_algid(alg);
    if (n != (int)want.len || memcmp(der, want.p, want.len) != 0)
        fail_msg("%s: signatureAlgorithm of %d bytes is not the SBR 7.1.3.2 encoding of %s", what,
                 n, mc_sigalg_name(alg));
    OPENSSL_free(der);
    /* RFC 5280 4.1.1.2: the TBS signature field is the same */
    const X509_ALGOR *inner = X509_get0_tbs_sigalg(x);
    der = NULL;
    n = i2d_X509_ALGOR(inner, &der);
    assert_int_equal(n, (int)want.len);
    assert_memory_equal(der, want.p, want.len);
    OPENSSL_free(der);
}

/* `mailca init --key spec` in <g_dir>/name; then ORDERS orders through `mailca batch`, every one
 * issued, verified against root + issuing CA, with the issuing CA's signature algorithm; two
 * samples through `mailca lint`. */
static void issue_with(const char *name, const char *spec, mc_sigalg alg, int nid)
{
    char dir[700], p[800], cfg[800], orders[800], results[800], pem[800];
    mc_it_run r;
    snprintf(dir, sizeof dir, "%s/%s", g_dir, name);
    mc_it_mailca(&r, "init", "--dir", dir, "--key", spec, NULL);
    run_ok(&r);
    mc_it_run_free(&r);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", dir);
    mc_config c;
    mc_errdetail e;
    assert_int_equal(mc_config_load(cfg, &c, &e), MC_OK);
    assert_string_equal(c.ca_signature, mc_sigalg_name(alg));

    snprintf(p, sizeof p, "%s/root.pem", dir);
    X509 *root = mc_it_pem_first(p);
    snprintf(p, sizeof p, "%s/issuing-ca.pem", dir);
    X509 *ica = mc_it_pem_first(p);
    assert_non_null(root);
    assert_non_null(ica);
    /* the CA certificates: signed by the root key with the same scheme, and they verify */
    check_algid(root, alg, "root certificate");
    check_algid(ica, alg, "issuing-CA certificate");
    EVP_PKEY *root_pub = X509_get0_pubkey(root);
    assert_int_equal(X509_verify(root, root_pub), 1);
    assert_int_equal(X509_verify(ica, root_pub), 1);

    char count[16];
    snprintf(count, sizeof count, "%d", ORDERS);
    snprintf(orders, sizeof orders, "%s/orders.msgpack", dir);
    snprintf(results, sizeof results, "%s/results.msgpack", dir);
    mc_it_mailca(&r, "gen-orders", "--count", count, orders, NULL);
    run_ok(&r);
    mc_it_run_free(&r);
    mc_it_mailca(&r, "batch", "--config", cfg, orders, results, NULL);
    run_ok(&r);
    char want[96];
    snprintf(want, sizeof want, "%d orders: %d issued, 0 rejected, 0 failed", ORDERS, ORDERS);
    if (!strstr(r.err, want))
        fail_msg("summary line lacks \"%s\": %s", want, r.err);
    mc_it_run_free(&r);

    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, (size_t)ORDERS);
    snprintf(pem, sizeof pem, "%s/samples.pem", dir);
    for (size_t i = 0; i < res.n; i++) {
        const mc_result *rr = &res.r[i];
        if (rr->status != MC_STATUS_ISSUED)
            fail_msg("%s: status %s: %s", rr->order_id, mc_status_name(rr->status),
                     rr->error.message);
        const char *why = NULL;
        int v = mc_it_verify(root, ica, rr->cert, rr->cert_len, X509_PURPOSE_SMIME_SIGN, &why);
        if (v != 1)
            fail_msg("%s: OpenSSL chain verification: %d (%s)", rr->order_id, v, why ? why : "");
        const unsigned char *q = rr->cert;
        X509 *x = d2i_X509(NULL, &q, (long)rr->cert_len);
        assert_non_null(x);
        assert_int_equal(X509_get_signature_nid(x), nid);
        check_algid(x, alg, rr->order_id);
        if (i < 2)
            assert_int_equal(mc_it_append_pem(pem, rr->cert, rr->cert_len), 0);
        X509_free(x);
    }
    mc_it_results_free(&res);
    mc_it_mailca(&r, "lint", pem, NULL);
    run_ok(&r);
    int clean = 0;
    for (const char *s = r.out; (s = strstr(s, ": 0 error(s)")) != NULL; s++)
        clean++;
    if (clean != 2)
        fail_msg("mailca lint: %d of 2 certificates clean:\n%s", clean, r.out);
    mc_it_run_free(&r);
    X509_free(root);
    X509_free(ica);
}

static void test_rsa_pss(void **state)
{
    (void)state;
    /* SBR 7.1.3.2.1: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32, explicit parameters */
    issue_with("ca-pss", "rsa2048-pss", MC_SIG_RSA_PSS_SHA256, NID_rsassaPss);
}

static void test_ed25519(void **state)
{
    (void)state;
    /* SBR 7.1.3.2.3: id-Ed25519, parameters absent */
    issue_with("ca-ed25519", "ed25519", MC_SIG_ED25519, NID_ED25519);
}

/* The failing side: keys and schemes that do not go together are refused before anything. */
static void test_init_refuses(void **state)
{
    (void)state;
    const char *bad[] = {"p256-pss", "ed25519-pss", "rsa1024", "rsa1024-pss", "p521"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char dir[700];
        mc_it_run r;
        snprintf(dir, sizeof dir, "%s/refused-%zu", g_dir, i);
        mc_it_mailca(&r, "init", "--dir", dir, "--key", bad[i], NULL);
        if (r.status != 2)
            fail_msg("mailca init --key %s: exit %d, want 2 (%s)", bad[i], r.status, r.err);
        mc_it_run_free(&r);
    }
    /* the library refuses a scheme of another key type (SBR 7.1.3.2) */
    char dir[700];
    snprintf(dir, sizeof dir, "%s/refused-api", g_dir);
    mc_ca_init_opts o = {.dir = dir,
                         .keytype = MC_KEY_P256,
                         .sigalg = MC_SIG_RSA_PSS_SHA256,
                         .org = "t",
                         .base_url = "http://pki.t.test"};
    mc_errdetail e;
    assert_int_equal(mc_ca_init(&o, &e), MC_ERR_CONFIG);
    assert_string_equal(e.rule, "SBR 7.1.3.2");
    o.keytype = MC_KEY_RSA;
    o.sigalg = MC_SIG_ECDSA_SHA256;
    assert_int_equal(mc_ca_init(&o, &e), MC_ERR_CONFIG);
}

/* Bench only: one issuing key imported into two tokens. Each token signs for the issuing
 * certificate: a signature made on each verifies with the certificate's key. */
static void imported_pair(const char *name, mc_keytype kt, mc_sigalg alg)
{
    char dir[700], p[800];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, name);
    mc_ca_init_opts o = {.dir = dir,
                         .keytype = kt,
                         .sigalg = alg,
                         .org = "bench",
                         .base_url = "http://pki.bench.test",
                         .bench_tokens = 2};
    mc_errdetail e;
    if (mc_ca_init(&o, &e) != MC_OK)
        fail_msg("mc_ca_init bench_tokens 2 (%s): %s", name, e.message);
    snprintf(p, sizeof p, "%s/mailca.yaml", dir);
    mc_config c;
    assert_int_equal(mc_config_load(p, &c, &e), MC_OK);
    assert_non_null(strstr(c.hsm_key, "token=mailca;"));
    assert_non_null(strstr(c.hsm_key, "token=mailca-2;"));
    char pin[256];
    assert_int_equal(mc_config_read_pin(&c, pin, sizeof pin, &e), MC_OK);
    mc_hsmpool *pool = NULL;
    mc_err rc = mc_hsmpool_open(c.hsm_module, c.hsm_key, pin, &pool, &e);
    OPENSSL_cleanse(pin, sizeof pin);
    if (rc != MC_OK)
        fail_msg("pool over the two tokens: %s", e.message);
    assert_int_equal(mc_hsmpool_tokens(pool), 2);
    snprintf(p, sizeof p, "%s/issuing-ca.pem", dir);
    X509 *ica = mc_it_pem_first(p);
    assert_non_null(ica);
    EVP_PKEY *pub = X509_get0_pubkey(ica);
    const uint8_t msg[] = "a TBS stands in here";
    for (size_t t = 0; t < 2; t++) {
        mc_hsm_session *s = NULL;
        assert_int_equal(mc_hsm_session_open(mc_hsmpool_hsm(pool, t), &s, &e), MC_OK);
        uint8_t md[64], sig[1024];
        size_t siglen = sizeof sig, inlen = sizeof msg - 1;
        const uint8_t *in = msg;
        const char *dname = mc_sigalg_digest(alg);
        unsigned mdlen = 0;
        if (dname) {
            assert_int_equal(
                EVP_Digest(msg, sizeof msg - 1, md, &mdlen, EVP_get_digestbyname(dname), NULL), 1);
            in = md;
            inlen = mdlen;
        }
        assert_int_equal(mc_hsm_sign(s, alg, in, inlen, sig, &siglen, &e), MC_OK);
        mc_hsm_session_close(s);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        assert_int_equal(
            EVP_DigestVerifyInit(ctx, &pctx, dname ? EVP_get_digestbyname(dname) : NULL, NULL, pub),
            1);
        if (alg == MC_SIG_RSA_PSS_SHA256) {
            assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
        }
        int ok = EVP_DigestVerify(ctx, sig, siglen, msg, sizeof msg - 1);
        EVP_MD_CTX_free(ctx);
        if (ok != 1)
            fail_msg("%s: token %zu's signature does not verify with the issuing CA's key", name,
                     t);
    }
    X509_free(ica);
    mc_hsmpool_close(pool);
}

static void test_bench_import(void **state)
{
    (void)state;
    imported_pair("bench-p256", MC_KEY_P256, MC_SIG_ECDSA_SHA256);
    imported_pair("bench-pss", MC_KEY_RSA, MC_SIG_RSA_PSS_SHA256);
    imported_pair("bench-ed25519", MC_KEY_ED25519, MC_SIG_ED25519);
}

/* `mailca bench --tokens 2`: the engine with the key on one token and on two, every order
 * issued in both (the bench exits non-zero otherwise), both rates printed. */
static void test_bench_tokens(void **state)
{
    (void)state;
    char dir[700];
    mc_it_run r;
    snprintf(dir, sizeof dir, "%s/bench", g_dir);
    const char *args[] = {"bench",      "--tokens", "2",         "--key", "ed25519",
                          "--orders",   "200",      "--seconds", "0.2",   "--key-form",
                          "public-key", "--dir",    dir,         NULL};
    mc_it_mailca_argv(&r, 300, args);
    run_ok(&r);
    if (!strstr(r.out, "issuing key on 1 token:") || !strstr(r.out, "issuing key on 2 tokens:") ||
        !strstr(r.out, "2 tokens vs 1:") || !strstr(r.out, "CKM_EDDSA over 650-byte messages"))
        fail_msg("bench output lacks a set-up:\n%s", r.out);
    mc_it_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_pss),      cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_init_refuses), cmocka_unit_test(test_bench_import),
        cmocka_unit_test(test_bench_tokens),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

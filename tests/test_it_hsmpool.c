/*
 * The HSM pool (issue 4): two SoftHSM2 tokens holding the same imported issuing key, named by two
 * URIs in hsm.key. The engine spreads its sessions over both; when one token fails (reached
 * through the fault-injecting module, tests/p11fault, by its URI's module-path, so the other
 * token is untouched), the orders it was signing are re-signed on the other token (same TBS,
 * same serial), the failing token is taken out of service, and every order still ends issued.
 * A token holding another key is refused at start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/hsmpool.h"
#include "support/itutil.h"
#include "support/softhsm.h"
#include "support/testca.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIN "pool-user-pin"
#define SO_PIN "pool-so-pin"

static char g_dir[512], g_control[700], g_stats[700];
static mc_testca g_ca;

static void control(const char *text)
{
    assert_int_equal(mc_it_replace_file(g_control, text), 0);
}

/* softhsm2-util --import of a PKCS#8 key into a token (label "ica", id 01). The PIN on this
 * command line is a throwaway test token's. */
static int import_key(const char *token, const char *pem)
{
    const char *argv[] = {"softhsm2-util", "--import", pem,  "--token", token, "--label",
                          "ica",           "--id",     "01", "--pin",   PIN,   NULL};
    mc_it_run r;
    int st = mc_it_exec(&r, 60, NULL, argv);
    if (st != 0)
        fprintf(stderr, "softhsm2-util --import %s: %d: %s%s\n", token, st, r.out, r.err);
    mc_it_run_free(&r);
    return st;
}

static int write_pem_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return ok == 1 ? 0 : -1;
}

/* A config whose hsm.key is the given URIs (the tokens of this test's SoftHSM2). */
static void write_config(const char *path, const char *uris)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "hsm:\n"
            "  module: \"%s\"\n"
            "  key: \"%s\"\n"
            "  pin_file: \"%s/pin\"\n"
            "  softhsm2_conf: \"%s/softhsm2.conf\"\n"
            "ca:\n"
            "  certificate: \"%s/ica.pem\"\n"
            "  crl_url: \"http://pki.pool.test/ica.crl\"\n"
            "  ca_issuers_url: \"http://pki.pool.test/ica.crt\"\n"
            "store:\n"
            "  sqlite: \"%s/pool.db\"\n"
            "engine:\n"
            "  profiles: \"%s\"\n"
            "  workers: 2\n",
            mc_softhsm_module(), uris, g_dir, g_dir, g_dir, g_dir, MAILCA_SOURCE_DIR "/profiles");
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    mc_errdetail err;
    if (!getenv("MAILCA_P11FAULT") || mc_softhsm_tmpdir("it-hsmpool-", g_dir, sizeof g_dir) != 0)
        return -1;
    const char *tokens[] = {"pool-a", "pool-b", "pool-other"};
    for (int i = 0; i < 3; i++)
        if (mc_softhsm_setup(g_dir, tokens[i], SO_PIN, PIN, &err) != MC_OK) {
            fprintf(stderr, "softhsm setup: %s\n", err.message);
            return -1;
        }
    if (mc_testca_create(&g_ca, MC_TESTCA_P256, 0) != 0)
        return -1;
    char path[700];
    snprintf(path, sizeof path, "%s/ica-key.pem", g_dir);
    if (write_pem_key(path, g_ca.key) != 0 || import_key("pool-a", path) != 0 ||
        import_key("pool-b", path) != 0)
        return -1;
    /* a third token with another key: refused in a pool with the others */
    EVP_PKEY *other = mc_testca_keygen(MC_KEY_P256, 0);
    snprintf(path, sizeof path, "%s/other-key.pem", g_dir);
    int bad = !other || write_pem_key(path, other) != 0 || import_key("pool-other", path) != 0;
    EVP_PKEY_free(other);
    if (bad)
        return -1;
    snprintf(path, sizeof path, "%s/ica.pem", g_dir);
    if (mc_it_write_file(path, "", 0) != 0 || mc_it_append_pem(path, g_ca.der, g_ca.der_len) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/pin", g_dir);
    if (mc_it_write_file(path, PIN "\n", strlen(PIN) + 1) != 0 || chmod(path, 0600) != 0)
        return -1;
    snprintf(g_control, sizeof g_control, "%s/p11fault.rules", g_dir);
    snprintf(g_stats, sizeof g_stats, "%s/p11fault.stats", g_dir);
    setenv("P11FAULT_CONTROL", g_control, 1);
    setenv("P11FAULT_STATS", g_stats, 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unsetenv("P11FAULT_CONTROL");
    unsetenv("P11FAULT_STATS");
    mc_testca_free(&g_ca);
    mc_softhsm_rmtree(g_dir);
    return 0;
}

/* The signatures a token made, from the batch's health lines ("hsm token=pool-a ...: N
 * signatures, F failures, in service|out of service"); -1 when the token has no line. */
static long long token_line(const char *err_text, const char *token, long long *failures,
                            int *in_service)
{
    char key[64];
    snprintf(key, sizeof key, "token=%s", token);
    const char *p = strstr(err_text, key);
    if (!p || !(p = strstr(p, ": ")))
        return -1;
    long long sigs = -1, fails = -1;
    if (sscanf(p, ": %lld signatures, %lld failures", &sigs, &fails) != 2)
        return -1;
    if (failures)
        *failures = fails;
    if (in_service) {
        const char *eol = strchr(p, '\n');
        const char *out = strstr(p, "out of service");
        *in_service = !(out && (!eol || out < eol));
    }
    return sigs;
}

/* Issues n fresh orders; all must be issued and verify against the test CA. Returns the
 * batch's stderr (caller frees). */
static char *run_batch(const char *cfg, const char *tag, int n)
{
    char orders[700], results[700], count[16];
    snprintf(orders, sizeof orders, "%s/%s.msgpack", g_dir, tag);
    snprintf(results, sizeof results, "%s/%s-results.msgpack", g_dir, tag);
    snprintf(count, sizeof count, "%d", n);
    mc_it_run r;
    int st =
        mc_it_mailca(&r, "gen-orders", "--count", count, "--key-form", "public-key", orders, NULL);
    if (st != 0)
        fail_msg("gen-orders: %d: %s", st, r.err);
    mc_it_run_free(&r);
    /* two signer sessions per worker: every worker's sessions are on both tokens, so both
     * sign whichever worker gets the orders; worker threads (--procs 0), so the engine
     * process's token counters see every signature */
    st = mc_it_mailca(&r, "batch", "--quiet", "--sessions", "4", "--procs", "0", "--config", cfg,
                      orders, results, NULL);
    if (st != 0)
        fail_msg("%s: batch exit %d: %s", tag, st, r.err);
    char *text = strdup(r.err);
    mc_it_run_free(&r);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    assert_int_equal(res.n, (size_t)n);
    for (size_t i = 0; i < res.n; i++) {
        if (res.r[i].status != MC_STATUS_ISSUED)
            fail_msg("%s: order %s: %s", tag, res.r[i].order_id, res.r[i].error.message);
        assert_int_equal(mc_it_verify(g_ca.root, g_ca.cert, res.r[i].cert, res.r[i].cert_len,
                                      X509_PURPOSE_SMIME_SIGN, NULL),
                         1);
    }
    mc_it_results_free(&res);
    return text;
}

/* Both tokens in service: the sessions are spread over them, both sign. */
static void test_two_tokens_share_the_work(void **state)
{
    (void)state;
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/two.yaml", g_dir);
    write_config(cfg, "pkcs11:token=pool-a;object=ica;type=private "
                      "pkcs11:token=pool-b;object=ica;type=private");
    int n = mc_it_scaled(400, 60);
    char *text = run_batch(cfg, "two", n);
    long long fa = -1, fb = -1;
    int sa = 0, sb = 0;
    long long a = token_line(text, "pool-a", &fa, &sa), b = token_line(text, "pool-b", &fb, &sb);
    print_message("pool-a %lld signatures, pool-b %lld\n", a, b);
    assert_true(a > 0 && b > 0);
    assert_int_equal(a + b, n); /* one signature per certificate (the key checks at open are
                                   the tokens' own, not the pool's) */
    assert_int_equal(fa + fb, 0);
    assert_true(sa && sb);
    free(text);
}

/* Token A (through the fault module) loses its device after a few signatures: every order
 * still ends issued, A is taken out of service, B signs the rest. */
static void test_failover_to_the_other_token(void **state)
{
    (void)state;
    char cfg[700], uris[1400];
    snprintf(cfg, sizeof cfg, "%s/failover.yaml", g_dir);
    snprintf(uris, sizeof uris,
             "pkcs11:token=pool-a;object=ica;type=private?module-path=%s "
             "pkcs11:token=pool-b;object=ica;type=private",
             getenv("MAILCA_P11FAULT"));
    write_config(cfg, uris);
    /* C_Sign 1 is the key check at open; then 20 good signatures, then the device is gone */
    control("C_Sign after=21 rv=CKR_DEVICE_REMOVED\n");
    int n = mc_it_scaled(400, 80);
    char *text = run_batch(cfg, "failover", n);
    long long fa = -1, fb = -1;
    int sa = 1, sb = 0;
    long long a = token_line(text, "pool-a", &fa, &sa), b = token_line(text, "pool-b", &fb, &sb);
    print_message("pool-a %lld signatures %lld failures (in service %d); pool-b %lld\n", a, fa, sa,
                  b);
    assert_int_equal(a, 20);
    assert_int_equal(a + b, n);
    assert_true(fa >= 1); /* CKR_DEVICE_REMOVED takes the token out at the first failure */
    assert_int_equal(sa, 0);
    assert_int_equal(fb, 0);
    assert_true(sb);
    free(text);
    control("");
}

/* `mailca status` checks every token of hsm.key and the store, and says which one fails. */
static void test_status(void **state)
{
    (void)state;
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/status.yaml", g_dir);
    write_config(cfg, "pkcs11:token=pool-a;object=ica;type=private "
                      "pkcs11:token=pool-b;object=ica;type=private");
    mc_it_run r;
    int st = mc_it_mailca(&r, "status", "--config", cfg, NULL);
    if (st != 0)
        fail_msg("status: exit %d: %s%s", st, r.out, r.err);
    assert_non_null(strstr(r.out, "hsm: 2 token(s)"));
    assert_non_null(strstr(r.out, "token=pool-a: ok (p256 key"));
    assert_non_null(strstr(r.out, "token=pool-b: ok (p256 key"));
    assert_non_null(strstr(r.out, "store: sqlite: "));
    assert_non_null(strstr(r.out, " intent(s) without a certificate"));
    /* read back from the store's connection: every commit synced before it returns */
    assert_non_null(strstr(r.out, "  commits: synchronous=full\n"));
    mc_it_run_free(&r);
    write_config(cfg, "pkcs11:token=pool-a;object=ica;type=private "
                      "pkcs11:token=pool-gone;object=ica;type=private");
    st = mc_it_mailca(&r, "status", "--json", "--config", cfg, NULL);
    assert_int_equal(st, 1);
    assert_non_null(strstr(r.out, "\"ok\":false"));
    assert_non_null(strstr(r.out, "{\"token\":\"token=pool-a\",\"ok\":true,\"key\":\"p256\"}"));
    assert_non_null(strstr(r.out, "pool-gone"));
    mc_it_run_free(&r);
}

/* One pool signature of a fixed digest, verified with the issuing CA's public key. */
static void sign_verify(mc_hsmpool *p, mc_hsmpool_session *ps)
{
    uint8_t dg[32], sig[256];
    size_t siglen = sizeof sig;
    mc_errdetail err;
    memset(dg, 0x5c, sizeof dg);
    mc_err rc = mc_hsmpool_sign(p, ps, MC_SIG_ECDSA_SHA256, dg, sizeof dg, sig, &siglen, &err);
    if (rc != MC_OK)
        fail_msg("pool sign: %s", err.message);
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(X509_get0_pubkey(g_ca.cert), NULL);
    assert_non_null(v);
    assert_int_equal(EVP_PKEY_verify_init(v), 1);
    assert_int_equal(EVP_PKEY_verify(v, sig, siglen, dg, sizeof dg), 1);
    EVP_PKEY_CTX_free(v);
}

/* In process: the home token fails with CKR_DEVICE_REMOVED, the session fails over to the other
 * token and the token is out; once its back-off is over and it works again, the session goes
 * home and the token is back in service. */
static void test_back_in_service(void **state)
{
    (void)state;
    char uris[1400];
    snprintf(uris, sizeof uris,
             "pkcs11:token=pool-a;object=ica;type=private?module-path=%s "
             "pkcs11:token=pool-b;object=ica;type=private",
             getenv("MAILCA_P11FAULT"));
    control("");
    mc_hsmpool *p = NULL;
    mc_errdetail err;
    mc_err rc = mc_hsmpool_open(mc_softhsm_module(), uris, PIN, &p, &err);
    if (rc != MC_OK)
        fail_msg("pool open: %s", err.message);
    assert_int_equal(mc_hsmpool_tokens(p), 2);
    mc_hsmpool_session ps;
    assert_int_equal(mc_hsmpool_session_open(p, 0, &ps, &err), MC_OK);
    assert_int_equal(ps.token, 0);
    sign_verify(p, &ps);

    control("C_Sign rv=CKR_DEVICE_REMOVED\n");
    sign_verify(p, &ps); /* signed on pool-b instead */
    assert_int_equal(ps.token, 1);
    mc_hsmpool_health h;
    assert_int_equal(mc_hsmpool_health_get(p, 0, &h), MC_OK);
    assert_int_equal(h.in_service, 0);
    assert_int_equal(h.times_out, 1);
    assert_int_equal(h.failures, 1);
    assert_int_equal(h.signatures, 1);

    control(""); /* pool-a works again, but its back-off is not over: stay on pool-b */
    sign_verify(p, &ps);
    assert_int_equal(ps.token, 1);
    usleep((MC_HSMPOOL_BACKOFF_MIN_MS + 200) * 1000);
    sign_verify(p, &ps); /* back home: this signature is the probe */
    assert_int_equal(ps.token, 0);
    assert_int_equal(mc_hsmpool_health_get(p, 0, &h), MC_OK);
    assert_int_equal(h.in_service, 1);
    assert_int_equal(h.consecutive, 0);
    assert_int_equal(h.signatures, 2);
    assert_int_equal(mc_hsmpool_health_get(p, 1, &h), MC_OK);
    assert_int_equal(h.signatures, 2);
    assert_int_equal(h.failures, 0);
    assert_int_equal(mc_hsmpool_health_get(p, 2, &h), MC_ERR_INVALID);
    mc_hsmpool_session_close(p, &ps);
    mc_hsmpool_close(p);
}

/* A token whose key is not the others' is refused before anything is signed. */
static void test_token_with_another_key_is_refused(void **state)
{
    (void)state;
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/mixed.yaml", g_dir);
    write_config(cfg, "pkcs11:token=pool-a;object=ica;type=private "
                      "pkcs11:token=pool-other;object=ica;type=private");
    char orders[700], results[700];
    snprintf(orders, sizeof orders, "%s/two.msgpack", g_dir);
    snprintf(results, sizeof results, "%s/mixed-results.msgpack", g_dir);
    mc_it_run r;
    int st = mc_it_mailca(&r, "batch", "--quiet", "--config", cfg, orders, results, NULL);
    assert_int_not_equal(st, 0);
    assert_non_null(strstr(r.err, "hsm.key"));
    assert_non_null(strstr(r.err, "pool-other"));
    assert_non_null(strstr(r.err, "same key"));
    mc_it_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_tokens_share_the_work),
        cmocka_unit_test(test_failover_to_the_other_token),
        cmocka_unit_test(test_token_with_another_key_is_refused),
        cmocka_unit_test(test_back_in_service),
        cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

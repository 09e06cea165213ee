/*
 * Integration tests for mc_hsm against a private SoftHSM2: key generation in the token, opening
 * keys by pkcs11: URI, signing with every allowed algorithm from two sessions on two threads,
 * and verifying every signature with OpenSSL against the SPKI the HSM layer built. Negative
 * cases: wrong PIN, missing token/key, ambiguous token, pin-value in the URI, dead sessions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "mailca/crypto.h"
#include "mailca/hsm.h"
#include "support/softhsm.h"

#define TOKEN "mailca-it"
#define TOKEN2 "mailca-it2"
#define SO_PIN "so-8642-pin"
#define USER_PIN "user-1357-pin"

static char g_dir[1024];
static mc_digests g_md;

/* SoftHSM2 2.6.1 leaks a small ASN.1 object per ECDSA signature (inside its C_Sign, not ours).
 * group_setup keeps the module mapped until exit so LeakSanitizer can name the module, full
 * unwinding lets it see through libcrypto (built without frame pointers), and the suppression
 * drops only leaks whose stack passes through the module. Read by ASan builds only. */
__attribute__((used)) const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libsofthsm2.so\n";
}
__attribute__((used)) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}

static void fail_err(const char *what, const mc_errdetail *e)
{
    char buf[512];
    fail_msg("%s: %s", what, mc_err_format(e, buf, sizeof buf));
}

static int group_setup(void **state)
{
    (void)state;
    mc_errdetail e;
    /* Deliberately never dlclosed: see __lsan_default_suppressions. */
    if (!dlopen(mc_softhsm_module(), RTLD_NOW | RTLD_LOCAL)) {
        fprintf(stderr, "dlopen %s: %s\n", mc_softhsm_module(), dlerror());
        return -1;
    }
    if (mc_softhsm_tmpdir("it_hsm", g_dir, sizeof g_dir) != 0) {
        fprintf(stderr, "cannot create a temp dir\n");
        return -1;
    }
    if (mc_softhsm_setup(g_dir, TOKEN, SO_PIN, USER_PIN, &e) ||
        mc_softhsm_setup(g_dir, TOKEN2, SO_PIN, USER_PIN, &e) || mc_digests_fetch(&g_md, &e))
        goto bad;
    static const struct {
        mc_keytype kt;
        unsigned bits;
        const char *label;
        uint8_t id;
    } keys[] = {{MC_KEY_P256, 0, "p256", 1},
                {MC_KEY_P384, 0, "p384", 2},
                {MC_KEY_RSA, 2048, "rsa2048", 3},
                {MC_KEY_ED25519, 0, "ed25519", 4}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (mc_hsm_keygen(mc_softhsm_module(), TOKEN, USER_PIN, keys[i].kt, keys[i].bits,
                          keys[i].label, &keys[i].id, 1, &e))
            goto bad;
    /* Same label on the second token, for the ambiguity test. */
    uint8_t id = 1;
    if (mc_hsm_keygen(mc_softhsm_module(), TOKEN2, USER_PIN, MC_KEY_P256, 0, "p256", &id, 1, &e))
        goto bad;
    return 0;
bad:;
    char buf[512];
    fprintf(stderr, "setup: %s\n", mc_err_format(&e, buf, sizeof buf));
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mc_digests_free(&g_md);
    return mc_softhsm_rmtree(g_dir);
}

static mc_hsm *open_ok(const char *uri)
{
    mc_hsm_config cfg = {mc_softhsm_module(), uri, USER_PIN};
    mc_hsm *h = NULL;
    mc_errdetail e;
    if (mc_hsm_open(&cfg, &h, &e))
        fail_err(uri, &e);
    return h;
}

/* ---- verification with OpenSSL ---- */

static int is_pss(mc_sigalg a)
{
    return a == MC_SIG_RSA_PSS_SHA256 || a == MC_SIG_RSA_PSS_SHA384 || a == MC_SIG_RSA_PSS_SHA512;
}

static int is_ecdsa(mc_sigalg a)
{
    return a == MC_SIG_ECDSA_SHA256 || a == MC_SIG_ECDSA_SHA384 || a == MC_SIG_ECDSA_SHA512;
}

/* 1 when sig verifies over msg (OpenSSL hashes; PSS demands salt length = digest length). */
static int verify(EVP_PKEY *pk, mc_sigalg alg, const uint8_t *msg, size_t n, const uint8_t *sig,
                  size_t siglen)
{
    const char *dn = mc_sigalg_digest(alg);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int ok = c && EVP_DigestVerifyInit_ex(c, &pc, dn, NULL, NULL, pk, NULL) == 1;
    if (ok && is_pss(alg))
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(pc, dn, NULL) == 1;
    else if (ok && mc_sigalg_keytype(alg) == MC_KEY_RSA)
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1;
    if (ok && is_ecdsa(alg)) {
        /* strict DER: what we wrote re-encodes to the same bytes */
        const uint8_t *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        uint8_t *re = NULL;
        int relen = es ? i2d_ECDSA_SIG(es, &re) : -1;
        ok = es && p == sig + siglen && relen == (int)siglen && memcmp(re, sig, siglen) == 0;
        OPENSSL_free(re);
        ECDSA_SIG_free(es);
    }
    ok = ok && EVP_DigestVerify(c, sig, siglen, msg, n) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

/* ---- two threads, two sessions ---- */

typedef struct worker {
    mc_hsm *h;
    EVP_PKEY *pk;
    const mc_sigalg *algs;
    size_t nalgs;
    int iters;
    int signed_ok, verified, tamper_rejected;
    char error[512];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    mc_hsm_session *s = NULL;
    mc_errdetail e;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (mc_hsm_session_open(w->h, &s, &e)) {
        mc_err_format(&e, w->error, sizeof w->error);
        goto done;
    }
    for (int i = 0; i < w->iters; i++) {
        for (size_t a = 0; a < w->nalgs; a++) {
            mc_sigalg alg = w->algs[a];
            uint8_t msg[97], dg[EVP_MAX_MD_SIZE], sig[1100];
            RAND_bytes(msg, sizeof msg);
            const uint8_t *in = msg;
            size_t inlen = sizeof msg;
            const EVP_MD *md = mc_digests_for_sigalg(&g_md, alg);
            if (md) {
                unsigned dlen;
                if (mc_digest(mctx, md, msg, sizeof msg, dg, &dlen)) {
                    snprintf(w->error, sizeof w->error, "digest failed");
                    goto done;
                }
                in = dg;
                inlen = dlen;
            }
            size_t siglen = sizeof sig;
            if (mc_hsm_sign(s, alg, in, inlen, sig, &siglen, &e)) {
                mc_err_format(&e, w->error, sizeof w->error);
                goto done;
            }
            w->signed_ok++;
            if (verify(w->pk, alg, msg, sizeof msg, sig, siglen))
                w->verified++;
            else if (!w->error[0])
                snprintf(w->error, sizeof w->error, "%s signature did not verify",
                         mc_sigalg_name(alg));
            if (i == 0) {
                /* the verifier is not vacuous: a changed message must fail */
                msg[5] ^= 0x01;
                w->tamper_rejected += !verify(w->pk, alg, msg, sizeof msg, sig, siglen);
            }
        }
    }
done:
    mc_hsm_session_close(s);
    EVP_MD_CTX_free(mctx);
    return NULL;
}

static void sign_verify_case(const char *uri, mc_keytype kt, const mc_sigalg *algs, size_t nalgs,
                             int iters)
{
    mc_hsm *h = open_ok(uri);
    assert_int_equal(mc_hsm_keytype(h), kt);
    mc_bytes spki = mc_hsm_spki(h);
    const uint8_t *p = spki.p;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki.len);
    assert_non_null(pk);
    assert_ptr_equal(p, spki.p + spki.len);
    /* SBR 7.1.3.1: the byte-exact AlgorithmIdentifier follows the outer SEQUENCE header */
    mc_bytes algid = mc_keytype_algid(kt);
    size_t hdr = spki.p[1] & 0x80 ? 2 + (spki.p[1] & 0x7f) : 2;
    assert_memory_equal(spki.p + hdr, algid.p, algid.len);

    worker w[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (worker){.h = h, .pk = pk, .algs = algs, .nalgs = nalgs, .iters = iters};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (w[i].error[0])
            fail_msg("%s thread %d: %s", uri, i, w[i].error);
        assert_int_equal(w[i].signed_ok, iters * (int)nalgs);
        assert_int_equal(w[i].verified, iters * (int)nalgs);
        assert_int_equal(w[i].tamper_rejected, (int)nalgs);
    }
    EVP_PKEY_free(pk);
    mc_hsm_close(h);
}

static void test_p256(void **state)
{
    (void)state;
    static const mc_sigalg algs[] = {MC_SIG_ECDSA_SHA256};
    sign_verify_case("pkcs11:token=" TOKEN ";object=p256;type=private", MC_KEY_P256, algs, 1, 20);
}

static void test_p384_by_id(void **state)
{
    (void)state;
    static const mc_sigalg algs[] = {MC_SIG_ECDSA_SHA384};
    sign_verify_case("pkcs11:token=" TOKEN ";id=%02", MC_KEY_P384, algs, 1, 20);
}

/* Raw PKCS#11 access to the module mc_hsm loaded, to act as "someone else" in the process. */
static CK_FUNCTION_LIST_PTR raw_module(void **dl)
{
    *dl = dlopen(mc_softhsm_module(), RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(*dl);
    CK_C_GetFunctionList gfl;
    *(void **)&gfl = dlsym(*dl, "C_GetFunctionList");
    assert_non_null(gfl);
    CK_FUNCTION_LIST_PTR f;
    assert_int_equal(gfl(&f), CKR_OK);
    return f;
}

static CK_SLOT_ID raw_find_token(CK_FUNCTION_LIST_PTR f, const char *label, char serial[17])
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        assert_int_equal(f->C_GetTokenInfo(slots[i], &ti), CKR_OK);
        size_t l = strlen(label);
        if (memcmp(ti.label, label, l) == 0 && ti.label[l] == ' ') {
            memcpy(serial, ti.serialNumber, 16);
            serial[16] = '\0';
            for (int k = 15; k >= 0 && serial[k] == ' '; k--)
                serial[k] = '\0';
            return slots[i];
        }
    }
    fail_msg("token %s not found", label);
    return 0;
}

static void test_rsa_by_serial(void **state)
{
    (void)state;
    /* learn the token's serial while the module is loaded */
    mc_hsm *h = open_ok("pkcs11:token=" TOKEN ";object=p256");
    void *dl;
    CK_FUNCTION_LIST_PTR f = raw_module(&dl);
    char serial[17], uri[256];
    raw_find_token(f, TOKEN, serial);
    dlclose(dl);
    snprintf(uri, sizeof uri, "pkcs11:serial=%s;object=rsa2048;id=%%03;type=private", serial);
    static const mc_sigalg algs[] = {MC_SIG_RSA_PKCS1_SHA256, MC_SIG_RSA_PKCS1_SHA384,
                                     MC_SIG_RSA_PKCS1_SHA512, MC_SIG_RSA_PSS_SHA256,
                                     MC_SIG_RSA_PSS_SHA384,   MC_SIG_RSA_PSS_SHA512};
    sign_verify_case(uri, MC_KEY_RSA, algs, 6, 3);
    mc_hsm_close(h);
}

static void test_ed25519_module_path(void **state)
{
    (void)state;
    char uri[1024];
    snprintf(uri, sizeof uri, "pkcs11:token=" TOKEN ";object=ed25519?module-path=%s",
             mc_softhsm_module());
    mc_hsm_config cfg = {NULL, uri, USER_PIN};
    mc_hsm *h = NULL;
    mc_errdetail e;
    if (mc_hsm_open(&cfg, &h, &e))
        fail_err(uri, &e);
    mc_hsm_close(h);
    static const mc_sigalg algs[] = {MC_SIG_ED25519};
    sign_verify_case(uri, MC_KEY_ED25519, algs, 1, 20);
}

/* Algorithms that do not fit the key, wrong digest sizes, small buffers, and the raw path. */
static void test_sign_argument_checks(void **state)
{
    (void)state;
    mc_hsm *h = open_ok("pkcs11:token=" TOKEN ";object=p256");
    mc_hsm_session *s;
    mc_errdetail e;
    assert_int_equal(mc_hsm_session_open(h, &s, &e), MC_OK);
    uint8_t dg[64] = {1, 2, 3}, sig[200];
    size_t siglen = sizeof sig;
    /* SBR 7.1.3.2: P-256 signs with SHA-256 only */
    assert_int_equal(mc_hsm_sign(s, MC_SIG_ECDSA_SHA384, dg, 48, sig, &siglen, &e), MC_ERR_INVALID);
    assert_string_equal(e.rule, "SBR 7.1.3.2");
    assert_int_equal(mc_hsm_sign(s, MC_SIG_RSA_PKCS1_SHA256, dg, 32, sig, &siglen, &e),
                     MC_ERR_INVALID);
    assert_int_equal(mc_hsm_sign(s, MC_SIG_ECDSA_SHA256, dg, 31, sig, &siglen, &e), MC_ERR_INVALID);
    assert_non_null(strstr(e.message, "32-byte digest"));
    siglen = 10;
    assert_int_equal(mc_hsm_sign(s, MC_SIG_ECDSA_SHA256, dg, 32, sig, &siglen, &e), MC_ERR_INVALID);
    /* the session is still usable after refusals */
    siglen = sizeof sig;
    assert_int_equal(mc_hsm_sign(s, MC_SIG_ECDSA_SHA256, dg, 32, sig, &siglen, &e), MC_OK);
    assert_true(siglen >= 8 && siglen <= 72);

    /* raw: r||s, 64 bytes, verifies as a raw ECDSA signature over the digest */
    siglen = 63;
    assert_int_equal(mc_hsm_sign_raw(s, MC_SIG_ECDSA_SHA256, dg, 32, sig, &siglen), MC_ERR_INVALID);
    siglen = sizeof sig;
    assert_int_equal(mc_hsm_sign_raw(s, MC_SIG_ECDSA_SHA256, dg, 32, sig, &siglen), MC_OK);
    assert_int_equal(siglen, 64);
    ECDSA_SIG *es = ECDSA_SIG_new();
    assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)),
                     1);
    uint8_t *der = NULL;
    int derlen = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    mc_bytes spki = mc_hsm_spki(h);
    const uint8_t *p = spki.p;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki.len);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    assert_int_equal(EVP_PKEY_verify_init(pc), 1);
    assert_int_equal(EVP_PKEY_verify(pc, der, (size_t)derlen, dg, 32), 1);
    dg[0] ^= 1;
    assert_int_not_equal(EVP_PKEY_verify(pc, der, (size_t)derlen, dg, 32), 1);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(pk);
    OPENSSL_free(der);
    mc_hsm_session_close(s);
    mc_hsm_close(h);
}

/* ---- negative cases ---- */

static void expect_open_fails(const char *uri, const char *pin, mc_err code, const char *needle)
{
    mc_hsm_config cfg = {mc_softhsm_module(), uri, pin};
    mc_hsm *h = (mc_hsm *)1;
    mc_errdetail e;
    mc_err_clear(&e);
    mc_err rc = mc_hsm_open(&cfg, &h, &e);
    if (rc != code || !strstr(e.message, needle))
        fail_msg("%s: got %s '%s', want %s with '%s'", uri, mc_err_name(rc), e.message,
                 mc_err_name(code), needle);
    assert_null(h);
    if (pin)
        assert_null(strstr(e.message, pin));
}

static void test_wrong_pin(void **state)
{
    (void)state;
    expect_open_fails("pkcs11:token=" TOKEN ";object=p256", "not-the-pin", MC_ERR_HSM_FATAL,
                      "C_Login: CKR_PIN_INCORRECT");
}

static void test_missing_token_or_key(void **state)
{
    (void)state;
    expect_open_fails("pkcs11:token=no-such-token;object=p256", USER_PIN, MC_ERR_HSM_FATAL,
                      "token=no-such-token");
    expect_open_fails("pkcs11:token=" TOKEN ";object=no-such-key", USER_PIN, MC_ERR_HSM_FATAL,
                      "object=no-such-key");
    expect_open_fails("pkcs11:token=" TOKEN ";object=p256;id=%09", USER_PIN, MC_ERR_HSM_FATAL,
                      "id=%09");
    /* both tokens are made by SoftHSM: manufacturer alone is ambiguous */
    expect_open_fails("pkcs11:manufacturer=SoftHSM%20project;object=p256", USER_PIN,
                      MC_ERR_HSM_FATAL, "2 tokens match");
    expect_open_fails("pkcs11:object=p256", USER_PIN, MC_ERR_CONFIG, "names no token");
    expect_open_fails("pkcs11:token=" TOKEN, USER_PIN, MC_ERR_CONFIG, "names no key");
    expect_open_fails("pkcs11:token=" TOKEN ";object=p256;type=cert", USER_PIN, MC_ERR_CONFIG,
                      "type= must be private");
    /* the second token's key opens when named by its own token */
    mc_hsm *h = open_ok("pkcs11:token=" TOKEN2 ";object=p256");
    assert_int_equal(mc_hsm_keytype(h), MC_KEY_P256);
    mc_hsm_close(h);
}

static void test_pin_value_refused(void **state)
{
    (void)state;
    expect_open_fails("pkcs11:token=" TOKEN ";object=p256?pin-value=" USER_PIN, USER_PIN,
                      MC_ERR_INVALID, "pin-value is refused");
}

static void test_pin_source(void **state)
{
    (void)state;
    char path[1100], uri[1300];
    snprintf(path, sizeof path, "%s/user.pin", g_dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(USER_PIN "\n", fp);
    fclose(fp);
    snprintf(uri, sizeof uri, "pkcs11:token=" TOKEN ";object=p384?pin-source=file:%s", path);
    mc_hsm_config cfg = {mc_softhsm_module(), uri, NULL};
    mc_hsm *h = NULL;
    mc_errdetail e;
    if (mc_hsm_open(&cfg, &h, &e))
        fail_err(uri, &e);
    assert_int_equal(mc_hsm_keytype(h), MC_KEY_P384);
    mc_hsm_close(h);
    /* no PIN at all */
    expect_open_fails("pkcs11:token=" TOKEN ";object=p384", NULL, MC_ERR_CONFIG, "no user PIN");
}

static void test_closed_session(void **state)
{
    (void)state;
    mc_hsm *h = open_ok("pkcs11:token=" TOKEN ";object=p256");
    mc_hsm_session *s;
    mc_errdetail e;
    assert_int_equal(mc_hsm_session_open(h, &s, &e), MC_OK);
    uint8_t dg[32] = {9}, sig[80];
    size_t siglen = sizeof sig;
    assert_int_equal(mc_hsm_sign(s, MC_SIG_ECDSA_SHA256, dg, 32, sig, &siglen, &e), MC_OK);

    /* someone closes every session on the token (a reset, another library in the process) */
    void *dl;
    CK_FUNCTION_LIST_PTR f = raw_module(&dl);
    char serial[17];
    CK_SLOT_ID slot = raw_find_token(f, TOKEN, serial);
    assert_int_equal(f->C_CloseAllSessions(slot), CKR_OK);
    dlclose(dl);

    siglen = sizeof sig;
    assert_int_equal(mc_hsm_sign(s, MC_SIG_ECDSA_SHA256, dg, 32, sig, &siglen, &e),
                     MC_ERR_HSM_SESSION);
    assert_non_null(strstr(e.message, "C_Sign"));
    assert_non_null(strstr(e.message, "CKR_SESSION_HANDLE_INVALID"));
    siglen = sizeof sig;
    assert_int_equal(mc_hsm_sign_raw(s, MC_SIG_ECDSA_SHA256, dg, 32, sig, &siglen),
                     MC_ERR_HSM_SESSION);
    /* the login went with the sessions: a new session says so */
    mc_hsm_session *s2 = (mc_hsm_session *)1;
    assert_int_equal(mc_hsm_session_open(h, &s2, &e), MC_ERR_HSM_SESSION);
    assert_null(s2);
    assert_non_null(strstr(e.message, "CKR_USER_NOT_LOGGED_IN"));
    mc_hsm_session_close(s);
    mc_hsm_close(h);
    /* reopening the mc_hsm recovers */
    h = open_ok("pkcs11:token=" TOKEN ";object=p256");
    assert_int_equal(mc_hsm_session_open(h, &s, &e), MC_OK);
    siglen = sizeof sig;
    assert_int_equal(mc_hsm_sign(s, MC_SIG_ECDSA_SHA256, dg, 32, sig, &siglen, &e), MC_OK);
    mc_hsm_session_close(s);
    mc_hsm_close(h);
}

static void test_provisioning_refusals(void **state)
{
    (void)state;
    mc_errdetail e;
    uint8_t id = 7;
    /* key labels and ids stay unique, since keys are found by them */
    assert_int_equal(
        mc_hsm_keygen(mc_softhsm_module(), TOKEN, USER_PIN, MC_KEY_P256, 0, "p256", &id, 1, &e),
        MC_ERR_INVALID);
    assert_non_null(strstr(e.message, "'p256'"));
    id = 1;
    assert_int_equal(
        mc_hsm_keygen(mc_softhsm_module(), TOKEN, USER_PIN, MC_KEY_P256, 0, "fresh", &id, 1, &e),
        MC_ERR_INVALID);
    assert_int_equal(
        mc_hsm_keygen(mc_softhsm_module(), TOKEN, USER_PIN, MC_KEY_RSA, 1024, "r1k", &id, 1, &e),
        MC_ERR_INVALID);
    assert_int_equal(
        mc_hsm_keygen(mc_softhsm_module(), TOKEN, "bad-pin", MC_KEY_P256, 0, "x", &id, 1, &e),
        MC_ERR_HSM_FATAL);
    assert_non_null(strstr(e.message, "C_Login: CKR_PIN_INCORRECT"));
    /* token labels too */
    assert_int_equal(mc_hsm_token_init(mc_softhsm_module(), TOKEN, SO_PIN, USER_PIN, &e),
                     MC_ERR_INVALID);
    assert_non_null(strstr(e.message, "already exists"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p256),
        cmocka_unit_test(test_p384_by_id),
        cmocka_unit_test(test_rsa_by_serial),
        cmocka_unit_test(test_ed25519_module_path),
        cmocka_unit_test(test_sign_argument_checks),
        cmocka_unit_test(test_wrong_pin),
        cmocka_unit_test(test_missing_token_or_key),
        cmocka_unit_test(test_pin_value_refused),
        cmocka_unit_test(test_pin_source),
        cmocka_unit_test(test_closed_session),
        cmocka_unit_test(test_provisioning_refusals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

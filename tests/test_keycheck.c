/*
 * Unit tests for mc_keycheck (SBR 6.1.1.3, 6.1.6): RSA exponent range, small factors (NIST SP
 * 800-89 5.3.3), the ROCA fingerprint (CVE-2017-15361), through mc_keycheck_rsa and through the
 * order's key check (a CSR and an attested public_key); the key-reuse decision; and the cost per
 * RSA-2048 key.
 *
 * The ROCA key is built the way Infineon's RSALib built them (Nemec et al., CCS 2017, section
 * 2.3): primes p = k*M + (65537^a mod M), M the product of the first 126 primes (RSALib's M for
 * 2048-bit keys), k and a random. Its private key is assembled so that a real CSR can be signed.
 * The remainder code is cross-checked against OpenSSL's BN_mod_word on random numbers of every
 * length.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/crypto.h"
#include "mailca/keycheck.h"
#include "mailca/order.h"
#include "support/csrgen.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_NORMAL 3

typedef struct fixture {
    EVP_PKEY *normal[N_NORMAL]; /* RSA-2048 keys from OpenSSL */
    EVP_PKEY *roca;             /* an RSALib-style (ROCA) RSA-2048 key */
} fixture;

static const uint8_t F4[] = {0x01, 0x00, 0x01};

static int is_prime_small(unsigned p)
{
    for (unsigned d = 2; d * d <= p; d++)
        if (p % d == 0)
            return 0;
    return p >= 2;
}

/* One RSALib-style prime of `bits` bits: k*M + (65537^a mod M). */
static BIGNUM *roca_prime(const BIGNUM *M, int bits, BN_CTX *ctx)
{
    BIGNUM *p = BN_new(), *g = BN_new(), *a = BN_new(), *k = BN_new(), *kmax = BN_new(),
           *top = BN_new();
    assert_true(p && g && a && k && kmax && top);
    assert_true(BN_set_word(g, 65537));
    /* k in [0.75 * 2^bits / M, 2^bits / M): p has exactly `bits` bits and its top two set. */
    assert_true(BN_set_bit(top, bits));
    assert_true(BN_div(kmax, NULL, top, M, ctx));
    for (int tries = 0;; tries++) {
        assert_true(tries < 100000);
        assert_true(BN_rand_range(k, kmax));
        if (BN_num_bits(k) < BN_num_bits(kmax))
            continue;
        assert_true(BN_rand(a, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY));
        assert_true(BN_mod_exp(p, g, a, M, ctx));
        assert_true(BN_mul(k, k, M, ctx));
        assert_true(BN_add(p, p, k));
        if (BN_num_bits(p) != bits || !BN_is_bit_set(p, bits - 2))
            continue;
        if (BN_check_prime(p, ctx, NULL) == 1)
            break;
    }
    BN_free(g);
    BN_free(a);
    BN_free(k);
    BN_free(kmax);
    BN_free(top);
    return p;
}

/* An RSA key with primes p and q and e = 65537 (private parts computed), so it can sign. */
static EVP_PKEY *rsa_from_primes(const BIGNUM *p, const BIGNUM *q, BN_CTX *ctx)
{
    BIGNUM *n = BN_new(), *e = BN_new(), *d = BN_new(), *p1 = BN_new(), *q1 = BN_new(),
           *phi = BN_new(), *dp = BN_new(), *dq = BN_new(), *qi = BN_new();
    assert_true(n && e && d && p1 && q1 && phi && dp && dq && qi);
    assert_true(BN_set_word(e, 65537) && BN_mul(n, p, q, ctx) && BN_sub(p1, p, BN_value_one()) &&
                BN_sub(q1, q, BN_value_one()) && BN_mul(phi, p1, q1, ctx));
    assert_non_null(BN_mod_inverse(d, e, phi, ctx));
    assert_true(BN_mod(dp, d, p1, ctx) && BN_mod(dq, d, q1, ctx));
    assert_non_null(BN_mod_inverse(qi, q, p, ctx));
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    assert_non_null(b);
    assert_true(OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n) &&
                OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e) &&
                OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_D, d) &&
                OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_FACTOR1, p) &&
                OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_FACTOR2, q) &&
                OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) &&
                OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) &&
                OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qi));
    OSSL_PARAM *ps = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *k = NULL;
    assert_true(ps && pc && EVP_PKEY_fromdata_init(pc) == 1 &&
                EVP_PKEY_fromdata(pc, &k, EVP_PKEY_KEYPAIR, ps) == 1);
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(ps);
    OSSL_PARAM_BLD_free(b);
    BN_free(n);
    BN_free(e);
    BN_free(d);
    BN_free(p1);
    BN_free(q1);
    BN_free(phi);
    BN_free(dp);
    BN_free(dq);
    BN_free(qi);
    return k;
}

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    *state = fx;
    for (int i = 0; i < N_NORMAL; i++)
        if (!(fx->normal[i] = mc_csrgen_key(MC_KEY_RSA, 2048)))
            return -1;
    /* RSALib's M for 2048-bit keys: the product of the first 126 primes (2 .. 701). */
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *M = BN_new();
    if (!ctx || !M || !BN_one(M))
        return -1;
    for (unsigned p = 2, n = 0; n < 126; p++)
        if (is_prime_small(p)) {
            if (!BN_mul_word(M, p))
                return -1;
            n++;
        }
    BIGNUM *p = roca_prime(M, 1024, ctx), *q = roca_prime(M, 1024, ctx);
    fx->roca = rsa_from_primes(p, q, ctx);
    BN_free(p);
    BN_free(q);
    BN_free(M);
    BN_CTX_free(ctx);
    return fx->roca ? 0 : -1;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    for (int i = 0; i < N_NORMAL; i++)
        EVP_PKEY_free(fx->normal[i]);
    EVP_PKEY_free(fx->roca);
    free(fx);
    return 0;
}

/* The modulus of an RSA key, big-endian, into out (256 bytes for RSA-2048). */
static size_t modulus(EVP_PKEY *k, uint8_t *out, size_t cap)
{
    BIGNUM *n = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    int len = BN_bn2binpad(n, out, (int)cap);
    BN_free(n);
    assert_true(len > 0);
    return (size_t)len;
}

static void expect_rsa(const uint8_t *n, size_t nl, const uint8_t *e, size_t el, mc_err want,
                       const char *rule, const char *msg_part)
{
    mc_errdetail err;
    memset(&err, 0, sizeof err);
    mc_err rc = mc_keycheck_rsa(n, nl, e, el, "csr", &err);
    if (rc != want ||
        (want != MC_OK && (strcmp(err.rule, rule) != 0 || !strstr(err.message, msg_part) ||
                           strcmp(err.field, "csr") != 0)))
        fail_msg("rc %d rule \"%s\" field \"%s\" message \"%s\"; wanted rc %d rule \"%s\" with "
                 "\"%s\"",
                 rc, err.rule, err.field, err.message, want, rule ? rule : "", msg_part);
}

/* SBR 6.1.6 SHOULD (policy: rejected): 2^16 + 1 <= e <= 2^256 - 1. */
static void test_exponent(void **state)
{
    fixture *fx = *state;
    uint8_t n[256], big[40];
    size_t nl = modulus(fx->normal[0], n, sizeof n);
    const uint8_t e3[] = {3}, e65535[] = {0xff, 0xff}, e65536[] = {0x01, 0x00, 0x00},
                  e_lead0[] = {0x00, 0x01, 0x00, 0x01}, e65539[] = {0x01, 0x00, 0x03};
    assert_false(mc_keycheck_rsa_exponent_ok(e3, sizeof e3));
    assert_false(mc_keycheck_rsa_exponent_ok(e65535, sizeof e65535));
    assert_false(mc_keycheck_rsa_exponent_ok(e65536, sizeof e65536));
    assert_true(mc_keycheck_rsa_exponent_ok(F4, sizeof F4));
    assert_true(mc_keycheck_rsa_exponent_ok(e_lead0, sizeof e_lead0));
    assert_true(mc_keycheck_rsa_exponent_ok(e65539, sizeof e65539));
    /* 2^256 - 1 is the largest allowed, 2^256 + 1 (33 bytes) is out. */
    memset(big, 0xff, 32);
    assert_true(mc_keycheck_rsa_exponent_ok(big, 32));
    memset(big, 0, 33);
    big[0] = 1;
    big[32] = 1;
    assert_false(mc_keycheck_rsa_exponent_ok(big, 33));
    assert_false(mc_keycheck_rsa_exponent_ok(big, 0));

    expect_rsa(n, nl, F4, sizeof F4, MC_OK, NULL, NULL);
    expect_rsa(n, nl, e3, sizeof e3, MC_ERR_INVALID, "SBR 6.1.6",
               "RSA public exponent 3 is outside [2^16+1, 2^256-1]");
    expect_rsa(n, nl, e65535, sizeof e65535, MC_ERR_INVALID, "SBR 6.1.6", "exponent 65535");
    expect_rsa(n, nl, big, 33, MC_ERR_INVALID, "SBR 6.1.6", "a 33-byte value");
}

/* Random numbers of every length 1..300 bytes (and some with leading zeros): the smallest
 * prime factor below 752 and the ROCA verdict agree with a BN_mod_word reference. */
static void test_residues_reference(void **state)
{
    (void)state;
    BIGNUM *x = BN_new();
    assert_non_null(x);
    unsigned found[2] = {0, 0};
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t buf[302];
        size_t len = 1 + (size_t)(iter % 300), lead = iter % 7 == 0 ? 2 : 0;
        memset(buf, 0, lead);
        assert_int_equal(RAND_bytes(buf + lead, (int)len), 1);
        if (iter % 3 == 0)
            buf[lead + len - 1] |= 1; /* mostly odd, like moduli */
        assert_non_null(BN_bin2bn(buf, (int)(len + lead), x));
        unsigned want = 0;
        for (unsigned p = 2; p < 752 && !want; p++)
            if (is_prime_small(p) && BN_mod_word(x, p) == 0)
                want = p;
        if (BN_is_zero(x))
            want = 2; /* zero is even */
        unsigned got = mc_keycheck_small_factor(buf, len + lead);
        if (got != want)
            fail_msg("length %zu: small factor %u, BN_mod_word says %u", len, got, want);
        found[want == 0]++;
        /* ROCA reference: N mod r in <65537 mod r> for r = 3..167. */
        int roca = 1;
        for (unsigned r = 3; r <= 167 && roca; r++) {
            if (!is_prime_small(r))
                continue;
            BN_ULONG m = BN_mod_word(x, r);
            unsigned g = 1, in = 0;
            do {
                in |= g == m;
                g = g * 65537u % r;
            } while (g != 1);
            roca = in;
        }
        assert_int_equal(mc_keycheck_roca(buf, len + lead), roca);
    }
    assert_true(found[0] > 100 && found[1] > 100); /* both outcomes were exercised */
    BN_free(x);
}

/* SBR 6.1.6 SHOULD (policy: rejected), NIST SP 800-89 5.3.3: odd, no factor below 752. */
static void test_small_factors(void **state)
{
    fixture *fx = *state;
    uint8_t n[256], bad[300];
    size_t nl = modulus(fx->normal[1], n, sizeof n);
    assert_int_equal(mc_keycheck_small_factor(n, nl), 0);
    expect_rsa(n, nl, F4, sizeof F4, MC_OK, NULL, NULL);
    /* Even: the last bit cleared. */
    memcpy(bad, n, nl);
    bad[nl - 1] &= 0xfe;
    expect_rsa(bad, nl, F4, sizeof F4, MC_ERR_INVALID, "SBR 6.1.6", "RSA modulus is even");
    /* p * R for R a 2037..2040-bit odd number without small factors: the factor p is named;
     * 757, the first prime above 751, is not looked for. */
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *r = BN_new(), *pr = BN_new();
    assert_true(ctx && r && pr);
    do
        assert_true(BN_rand(r, 2037, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD));
    while (mc_keycheck_small_factor(n, (size_t)BN_bn2bin(r, n)) != 0);
    const unsigned ps[] = {3, 5, 7, 167, 173, 701, 743, 751, 757};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        assert_true(BN_copy(pr, r) && BN_mul_word(pr, ps[i]));
        int bl = BN_bn2bin(pr, bad);
        char part[64];
        snprintf(part, sizeof part, "divisible by %u", ps[i]);
        if (ps[i] < 752) {
            assert_int_equal(mc_keycheck_small_factor(bad, (size_t)bl), ps[i]);
            expect_rsa(bad, (size_t)bl, F4, sizeof F4, MC_ERR_INVALID, "SBR 6.1.6", part);
        } else {
            assert_int_equal(mc_keycheck_small_factor(bad, (size_t)bl), 0);
            expect_rsa(bad, (size_t)bl, F4, sizeof F4, MC_OK, NULL, NULL);
        }
    }
    BN_free(r);
    BN_free(pr);
    BN_CTX_free(ctx);
}

/* An SPKI DER of key (caller frees with OPENSSL_free). */
static uint8_t *spki_of(EVP_PKEY *k, size_t *len)
{
    uint8_t *der = NULL;
    int l = i2d_PUBKEY(k, &der);
    assert_true(l > 0);
    *len = (size_t)l;
    return der;
}

static mc_err order_check(EVP_PKEY *k, int use_csr, mc_errdetail *err)
{
    mc_order o;
    memset(&o, 0, sizeof o);
    mc_digests d;
    mc_errdetail e2;
    assert_int_equal(mc_digests_fetch(&d, &e2), MC_OK);
    uint8_t *der;
    size_t len;
    if (use_csr) {
        der = mc_csrgen_csr(k, NULL, 0, &len);
        assert_non_null(der);
        o.csr = der;
        o.csr_len = len;
    } else {
        der = spki_of(k, &len);
        o.public_key = der;
        o.public_key_len = len;
    }
    mc_err rc = mc_order_check_csr_ctx(&o, &d, NULL, err);
    if (use_csr)
        free(der);
    else
        OPENSSL_free(der);
    mc_digests_free(&d);
    return rc;
}

/* SBR 6.1.1.3 (CVE-2017-15361): an RSALib key is refused, OpenSSL keys pass. */
static void test_roca(void **state)
{
    fixture *fx = *state;
    uint8_t n[256];
    mc_errdetail err;
    size_t nl = modulus(fx->roca, n, sizeof n);
    assert_int_equal(nl, 256);
    assert_int_equal(n[0] & 0x80, 0x80); /* 2048 bits exactly: the size rules pass */
    assert_int_equal(mc_keycheck_small_factor(n, nl), 0);
    assert_true(mc_keycheck_roca(n, nl));
    expect_rsa(n, nl, F4, sizeof F4, MC_ERR_INVALID, "SBR 6.1.1.3", "CVE-2017-15361");
    /* Through the order's key check: a CSR signed by the key (proof of possession holds) and
     * the same key as an attested public_key. */
    assert_int_equal(order_check(fx->roca, 1, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "csr");
    assert_string_equal(err.rule, "SBR 6.1.1.3");
    assert_non_null(strstr(err.message, "ROCA"));
    assert_int_equal(order_check(fx->roca, 0, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "public_key");
    assert_string_equal(err.rule, "SBR 6.1.1.3");
    /* Keys from OpenSSL pass, with a CSR and as a public_key. */
    for (int i = 0; i < N_NORMAL; i++) {
        nl = modulus(fx->normal[i], n, sizeof n);
        assert_false(mc_keycheck_roca(n, nl));
        expect_rsa(n, nl, F4, sizeof F4, MC_OK, NULL, NULL);
        if (order_check(fx->normal[i], i % 2, &err) != MC_OK)
            fail_msg("normal key %d: %s (%s)", i, err.message, err.rule);
    }
}

/* The exponent rule through the order: e = 3 is refused by policy. */
static void test_order_exponent(void **state)
{
    (void)state;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *three = BN_new();
    EVP_PKEY *k3 = NULL;
    assert_true(ctx && three && BN_set_word(three, 3));
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, three), 1);
    assert_int_equal(EVP_PKEY_keygen(ctx, &k3), 1);
    mc_errdetail err;
    assert_int_equal(order_check(k3, 1, &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 6.1.6");
    assert_string_equal(err.field, "csr");
    assert_non_null(strstr(err.message, "exponent 3 "));
    EVP_PKEY_free(k3);
    BN_free(three);
    EVP_PKEY_CTX_free(ctx);
}

/* Key reuse across accounts: the decision and the SPKI hash. */
/* The decision itself (same account passes, another is refused) is the store's: test_store. */
static void test_reuse_refusal(void **state)
{
    (void)state;
    static const uint8_t h[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                  0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                  0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    mc_errdetail err;
    assert_int_equal(mc_keycheck_reuse_refusal(h, "public_key", &err), MC_ERR_INVALID);
    assert_int_equal(err.code, MC_ERR_INVALID);
    assert_string_equal(err.field, "public_key");
    assert_string_equal(err.rule, "orders.md key-reuse");
    assert_non_null(strstr(err.message, "ba7816bf8f01cfea41414"));
    assert_non_null(strstr(err.message, "another account"));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Cost per RSA-2048 key of every check in mc_keycheck_rsa (all run: the key passes). */
static void test_cost(void **state)
{
    fixture *fx = *state;
    uint8_t n[256];
    size_t nl = modulus(fx->normal[2], n, sizeof n);
    mc_errdetail err;
    int iters = 20000, ok = 0;
    double t0 = now_s();
    for (int i = 0; i < iters; i++)
        ok += mc_keycheck_rsa(n, nl, F4, sizeof F4, "csr", &err) == MC_OK;
    double per = (now_s() - t0) / iters * 1e6;
    assert_int_equal(ok, iters);
    fprintf(stderr, "mc_keycheck_rsa: %.2f us per RSA-2048 key (%d keys)\n", per, iters);
    /* Generous: ~2-3 us in a normal build, about 10x under sanitizers. */
    assert_true(per < 200.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponent),       cmocka_unit_test(test_residues_reference),
        cmocka_unit_test(test_small_factors),  cmocka_unit_test(test_roca),
        cmocka_unit_test(test_order_exponent), cmocka_unit_test(test_reuse_refusal),
        cmocka_unit_test(test_cost),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

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
#include <openssl/err.h>
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
    mc_keycheck_ed *ed;         /* the EdDSA key check context */
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
    mc_errdetail err;
    if (mc_keycheck_ed_new(&fx->ed, &err) != MC_OK)
        return -1;
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
    mc_keycheck_ed_free(fx->ed);
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

/* ---- EdDSA public keys (SBR 6.1.5): RFC 8032 5.1.3 / 5.2.3 decoding, small-order points ---- */

typedef struct ed_params {
    mc_keytype kt;
    const char *name; /* OpenSSL key type */
    size_t len;       /* raw key bytes */
    BIGNUM *p, *d;
    int a; /* -1 Ed25519, 1 Ed448 */
} ed_params;

/* The curve constants, computed here from RFC 8032 5.1 / 5.2 independently of engine/keycheck.c.
 * Caller frees with ed_params_free. */
static void ed_params_make(mc_keytype kt, ed_params *ep, BN_CTX *ctx)
{
    BIGNUM *t = BN_new();
    ep->kt = kt;
    ep->p = BN_new();
    ep->d = BN_new();
    assert_true(t && ep->p && ep->d);
    if (kt == MC_KEY_ED25519) {
        ep->name = "ED25519";
        ep->len = 32;
        ep->a = -1;
        assert_true(BN_hex2bn(&ep->p, "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
                                      "ffed"));
        /* d = -121665 / 121666 */
        assert_true(BN_set_word(t, 121666) && BN_mod_inverse(t, t, ep->p, ctx) &&
                    BN_mul_word(t, 121665) && BN_mod(t, t, ep->p, ctx) && BN_sub(ep->d, ep->p, t));
    } else {
        ep->name = "ED448";
        ep->len = 57;
        ep->a = 1;
        assert_true(BN_hex2bn(&ep->p, "fffffffffffffffffffffffffffffffffffffffffffffffffffffffe"
                                      "ffffffffffffffffffffffffffffffffffffffffffffffffffffffff"));
        assert_true(BN_copy(ep->d, ep->p) && BN_sub_word(ep->d, 39081));
    }
    BN_free(t);
}

static void ed_params_free(ed_params *ep)
{
    BN_free(ep->p);
    BN_free(ep->d);
}

/* The RFC 8032 encoding of y (below 2^(8 len - 1)) with sign bit x0 into out. */
static void ed_encode(const ed_params *ep, const BIGNUM *y, int x0, uint8_t *out)
{
    assert_int_equal(BN_bn2lebinpad(y, out, (int)ep->len), (int)ep->len);
    assert_int_equal(out[ep->len - 1] & 0x80, 0);
    out[ep->len - 1] |= (uint8_t)(x0 << 7);
}

/* Test oracle, by a different route than engine/keycheck.c (which takes the Legendre symbol of
 * u * v): 1 when x^2 = (y^2 - 1) / (d y^2 - a) has a square root mod p, computed with a modular
 * inverse and BN_mod_sqrt (which verifies its root). */
static int ed_x2_is_square(const ed_params *ep, const BIGNUM *y, BN_CTX *ctx)
{
    BIGNUM *y2 = BN_new(), *u = BN_new(), *v = BN_new(), *x2 = BN_new(), *a = BN_new();
    assert_true(y2 && u && v && x2 && a);
    assert_true(BN_set_word(a, 1));
    if (ep->a < 0)
        BN_set_negative(a, 1);
    assert_true(BN_mod_sqr(y2, y, ep->p, ctx) && BN_mod_sub(u, y2, BN_value_one(), ep->p, ctx) &&
                BN_mod_mul(v, ep->d, y2, ep->p, ctx) && BN_mod_sub(v, v, a, ep->p, ctx));
    assert_false(BN_is_zero(v));
    assert_non_null(BN_mod_inverse(v, v, ep->p, ctx));
    assert_true(BN_mod_mul(x2, u, v, ep->p, ctx));
    BIGNUM *x = BN_mod_sqrt(NULL, x2, ep->p, ctx);
    ERR_clear_error();
    int sq = x != NULL;
    BN_free(x);
    BN_free(y2);
    BN_free(u);
    BN_free(v);
    BN_free(x2);
    BN_free(a);
    return sq;
}

/* An SPKI for a raw EdDSA key (RFC 8410 4: algorithm id-Ed25519 / id-Ed448, no parameters). */
static size_t ed_spki(mc_keytype kt, const uint8_t *key, uint8_t *out)
{
    static const uint8_t h25519[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                     0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    static const uint8_t h448[] = {0x30, 0x43, 0x30, 0x05, 0x06, 0x03,
                                   0x2b, 0x65, 0x71, 0x03, 0x3a, 0x00};
    size_t klen = kt == MC_KEY_ED25519 ? 32 : 57;
    memcpy(out, kt == MC_KEY_ED25519 ? h25519 : h448, 12);
    memcpy(out + 12, key, klen);
    return 12 + klen;
}

/* An attested public_key order through mc_order_check_csr_ctx (the pipeline's entry, with the
 * worker context cc). */
static mc_err ed_order_check(mc_csr_ctx *cc, mc_keytype kt, const uint8_t *key, mc_errdetail *err)
{
    uint8_t spki[12 + 57];
    mc_order o;
    memset(&o, 0, sizeof o);
    mc_digests d;
    mc_errdetail e2;
    assert_int_equal(mc_digests_fetch(&d, &e2), MC_OK);
    o.public_key = spki;
    o.public_key_len = ed_spki(kt, key, spki);
    mc_err rc = mc_order_check_csr_ctx(&o, &d, cc, err);
    mc_digests_free(&d);
    return rc;
}

static const mc_keytype ed_types[2] = {MC_KEY_ED25519, MC_KEY_ED448};

/* SBR 6.1.5: keys from OpenSSL's keygen pass, as raw keys, as attested public_key orders and in
 * CSRs. */
static void test_ed_valid(void **state)
{
    fixture *fx = *state;
    mc_csr_ctx cc;
    mc_errdetail err;
    assert_int_equal(mc_csr_ctx_init(&cc, &err), MC_OK);
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 16; i++) {
            EVP_PKEY *k = mc_csrgen_key(ed_types[c], 0);
            uint8_t raw[57];
            size_t rl = sizeof raw;
            assert_non_null(k);
            assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &rl), 1);
            assert_int_equal(mc_keycheck_ed_decode(fx->ed, ed_types[c], raw, rl),
                             MC_KEYCHECK_ED_OK);
            assert_int_equal(mc_keycheck_eddsa(fx->ed, ed_types[c], raw, rl, "public_key", &err),
                             MC_OK);
            if (ed_order_check(&cc, ed_types[c], raw, &err) != MC_OK)
                fail_msg("%s key %d: %s (%s)", mc_keytype_name(ed_types[c]), i, err.message,
                         err.rule);
            if (i < 2 && order_check(k, 1, &err) != MC_OK)
                fail_msg("%s CSR %d: %s (%s)", mc_keytype_name(ed_types[c]), i, err.message,
                         err.rule);
            EVP_PKEY_free(k);
        }
    /* the wrong length or key type */
    uint8_t z[57] = {0};
    assert_int_equal(mc_keycheck_ed_decode(fx->ed, MC_KEY_ED25519, z, 57), MC_KEYCHECK_ED_LENGTH);
    assert_int_equal(mc_keycheck_ed_decode(fx->ed, MC_KEY_ED448, z, 32), MC_KEYCHECK_ED_LENGTH);
    assert_int_equal(mc_keycheck_ed_decode(fx->ed, MC_KEY_P256, z, 32), MC_KEYCHECK_ED_LENGTH);
    mc_csr_ctx_free(&cc);
}

/* Expects key to be refused with status want, directly and as a public_key order (field and
 * rule), the message containing part. */
static void expect_ed_refused(mc_keycheck_ed *ed, mc_csr_ctx *cc, mc_keytype kt, const uint8_t *key,
                              mc_keycheck_ed_status want, const char *part)
{
    mc_errdetail err;
    size_t len = kt == MC_KEY_ED25519 ? 32 : 57;
    const char *rule = want == MC_KEYCHECK_ED_SMALL_ORDER ? "SBR 6.1.1.3" : "SBR 6.1.5";
    assert_int_equal(mc_keycheck_ed_decode(ed, kt, key, len), want);
    assert_int_equal(mc_keycheck_eddsa(ed, kt, key, len, "public_key", &err), MC_ERR_INVALID);
    assert_int_equal(ed_order_check(cc, kt, key, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "public_key");
    assert_string_equal(err.rule, rule);
    if (!strstr(err.message, part))
        fail_msg("%s: message \"%s\" lacks \"%s\"", mc_keytype_name(kt), err.message, part);
}

/* RFC 8032 5.1.3 / 5.2.3 step 1: y >= p is refused, y = p - 1 (valid encoding) is not refused
 * for its range; both curves, both signs. */
static void test_ed_y_range(void **state)
{
    fixture *fx = *state;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *y = BN_new();
    mc_csr_ctx cc;
    mc_errdetail err;
    assert_true(ctx && y);
    assert_int_equal(mc_csr_ctx_init(&cc, &err), MC_OK);
    for (int c = 0; c < 2; c++) {
        ed_params ep;
        uint8_t key[57];
        ed_params_make(ed_types[c], &ep, ctx);
        for (int x0 = 0; x0 < 2; x0++) {
            /* y = p, p + 1 (the identity's non-canonical encoding), p + 18 */
            static const unsigned over[] = {0, 1, 18};
            for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
                assert_true(BN_copy(y, ep.p) && BN_add_word(y, over[i]));
                ed_encode(&ep, y, x0, key);
                expect_ed_refused(fx->ed, &cc, ed_types[c], key, MC_KEYCHECK_ED_Y_RANGE,
                                  "not below p");
            }
            /* every bit of y set */
            memset(key, 0xff, ep.len);
            key[ep.len - 1] = x0 ? 0xff : 0x7f;
            expect_ed_refused(fx->ed, &cc, ed_types[c], key, MC_KEYCHECK_ED_Y_RANGE, "not below p");
            /* y = p - 1 is in range: its status is about x, not y */
            assert_true(BN_copy(y, ep.p) && BN_sub_word(y, 1));
            ed_encode(&ep, y, x0, key);
            assert_int_not_equal(mc_keycheck_ed_decode(fx->ed, ed_types[c], key, ep.len),
                                 MC_KEYCHECK_ED_Y_RANGE);
        }
        if (ed_types[c] == MC_KEY_ED448) {
            /* bits 448..454 (between y and x_0) set: y >= 2^448 > p */
            memset(key, 0, sizeof key);
            key[0] = 5;
            key[56] = 0x01;
            expect_ed_refused(fx->ed, &cc, MC_KEY_ED448, key, MC_KEYCHECK_ED_Y_RANGE,
                              "not below p");
        }
        ed_params_free(&ep);
    }
    mc_csr_ctx_free(&cc);
    BN_free(y);
    BN_CTX_free(ctx);
}

/* RFC 8032 step 3: a y whose x^2 is not a square is refused. y runs from 2 upwards; each is
 * classified by the oracle (ed_x2_is_square) and must get the same verdict from the engine, so
 * both outcomes are exercised and the first non-square y is found deterministically. */
static void test_ed_not_square(void **state)
{
    fixture *fx = *state;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *y = BN_new();
    mc_csr_ctx cc;
    mc_errdetail err;
    assert_true(ctx && y);
    assert_int_equal(mc_csr_ctx_init(&cc, &err), MC_OK);
    for (int c = 0; c < 2; c++) {
        ed_params ep;
        uint8_t key[57];
        int n_sq = 0, n_nonsq = 0, refused_order = 0;
        ed_params_make(ed_types[c], &ep, ctx);
        for (unsigned long w = 2; w < 200; w++) {
            assert_true(BN_set_word(y, w));
            int sq = ed_x2_is_square(&ep, y, ctx);
            for (int x0 = 0; x0 < 2; x0++) {
                ed_encode(&ep, y, x0, key);
                if (!sq) {
                    if (n_nonsq++ < 4)
                        expect_ed_refused(fx->ed, &cc, ed_types[c], key, MC_KEYCHECK_ED_NOT_SQUARE,
                                          "not a square");
                    else
                        assert_int_equal(mc_keycheck_ed_decode(fx->ed, ed_types[c], key, ep.len),
                                         MC_KEYCHECK_ED_NOT_SQUARE);
                } else {
                    n_sq++;
                    mc_err rc = ed_order_check(&cc, ed_types[c], key, &err);
                    if (rc != MC_OK)
                        fail_msg("%s y=%lu x0=%d: %s", mc_keytype_name(ed_types[c]), w, x0,
                                 err.message);
                    refused_order += rc != MC_OK;
                }
            }
        }
        /* about half the y values are on the curve */
        assert_true(n_sq > 100 && n_nonsq > 100);
        assert_int_equal(refused_order, 0);
        /* The same from the top of the range: y = p - 2, p - 3, ... */
        for (unsigned long w = 2; w < 40; w++) {
            assert_true(BN_copy(y, ep.p) && BN_sub_word(y, w));
            ed_encode(&ep, y, 0, key);
            assert_int_equal(mc_keycheck_ed_decode(fx->ed, ed_types[c], key, ep.len),
                             ed_x2_is_square(&ep, y, ctx) ? MC_KEYCHECK_ED_OK
                                                          : MC_KEYCHECK_ED_NOT_SQUARE);
        }
        ed_params_free(&ep);
    }
    mc_csr_ctx_free(&cc);
    BN_free(y);
    BN_CTX_free(ctx);
}

/* RFC 8032 step 4: x = 0 (y = 1 or y = p - 1) with the sign bit set is refused; without it the
 * point is valid but of small order (the identity, or of order 2), refused by policy. */
static void test_ed_x0_sign(void **state)
{
    fixture *fx = *state;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *y = BN_new();
    mc_csr_ctx cc;
    mc_errdetail err;
    assert_true(ctx && y);
    assert_int_equal(mc_csr_ctx_init(&cc, &err), MC_OK);
    for (int c = 0; c < 2; c++) {
        ed_params ep;
        uint8_t key[57];
        ed_params_make(ed_types[c], &ep, ctx);
        for (int minus = 0; minus < 2; minus++) {
            if (minus)
                assert_true(BN_copy(y, ep.p) && BN_sub_word(y, 1));
            else
                assert_true(BN_one(y));
            ed_encode(&ep, y, 1, key);
            expect_ed_refused(fx->ed, &cc, ed_types[c], key, MC_KEYCHECK_ED_X0_SIGN,
                              "x is 0 but its sign bit is set");
            ed_encode(&ep, y, 0, key);
            expect_ed_refused(fx->ed, &cc, ed_types[c], key, MC_KEYCHECK_ED_SMALL_ORDER,
                              "small order");
        }
        ed_params_free(&ep);
    }
    mc_csr_ctx_free(&cc);
    BN_free(y);
    BN_CTX_free(ctx);
}

/* Small-order points (mailca policy, SBR 6.1.1.3): y = 0 (order 4) on both curves, and
 * Ed25519's points of order 8, as libsodium's blocklist encodes them (crypto_core/ed25519
 * ge25519_has_small_order), both signs of x. */
static void test_ed_small_order(void **state)
{
    fixture *fx = *state;
    mc_csr_ctx cc;
    mc_errdetail err;
    assert_int_equal(mc_csr_ctx_init(&cc, &err), MC_OK);
    static const char *order8[] = {
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"};
    uint8_t key[57];
    for (int x0 = 0; x0 < 2; x0++) {
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 32; j++)
                assert_int_equal(sscanf(order8[i] + 2 * j, "%2hhx", &key[j]), 1);
            key[31] |= (uint8_t)(x0 << 7);
            expect_ed_refused(fx->ed, &cc, MC_KEY_ED25519, key, MC_KEYCHECK_ED_SMALL_ORDER,
                              "small order");
            /* one bit away it is an ordinary y */
            key[0] ^= 0x02;
            assert_int_not_equal(mc_keycheck_ed_decode(fx->ed, MC_KEY_ED25519, key, 32),
                                 MC_KEYCHECK_ED_SMALL_ORDER);
        }
        for (int c = 0; c < 2; c++) {
            size_t len = ed_types[c] == MC_KEY_ED25519 ? 32 : 57;
            memset(key, 0, sizeof key);
            key[len - 1] = (uint8_t)(x0 << 7);
            expect_ed_refused(fx->ed, &cc, ed_types[c], key, MC_KEYCHECK_ED_SMALL_ORDER,
                              "small order");
        }
    }
    mc_csr_ctx_free(&cc);
}

/* A CSR needs no private key when its key is the Ed25519 identity: the signature
 * (R = identity, S = 0) verifies for any content, and OpenSSL 3.0 accepts it (checked here, so
 * the test notices if that changes), also with the identity's non-canonical encoding
 * y = p + 1. mailca refuses both CSRs. */
static uint8_t *forged_csr(const uint8_t key[32], size_t *len, int *openssl_ok)
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, key, 32);
    X509_REQ *req = X509_REQ_new();
    X509_NAME *nm = X509_NAME_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *sig = ASN1_BIT_STRING_new();
    uint8_t s[64] = {1}; /* R = the identity (y = 1), S = 0 */
    assert_true(pk && req && nm && alg && sig);
    assert_true(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"forged",
                                           -1, -1, 0));
    assert_true(X509_REQ_set_subject_name(req, nm) && X509_REQ_set_pubkey(req, pk));
    assert_true(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF, NULL));
    assert_true(X509_REQ_set1_signature_algo(req, alg));
    assert_true(ASN1_BIT_STRING_set(sig, s, sizeof s));
    X509_REQ_set0_signature(req, sig);
    uint8_t *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    *openssl_ok = X509_REQ_verify(req, pk) == 1;
    ERR_clear_error();
    *len = (size_t)n;
    X509_ALGOR_free(alg);
    X509_NAME_free(nm);
    X509_REQ_free(req);
    EVP_PKEY_free(pk);
    return der;
}

static void test_ed_forged_csr(void **state)
{
    (void)state;
    static const uint8_t identity[32] = {1};
    uint8_t noncanon[32]; /* y = p + 1 = 2^255 - 18 */
    memset(noncanon, 0xff, 32);
    noncanon[0] = 0xee;
    noncanon[31] = 0x7f;
    const uint8_t *keys[2] = {identity, noncanon};
    const char *rules[2] = {"SBR 6.1.1.3", "SBR 6.1.5"};
    mc_digests d;
    mc_errdetail err;
    assert_int_equal(mc_digests_fetch(&d, &err), MC_OK);
    for (int i = 0; i < 2; i++) {
        size_t len;
        int openssl_ok;
        uint8_t *der = forged_csr(keys[i], &len, &openssl_ok);
        if (!openssl_ok)
            fprintf(stderr, "note: OpenSSL now refuses forged CSR %d itself\n", i);
        mc_order o;
        memset(&o, 0, sizeof o);
        o.csr = der;
        o.csr_len = len;
        assert_int_equal(mc_order_check_csr_ctx(&o, &d, NULL, &err), MC_ERR_INVALID);
        assert_string_equal(err.field, "csr");
        assert_string_equal(err.rule, rules[i]);
        OPENSSL_free(der);
    }
    mc_digests_free(&d);
}

/* SBR 6.1.1.3 (4): the refusal of an order whose key the store knows to be compromised. The
 * decision (keyCompromise records the key; other reasons and other keys pass) is the store's:
 * test_store test_compromised_key_refused. */
static void test_compromised_refusal(void **state)
{
    (void)state;
    static const uint8_t h[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                  0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                  0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const char *const fields[] = {"csr", "public_key"};
    for (size_t i = 0; i < 2; i++) {
        mc_errdetail err;
        mc_err_clear(&err);
        assert_int_equal(mc_keycheck_compromised_refusal(h, fields[i], &err), MC_ERR_INVALID);
        assert_int_equal(err.code, MC_ERR_INVALID);
        assert_string_equal(err.field, fields[i]);
        assert_string_equal(err.rule, "SBR 6.1.1.3");
        assert_string_equal(err.rule, MC_KEYCHECK_RULE_COMPROMISED);
        assert_non_null(strstr(err.message,
                               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_non_null(strstr(err.message, "compromised"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponent),
        cmocka_unit_test(test_residues_reference),
        cmocka_unit_test(test_small_factors),
        cmocka_unit_test(test_roca),
        cmocka_unit_test(test_order_exponent),
        cmocka_unit_test(test_reuse_refusal),
        cmocka_unit_test(test_ed_valid),
        cmocka_unit_test(test_ed_y_range),
        cmocka_unit_test(test_ed_not_square),
        cmocka_unit_test(test_ed_x0_sign),
        cmocka_unit_test(test_ed_small_order),
        cmocka_unit_test(test_ed_forged_csr),
        cmocka_unit_test(test_compromised_refusal),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

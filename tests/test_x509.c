/*
 * Unit tests for mc_x509: a certificate made by OpenSSL (certgen) parses into the right view,
 * as a Certificate and as a bare TBSCertificate; truncated, padded and BER-encoded inputs and
 * structural violations are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/x509.h"
#include "support/certgen.h"

#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

static cg_cert good;

static int setup(void **state)
{
    (void)state;
    cg_opts o;
    cg_opts_default(&o);
    return cg_build(&o, &good);
}

static int teardown(void **state)
{
    (void)state;
    cg_cert_free(&good);
    return 0;
}

static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_KU[] = {0x55, 0x1d, 0x0f};

/* The parse agrees with OpenSSL's view of the same DER. */
static void test_parse_cert(void **state)
{
    (void)state;
    mc_x509 x;
    mc_errdetail err;
    assert_int_equal(mc_x509_parse_cert(good.der, good.len, &x, &err), MC_OK);
    assert_true(x.has_outer);
    assert_int_equal(x.version, 2);
    assert_int_equal(x.n_ext, 8);
    assert_int_equal(x.nb, CG_NOW);
    assert_int_equal(x.na, CG_NOW + 730 * CG_DAY - 1);
    assert_false(x.has_issuer_uid || x.has_subject_uid);

    const unsigned char *p = good.der;
    X509 *ox = d2i_X509(NULL, &p, (long)good.len);
    assert_non_null(ox);
    /* i2d_re_X509_tbs re-encodes the TBS: it must equal the bytes we located */
    unsigned char *tbs = NULL;
    int tl = i2d_re_X509_tbs(ox, &tbs);
    assert_int_equal((size_t)tl, x.tbs.rawlen);
    assert_memory_equal(tbs, x.tbs.raw, x.tbs.rawlen);
    OPENSSL_free(tbs);
    const ASN1_INTEGER *sn = X509_get0_serialNumber(ox);
    assert_int_equal((size_t)ASN1_STRING_length(sn), x.serial.len);
    assert_memory_equal(ASN1_STRING_get0_data(sn), x.serial.val, x.serial.len);
    unsigned char *subj = NULL;
    int sl = i2d_X509_NAME(X509_get_subject_name(ox), &subj);
    assert_int_equal((size_t)sl, x.subject.rawlen);
    assert_memory_equal(subj, x.subject.raw, x.subject.rawlen);
    OPENSSL_free(subj);
    X509_free(ox);

    /* issuer is the certgen CA name byte for byte; signature algorithms agree */
    const mc_issuer *iss = cg_issuer();
    assert_int_equal(iss->name.len, x.issuer.rawlen);
    assert_memory_equal(iss->name.p, x.issuer.raw, x.issuer.rawlen);
    assert_int_equal(x.outer_sigalg.rawlen, x.sigalg.rawlen);
    assert_memory_equal(x.outer_sigalg.raw, x.sigalg.raw, x.sigalg.rawlen);
    assert_int_equal(mc_sigalg_from_algid(x.sigalg.raw, x.sigalg.rawlen), MC_SIG_ECDSA_SHA256);
    assert_int_equal(mc_keytype_from_algid(x.spki_alg.raw, x.spki_alg.rawlen), MC_KEY_P256);
    assert_int_equal(x.spki_key.len, 66); /* unused-bits octet + 65-byte point */

    const mc_x509_ext *ku = mc_x509_find_ext(&x, OID_KU, sizeof OID_KU);
    assert_non_null(ku);
    assert_true(ku->critical);
    assert_int_equal(ku->value.tag, MC_DER_BITSTRING);
    const mc_x509_ext *san = mc_x509_find_ext(&x, OID_SAN, sizeof OID_SAN);
    assert_non_null(san);
    assert_false(san->critical);
    assert_false(san->critical_present);
    assert_int_equal(san->value.tag, MC_DER_SEQUENCE);
    static const uint8_t none[] = {0x2a, 0x03};
    assert_null(mc_x509_find_ext(&x, none, sizeof none));
}

static void test_parse_tbs(void **state)
{
    (void)state;
    mc_x509 x, y;
    assert_int_equal(mc_x509_parse_tbs(good.tbs, good.tbs_len, &x, NULL), MC_OK);
    assert_false(x.has_outer);
    assert_int_equal(mc_x509_parse_cert(good.der, good.len, &y, NULL), MC_OK);
    assert_int_equal(x.n_ext, y.n_ext);
    assert_int_equal(x.serial.len, y.serial.len);
    assert_memory_equal(x.serial.val, y.serial.val, x.serial.len);
    assert_int_equal(x.subject.rawlen, y.subject.rawlen);
    /* a TBS is not a Certificate and vice versa */
    assert_int_equal(mc_x509_parse_cert(good.tbs, good.tbs_len, &x, NULL), MC_ERR_INVALID);
    assert_int_equal(mc_x509_parse_tbs(good.der, good.len, &x, NULL), MC_ERR_INVALID);
}

static void test_truncated(void **state)
{
    (void)state;
    mc_x509 x;
    mc_errdetail err;
    for (size_t n = 0; n < good.len; n++)
        assert_int_equal(mc_x509_parse_cert(good.der, n, &x, &err), MC_ERR_INVALID);
    for (size_t n = 0; n < good.tbs_len; n++)
        assert_int_equal(mc_x509_parse_tbs(good.tbs, n, &x, &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "RFC 5280 4.1");
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    mc_x509 x;
    mc_errdetail err;
    uint8_t *buf = malloc(good.len + 2);
    memcpy(buf, good.der, good.len);
    buf[good.len] = 0x00;
    buf[good.len + 1] = 0x00;
    assert_int_equal(mc_x509_parse_cert(buf, good.len + 1, &x, &err), MC_ERR_INVALID);
    assert_int_equal(mc_x509_parse_cert(buf, good.len + 2, &x, &err), MC_ERR_INVALID);
    assert_non_null(strstr(err.message, "after the Certificate"));
    memcpy(buf, good.tbs, good.tbs_len);
    buf[good.tbs_len] = 0x05;
    assert_int_equal(mc_x509_parse_tbs(buf, good.tbs_len + 1, &x, &err), MC_ERR_INVALID);
    free(buf);

    /* data inside the TBS after the extensions */
    uint8_t out[4096];
    static const uint8_t extra[] = {0x05, 0x00};
    size_t n = cg_tbs_insert(good.tbs, good.tbs_len, 8, extra, sizeof extra, out, sizeof out);
    assert_true(n > 0);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "tbsCertificate");
}

/* Re-encodes the outer SEQUENCE header with a non-minimal or indefinite length. */
static void test_ber_lengths(void **state)
{
    (void)state;
    mc_x509 x;
    mc_der_cur c = mc_der_cur_make(good.tbs, good.tbs_len);
    mc_der_tlv t;
    assert_int_equal(mc_der_next(&c, &t), MC_OK);
    size_t body = t.len;
    assert_true(body > 255 && body < 65536);
    uint8_t *buf = malloc(body + 8);
    /* long form with a leading zero octet: 30 83 00 hi lo */
    buf[0] = 0x30;
    buf[1] = 0x83;
    buf[2] = 0x00;
    buf[3] = (uint8_t)(body >> 8);
    buf[4] = (uint8_t)body;
    memcpy(buf + 5, t.val, body);
    assert_int_equal(mc_x509_parse_tbs(buf, body + 5, &x, NULL), MC_ERR_INVALID);
    /* indefinite length with end-of-contents */
    buf[1] = 0x80;
    memcpy(buf + 2, t.val, body);
    buf[body + 2] = 0;
    buf[body + 3] = 0;
    assert_int_equal(mc_x509_parse_tbs(buf, body + 4, &x, NULL), MC_ERR_INVALID);
    /* the canonical form of the same bytes parses (the test can fail) */
    buf[1] = 0x82;
    buf[2] = (uint8_t)(body >> 8);
    buf[3] = (uint8_t)body;
    memcpy(buf + 4, t.val, body);
    assert_int_equal(mc_x509_parse_tbs(buf, body + 4, &x, NULL), MC_OK);
    free(buf);

    /* BER inside: the serial INTEGER with a long-form length */
    uint8_t out[4096], hex[64];
    size_t hl = cg_hex("02 81 02 01 02", hex, sizeof hex);
    size_t n = cg_tbs_replace(good.tbs, good.tbs_len, 1, hex, hl, out, sizeof out);
    assert_true(n > 0);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, NULL), MC_ERR_INVALID);
}

static void test_structure_refused(void **state)
{
    (void)state;
    mc_x509 x;
    mc_errdetail err;
    uint8_t out[4096], hex[64];
    size_t hl, n;
    /* explicit v1 version (DEFAULT encoded) */
    hl = cg_hex("a0 03 02 01 00", hex, sizeof hex);
    n = cg_tbs_replace(good.tbs, good.tbs_len, 0, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "version");
    /* version v2 parses (the linter names it) */
    hl = cg_hex("a0 03 02 01 01", hex, sizeof hex);
    n = cg_tbs_replace(good.tbs, good.tbs_len, 0, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_OK);
    assert_int_equal(x.version, 1);
    /* no version at all: v1 */
    n = cg_tbs_replace(good.tbs, good.tbs_len, 0, NULL, 0, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_OK);
    assert_int_equal(x.version, 0);
    /* subject that is not a Name (RDN is not a SET) */
    hl = cg_hex("30 07 30 05 06 03 55 04 03", hex, sizeof hex);
    n = cg_tbs_replace(good.tbs, good.tbs_len, 5, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "subject");
    /* multi-valued RDN out of DER SET OF order */
    hl = cg_hex("30 1a 31 18 30 0a 06 03 55 04 05 13 03 42 42 42 30 0a 06 03 55 04 03 0c 03 41 41 "
                "41",
                hex, sizeof hex);
    n = cg_tbs_replace(good.tbs, good.tbs_len, 5, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_ERR_INVALID);
    /* ... and in order it parses */
    hl = cg_hex("30 1a 31 18 30 0a 06 03 55 04 03 0c 03 41 41 41 30 0a 06 03 55 04 05 13 03 42 42 "
                "42",
                hex, sizeof hex);
    n = cg_tbs_replace(good.tbs, good.tbs_len, 5, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_OK);
    /* a time that is neither UTCTime nor GeneralizedTime */
    hl = cg_hex("30 06 04 01 00 04 01 00", hex, sizeof hex);
    n = cg_tbs_replace(good.tbs, good.tbs_len, 4, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "validity");
    /* SPKI without the BIT STRING */
    hl = cg_hex("30 07 30 05 06 03 2b 65 70", hex, sizeof hex);
    n = cg_tbs_replace(good.tbs, good.tbs_len, 6, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_ERR_INVALID);
    /* extnValue holding two values */
    hl = cg_hex("30 0b 06 03 55 1d 13 04 04 30 00 30 00", hex, sizeof hex);
    n = cg_tbs_add_ext(good.tbs, good.tbs_len, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "extensions");
    /* critical BOOLEAN that is not DER (0x01 instead of 0xff) */
    hl = cg_hex("30 0c 06 03 55 1d 13 01 01 01 04 02 30 00", hex, sizeof hex);
    n = cg_tbs_add_ext(good.tbs, good.tbs_len, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_ERR_INVALID);
    /* explicit critical FALSE parses, flagged for the linter */
    hl = cg_hex("30 0c 06 03 55 1d 13 01 01 00 04 02 30 00", hex, sizeof hex);
    n = cg_tbs_add_ext(good.tbs, good.tbs_len, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_OK);
    assert_int_equal(x.n_ext, 9);
    assert_true(x.ext[8].critical_present);
    assert_false(x.ext[8].critical);
    /* an empty Extensions SEQUENCE */
    hl = cg_hex("a3 02 30 00", hex, sizeof hex);
    n = cg_tbs_replace(good.tbs, good.tbs_len, 7, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_ERR_INVALID);
    /* unique identifiers are recorded */
    hl = cg_hex("81 02 00 ab", hex, sizeof hex);
    n = cg_tbs_insert(good.tbs, good.tbs_len, 7, hex, hl, out, sizeof out);
    assert_int_equal(mc_x509_parse_tbs(out, n, &x, &err), MC_OK);
    assert_true(x.has_issuer_uid);
    assert_false(x.has_subject_uid);
}

static void test_too_many_extensions(void **state)
{
    (void)state;
    static uint8_t a[16384], b[16384];
    memcpy(a, good.tbs, good.tbs_len);
    size_t n = good.tbs_len;
    uint8_t ext[16];
    size_t el = cg_hex("30 0a 06 04 2a 03 04 00 04 02 05 00", ext, sizeof ext);
    mc_x509 x;
    for (int i = 8; i < MC_X509_EXT_MAX; i++) {
        ext[7] = (uint8_t)i; /* distinct OIDs */
        n = cg_tbs_add_ext(a, n, ext, el, b, sizeof b);
        memcpy(a, b, n);
    }
    assert_int_equal(mc_x509_parse_tbs(a, n, &x, NULL), MC_OK);
    assert_int_equal(x.n_ext, MC_X509_EXT_MAX);
    ext[7] = 0x7f;
    n = cg_tbs_add_ext(a, n, ext, el, b, sizeof b);
    mc_errdetail err;
    assert_int_equal(mc_x509_parse_tbs(b, n, &x, &err), MC_ERR_INVALID);
    assert_non_null(strstr(err.message, "more than"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_cert),          cmocka_unit_test(test_parse_tbs),
        cmocka_unit_test(test_truncated),           cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_ber_lengths),         cmocka_unit_test(test_structure_refused),
        cmocka_unit_test(test_too_many_extensions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

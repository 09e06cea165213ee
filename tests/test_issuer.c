/*
 * Unit tests for the issuing-CA loader (engine/issuer.c): PEM and DER files, the byte-exact
 * subject Name, the SKI, key types and signature algorithm choice, and the refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailca/issuer.h"
#include "support/testca.h"

static void tmp_path(char *buf, size_t n, const char *name)
{
    const char *tmp = getenv("MAILCA_TEST_TMP");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    assert_int_equal(system(cmd), 0);
    snprintf(buf, n, "%s/test_issuer_%ld_%s", tmp, (long)getpid(), name);
}

static void check_matches(const mc_testca *ca, const mc_issuer *iss)
{
    /* the subject Name exactly as OpenSSL encodes the CA's subject, pointing into cert */
    unsigned char *nd = NULL;
    int n = i2d_X509_NAME(X509_get_subject_name(ca->cert), &nd);
    assert_int_equal(n, (int)iss->name.len);
    assert_memory_equal(nd, iss->name.p, iss->name.len);
    OPENSSL_free(nd);
    assert_true(iss->name.p > iss->cert &&
                iss->name.p + iss->name.len <= iss->cert + iss->cert_len);
    assert_int_equal(iss->cert_len, ca->der_len);
    assert_memory_equal(iss->cert, ca->der, ca->der_len);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca->cert);
    assert_non_null(ski);
    assert_int_equal(iss->ski_len, (size_t)ASN1_STRING_length(ski));
    assert_memory_equal(iss->ski, ASN1_STRING_get0_data(ski), iss->ski_len);
}

/* A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign) for key, with the knobs the
 * refusal tests need: an empty subject, and an explicit subjectKeyIdentifier value (ski_len < 0:
 * the usual SHA-1 "hash" SKI). Signed with a separate P-256 key (the loader does not verify the
 * signature). Returns the DER length; *der is freed with OPENSSL_free. */
static size_t make_ca(EVP_PKEY *key, int empty_subject, const uint8_t *ski, int ski_len,
                      uint8_t **der)
{
    EVP_PKEY *signer = mc_testca_keygen(MC_KEY_P256, 0);
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_non_null(signer);
    assert_non_null(x);
    assert_non_null(name);
    if (!empty_subject)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)"issuer test CA", -1, -1,
                                                    0),
                         1);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234), 1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -86400));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
    e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
    if (ski_len < 0) {
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    } else {
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        assert_non_null(os);
        assert_int_equal(ASN1_OCTET_STRING_set(os, ski, ski_len), 1);
        assert_int_equal(X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0, 0), 1);
        ASN1_OCTET_STRING_free(os);
    }
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    assert_true(X509_sign(x, signer, md) > 0);
    EVP_MD_free(md);
    *der = NULL;
    int n = i2d_X509(x, der);
    assert_true(n > 0);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(signer);
    return (size_t)n;
}

static void test_from_der_defaults(void **state)
{
    (void)state;
    const struct {
        mc_testca_kind kind;
        mc_keytype key;
        mc_sigalg def;
    } cases[] = {
        {MC_TESTCA_P256, MC_KEY_P256, MC_SIG_ECDSA_SHA256},
        {MC_TESTCA_P384, MC_KEY_P384, MC_SIG_ECDSA_SHA384},
        {MC_TESTCA_RSA2048, MC_KEY_RSA, MC_SIG_RSA_PKCS1_SHA256},
    };
    for (size_t i = 0; i < 3; i++) {
        mc_testca ca;
        mc_issuer iss;
        mc_errdetail err;
        assert_int_equal(mc_testca_create(&ca, cases[i].kind, 0), 0);
        assert_int_equal(mc_issuer_from_der(ca.der, ca.der_len, MC_SIG_NONE, &iss, &err), MC_OK);
        assert_int_equal(iss.keytype, cases[i].key);
        assert_int_equal(iss.sigalg, cases[i].def);
        check_matches(&ca, &iss);
        mc_issuer_free(&iss);
        assert_null(iss.cert);
        /* SBR 7.1.3.2: an ECDSA curve dictates its hash; RSA takes any listed algorithm */
        if (cases[i].key == MC_KEY_P256) {
            assert_int_equal(
                mc_issuer_from_der(ca.der, ca.der_len, MC_SIG_ECDSA_SHA384, &iss, &err),
                MC_ERR_CONFIG);
            assert_string_equal(err.field, "ca.signature");
            assert_string_equal(err.rule, "SBR 7.1.3.2");
            assert_int_equal(
                mc_issuer_from_der(ca.der, ca.der_len, MC_SIG_RSA_PKCS1_SHA256, &iss, &err),
                MC_ERR_CONFIG);
        }
        if (cases[i].key == MC_KEY_RSA) {
            assert_int_equal(
                mc_issuer_from_der(ca.der, ca.der_len, MC_SIG_RSA_PSS_SHA384, &iss, &err), MC_OK);
            assert_int_equal(iss.sigalg, MC_SIG_RSA_PSS_SHA384);
            mc_issuer_free(&iss);
            assert_int_equal(
                mc_issuer_from_der(ca.der, ca.der_len, MC_SIG_ECDSA_SHA256, &iss, &err),
                MC_ERR_CONFIG);
        }
        mc_testca_free(&ca);
    }
}

static void test_load_files(void **state)
{
    (void)state;
    mc_testca ca;
    mc_issuer iss;
    mc_errdetail err;
    char pem[600], der[600];
    assert_int_equal(mc_testca_create(&ca, MC_TESTCA_P256, 0), 0);
    tmp_path(pem, sizeof pem, "ca.pem");
    tmp_path(der, sizeof der, "ca.der");
    /* PEM with the root after it: the first certificate is the issuer */
    assert_int_equal(mc_testca_write_pem(&ca, pem, 1), 0);
    assert_int_equal(mc_issuer_load(pem, MC_SIG_NONE, &iss, &err), MC_OK);
    check_matches(&ca, &iss);
    mc_issuer_free(&iss);
    FILE *f = fopen(der, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(ca.der, 1, ca.der_len, f), ca.der_len);
    fclose(f);
    assert_int_equal(mc_issuer_load(der, MC_SIG_NONE, &iss, &err), MC_OK);
    check_matches(&ca, &iss);
    mc_issuer_free(&iss);
    /* missing file; a DER file with a trailing byte */
    assert_int_equal(mc_issuer_load("/nonexistent/ca.pem", MC_SIG_NONE, &iss, &err), MC_ERR_IO);
    f = fopen(der, "ab");
    assert_non_null(f);
    fputc(0, f);
    fclose(f);
    assert_int_equal(mc_issuer_load(der, MC_SIG_NONE, &iss, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "ca.certificate");
    f = fopen(pem, "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(mc_issuer_load(pem, MC_SIG_NONE, &iss, &err), MC_ERR_INVALID);
    unlink(pem);
    unlink(der);
    mc_testca_free(&ca);
}

static void test_refusals(void **state)
{
    (void)state;
    mc_testca ca;
    mc_issuer iss;
    mc_errdetail err;
    /* SBR 7.1.2.3(g): the AKI needs the issuer's SKI */
    assert_int_equal(mc_testca_create(&ca, MC_TESTCA_P256, MC_TESTCA_NO_SKI), 0);
    assert_int_equal(mc_issuer_from_der(ca.der, ca.der_len, MC_SIG_NONE, &iss, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 7.1.2.3(g)");
    assert_null(iss.cert);
    mc_testca_free(&ca);
    /* RFC 5280 4.2.1.9: not a CA */
    assert_int_equal(mc_testca_create(&ca, MC_TESTCA_P256, MC_TESTCA_NOT_CA), 0);
    assert_int_equal(mc_issuer_from_der(ca.der, ca.der_len, MC_SIG_NONE, &iss, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.rule, "RFC 5280 4.2.1.9");
    mc_testca_free(&ca);
    /* garbage, truncation, empty */
    assert_int_equal(mc_testca_create(&ca, MC_TESTCA_P256, 0), 0);
    assert_int_equal(mc_issuer_from_der(ca.der, ca.der_len - 1, MC_SIG_NONE, &iss, &err),
                     MC_ERR_INVALID);
    const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    assert_int_equal(mc_issuer_from_der(junk, sizeof junk, MC_SIG_NONE, &iss, &err),
                     MC_ERR_INVALID);
    assert_int_equal(mc_issuer_from_der(NULL, 0, MC_SIG_NONE, &iss, &err), MC_ERR_INVALID);
    mc_testca_free(&ca);
}

/* SBR 7.1.3.1: the CA key must use one of the byte-exact SPKI encodings; secp256k1 and an
 * id-RSASSA-PSS key (barred by 7.1.3.1.1) are refused, the allowed ones load. */
static void test_refusal_key_encoding(void **state)
{
    (void)state;
    mc_issuer iss;
    mc_errdetail err;
    uint8_t *der = NULL;
    size_t n;
    /* pass: an allowed encoding (P-256) through the same certificate builder */
    EVP_PKEY *k = mc_testca_keygen(MC_KEY_P256, 0);
    assert_non_null(k);
    n = make_ca(k, 0, NULL, -1, &der);
    assert_int_equal(mc_issuer_from_der(der, n, MC_SIG_NONE, &iss, &err), MC_OK);
    assert_int_equal(iss.keytype, MC_KEY_P256);
    mc_issuer_free(&iss);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    /* fail: secp256k1 (id-ecPublicKey, but not an allowed namedCurve) */
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    assert_non_null(k);
    n = make_ca(k, 0, NULL, -1, &der);
    memset(&err, 0, sizeof err);
    assert_int_equal(mc_issuer_from_der(der, n, MC_SIG_NONE, &iss, &err), MC_ERR_UNSUPPORTED);
    assert_string_equal(err.field, "ca.certificate");
    assert_string_equal(err.rule, "SBR 7.1.3.1");
    assert_null(iss.cert);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    /* fail: an RSA key indicated with id-RSASSA-PSS (SBR 7.1.3.1.1 SHALL NOT) */
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
    assert_non_null(kc);
    assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(kc, 2048), 1);
    k = NULL;
    assert_int_equal(EVP_PKEY_generate(kc, &k), 1);
    EVP_PKEY_CTX_free(kc);
    n = make_ca(k, 0, NULL, -1, &der);
    memset(&err, 0, sizeof err);
    assert_int_equal(mc_issuer_from_der(der, n, MC_SIG_NONE, &iss, &err), MC_ERR_UNSUPPORTED);
    assert_string_equal(err.field, "ca.certificate");
    assert_string_equal(err.rule, "SBR 7.1.3.1");
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

/* SBR 7.1.2.3(g): the issuer's SKI becomes every AKI keyIdentifier, so it must be 1..64 bytes
 * (the size of mc_issuer.ski). Both bounds pass, one past each fails. */
static void test_refusal_ski_length(void **state)
{
    (void)state;
    mc_issuer iss;
    mc_errdetail err;
    uint8_t ski[65];
    for (size_t i = 0; i < sizeof ski; i++)
        ski[i] = (uint8_t)(0xa0 + i);
    EVP_PKEY *k = mc_testca_keygen(MC_KEY_P256, 0);
    assert_non_null(k);
    const struct {
        int len;
        mc_err want;
    } cases[] = {{1, MC_OK}, {64, MC_OK}, {0, MC_ERR_INVALID}, {65, MC_ERR_INVALID}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *der = NULL;
        size_t n = make_ca(k, 0, ski, cases[i].len, &der);
        memset(&err, 0, sizeof err);
        assert_int_equal(mc_issuer_from_der(der, n, MC_SIG_NONE, &iss, &err), cases[i].want);
        if (cases[i].want == MC_OK) {
            assert_int_equal(iss.ski_len, (size_t)cases[i].len);
            assert_memory_equal(iss.ski, ski, iss.ski_len);
            mc_issuer_free(&iss);
        } else {
            assert_string_equal(err.field, "ca.certificate");
            assert_string_equal(err.rule, "SBR 7.1.2.3(g)");
            assert_null(iss.cert);
        }
        OPENSSL_free(der);
    }
    EVP_PKEY_free(k);
}

/* SBR 7.1.3.2: the CA key needs a signature algorithm mailca can produce. Ed25519 defaults to
 * id-Ed25519; Ed448 is an allowed key (7.1.3.1.3) but mailca has no id-Ed448 signer, so there is
 * no default and the loader refuses it (the branch the audit thought unreachable). */
static void test_refusal_no_sigalg(void **state)
{
    (void)state;
    mc_issuer iss;
    mc_errdetail err;
    uint8_t *der = NULL;
    EVP_PKEY *k = mc_testca_keygen(MC_KEY_ED25519, 0);
    assert_non_null(k);
    size_t n = make_ca(k, 0, NULL, -1, &der);
    assert_int_equal(mc_issuer_from_der(der, n, MC_SIG_NONE, &iss, &err), MC_OK);
    assert_int_equal(iss.keytype, MC_KEY_ED25519);
    assert_int_equal(iss.sigalg, MC_SIG_ED25519);
    mc_issuer_free(&iss);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    k = mc_testca_keygen(MC_KEY_ED448, 0);
    assert_non_null(k);
    n = make_ca(k, 0, NULL, -1, &der);
    memset(&err, 0, sizeof err);
    assert_int_equal(mc_issuer_from_der(der, n, MC_SIG_NONE, &iss, &err), MC_ERR_UNSUPPORTED);
    assert_string_equal(err.field, "ca.signature");
    assert_string_equal(err.rule, "SBR 7.1.3.2");
    assert_null(iss.cert);
    /* configuring Ed25519 for it is a mismatch, not a way round */
    memset(&err, 0, sizeof err);
    assert_int_equal(mc_issuer_from_der(der, n, MC_SIG_ED25519, &iss, &err), MC_ERR_CONFIG);
    assert_string_equal(err.field, "ca.signature");
    assert_string_equal(err.rule, "SBR 7.1.3.2");
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

/* RFC 5280 4.1.2.6: a CA's subject is a non-empty distinguished name (it becomes every issued
 * certificate's issuer field, SBR 7.1.4.1). */
static void test_refusal_empty_subject(void **state)
{
    (void)state;
    mc_issuer iss;
    mc_errdetail err;
    uint8_t *der = NULL;
    EVP_PKEY *k = mc_testca_keygen(MC_KEY_P256, 0);
    assert_non_null(k);
    size_t n = make_ca(k, 0, NULL, -1, &der);
    assert_int_equal(mc_issuer_from_der(der, n, MC_SIG_NONE, &iss, &err), MC_OK);
    assert_true(iss.name.len > 2);
    mc_issuer_free(&iss);
    OPENSSL_free(der);
    n = make_ca(k, 1, NULL, -1, &der);
    memset(&err, 0, sizeof err);
    assert_int_equal(mc_issuer_from_der(der, n, MC_SIG_NONE, &iss, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "ca.certificate");
    assert_string_equal(err.rule, "RFC 5280 4.1.2.6");
    assert_null(iss.cert);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_der_defaults),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refusal_key_encoding),
        cmocka_unit_test(test_refusal_ski_length),
        cmocka_unit_test(test_refusal_no_sigalg),
        cmocka_unit_test(test_refusal_empty_subject),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

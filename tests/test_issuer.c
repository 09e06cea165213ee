/*
 * Unit tests for the issuing-CA loader (engine/issuer.c): PEM and DER files, the byte-exact
 * subject Name, the SKI, key types and signature algorithm choice, and the refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_der_defaults),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * mc_crl_tbs: the TBSCertList mailca builds, signed here in software with a test CA's key and
 * read back with OpenSSL (the reference): v2, the issuer, the times, each entry with its
 * revocation date and reasonCode (none for unspecified: SBR 7.2.2), authorityKeyIdentifier and
 * cRLNumber; and the refusals, each naming its field and rule (SBR 4.9.7 nextUpdate at most ten
 * days on, SBR 7.2.2 reasons, RFC 5280 4.1.2.2 serial length). Partitioned CRLs: the shard
 * function, the fixed-width digits, the ca.crl_url placeholder rules and a shard's critical
 * issuingDistributionPoint (RFC 5280 5.2.5).
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

#include "mailca/crl.h"
#include "mailca/tbs.h"
#include "support/testca.h"

#define NOW ((int64_t)1767225600) /* 2026-01-01T00:00:00Z */
#define DAY ((int64_t)86400)

typedef struct fx {
    mc_testca ca;
    mc_issuer iss;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    mc_errdetail err;
    if (!f || mc_testca_create(&f->ca, MC_TESTCA_P256, 0) != 0 ||
        mc_issuer_from_der(f->ca.der, f->ca.der_len, MC_SIG_NONE, &f->iss, &err) != MC_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    mc_issuer_free(&f->iss);
    mc_testca_free(&f->ca);
    free(f);
    return 0;
}

static mc_crl_entry entry(uint8_t first, size_t len, int64_t at, int reason)
{
    mc_crl_entry e;
    memset(&e, 0, sizeof e);
    for (size_t i = 0; i < len; i++)
        e.serial[i] = (uint8_t)(first + i);
    e.serial_len = len;
    e.revoked_at = at;
    e.reason = reason;
    return e;
}

/* Builds, signs and parses a CRL (a shard's with idp, when not NULL); NULL when building failed
 * (err filled). */
static X509_CRL *make_idp(fx *f, uint64_t number, int64_t tu, int64_t nu, const char *idp,
                          const mc_crl_entry *v, size_t n, mc_errdetail *err)
{
    uint8_t *tbs = NULL, sig[1024], *der = NULL;
    size_t tl = 0, sl = sizeof sig, dl = 0;
    if (mc_crl_tbs(&f->iss, number, tu, nu, idp, v, n, &tbs, &tl, err) != MC_OK)
        return NULL;
    assert_int_equal(mc_testca_sign(&f->ca, f->iss.sigalg, tbs, tl, sig, &sl), 0);
    der = malloc(tl + sl + 64);
    assert_non_null(der);
    assert_int_equal(mc_cert_assemble(tbs, tl, f->iss.sigalg, sig, sl, der, tl + sl + 64, &dl),
                     MC_OK);
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)dl);
    assert_non_null(crl);
    assert_ptr_equal(p, der + dl);
    free(tbs);
    free(der);
    return crl;
}

static X509_CRL *make(fx *f, uint64_t number, int64_t tu, int64_t nu, const mc_crl_entry *v,
                      size_t n, mc_errdetail *err)
{
    return make_idp(f, number, tu, nu, NULL, v, n, err);
}

/* RFC 5280 5: what OpenSSL reads is what was asked for. */
static void test_crl_roundtrip(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    mc_crl_entry v[3] = {entry(0x11, 16, NOW - 3 * DAY, 1), entry(0x22, 16, NOW - DAY, 0),
                         entry(0x7f, 20, NOW - 60, 4)};
    X509_CRL *crl = make(f, 42, NOW, NOW + 7 * DAY, v, 3, &err);
    assert_non_null(crl);
    assert_int_equal(X509_CRL_get_version(crl), 1); /* v2 */
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(f->ca.cert)), 1);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(f->ca.cert)), 0);
    int day, sec;
    ASN1_TIME *t = ASN1_TIME_new();
    assert_non_null(ASN1_TIME_set(t, (time_t)NOW));
    assert_int_equal(ASN1_TIME_diff(&day, &sec, t, X509_CRL_get0_lastUpdate(crl)), 1);
    assert_int_equal(day * 86400 + sec, 0);
    assert_int_equal(ASN1_TIME_diff(&day, &sec, t, X509_CRL_get0_nextUpdate(crl)), 1);
    assert_int_equal(day, 7);
    assert_int_equal(sec, 0);
    /* cRLNumber and authorityKeyIdentifier (the issuing certificate's SKI), neither critical */
    int crit = -1;
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
    assert_non_null(num);
    assert_int_equal(crit, 0);
    assert_int_equal(ASN1_INTEGER_get(num), 42);
    ASN1_INTEGER_free(num);
    AUTHORITY_KEYID *aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
    assert_non_null(aki);
    assert_int_equal(crit, 0);
    assert_non_null(aki->keyid);
    assert_int_equal((size_t)aki->keyid->length, f->iss.ski_len);
    assert_memory_equal(aki->keyid->data, f->iss.ski, f->iss.ski_len);
    AUTHORITY_KEYID_free(aki);
    /* entries in the order given, each with its date; reasonCode non-critical, absent for
     * unspecified (SBR 7.2.2) */
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(rev), 3);
    const int want_reason[3] = {1, -1, 4};
    for (int i = 0; i < 3; i++) {
        X509_REVOKED *r = sk_X509_REVOKED_value(rev, i);
        const ASN1_INTEGER *sn = X509_REVOKED_get0_serialNumber(r);
        assert_int_equal((size_t)sn->length, v[i].serial_len);
        assert_memory_equal(sn->data, v[i].serial, v[i].serial_len);
        assert_int_equal(ASN1_TIME_diff(&day, &sec, t, X509_REVOKED_get0_revocationDate(r)), 1);
        assert_int_equal(day * 86400 + sec, v[i].revoked_at - NOW);
        ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
        if (want_reason[i] < 0) {
            assert_null(reason);
            assert_int_equal(X509_REVOKED_get_ext_count(r), 0);
        } else {
            assert_non_null(reason);
            assert_int_equal(crit, 0);
            assert_int_equal(ASN1_ENUMERATED_get(reason), want_reason[i]);
            ASN1_ENUMERATED_free(reason);
        }
    }
    ASN1_TIME_free(t);
    X509_CRL_free(crl);

    /* nothing revoked: revokedCertificates absent (RFC 5280 5.1.2.6), still a valid CRL */
    crl = make(f, 43, NOW, NOW + DAY, NULL, 0, &err);
    assert_non_null(crl);
    assert_null(X509_CRL_get_REVOKED(crl));
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(f->ca.cert)), 1);
    X509_CRL_free(crl);
}

/* SBR 4.9.7: nextUpdate no more than ten days beyond thisUpdate: exactly ten passes. */
static void test_crl_next_update(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    X509_CRL *crl = make(f, 1, NOW, NOW + 10 * DAY, NULL, 0, &err);
    assert_non_null(crl);
    X509_CRL_free(crl);
    const int64_t bad[] = {NOW + 10 * DAY + 1, NOW, NOW - 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_err_clear(&err);
        assert_null(make(f, 1, NOW, bad[i], NULL, 0, &err));
        assert_string_equal(err.field, "next_update");
        assert_string_equal(err.rule, "SBR 4.9.7");
    }
}

/* SBR 7.2.2: no certificateHold (Strict), and only the reasons subscriber certificates are
 * revoked with here; RFC 5280 4.1.2.2: serials of 1..20 octets. */
static void test_crl_refusals(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    const int ok[] = {0, 1, 3, 4, 5, 9}, bad[] = {2, 6, 7, 8, 10, -1, 11};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        mc_crl_entry v[2] = {entry(1, 8, NOW - DAY, 0), entry(9, 8, NOW - DAY, ok[i])};
        X509_CRL *crl = make(f, 2, NOW, NOW + DAY, v, 2, &err);
        assert_non_null(crl);
        X509_CRL_free(crl);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_crl_entry v[2] = {entry(1, 8, NOW - DAY, 0), entry(9, 8, NOW - DAY, bad[i])};
        mc_err_clear(&err);
        assert_null(make(f, 2, NOW, NOW + DAY, v, 2, &err));
        assert_string_equal(err.field, "entries[1].reason");
        assert_string_equal(err.rule, "SBR 7.2.2");
    }
    mc_crl_entry empty = entry(1, 0, NOW - DAY, 0);
    assert_null(make(f, 2, NOW, NOW + DAY, &empty, 1, &err));
    assert_string_equal(err.field, "entries[0].serial");
    assert_string_equal(err.rule, "RFC 5280 4.1.2.2");
    mc_crl_entry longest = entry(1, 20, NOW - DAY, 0);
    X509_CRL *crl = make(f, 2, NOW, NOW + DAY, &longest, 1, &err);
    assert_non_null(crl);
    X509_CRL_free(crl);
}

/* A CRL of 100,000 entries: each costs the builder at most CRL_ENTRY_MAX bytes, the whole parses
 * and verifies (the sizes a bulk revocation produces). */
static void test_crl_large(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    const size_t n = 100000;
    mc_crl_entry *v = calloc(n, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        v[i] = entry(0x10, 16, NOW - (int64_t)(i % 1000), (int)(i % 2) * 4);
        v[i].serial[12] = (uint8_t)(i >> 24);
        v[i].serial[13] = (uint8_t)(i >> 16);
        v[i].serial[14] = (uint8_t)(i >> 8);
        v[i].serial[15] = (uint8_t)i;
    }
    X509_CRL *crl = make(f, 7, NOW, NOW + 7 * DAY, v, n, &err);
    assert_non_null(crl);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), (int)n);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(f->ca.cert)), 1);
    X509_CRL_free(crl);
    free(v);
}

/* RFC 5280 5.2.5: a shard carries a critical issuingDistributionPoint whose distributionPoint
 * fullName is its one URI and onlyContainsUserCerts TRUE, byte for byte as DER wants it and
 * as OpenSSL reads it; a full CRL carries none; an empty or oversized URI is refused. */
static void test_crl_idp(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    const char *url = "http://c.test/s/0003.crl"; /* 24 bytes */
    mc_crl_entry v[1] = {entry(0x11, 16, NOW - DAY, 1)};
    X509_CRL *crl = make_idp(f, 5, NOW, NOW + DAY, url, v, 1, &err);
    assert_non_null(crl);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(f->ca.cert)), 1);
    int i = X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1);
    assert_true(i >= 0);
    X509_EXTENSION *x = X509_CRL_get_ext(crl, i);
    assert_int_equal(X509_EXTENSION_get_critical(x), 1);
    static const uint8_t want_head[] = {0x30, 0x2d, 0x06, 0x03, 0x55, 0x1d, 0x1c, 0x01, 0x01, 0xff,
                                        0x04, 0x23, 0x30, 0x21, 0xa0, 0x1c, 0xa0, 0x1a, 0x86, 0x18};
    static const uint8_t want_tail[] = {0x81, 0x01, 0xff};
    unsigned char *der = NULL;
    int dl = i2d_X509_EXTENSION(x, &der);
    assert_int_equal(dl, (int)(sizeof want_head + strlen(url) + sizeof want_tail));
    assert_memory_equal(der, want_head, sizeof want_head);
    assert_memory_equal(der + sizeof want_head, url, strlen(url));
    assert_memory_equal(der + sizeof want_head + strlen(url), want_tail, sizeof want_tail);
    OPENSSL_free(der);
    ISSUING_DIST_POINT *idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, NULL, NULL);
    assert_non_null(idp);
    assert_true(idp->onlyuser > 0);
    assert_true(idp->onlyCA <= 0);
    assert_null(idp->onlysomereasons);
    assert_int_equal(idp->distpoint->type, 0);
    GENERAL_NAME *g = sk_GENERAL_NAME_value(idp->distpoint->name.fullname, 0);
    assert_int_equal(g->type, GEN_URI);
    assert_int_equal(ASN1_STRING_length(g->d.uniformResourceIdentifier), (int)strlen(url));
    ISSUING_DIST_POINT_free(idp);
    X509_CRL_free(crl);
    /* a full CRL: no issuingDistributionPoint */
    crl = make(f, 6, NOW, NOW + DAY, v, 1, &err);
    assert_non_null(crl);
    assert_int_equal(X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1), -1);
    X509_CRL_free(crl);
    /* refusals */
    mc_err_clear(&err);
    assert_null(make_idp(f, 7, NOW, NOW + DAY, "", v, 1, &err));
    assert_string_equal(err.field, "idp_url");
    assert_string_equal(err.rule, "RFC 5280 5.2.5");
    char *big = malloc(1100);
    assert_non_null(big);
    memset(big, 'a', 1099);
    big[1099] = '\0';
    assert_null(make_idp(f, 7, NOW, NOW + DAY, big, v, 1, &err));
    assert_string_equal(err.field, "idp_url");
    free(big);
}

/* The shard of a serial: its last four octets modulo N, the same every time, always below N,
 * 0 for N = 1, spread evenly over random serials. */
static void test_crl_shard_of(void **state)
{
    (void)state;
    static const uint8_t s1[] = {0x4c, 0x99, 0x00, 0x00, 0x01, 0x02}; /* last four: 258 */
    assert_int_equal(mc_crl_shard_of(s1, sizeof s1, 4096), 258);
    assert_int_equal(mc_crl_shard_of(s1, sizeof s1, 4), 2);
    assert_int_equal(mc_crl_shard_of(s1, sizeof s1, 1), 0);
    assert_int_equal(mc_crl_shard_of(s1, sizeof s1, 0), 0);
    static const uint8_t s2[] = {0x05}; /* shorter than four octets */
    assert_int_equal(mc_crl_shard_of(s2, 1, 4), 1);
    static const uint8_t s3[] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}; /* 2^32 - 1 */
    assert_int_equal(mc_crl_shard_of(s3, sizeof s3, 4096), 4095);
    const unsigned ns[] = {2, 3, 8, 1000, 4096};
    unsigned count[8] = {0};
    for (int i = 0; i < 40000; i++) {
        uint8_t sn[MC_SERIAL_LEN];
        assert_int_equal(mc_serial_generate(sn), MC_OK);
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
            unsigned k = mc_crl_shard_of(sn, sizeof sn, ns[j]);
            assert_true(k < ns[j]);
            assert_int_equal(mc_crl_shard_of(sn, sizeof sn, ns[j]), k); /* stable */
        }
        count[mc_crl_shard_of(sn, sizeof sn, 8)]++;
    }
    for (int k = 0; k < 8; k++) /* 5000 expected each; 4500..5500 is over 7 sigma */
        assert_true(count[k] > 4500 && count[k] < 5500);
}

/* The digits patched into a certificate: always MC_CRL_SHARD_DIGITS of them, in place, nothing
 * written beyond. */
static void test_crl_shard_digits(void **state)
{
    (void)state;
    const struct {
        unsigned k;
        const char *want;
    } t[] = {{0, "0000"}, {7, "0007"}, {42, "0042"}, {999, "0999"}, {4095, "4095"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint8_t buf[8];
        memcpy(buf, "xx{shd}y", 8);
        mc_crl_shard_digits(buf + 2, t[i].k);
        assert_memory_equal(buf, "xx", 2);
        assert_memory_equal(buf + 2, t[i].want, 4);
        assert_memory_equal(buf + 6, "}y", 2);
    }
    char url[64], file[32];
    mc_errdetail err;
    assert_int_equal(mc_crl_shard_url("http://c.test/crl/ica-{shard}.crl", 17, url, sizeof url,
                                      file, sizeof file, &err),
                     MC_OK);
    assert_string_equal(url, "http://c.test/crl/ica-0017.crl");
    assert_string_equal(file, "ica-0017.crl");
    assert_int_equal(mc_crl_shard_url("http://c.test/ica.crl", 1, url, sizeof url, NULL, 0, &err),
                     MC_ERR_INVALID);
    assert_int_equal(mc_crl_shard_url("http://c.test/{shard}", 1, url, 10, NULL, 0, &err),
                     MC_ERR_INVALID);
}

/* ca.crl_url against ca.crl_shards: the placeholder iff N > 1, once, in the last path segment
 * (the shard's file name) of file-name characters; N within 1..4096. */
static void test_crl_url_check(void **state)
{
    (void)state;
    mc_errdetail err;
    const struct {
        const char *url;
        unsigned n;
    } ok[] = {{"http://c.test/crl/{shard}.crl", 4},
              {"http://c.test/ica-{shard}.crl", 4096},
              {"http://c.test/{shard}", 2},
              {"http://c.test/ica.crl", 1},
              {"", 1}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        mc_err rc = mc_crl_url_check(ok[i].url, ok[i].n, &err);
        if (rc)
            print_error("%s: %s\n", ok[i].url, err.message);
        assert_int_equal(rc, MC_OK);
    }
    const struct {
        const char *url;
        unsigned n;
        const char *field;
    } bad[] = {{"http://c.test/ica.crl", 4, "ca.crl_url"},
               {"", 4, "ca.crl_url"},
               {"http://c.test/{shard}.crl", 1, "ca.crl_url"},
               {"http://c.test/{shard}-{shard}.crl", 4, "ca.crl_url"},
               {"http://c.test/{shard}/ica.crl", 4, "ca.crl_url"},
               {"http://{shard}.c.test/ica.crl", 4, "ca.crl_url"},
               {"http://c.test/s/{shard}.crl?x=1", 4, "ca.crl_url"},
               {"http://c.test/s/{shard}{.crl", 4, "ca.crl_url"},
               {"http://c.test/s/{shard}.crl", 0, "ca.crl_shards"},
               {"http://c.test/s/{shard}.crl", 4097, "ca.crl_shards"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_err_clear(&err);
        assert_int_equal(mc_crl_url_check(bad[i].url, bad[i].n, &err), MC_ERR_CONFIG);
        assert_string_equal(err.field, bad[i].field);
    }
}

/* A TBSCertificate (OpenSSL-built, self-signed with a throwaway P-256 key) whose subject O is
 * org and whose CRL DP holds uri (NULL: none). Returns its DER length in *len (caller frees). */
static uint8_t *tbs_with(const char *org, const char *uri, size_t *len)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234);
    X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0),
        1);
    assert_int_equal(X509_set_issuer_name(x, n), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    assert_int_equal(X509_set_pubkey(x, k), 1);
    if (uri) {
        char v[300];
        snprintf(v, sizeof v, "URI:%s", uri);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_crl_distribution_points, v);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int l = i2d_re_X509_tbs(x, &der);
    assert_true(l > 0);
    *len = (size_t)l;
    X509_free(x);
    EVP_PKEY_free(k);
    return der;
}

/* The shard is read from the CRL DP with the DER reader, never found by a byte search: a
 * subject holding the bytes of another shard's URI (U+0186 is C6 86, the URI tag; '#' a
 * length of 35) does not move the certificate (review s13 #2: it was listed in the decoy's
 * shard and missing from its own). Another URL, or none: no shard. */
static void test_crl_shard_of_tbs(void **state)
{
    (void)state;
    const char *tmpl = "http://c.test/crl/{shard}.crl";
    size_t len = 0;
    unsigned k = 99;
    uint8_t *t = tbs_with("Example", "http://c.test/crl/0005.crl", &len);
    assert_int_equal(mc_crl_shard_of_tbs(t, len, tmpl, &k), 1);
    assert_int_equal(k, 5);
    OPENSSL_free(t);
    t = tbs_with("\xc6\x86\x1ahttp://c.test/crl/0001.crl", "http://c.test/crl/0042.crl", &len);
    const uint8_t decoy[] = "\x86\x1ahttp://c.test/crl/0001.crl";
    int found = 0;
    for (size_t i = 0; i + sizeof decoy - 1 <= len && !found; i++)
        found = memcmp(t + i, decoy, sizeof decoy - 1) == 0;
    assert_true(found); /* the decoy is in the TBS, before the extensions */
    assert_int_equal(mc_crl_shard_of_tbs(t, len, tmpl, &k), 1);
    assert_int_equal(k, 42);
    OPENSSL_free(t);
    t = tbs_with("Example", "http://other.test/crl/0005.crl", &len);
    assert_int_equal(mc_crl_shard_of_tbs(t, len, tmpl, &k), 0);
    OPENSSL_free(t);
    t = tbs_with("Example", "http://c.test/crl/00x5.crl", &len);
    assert_int_equal(mc_crl_shard_of_tbs(t, len, tmpl, &k), 0);
    OPENSSL_free(t);
    t = tbs_with("http://c.test/crl/0005.crl", NULL, &len);
    assert_int_equal(mc_crl_shard_of_tbs(t, len, tmpl, &k), 0);
    assert_int_equal(mc_crl_shard_of_tbs(t, len / 2, tmpl, &k), 0); /* not DER */
    OPENSSL_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crl_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_next_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_idp, setup, teardown),
        cmocka_unit_test(test_crl_shard_of),
        cmocka_unit_test(test_crl_shard_digits),
        cmocka_unit_test(test_crl_url_check),
        cmocka_unit_test(test_crl_shard_of_tbs),
    };
    return cmocka_run_group_tests_name("crl", tests, NULL, NULL);
}

/*
 * Unit tests for the TBS builder (workers/tbs.c): certificates are built with mc_tbs_build,
 * signed in software with the test CA's key, assembled with mc_cert_assemble, and then judged by
 * OpenSSL alone: signature, chain and S/MIME purpose, subject, SAN, keyUsage, EKU, policies,
 * validity, serial, SKI/AKI. Also the SBR 7.1.2.3(e) keyUsage table and the serial generator.
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
#include <time.h>
#include <unistd.h>

#include "mailca/crl.h"
#include "mailca/der.h"
#include "mailca/lint.h"
#include "mailca/profile.h"
#include "mailca/tbs.h"
#include "support/testca.h"

typedef struct fixture {
    mc_digests d;
    EVP_MD_CTX *md;
    mc_testca ca;
    mc_issuer iss;
    mc_profile *strict, *mp;
    EVP_PKEY *keys[8]; /* by kind below */
} fixture;

enum { K_P256, K_P384, K_P521, K_RSA2048, K_RSA3072, K_RSA4096, K_ED25519, K_ED448, K_COUNT };
static const struct {
    mc_keytype k;
    unsigned bits;
} kinds[K_COUNT] = {
    {MC_KEY_P256, 0},   {MC_KEY_P384, 0},   {MC_KEY_P521, 0},    {MC_KEY_RSA, 2048},
    {MC_KEY_RSA, 3072}, {MC_KEY_RSA, 4096}, {MC_KEY_ED25519, 0}, {MC_KEY_ED448, 0},
};

static const mc_ca_urls urls = {
    .crl = "http://crl.example.com/ca.crl",
    .ocsp = "http://ocsp.example.com",
    .ca_issuers = "http://ca.example.com/ca.cer",
    .cps = NULL,
};

static mc_profile *load_shipped(const char *file, const mc_issuer *iss)
{
    char path[600];
    snprintf(path, sizeof path, "%s/profiles/%s", MAILCA_SOURCE_DIR, file);
    mc_profile *p = NULL;
    mc_errdetail err;
    if (mc_profile_load(path, iss, &urls, &p, &err) != MC_OK) {
        print_error("%s: %s\n", err.field, err.message);
        return NULL;
    }
    return p;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    mc_errdetail err;
    if (!f || mc_digests_fetch(&f->d, &err) != MC_OK || !(f->md = EVP_MD_CTX_new()) ||
        mc_testca_create(&f->ca, MC_TESTCA_P256, 0) != 0 ||
        mc_issuer_from_der(f->ca.der, f->ca.der_len, MC_SIG_NONE, &f->iss, &err) != MC_OK)
        return -1;
    f->strict = load_shipped("mailbox-strict.yaml", &f->iss);
    f->mp = load_shipped("mailbox-multipurpose.yaml", &f->iss);
    if (!f->strict || !f->mp)
        return -1;
    for (int i = 0; i < K_COUNT; i++)
        if (!(f->keys[i] = mc_testca_keygen(kinds[i].k, kinds[i].bits)))
            return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < K_COUNT; i++)
        EVP_PKEY_free(f->keys[i]);
    mc_profile_free(f->strict);
    mc_profile_free(f->mp);
    mc_issuer_free(&f->iss);
    mc_testca_free(&f->ca);
    EVP_MD_CTX_free(f->md);
    mc_digests_free(&f->d);
    free(f);
    return 0;
}

/* One issued certificate and what went into it. */
typedef struct issued {
    uint8_t spki_buf[2048];
    uint8_t serial[MC_SERIAL_LEN];
    uint8_t tbs[MC_TBS_MAX];
    size_t tbs_len;
    uint8_t cert[MC_CERT_MAX];
    size_t cert_len;
    int64_t now;
    X509 *x;
} issued;

static void order_init(mc_order *o, EVP_PKEY *key, mc_keytype k, mc_usage u,
                       const char *const *mailboxes, size_t n, issued *is)
{
    memset(o, 0, sizeof *o);
    uint8_t *spki = NULL;
    size_t len = mc_testca_spki(key, &spki);
    assert_true(len > 0 && len <= sizeof is->spki_buf);
    memcpy(is->spki_buf, spki, len);
    OPENSSL_free(spki);
    o->spki = is->spki_buf;
    o->spki_len = len;
    o->keytype = k;
    o->usage = u;
    o->n_mailboxes = n;
    for (size_t i = 0; i < n; i++) {
        o->mailboxes[i].address.p = mailboxes[i];
        o->mailboxes[i].address.len = strlen(mailboxes[i]);
    }
}

/* Builds, signs with the test CA, assembles and parses. */
static void issue_with(fixture *f, const mc_profile *p, const mc_testca *ca, const mc_order *o,
                       int64_t now, issued *is)
{
    mc_errdetail err;
    mc_err_clear(&err);
    mc_err rc = mc_profile_check_order(p, o, now, &err);
    if (rc)
        print_error("check_order: %s: %s [%s]\n", err.field, err.message, err.rule);
    assert_int_equal(rc, MC_OK);
    assert_int_equal(mc_serial_generate(is->serial), MC_OK);
    is->now = now;
    rc = mc_tbs_build(p, o, is->serial, MC_SERIAL_LEN, now, &f->d, f->md, is->tbs, sizeof is->tbs,
                      &is->tbs_len, &err);
    if (rc)
        print_error("tbs_build: %s: %s [%s]\n", err.field, err.message, err.rule);
    assert_int_equal(rc, MC_OK);
    uint8_t sig[1024];
    size_t siglen = sizeof sig;
    assert_int_equal(mc_testca_sign(ca, p->issuer->sigalg, is->tbs, is->tbs_len, sig, &siglen), 0);
    assert_int_equal(mc_cert_assemble(is->tbs, is->tbs_len, p->issuer->sigalg, sig, siglen,
                                      is->cert, sizeof is->cert, &is->cert_len),
                     MC_OK);
    const unsigned char *q = is->cert;
    is->x = d2i_X509(NULL, &q, (long)is->cert_len);
    assert_non_null(is->x);
    assert_ptr_equal(q, is->cert + is->cert_len);
    /* strict DER: OpenSSL re-encodes it to the same bytes */
    unsigned char *re = NULL;
    int relen = i2d_X509(is->x, &re);
    assert_int_equal(relen, (int)is->cert_len);
    assert_memory_equal(re, is->cert, is->cert_len);
    OPENSSL_free(re);
}

static void issue(fixture *f, const mc_profile *p, const mc_order *o, issued *is)
{
    issue_with(f, p, &f->ca, o, (int64_t)time(NULL), is);
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    assert_true(i >= 0);
    assert_int_equal(X509_get_ext_by_NID(x, nid, i), -1); /* no duplicate */
    return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/* Reads the subject attribute nid as UTF-8 text ("" when absent). */
static void subject_attr(X509 *x, int nid, char *buf, size_t n)
{
    buf[0] = '\0';
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0)
        return;
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int want = nid == NID_commonName ? V_ASN1_UTF8STRING : V_ASN1_IA5STRING;
    assert_int_equal(ASN1_STRING_type(s), want);
    size_t l = (size_t)ASN1_STRING_length(s);
    assert_true(l < n);
    memcpy(buf, ASN1_STRING_get0_data(s), l);
    buf[l] = '\0';
}

/* OpenSSL's KU_* flags for our MC_KU_* bits. */
static uint32_t openssl_ku(uint32_t ku)
{
    uint32_t r = 0;
    if (ku & MC_KU_DIGITAL_SIGNATURE)
        r |= KU_DIGITAL_SIGNATURE;
    if (ku & MC_KU_KEY_ENCIPHERMENT)
        r |= KU_KEY_ENCIPHERMENT;
    if (ku & MC_KU_KEY_AGREEMENT)
        r |= KU_KEY_AGREEMENT;
    if (ku & ~(MC_KU_DIGITAL_SIGNATURE | MC_KU_KEY_ENCIPHERMENT | MC_KU_KEY_AGREEMENT))
        r |= 0x10000; /* never expected: makes the comparison fail */
    return r;
}

/* Everything a certificate from the shipped profiles must satisfy, judged with OpenSSL. */
static void check_cert(fixture *f, const mc_testca *ca, const mc_profile *p, const mc_order *o,
                       issued *is, EVP_PKEY *subject_key)
{
    X509 *x = is->x;
    /* signature, version, signature algorithm */
    assert_int_equal(X509_verify(x, ca->key), 1);
    assert_int_equal(X509_get_version(x), 2);
    mc_bytes alg = mc_sigalg_algid(p->issuer->sigalg);
    const X509_ALGOR *sa = NULL;
    X509_get0_signature(NULL, &sa, x);
    unsigned char *ad = NULL;
    int adl = i2d_X509_ALGOR(sa, &ad);
    assert_int_equal(adl, (int)alg.len);
    assert_memory_equal(ad, alg.p, alg.len);
    OPENSSL_free(ad);

    /* serial: the 16 octets given, positive */
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
    assert_int_equal(ASN1_STRING_length(sn), MC_SERIAL_LEN);
    assert_memory_equal(ASN1_STRING_get0_data(sn), is->serial, MC_SERIAL_LEN);

    /* issuer: byte-identical to the CA's subject (SBR 7.1.4.1) */
    unsigned char *nd = NULL;
    int ndl = i2d_X509_NAME(X509_get_issuer_name(x), &nd);
    assert_int_equal(ndl, (int)p->issuer->name.len);
    assert_memory_equal(nd, p->issuer->name.p, p->issuer->name.len);
    OPENSSL_free(nd);
    assert_int_equal(X509_check_issued(ca->cert, x), X509_V_OK);

    /* validity: exactly validity_days * 86400 - 1 seconds (SBR 6.3.2) */
    int64_t nb = asn1_time_unix(X509_get0_notBefore(x));
    int64_t na = asn1_time_unix(X509_get0_notAfter(x));
    assert_int_equal(nb, is->now - p->backdate);
    assert_int_equal(na - nb, 730LL * 86400 - 1);
    assert_int_equal(na - nb, p->validity);

    /* public key: the order's SPKI */
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), subject_key), 1);

    /* keyUsage: critical, the SBR 7.1.2.3(e) bits */
    uint32_t ku = mc_tbs_key_usage(o->keytype, o->usage, (int)p->generation);
    assert_true(ku != 0);
    assert_int_equal(ext_critical(x, NID_key_usage), 1);
    assert_int_equal(X509_get_key_usage(x), openssl_ku(ku));

    /* EKU: emailProtection (+ clientAuth in the multipurpose profile, where the key can sign or
     * agree: RFC 5280 4.2.1.12) */
    uint32_t xku = X509_get_extended_key_usage(x);
    if (p->generation == MC_GEN_STRICT || !(ku & (MC_KU_DIGITAL_SIGNATURE | MC_KU_KEY_AGREEMENT)))
        assert_int_equal(xku, XKU_SMIME);
    else
        assert_int_equal(xku, XKU_SMIME | XKU_SSL_CLIENT);
    assert_int_equal(ext_critical(x, NID_ext_key_usage), 0);

    /* certificatePolicies: exactly the reserved OID for mailbox + generation */
    CERTIFICATEPOLICIES *pol = X509_get_ext_d2i(x, NID_certificate_policies, NULL, NULL);
    assert_non_null(pol);
    assert_int_equal(sk_POLICYINFO_num(pol), 1);
    char s[128];
    OBJ_obj2txt(s, sizeof s, sk_POLICYINFO_value(pol, 0)->policyid, 1);
    char want_pol[32];
    snprintf(want_pol, sizeof want_pol, "2.23.140.1.5.%d.%d", (int)p->type, (int)p->generation);
    assert_string_equal(s, want_pol);
    CERTIFICATEPOLICIES_free(pol);
    assert_int_equal(ext_critical(x, NID_certificate_policies), 0);

    /* CRL DP and AIA URIs */
    STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
    assert_non_null(dps);
    assert_int_equal(sk_DIST_POINT_num(dps), 1);
    GENERAL_NAMES *fn = sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname;
    assert_int_equal(sk_GENERAL_NAME_num(fn), 1);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(fn, 0);
    assert_int_equal(gn->type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
                        urls.crl);
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
    assert_non_null(aia);
    assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 2);
    assert_int_equal(OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia, 0)->method), NID_ad_OCSP);
    assert_int_equal(OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia, 1)->method), NID_ad_ca_issuers);
    AUTHORITY_INFO_ACCESS_free(aia);
    assert_int_equal(ext_critical(x, NID_info_access), 0);

    /* SKI = SHA-1 of the public key bits; AKI = the CA's SKI, keyIdentifier only */
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    assert_int_equal(X509_pubkey_digest(x, f->d.sha1, h, &hl), 1);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
    assert_non_null(ski);
    assert_int_equal(ASN1_STRING_length(ski), (int)hl);
    assert_memory_equal(ASN1_STRING_get0_data(ski), h, hl);
    assert_int_equal(ext_critical(x, NID_subject_key_identifier), 0);
    AUTHORITY_KEYID *aki = X509_get_ext_d2i(x, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(aki);
    assert_non_null(aki->keyid);
    assert_null(aki->issuer);
    assert_null(aki->serial);
    assert_int_equal(ASN1_STRING_length(aki->keyid), (int)p->issuer->ski_len);
    assert_memory_equal(ASN1_STRING_get0_data(aki->keyid), p->issuer->ski, p->issuer->ski_len);
    AUTHORITY_KEYID_free(aki);
    assert_int_equal(ext_critical(x, NID_authority_key_identifier), 0);
    assert_int_equal(X509_get_ext_count(x), 8);

    /* No OpenSSL complaint about any extension, and the S/MIME purposes */
    assert_int_equal(X509_get_extension_flags(x) & EXFLAG_INVALID, 0);
    int signs = (ku & MC_KU_DIGITAL_SIGNATURE) != 0;
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SMIME_SIGN, 0), signs);
    const char *why = "";
    if (signs) {
        int r = mc_testca_verify_chain(ca, x, X509_PURPOSE_SMIME_SIGN, &why);
        if (r != 1)
            print_error("chain: %s\n", why);
        assert_int_equal(r, 1);
    } else {
        assert_int_equal(mc_testca_verify_chain(ca, x, X509_PURPOSE_SMIME_SIGN, &why), 0);
    }
    /* OpenSSL's smimeencrypt wants keyEncipherment: RSA key management and dual only */
    int encrypts = (ku & MC_KU_KEY_ENCIPHERMENT) != 0;
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SMIME_ENCRYPT, 0), encrypts);
    if (encrypts)
        assert_int_equal(mc_testca_verify_chain(ca, x, X509_PURPOSE_SMIME_ENCRYPT, NULL), 1);
}

/* SAN as a list of (type, text) to compare; returns the count. */
static int san_entries(X509 *x, int *types, char texts[][300], int max)
{
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    int n = sk_GENERAL_NAME_num(san);
    assert_true(n <= max);
    for (int i = 0; i < n; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        types[i] = g->type;
        const ASN1_STRING *v = NULL;
        if (g->type == GEN_EMAIL) {
            v = g->d.rfc822Name;
        } else if (g->type == GEN_OTHERNAME) {
            ASN1_OBJECT *oid = NULL;
            ASN1_TYPE *val = NULL;
            assert_int_equal(GENERAL_NAME_get0_otherName(g, &oid, &val), 1);
            char s[64];
            OBJ_obj2txt(s, sizeof s, oid, 1);
            assert_string_equal(s, "1.3.6.1.5.5.7.8.9");
            assert_int_equal(val->type, V_ASN1_UTF8STRING);
            v = val->value.utf8string;
        }
        assert_non_null(v);
        size_t l = (size_t)ASN1_STRING_length(v);
        assert_true(l < 300);
        memcpy(texts[i], ASN1_STRING_get0_data(v), l);
        texts[i][l] = '\0';
    }
    GENERAL_NAMES_free(san);
    return n;
}

static void run_all_usages(fixture *f, const mc_profile *p, int kind)
{
    static const char *const mb[] = {"alice@example.com"};
    const mc_usage usages[] = {MC_USAGE_SIGNING, MC_USAGE_KEYMGMT, MC_USAGE_DUAL};
    for (size_t u = 0; u < 3; u++) {
        if (!mc_tbs_key_usage(kinds[kind].k, usages[u], (int)p->generation))
            continue;
        mc_order o;
        issued is;
        order_init(&o, f->keys[kind], kinds[kind].k, usages[u], mb, 1, &is);
        issue(f, p, &o, &is);
        check_cert(f, &f->ca, p, &o, &is, f->keys[kind]);
        char cn[128], em[128];
        subject_attr(is.x, NID_commonName, cn, sizeof cn);
        subject_attr(is.x, NID_pkcs9_emailAddress, em, sizeof em);
        assert_string_equal(cn, "alice@example.com");
        assert_string_equal(em, "alice@example.com");
        assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(is.x)), 2);
        int types[4];
        char texts[4][300];
        assert_int_equal(san_entries(is.x, types, texts, 4), 1);
        assert_int_equal(types[0], GEN_EMAIL);
        assert_string_equal(texts[0], "alice@example.com");
        assert_int_equal(ext_critical(is.x, NID_subject_alt_name), 0);
        X509_free(is.x);
    }
}

static void test_p256(void **state)
{
    fixture *f = *state;
    run_all_usages(f, f->strict, K_P256);
    run_all_usages(f, f->mp, K_P256);
}

static void test_p384_p521(void **state)
{
    fixture *f = *state;
    run_all_usages(f, f->strict, K_P384);
    run_all_usages(f, f->strict, K_P521);
}

static void test_rsa(void **state)
{
    fixture *f = *state;
    run_all_usages(f, f->strict, K_RSA2048);
    run_all_usages(f, f->strict, K_RSA3072);
    run_all_usages(f, f->strict, K_RSA4096);
    run_all_usages(f, f->mp, K_RSA2048);
}

/* SBR 7.1.2.3(e): a profile with non_repudiation sets it beside digitalSignature (signing, dual
 * use) and never without it (key management). The bits are written out here, not taken from
 * mc_tbs_key_usage. The certificates pass the lint with no finding. */
static void test_non_repudiation(void **state)
{
    fixture *f = *state;
    mc_profile *p = load_shipped("mailbox-multipurpose.yaml", &f->iss);
    p->non_repudiation = 1;
    static const char *const mb[] = {"alice@example.com"};
    static const struct {
        int kind;
        mc_usage u;
        uint32_t want;
    } t[] = {
        {K_P256, MC_USAGE_SIGNING, KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION},
        {K_P256, MC_USAGE_DUAL, KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_AGREEMENT},
        {K_P256, MC_USAGE_KEYMGMT, KU_KEY_AGREEMENT},
        {K_RSA2048, MC_USAGE_DUAL, KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_ENCIPHERMENT},
        {K_RSA2048, MC_USAGE_KEYMGMT, KU_KEY_ENCIPHERMENT},
        {K_ED25519, MC_USAGE_SIGNING, KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        mc_order o;
        issued *is = calloc(1, sizeof *is);
        assert_non_null(is);
        order_init(&o, f->keys[t[i].kind], kinds[t[i].kind].k, t[i].u, mb, 1, is);
        issue(f, p, &o, is);
        assert_int_equal(X509_get_key_usage(is->x), t[i].want);
        assert_int_equal(ext_critical(is->x, NID_key_usage), 1);
        mc_lint_result r;
        mc_errdetail err;
        mc_lint_ctx lc = {.profile = p, .issuer = &f->iss, .now = is->now};
        assert_int_equal(mc_lint_tbs(is->tbs, is->tbs_len, &lc, &r, &err), MC_OK);
        for (size_t k = 0; k < r.n; k++)
            print_error("case %zu: %s: %s\n", i, r.f[k].lint->id, r.f[k].detail);
        assert_int_equal(r.n, 0);
        X509_free(is->x);
        free(is);
    }
    mc_profile_free(p);
}

/* SBR 7.1.2.3(e): an EdDSA key is signing only, in every generation: its certificate's keyUsage
 * is exactly digitalSignature (critical), and key management and dual are refused, by
 * check_order and by the builder. */
static void eddsa_signing_only(fixture *f, int kind)
{
    run_all_usages(f, f->strict, kind);
    run_all_usages(f, f->mp, kind);
    static const char *const mb[] = {"alice@example.com"};
    mc_order o;
    issued is;
    mc_errdetail err;
    order_init(&o, f->keys[kind], kinds[kind].k, MC_USAGE_SIGNING, mb, 1, &is);
    issue(f, f->strict, &o, &is);
    /* written out here, not taken from mc_tbs_key_usage: 03 02 07 80 (digitalSignature) */
    assert_int_equal(X509_get_key_usage(is.x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(ext_critical(is.x, NID_key_usage), 1);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(is.x), f->keys[kind]), 1);
    X509_free(is.x);
    const mc_profile *profiles[] = {f->strict, f->mp};
    for (size_t i = 0; i < 2; i++) {
        o.usage = MC_USAGE_KEYMGMT;
        assert_int_equal(mc_profile_check_order(profiles[i], &o, (int64_t)time(NULL), &err),
                         MC_ERR_INVALID);
        assert_string_equal(err.field, "usage");
        assert_string_equal(err.rule, "SBR 7.1.2.3(e)");
        uint8_t serial[MC_SERIAL_LEN];
        assert_int_equal(mc_serial_generate(serial), MC_OK);
        assert_int_equal(mc_tbs_build(profiles[i], &o, serial, sizeof serial, 1767225600, &f->d,
                                      f->md, is.tbs, sizeof is.tbs, &is.tbs_len, &err),
                         MC_ERR_INVALID);
        assert_string_equal(err.rule, "SBR 7.1.2.3(e)");
        o.usage = MC_USAGE_DUAL;
        assert_int_equal(mc_profile_check_order(profiles[i], &o, (int64_t)time(NULL), &err),
                         MC_ERR_INVALID);
        assert_string_equal(err.rule, "SBR 7.1.2.3(e)");
        assert_int_equal(mc_tbs_build(profiles[i], &o, serial, sizeof serial, 1767225600, &f->d,
                                      f->md, is.tbs, sizeof is.tbs, &is.tbs_len, &err),
                         MC_ERR_INVALID);
    }
}

static void test_ed25519(void **state)
{
    eddsa_signing_only(*state, K_ED25519);
}

/* Ed448 (SBR 7.1.3.1.3): the SPKI carries id-Ed448 without parameters and the 57-byte key. */
static void test_ed448(void **state)
{
    fixture *f = *state;
    eddsa_signing_only(f, K_ED448);
    static const char *const mb[] = {"carol@example.com"};
    mc_order o;
    issued is;
    order_init(&o, f->keys[K_ED448], MC_KEY_ED448, MC_USAGE_SIGNING, mb, 1, &is);
    issue(f, f->mp, &o, &is);
    const uint8_t spki_head[] = {0x30, 0x43, 0x30, 0x05, 0x06, 0x03,
                                 0x2b, 0x65, 0x71, 0x03, 0x3a, 0x00};
    uint8_t *at = memmem(is.tbs, is.tbs_len, spki_head, sizeof spki_head);
    assert_non_null(at);
    assert_true(at + sizeof spki_head + 57 <= is.tbs + is.tbs_len);
    X509_free(is.x);
}

/* Issuers on other keys and signature algorithms: RSA PKCS#1, RSA-PSS, P-384. */
static void test_other_issuers(void **state)
{
    fixture *f = *state;
    const struct {
        mc_testca_kind kind;
        mc_sigalg alg;
    } cases[] = {
        {MC_TESTCA_RSA2048, MC_SIG_NONE},
        {MC_TESTCA_RSA2048, MC_SIG_RSA_PSS_SHA256},
        {MC_TESTCA_RSA2048, MC_SIG_RSA_PKCS1_SHA384},
        {MC_TESTCA_P384, MC_SIG_NONE},
    };
    static const char *const mb[] = {"bob@example.org"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mc_testca ca;
        mc_issuer iss;
        mc_errdetail err;
        assert_int_equal(mc_testca_create(&ca, cases[i].kind, 0), 0);
        assert_int_equal(mc_issuer_from_der(ca.der, ca.der_len, cases[i].alg, &iss, &err), MC_OK);
        mc_profile *p = load_shipped("mailbox-strict.yaml", &iss);
        assert_non_null(p);
        mc_order o;
        issued is;
        order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_DUAL, mb, 1, &is);
        issue_with(f, p, &ca, &o, (int64_t)time(NULL), &is);
        check_cert(f, &ca, p, &o, &is, f->keys[K_P256]);
        X509_free(is.x);
        mc_profile_free(p);
        mc_issuer_free(&iss);
        mc_testca_free(&ca);
    }
}

/* RFC 9598: a non-ASCII local part goes into otherName SmtpUTF8Mailbox; no emailAddress. */
static void test_smtputf8(void **state)
{
    fixture *f = *state;
    static const char *const mb[] = {"j\xc3\xb6rg@Example.COM", "plain@example.com",
                                     "\xe7\x94\xa8\xe6\x88\xb7@xn--fsqu00a.example"};
    mc_order o;
    issued is;
    order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_SIGNING, mb, 3, &is);
    issue(f, f->strict, &o, &is);
    check_cert(f, &f->ca, f->strict, &o, &is, f->keys[K_P256]);
    int types[4];
    char texts[4][300];
    assert_int_equal(san_entries(is.x, types, texts, 4), 3);
    assert_int_equal(types[0], GEN_OTHERNAME);
    assert_string_equal(texts[0], "j\xc3\xb6rg@example.com"); /* domain lower-cased */
    assert_int_equal(types[1], GEN_EMAIL);
    assert_string_equal(texts[1], "plain@example.com");
    assert_int_equal(types[2], GEN_OTHERNAME);
    assert_string_equal(texts[2], mb[2]);
    char cn[128], em[128];
    subject_attr(is.x, NID_commonName, cn, sizeof cn);
    subject_attr(is.x, NID_pkcs9_emailAddress, em, sizeof em);
    assert_string_equal(cn, "j\xc3\xb6rg@example.com");
    assert_string_equal(em, ""); /* IA5String cannot hold it */
    assert_int_equal(ext_critical(is.x, NID_subject_alt_name), 0);
    X509_free(is.x);
}

/* RFC 5280 App. A ub-common-name = 64 characters; an empty subject makes the SAN critical
 * (RFC 5280 4.2.1.6, SBR 7.1.2.3(h)). */
static void test_subject_limits(void **state)
{
    fixture *f = *state;
    char m64[80], m65[80], u[200];
    /* 64 characters: CN present */
    memset(m64, 'a', 52);
    strcpy(m64 + 52, "@example.com"); /* 52 + 12 = 64 */
    memset(m65, 'a', 53);
    strcpy(m65 + 53, "@example.com");
    /* 20 three-byte characters (60 bytes, within the 64-octet local part) + 12 = 32 chars... */
    size_t ul = 0;
    for (int i = 0; i < 20; i++) {
        memcpy(u + ul, "\xe7\x94\xa8", 3);
        ul += 3;
    }
    /* ... plus a long domain: 20 + 1 + 44 = 65 characters */
    strcpy(u + ul, "@abcdefghijklmnopqrstuvwxyz0123456789.example");
    const char *cases[] = {m64, m65, u};
    const int want_cn[] = {1, 0, 0}, want_em[] = {1, 1, 0};
    for (int i = 0; i < 3; i++) {
        const char *mb[] = {cases[i]};
        mc_order o;
        issued is;
        order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_SIGNING, mb, 1, &is);
        issue(f, f->strict, &o, &is);
        check_cert(f, &f->ca, f->strict, &o, &is, f->keys[K_P256]);
        char cn[300], em[300];
        subject_attr(is.x, NID_commonName, cn, sizeof cn);
        subject_attr(is.x, NID_pkcs9_emailAddress, em, sizeof em);
        assert_int_equal(cn[0] != '\0', want_cn[i]);
        assert_int_equal(em[0] != '\0', want_em[i]);
        if (want_cn[i])
            assert_string_equal(cn, cases[i]);
        int empty = !want_cn[i] && !want_em[i];
        assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(is.x)),
                         want_cn[i] + want_em[i]);
        assert_int_equal(ext_critical(is.x, NID_subject_alt_name), empty);
        X509_free(is.x);
    }
}

/* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; the length holds. */
static void test_validity_2050(void **state)
{
    fixture *f = *state;
    static const char *const mb[] = {"alice@example.com"};
    mc_order o;
    issued is;
    order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_SIGNING, mb, 1, &is);
    const int64_t t = 2524608000 - 86400 * 10; /* 2049-12-22 */
    issue_with(f, f->strict, &f->ca, &o, t, &is);
    assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(is.x)), V_ASN1_UTCTIME);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(is.x)), V_ASN1_GENERALIZEDTIME);
    int64_t nb = asn1_time_unix(X509_get0_notBefore(is.x));
    int64_t na = asn1_time_unix(X509_get0_notAfter(is.x));
    assert_int_equal(nb, t - f->strict->backdate);
    assert_int_equal(na - nb, 730LL * 86400 - 1);
    assert_int_equal(X509_verify(is.x, f->ca.key), 1);
    X509_free(is.x);
}

static void test_build_errors(void **state)
{
    fixture *f = *state;
    static const char *const mb[] = {"alice@example.com"};
    mc_order o;
    issued is;
    mc_errdetail err;
    order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_SIGNING, mb, 1, &is);
    uint8_t serial[MC_SERIAL_LEN];
    assert_int_equal(mc_serial_generate(serial), MC_OK);
    const int64_t t = 1767225600;
    /* pass, then a buffer one byte short of the result (the writer also needs a few bytes of
     * headroom while lengths are open, hence + 32) */
    assert_int_equal(mc_tbs_build(f->strict, &o, serial, sizeof serial, t, &f->d, f->md, is.tbs,
                                  sizeof is.tbs, &is.tbs_len, &err),
                     MC_OK);
    size_t need = is.tbs_len, got;
    assert_int_equal(mc_tbs_build(f->strict, &o, serial, sizeof serial, t, &f->d, f->md, is.tbs,
                                  need + 32, &got, &err),
                     MC_OK);
    assert_int_equal(got, need);
    assert_int_equal(mc_tbs_build(f->strict, &o, serial, sizeof serial, t, &f->d, f->md, is.tbs,
                                  need - 1, &got, &err),
                     MC_ERR_NOMEM);
    /* SBR 7.1: a zero serial, or one of 20 octets with the top bit set, is refused */
    uint8_t zero[MC_SERIAL_LEN] = {0}, big[20];
    memset(big, 0xff, sizeof big);
    assert_int_equal(mc_tbs_build(f->strict, &o, zero, sizeof zero, t, &f->d, f->md, is.tbs,
                                  sizeof is.tbs, &got, &err),
                     MC_ERR_INTERNAL);
    assert_string_equal(err.rule, "SBR 7.1");
    assert_int_equal(mc_tbs_build(f->strict, &o, big, sizeof big, t, &f->d, f->md, is.tbs,
                                  sizeof is.tbs, &got, &err),
                     MC_ERR_INTERNAL);
    big[0] = 0x7f;
    assert_int_equal(mc_tbs_build(f->strict, &o, big, sizeof big, t, &f->d, f->md, is.tbs,
                                  sizeof is.tbs, &got, &err),
                     MC_OK);
    /* SBR 7.1.3.1: the SPKI must be the key type the CSR check found */
    o.keytype = MC_KEY_P384;
    assert_int_equal(mc_tbs_build(f->strict, &o, serial, sizeof serial, t, &f->d, f->md, is.tbs,
                                  sizeof is.tbs, &got, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 7.1.3.1");
    o.keytype = MC_KEY_P256;
    /* no mailbox; a U-label domain */
    o.n_mailboxes = 0;
    assert_int_equal(mc_tbs_build(f->strict, &o, serial, sizeof serial, t, &f->d, f->md, is.tbs,
                                  sizeof is.tbs, &got, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 7.1.2.3(h)");
    o.n_mailboxes = 1;
    o.mailboxes[0].address.p = "a@b\xc3\xbc"
                               "cher.example";
    o.mailboxes[0].address.len = strlen(o.mailboxes[0].address.p);
    assert_int_equal(mc_tbs_build(f->strict, &o, serial, sizeof serial, t, &f->d, f->md, is.tbs,
                                  sizeof is.tbs, &got, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.field, "mailboxes[0].address");
    assert_string_equal(err.rule, "SBR 7.1.4.2.1");
}

static void test_assemble(void **state)
{
    (void)state;
    const uint8_t tbs[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    const uint8_t sig[] = {1, 2, 3, 4};
    uint8_t out[64];
    size_t n;
    assert_int_equal(mc_cert_assemble(tbs, sizeof tbs, MC_SIG_ECDSA_SHA256, sig, sizeof sig, out,
                                      sizeof out, &n),
                     MC_OK);
    const uint8_t want[] = {0x30, 0x18, 0x30, 0x03, 0x02, 0x01, 0x05, 0x30, 0x0a,
                            0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03,
                            0x02, 0x03, 0x05, 0x00, 1,    2,    3,    4};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(out, want, n);
    assert_int_equal(
        mc_cert_assemble(tbs, sizeof tbs, MC_SIG_ECDSA_SHA256, sig, sizeof sig, out, n - 1, &n),
        MC_ERR_NOMEM);
    assert_int_equal(mc_cert_assemble(tbs, sizeof tbs - 1, MC_SIG_ECDSA_SHA256, sig, sizeof sig,
                                      out, sizeof out, &n),
                     MC_ERR_INVALID);
    assert_int_equal(
        mc_cert_assemble(tbs, sizeof tbs, MC_SIG_NONE, sig, sizeof sig, out, sizeof out, &n),
        MC_ERR_INVALID);
}

/* SBR 7.1.2.3(e), written out from the SBR table independently of tbs.c: the SHALL bits per key
 * family and usage; EdDSA signs only; no other generation or key type yields bits. */
static void test_key_usage_table(void **state)
{
    (void)state;
    const uint32_t DS = MC_KU_DIGITAL_SIGNATURE, KE = MC_KU_KEY_ENCIPHERMENT,
                   KA = MC_KU_KEY_AGREEMENT;
    const mc_keytype keys[] = {MC_KEY_NONE, MC_KEY_RSA,     MC_KEY_P256,  MC_KEY_P384,
                               MC_KEY_P521, MC_KEY_ED25519, MC_KEY_ED448, (mc_keytype)99};
    const int usages[] = {0, MC_USAGE_SIGNING, MC_USAGE_KEYMGMT, MC_USAGE_DUAL, 4};
    const int gens[] = {0, MC_GEN_LEGACY, MC_GEN_MULTIPURPOSE, MC_GEN_STRICT, 4};
    int pass = 0, fail = 0;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        for (size_t u = 0; u < sizeof usages / sizeof usages[0]; u++)
            for (size_t g = 0; g < sizeof gens / sizeof gens[0]; g++) {
                uint32_t want = 0;
                int gen_ok = gens[g] >= MC_GEN_LEGACY && gens[g] <= MC_GEN_STRICT;
                int rsa = keys[k] == MC_KEY_RSA;
                int ec = keys[k] == MC_KEY_P256 || keys[k] == MC_KEY_P384 || keys[k] == MC_KEY_P521;
                int ed = keys[k] == MC_KEY_ED25519 || keys[k] == MC_KEY_ED448;
                if (gen_ok && usages[u] == MC_USAGE_SIGNING && (rsa || ec || ed))
                    want = DS;
                if (gen_ok && usages[u] == MC_USAGE_KEYMGMT && (rsa || ec))
                    want = rsa ? KE : KA;
                if (gen_ok && usages[u] == MC_USAGE_DUAL && (rsa || ec))
                    want = DS | (rsa ? KE : KA);
                uint32_t got = mc_tbs_key_usage(keys[k], (mc_usage)usages[u], gens[g]);
                if (got != want)
                    print_error("key %d usage %d gen %d: got %#x want %#x\n", (int)keys[k],
                                usages[u], gens[g], got, want);
                assert_int_equal(got, want);
                /* strict never dataEncipherment; nothing beyond the three bits */
                assert_int_equal(got & ~(DS | KE | KA), 0);
                if (got)
                    pass++;
                else
                    fail++;
            }
    /* valid generations x: RSA 3 usages, 3 curves x 3 usages, 2 EdDSA x signing */
    assert_int_equal(pass, 3 * (3 + 3 * 3 + 2));
    assert_true(fail > 0);
}

static void test_serial(void **state)
{
    (void)state;
    uint8_t prev[MC_SERIAL_LEN] = {0}, s[MC_SERIAL_LEN];
    unsigned seen_top = 0;
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(mc_serial_generate(s), MC_OK);
        assert_true(s[0] != 0 && s[0] < 0x80); /* positive, 16 octets in DER */
        assert_memory_not_equal(s, prev, sizeof s);
        seen_top |= s[0];
        memcpy(prev, s, sizeof s);
    }
    assert_int_equal(seen_top, 0x7f); /* every usable bit of the first octet shows up */
}

/* Organization, sponsor and individual certificates from the shipped profiles: the subject DN
 * (one attribute per RDN, PrintableString for countryName and serialNumber, UTF8String for the
 * others, in mc_subj_attr order, then CN), everything check_cert judges, and a clean lint. */
typedef struct tcase {
    const char *file;
    const char *attrs[MC_SA_COUNT];
    mc_cn_source cn;
    const char *want_cn; /* NULL: no commonName */
} tcase;

static void test_other_types(void **state)
{
    fixture *f = *state;
    static const tcase cases[] = {
        {"organization-strict.yaml",
         {[MC_SA_ORGANIZATION] = "Example Ltd",
          [MC_SA_ORG_IDENTIFIER] = "NTRGB-12345678",
          [MC_SA_ORG_UNIT] = "Example Holdings BV",
          [MC_SA_COUNTRY] = "GB",
          [MC_SA_LOCALITY] = "London",
          [MC_SA_SERIAL_NUMBER] = "C-1234"},
         MC_CN_DEFAULT,
         "Example Ltd"},
        {"organization-multipurpose.yaml",
         {[MC_SA_ORGANIZATION] = "Example Ltd",
          [MC_SA_ORG_IDENTIFIER] = "VATGB-123456789",
          [MC_SA_COUNTRY] = "GB",
          [MC_SA_STATE] = "Greater London",
          [MC_SA_LOCALITY] = "London",
          [MC_SA_STREET] = "1 High Street",
          [MC_SA_POSTAL_CODE] = "EC1A 1AA"},
         MC_CN_MAILBOX,
         "alice@example.com"},
        {"sponsor-strict.yaml",
         {[MC_SA_ORGANIZATION] = "Beispiel GmbH",
          [MC_SA_ORG_IDENTIFIER] = "NTRDE-DER3306.HRB12345",
          [MC_SA_COUNTRY] = "DE",
          [MC_SA_GIVEN_NAME] = "J\xc3\xb6rg",
          [MC_SA_SURNAME] = "M\xc3\xbcller",
          [MC_SA_TITLE] = "Engineer"},
         MC_CN_DEFAULT,
         "J\xc3\xb6rg M\xc3\xbcller"},
        {"sponsor-multipurpose.yaml",
         {[MC_SA_ORGANIZATION] = "Example Ltd",
          [MC_SA_ORG_IDENTIFIER] = "LEIXG-5493001KJTIIGC8Y1R12",
          [MC_SA_COUNTRY] = "US",
          [MC_SA_PSEUDONYM] = "Agent 7"},
         MC_CN_PSEUDONYM,
         "Agent 7"},
        {"individual-strict.yaml", {[MC_SA_SURNAME] = "Smith"}, MC_CN_DEFAULT, "Smith"},
        {"individual-multipurpose.yaml",
         {[MC_SA_GIVEN_NAME] = "Alice",
          [MC_SA_SURNAME] = "Smith",
          [MC_SA_COUNTRY] = "XX",
          [MC_SA_LOCALITY] = "Somewhere",
          [MC_SA_SERIAL_NUMBER] = "PASXX-A1234567"},
         MC_CN_NONE,
         NULL},
    };
    static const char *const mb[] = {"alice@example.com"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const tcase *t = &cases[c];
        mc_profile *p = load_shipped(t->file, &f->iss);
        assert_non_null(p);
        mc_order o;
        issued *is = calloc(1, sizeof *is);
        assert_non_null(is);
        order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_DUAL, mb, 1, is);
        for (int a = 0; a < MC_SA_COUNT; a++)
            if (t->attrs[a])
                o.subject.attr[a] = (mc_str){t->attrs[a], strlen(t->attrs[a])};
        o.subject.cn = t->cn;
        issue(f, p, &o, is);
        check_cert(f, &f->ca, p, &o, is, f->keys[K_P256]);

        /* the DN, entry by entry */
        X509_NAME *name = X509_get_subject_name(is->x);
        int k = 0;
        for (int a = 0; a < MC_SA_COUNT; a++) {
            if (!t->attrs[a])
                continue;
            const mc_subj_attr_info *ai = mc_subj_attr_get((mc_subj_attr)a);
            X509_NAME_ENTRY *e = X509_NAME_get_entry(name, k);
            assert_non_null(e);
            assert_int_equal(X509_NAME_ENTRY_set(e), k); /* one attribute per RDN */
            char oid[64];
            OBJ_obj2txt(oid, sizeof oid, X509_NAME_ENTRY_get_object(e), 1);
            char want_oid[64];
            assert_non_null(mc_der_oid_str(ai->oid, ai->oid_len, want_oid, sizeof want_oid));
            assert_string_equal(oid, want_oid);
            ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
            assert_int_equal(ASN1_STRING_type(v),
                             ai->printable ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING);
            assert_int_equal(ASN1_STRING_length(v), (int)strlen(t->attrs[a]));
            assert_memory_equal(ASN1_STRING_get0_data(v), t->attrs[a], strlen(t->attrs[a]));
            k++;
        }
        char cn[300];
        subject_attr(is->x, NID_commonName, cn, sizeof cn);
        assert_string_equal(cn, t->want_cn ? t->want_cn : "");
        assert_int_equal(X509_NAME_entry_count(name), k + (t->want_cn != NULL));
        assert_int_equal(ext_critical(is->x, NID_subject_alt_name), 0);

        /* the independent linter finds nothing, with and without the profile */
        mc_lint_result r;
        mc_errdetail err;
        mc_lint_ctx lc = {.profile = p, .issuer = &f->iss, .now = is->now};
        assert_int_equal(mc_lint_tbs(is->tbs, is->tbs_len, &lc, &r, &err), MC_OK);
        for (size_t i = 0; i < r.n; i++)
            print_error("%s: %s: %s\n", t->file, r.f[i].lint->id, r.f[i].detail);
        assert_int_equal(r.n, 0);
        lc.profile = NULL;
        assert_int_equal(mc_lint_tbs(is->tbs, is->tbs_len, &lc, &r, &err), MC_OK);
        assert_int_equal(r.n, 0);
        /* a commonName source without its value never reaches the DER (defence in depth) */
        if (c == 0) {
            mc_order bad = o;
            bad.subject.attr[MC_SA_ORGANIZATION].len = 0;
            uint8_t serial[MC_SERIAL_LEN] = {1};
            static uint8_t buf[MC_TBS_MAX];
            size_t len;
            assert_int_equal(mc_tbs_build(p, &bad, serial, sizeof serial, (int64_t)time(NULL),
                                          &f->d, f->md, buf, sizeof buf, &len, &err),
                             MC_ERR_INVALID);
            assert_string_equal(err.rule, "SBR 7.1.4.2.2(a)");
        }
        X509_free(is->x);
        free(is);
        mc_profile_free(p);
    }
}

/* The DER of extension oid (dotted) in x: critical flag and extnValue contents; -1 if absent. */
static int ext_by_oid(X509 *x, const char *oid, const unsigned char **val, int *len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    assert_non_null(o);
    int i = X509_get_ext_by_OBJ(x, o, -1);
    ASN1_OBJECT_free(o);
    if (i < 0)
        return -1;
    X509_EXTENSION *e = X509_get_ext(x, i);
    ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e);
    *val = ASN1_STRING_get0_data(v);
    *len = ASN1_STRING_length(v);
    return X509_EXTENSION_get_critical(e);
}

/* SBR 7.1.2.3(l), ISO 17442-2 Clause 4: the LEI and role extensions, non-critical
 * PrintableStrings, only where the type allows them. */
static void test_lei(void **state)
{
    fixture *f = *state;
    static const char lei[] = "5493001KJTIIGC8Y1R12", role[] = "Chief Financial Officer";
    static const char *const mb[] = {"alice@example.com"};
    const char *files[] = {"organization-strict.yaml", "sponsor-multipurpose.yaml"};
    for (int t = 0; t < 2; t++) {
        mc_profile *p = load_shipped(files[t], &f->iss);
        assert_non_null(p);
        mc_order o;
        issued *is = calloc(1, sizeof *is);
        assert_non_null(is);
        order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_SIGNING, mb, 1, is);
        o.subject.attr[MC_SA_ORGANIZATION] = (mc_str){"Example Ltd", 11};
        o.subject.attr[MC_SA_ORG_IDENTIFIER] = (mc_str){"LEIXG-5493001KJTIIGC8Y1R12", 26};
        if (t == 1)
            o.subject.attr[MC_SA_GIVEN_NAME] = (mc_str){"Alice", 5};
        o.lei.value = (mc_str){lei, 20};
        if (t == 1)
            o.lei_role.value = (mc_str){role, strlen(role)};
        issue(f, p, &o, is);
        const unsigned char *v;
        int len;
        assert_int_equal(ext_by_oid(is->x, "1.3.6.1.4.1.52266.1", &v, &len), 0);
        assert_int_equal(len, 22);
        assert_int_equal(v[0], 0x13); /* PrintableString */
        assert_int_equal(v[1], 20);
        assert_memory_equal(v + 2, lei, 20);
        if (t == 1) {
            assert_int_equal(ext_by_oid(is->x, "1.3.6.1.4.1.52266.2", &v, &len), 0);
            assert_int_equal(len, (int)strlen(role) + 2);
            assert_int_equal(v[0], 0x13);
            assert_memory_equal(v + 2, role, strlen(role));
        } else {
            assert_int_equal(ext_by_oid(is->x, "1.3.6.1.4.1.52266.2", &v, &len), -1);
        }
        assert_int_equal(X509_get_extension_flags(is->x) & EXFLAG_INVALID, 0);
        mc_lint_result r;
        mc_errdetail err;
        mc_lint_ctx lc = {.profile = p, .issuer = &f->iss, .now = is->now};
        assert_int_equal(mc_lint_tbs(is->tbs, is->tbs_len, &lc, &r, &err), MC_OK);
        for (size_t i = 0; i < r.n; i++)
            print_error("%s: %s: %s\n", files[t], r.f[i].lint->id, r.f[i].detail);
        assert_int_equal(r.n, 0);

        /* defence in depth: the builder refuses what mc_profile_check_order would have */
        uint8_t serial[MC_SERIAL_LEN] = {1};
        static uint8_t buf[MC_TBS_MAX];
        size_t blen;
        mc_order bad = o;
        bad.lei_role.value = (mc_str){role, strlen(role)};
        bad.lei.value = (mc_str){"5493001KJTIIGC8Y1R13", 20}; /* bad check digits */
        assert_int_equal(mc_tbs_build(p, &bad, serial, sizeof serial, is->now, &f->d, f->md, buf,
                                      sizeof buf, &blen, &err),
                         MC_ERR_INVALID);
        assert_string_equal(err.field, "lei");
        assert_string_equal(err.rule, "SBR 7.1.2.3(l)");
        if (t == 0) { /* no role in organization certificates */
            bad.lei.value = (mc_str){lei, 20};
            assert_int_equal(mc_tbs_build(p, &bad, serial, sizeof serial, is->now, &f->d, f->md,
                                          buf, sizeof buf, &blen, &err),
                             MC_ERR_INVALID);
            assert_string_equal(err.field, "lei_role");
        }
        X509_free(is->x);
        free(is);
        mc_profile_free(p);
    }
    /* mailbox: no LEI at all */
    mc_order o;
    issued *is = calloc(1, sizeof *is);
    assert_non_null(is);
    order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_SIGNING, mb, 1, is);
    o.lei.value = (mc_str){lei, 20};
    uint8_t serial[MC_SERIAL_LEN] = {1};
    size_t blen;
    mc_errdetail err;
    assert_int_equal(mc_tbs_build(f->strict, &o, serial, sizeof serial, (int64_t)time(NULL), &f->d,
                                  f->md, is->tbs, sizeof is->tbs, &blen, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.field, "lei");
    free(is);
}

/* SBR 7.1.2.3(k): a shipped profile with qc_statements added issues a certificate whose
 * qcStatements extension is non-critical, decodes in OpenSSL and lints clean. */
static void test_qc_statements(void **state)
{
    fixture *f = *state;
    static const char *const files[] = {"organization-multipurpose.yaml", "sponsor-strict.yaml",
                                        "individual-strict.yaml"};
    static const char *const qc[] = {
        "qc_statements:\n  compliance: true\n  type: eseal\n  semantics: legal\n"
        "  pds:\n    en: https://pki.example.com/pds-en.pdf\n",
        "qc_statements:\n  compliance: true\n  sscd: true\n  type: esign\n"
        "  retention_years: 15\n  legislation: [CH]\n",
        "qc_statements:\n  compliance: true\n  type: esign\n  semantics: natural\n"};
    static const char *const mb[] = {"alice@example.com"};
    const char *tmp = getenv("MAILCA_TEST_TMP");
    char path[600], src[600];
    for (int t = 0; t < 3; t++) {
        snprintf(src, sizeof src, "%s/profiles/%s", MAILCA_SOURCE_DIR, files[t]);
        snprintf(path, sizeof path, "%s/tbs-qc-%d-%ld.yaml", tmp && *tmp ? tmp : "/tmp", t,
                 (long)getpid());
        FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
        assert_non_null(in);
        assert_non_null(out);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            assert_int_equal(fwrite(buf, 1, n, out), n);
        assert_true(fputs(qc[t], out) >= 0);
        fclose(in);
        assert_int_equal(fclose(out), 0);
        mc_profile *p = NULL;
        mc_errdetail err;
        mc_err rc = mc_profile_load(path, &f->iss, &urls, &p, &err);
        remove(path);
        if (rc)
            print_error("%s: %s: %s [%s]\n", files[t], err.field, err.message, err.rule);
        assert_int_equal(rc, MC_OK);
        mc_order o;
        issued *is = calloc(1, sizeof *is);
        assert_non_null(is);
        order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_SIGNING, mb, 1, is);
        if (t < 2) {
            o.subject.attr[MC_SA_ORGANIZATION] = (mc_str){"Example Ltd", 11};
            o.subject.attr[MC_SA_ORG_IDENTIFIER] = (mc_str){"NTRGB-12345678", 14};
        }
        if (t > 0) {
            o.subject.attr[MC_SA_GIVEN_NAME] = (mc_str){"Alice", 5};
            o.subject.attr[MC_SA_SURNAME] = (mc_str){"Smith", 5};
        }
        issue(f, p, &o, is);
        const unsigned char *v;
        int len;
        assert_int_equal(ext_by_oid(is->x, "1.3.6.1.5.5.7.1.3", &v, &len), 0); /* non-critical */
        assert_true(len > 10 && v[0] == 0x30);
        assert_int_equal(X509_get_extension_flags(is->x) & EXFLAG_INVALID, 0);
        mc_lint_result r;
        mc_lint_ctx lc = {.profile = p, .issuer = &f->iss, .now = is->now};
        assert_int_equal(mc_lint_tbs(is->tbs, is->tbs_len, &lc, &r, &err), MC_OK);
        for (size_t i = 0; i < r.n; i++)
            print_error("%s: %s: %s\n", files[t], r.f[i].lint->id, r.f[i].detail);
        assert_int_equal(r.n, 0);
        X509_free(is->x);
        free(is);
        mc_profile_free(p);
    }
}

/* The CRL DP URI of a certificate as OpenSSL reads it (one DistributionPoint, one URI). */
static void crldp_uri(X509 *x, char *buf, size_t cap)
{
    STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
    assert_non_null(dps);
    assert_int_equal(sk_DIST_POINT_num(dps), 1);
    DIST_POINT *dp = sk_DIST_POINT_value(dps, 0);
    assert_non_null(dp->distpoint);
    assert_int_equal(dp->distpoint->type, 0);
    assert_int_equal(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 1);
    GENERAL_NAME *g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
    assert_int_equal(g->type, GEN_URI);
    size_t l = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
    assert_true(l < cap);
    memcpy(buf, ASN1_STRING_get0_data(g->d.uniformResourceIdentifier), l);
    buf[l] = '\0';
    CRL_DIST_POINTS_free(dps);
}

/* Partitioned CRLs (crl.h): with ca.crl_shards 8 each certificate's CRL DP names the shard of
 * its serial in four digits, patched into the compiled template (the TBS has the length of the
 * unsharded build with a URL of the same length), and lints clean (the linter sees the
 * patched bytes: SBR 7.1.2.3(b)); a URL without the placeholder is refused at load. */
static void test_crl_shards(void **state)
{
    fixture *f = *state;
    mc_ca_urls su = urls, plain = urls;
    su.crl = "http://crl.example.com/s/{shard}.crl";
    su.crl_shards = 8;
    plain.crl = "http://crl.example.com/s/0000.crl"; /* the same length, unsharded */
    char path[600];
    snprintf(path, sizeof path, "%s/profiles/mailbox-strict.yaml", MAILCA_SOURCE_DIR);
    mc_profile *p = NULL, *q = NULL;
    mc_errdetail err;
    assert_int_equal(mc_profile_load(path, &f->iss, &su, &p, &err), MC_OK);
    assert_int_equal(mc_profile_load(path, &f->iss, &plain, &q, &err), MC_OK);
    assert_int_equal(p->crl_shards, 8);
    assert_int_equal(q->crl_shards, 1);
    assert_int_equal(p->ext_const_len, q->ext_const_len);
    assert_memory_equal(p->ext_const + p->crl_shard_off, "0000", 4);
    static const char *const mb[] = {"alice@example.com"};
    int seen[8] = {0};
    for (int i = 0; i < 64; i++) {
        mc_order o;
        issued *is = calloc(1, sizeof *is);
        assert_non_null(is);
        order_init(&o, f->keys[K_P256], MC_KEY_P256, MC_USAGE_SIGNING, mb, 1, is);
        issue(f, p, &o, is);
        unsigned k = mc_crl_shard_of(is->serial, MC_SERIAL_LEN, 8);
        assert_true(k < 8);
        seen[k] = 1;
        char want[64], got[128];
        snprintf(want, sizeof want, "http://crl.example.com/s/%04u.crl", k);
        crldp_uri(is->x, got, sizeof got);
        assert_string_equal(got, want);
        /* the template is shared and stays as compiled */
        assert_memory_equal(p->ext_const + p->crl_shard_off, "0000", 4);
        if (i < 4) {
            mc_lint_result r;
            mc_lint_ctx lc = {.profile = p, .issuer = &f->iss, .now = is->now};
            assert_int_equal(mc_lint_tbs(is->tbs, is->tbs_len, &lc, &r, &err), MC_OK);
            for (size_t j = 0; j < r.n; j++)
                print_error("%s: %s\n", r.f[j].lint->id, r.f[j].detail);
            assert_int_equal(r.n, 0);
            /* the same serial unsharded: a TBS of the same length */
            uint8_t tbs2[MC_TBS_MAX];
            size_t l2 = 0;
            assert_int_equal(mc_tbs_build(q, &o, is->serial, MC_SERIAL_LEN, is->now, &f->d, f->md,
                                          tbs2, sizeof tbs2, &l2, &err),
                             MC_OK);
            assert_int_equal(l2, is->tbs_len);
        }
        X509_free(is->x);
        free(is);
    }
    for (int k = 0; k < 8; k++)
        assert_true(seen[k]); /* 64 random serials miss a shard with p < 1e-3 */
    mc_profile_free(p);
    mc_profile_free(q);
    /* refused at load: shards without the placeholder, the placeholder without shards */
    su.crl = "http://crl.example.com/ca.crl";
    assert_int_equal(mc_profile_load(path, &f->iss, &su, &p, &err), MC_ERR_CONFIG);
    assert_string_equal(err.field, "ca.crl_url");
    assert_string_equal(err.rule, "ca.crl_shards");
    plain.crl = "http://crl.example.com/s/{shard}.crl";
    assert_int_equal(mc_profile_load(path, &f->iss, &plain, &p, &err), MC_ERR_CONFIG);
    assert_string_equal(err.field, "ca.crl_url");
    /* and still http only (SBR 7.1.2.3(b)) */
    su.crl = "https://crl.example.com/s/{shard}.crl";
    assert_int_equal(mc_profile_load(path, &f->iss, &su, &p, &err), MC_ERR_CONFIG);
    assert_string_equal(err.rule, "SBR 7.1.2.3(b)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_usage_table),
        cmocka_unit_test(test_serial),
        cmocka_unit_test(test_assemble),
        cmocka_unit_test(test_p256),
        cmocka_unit_test(test_p384_p521),
        cmocka_unit_test(test_rsa),
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_ed448),
        cmocka_unit_test(test_other_issuers),
        cmocka_unit_test(test_smtputf8),
        cmocka_unit_test(test_subject_limits),
        cmocka_unit_test(test_validity_2050),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_other_types),
        cmocka_unit_test(test_lei),
        cmocka_unit_test(test_qc_statements),
        cmocka_unit_test(test_non_repudiation),
        cmocka_unit_test(test_crl_shards),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * certgen: compliant-by-default S/MIME test certificates built with OpenSSL, with knobs to
 * break one rule at a time (see certgen.h). Keys and the CA are made once per process.
 */
#include "support/certgen.h"

#include "mailca/crypto.h"
#include "mailca/der.h"
#include "mailca/profile.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    int ready;
    EVP_PKEY *ca_key;
    EVP_MD *sha256;
    uint8_t name[256];
    size_t name_len;
    mc_issuer iss;
    EVP_PKEY *keys[CG_KEY_COUNT_];
} G;

static EVP_PKEY *make_key(cg_key k)
{
    static const mc_keytype kt[CG_KEY_COUNT_] = {MC_KEY_P256, MC_KEY_P384, MC_KEY_RSA,
                                                 MC_KEY_ED25519, MC_KEY_ED448};
    return (unsigned)k < CG_KEY_COUNT_ ? mc_crypto_keygen(kt[k], 2048) : NULL;
}

static int setup(void)
{
    if (G.ready)
        return 0;
    G.ca_key = make_key(CG_KEY_P256);
    G.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    X509_NAME *n = X509_NAME_new();
    if (!G.ca_key || !G.sha256 || !n)
        return -1;
    X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)"DE", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"mailca Test", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)"mailca Test S/MIME CA", -1, -1, 0);
    unsigned char *p = G.name;
    int l = i2d_X509_NAME(n, NULL);
    if (l <= 0 || (size_t)l > sizeof G.name) {
        X509_NAME_free(n);
        return -1;
    }
    G.name_len = (size_t)i2d_X509_NAME(n, &p);
    X509_NAME_free(n);
    /* SKI of the CA: SHA-1 of its public key bits (RFC 5280 4.2.1.2 method 1) */
    unsigned char *pub = NULL;
    int pl = i2d_PublicKey(G.ca_key, &pub);
    unsigned int sl = 0;
    EVP_MD *sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    int ok = pl > 0 && sha1 && EVP_Digest(pub, (size_t)pl, G.iss.ski, &sl, sha1, NULL);
    EVP_MD_free(sha1);
    OPENSSL_free(pub);
    if (!ok)
        return -1;
    G.iss.ski_len = sl;
    G.iss.name.p = G.name;
    G.iss.name.len = G.name_len;
    G.iss.keytype = MC_KEY_P256;
    G.iss.sigalg = MC_SIG_ECDSA_SHA256;
    G.ready = 1;
    return 0;
}

const mc_issuer *cg_issuer(void)
{
    return setup() == 0 ? &G.iss : NULL;
}

void cg_opts_default(cg_opts *o)
{
    memset(o, 0, sizeof *o);
    o->type = MC_TYPE_MAILBOX;
    o->generation = MC_GEN_STRICT;
    o->key = CG_KEY_P256;
    o->mailbox = CG_MAILBOX;
    o->not_before = CG_NOW;
    o->validity = 730 * CG_DAY - 1; /* 730 days counting both ends (SBR 6.3.2) */
    static const uint8_t serial[16] = {0x5a, 0x3c, 0x91, 0x07, 0xee, 0x42, 0x18, 0xd3,
                                       0x6b, 0x20, 0xa4, 0x7f, 0x01, 0x99, 0xc5, 0x3e};
    memcpy(o->serial, serial, sizeof serial);
    o->serial_len = sizeof serial;
}

/* ---- extension helpers ---- */

static X509_EXTENSION *raw_ext(const char *oid, int critical, const uint8_t *der, size_t len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ex = NULL;
    if (obj && os && ASN1_OCTET_STRING_set(os, der, (int)len))
        ex = X509_EXTENSION_create_by_OBJ(NULL, obj, critical, os);
    ASN1_OBJECT_free(obj);
    ASN1_OCTET_STRING_free(os);
    return ex;
}

static int ext_index(X509 *x, const char *oid)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    int i = obj ? X509_get_ext_by_OBJ(x, obj, -1) : -1;
    ASN1_OBJECT_free(obj);
    return i;
}

/* Replaces the extension at its index (or appends) and takes ownership of ex. */
static int put_ext(X509 *x, const char *oid, X509_EXTENSION *ex)
{
    if (!ex)
        return -1;
    int i = ext_index(x, oid);
    if (i >= 0)
        X509_EXTENSION_free(X509_delete_ext(x, i));
    int ok = X509_add_ext(x, ex, i);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

int cg_ext_remove(X509 *x, const char *oid)
{
    int i;
    while ((i = ext_index(x, oid)) >= 0)
        X509_EXTENSION_free(X509_delete_ext(x, i));
    return 0;
}

int cg_ext_set_raw(X509 *x, const char *oid, int critical, const uint8_t *der, size_t len)
{
    return put_ext(x, oid, raw_ext(oid, critical, der, len));
}

int cg_ext_add_raw(X509 *x, const char *oid, int critical, const uint8_t *der, size_t len)
{
    X509_EXTENSION *ex = raw_ext(oid, critical, der, len);
    int ok = ex && X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

int cg_ext_conf(X509 *x, const char *name, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, NULL, x, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf(NULL, &ctx, name, value);
    if (!ex)
        return -1;
    char oid[64];
    OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(ex), 1);
    return put_ext(x, oid, ex);
}

int cg_ext_set_critical(X509 *x, const char *oid, int critical)
{
    int i = ext_index(x, oid);
    if (i < 0)
        return -1;
    return X509_EXTENSION_set_critical(X509_get_ext(x, i), critical) ? 0 : -1;
}

int cg_subject_clear(X509 *x)
{
    X509_NAME *n = X509_NAME_new();
    int ok = n && X509_set_subject_name(x, n);
    X509_NAME_free(n);
    return ok ? 0 : -1;
}

int cg_subject_add(X509 *x, const char *oid, int asn1_type, const void *val, size_t len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    int ok = obj && X509_NAME_add_entry_by_OBJ(X509_get_subject_name(x), obj, asn1_type,
                                               (const unsigned char *)val, (int)len, -1, 0);
    ASN1_OBJECT_free(obj);
    return ok ? 0 : -1;
}

int cg_ext_san(X509 *x, const char *rfc822, const char *utf8)
{
    static const uint8_t smtputf8[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x09};
    uint8_t buf[512];
    mc_der_w w;
    mc_der_w_init(&w, buf, sizeof buf);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    if (rfc822)
        mc_der_put(&w, MC_DER_CTX(1), rfc822, strlen(rfc822));
    if (utf8) {
        size_t on = mc_der_begin(&w, MC_DER_CTX_CONS(0));
        mc_der_put(&w, MC_DER_OID, smtputf8, sizeof smtputf8);
        size_t ex = mc_der_begin(&w, MC_DER_CTX_CONS(0));
        mc_der_put(&w, MC_DER_UTF8STRING, utf8, strlen(utf8));
        mc_der_end(&w, ex);
        mc_der_end(&w, on);
    }
    mc_der_end(&w, m);
    return w.err == MC_OK ? cg_ext_set_raw(x, CG_OID_SAN, 0, buf, w.len) : -1;
}

int cg_subject_cn(X509 *x, const char *cn)
{
    if (cg_subject_clear(x) != 0)
        return -1;
    return cg_subject_add(x, "2.5.4.3", V_ASN1_UTF8STRING, cn, strlen(cn));
}

/* ---- ready-made edits ---- */

void cg_edit_rfc822_ulabel(X509 *x)
{
    static const char m[] = "alice@" CG_MUENCHEN_U;
    if (cg_ext_san(x, m, NULL) == 0)
        cg_subject_cn(x, m);
}

void cg_edit_smtputf8_ulabel(X509 *x)
{
    cg_ext_san(x, CG_MAILBOX, CG_GREEK "@" CG_MUENCHEN_U);
}

void cg_edit_smtputf8_ascii(X509 *x)
{
    cg_ext_san(x, CG_MAILBOX, "bob@example.com");
}

/* ---- building ---- */

static int baseline(X509 *x, const cg_opts *o)
{
    uint8_t pol[] = {0x30,
                     0x0b,
                     0x30,
                     0x09,
                     0x06,
                     0x07,
                     0x67,
                     0x81,
                     0x0c,
                     0x01,
                     0x05,
                     (uint8_t)o->type,
                     (uint8_t)o->generation};
    uint8_t aki[4 + 64] = {0x30, (uint8_t)(2 + G.iss.ski_len), 0x80, (uint8_t)G.iss.ski_len};
    memcpy(aki + 4, G.iss.ski, G.iss.ski_len);
    char san[320];
    snprintf(san, sizeof san, "email:%s", o->mailbox);
    /* The order mailca's TBS builder uses: KU, EKU, SAN, then the profile's constant ones. */
    if (cg_ext_conf(x, "keyUsage", "critical,digitalSignature") ||
        cg_ext_conf(x, "extendedKeyUsage", "emailProtection") ||
        cg_ext_conf(x, "subjectAltName", san) ||
        cg_ext_set_raw(x, "2.5.29.32", 0, pol, sizeof pol) ||
        cg_ext_conf(x, "crlDistributionPoints", "URI:http://crl.example.com/ca.crl") ||
        cg_ext_conf(
            x, "authorityInfoAccess",
            "OCSP;URI:http://ocsp.example.com,caIssuers;URI:http://ca.example.com/ca.cer") ||
        cg_ext_set_raw(x, "2.5.29.35", 0, aki, 4 + G.iss.ski_len) ||
        cg_ext_conf(x, "subjectKeyIdentifier", "hash"))
        return -1;
    return cg_subject_add(x, "2.5.4.3", V_ASN1_UTF8STRING, o->mailbox, strlen(o->mailbox));
}

int cg_build(const cg_opts *o, cg_cert *out)
{
    memset(out, 0, sizeof *out);
    if (setup() != 0)
        return -1;
    if ((unsigned)o->key >= CG_KEY_COUNT_ ||
        (!G.keys[o->key] && !(G.keys[o->key] = make_key(o->key))))
        return -1;
    int rc = -1;
    X509 *x = X509_new();
    BIGNUM *bn = BN_bin2bn(o->serial, (int)o->serial_len, NULL);
    ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    X509_NAME *issuer = NULL;
    const unsigned char *np = G.name;
    if (!x || !serial || !(issuer = d2i_X509_NAME(NULL, &np, (long)G.name_len)))
        goto done;
    if (!X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, serial) ||
        !X509_set_issuer_name(x, issuer) || !X509_set_pubkey(x, G.keys[o->key]) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)o->not_before) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(o->not_before + o->validity)))
        goto done;
    if (baseline(x, o) != 0)
        goto done;
    if (o->edit)
        o->edit(x, o->arg);
    if (!X509_sign(x, G.ca_key, G.sha256))
        goto done;
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    if (len <= 0)
        goto done;
    out->der = malloc((size_t)len);
    if (!out->der) {
        OPENSSL_free(der);
        goto done;
    }
    memcpy(out->der, der, (size_t)len);
    out->len = (size_t)len;
    OPENSSL_free(der);
    /* the TBS exactly as signed: the first element of the Certificate */
    mc_der_cur c = mc_der_cur_make(out->der, out->len);
    mc_der_tlv cert, tbs;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &cert) != MC_OK)
        goto done;
    c = mc_der_cur_in(&cert);
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &tbs) != MC_OK || !(out->tbs = malloc(tbs.rawlen)))
        goto done;
    memcpy(out->tbs, tbs.raw, tbs.rawlen);
    out->tbs_len = tbs.rawlen;
    rc = 0;
done:
    if (rc != 0)
        cg_cert_free(out);
    X509_NAME_free(issuer);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_free(x);
    return rc;
}

void cg_cert_free(cg_cert *c)
{
    free(c->der);
    free(c->tbs);
    memset(c, 0, sizeof *c);
}

/* ---- raw DER edits ---- */

/* Rebuilds the TBS SEQUENCE: elements [0, idx) copied, then elem, then from idx + skip on. */
static size_t rebuild(const uint8_t *tbs, size_t len, int idx, int skip, const uint8_t *elem,
                      size_t elen, uint8_t *out, size_t cap)
{
    mc_der_cur c = mc_der_cur_make(tbs, len);
    mc_der_tlv seq, t;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &seq) != MC_OK)
        return 0;
    c = mc_der_cur_in(&seq);
    mc_der_w w;
    mc_der_w_init(&w, out, cap);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    int i = 0, done = 0;
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_next(&c, &t) != MC_OK)
            return 0;
        if (i == idx) {
            if (elem)
                mc_der_put_raw(&w, elem, elen);
            done = 1;
        }
        if (!(i >= idx && i < idx + skip))
            mc_der_put_raw(&w, t.raw, t.rawlen);
        i++;
    }
    if (!done && i == idx) {
        if (elem)
            mc_der_put_raw(&w, elem, elen);
        done = 1;
    }
    mc_der_end(&w, m);
    return done && w.err == MC_OK ? w.len : 0;
}

size_t cg_tbs_replace(const uint8_t *tbs, size_t len, int idx, const uint8_t *elem, size_t elen,
                      uint8_t *out, size_t cap)
{
    return rebuild(tbs, len, idx, 1, elem, elen, out, cap);
}

size_t cg_tbs_insert(const uint8_t *tbs, size_t len, int idx, const uint8_t *elem, size_t elen,
                     uint8_t *out, size_t cap)
{
    return rebuild(tbs, len, idx, 0, elem, elen, out, cap);
}

size_t cg_tbs_replace_hex(const uint8_t *tbs, size_t len, int idx, const char *hex, uint8_t *out,
                          size_t cap)
{
    uint8_t e[512];
    size_t el = cg_hex(hex, e, sizeof e);
    return el ? cg_tbs_replace(tbs, len, idx, e, el, out, cap) : 0;
}

size_t cg_tbs_serial_padded(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return cg_tbs_replace_hex(tbs, len, 1,
                              "02 11 00 5a 3c 91 07 ee 42 18 d3 6b 20 a4 7f 01 99 c5 3e", out, cap);
}

size_t cg_tbs_time_generalized(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return cg_tbs_replace_hex(tbs, len, 4,
                              "30 20 18 0f 32 30 32 36 30 31 31 35 30 30 30 30 30 30 5a 17 0d 32 "
                              "38 30 31 31 34 32 33 35 39 35 39 5a",
                              out, cap);
}

size_t cg_tbs_unique_id(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    uint8_t e[8];
    size_t el = cg_hex("82 02 00 ab", e, sizeof e);
    return cg_tbs_insert(tbs, len, 7, e, el, out, cap);
}

size_t cg_tbs_add_ext(const uint8_t *tbs, size_t len, const uint8_t *ext, size_t elen, uint8_t *out,
                      size_t cap)
{
    mc_der_cur c = mc_der_cur_make(tbs, len);
    mc_der_tlv seq, t, exts = {0}, list;
    int idx = 0, found = -1;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &seq) != MC_OK)
        return 0;
    c = mc_der_cur_in(&seq);
    while (mc_der_next(&c, &t) == MC_OK) {
        if (t.tag == MC_DER_CTX_CONS(3)) {
            exts = t;
            found = idx;
        }
        idx++;
    }
    if (found < 0)
        return 0;
    mc_der_cur e = mc_der_cur_in(&exts);
    if (mc_der_expect(&e, MC_DER_SEQUENCE, &list) != MC_OK)
        return 0;
    uint8_t *buf = malloc(list.len + elen + 32);
    if (!buf)
        return 0;
    mc_der_w w;
    mc_der_w_init(&w, buf, list.len + elen + 32);
    size_t m3 = mc_der_begin(&w, MC_DER_CTX_CONS(3));
    size_t ms = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, list.val, list.len);
    mc_der_put_raw(&w, ext, elen);
    mc_der_end(&w, ms);
    mc_der_end(&w, m3);
    size_t r = w.err == MC_OK ? rebuild(tbs, len, found, 1, buf, w.len, out, cap) : 0;
    free(buf);
    return r;
}

size_t cg_cert_assemble(const uint8_t *tbs, size_t tbs_len, const uint8_t *alg, size_t alg_len,
                        const uint8_t *sig, size_t sig_len, uint8_t *out, size_t cap)
{
    mc_der_w w;
    mc_der_w_init(&w, out, cap);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, tbs, tbs_len);
    mc_der_put_raw(&w, alg, alg_len);
    mc_der_put_raw(&w, sig, sig_len);
    mc_der_end(&w, m);
    return w.err == MC_OK ? w.len : 0;
}

size_t cg_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else if (*p == ' ' || *p == '\n')
            continue;
        else
            return 0;
        if (hi < 0) {
            hi = v;
        } else {
            if (n == cap)
                return 0;
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return hi < 0 ? n : 0;
}

int cg_subject_apply(X509 *x, const char *spec)
{
    static const struct {
        const char *k, *oid;
        int type;
    } keys[] = {
        {"C", "2.5.4.6", V_ASN1_PRINTABLESTRING},   {"ST", "2.5.4.8", V_ASN1_UTF8STRING},
        {"L", "2.5.4.7", V_ASN1_UTF8STRING},        {"STREET", "2.5.4.9", V_ASN1_UTF8STRING},
        {"PC", "2.5.4.17", V_ASN1_UTF8STRING},      {"O", "2.5.4.10", V_ASN1_UTF8STRING},
        {"OU", "2.5.4.11", V_ASN1_UTF8STRING},      {"OI", "2.5.4.97", V_ASN1_UTF8STRING},
        {"T", "2.5.4.12", V_ASN1_UTF8STRING},       {"SN", "2.5.4.4", V_ASN1_UTF8STRING},
        {"GN", "2.5.4.42", V_ASN1_UTF8STRING},      {"P", "2.5.4.65", V_ASN1_UTF8STRING},
        {"SER", "2.5.4.5", V_ASN1_PRINTABLESTRING}, {"CN", "2.5.4.3", V_ASN1_UTF8STRING},
    };
    if (spec[0] == '!') {
        if (cg_subject_clear(x) != 0)
            return -1;
        spec++;
    }
    char buf[512];
    if ((size_t)snprintf(buf, sizeof buf, "%s", spec) >= sizeof buf)
        return -1;
    for (char *save = NULL, *item = strtok_r(buf, ";", &save); item;
         item = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(item, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        size_t k = 0;
        while (k < sizeof keys / sizeof keys[0] && strcmp(keys[k].k, item) != 0)
            k++;
        if (k == sizeof keys / sizeof keys[0] ||
            cg_subject_add(x, keys[k].oid, keys[k].type, eq + 1, strlen(eq + 1)) != 0)
            return -1;
    }
    return 0;
}

/* ---- test cases ---- */

typedef struct case_edit {
    const cg_case *c;
    int failed;
} case_edit;

static void case_edit_apply(X509 *x, void *arg)
{
    case_edit *ce = arg;
    const cg_case *c = ce->c;
    uint8_t raw[512];
    int rc = 0;
    if (c->del)
        rc |= cg_ext_remove(x, c->del);
    if (c->raw_oid) {
        size_t n = cg_hex(c->raw_hex, raw, sizeof raw);
        if (n == 0)
            rc = -1;
        else if (c->raw_add)
            rc |= cg_ext_add_raw(x, c->raw_oid, c->raw_crit, raw, n);
        else
            rc |= cg_ext_set_raw(x, c->raw_oid, c->raw_crit, raw, n);
    }
    if (c->conf_name)
        rc |= cg_ext_conf(x, c->conf_name, c->conf_value);
    if (c->crit_oid)
        rc |= cg_ext_set_critical(x, c->crit_oid, !c->uncrit);
    if (c->edit)
        c->edit(x);
    if (c->subj)
        rc |= cg_subject_apply(x, c->subj);
    ce->failed = rc != 0;
}

int cg_case_build(const cg_case *c, cg_cert *out)
{
    cg_opts o;
    cg_opts_default(&o);
    if (c->type)
        o.type = c->type;
    if (c->gen)
        o.generation = c->gen;
    o.key = c->key;
    if (c->validity)
        o.validity = c->validity;
    if (c->mailbox)
        o.mailbox = c->mailbox;
    if (c->serial_hex && (o.serial_len = cg_hex(c->serial_hex, o.serial, sizeof o.serial)) == 0)
        return -1;
    case_edit ce = {c, 0};
    o.edit = case_edit_apply;
    o.arg = &ce;
    if (cg_build(&o, out) != 0)
        return -1;
    if (ce.failed) {
        cg_cert_free(out);
        return -1;
    }
    return 0;
}

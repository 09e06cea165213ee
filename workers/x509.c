/*
 * mc_x509: parses a Certificate or TBSCertificate into a view of TLVs pointing into the caller's
 * buffer, with mc_der (strict DER). Only structure is checked here: everything that is
 * well-formed DER with the RFC 5280 shape parses, so that the linter can name what is wrong with
 * the content (version, serial encoding, times, extension values). Never allocates.
 */
#include "mailca/x509.h"

#include <string.h>

#define FAIL(field, ...) mc_err_set(err, MC_ERR_INVALID, field, "RFC 5280 4.1", __VA_ARGS__)

/* Name ::= SEQUENCE OF RelativeDistinguishedName; RDN ::= SET SIZE (1..MAX) OF
 * AttributeTypeAndValue ::= SEQUENCE { type OID, value ANY }. DER also orders a SET OF by its
 * encodings (X.690 11.6), so a multi-valued RDN must be sorted. */
static int name_ok(const mc_der_tlv *name)
{
    mc_der_cur c = mc_der_cur_in(name);
    while (!mc_der_cur_empty(&c)) {
        mc_der_tlv rdn, atv, oid, val;
        if (mc_der_expect(&c, MC_DER_SET, &rdn) != MC_OK || rdn.len == 0)
            return 0;
        mc_der_cur r = mc_der_cur_in(&rdn);
        const uint8_t *prev = NULL;
        size_t prevlen = 0;
        while (!mc_der_cur_empty(&r)) {
            if (mc_der_expect(&r, MC_DER_SEQUENCE, &atv) != MC_OK)
                return 0;
            mc_der_cur a = mc_der_cur_in(&atv);
            if (mc_der_expect(&a, MC_DER_OID, &oid) != MC_OK || oid.len == 0 ||
                mc_der_next(&a, &val) != MC_OK || !mc_der_cur_empty(&a))
                return 0;
            if (prev) {
                size_t n = prevlen < atv.rawlen ? prevlen : atv.rawlen;
                int cmp = memcmp(prev, atv.raw, n);
                if (cmp > 0 || (cmp == 0 && prevlen > atv.rawlen))
                    return 0;
            }
            prev = atv.raw;
            prevlen = atv.rawlen;
        }
    }
    return 1;
}

static int algid_ok(const mc_der_tlv *t)
{
    mc_der_cur c = mc_der_cur_in(t);
    mc_der_tlv oid, params;
    if (mc_der_expect(&c, MC_DER_OID, &oid) != MC_OK || oid.len == 0)
        return 0;
    if (!mc_der_cur_empty(&c) && mc_der_next(&c, &params) != MC_OK)
        return 0;
    return mc_der_cur_empty(&c);
}

/* BIT STRING: at least the unused-bits octet, at most 7 unused bits, none when empty. */
static int bitstring_ok(const mc_der_tlv *t)
{
    return t->len >= 1 && t->val[0] <= 7 && (t->len > 1 || t->val[0] == 0);
}

static mc_err parse_extensions(const mc_der_tlv *wrap, mc_x509 *out, mc_errdetail *err)
{
    mc_der_cur c = mc_der_cur_in(wrap);
    mc_der_tlv seq;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &seq) != MC_OK || !mc_der_cur_empty(&c))
        return FAIL("extensions", "[3] does not hold exactly one SEQUENCE");
    if (seq.len == 0) /* Extensions ::= SEQUENCE SIZE (1..MAX) */
        return FAIL("extensions", "empty Extensions SEQUENCE (SIZE 1..MAX)");
    mc_der_cur e = mc_der_cur_in(&seq);
    while (!mc_der_cur_empty(&e)) {
        if (out->n_ext == MC_X509_EXT_MAX)
            return mc_err_set(err, MC_ERR_INVALID, "extensions", "RFC 5280 4.1",
                              "more than %d extensions", MC_X509_EXT_MAX);
        mc_x509_ext *x = &out->ext[out->n_ext];
        memset(x, 0, sizeof *x);
        mc_der_tlv ext, crit, os;
        if (mc_der_expect(&e, MC_DER_SEQUENCE, &ext) != MC_OK)
            return mc_err_set(err, MC_ERR_INVALID, "extensions", "RFC 5280 4.1",
                              "extension %zu is not a DER SEQUENCE", out->n_ext);
        mc_der_cur in = mc_der_cur_in(&ext);
        if (mc_der_expect(&in, MC_DER_OID, &x->oid) != MC_OK || x->oid.len == 0)
            return mc_err_set(err, MC_ERR_INVALID, "extensions", "RFC 5280 4.1",
                              "extension %zu: extnID is not an OID", out->n_ext);
        if (mc_der_optional(&in, MC_DER_BOOLEAN, &crit)) {
            if (mc_der_bool(&crit, &x->critical) != MC_OK)
                return mc_err_set(err, MC_ERR_INVALID, "extensions", "X.690 11.1",
                                  "extension %zu: critical is not a DER BOOLEAN", out->n_ext);
            x->critical_present = 1; /* explicit FALSE is left for the linter to name */
        }
        if (mc_der_expect(&in, MC_DER_OCTETSTRING, &os) != MC_OK || !mc_der_cur_empty(&in))
            return mc_err_set(err, MC_ERR_INVALID, "extensions", "RFC 5280 4.1",
                              "extension %zu: extnValue is not an OCTET STRING ending the "
                              "Extension",
                              out->n_ext);
        mc_der_cur v = mc_der_cur_in(&os);
        if (mc_der_next(&v, &x->value) != MC_OK || !mc_der_cur_empty(&v))
            return mc_err_set(err, MC_ERR_INVALID, "extensions", "RFC 5280 4.2",
                              "extension %zu: extnValue does not hold exactly one DER value",
                              out->n_ext);
        out->n_ext++;
    }
    return MC_OK;
}

static mc_err parse_tbs_tlv(const mc_der_tlv *tbs, mc_x509 *out, mc_errdetail *err)
{
    mc_der_cur c = mc_der_cur_in(tbs);
    mc_der_tlv t;
    out->tbs = *tbs;
    out->version = 0;
    if (mc_der_optional(&c, MC_DER_CTX_CONS(0), &t)) {
        mc_der_cur v = mc_der_cur_in(&t);
        mc_der_tlv vi;
        int64_t ver;
        if (mc_der_expect(&v, MC_DER_INTEGER, &vi) != MC_OK || !mc_der_cur_empty(&v) ||
            mc_der_int_i64(&vi, &ver) != MC_OK || ver > 2)
            return FAIL("version", "version is not a DER INTEGER 0..2");
        if (ver == 0) /* DEFAULT v1 encoded explicitly (X.690 11.5) */
            return FAIL("version", "version v1 encoded explicitly (DEFAULT value)");
        out->version = (int)ver;
    }
    if (mc_der_expect(&c, MC_DER_INTEGER, &out->serial) != MC_OK || out->serial.len == 0)
        return FAIL("serialNumber", "serialNumber is not an INTEGER");
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &out->sigalg) != MC_OK || !algid_ok(&out->sigalg))
        return FAIL("signature", "signature is not an AlgorithmIdentifier");
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &out->issuer) != MC_OK || !name_ok(&out->issuer))
        return FAIL("issuer", "issuer is not a DER Name");
    mc_der_tlv validity;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &validity) != MC_OK)
        return FAIL("validity", "validity is not a SEQUENCE");
    mc_der_cur vc = mc_der_cur_in(&validity);
    if (mc_der_next(&vc, &out->not_before) != MC_OK || mc_der_next(&vc, &out->not_after) != MC_OK ||
        !mc_der_cur_empty(&vc))
        return FAIL("validity", "validity does not hold exactly two times");
    const mc_der_tlv *times[2] = {&out->not_before, &out->not_after};
    for (int i = 0; i < 2; i++)
        if (times[i]->tag != MC_DER_UTCTIME && times[i]->tag != MC_DER_GENERALIZEDTIME)
            return FAIL("validity", "validity time %d is neither UTCTime nor GeneralizedTime", i);
    /* The format rules (Z, seconds) are lints; unparseable times read as 0. */
    if (mc_der_time(&out->not_before, &out->nb) != MC_OK)
        out->nb = 0;
    if (mc_der_time(&out->not_after, &out->na) != MC_OK)
        out->na = 0;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &out->subject) != MC_OK || !name_ok(&out->subject))
        return FAIL("subject", "subject is not a DER Name");
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &out->spki) != MC_OK)
        return FAIL("subjectPublicKeyInfo", "subjectPublicKeyInfo is not a SEQUENCE");
    mc_der_cur sc = mc_der_cur_in(&out->spki);
    if (mc_der_expect(&sc, MC_DER_SEQUENCE, &out->spki_alg) != MC_OK || !algid_ok(&out->spki_alg) ||
        mc_der_expect(&sc, MC_DER_BITSTRING, &out->spki_key) != MC_OK ||
        !bitstring_ok(&out->spki_key) || !mc_der_cur_empty(&sc))
        return FAIL("subjectPublicKeyInfo", "subjectPublicKeyInfo is not {AlgorithmIdentifier, "
                                            "BIT STRING}");
    out->has_issuer_uid =
        mc_der_optional(&c, MC_DER_CTX(1), &t) || mc_der_optional(&c, MC_DER_CTX_CONS(1), &t);
    out->has_subject_uid =
        mc_der_optional(&c, MC_DER_CTX(2), &t) || mc_der_optional(&c, MC_DER_CTX_CONS(2), &t);
    out->n_ext = 0;
    if (mc_der_optional(&c, MC_DER_CTX_CONS(3), &t)) {
        mc_err e = parse_extensions(&t, out, err);
        if (e != MC_OK)
            return e;
    }
    if (!mc_der_cur_empty(&c))
        return FAIL("tbsCertificate",
                    "unexpected data after the last TBSCertificate field "
                    "(tag 0x%02x)",
                    (unsigned)c.p[0]);
    return MC_OK;
}

mc_err mc_x509_parse_tbs(const uint8_t *der, size_t len, mc_x509 *out, mc_errdetail *err)
{
    memset(out, 0, offsetof(mc_x509, ext));
    mc_der_cur c = mc_der_cur_make(der, len);
    mc_der_tlv tbs;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &tbs) != MC_OK)
        return FAIL("tbsCertificate", "not a DER SEQUENCE (truncated, BER or wrong tag)");
    if (!mc_der_cur_empty(&c))
        return FAIL("tbsCertificate", "%zu bytes after the TBSCertificate", c.len);
    return parse_tbs_tlv(&tbs, out, err);
}

mc_err mc_x509_parse_cert(const uint8_t *der, size_t len, mc_x509 *out, mc_errdetail *err)
{
    memset(out, 0, offsetof(mc_x509, ext));
    mc_der_cur c = mc_der_cur_make(der, len);
    mc_der_tlv cert, tbs, alg, sig;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &cert) != MC_OK)
        return FAIL("certificate", "not a DER SEQUENCE (truncated, BER or wrong tag)");
    if (!mc_der_cur_empty(&c))
        return FAIL("certificate", "%zu bytes after the Certificate", c.len);
    mc_der_cur in = mc_der_cur_in(&cert);
    if (mc_der_expect(&in, MC_DER_SEQUENCE, &tbs) != MC_OK)
        return FAIL("tbsCertificate", "tbsCertificate is not a DER SEQUENCE");
    if (mc_der_expect(&in, MC_DER_SEQUENCE, &alg) != MC_OK || !algid_ok(&alg))
        return FAIL("signatureAlgorithm", "signatureAlgorithm is not an AlgorithmIdentifier");
    if (mc_der_expect(&in, MC_DER_BITSTRING, &sig) != MC_OK || !bitstring_ok(&sig) ||
        !mc_der_cur_empty(&in))
        return FAIL("signatureValue", "signatureValue is not a BIT STRING ending the "
                                      "Certificate");
    mc_err e = parse_tbs_tlv(&tbs, out, err);
    if (e != MC_OK)
        return e;
    out->has_outer = 1;
    out->outer_sigalg = alg;
    out->signature = sig;
    return MC_OK;
}

const mc_x509_ext *mc_x509_find_ext(const mc_x509 *x, const uint8_t *oid, size_t oidlen)
{
    for (size_t i = 0; i < x->n_ext; i++)
        if (mc_der_oid_eq(&x->ext[i].oid, oid, oidlen))
            return &x->ext[i];
    return NULL;
}

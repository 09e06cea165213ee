/*
 * The issuing CA certificate, loaded once at start (cold path). OpenSSL parses and checks the
 * certificate; mc_der then locates the subject Name TLV inside the original DER, so the issuer
 * field of every certificate is a byte-for-byte copy (SBR 7.1.4.1) and never a re-encoding.
 * Error fields name the config keys ("ca.certificate", "ca.signature").
 */
#include "mailca/issuer.h"

#include "mailca/der.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISSUER_FILE_MAX (1u << 20)

static const char F_CERT[] = "ca.certificate";
static const char F_SIG[] = "ca.signature";

/* The signature algorithm a CA key signs with unless configured otherwise. */
static mc_sigalg default_sigalg(mc_keytype k)
{
    switch (k) {
    case MC_KEY_RSA:
        return MC_SIG_RSA_PKCS1_SHA256;
    case MC_KEY_P256:
        return MC_SIG_ECDSA_SHA256;
    case MC_KEY_P384:
        return MC_SIG_ECDSA_SHA384;
    case MC_KEY_P521:
        return MC_SIG_ECDSA_SHA512;
    case MC_KEY_ED25519:
        return MC_SIG_ED25519;
    default:
        return MC_SIG_NONE;
    }
}

/* Finds the subject Name and the SPKI AlgorithmIdentifier inside Certificate DER. */
static mc_err locate(const uint8_t *der, size_t len, mc_der_tlv *subject, mc_der_tlv *spki_alg)
{
    mc_der_cur c = mc_der_cur_make(der, len);
    mc_der_tlv cert, tbs, t;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &cert) || !mc_der_cur_empty(&c))
        return MC_ERR_INVALID;
    mc_der_cur cc = mc_der_cur_in(&cert);
    if (mc_der_expect(&cc, MC_DER_SEQUENCE, &tbs))
        return MC_ERR_INVALID;
    mc_der_cur tc = mc_der_cur_in(&tbs);
    mc_der_optional(&tc, MC_DER_CTX_CONS(0), &t);       /* version */
    if (mc_der_expect(&tc, MC_DER_INTEGER, &t) ||       /* serialNumber */
        mc_der_expect(&tc, MC_DER_SEQUENCE, &t) ||      /* signature */
        mc_der_expect(&tc, MC_DER_SEQUENCE, &t) ||      /* issuer */
        mc_der_expect(&tc, MC_DER_SEQUENCE, &t) ||      /* validity */
        mc_der_expect(&tc, MC_DER_SEQUENCE, subject) || /* subject */
        mc_der_expect(&tc, MC_DER_SEQUENCE, &t))        /* subjectPublicKeyInfo */
        return MC_ERR_INVALID;
    mc_der_cur sc = mc_der_cur_in(&t);
    if (mc_der_expect(&sc, MC_DER_SEQUENCE, spki_alg))
        return MC_ERR_INVALID;
    return MC_OK;
}

mc_err mc_issuer_from_der(const uint8_t *der, size_t len, mc_sigalg sigalg, mc_issuer *out,
                          mc_errdetail *err)
{
    mc_err rc = MC_OK;
    X509 *x = NULL;
    ASN1_OCTET_STRING *ski = NULL;
    memset(out, 0, sizeof *out);
    if (!der || len == 0) {
        rc = mc_err_set(err, MC_ERR_INVALID, F_CERT, NULL, "empty issuer certificate");
        goto done;
    }
    out->cert = malloc(len);
    if (!out->cert) {
        rc = mc_err_set(err, MC_ERR_NOMEM, F_CERT, NULL, "out of memory");
        goto done;
    }
    memcpy(out->cert, der, len);
    out->cert_len = len;

    const unsigned char *p = out->cert;
    x = d2i_X509(NULL, &p, (long)len);
    if (!x || p != out->cert + len) {
        rc = mc_err_set(err, MC_ERR_INVALID, F_CERT, "RFC 5280 4.1",
                        "not a single DER certificate (%zu bytes)", len);
        goto done;
    }
    mc_der_tlv subject, spki_alg;
    if (locate(out->cert, len, &subject, &spki_alg) != MC_OK) {
        rc = mc_err_set(err, MC_ERR_INVALID, F_CERT, "RFC 5280 4.1",
                        "certificate is not strict DER");
        goto done;
    }
    /* RFC 5280 4.1.2.6: a CA's subject is a non-empty distinguished name. */
    if (subject.len == 0) {
        rc = mc_err_set(err, MC_ERR_INVALID, F_CERT, "RFC 5280 4.1.2.6",
                        "issuing CA certificate has an empty subject");
        goto done;
    }
    out->name.p = subject.raw;
    out->name.len = subject.rawlen;

    if (X509_check_ca(x) != 1) {
        rc = mc_err_set(err, MC_ERR_INVALID, F_CERT, "RFC 5280 4.2.1.9",
                        "certificate is not a CA certificate (basicConstraints cA)");
        goto done;
    }

    /* SBR 7.1.2.3(g): every certificate's AKI keyIdentifier is the issuer's SKI, so an issuer
     * without one cannot issue compliant certificates. */
    int crit = 0;
    ski = X509_get_ext_d2i(x, NID_subject_key_identifier, &crit, NULL);
    if (!ski) {
        rc = mc_err_set(err, MC_ERR_INVALID, F_CERT, "SBR 7.1.2.3(g)",
                        crit == -2 ? "issuing CA certificate has several subjectKeyIdentifiers"
                                   : "issuing CA certificate has no subjectKeyIdentifier");
        goto done;
    }
    int skilen = ASN1_STRING_length(ski);
    if (skilen <= 0 || (size_t)skilen > sizeof out->ski) {
        rc = mc_err_set(err, MC_ERR_INVALID, F_CERT, "SBR 7.1.2.3(g)",
                        "subjectKeyIdentifier of %d bytes (1..%zu allowed)", skilen,
                        sizeof out->ski);
        goto done;
    }
    memcpy(out->ski, ASN1_STRING_get0_data(ski), (size_t)skilen);
    out->ski_len = (size_t)skilen;

    /* SBR 7.1.3.1: the key must be one of the byte-exact allowed encodings. */
    out->keytype = mc_keytype_from_algid(spki_alg.raw, spki_alg.rawlen);
    if (out->keytype == MC_KEY_NONE) {
        rc = mc_err_set(err, MC_ERR_UNSUPPORTED, F_CERT, "SBR 7.1.3.1",
                        "issuing CA key algorithm is not one of the allowed encodings");
        goto done;
    }
    if (sigalg == MC_SIG_NONE)
        sigalg = default_sigalg(out->keytype);
    if (sigalg == MC_SIG_NONE) {
        rc = mc_err_set(err, MC_ERR_UNSUPPORTED, F_SIG, "SBR 7.1.3.2",
                        "no supported signature algorithm for a %s CA key",
                        mc_keytype_name(out->keytype));
        goto done;
    }
    /* SBR 7.1.3.2: RSA keys take any listed RSA algorithm; an ECDSA curve dictates its hash. */
    if (mc_sigalg_keytype(sigalg) != out->keytype) {
        rc = mc_err_set(err, MC_ERR_CONFIG, F_SIG, "SBR 7.1.3.2",
                        "signature algorithm %s does not fit the %s CA key", mc_sigalg_name(sigalg),
                        mc_keytype_name(out->keytype));
        goto done;
    }
    out->sigalg = sigalg;
done:
    ASN1_OCTET_STRING_free(ski);
    X509_free(x);
    if (rc != MC_OK)
        mc_issuer_free(out);
    return rc;
}

mc_err mc_issuer_load(const char *path, mc_sigalg sigalg, mc_issuer *out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    uint8_t *buf = NULL;
    unsigned char *der = NULL;
    long derlen = 0;
    BIO *bio = NULL;
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = mc_err_set(err, MC_ERR_IO, F_CERT, NULL, "cannot open %s", path);
        goto done;
    }
    buf = malloc(ISSUER_FILE_MAX);
    if (!buf) {
        rc = mc_err_set(err, MC_ERR_NOMEM, F_CERT, NULL, "out of memory");
        goto done;
    }
    size_t n = fread(buf, 1, ISSUER_FILE_MAX, f);
    if (ferror(f) || n == ISSUER_FILE_MAX) {
        rc = mc_err_set(err, MC_ERR_IO, F_CERT, NULL, "cannot read %s (or larger than %u bytes)",
                        path, ISSUER_FILE_MAX);
        goto done;
    }
    if (n >= 11 && memcmp(buf, "-----BEGIN ", 11) == 0) {
        /* PEM: take the decoded bytes themselves, not a re-encoding of a parsed object. */
        bio = BIO_new_mem_buf(buf, (int)n);
        if (!bio || !PEM_bytes_read_bio(&der, &derlen, NULL, PEM_STRING_X509, bio, NULL, NULL)) {
            rc =
                mc_err_set(err, MC_ERR_INVALID, F_CERT, NULL, "%s: no CERTIFICATE PEM block", path);
            goto done;
        }
        rc = mc_issuer_from_der(der, (size_t)derlen, sigalg, out, err);
    } else {
        rc = mc_issuer_from_der(buf, n, sigalg, out, err);
    }
done:
    if (f)
        fclose(f);
    BIO_free(bio);
    OPENSSL_free(der);
    free(buf);
    return rc;
}

void mc_issuer_free(mc_issuer *iss)
{
    if (!iss)
        return;
    free(iss->cert);
    memset(iss, 0, sizeof *iss);
}

/*
 * mc_x509: a zero-allocation parsed view of a Certificate or a TBSCertificate, built with mc_der.
 * Every field is a TLV pointing into the caller's buffer. Used by the linter on the hot path (the
 * exact bytes that will be signed) and by `mailca lint` for certificates made elsewhere.
 */
#ifndef MAILCA_X509_H
#define MAILCA_X509_H

#include "mailca/der.h"
#include "mailca/err.h"

#define MC_X509_EXT_MAX 32

typedef struct mc_x509_ext {
    mc_der_tlv oid;
    int critical;
    int critical_present; /* the BOOLEAN was encoded; with critical == 0 that is DEFAULT FALSE
                             encoded explicitly: not DER (the linter reports it) */
    mc_der_tlv value;     /* contents of the extnValue OCTET STRING (tag/len of inner value) */
} mc_x509_ext;

typedef struct mc_x509 {
    int has_outer;  /* parsed from a Certificate (else from a bare TBSCertificate) */
    mc_der_tlv tbs; /* the TBSCertificate TLV */
    mc_der_tlv outer_sigalg, signature; /* when has_outer */
    int version;                        /* 0 = v1 (absent), 2 = v3 */
    mc_der_tlv serial;
    mc_der_tlv sigalg;
    mc_der_tlv issuer;
    mc_der_tlv not_before, not_after;
    int64_t nb, na; /* parsed times */
    mc_der_tlv subject;
    mc_der_tlv spki, spki_alg, spki_key; /* spki_key: the BIT STRING */
    int has_issuer_uid, has_subject_uid;
    size_t n_ext;
    mc_x509_ext ext[MC_X509_EXT_MAX];
} mc_x509;

/* Parses a TBSCertificate DER. Structural errors (not DER, missing fields, too many extensions,
 * trailing data, malformed Names, an extnValue that is not exactly one DER value) are
 * MC_ERR_INVALID with err naming the field. Content rules (version, serial encoding, time
 * formats, extension contents) are left to the linter. Never allocates. */
mc_err mc_x509_parse_tbs(const uint8_t *der, size_t len, mc_x509 *out, mc_errdetail *err);
/* Parses a whole Certificate DER. */
mc_err mc_x509_parse_cert(const uint8_t *der, size_t len, mc_x509 *out, mc_errdetail *err);

/* Finds an extension by OID contents; NULL when absent (first match). */
const mc_x509_ext *mc_x509_find_ext(const mc_x509 *x, const uint8_t *oid, size_t oidlen);

#endif

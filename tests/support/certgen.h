/*
 * certgen: builds end-entity S/MIME test certificates with the OpenSSL object API and a software
 * CA key (tests only; the product never builds certificates this way, DESIGN.md).
 *
 * cg_build starts from the compliant mailbox-validated Strict certificate mailca profiles
 * produce (P-256 subject key, KU critical digitalSignature, EKU emailProtection, policy
 * 2.23.140.1.5.1.3, http CRL DP, http AIA OCSP + caIssuers, AKI = CA SKI, SKI, SAN rfc822Name,
 * CN = that mailbox, 730 days) and lets a test break exactly one rule: options (key type,
 * generation, validity, serial, mailbox), an edit callback that runs on the X509 before signing
 * (with the cg_ext_* / cg_subject_* helpers), and raw DER edits of the signed TBS (cg_tbs_*)
 * for what OpenSSL will not encode (BER, wrong time types, bad SPKIs...).
 */
#ifndef MAILCA_TEST_CERTGEN_H
#define MAILCA_TEST_CERTGEN_H

#include "mailca/issuer.h"

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* Issuance time used by the baseline: 2026-01-15T00:00:00Z. */
#define CG_NOW 1768435200LL
#define CG_DAY 86400LL
#define CG_MAILBOX "alice@example.com"

/* Non-ASCII test values (UTF-8): a Greek local part, a German IDN domain as U-label and as its
 * A-label. */
#define CG_GREEK "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae"
#define CG_MUENCHEN_U "m\xc3\xbcnchen.example"
#define CG_MUENCHEN_A "xn--mnchen-3ya.example"

/* Extension OIDs (dotted, for the cg_ext_* helpers and cg_case) */
#define CG_OID_SKI "2.5.29.14"
#define CG_OID_KU "2.5.29.15"
#define CG_OID_SAN "2.5.29.17"
#define CG_OID_BC "2.5.29.19"
#define CG_OID_SDA "2.5.29.9"
#define CG_OID_CRLDP "2.5.29.31"
#define CG_OID_POLICIES "2.5.29.32"
#define CG_OID_AKI "2.5.29.35"
#define CG_OID_EKU "2.5.29.37"
#define CG_OID_AIA "1.3.6.1.5.5.7.1.1"
#define CG_OID_QCS "1.3.6.1.5.5.7.1.3"
#define CG_OID_SMIMECAP "1.2.840.113549.1.9.15"
#define CG_OID_ADOBE_TS "1.2.840.113583.1.1.9.1"
#define CG_OID_LEI "1.3.6.1.4.1.52266.1"
#define CG_OID_LEI_ROLE "1.3.6.1.4.1.52266.2"

typedef enum cg_key {
    CG_KEY_P256 = 0,
    CG_KEY_P384,
    CG_KEY_RSA2048,
    CG_KEY_ED25519,
    CG_KEY_ED448,
} cg_key;
#define CG_KEY_COUNT_ 5 /* number of key kinds */

typedef struct cg_opts {
    int type;                         /* mc_certtype of the policy OID (default MC_TYPE_MAILBOX) */
    int generation;                   /* mc_generation of the policy OID (default MC_GEN_STRICT) */
    cg_key key;                       /* subject key (default P-256) */
    const char *mailbox;              /* SAN rfc822Name and CN (default CG_MAILBOX) */
    int64_t not_before;               /* default CG_NOW */
    int64_t validity;                 /* notAfter - notBefore in seconds (default 730 days - 1 s) */
    uint8_t serial[32];               /* big-endian magnitude */
    size_t serial_len;                /* default 16 bytes, top bit clear */
    void (*edit)(X509 *x, void *arg); /* runs after the baseline is built, before signing */
    void *arg;
} cg_opts;

typedef struct cg_cert {
    uint8_t *der; /* the signed Certificate (malloc'd; cg_cert_free) */
    size_t len;
    uint8_t *tbs; /* the TBSCertificate bytes as signed (malloc'd) */
    size_t tbs_len;
} cg_cert;

void cg_opts_default(cg_opts *o);
/* Builds and signs; 0 on success. Free with cg_cert_free. */
int cg_build(const cg_opts *o, cg_cert *out);
void cg_cert_free(cg_cert *c);

/* The test CA as the linter sees it (name, SKI, ECDSA-SHA256). Process-lifetime static. */
const mc_issuer *cg_issuer(void);

/* ---- edits on the X509 (for cg_opts.edit); oid is dotted; 0 on success ---- */
/* Removes every extension with this OID. */
int cg_ext_remove(X509 *x, const char *oid);
/* Replaces the first extension with this OID by a raw value (or appends when absent). */
int cg_ext_set_raw(X509 *x, const char *oid, int critical, const uint8_t *der, size_t len);
/* Appends a raw extension even when one with this OID exists (duplicates). */
int cg_ext_add_raw(X509 *x, const char *oid, int critical, const uint8_t *der, size_t len);
/* Replaces (or appends) an extension built from an OpenSSL config value, e.g.
 * ("keyUsage", "critical,digitalSignature") or ("subjectAltName", "email:a@b.example"). */
int cg_ext_conf(X509 *x, const char *name, const char *value);
int cg_ext_set_critical(X509 *x, const char *oid, int critical);
/* Replaces (or appends) the SAN, non-critical, with exactly these bytes (OpenSSL's config
 * syntax refuses non-ASCII rfc822Names and re-encodes otherName UTF-8 as Latin-1): one
 * rfc822Name, then one SmtpUTF8Mailbox otherName; NULL leaves either out. */
int cg_ext_san(X509 *x, const char *rfc822, const char *utf8);
/* Empties the subject Name. */
int cg_subject_clear(X509 *x);
/* Appends one attribute (own RDN) with exactly this ASN.1 string type and bytes. */
int cg_subject_add(X509 *x, const char *oid, int asn1_type, const void *val, size_t len);
/* Empties the subject, then appends one commonName UTF8String with these bytes. */
int cg_subject_cn(X509 *x, const char *cn);
/* Appends the attributes of a "K=v;K=v" spec (K: C ST L STREET PC O OU OI T SN GN P SER CN;
 * countryName and serialNumber as PrintableString, the others UTF8String); a leading '!'
 * empties the subject first. 0, or -1 for an unknown key, a malformed spec or an OpenSSL
 * failure. */
int cg_subject_apply(X509 *x, const char *spec);

/* ---- ready-made edits shared by the lint tests (for cg_case.edit; an edit that fails leaves
 * the baseline, which the lint result then shows) ---- */
/* SAN rfc822Name and CN alice@ CG_MUENCHEN_U (a U-label domain). */
void cg_edit_rfc822_ulabel(X509 *x);
/* SAN rfc822Name CG_MAILBOX + SmtpUTF8Mailbox CG_GREEK "@" CG_MUENCHEN_U (U-label domain). */
void cg_edit_smtputf8_ulabel(X509 *x);
/* SAN rfc822Name CG_MAILBOX + SmtpUTF8Mailbox bob@example.com (an all-ASCII local part). */
void cg_edit_smtputf8_ascii(X509 *x);

/* ---- raw DER edits of a TBSCertificate (elements: 0 version, 1 serial, 2 signature,
 * 3 issuer, 4 validity, 5 subject, 6 spki, 7 extensions) ---- */
/* Replaces element idx with elem (elem == NULL: removes it). Returns the new length, 0 on error. */
size_t cg_tbs_replace(const uint8_t *tbs, size_t len, int idx, const uint8_t *elem, size_t elen,
                      uint8_t *out, size_t cap);
/* Inserts elem before element idx (idx == count: appends). */
size_t cg_tbs_insert(const uint8_t *tbs, size_t len, int idx, const uint8_t *elem, size_t elen,
                     uint8_t *out, size_t cap);
/* Appends one raw Extension TLV to the extensions of the TBS. */
size_t cg_tbs_add_ext(const uint8_t *tbs, size_t len, const uint8_t *ext, size_t elen, uint8_t *out,
                      size_t cap);
/* cg_tbs_replace with elem given in hex (cg_hex); 0 on bad hex or error. */
size_t cg_tbs_replace_hex(const uint8_t *tbs, size_t len, int idx, const char *hex, uint8_t *out,
                          size_t cap);
/* A raw edit: writes the edited TBS to out, returns its length (0 on error). */
typedef size_t (*cg_tbs_fn)(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap);
/* Ready-made cg_tbs_fn edits: the serial INTEGER with a needless leading 00 octet (not minimal
 * DER); the validity 2026-01-15 .. 2028-01-14 as GeneralizedTime (RFC 5280 4.1.2.5: UTCTime
 * until 2049); a subjectUniqueID [2] inserted before the extensions. */
size_t cg_tbs_serial_padded(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap);
size_t cg_tbs_time_generalized(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap);
size_t cg_tbs_unique_id(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap);
/* Certificate ::= SEQUENCE { tbs, alg, BIT STRING sig } from raw parts (alg and sig are TLVs). */
size_t cg_cert_assemble(const uint8_t *tbs, size_t tbs_len, const uint8_t *alg, size_t alg_len,
                        const uint8_t *sig, size_t sig_len, uint8_t *out, size_t cap);

/* Hex ("30 0a 06 ...", spaces ignored) to bytes; returns length, 0 on bad input. */
size_t cg_hex(const char *hex, uint8_t *out, size_t cap);

/* ---- test cases: what a case changes in the baseline (tests/test_lint.c,
 * tests/test_it_lintcorpus.c); a zero field keeps the baseline ---- */
#define CG_CASE_FIELDS                                                                             \
    int type;                           /* cg_opts.type */                                         \
    int gen;                            /* cg_opts.generation */                                   \
    cg_key key;                         /* cg_opts.key */                                          \
    int64_t validity;                   /* cg_opts.validity */                                     \
    const char *mailbox;                /* cg_opts.mailbox */                                      \
    const char *serial_hex;             /* cg_opts.serial, in hex */                               \
    const char *del;                    /* extension to remove */                                  \
    const char *raw_oid, *raw_hex;      /* extension to set to a raw value */                      \
    int raw_crit, raw_add;              /* critical; append as a duplicate */                      \
    const char *conf_name, *conf_value; /* extension to set from OpenSSL config syntax */          \
    const char *crit_oid;               /* extension to mark critical */                           \
    int uncrit;                         /* ... or non-critical */                                  \
    void (*edit)(X509 * x);             /* after the extension edits */                            \
    const char *subj; /* "K=v;K=v" appended to the subject ("!" first: cleared), last */
typedef struct cg_case {
    CG_CASE_FIELDS
} cg_case;
/* In a test's own case struct: the fields by name (.key = ..., c->key) and as one cg_case (c->cg),
 * so that its tables stay as they are. */
#define CG_CASE_MEMBERS                                                                            \
    union {                                                                                        \
        struct {                                                                                   \
            CG_CASE_FIELDS                                                                         \
        };                                                                                         \
        cg_case cg;                                                                                \
    }

/* Builds and signs c's certificate: cg_opts_default with c's options, then on the X509 c's
 * edits in the order of its fields (del, raw, conf, crit_oid/uncrit, edit, subj). 0, or -1 when
 * an option or an edit does not apply or the build fails (nothing to free). Free with
 * cg_cert_free. */
int cg_case_build(const cg_case *c, cg_cert *out);

#endif

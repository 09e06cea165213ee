/*
 * The pre-issuance linter: checks a parsed (TBS)Certificate against the S/MIME Baseline
 * Requirements for subscriber certificates and the RFC 5280 rules they import (SBR 7.1.2.4).
 * Each rule is one entry of the table below (id, severity, section, effective date); the checks
 * walk the DER with mc_der and write findings into the caller's result, never allocating, so the
 * worker can lint every TBS on the hot path.
 *
 * Certificate type and generation come from the profile when one is given, else from the
 * certificate's reserved CABF policy OID 2.23.140.1.5.T.G (SBR 7.1.6.1); with neither, the
 * strictest reading (mailbox-validated Strict) applies.
 */
#include "mailca/lint.h"

#include "mailca/order.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define T_RFC5280 1209600000LL /* 2008-05-01, as zlint dates RFC 5280 */
#define T_SBR 1693526400LL     /* 2023-09-01, SBR 1.0.0 effective */
#define T_LEGACY 1752537600LL  /* 2025-07-15, SBR 7.1.6.1 Legacy sunset */
#define T_EUID 1747180800LL    /* 2025-05-14, SBR 1.0.9 (SMC011): EUID as NTR reference */
#define DAY 86400LL

enum {
    L_DER,
    L_VERSION,
    L_UNIQUE_ID,
    L_SERIAL_NOT_POSITIVE,
    L_SERIAL_TOO_LONG,
    L_SERIAL_NOT_MINIMAL,
    W_SERIAL_SHORT,
    L_TIME_FORMAT,
    L_TIME_TYPE,
    L_VALIDITY_NEGATIVE,
    L_VALIDITY_TOO_LONG,
    W_VALIDITY_MAX,
    L_SPKI_ALGID,
    L_SPKI_KEY,
    L_RSA_MODULUS,
    L_RSA_EXPONENT,
    L_EC_POINT,
    L_SIGALG,
    L_SIGALG_OUTER,
    L_SIGALG_ISSUER,
    L_ISSUER_NAME,
    L_EXT_DUP,
    L_EXT_CRIT_FALSE,
    L_EXT_MALFORMED,
    L_EXT_UNKNOWN,
    L_EXT_PROHIBITED,
    L_EXT_CRITICAL,
    L_POL_MISSING,
    W_POL_CRITICAL,
    L_POL_COUNT,
    L_POL_ANY,
    L_POL_CPS,
    L_UNOTICE_REF,
    L_UNOTICE_NO_TEXT,
    L_UNOTICE_TEXT,
    L_POL_PROFILE,
    L_LEGACY,
    L_CRLDP_MISSING,
    W_CRLDP_CRITICAL,
    L_CRLDP_NO_URI,
    L_CRLDP_NOT_HTTP,
    W_AIA_MISSING,
    L_AIA_CRITICAL,
    L_AIA_NOT_HTTP,
    W_AIA_CA_ISSUERS,
    L_BC_CA,
    L_BC_PATHLEN,
    L_KU_MISSING,
    W_KU_NOT_CRITICAL,
    L_KU_EMPTY,
    L_KU_ENC_DEC,
    L_KU_BITS,
    L_EKU_MISSING,
    L_EKU_NO_EMAIL,
    L_EKU_PROHIBITED,
    L_EKU_STRICT,
    L_AKI_MISSING,
    L_AKI_CRITICAL,
    L_AKI_NO_KEYID,
    L_AKI_ISSUER_SERIAL,
    L_AKI_MISMATCH,
    L_SAN_MISSING,
    L_SAN_NO_MAILBOX,
    L_SAN_PROHIBITED,
    L_SAN_OTHERNAME_STRICT,
    L_SAN_NOT_CRITICAL,
    W_SAN_CRITICAL,
    L_SAN_RFC822,
    L_SAN_UTF8_SYNTAX,
    L_SAN_UTF8_ASCII,
    L_SAN_ULABEL,
    L_SAN_ALABEL,
    L_SKI_CRITICAL,
    W_SKI_MISSING,
    L_SMIMECAP_CRITICAL,
    L_SUBJ_PROHIBITED,
    L_SUBJ_CN,
    L_SUBJ_EMAIL,
    L_SUBJ_LENGTH,
    L_SUBJ_ENCODING,
    L_SUBJ_PLACEHOLDER,
    L_SUBJ_REQUIRED,
    L_SUBJ_NAME_MISSING,
    L_SUBJ_PSEUDO_MIX,
    L_CN_VALUE,
    L_CN_PSEUDO,
    L_ORGID_FORMAT,
    L_ORGID_COUNTRY,
    L_STREET_DEP,
    L_ADDR_COUNTRY,
    L_COUNTRY,
    L_LEI_FORMAT,
    L_LEI_ROLE_FORMAT,
    L_QCS_MALFORMED,
    L_QCS_TYPE,
    /* found by comparing with pkilint's S/MIME corpus (issue 3) */
    L_NAME_MAILBOX,
    W_ORGID_EUID,
    /* RFC 5280 rules zlint applies to every certificate (its rfc lints), compared in round 3 */
    L_ISSUER_EMPTY,
    L_POL_DUP,
    /* found in review: an empty Name in a SAN directoryName (zlint's e_ext_san_empty_name looks
     * only for GeneralNames of no content octets, which mailca reports as malformed) */
    L_SAN_DIRNAME_EMPTY,
    /* found by running pkilint and zlint on mailca's certificates (issue 3): the demo CA's URLs
     * under .test passed mailca's lint */
    W_URI_RESERVED,
    /* found by running pkilint's ETSI linter on mailca's qualified certificates (issue 3) */
    L_QCS_NATURAL_SN,
    /* found by zlint's e_key_usage_and_extended_key_usage_inconsistent (issue 3, round 3):
     * RSA key-management certificates of multipurpose profiles carried clientAuth */
    W_EKU_KU_INCONSISTENT,
    /* RFC 6818 3 (audit s12 D2): a VisibleString or BMPString explicitText is a SHOULD, not a
     * MUST NOT; split from L_UNOTICE_TEXT */
    W_UNOTICE_NOT_UTF8,
    /* SBR 7.1 (audit s12 D1): a serial this small does not contain 64 bits of CSPRNG output,
     * beyond reasonable doubt; W_SERIAL_SHORT keeps the merely unlikely lengths */
    L_SERIAL_SMALL,
    L_COUNT
};

/* The lint set that added a lint (mc_lint_def.since); untagged lints are the base set. */
#define S_2026_11_3 "mailca-lints-2026.11.3"
#define S_2026_11_4 "mailca-lints-2026.11.4"
#define S_2026_11_5 "mailca-lints-2026.11.5"
#define S_2026_11_24 "mailca-lints-2026.11.24"
#define S_2026_11_24_2 "mailca-lints-2026.11.24.2"
#define S_2026_11_24_3 "mailca-lints-2026.11.24.3"
#define S_2026_11_24_4 "mailca-lints-2026.11.24.4"
#define S_2026_11_24_5 "mailca-lints-2026.11.24.5"
#define S_2026_11_24_6 "mailca-lints-2026.11.24.6"
#define E MC_LINT_ERROR
#define W MC_LINT_WARNING

static const mc_lint_def defs[L_COUNT] = {
    [L_DER] = {"e_cert_der_invalid", E, "RFC 5280 4.1", T_RFC5280,
               "The (TBS)Certificate is not strict DER of the RFC 5280 structure"},
    [L_VERSION] = {"e_cert_version_not_v3", E, "SBR 7.1.1", T_SBR, "Version must be v3"},
    [L_UNIQUE_ID] = {"e_cert_unique_identifier_present", E, "RFC 5280 4.1.2.8", T_RFC5280,
                     "issuerUniqueID/subjectUniqueID must not be present"},
    [L_SERIAL_NOT_POSITIVE] = {"e_serial_number_not_positive", E, "SBR 7.1", T_SBR,
                               "Serial number must be positive and non-zero"},
    [L_SERIAL_TOO_LONG] = {"e_serial_number_longer_than_20_octets", E, "RFC 5280 4.1.2.2",
                           T_RFC5280, "Serial number must fit 20 octets"},
    [L_SERIAL_NOT_MINIMAL] = {"e_serial_number_not_minimal_der", E, "X.690 8.3.2", T_RFC5280,
                              "Serial number INTEGER must be minimally encoded"},
    /* SBR 7.1: "CAs SHALL generate non-sequential Certificate serial numbers greater than zero
     * (0) and less than 2^159 containing at least 64 bits of output from a CSPRNG". The rule
     * is about how the serial was made; its value proves nothing, it only makes a process
     * unlikely. 64 CSPRNG bits taken as a number fit 7 octets of positive DER (below 2^55)
     * once in 512 draws, so a short serial is a warning (as zlint's
     * w_serial_number_low_entropy); below 2^32 only once in 2^32 draws: an error,
     * e_serial_number_too_short. */
    [W_SERIAL_SHORT] = {"w_serial_number_low_entropy", W, "SBR 7.1", T_SBR,
                        "Serial number shorter than 8 octets (and not below 2^32): 64 bits of "
                        "CSPRNG output encode that short only when their top bits drew zeros"},
    [L_SERIAL_SMALL] = {"e_serial_number_too_short", E, "SBR 7.1", T_SBR,
                        "Serial number below 2^32 (4 octets of value or fewer): one containing 64 "
                        "bits of CSPRNG output is that small with probability at most 2^-32",
                        S_2026_11_24_6},
    [L_TIME_FORMAT] = {"e_validity_time_format", E, "RFC 5280 4.1.2.5.1", T_RFC5280,
                       "Validity times must be valid dates with seconds, ending in Z"},
    [L_TIME_TYPE] = {"e_validity_time_wrong_type", E, "RFC 5280 4.1.2.5", T_RFC5280,
                     "UTCTime through 2049, GeneralizedTime from 2050"},
    [L_VALIDITY_NEGATIVE] = {"e_validity_not_after_before_not_before", E, "RFC 5280 4.1.2.5",
                             T_RFC5280, "notAfter must not precede notBefore"},
    [L_VALIDITY_TOO_LONG] = {"e_smime_validity_too_long", E, "SBR 6.3.2", T_SBR,
                             "Validity over 825 days (Strict/MP) or 1185 days (Legacy)"},
    [W_VALIDITY_MAX] = {"w_smime_validity_at_maximum", W, "SBR 6.3.2", T_SBR,
                        "Validity equals the maximum allowed"},
    [L_SPKI_ALGID] = {"e_smime_spki_algorithm_encoding", E, "SBR 7.1.3.1", T_SBR,
                      "SPKI AlgorithmIdentifier must be one of the allowed DER encodings"},
    /* the subjectPublicKey's encoding: RFC 3279 2.3.1 (the DER RSAPublicKey is the BIT STRING's
     * value), RFC 5480 2.2 (the ECPoint octets are), RFC 8410 4 (the raw EdDSA key is) */
    [L_SPKI_KEY] = {"e_spki_key_malformed", E, "RFC 3279 2.3.1, RFC 5480 2.2, RFC 8410 4", T_SBR,
                    "subjectPublicKey is not a well-formed key of its algorithm"},
    [L_RSA_MODULUS] = {"e_smime_rsa_modulus_size", E, "SBR 6.1.5", T_SBR,
                       "RSA modulus must be at least 2048 bits and a multiple of 8"},
    [L_RSA_EXPONENT] = {"e_smime_rsa_exponent", E, "SBR 6.1.6", T_SBR,
                        "RSA public exponent must be odd and at least 3"},
    /* SBR 6.1.5: "a valid point on the NIST P-256, NIST P-384, or NIST P-521 elliptic curve",
     * "on the curve25519 or curve448 elliptic curve"; RFC 5480 2.2 for the ECPoint octets (04:
     * uncompressed; the compressed forms it allows are refused by mailca policy) */
    [L_EC_POINT] = {"e_smime_ec_point_invalid", E, "SBR 6.1.5, RFC 5480 2.2", T_SBR,
                    "The public key must be a point on its curve: ECDSA an uncompressed point "
                    "(04 || X || Y) of P-256, P-384 or P-521, EdDSA an RFC 8032 encoding of a "
                    "point of curve25519 or curve448"},
    [L_SIGALG] = {"e_smime_signature_algorithm_encoding", E, "SBR 7.1.3.2", T_SBR,
                  "TBS signature AlgorithmIdentifier must be one of the allowed DER encodings"},
    [L_SIGALG_OUTER] = {"e_signature_algorithm_mismatch", E, "RFC 5280 4.1.1.2", T_RFC5280,
                        "signatureAlgorithm must equal tbsCertificate.signature"},
    [L_SIGALG_ISSUER] = {"e_smime_signature_algorithm_not_issuer", E, "SBR 7.1.3.2", T_SBR,
                         "TBS signature algorithm must be the issuing CA's"},
    [L_ISSUER_NAME] = {"e_smime_issuer_name_mismatch", E, "SBR 7.1.4.1", T_SBR,
                       "Issuer must be byte for byte the issuing CA's subject"},
    [L_EXT_DUP] = {"e_ext_duplicate", E, "RFC 5280 4.2", T_RFC5280,
                   "An extension must not appear more than once"},
    [L_EXT_CRIT_FALSE] = {"e_ext_critical_false_encoded", E, "X.690 11.5", T_RFC5280,
                          "critical FALSE (the DEFAULT) must be omitted in DER"},
    [L_EXT_MALFORMED] = {"e_ext_value_malformed", E, "RFC 5280 4.2", T_RFC5280,
                         "Extension value does not decode as its ASN.1 type"},
    [L_EXT_UNKNOWN] = {"e_smime_ext_not_allowed", E, "SBR 7.1.2.4", T_SBR,
                       "Extension not listed in SBR 7.1.2.3"},
    [L_EXT_PROHIBITED] = {"e_smime_ext_prohibited_for_profile", E, "SBR 7.1.2.3(j)(l)(m)", T_SBR,
                          "Extension prohibited for this type or generation"},
    [L_EXT_CRITICAL] = {"e_smime_ext_critical", E, "SBR 7.1.2.3(j)(k)(l)(m)", T_SBR,
                        "subjectDirectoryAttributes/qcStatements/LEI/Adobe must not be critical"},
    [L_POL_MISSING] = {"e_smime_certificate_policies_missing", E, "SBR 7.1.2.3(a)", T_SBR,
                       "certificatePolicies must be present"},
    [W_POL_CRITICAL] = {"w_smime_certificate_policies_critical", W, "SBR 7.1.2.3(a)", T_SBR,
                        "certificatePolicies should not be critical"},
    [L_POL_COUNT] = {"e_smime_exactly_one_reserved_policy", E, "SBR 7.1.2.3(a)", T_SBR,
                     "Exactly one reserved S/MIME policy OID must be present"},
    /* No text bars anyPolicy from a subscriber certificate (SBR 7.1.6.3 bars it only for
     * non-affiliated subordinate CAs): (a) allows the reserved OID and "identifiers documented
     * by the CA in its CP and/or CPS", and 7.1.2.4 bars data not specified there. mailca reads
     * anyPolicy as neither, as pkilint does. */
    [L_POL_ANY] = {"e_smime_any_policy_present", E, "SBR 7.1.2.3(a), 7.1.2.4 (interpretation)",
                   T_SBR, "anyPolicy must not be present in a subscriber certificate"},
    [L_POL_CPS] = {"e_smime_cps_uri_not_http", E, "SBR 7.1.2.3(a)", T_SBR,
                   "id-qt-cps qualifier must be an HTTP or HTTPS URL"},
    [L_UNOTICE_REF] = {"e_smime_user_notice_has_notice_ref", E, "SBR 7.1.2.3(a)", T_SBR,
                       "userNotice must not contain noticeRef"},
    [L_UNOTICE_NO_TEXT] = {"e_smime_user_notice_no_explicit_text", E, "SBR 7.1.2.3(a)", T_SBR,
                           "userNotice must contain explicitText"},
    /* RFC 6818 3 replaces RFC 5280 4.2.1.4's paragraph on explicitText: "Conforming CAs SHOULD
     * use the UTF8String encoding for explicitText. VisibleString or BMPString are acceptable
     * but less preferred alternatives. Conforming CAs MUST NOT encode explicitText as
     * IA5String." The 200 characters: "The explicitText field is a string with a maximum size
     * of 200 characters" (and DisplayText's SIZE (1..200)). */
    [L_UNOTICE_TEXT] = {"e_explicit_text_encoding", E, "RFC 6818 3", T_RFC5280,
                        "explicitText must not be an IA5String, and must be a valid UTF8String, "
                        "VisibleString or BMPString of at most 200 characters"},
    [W_UNOTICE_NOT_UTF8] = {"w_explicit_text_not_utf8", W, "RFC 6818 3", T_RFC5280,
                            "explicitText should be a UTF8String (VisibleString and BMPString are "
                            "acceptable but less preferred)",
                            S_2026_11_24_6},
    [L_POL_PROFILE] = {"e_smime_policy_not_profile", E, "SBR 7.1.6.1", T_SBR,
                       "Reserved policy OID does not match the profile's type and generation"},
    [L_LEGACY] = {"e_smime_legacy_generation_prohibited", E, "SBR 7.1.6.1", T_LEGACY,
                  "Legacy generation certificates are not issued from 2025-07-15"},
    [L_CRLDP_MISSING] = {"e_smime_crldp_missing", E, "SBR 7.1.2.3(b)", T_SBR,
                         "cRLDistributionPoints must be present"},
    [W_CRLDP_CRITICAL] = {"w_smime_crldp_critical", W, "SBR 7.1.2.3(b)", T_SBR,
                          "cRLDistributionPoints should not be critical"},
    [L_CRLDP_NO_URI] = {"e_smime_crldp_no_fullname_uri", E, "SBR 7.1.2.3(b)", T_SBR,
                        "A distributionPoint must have a fullName URI"},
    [L_CRLDP_NOT_HTTP] = {"e_smime_crldp_uri_not_http", E, "SBR 7.1.2.3(b)", T_SBR,
                          "CRL URIs must be http (every one in Strict/MP)"},
    /* mailca policy: (a)(b)(c) require http(s) URLs but say nothing of special-use domains, and
     * RFC 6761 puts no requirement on certificates; a warning, never an error */
    [W_URI_RESERVED] = {"w_smime_uri_host_reserved", W, "mailca policy (RFC 6761)", T_SBR,
                        "CRL, OCSP, caIssuers and CPS URLs should name a host relying parties "
                        "can reach: not one under a special-use top-level domain",
                        S_2026_11_24_3},
    [L_QCS_NATURAL_SN] = {"e_qc_natural_serial_number_format", E, "ETSI EN 319 412-1 5.1.3", T_SBR,
                          "With semanticsId-Natural, a subject serialNumber must read "
                          "<type><country>-<identifier>: PAS, IDC, PNO, TAX, TIN or a national "
                          "\"xx:\" type, then an ISO 3166 code",
                          S_2026_11_24_4},
    [W_EKU_KU_INCONSISTENT] = {"w_eku_key_usage_inconsistent", W, "RFC 5280 4.2.1.12", T_RFC5280,
                               "Each key purpose should be one the keyUsage allows: "
                               "emailProtection needs digitalSignature, nonRepudiation, "
                               "keyEncipherment or keyAgreement; clientAuth digitalSignature or "
                               "keyAgreement",
                               S_2026_11_24_5},
    [W_AIA_MISSING] = {"w_smime_aia_missing", W, "SBR 7.1.2.3(c)", T_SBR,
                       "authorityInformationAccess should be present"},
    [L_AIA_CRITICAL] = {"e_smime_aia_critical", E, "SBR 7.1.2.3(c)", T_SBR,
                        "authorityInformationAccess must not be critical"},
    [L_AIA_NOT_HTTP] = {"e_smime_aia_location_not_http", E, "SBR 7.1.2.3(c)", T_SBR,
                        "OCSP/caIssuers locations must be http URIs (every one in Strict/MP)"},
    [W_AIA_CA_ISSUERS] = {"w_smime_aia_ca_issuers_missing", W, "SBR 7.1.2.3(c)", T_SBR,
                          "authorityInformationAccess should contain caIssuers"},
    [L_BC_CA] = {"e_smime_basic_constraints_ca", E, "SBR 7.1.2.3(d)", T_SBR,
                 "basicConstraints cA must not be true"},
    [L_BC_PATHLEN] = {"e_smime_basic_constraints_path_len", E, "SBR 7.1.2.3(d)", T_SBR,
                      "basicConstraints must not contain pathLenConstraint"},
    [L_KU_MISSING] = {"e_smime_key_usage_missing", E, "SBR 7.1.2.3(e)", T_SBR,
                      "keyUsage must be present"},
    [W_KU_NOT_CRITICAL] = {"w_smime_key_usage_not_critical", W, "SBR 7.1.2.3(e)", T_SBR,
                           "keyUsage should be critical"},
    [L_KU_EMPTY] = {"e_key_usage_no_bits", E, "RFC 5280 4.2.1.3", T_RFC5280,
                    "keyUsage must have at least one bit set"},
    [L_KU_ENC_DEC] = {"e_smime_key_usage_encipher_and_decipher_only", E, "SBR 7.1.2.3(e)", T_SBR,
                      "encipherOnly and decipherOnly must not both be set"},
    [L_KU_BITS] = {"e_smime_key_usage_bits", E, "SBR 7.1.2.3(e)", T_SBR,
                   "keyUsage bits must form an allowed mode for the key type and generation"},
    [L_EKU_MISSING] = {"e_smime_eku_missing", E, "SBR 7.1.2.3(f)", T_SBR,
                       "extKeyUsage must be present"},
    [L_EKU_NO_EMAIL] = {"e_smime_eku_email_protection_missing", E, "SBR 7.1.2.3(f)", T_SBR,
                        "extKeyUsage must contain id-kp-emailProtection"},
    [L_EKU_PROHIBITED] = {"e_smime_eku_prohibited", E, "SBR 7.1.2.3(f)", T_SBR,
                          "serverAuth, codeSigning, timeStamping, anyExtendedKeyUsage barred"},
    [L_EKU_STRICT] = {"e_smime_eku_strict_other_purpose", E, "SBR 7.1.2.3(f)", T_SBR,
                      "Strict: extKeyUsage must contain only id-kp-emailProtection"},
    [L_AKI_MISSING] = {"e_smime_aki_missing", E, "SBR 7.1.2.3(g)", T_SBR,
                       "authorityKeyIdentifier must be present"},
    [L_AKI_CRITICAL] = {"e_smime_aki_critical", E, "SBR 7.1.2.3(g)", T_SBR,
                        "authorityKeyIdentifier must not be critical"},
    [L_AKI_NO_KEYID] = {"e_smime_aki_key_identifier_missing", E, "SBR 7.1.2.3(g)", T_SBR,
                        "authorityKeyIdentifier must contain keyIdentifier"},
    [L_AKI_ISSUER_SERIAL] = {"e_smime_aki_issuer_serial_present", E, "SBR 7.1.2.3(g)", T_SBR,
                             "authorityCertIssuer/SerialNumber must not be present"},
    /* (g) only asks for keyIdentifier; that it is the issuer's SKI is RFC 5280 4.2.1.2 ("the
     * value of the subject key identifier MUST be the value placed in the key identifier field
     * of the authority key identifier extension ... of certificates issued by the subject of this
     * certificate"), which SBR 7.1.2.4 applies */
    [L_AKI_MISMATCH] = {"e_smime_aki_not_issuer_ski", E, "RFC 5280 4.2.1.2 (SBR 7.1.2.4)", T_SBR,
                        "AKI keyIdentifier must equal the issuing CA's SKI"},
    [L_SAN_MISSING] = {"e_smime_san_missing", E, "SBR 7.1.2.3(h)", T_SBR,
                       "subjectAltName must be present"},
    [L_SAN_NO_MAILBOX] = {"e_smime_san_no_mailbox", E, "SBR 7.1.4.2.1", T_SBR,
                          "SAN must contain an rfc822Name or SmtpUTF8Mailbox"},
    [L_SAN_PROHIBITED] = {"e_smime_san_prohibited_name_type", E, "SBR 7.1.4.2.1", T_SBR,
                          "SAN must not contain dNSName, iPAddress, URI, registeredID, "
                          "x400Address or ediPartyName"},
    [L_SAN_OTHERNAME_STRICT] = {"e_smime_san_strict_other_name", E, "SBR 7.1.4.2.1", T_SBR,
                                "Strict: the only otherName allowed is SmtpUTF8Mailbox"},
    [L_SAN_NOT_CRITICAL] = {"e_san_not_critical_subject_empty", E, "RFC 5280 4.2.1.6", T_RFC5280,
                            "SAN must be critical when the subject is empty"},
    [W_SAN_CRITICAL] = {"w_smime_san_critical", W, "SBR 7.1.2.3(h)", T_SBR,
                        "SAN should not be critical when the subject is not empty"},
    [L_SAN_RFC822] = {"e_smime_san_rfc822_name_syntax", E, "SBR 7.1.4.2.1", T_SBR,
                      "rfc822Name must be an ASCII RFC 5321 mailbox"},
    [L_SAN_UTF8_SYNTAX] = {"e_smime_san_smtputf8_mailbox_syntax", E, "RFC 9598 3", T_SBR,
                           "SmtpUTF8Mailbox must be a UTF8String mailbox with a lowercase "
                           "A-label domain"},
    [L_SAN_UTF8_ASCII] = {"e_smime_san_smtputf8_mailbox_ascii_local_part", E, "RFC 9598 3", T_SBR,
                          "SmtpUTF8Mailbox only for non-ASCII local parts"},
    [L_SAN_ULABEL] = {"e_smime_san_mailbox_domain_u_label", E, "SBR 7.1.4.2.1", T_SBR,
                      "a mailbox domain must be ASCII: IDN labels as A-labels (RFC 9598 3)",
                      S_2026_11_3},
    [L_SAN_ALABEL] = {"e_smime_san_mailbox_domain_a_label_invalid", E, "SBR 7.1.4.2.1", T_SBR,
                      "an xn-- label of a mailbox domain must be a valid A-label (IDNA2008, "
                      "RFC 5891 5.4)",
                      S_2026_11_3},
    [L_SKI_CRITICAL] = {"e_smime_ski_critical", E, "SBR 7.1.2.3(n)", T_SBR,
                        "subjectKeyIdentifier must not be critical"},
    [W_SKI_MISSING] = {"w_smime_ski_missing", W, "SBR 7.1.2.3(n)", T_SBR,
                       "subjectKeyIdentifier should be present"},
    [L_SMIMECAP_CRITICAL] = {"e_smime_capabilities_critical", E, "SBR 7.1.2.3(i)", T_SBR,
                             "smimeCapabilities must not be critical"},
    [L_SUBJ_PROHIBITED] = {"e_smime_subject_attribute_prohibited", E, "SBR 7.1.4.2.3-6", T_SBR,
                           "Subject attribute not allowed for the type and generation"},
    [L_SUBJ_CN] = {"e_smime_mailbox_cn_not_in_san", E, "SBR 7.1.4.2.2(a)", T_SBR,
                   "Mailbox-validated: commonName must be a mailbox present in the SAN"},
    [L_SUBJ_EMAIL] = {"e_smime_email_address_not_in_san", E, "SBR 7.1.4.2.2(h)", T_SBR,
                      "emailAddress must be one mailbox that is present in the SAN"},
    [L_SUBJ_LENGTH] = {"e_subject_attribute_too_long", E, "RFC 5280 App. A", T_RFC5280,
                       "Subject attribute exceeds its upper bound"},
    [L_SUBJ_ENCODING] = {"e_subject_attribute_encoding", E, "SBR 7.1.4", T_SBR,
                         "Subject attribute string type or contents not allowed"},
    [L_SUBJ_PLACEHOLDER] = {"e_smime_subject_placeholder_value", E, "SBR 7.1.4.2", T_SBR,
                            "Subject attribute holds only a placeholder"},
    [L_SUBJ_REQUIRED] = {"e_smime_subject_attribute_required", E, "SBR 7.1.4.2.4-5", T_SBR,
                         "Organization/sponsor: organizationName and organizationIdentifier"},
    [L_SUBJ_NAME_MISSING] = {"e_smime_subject_name_or_pseudonym_missing", E,
                             "SBR 7.1.4.2.5-6 Note 2", T_SBR,
                             "Sponsor/individual MP and Strict: givenName/surname or pseudonym"},
    [L_SUBJ_PSEUDO_MIX] = {"e_smime_subject_pseudonym_with_name", E, "SBR 7.1.4.2.2(e)(f)", T_SBR,
                           "pseudonym must not appear with givenName or surname"},
    [L_CN_VALUE] = {"e_smime_cn_value_not_allowed", E, "SBR 7.1.4.2.2(a)", T_SBR,
                    "commonName: organizationName (OV), personal name/pseudonym (SV/IV) or a "
                    "SAN mailbox"},
    [L_CN_PSEUDO] = {"e_smime_cn_pseudonym_mismatch", E, "SBR 7.1.4.2.2(a)", T_SBR,
                     "With a pseudonym attribute, commonName is that pseudonym or a mailbox"},
    [L_ORGID_FORMAT] = {"e_smime_org_identifier_format", E, "SBR 7.1.4.2.2(d)", T_SBR,
                        "organizationIdentifier is not scheme+country[+sub]-reference"},
    [L_ORGID_COUNTRY] = {"e_smime_org_identifier_country_mismatch", E, "SBR 7.1.4.2.2(d)", T_SBR,
                         "organizationIdentifier country differs from countryName"},
    [L_STREET_DEP] = {"e_smime_street_without_locality_or_state", E, "SBR 7.1.4.2.2(j)", T_SBR,
                      "streetAddress needs localityName or stateOrProvinceName"},
    [L_ADDR_COUNTRY] = {"e_smime_address_without_country", E, "SBR 7.1.4.2.2(k)(l)(m)", T_SBR,
                        "localityName, stateOrProvinceName, postalCode need countryName"},
    [L_COUNTRY] = {"e_smime_country_name_invalid", E, "SBR 7.1.4.2.2(n)", T_SBR,
                   "countryName must be an ISO 3166-1 alpha-2 code or XX"},
    [L_LEI_FORMAT] = {"e_smime_lei_malformed", E, "SBR 7.1.2.3(l)", T_SBR,
                      "LEI extension must be a 20-character ISO 17442 LEI (PrintableString)"},
    [L_LEI_ROLE_FORMAT] = {"e_smime_lei_role_malformed", E, "SBR 7.1.2.3(l)", T_SBR,
                           "LEI role extension must be a PrintableString of 1..100 characters "
                           "(ISO 17442-2)",
                           S_2026_11_4},
    [L_QCS_MALFORMED] = {"e_smime_qc_statements_malformed", E, "SBR 7.1.2.3(k)", T_SBR,
                         "qcStatements must be RFC 3739 QCStatements whose ETSI EN 319 412-5 "
                         "statements have their defined syntax, each at most once",
                         S_2026_11_5},
    [L_QCS_TYPE] = {"e_smime_qc_type_mismatch", E, "SBR 7.1.2.3(k)", T_SBR,
                    "QcType/semantics must fit the subject: esign/natural for sponsor and "
                    "individual, eseal/legal for organization, never web (ETSI EN 319 412-5 4.2.3)",
                    S_2026_11_5},
    /* found by comparing with pkilint's S/MIME corpus (issue 3) */
    [L_NAME_MAILBOX] = {"e_smime_name_mailbox_not_in_san", E, "SBR 7.1.4.2.1", T_SBR,
                        "A Mailbox Address in any subject attribute or SAN directoryName entry "
                        "must be repeated as a SAN rfc822Name or SmtpUTF8Mailbox",
                        S_2026_11_24},
    [W_ORGID_EUID] = {"w_smime_ntr_de_not_euid", W, "SBR 7.1.4.2.2(d) Note 3", T_EUID,
                      "A German NTR registration reference should be the EUID "
                      "(DE, register identifier, '.', local reference; national level)",
                      S_2026_11_24},
    /* RFC 5280 rules from the comparison with zlint's rfc lints (e_issuer_field_empty,
     * e_ext_cert_policy_duplicate) */
    [L_ISSUER_EMPTY] = {"e_issuer_name_empty", E, "RFC 5280 4.1.2.4", T_RFC5280,
                        "The issuer field must contain a non-empty distinguished name",
                        S_2026_11_24},
    [L_POL_DUP] = {"e_ext_cert_policy_duplicate", E, "RFC 5280 4.2.1.4", T_RFC5280,
                   "A policy OID must not appear more than once in certificatePolicies",
                   S_2026_11_24},
    [L_SAN_DIRNAME_EMPTY] = {"e_ext_san_directory_name_empty", E, "RFC 5280 4.2.1.6", T_RFC5280,
                             "A subjectAltName entry must not be empty (a directoryName holds at "
                             "least one RDN)",
                             S_2026_11_24_2},
};

#undef E
#undef W

/* ---- OIDs (contents octets) ---- */

#define OID(name, ...) static const uint8_t name[] = {__VA_ARGS__}
OID(oid_policies, 0x55, 0x1d, 0x20);
OID(oid_any_policy, 0x55, 0x1d, 0x20, 0x00);
OID(oid_crldp, 0x55, 0x1d, 0x1f);
OID(oid_aia, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01);
OID(oid_bc, 0x55, 0x1d, 0x13);
OID(oid_ku, 0x55, 0x1d, 0x0f);
OID(oid_eku, 0x55, 0x1d, 0x25);
OID(oid_aki, 0x55, 0x1d, 0x23);
OID(oid_san, 0x55, 0x1d, 0x11);
OID(oid_ski, 0x55, 0x1d, 0x0e);
OID(oid_smimecap, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0f);
OID(oid_sda, 0x55, 0x1d, 0x09);
OID(oid_qcs, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x03);
OID(oid_qcs_pkix_v1, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x0b, 0x01);
OID(oid_qcs_pkix_v2, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x0b, 0x02);
OID(oid_qc_compliance, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x01);
OID(oid_qc_limit, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x02);
OID(oid_qc_retention, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x03);
OID(oid_qc_sscd, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x04);
OID(oid_qc_pds, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x05);
OID(oid_qc_type, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x06);
OID(oid_qc_legislation, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x07);
OID(oid_qct_esign, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x06, 0x01);
OID(oid_qct_eseal, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x06, 0x02);
OID(oid_qct_web, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x06, 0x03);
OID(oid_qc_sem_natural, 0x04, 0x00, 0x8b, 0xec, 0x49, 0x01, 0x01);
OID(oid_qc_sem_legal, 0x04, 0x00, 0x8b, 0xec, 0x49, 0x01, 0x02);
OID(oid_lei, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0x98, 0x2a, 0x01);
OID(oid_lei_role, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0x98, 0x2a, 0x02);
OID(oid_adobe_ts, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x2f, 0x01, 0x01, 0x09, 0x01);
OID(oid_adobe_arch, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x2f, 0x01, 0x01, 0x09, 0x02);
OID(oid_cabf_smime, 0x67, 0x81, 0x0c, 0x01, 0x05);
OID(oid_qt_cps, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x02, 0x01);
OID(oid_qt_unotice, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x02, 0x02);
OID(oid_ad_ocsp, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01);
OID(oid_ad_ca_issuers, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02);
OID(oid_kp_email, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04);
OID(oid_kp_server, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01);
OID(oid_kp_client, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02);
OID(oid_kp_code, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03);
OID(oid_kp_time, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08);
OID(oid_any_eku, 0x55, 0x1d, 0x25, 0x00);
OID(oid_smtputf8, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x09);
OID(oid_at_email, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01);
#define OIDL(o) o, sizeof o

/* Masks: generation bits (1 << mc_generation) and type bits (1 << mc_certtype). */
#define GL (1u << MC_GEN_LEGACY)
#define GM (1u << MC_GEN_MULTIPURPOSE)
#define GS (1u << MC_GEN_STRICT)
#define GALL (GL | GM | GS)
#define TMV (1u << MC_TYPE_MAILBOX)
#define TOV (1u << MC_TYPE_ORGANIZATION)
#define TSV (1u << MC_TYPE_SPONSOR)
#define TIV (1u << MC_TYPE_INDIVIDUAL)
#define TALL (TMV | TOV | TSV | TIV)

/* SBR 7.1.2.3: the extensions a subscriber certificate may carry, for which types and
 * generations, and whether the optional ones must be non-critical (checked generically; the
 * others have their own lints). Anything else is SBR 7.1.2.4. */
static const struct known_ext {
    const uint8_t *oid;
    size_t len;
    const char *name;
    unsigned types, gens;
    int must_not_be_critical;
} known_exts[] = {
    {OIDL(oid_policies), "certificatePolicies", TALL, GALL, 0},
    {OIDL(oid_crldp), "cRLDistributionPoints", TALL, GALL, 0},
    {OIDL(oid_aia), "authorityInformationAccess", TALL, GALL, 0},
    {OIDL(oid_bc), "basicConstraints", TALL, GALL, 0},
    {OIDL(oid_ku), "keyUsage", TALL, GALL, 0},
    {OIDL(oid_eku), "extKeyUsage", TALL, GALL, 0},
    {OIDL(oid_aki), "authorityKeyIdentifier", TALL, GALL, 0},
    {OIDL(oid_san), "subjectAltName", TALL, GALL, 0},
    {OIDL(oid_ski), "subjectKeyIdentifier", TALL, GALL, 0},
    {OIDL(oid_smimecap), "smimeCapabilities", TALL, GALL, 0},
    /* SBR 7.1.2.3(j) */
    {OIDL(oid_sda), "subjectDirectoryAttributes", TALL, GL, 1},
    /* SBR 7.1.2.3(k) */
    {OIDL(oid_qcs), "qcStatements", TALL, GALL, 1},
    /* SBR 7.1.2.3(l) */
    {OIDL(oid_lei), "legalEntityIdentifier", TOV | TSV, GALL, 1},
    {OIDL(oid_lei_role), "leiRole", TSV, GALL, 1},
    /* SBR 7.1.2.3(m) */
    {OIDL(oid_adobe_ts), "adobeTimestamp", TALL, GL | GM, 1},
    {OIDL(oid_adobe_arch), "adobeArchiveRevInfo", TALL, GL | GM, 1},
};

/* SBR 7.1.4.2.3-7.1.4.2.6 and RFC 5280 Appendix A: subject attributes, their upper bounds
 * (characters, 0 = none), their string types and the generations allowed per type. */
enum { S_DIR, S_PRINTABLE, S_IA5 };
static const struct known_attr {
    uint8_t oid[9];
    size_t len;
    const char *name;
    size_t ub;
    int str;
    unsigned gens[5]; /* indexed by mc_certtype */
} known_attrs[] = {
    {{0x55, 0x04, 0x03}, 3, "commonName", 64, S_DIR, {0, GALL, GALL, GALL, GALL}},
    {{0x55, 0x04, 0x04}, 3, "surname", 32768, S_DIR, {0, 0, 0, GALL, GALL}},
    {{0x55, 0x04, 0x05}, 3, "serialNumber", 64, S_PRINTABLE, {0, GALL, GALL, GALL, GALL}},
    {{0x55, 0x04, 0x06}, 3, "countryName", 2, S_PRINTABLE, {0, 0, GALL, GALL, GALL}},
    {{0x55, 0x04, 0x07}, 3, "localityName", 128, S_DIR, {0, 0, GALL, GALL, GALL}},
    {{0x55, 0x04, 0x08}, 3, "stateOrProvinceName", 128, S_DIR, {0, 0, GALL, GALL, GALL}},
    {{0x55, 0x04, 0x09}, 3, "streetAddress", 128, S_DIR, {0, 0, GL | GM, GL | GM, GL | GM}},
    {{0x55, 0x04, 0x0a}, 3, "organizationName", 64, S_DIR, {0, 0, GALL, GALL, 0}},
    {{0x55, 0x04, 0x0b}, 3, "organizationalUnitName", 64, S_DIR, {0, 0, GALL, GALL, 0}},
    {{0x55, 0x04, 0x0c}, 3, "title", 64, S_DIR, {0, 0, 0, GALL, GALL}},
    {{0x55, 0x04, 0x11}, 3, "postalCode", 40, S_DIR, {0, 0, GL | GM, GL | GM, GL | GM}},
    {{0x55, 0x04, 0x2a}, 3, "givenName", 32768, S_DIR, {0, 0, 0, GALL, GALL}},
    {{0x55, 0x04, 0x41}, 3, "pseudonym", 128, S_DIR, {0, 0, 0, GALL, GALL}},
    {{0x55, 0x04, 0x61}, 3, "organizationIdentifier", 0, S_DIR, {0, 0, GALL, GALL, 0}},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01},
     9,
     "emailAddress",
     255,
     S_IA5,
     {0, GALL, GALL, GALL, GALL}},
};
/* Indexes into known_attrs. */
enum {
    A_CN,
    A_SN,
    A_SERIAL,
    A_C,
    A_L,
    A_ST,
    A_STREET,
    A_O,
    A_OU,
    A_TITLE,
    A_POSTAL,
    A_GN,
    A_PSEUDO,
    A_ORGID,
    A_EMAIL,
    A_COUNT
};
/* Attributes not in the table: Legacy only, and never for mailbox-validated. */
static const unsigned other_attr_gens[5] = {0, 0, GL, GL, GL};

/* ---- state and reporting ---- */

typedef struct lstate {
    const mc_x509 *x;
    const mc_lint_ctx *ctx;
    mc_lint_result *out;
    int64_t now;
    mc_certtype type;
    mc_generation gen;
    mc_keytype key;
    const mc_x509_ext *san; /* first SAN extension, NULL when absent */
    const mc_der_tlv *name; /* the Name lint_name is judging: the subject or a SAN directoryName */
    const char *prefix;     /* put before each finding's detail: which Name ("" for the subject) */
    uint32_t ku;            /* keyUsage bits (lint_ku), 0 when absent or malformed */
} lstate;

/* A number of at most max digits at *s, none of them a leading zero; -1 when there is none. */
static int set_num(const char **s, int max)
{
    const char *p = *s;
    int x = 0, k = 0;
    if (*p == '0')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++k > max)
            return -1;
        x = x * 10 + (*p - '0');
    }
    *s = p;
    return k ? x : -1;
}

/* "mailca-lints-YYYY.M.D[.N]" into v[0..3] (N = 1 when absent); -1 when malformed. Only the
 * canonical spelling, the one MC_LINT_SET_VERSION and the since tags use, is accepted, so that a
 * version has one spelling: no leading zeros (2026.11.2, not 2026.11.02), no ".1" (the first set
 * of a day has no suffix), a four-digit year and a date that exists. */
static int set_parse(const char *s, int v[4])
{
    static const char prefix[] = "mailca-lints-";
    static const int width[4] = {4, 2, 2, 5};
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    v[3] = 1;
    if (!s || strncmp(s, prefix, sizeof prefix - 1) != 0)
        return -1;
    s += sizeof prefix - 1;
    for (int i = 0; i < 4; i++) {
        if (i == 3 && !*s)
            break;
        if ((i > 0 && *s++ != '.') || (v[i] = set_num(&s, width[i])) < 0)
            return -1;
        if (i == 3 && v[3] < 2)
            return -1;
    }
    int y = v[0], leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*s || y < 1000 || v[1] > 12 || v[2] > mdays[v[1] - 1] || (v[1] == 2 && v[2] == 29 && !leap))
        return -1;
    return 0;
}

/* Orders two parsed versions (mc_lint_set_cmp's sign). */
static int set_vcmp(const int a[4], const int b[4])
{
    for (int i = 0; i < 4; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* Whether error lint d only warns under the enforced set: d is newer than it. No set, or one that
 * does not parse, enforces everything (fails closed: mc_engine_open refuses a bad one, but
 * mc_lint_ctx is public), as does one newer than this build's (every since tag is older). */
static int not_enforced(const mc_lint_def *d, const char *enforced)
{
    int ve[4], vd[4];
    return enforced && enforced[0] && set_parse(enforced, ve) == 0 &&
           set_parse(d->since, vd) == 0 && set_vcmp(vd, ve) > 0;
}

__attribute__((format(printf, 3, 4))) static void report(lstate *s, int id, const char *fmt, ...)
{
    const mc_lint_def *d = &defs[id];
    if (s->now < d->effective)
        return; /* not in force at issuance time */
    mc_lint_result *r = s->out;
    mc_lint_severity sev = d->severity;
    /* DESIGN.md lessons: a lint newer than the set the run enforces warns first */
    if (sev == MC_LINT_ERROR && d->since && s->ctx && not_enforced(d, s->ctx->enforced_set))
        sev = MC_LINT_WARNING;
    if (sev == MC_LINT_ERROR)
        r->errors++;
    else if (sev == MC_LINT_WARNING) {
        r->warnings++;
        r->warned[id / 64] |= UINT64_C(1) << (id % 64);
    }
    mc_lint_finding *f;
    if (r->n < MC_LINT_FINDINGS_MAX) {
        f = &r->f[r->n++];
    } else if (sev == MC_LINT_ERROR && r->errors == 1) {
        f = &r->f[MC_LINT_FINDINGS_MAX - 1]; /* keep the first error visible */
    } else {
        return;
    }
    f->lint = d;
    f->severity = sev;
    size_t o = 0;
    if (s->prefix && s->prefix[0]) {
        int k = snprintf(f->detail, sizeof f->detail, "%s: ", s->prefix);
        o = k > 0 && (size_t)k < sizeof f->detail ? (size_t)k : 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->detail + o, sizeof f->detail - o, fmt, ap);
    va_end(ap);
}

/* Printable excerpt of a value for messages (never longer than 60 characters). */
static const char *show(const uint8_t *p, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap && i < 60; i++)
        buf[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    if (n > 60 && o + 4 < cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static const char *oidstr(const mc_der_tlv *t, char *buf, size_t cap)
{
    return mc_der_oid_str(t->val, t->len, buf, cap);
}

static const char *ext_name(const mc_x509_ext *e, char *buf, size_t cap)
{
    for (size_t i = 0; i < sizeof known_exts / sizeof known_exts[0]; i++)
        if (mc_der_oid_eq(&e->oid, known_exts[i].oid, known_exts[i].len))
            return known_exts[i].name;
    return oidstr(&e->oid, buf, cap);
}

/* ---- string helpers ---- */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int prefix_ci(const uint8_t *p, size_t n, const char *pre)
{
    size_t k = strlen(pre);
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lower(p[i]) != pre[i])
            return 0;
    return 1;
}

/* An http:// URL with a host (SBR 7.1.2.3 b, c). */
static int is_http(const uint8_t *p, size_t n)
{
    return prefix_ci(p, n, "http://") && n > 7 && p[7] != '/';
}

static int is_http_or_https(const uint8_t *p, size_t n)
{
    return is_http(p, n) || (prefix_ci(p, n, "https://") && n > 8 && p[8] != '/');
}

static int hexval(uint8_t c)
{
    return c >= '0' && c <= '9'                     ? c - '0'
           : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                    : -1;
}

/* Is the host name p[0..n) under a top-level domain the public DNS never delegates: RFC 6761
 * 6.2-6.5 (test, localhost, invalid, example), RFC 6762 (local), RFC 7686 (onion), RFC 8375
 * (home.arpa), RFC 9476 (alt), and internal (ICANN, 2024)? Such a name cannot be reached from,
 * or validated in, the public Internet. example.com/.net/.org are delegated and not listed. */
static int host_reserved(const uint8_t *p, size_t n)
{
    static const char *const tlds[] = {"test",  "localhost", "invalid",   "example", "local",
                                       "onion", "alt",       "home.arpa", "internal"};
    while (n && p[n - 1] == '.')
        n--; /* an absolute name */
    for (size_t i = 0; i < sizeof tlds / sizeof tlds[0]; i++) {
        size_t k = strlen(tlds[i]);
        if (n < k || (n > k && p[n - k - 1] != '.'))
            continue;
        size_t j = 0;
        while (j < k && lower(p[n - k + j]) == tlds[i][j])
            j++;
        if (j == k)
            return 1;
    }
    return 0;
}

int mc_lint_url_host_reserved(const char *url, size_t len)
{
    const uint8_t *p = (const uint8_t *)url;
    size_t i = 0;
    while (i + 2 < len && !(p[i] == ':' && p[i + 1] == '/' && p[i + 2] == '/'))
        i++;
    if (i + 2 >= len)
        return 0;            /* no authority: nothing to judge here */
    size_t h = i + 3, e = h; /* the authority: [userinfo@]host[:port] */
    while (e < len && p[e] != '/' && p[e] != '?' && p[e] != '#')
        e++;
    for (size_t a = h; a < e; a++)
        if (p[a] == '@')
            h = a + 1;
    if (h == e || p[h] == '[')
        return 0; /* no host, or an IP literal */
    /* the host, percent-decoded (RFC 3986 3.2.2 lets a reg-name be pct-encoded) */
    uint8_t host[256];
    size_t n = 0;
    for (size_t a = h; a < e && p[a] != ':' && n < sizeof host; a++) {
        int hi, lo;
        if (p[a] == '%' && a + 2 < e && (hi = hexval(p[a + 1])) >= 0 &&
            (lo = hexval(p[a + 2])) >= 0) {
            host[n++] = (uint8_t)(hi << 4 | lo);
            a += 2;
        } else {
            host[n++] = p[a];
        }
    }
    return n > 0 && host_reserved(host, n);
}

/* mailca policy (RFC 6761; w_smime_uri_host_reserved): the CPS, CRL and AIA URLs SBR 7.1.2.3
 * (a)(b)(c) asks for are for relying parties; a host under a special-use domain (a demo default
 * left in place) cannot serve them. */
static void lint_url_host(lstate *s, const char *what, const uint8_t *p, size_t n)
{
    char b[64];
    if (mc_lint_url_host_reserved((const char *)p, n))
        report(s, W_URI_RESERVED, "%s \"%s\" names a host under a special-use domain", what,
               show(p, n, b, sizeof b));
}

/* Code points in valid UTF-8 (no overlongs, surrogates or values above U+10FFFF); -1 if
 * invalid. Sets *bom when U+FEFF occurs. */
static long utf8_count(const uint8_t *p, size_t n, int *bom)
{
    long cnt = 0;
    if (bom)
        *bom = 0;
    for (size_t i = 0; i < n; cnt++) {
        uint32_t c = p[i];
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1;
            c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            c &= 0x07;
        } else {
            return -1;
        }
        if (i + k + 1 > n)
            return -1;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return -1;
            c = (c << 6) | (p[i + j] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (c < min[k] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return -1;
        if (c == 0xfeff && bom)
            *bom = 1;
        i += k + 1;
    }
    return cnt;
}

static int printable_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr(" '()+,-./:=?", c) != NULL;
}

static int atext(uint8_t c, int utf8)
{
    if (c >= 0x80)
        return utf8; /* RFC 6532 3.2: UTF8-non-ascii extends atext */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

/* RFC 5321 4.1.2 Local-part: Dot-string or Quoted-string (RFC 6532 when utf8). */
static int local_part_ok(const uint8_t *p, size_t n, int utf8)
{
    if (n == 0 || (!utf8 && n > 64))
        return 0;
    if (p[0] == '"') {
        if (n < 2 || p[n - 1] != '"')
            return 0;
        for (size_t i = 1; i < n - 1; i++) {
            if (p[i] == '\\') {
                if (++i >= n - 1 || p[i] < 0x20 || p[i] > 0x7e)
                    return 0;
            } else if (p[i] == '"' || (p[i] < 0x20) || p[i] == 0x7f || (p[i] >= 0x80 && !utf8)) {
                return 0;
            }
        }
        return 1;
    }
    if (p[0] == '.' || p[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.') {
            if (p[i - 1] == '.')
                return 0;
        } else if (!atext(p[i], utf8)) {
            return 0;
        }
    }
    return 1;
}

/* RFC 5321 Domain as LDH labels (no address literals: a mailbox domain must be a name that
 * CAA and validation can use). lower_only: RFC 9598 lowercase labels. */
static int domain_ok(const uint8_t *p, size_t n, int lower_only)
{
    if (n == 0 || n > 253)
        return 0;
    size_t lab = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '.') {
            if (lab == 0 || lab > 63 || p[i - 1] == '-' || p[i - lab] == '-')
                return 0;
            lab = 0;
            continue;
        }
        uint8_t c = p[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                 (!lower_only && c >= 'A' && c <= 'Z');
        if (!ok)
            return 0;
        lab++;
    }
    return 1;
}

/* Splits at the last '@' (a domain never contains one). */
static int split_at(const uint8_t *p, size_t n, size_t *at)
{
    for (size_t i = n; i > 0; i--)
        if (p[i - 1] == '@') {
            *at = i - 1;
            return 1;
        }
    return 0;
}

static int ascii_mailbox_ok(const uint8_t *p, size_t n)
{
    size_t at;
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return 0;
    return split_at(p, n, &at) && local_part_ok(p, at, 0) && domain_ok(p + at + 1, n - at - 1, 0);
}

/* Mailbox equality: local part exact, domain ASCII case-insensitive. */
static int mailbox_eq(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t aa, ba;
    if (!split_at(a, an, &aa) || !split_at(b, bn, &ba) || aa != ba || an != bn)
        return 0;
    if (memcmp(a, b, aa) != 0)
        return 0;
    for (size_t i = aa; i < an; i++)
        if (lower(a[i]) != lower(b[i]))
            return 0;
    return 1;
}

/* A value made only of filler characters or an "n/a"-style word (SBR 7.1.4.2). */
static int placeholder(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n && strchr(" .-_/\\*?", p[i]) && p[i]; i++)
        ;
    if (i == n)
        return 1;
    static const char *const words[] = {
        "n/a", "na", "none", "null", "nil", "unknown", "not applicable", "tbd", "-n/a-"};
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
        if (strlen(words[w]) == n && prefix_ci(p, n, words[w]))
            return 1;
    return 0;
}

/* ---- extension helpers ---- */

static int ext_bad(lstate *s, const char *what, const char *why)
{
    report(s, L_EXT_MALFORMED, "%s: %s", what, why);
    return 0;
}

/* Enters a non-empty SEQUENCE OF (RFC 5280 SIZE (1..MAX)). */
static int seq_of(lstate *s, const mc_der_tlv *t, const char *what, mc_der_cur *c)
{
    if (t->tag != MC_DER_SEQUENCE || t->len == 0)
        return ext_bad(s, what, "not a non-empty SEQUENCE");
    *c = mc_der_cur_in(t);
    return 1;
}

/* Mailbox from a GeneralName when it is an rfc822Name or an SmtpUTF8Mailbox otherName. */
static int gn_mailbox(const mc_der_tlv *gn, const uint8_t **p, size_t *n, int *utf8)
{
    if (gn->tag == MC_DER_CTX(1)) {
        *p = gn->val;
        *n = gn->len;
        *utf8 = 0;
        return 1;
    }
    if (gn->tag != MC_DER_CTX_CONS(0))
        return 0;
    mc_der_cur c = mc_der_cur_in(gn);
    mc_der_tlv oid, wrap, v;
    if (mc_der_expect(&c, MC_DER_OID, &oid) != MC_OK || !mc_der_oid_eq(&oid, OIDL(oid_smtputf8)) ||
        mc_der_expect(&c, MC_DER_CTX_CONS(0), &wrap) != MC_OK)
        return 0;
    mc_der_cur w = mc_der_cur_in(&wrap);
    if (mc_der_expect(&w, MC_DER_UTF8STRING, &v) != MC_OK)
        return 0;
    *p = v.val;
    *n = v.len;
    *utf8 = 1;
    return 1;
}

/* Is this mailbox one of the SAN's rfc822Name/SmtpUTF8Mailbox values? */
static int in_san(const lstate *s, const uint8_t *p, size_t n)
{
    if (!s->san || s->san->value.tag != MC_DER_SEQUENCE)
        return 0;
    mc_der_cur c = mc_der_cur_in(&s->san->value);
    mc_der_tlv gn;
    while (mc_der_next(&c, &gn) == MC_OK) {
        const uint8_t *mp;
        size_t mn;
        int u;
        if (gn_mailbox(&gn, &mp, &mn, &u) && mailbox_eq(mp, mn, p, n))
            return 1;
    }
    return 0;
}

/* ---- lints: structure, serial, validity, keys, signature ---- */

static void lint_structure(lstate *s)
{
    const mc_x509 *x = s->x;
    /* SBR 7.1.1 */
    if (x->version != 2)
        report(s, L_VERSION, "version is v%d, must be v3", x->version + 1);
    /* RFC 5280 4.1.2.8 (CAs MUST NOT generate unique identifiers) */
    if (x->has_issuer_uid || x->has_subject_uid)
        report(s, L_UNIQUE_ID, "%s%s%s present", x->has_issuer_uid ? "issuerUniqueID" : "",
               x->has_issuer_uid && x->has_subject_uid ? " and " : "",
               x->has_subject_uid ? "subjectUniqueID" : "");
}

static void lint_serial(lstate *s)
{
    const mc_der_tlv *t = &s->x->serial;
    const uint8_t *v = t->val;
    size_t n = t->len;
    /* X.690 8.3.2: minimal two's complement */
    if (mc_der_int_check(v, n) != MC_OK)
        report(s, L_SERIAL_NOT_MINIMAL, "serialNumber INTEGER has a redundant leading 0x%02x",
               v[0]);
    int zero = 1;
    for (size_t i = 0; i < n; i++)
        zero &= v[i] == 0;
    /* SBR 7.1, RFC 5280 4.1.2.2 */
    if (v[0] & 0x80)
        report(s, L_SERIAL_NOT_POSITIVE, "serialNumber is negative (first octet 0x%02x)", v[0]);
    else if (zero)
        report(s, L_SERIAL_NOT_POSITIVE, "serialNumber is zero");
    if (n > 20) {
        report(s, L_SERIAL_TOO_LONG, "serialNumber is %zu octets (at most 20)", n);
        return;
    }
    if (zero || (v[0] & 0x80))
        return;
    /* SBR 7.1: at least 64 bits of CSPRNG output (defs[W_SERIAL_SHORT]); m octets of value */
    size_t m = n;
    const uint8_t *q = v;
    while (m > 1 && q[0] == 0) {
        q++;
        m--;
    }
    if (m <= 4) {
        unsigned long value = 0;
        for (size_t i = 0; i < m; i++)
            value = value << 8 | q[i];
        report(s, L_SERIAL_SMALL,
               "serialNumber %lu is below 2^32: 64 CSPRNG bits are that small once in 2^32", value);
    } else if (n < 8) {
        report(s, W_SERIAL_SHORT,
               "serialNumber is %zu octets: 64 CSPRNG bits encode this short once in 2^%zu draws",
               n, 65 - 8 * n);
    }
}

static void lint_validity(lstate *s)
{
    const mc_x509 *x = s->x;
    const mc_der_tlv *ts[2] = {&x->not_before, &x->not_after};
    static const char *const names[2] = {"notBefore", "notAfter"};
    int64_t v[2];
    int ok = 1;
    char b[64];
    for (int i = 0; i < 2; i++) {
        /* RFC 5280 4.1.2.5.1/4.1.2.5.2: YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ, valid date */
        if (mc_der_time(ts[i], &v[i]) != MC_OK) {
            report(s, L_TIME_FORMAT, "%s \"%s\" is not a %s with seconds and Z", names[i],
                   show(ts[i]->val, ts[i]->len, b, sizeof b),
                   ts[i]->tag == MC_DER_UTCTIME ? "UTCTime" : "GeneralizedTime");
            ok = 0;
            continue;
        }
        /* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 */
        if (ts[i]->tag == MC_DER_GENERALIZEDTIME && v[i] < 2524608000LL && v[i] >= -631152000LL)
            report(s, L_TIME_TYPE, "%s \"%s\" is a GeneralizedTime before 2050", names[i],
                   show(ts[i]->val, ts[i]->len, b, sizeof b));
    }
    if (!ok)
        return;
    if (v[1] < v[0]) {
        report(s, L_VALIDITY_NEGATIVE, "notAfter %lld precedes notBefore %lld", (long long)v[1],
               (long long)v[0]);
        return;
    }
    /* SBR 6.3.2: both ends count, a day is 86400 s */
    int64_t days = s->gen == MC_GEN_LEGACY ? 1185 : 825;
    int64_t len = v[1] - v[0] + 1, max = days * DAY;
    if (len > max)
        report(s, L_VALIDITY_TOO_LONG,
               "validity %lld s (notAfter - notBefore + 1) exceeds %lld days = %lld s",
               (long long)len, (long long)days, (long long)max);
    else if (len == max)
        report(s, W_VALIDITY_MAX, "validity is exactly the %lld-day maximum (%lld s)",
               (long long)days, (long long)max);
}

static void lint_rsa_key(lstate *s, const uint8_t *k, size_t n)
{
    mc_der_cur c = mc_der_cur_make(k, n);
    mc_der_tlv seq, mod, exp;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &seq) != MC_OK || !mc_der_cur_empty(&c)) {
        report(s, L_SPKI_KEY, "RSAPublicKey is not one DER SEQUENCE");
        return;
    }
    c = mc_der_cur_in(&seq);
    if (mc_der_expect(&c, MC_DER_INTEGER, &mod) != MC_OK ||
        mc_der_expect(&c, MC_DER_INTEGER, &exp) != MC_OK || !mc_der_cur_empty(&c) ||
        mc_der_int_check(mod.val, mod.len) != MC_OK ||
        mc_der_int_check(exp.val, exp.len) != MC_OK || (mod.val[0] & 0x80) || (exp.val[0] & 0x80)) {
        report(s, L_SPKI_KEY,
               "RSAPublicKey is not {modulus, publicExponent} as positive "
               "minimal INTEGERs");
        return;
    }
    const uint8_t *m = mod.val;
    size_t ml = mod.len;
    if (ml > 1 && m[0] == 0) {
        m++;
        ml--;
    }
    size_t bits = ml * 8;
    for (uint8_t top = m[0]; bits && !(top & 0x80); top <<= 1)
        bits--;
    /* SBR 6.1.5 */
    if (bits < 2048 || bits % 8 != 0)
        report(s, L_RSA_MODULUS, "RSA modulus is %zu bits (need >= 2048 and a multiple of 8)",
               bits);
    /* SBR 6.1.6 */
    const uint8_t *e = exp.val;
    size_t el = exp.len;
    int small = el == 1 && e[0] < 3;
    if (!(e[el - 1] & 1) || small) {
        unsigned long long ev = 0;
        for (size_t i = 0; i < el && i < 8; i++)
            ev = (ev << 8) | e[i];
        report(s, L_RSA_EXPONENT, "RSA public exponent %s%llu is %s", el > 8 ? ">" : "", ev,
               small ? "below 3" : "even");
    }
}

/* ---- SBR 6.1.5: is a public key a point on its curve? ----
 *
 * Arithmetic modulo the curve's prime in 64-bit limbs (little-endian), Montgomery multiplication
 * (CIOS), on the stack: no allocation, no OpenSSL, safe on any thread. With M(a, b) = a b R^-1
 * (R = 2^(64 n)) the curve equations are compared multiplied by a power of R^-1, which is never
 * 0, so no conversion into Montgomery form is needed. Cost: about 8 multiplications for an
 * ECDSA key; for an EdDSA key 5 and a binary Jacobi symbol (about 2 shifts and a subtraction per
 * bit of p), a few microseconds. */

#define FE_MAX 9 /* 64-bit limbs of P-521's prime */
/* 64-bit limbs and 128-bit products: a quarter of the inner-loop steps of 32-bit limbs (this
 * runs for every certificate on the hot path) */
typedef uint64_t fe_limb;
__extension__ typedef unsigned __int128 fe_wide;

typedef struct fe_curve {
    size_t n;             /* 64-bit limbs */
    size_t len;           /* octets of a coordinate (ECDSA) or of the key (EdDSA) */
    size_t plen;          /* octets of p and k */
    const uint8_t *p, *k; /* big-endian, plen octets: the prime; b (ECDSA, a = -3) or d */
} fe_curve;

typedef struct fe_ctx {
    size_t n;
    fe_limb p[FE_MAX], k[FE_MAX];
    fe_limb pinv; /* -p^-1 mod 2^64 */
} fe_ctx;

static const uint8_t p256_p[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t p256_b[32] = {0x5a, 0xc6, 0x35, 0xd8, 0xaa, 0x3a, 0x93, 0xe7, 0xb3, 0xeb, 0xbd,
                                   0x55, 0x76, 0x98, 0x86, 0xbc, 0x65, 0x1d, 0x06, 0xb0, 0xcc, 0x53,
                                   0xb0, 0xf6, 0x3b, 0xce, 0x3c, 0x3e, 0x27, 0xd2, 0x60, 0x4b};
static const uint8_t p384_p[48] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff};
static const uint8_t p384_b[48] = {
    0xb3, 0x31, 0x2f, 0xa7, 0xe2, 0x3e, 0xe7, 0xe4, 0x98, 0x8e, 0x05, 0x6b, 0xe3, 0xf8, 0x2d, 0x19,
    0x18, 0x1d, 0x9c, 0x6e, 0xfe, 0x81, 0x41, 0x12, 0x03, 0x14, 0x08, 0x8f, 0x50, 0x13, 0x87, 0x5a,
    0xc6, 0x56, 0x39, 0x8d, 0x8a, 0x2e, 0xd1, 0x9d, 0x2a, 0x85, 0xc8, 0xed, 0xd3, 0xec, 0x2a, 0xef};
/* P-521: 2^521 - 1 and b, padded to 17 limbs (68 octets) */
static const uint8_t p521_p[68] = {
    0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t p521_b[68] = {
    0x00, 0x00, 0x00, 0x51, 0x95, 0x3e, 0xb9, 0x61, 0x8e, 0x1c, 0x9a, 0x1f, 0x92, 0x9a,
    0x21, 0xa0, 0xb6, 0x85, 0x40, 0xee, 0xa2, 0xda, 0x72, 0x5b, 0x99, 0xb3, 0x15, 0xf3,
    0xb8, 0xb4, 0x89, 0x91, 0x8e, 0xf1, 0x09, 0xe1, 0x56, 0x19, 0x39, 0x51, 0xec, 0x7e,
    0x93, 0x7b, 0x16, 0x52, 0xc0, 0xbd, 0x3b, 0xb1, 0xbf, 0x07, 0x35, 0x73, 0xdf, 0x88,
    0x3d, 0x2c, 0x34, 0xf1, 0xef, 0x45, 0x1f, 0xd4, 0x6b, 0x50, 0x3f, 0x00};
/* RFC 8032 5.1: p = 2^255 - 19, d = -121665 / 121666 mod p */
static const uint8_t ed25519_p[32] = {
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xed};
static const uint8_t ed25519_d[32] = {
    0x52, 0x03, 0x6c, 0xee, 0x2b, 0x6f, 0xfe, 0x73, 0x8c, 0xc7, 0x40, 0x79, 0x77, 0x79, 0xe8, 0x98,
    0x00, 0x70, 0x0a, 0x4d, 0x41, 0x41, 0xd8, 0xab, 0x75, 0xeb, 0x4d, 0xca, 0x13, 0x59, 0x78, 0xa3};
/* RFC 8032 5.2: p = 2^448 - 2^224 - 1, d = -39081 mod p */
static const uint8_t ed448_p[56] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t ed448_d[56] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x67, 0x56};

static const fe_curve fe_p256 = {4, 32, sizeof p256_p, p256_p, p256_b};
static const fe_curve fe_p384 = {6, 48, sizeof p384_p, p384_p, p384_b};
static const fe_curve fe_p521 = {9, 66, sizeof p521_p, p521_p, p521_b};
static const fe_curve fe_ed25519 = {4, 32, sizeof ed25519_p, ed25519_p, ed25519_d};
static const fe_curve fe_ed448 = {7, 57, sizeof ed448_p, ed448_p, ed448_d};

/* len big-endian octets into n limbs (len <= 8 n). */
static void fe_from_be(const uint8_t *b, size_t len, fe_limb *r, size_t n)
{
    memset(r, 0, n * sizeof *r);
    for (size_t i = 0; i < len; i++)
        r[i / 8] |= (fe_limb)b[len - 1 - i] << (8 * (i % 8));
}

static int fe_cmp(const fe_limb *a, const fe_limb *b, size_t n)
{
    for (size_t i = n; i-- > 0;)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

static int fe_is_zero(const fe_limb *a, size_t n)
{
    fe_limb z = 0;
    for (size_t i = 0; i < n; i++)
        z |= a[i];
    return z == 0;
}

/* r = a - b over n limbs; returns the borrow. */
static fe_limb fe_sub_raw(fe_limb *r, const fe_limb *a, const fe_limb *b, size_t n)
{
    fe_limb borrow = 0;
    for (size_t i = 0; i < n; i++) {
        fe_wide d = (fe_wide)a[i] - b[i] - borrow;
        r[i] = (fe_limb)d;
        borrow = (fe_limb)(d >> 64) & 1;
    }
    return borrow;
}

static void fe_init(fe_ctx *c, const fe_curve *cv)
{
    c->n = cv->n;
    fe_from_be(cv->p, cv->plen, c->p, c->n);
    fe_from_be(cv->k, cv->plen, c->k, c->n);
    fe_limb inv = c->p[0]; /* p odd: correct to 3 bits; each step doubles them */
    for (int i = 0; i < 5; i++)
        inv *= 2 - c->p[0] * inv;
    c->pinv = 0u - inv;
}

/* r = a + b mod p (a, b < p). */
static void fe_add(const fe_ctx *c, fe_limb *r, const fe_limb *a, const fe_limb *b)
{
    fe_wide carry = 0;
    for (size_t i = 0; i < c->n; i++) {
        carry += (fe_wide)a[i] + b[i];
        r[i] = (fe_limb)carry;
        carry >>= 64;
    }
    if (carry || fe_cmp(r, c->p, c->n) >= 0)
        fe_sub_raw(r, r, c->p, c->n);
}

/* r = a - b mod p (a, b < p). */
static void fe_sub(const fe_ctx *c, fe_limb *r, const fe_limb *a, const fe_limb *b)
{
    if (fe_sub_raw(r, a, b, c->n)) {
        fe_wide carry = 0;
        for (size_t i = 0; i < c->n; i++) {
            carry += (fe_wide)r[i] + c->p[i];
            r[i] = (fe_limb)carry;
            carry >>= 64;
        }
    }
}

/* r = a b R^-1 mod p (a, b < p; r may alias either). */
static void fe_mul(const fe_ctx *c, fe_limb *r, const fe_limb *a, const fe_limb *b)
{
    size_t n = c->n;
    fe_limb t[FE_MAX + 2] = {0};
    for (size_t i = 0; i < n; i++) {
        fe_wide x = 0;
        for (size_t j = 0; j < n; j++) {
            x += (fe_wide)t[j] + (fe_wide)a[j] * b[i];
            t[j] = (fe_limb)x;
            x >>= 64;
        }
        x += t[n];
        t[n] = (fe_limb)x;
        t[n + 1] = (fe_limb)(x >> 64);
        fe_limb m = t[0] * c->pinv; /* t + m p is 0 mod 2^64 */
        x = ((fe_wide)t[0] + (fe_wide)m * c->p[0]) >> 64;
        for (size_t j = 1; j < n; j++) {
            x += (fe_wide)t[j] + (fe_wide)m * c->p[j];
            t[j - 1] = (fe_limb)x;
            x >>= 64;
        }
        x += t[n];
        t[n - 1] = (fe_limb)x;
        t[n] = t[n + 1] + (fe_limb)(x >> 64);
    }
    /* t < 2p */
    if (t[n] || fe_cmp(t, c->p, n) >= 0)
        fe_sub_raw(t, t, c->p, n);
    memcpy(r, t, n * sizeof *r);
}

/* The Jacobi symbol (a / p) for odd p > a >= 0 (binary algorithm; a and p are overwritten):
 * 1, -1, or 0 when they share a factor. */
static int fe_jacobi(fe_limb *a, fe_limb *p, size_t n)
{
    int t = 1;
    while (!fe_is_zero(a, n)) {
        /* a = 2^k a': (2 / p) = -1 exactly when p = 3 or 5 mod 8 */
        while (!(a[0] & 1)) {
            unsigned k = 0;
            if (a[0] == 0) {
                memmove(a, a + 1, (n - 1) * sizeof *a);
                a[n - 1] = 0;
                continue; /* 64 bits: an even number of halvings */
            }
            while (!(a[0] >> k & 1))
                k++;
            for (size_t i = 0; i < n; i++)
                a[i] = a[i] >> k | (i + 1 < n ? a[i + 1] << (64 - k) : 0);
            if ((k & 1) && ((p[0] & 7) == 3 || (p[0] & 7) == 5))
                t = -t;
        }
        /* both odd: reciprocity when swapping, then (a / p) = ((a - p) / p) */
        if (fe_cmp(a, p, n) < 0) {
            fe_limb *x = a;
            a = p;
            p = x;
            if ((a[0] & 3) == 3 && (p[0] & 3) == 3)
                t = -t;
        }
        fe_sub_raw(a, a, p, n);
    }
    fe_limb one[FE_MAX] = {1};
    return fe_cmp(p, one, n) == 0 ? t : 0;
}

/* An uncompressed ECDSA point X || Y (each cv->len octets): NULL when both coordinates are
 * below p and y^2 = x^3 - 3 x + b mod p; else the reason. (Not the point at infinity, which has no
 * uncompressed encoding; P-256, P-384 and P-521 have cofactor 1, so a point on the curve is in
 * the group: NIST SP 800-56A rev3 5.6.2.3.3 full validation.) */
static const char *ec_point_check(const fe_curve *cv, const uint8_t *xy)
{
    fe_ctx c;
    fe_init(&c, cv);
    size_t n = c.n;
    fe_limb x[FE_MAX], y[FE_MAX], one[FE_MAX] = {1}, l[FE_MAX], r[FE_MAX], t[FE_MAX];
    fe_from_be(xy, cv->len, x, n);
    fe_from_be(xy + cv->len, cv->len, y, n);
    if (fe_cmp(x, c.p, n) >= 0 || fe_cmp(y, c.p, n) >= 0)
        return "has a coordinate not below p";
    fe_mul(&c, l, y, y);
    fe_mul(&c, l, l, one); /* y^2 R^-2 */
    fe_mul(&c, r, x, x);
    fe_mul(&c, r, r, x); /* x^3 R^-2 */
    fe_mul(&c, t, x, one);
    fe_mul(&c, t, t, one); /* x R^-2 */
    for (int i = 0; i < 3; i++)
        fe_sub(&c, r, r, t);
    fe_mul(&c, t, c.k, one);
    fe_mul(&c, t, t, one); /* b R^-2 */
    fe_add(&c, r, r, t);
    return fe_cmp(l, r, n) == 0 ? NULL : "is not on the curve";
}

/* An EdDSA key decoded as RFC 8032 5.1.3 (Ed25519) and 5.2.3 (Ed448) do: NULL when it is a
 * point of the curve, else the step that fails. Small-order points are valid points (mc_keycheck
 * refuses them for orders, by mailca policy; the lint judges SBR 6.1.5 only). */
static const char *ed_point_check(const fe_curve *cv, const uint8_t *key)
{
    fe_ctx c;
    fe_init(&c, cv);
    size_t n = c.n, len = cv->len;
    int ed448 = cv == &fe_ed448;
    fe_limb y[FE_MAX], one[FE_MAX] = {1}, u[FE_MAX], v[FE_MAX], t[FE_MAX];
    /* step 1: x_0 is the top bit, y the rest, little-endian, below p (Ed448: the 7 bits between
     * bit 447 and x_0 make y >= 2^448 > p) */
    int x0 = key[len - 1] >> 7;
    if (ed448 && (key[len - 1] & 0x7f))
        return "y is not below p";
    memset(y, 0, sizeof y);
    for (size_t i = 0; i < n * 8 && i < len; i++)
        y[i / 8] |= (fe_limb)(i == len - 1 ? key[i] & 0x7f : key[i]) << (8 * (i % 8));
    if (fe_cmp(y, c.p, n) >= 0)
        return "y is not below p";
    /* x^2 = u / v: u = y^2 - 1, v = d y^2 + 1 (Ed25519, a = -1) or d y^2 - 1 (Ed448, a = 1) */
    fe_mul(&c, t, y, y); /* y^2 R^-1 */
    fe_mul(&c, u, one, one);
    fe_mul(&c, v, c.k, t); /* d y^2 R^-2 */
    fe_sub(&c, u, t, u);   /* u R^-1 */
    fe_mul(&c, t, one, one);
    fe_mul(&c, t, t, one); /* R^-2 */
    if (ed448)
        fe_sub(&c, v, v, t);
    else
        fe_add(&c, v, v, t); /* v R^-2, never 0: d / a is not a square */
    /* step 4: x = 0 takes x_0 = 0 */
    if (fe_is_zero(u, n))
        return x0 ? "x is 0 but its sign bit is set" : NULL;
    /* step 3: u / v has a square root iff u v = (u / v) v^2 is a square; M(u R^-1, v R^-2) is
     * u v R^-4, the same up to the square R^-4 */
    fe_mul(&c, t, u, v);
    return fe_jacobi(t, c.p, n) == 1 ? NULL : "no x satisfies the curve equation for this y";
}

static void lint_spki(lstate *s)
{
    const mc_x509 *x = s->x;
    char b[64];
    s->key = mc_keytype_from_algid(x->spki_alg.raw, x->spki_alg.rawlen);
    /* SBR 7.1.3.1: byte-exact */
    if (s->key == MC_KEY_NONE) {
        mc_der_cur c = mc_der_cur_in(&x->spki_alg);
        mc_der_tlv oid;
        int has = mc_der_expect(&c, MC_DER_OID, &oid) == MC_OK;
        report(s, L_SPKI_ALGID,
               "SPKI algorithm %s (%zu-byte AlgorithmIdentifier) is not an "
               "allowed encoding",
               has ? oidstr(&oid, b, sizeof b) : "?", x->spki_alg.rawlen);
        return;
    }
    const uint8_t *k = x->spki_key.val + 1;
    size_t n = x->spki_key.len - 1;
    if (x->spki_key.val[0] != 0) {
        report(s, L_SPKI_KEY, "subjectPublicKey BIT STRING has %u unused bits", x->spki_key.val[0]);
        return;
    }
    size_t want = 0;
    switch (s->key) {
    case MC_KEY_RSA:
        lint_rsa_key(s, k, n);
        return;
    case MC_KEY_P256:
        want = 65;
        break;
    case MC_KEY_P384:
        want = 97;
        break;
    case MC_KEY_P521:
        want = 133;
        break;
    case MC_KEY_ED25519:
    case MC_KEY_ED448: {
        /* RFC 8410 4: the raw public key, 32 / 57 octets (RFC 8032 5.1.2, 5.2.2) */
        const fe_curve *cv = s->key == MC_KEY_ED25519 ? &fe_ed25519 : &fe_ed448;
        const char *why;
        if (n != cv->len)
            report(s, L_SPKI_KEY, "%s public key is %zu bytes", mc_keytype_name(s->key), n);
        /* SBR 6.1.5: a valid point on curve25519 / curve448 */
        else if ((why = ed_point_check(cv, k)) != NULL)
            report(s, L_EC_POINT, "%s public key is not a point of the curve: %s (RFC 8032 %s)",
                   mc_keytype_name(s->key), why, s->key == MC_KEY_ED25519 ? "5.1.3" : "5.2.3");
        return;
    }
    default:
        return;
    }
    /* RFC 5480 2.2: 04 || X || Y (mailca takes no compressed form) */
    if (n != want || k[0] != 0x04) {
        report(s, L_EC_POINT, "%s point is %zu bytes starting 0x%02x (need %zu, 0x04)",
               mc_keytype_name(s->key), n, n ? k[0] : 0, want);
        return;
    }
    /* SBR 6.1.5: a valid point on the curve */
    const fe_curve *cv = s->key == MC_KEY_P256   ? &fe_p256
                         : s->key == MC_KEY_P384 ? &fe_p384
                                                 : &fe_p521;
    const char *why = ec_point_check(cv, k + 1);
    if (why)
        report(s, L_EC_POINT, "%s point %s", mc_keytype_name(s->key), why);
}

static void lint_signature(lstate *s)
{
    const mc_x509 *x = s->x;
    char b[64];
    /* SBR 7.1.3.2 */
    if (mc_sigalg_from_algid(x->sigalg.raw, x->sigalg.rawlen) == MC_SIG_NONE) {
        mc_der_cur c = mc_der_cur_in(&x->sigalg);
        mc_der_tlv oid;
        int has = mc_der_expect(&c, MC_DER_OID, &oid) == MC_OK;
        report(s, L_SIGALG,
               "signature algorithm %s (%zu-byte AlgorithmIdentifier) is not an "
               "allowed encoding",
               has ? oidstr(&oid, b, sizeof b) : "?", x->sigalg.rawlen);
    }
    /* RFC 5280 4.1.1.2 */
    if (x->has_outer && (x->outer_sigalg.rawlen != x->sigalg.rawlen ||
                         memcmp(x->outer_sigalg.raw, x->sigalg.raw, x->sigalg.rawlen) != 0))
        report(s, L_SIGALG_OUTER,
               "signatureAlgorithm (%zu bytes) differs from the TBS "
               "signature (%zu bytes)",
               x->outer_sigalg.rawlen, x->sigalg.rawlen);
    const mc_issuer *iss = s->ctx ? s->ctx->issuer : NULL;
    if (!iss)
        return;
    mc_bytes want = mc_sigalg_algid(iss->sigalg);
    if (want.len != x->sigalg.rawlen || memcmp(want.p, x->sigalg.raw, want.len) != 0)
        report(s, L_SIGALG_ISSUER, "TBS signature algorithm is not the issuer's %s",
               mc_sigalg_name(iss->sigalg));
    /* SBR 7.1.4.1 */
    if (iss->name.len != x->issuer.rawlen || memcmp(iss->name.p, x->issuer.raw, iss->name.len) != 0)
        report(s, L_ISSUER_NAME,
               "issuer Name (%zu bytes) is not byte-identical to the CA "
               "subject (%zu bytes)",
               x->issuer.rawlen, iss->name.len);
}

/* ---- lints: extensions ---- */

static void lint_ext_list(lstate *s)
{
    const mc_x509 *x = s->x;
    char b[64];
    for (size_t i = 0; i < x->n_ext; i++) {
        const mc_x509_ext *e = &x->ext[i];
        /* RFC 5280 4.2 */
        for (size_t j = 0; j < i; j++)
            if (mc_der_oid_eq(&x->ext[j].oid, e->oid.val, e->oid.len)) {
                report(s, L_EXT_DUP, "extension %s appears more than once (#%zu and #%zu)",
                       ext_name(e, b, sizeof b), j, i);
                break;
            }
        /* X.690 11.5: DEFAULT values are omitted */
        if (e->critical_present && !e->critical)
            report(s, L_EXT_CRIT_FALSE, "extension %s encodes critical FALSE explicitly",
                   ext_name(e, b, sizeof b));
        const struct known_ext *k = NULL;
        for (size_t j = 0; j < sizeof known_exts / sizeof known_exts[0]; j++)
            if (mc_der_oid_eq(&e->oid, known_exts[j].oid, known_exts[j].len))
                k = &known_exts[j];
        /* SBR 7.1.2.4 */
        if (!k) {
            report(s, L_EXT_UNKNOWN, "extension %s is not one of SBR 7.1.2.3",
                   oidstr(&e->oid, b, sizeof b));
            continue;
        }
        /* SBR 7.1.2.3(j)(l)(m) */
        if (!(k->types & (1u << s->type)) || !(k->gens & (1u << s->gen)))
            report(s, L_EXT_PROHIBITED, "extension %s is prohibited for this type/generation",
                   k->name);
        /* SBR 7.1.2.3(j)(k)(l)(m) */
        else if (k->must_not_be_critical && e->critical)
            report(s, L_EXT_CRITICAL, "extension %s is critical", k->name);
    }
}

static const char *gen_name(mc_generation g)
{
    return g == MC_GEN_LEGACY ? "legacy" : g == MC_GEN_MULTIPURPOSE ? "multipurpose" : "strict";
}

static const char *type_name(mc_certtype t)
{
    static const char *const n[] = {"?", "mailbox", "organization", "sponsor", "individual"};
    return t >= MC_TYPE_MAILBOX && t <= MC_TYPE_INDIVIDUAL ? n[t] : "?";
}

/* Reserved S/MIME OID 2.23.140.1.5.T.G with T 1..4 and G 1..3 (SBR 7.1.6.1). */
static int reserved_policy(const mc_der_tlv *oid, int *type, int *gen)
{
    if (oid->len != sizeof oid_cabf_smime + 2 ||
        memcmp(oid->val, oid_cabf_smime, sizeof oid_cabf_smime) != 0)
        return 0;
    int t = oid->val[sizeof oid_cabf_smime], g = oid->val[sizeof oid_cabf_smime + 1];
    if (t < 1 || t > 4 || g < 1 || g > 3)
        return 0;
    *type = t;
    *gen = g;
    return 1;
}

/* Reads the reserved OIDs only (to fix type and generation before the other lints run). */
static int scan_policies(const mc_x509 *x, int *type, int *gen)
{
    const mc_x509_ext *e = mc_x509_find_ext(x, OIDL(oid_policies));
    if (!e || e->value.tag != MC_DER_SEQUENCE)
        return 0;
    int n = 0;
    mc_der_cur c = mc_der_cur_in(&e->value);
    mc_der_tlv pi, oid;
    while (mc_der_next(&c, &pi) == MC_OK) {
        mc_der_cur p = mc_der_cur_in(&pi);
        int t, g;
        if (pi.tag == MC_DER_SEQUENCE && mc_der_expect(&p, MC_DER_OID, &oid) == MC_OK &&
            reserved_policy(&oid, &t, &g)) {
            if (n == 0) {
                *type = t;
                *gen = g;
            }
            n++;
        }
    }
    return n;
}

static void lint_qualifier(lstate *s, const mc_der_tlv *pqi)
{
    char b[64];
    mc_der_cur c = mc_der_cur_in(pqi);
    mc_der_tlv id, q;
    if (pqi->tag != MC_DER_SEQUENCE || mc_der_expect(&c, MC_DER_OID, &id) != MC_OK ||
        mc_der_next(&c, &q) != MC_OK || !mc_der_cur_empty(&c)) {
        ext_bad(s, "certificatePolicies", "PolicyQualifierInfo is not {OID, qualifier}");
        return;
    }
    if (mc_der_oid_eq(&id, OIDL(oid_qt_cps))) {
        /* SBR 7.1.2.3(a): CPSuri is an IA5String holding an HTTP(S) URL */
        if (q.tag != MC_DER_IA5STRING || !is_http_or_https(q.val, q.len))
            report(s, L_POL_CPS, "id-qt-cps qualifier \"%s\" (tag 0x%02x) is not an http(s) URL",
                   show(q.val, q.len, b, sizeof b), q.tag);
        else
            lint_url_host(s, "CPS URI", q.val, q.len);
        return;
    }
    if (!mc_der_oid_eq(&id, OIDL(oid_qt_unotice))) {
        report(s, L_EXT_MALFORMED,
               "certificatePolicies: policyQualifierId %s is neither id-qt-cps nor id-qt-unotice",
               oidstr(&id, b, sizeof b));
        return;
    }
    /* UserNotice ::= SEQUENCE { noticeRef NoticeReference OPTIONAL, explicitText OPTIONAL } */
    mc_der_cur u = mc_der_cur_in(&q);
    mc_der_tlv ref, text;
    if (q.tag != MC_DER_SEQUENCE) {
        ext_bad(s, "certificatePolicies", "userNotice is not a SEQUENCE");
        return;
    }
    int has_ref = mc_der_optional(&u, MC_DER_SEQUENCE, &ref);
    int has_text = !mc_der_cur_empty(&u) && mc_der_next(&u, &text) == MC_OK;
    if (!mc_der_cur_empty(&u)) {
        ext_bad(s, "certificatePolicies", "userNotice has trailing data");
        return;
    }
    /* SBR 7.1.2.3(a) */
    if (has_ref)
        report(s, L_UNOTICE_REF, "userNotice contains noticeRef");
    if (!has_text) {
        report(s, L_UNOTICE_NO_TEXT, "userNotice has no explicitText");
        return;
    }
    /* RFC 6818 3 (which replaces RFC 5280 4.2.1.4's paragraph): IA5String MUST NOT, at most 200
     * characters; UTF8String SHOULD, VisibleString and BMPString "acceptable but less
     * preferred". chars: -1 for IA5String, a tag DisplayText does not have, or invalid contents */
    long chars = -1;
    if (text.tag == MC_DER_UTF8STRING) {
        chars = utf8_count(text.val, text.len, NULL);
    } else if (text.tag == MC_DER_VISIBLESTRING) {
        chars = (long)text.len;
        for (size_t i = 0; i < text.len; i++)
            if (text.val[i] < 0x20 || text.val[i] > 0x7e)
                chars = -1;
    } else if (text.tag == MC_DER_BMPSTRING && text.len % 2 == 0) {
        chars = (long)(text.len / 2); /* UCS-2: every code unit a character, none a surrogate */
        for (size_t i = 0; i < text.len; i += 2)
            if (text.val[i] >= 0xd8 && text.val[i] <= 0xdf)
                chars = -1;
    }
    if (text.tag == MC_DER_IA5STRING)
        report(s, L_UNOTICE_TEXT, "explicitText is an IA5String");
    else if (chars < 0)
        report(s, L_UNOTICE_TEXT,
               "explicitText (tag 0x%02x) is not a valid UTF8String, VisibleString or BMPString",
               text.tag);
    else if (chars > 200)
        report(s, L_UNOTICE_TEXT, "explicitText has %ld characters (at most 200)", chars);
    else if (text.tag != MC_DER_UTF8STRING)
        report(s, W_UNOTICE_NOT_UTF8, "explicitText is a %s, not a UTF8String",
               text.tag == MC_DER_BMPSTRING ? "BMPString" : "VisibleString");
}

static void lint_policies(lstate *s, int reserved, int ptype, int pgen)
{
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_policies));
    /* SBR 7.1.2.3(a) */
    if (!e) {
        report(s, L_POL_MISSING, "no certificatePolicies extension");
        return;
    }
    if (e->critical)
        report(s, W_POL_CRITICAL, "certificatePolicies is critical");
    mc_der_cur c;
    if (!seq_of(s, &e->value, "certificatePolicies", &c))
        return;
    mc_der_tlv pi, oid, quals, pqi;
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_next(&c, &pi) != MC_OK || pi.tag != MC_DER_SEQUENCE) {
            ext_bad(s, "certificatePolicies", "PolicyInformation is not a SEQUENCE");
            return;
        }
        mc_der_cur p = mc_der_cur_in(&pi);
        if (mc_der_expect(&p, MC_DER_OID, &oid) != MC_OK) {
            ext_bad(s, "certificatePolicies", "policyIdentifier is not an OID");
            return;
        }
        /* SBR 7.1.2.3(a), 7.1.2.4 as mailca reads them (defs[L_POL_ANY]) */
        if (mc_der_oid_eq(&oid, OIDL(oid_any_policy)))
            report(s, L_POL_ANY, "anyPolicy (2.5.29.32.0) is present");
        if (mc_der_cur_empty(&p))
            continue;
        mc_der_cur q;
        if (mc_der_next(&p, &quals) != MC_OK || !mc_der_cur_empty(&p) ||
            !seq_of(s, &quals, "certificatePolicies policyQualifiers", &q))
            return;
        while (mc_der_next(&q, &pqi) == MC_OK)
            lint_qualifier(s, &pqi);
        if (!mc_der_cur_empty(&q))
            ext_bad(s, "certificatePolicies", "policyQualifiers is not DER");
    }
    if (reserved != 1)
        report(s, L_POL_COUNT,
               "%d reserved S/MIME policy OIDs (2.23.140.1.5.T.G), need "
               "exactly one",
               reserved);
    const mc_profile *prof = s->ctx ? s->ctx->profile : NULL;
    /* SBR 7.1.6.1: the certificate asserts the policy of the profile that made it */
    if (prof && reserved >= 1 && (ptype != (int)prof->type || pgen != (int)prof->generation))
        report(s, L_POL_PROFILE,
               "policy 2.23.140.1.5.%d.%d is not the profile's %s %s "
               "(2.23.140.1.5.%d.%d)",
               ptype, pgen, type_name(prof->type), gen_name(prof->generation), (int)prof->type,
               (int)prof->generation);
}

static void lint_crldp(lstate *s)
{
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_crldp));
    char b[64];
    /* SBR 7.1.2.3(b) */
    if (!e) {
        report(s, L_CRLDP_MISSING, "no cRLDistributionPoints extension");
        return;
    }
    if (e->critical)
        report(s, W_CRLDP_CRITICAL, "cRLDistributionPoints is critical");
    mc_der_cur c;
    if (!seq_of(s, &e->value, "cRLDistributionPoints", &c))
        return;
    int uris = 0, http = 0;
    mc_der_tlv dp, dpn, full, gn;
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_next(&c, &dp) != MC_OK || dp.tag != MC_DER_SEQUENCE) {
            ext_bad(s, "cRLDistributionPoints", "DistributionPoint is not a SEQUENCE");
            return;
        }
        mc_der_cur d = mc_der_cur_in(&dp);
        if (!mc_der_optional(&d, MC_DER_CTX_CONS(0), &dpn))
            continue;
        mc_der_cur n = mc_der_cur_in(&dpn);
        if (!mc_der_optional(&n, MC_DER_CTX_CONS(0), &full))
            continue; /* nameRelativeToCRLIssuer: no URI */
        mc_der_cur f = mc_der_cur_in(&full);
        while (!mc_der_cur_empty(&f)) {
            if (mc_der_next(&f, &gn) != MC_OK) {
                ext_bad(s, "cRLDistributionPoints", "fullName is not DER GeneralNames");
                return;
            }
            if (gn.tag != MC_DER_CTX(6))
                continue;
            uris++;
            lint_url_host(s, "CRL URI", gn.val, gn.len);
            if (is_http(gn.val, gn.len))
                http++;
            else if (s->gen != MC_GEN_LEGACY)
                report(s, L_CRLDP_NOT_HTTP, "CRL URI \"%s\" is not http (Strict/Multipurpose)",
                       show(gn.val, gn.len, b, sizeof b));
        }
    }
    if (uris == 0)
        report(s, L_CRLDP_NO_URI, "no distributionPoint has a fullName URI");
    else if (s->gen == MC_GEN_LEGACY && http == 0)
        report(s, L_CRLDP_NOT_HTTP, "Legacy: none of the %d CRL URIs is http", uris);
}

static void lint_aia(lstate *s)
{
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_aia));
    char b[64];
    /* SBR 7.1.2.3(c) */
    if (!e) {
        report(s, W_AIA_MISSING, "no authorityInformationAccess extension");
        return;
    }
    if (e->critical)
        report(s, L_AIA_CRITICAL, "authorityInformationAccess is critical");
    mc_der_cur c;
    if (!seq_of(s, &e->value, "authorityInformationAccess", &c))
        return;
    int n[2] = {0, 0}, http[2] = {0, 0};
    static const char *const names[2] = {"OCSP", "caIssuers"};
    mc_der_tlv ad, method, loc;
    while (!mc_der_cur_empty(&c)) {
        mc_der_cur a;
        if (mc_der_next(&c, &ad) != MC_OK || ad.tag != MC_DER_SEQUENCE ||
            (a = mc_der_cur_in(&ad), mc_der_expect(&a, MC_DER_OID, &method)) != MC_OK ||
            mc_der_next(&a, &loc) != MC_OK || !mc_der_cur_empty(&a)) {
            ext_bad(s, "authorityInformationAccess",
                    "AccessDescription is not {OID, "
                    "GeneralName}");
            return;
        }
        int i = mc_der_oid_eq(&method, OIDL(oid_ad_ocsp))         ? 0
                : mc_der_oid_eq(&method, OIDL(oid_ad_ca_issuers)) ? 1
                                                                  : -1;
        if (i < 0)
            continue;
        n[i]++;
        if (loc.tag == MC_DER_CTX(6))
            lint_url_host(s, names[i], loc.val, loc.len);
        int ok = loc.tag == MC_DER_CTX(6) && is_http(loc.val, loc.len);
        http[i] += ok;
        if (!ok && s->gen != MC_GEN_LEGACY)
            report(s, L_AIA_NOT_HTTP, "%s location \"%s\" (tag 0x%02x) is not an http URI",
                   names[i], show(loc.val, loc.len, b, sizeof b), loc.tag);
    }
    for (int i = 0; i < 2; i++)
        if (s->gen == MC_GEN_LEGACY && n[i] && !http[i])
            report(s, L_AIA_NOT_HTTP, "Legacy: none of the %d %s locations is http", n[i],
                   names[i]);
    if (n[1] == 0)
        report(s, W_AIA_CA_ISSUERS, "authorityInformationAccess has no caIssuers");
}

static void lint_bc(lstate *s)
{
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_bc));
    if (!e)
        return; /* optional */
    if (e->value.tag != MC_DER_SEQUENCE) {
        ext_bad(s, "basicConstraints", "not a SEQUENCE");
        return;
    }
    mc_der_cur c = mc_der_cur_in(&e->value);
    mc_der_tlv ca, pl;
    int is_ca = 0;
    if (mc_der_optional(&c, MC_DER_BOOLEAN, &ca)) {
        if (mc_der_bool(&ca, &is_ca) != MC_OK || !is_ca) {
            ext_bad(s, "basicConstraints", "cA FALSE (the DEFAULT) encoded explicitly");
            return;
        }
    }
    int has_pl = mc_der_optional(&c, MC_DER_INTEGER, &pl);
    if (!mc_der_cur_empty(&c)) {
        ext_bad(s, "basicConstraints", "unexpected content");
        return;
    }
    /* SBR 7.1.2.3(d) */
    if (is_ca)
        report(s, L_BC_CA, "basicConstraints cA is TRUE");
    if (has_pl)
        report(s, L_BC_PATHLEN, "basicConstraints has pathLenConstraint");
}

enum {
    KU_DS = 1u << 0,
    KU_NR = 1u << 1,
    KU_KE = 1u << 2,
    KU_DE = 1u << 3,
    KU_KA = 1u << 4,
    KU_CS = 1u << 5,
    KU_CRL = 1u << 6,
    KU_EO = 1u << 7,
    KU_DO = 1u << 8,
};

/* SBR 7.1.2.3(e): is this bit set one of the allowed signing / key management / dual-use
 * modes? (Both encipherOnly and decipherOnly has its own lint.) */
static int ku_allowed(uint32_t b, mc_keytype k, mc_generation g)
{
    uint32_t allowed;
    int need_ds_for_nr = (b & KU_NR) && !(b & KU_DS);
    switch (k) {
    case MC_KEY_RSA:
        allowed = KU_DS | KU_NR | KU_KE | (g == MC_GEN_STRICT ? 0 : KU_DE);
        return !(b & ~allowed) && (b & (KU_DS | KU_KE)) && !need_ds_for_nr &&
               (!(b & KU_DE) || (b & KU_KE));
    case MC_KEY_P256:
    case MC_KEY_P384:
    case MC_KEY_P521:
        allowed = KU_DS | KU_NR | KU_KA | KU_EO | KU_DO;
        return !(b & ~allowed) && (b & (KU_DS | KU_KA)) && !need_ds_for_nr &&
               (!(b & (KU_EO | KU_DO)) || (b & KU_KA));
    case MC_KEY_ED25519:
    case MC_KEY_ED448:
        return !(b & ~(KU_DS | KU_NR)) && (b & KU_DS);
    default:
        return 1; /* the SPKI lint already failed */
    }
}

static void lint_ku(lstate *s)
{
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_ku));
    /* SBR 7.1.2.3(e) */
    if (!e) {
        report(s, L_KU_MISSING, "no keyUsage extension");
        return;
    }
    if (!e->critical)
        report(s, W_KU_NOT_CRITICAL, "keyUsage is not critical");
    const mc_der_tlv *t = &e->value;
    /* X.690 11.2.2: named bits without trailing zeros; unused bits zero */
    if (t->tag != MC_DER_BITSTRING || t->len < 1 || t->len > 5 || t->val[0] > 7 ||
        (t->len == 1 && t->val[0] != 0) ||
        (t->len > 1 && (((t->val[t->len - 1] >> t->val[0]) & 1) == 0 ||
                        (t->val[t->len - 1] & ((1u << t->val[0]) - 1)) != 0))) {
        ext_bad(s, "keyUsage", "not a minimal DER named-bit BIT STRING");
        return;
    }
    uint32_t bits = 0;
    for (size_t i = 1; i < t->len; i++)
        for (int j = 0; j < 8; j++)
            if (t->val[i] & (0x80 >> j))
                bits |= 1u << ((i - 1) * 8 + (size_t)j);
    /* RFC 5280 4.2.1.3 */
    if (bits == 0) {
        report(s, L_KU_EMPTY, "keyUsage has no bits set");
        return;
    }
    if ((bits & KU_EO) && (bits & KU_DO)) {
        report(s, L_KU_ENC_DEC, "keyUsage sets both encipherOnly and decipherOnly");
        bits &= ~(uint32_t)(KU_EO | KU_DO);
        bits |= KU_EO; /* judge the rest as if only one were set */
    }
    s->ku = bits;
    if (!ku_allowed(bits, s->key, s->gen))
        report(s, L_KU_BITS, "keyUsage bits 0x%03x are not an allowed %s mode for a %s key",
               (unsigned)bits, gen_name(s->gen), mc_keytype_name(s->key));
}

static void lint_eku(lstate *s)
{
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_eku));
    char b[64];
    /* SBR 7.1.2.3(f) */
    if (!e) {
        report(s, L_EKU_MISSING, "no extKeyUsage extension");
        return;
    }
    mc_der_cur c;
    if (!seq_of(s, &e->value, "extKeyUsage", &c))
        return;
    int email = 0;
    mc_der_tlv kp;
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_expect(&c, MC_DER_OID, &kp) != MC_OK) {
            ext_bad(s, "extKeyUsage", "KeyPurposeId is not an OID");
            return;
        }
        int is_email = mc_der_oid_eq(&kp, OIDL(oid_kp_email));
        /* RFC 5280 4.2.1.12: the purposes consistent with the keyUsage bits */
        uint32_t need = is_email                                  ? KU_DS | KU_NR | KU_KE | KU_KA
                        : mc_der_oid_eq(&kp, OIDL(oid_kp_client)) ? KU_DS | KU_KA
                                                                  : 0;
        if (need && s->ku && !(s->ku & need))
            report(s, W_EKU_KU_INCONSISTENT, "extKeyUsage %s with keyUsage bits 0x%03x",
                   oidstr(&kp, b, sizeof b), (unsigned)s->ku);
        if (is_email) {
            email = 1;
        } else if (mc_der_oid_eq(&kp, OIDL(oid_kp_server)) ||
                   mc_der_oid_eq(&kp, OIDL(oid_kp_code)) || mc_der_oid_eq(&kp, OIDL(oid_kp_time)) ||
                   mc_der_oid_eq(&kp, OIDL(oid_any_eku))) {
            report(s, L_EKU_PROHIBITED, "extKeyUsage contains prohibited %s",
                   oidstr(&kp, b, sizeof b));
        } else if (s->gen == MC_GEN_STRICT) {
            report(s, L_EKU_STRICT, "Strict extKeyUsage contains %s besides emailProtection",
                   oidstr(&kp, b, sizeof b));
        }
    }
    if (!email)
        report(s, L_EKU_NO_EMAIL, "extKeyUsage lacks id-kp-emailProtection");
}

static void lint_aki(lstate *s)
{
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_aki));
    /* SBR 7.1.2.3(g) */
    if (!e) {
        report(s, L_AKI_MISSING, "no authorityKeyIdentifier extension");
        return;
    }
    if (e->critical)
        report(s, L_AKI_CRITICAL, "authorityKeyIdentifier is critical");
    if (e->value.tag != MC_DER_SEQUENCE) {
        ext_bad(s, "authorityKeyIdentifier", "not a SEQUENCE");
        return;
    }
    mc_der_cur c = mc_der_cur_in(&e->value);
    mc_der_tlv kid, iss, sn;
    int has_kid = mc_der_optional(&c, MC_DER_CTX(0), &kid);
    int has_iss = mc_der_optional(&c, MC_DER_CTX_CONS(1), &iss);
    int has_sn = mc_der_optional(&c, MC_DER_CTX(2), &sn);
    if (!mc_der_cur_empty(&c)) {
        ext_bad(s, "authorityKeyIdentifier", "unexpected content");
        return;
    }
    if (!has_kid || kid.len == 0)
        report(s, L_AKI_NO_KEYID, "authorityKeyIdentifier has no (or an empty) keyIdentifier");
    if (has_iss || has_sn)
        report(s, L_AKI_ISSUER_SERIAL, "authorityKeyIdentifier contains %s",
               has_iss && has_sn ? "authorityCertIssuer and authorityCertSerialNumber"
               : has_iss         ? "authorityCertIssuer"
                                 : "authorityCertSerialNumber");
    /* RFC 5280 4.2.1.2 (SBR 7.1.2.4): keyIdentifier is the issuing CA's SKI */
    const mc_issuer *ci = s->ctx ? s->ctx->issuer : NULL;
    if (ci && has_kid && kid.len &&
        (kid.len != ci->ski_len || memcmp(kid.val, ci->ski, kid.len) != 0))
        report(s, L_AKI_MISMATCH,
               "AKI keyIdentifier (%zu bytes, %02x%02x...) is not the "
               "issuer's SKI",
               kid.len, kid.val[0], kid.len > 1 ? kid.val[1] : 0);
}

static void lint_ski_smimecap(lstate *s)
{
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_ski));
    /* SBR 7.1.2.3(n) */
    if (!e) {
        report(s, W_SKI_MISSING, "no subjectKeyIdentifier extension");
    } else {
        if (e->critical)
            report(s, L_SKI_CRITICAL, "subjectKeyIdentifier is critical");
        if (e->value.tag != MC_DER_OCTETSTRING || e->value.len == 0)
            ext_bad(s, "subjectKeyIdentifier", "not a non-empty OCTET STRING");
    }
    /* SBR 7.1.2.3(i) */
    e = mc_x509_find_ext(s->x, OIDL(oid_smimecap));
    if (e && e->critical)
        report(s, L_SMIMECAP_CRITICAL, "smimeCapabilities is critical");
}

/* RFC 9598 3: SmtpUTF8Mailbox syntax and use only for non-ASCII local parts. */
/* Whether the domain after the last '@' has a non-ASCII byte (a U-label). */
static int domain_non_ascii(const uint8_t *p, size_t n)
{
    size_t at;
    if (!split_at(p, n, &at))
        return 0;
    for (size_t i = at + 1; i < n; i++)
        if (p[i] >= 0x80)
            return 1;
    return 0;
}

/* SBR 7.1.4.2.1 (RFC 9598 3, RFC 5891 5.4): every xn-- label of the (ASCII, LDH) domain of a
 * mailbox must be a valid A-label: decode to a valid U-label that encodes back to it. Checked
 * with libidn2 (which allocates), only for domains that have such a label. */
static void lint_alabels(lstate *s, const char *what, const uint8_t *p, size_t n)
{
    size_t at;
    char b[64], out[256];
    if (!split_at(p, n, &at))
        return;
    const uint8_t *d = p + at + 1;
    size_t dn = n - at - 1;
    int has_a = 0;
    for (size_t i = 0; i + 4 <= dn; i++)
        has_a |= (i == 0 || d[i - 1] == '.') && prefix_ci(d + i, dn - i, "xn--");
    if (!has_a)
        return;
    const char *why = NULL;
    int r = mc_idn_to_ascii((const char *)d, dn, out, sizeof out, &why);
    if (r == 0 && strlen(out) != dn) /* LDH input: only the case may differ */
        r = -1, why = "not in canonical A-label form";
    for (size_t i = 0; r == 0 && i < dn; i++)
        if (lower(d[i]) != (uint8_t)out[i])
            r = -1, why = "not in canonical A-label form";
    if (r != 0)
        report(s, L_SAN_ALABEL, "%s \"%s\" has an xn-- label that is not a valid A-label: %s", what,
               show(p, n, b, sizeof b), why);
}

static void lint_smtputf8(lstate *s, const mc_der_tlv *gn)
{
    char b[64];
    mc_der_cur c = mc_der_cur_in(gn);
    mc_der_tlv oid, wrap, v;
    mc_der_expect(&c, MC_DER_OID, &oid);
    mc_der_cur w;
    if (mc_der_expect(&c, MC_DER_CTX_CONS(0), &wrap) != MC_OK || !mc_der_cur_empty(&c) ||
        (w = mc_der_cur_in(&wrap), mc_der_expect(&w, MC_DER_UTF8STRING, &v)) != MC_OK ||
        !mc_der_cur_empty(&w)) {
        report(s, L_SAN_UTF8_SYNTAX, "SmtpUTF8Mailbox value is not [0] EXPLICIT UTF8String");
        return;
    }
    int bom;
    size_t at;
    /* SBR 7.1.4.2.1, RFC 9598 3: the domain as A-labels, never U-labels */
    if (domain_non_ascii(v.val, v.len)) {
        report(s, L_SAN_ULABEL, "SmtpUTF8Mailbox \"%s\" has a U-label domain",
               show(v.val, v.len, b, sizeof b));
        return;
    }
    if (utf8_count(v.val, v.len, &bom) < 0 || bom || !split_at(v.val, v.len, &at) ||
        !local_part_ok(v.val, at, 1) || !domain_ok(v.val + at + 1, v.len - at - 1, 1)) {
        report(s, L_SAN_UTF8_SYNTAX,
               "SmtpUTF8Mailbox \"%s\" is not a mailbox with a lowercase "
               "A-label domain%s",
               show(v.val, v.len, b, sizeof b), bom ? " (has a BOM)" : "");
        return;
    }
    lint_alabels(s, "SmtpUTF8Mailbox", v.val, v.len);
    int non_ascii = 0;
    for (size_t i = 0; i < at; i++)
        non_ascii |= v.val[i] >= 0x80;
    if (!non_ascii)
        report(s, L_SAN_UTF8_ASCII,
               "SmtpUTF8Mailbox \"%s\" has an ASCII local part "
               "(use rfc822Name)",
               show(v.val, v.len, b, sizeof b));
}

static void lint_san(lstate *s)
{
    const mc_x509_ext *e = s->san;
    char b[64];
    /* SBR 7.1.2.3(h) */
    if (!e) {
        report(s, L_SAN_MISSING, "no subjectAltName extension");
        return;
    }
    int empty_subject = s->x->subject.len == 0;
    /* RFC 5280 4.2.1.6 */
    if (empty_subject && !e->critical)
        report(s, L_SAN_NOT_CRITICAL, "subject is empty and subjectAltName is not critical");
    if (!empty_subject && e->critical)
        report(s, W_SAN_CRITICAL, "subjectAltName is critical while the subject is not empty");
    mc_der_cur c;
    if (!seq_of(s, &e->value, "subjectAltName", &c))
        return;
    int mailboxes = 0;
    mc_der_tlv gn, oid;
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_next(&c, &gn) != MC_OK) {
            ext_bad(s, "subjectAltName", "GeneralNames is not DER");
            return;
        }
        mc_der_cur o;
        switch (gn.tag) {
        case MC_DER_CTX(1): /* rfc822Name, SBR 7.1.4.2.1 via SBR 1.6.1 Mailbox Address */
            mailboxes++;
            /* SBR 7.1.4.2.1, RFC 9598 3: an IDN domain goes in as A-labels */
            if (domain_non_ascii(gn.val, gn.len))
                report(s, L_SAN_ULABEL, "rfc822Name \"%s\" has a U-label domain",
                       show(gn.val, gn.len, b, sizeof b));
            else if (!ascii_mailbox_ok(gn.val, gn.len))
                report(s, L_SAN_RFC822, "rfc822Name \"%s\" is not an ASCII RFC 5321 mailbox",
                       show(gn.val, gn.len, b, sizeof b));
            else
                lint_alabels(s, "rfc822Name", gn.val, gn.len);
            break;
        case MC_DER_CTX_CONS(0):
            o = mc_der_cur_in(&gn);
            if (mc_der_expect(&o, MC_DER_OID, &oid) != MC_OK) {
                ext_bad(s, "subjectAltName", "otherName has no type-id");
                return;
            }
            if (mc_der_oid_eq(&oid, OIDL(oid_smtputf8))) {
                mailboxes++;
                lint_smtputf8(s, &gn);
            } else if (s->gen == MC_GEN_STRICT) {
                /* SBR 7.1.4.2.1 */
                report(s, L_SAN_OTHERNAME_STRICT, "Strict SAN has otherName %s",
                       oidstr(&oid, b, sizeof b));
            }
            break;
        case MC_DER_CTX_CONS(4): /* directoryName: allowed (SBR 7.1.4.2.1) */
            break;
        case MC_DER_CTX(2):
        case MC_DER_CTX_CONS(3):
        case MC_DER_CTX_CONS(5):
        case MC_DER_CTX(6):
        case MC_DER_CTX(7):
        case MC_DER_CTX(8): {
            /* SBR 7.1.4.2.1 */
            static const char *const n[] = {"",
                                            "",
                                            "dNSName",
                                            "x400Address",
                                            "",
                                            "ediPartyName",
                                            "uniformResourceIdentifier",
                                            "iPAddress",
                                            "registeredID"};
            report(s, L_SAN_PROHIBITED, "SAN contains %s%s%s%s", n[gn.tag & 0x1f],
                   gn.tag & 0x20 ? "" : " \"",
                   gn.tag & 0x20 ? "" : show(gn.val, gn.len, b, sizeof b),
                   gn.tag & 0x20 ? "" : "\"");
            break;
        }
        default:
            ext_bad(s, "subjectAltName", "unknown GeneralName tag");
            return;
        }
    }
    /* SBR 7.1.4.2.1 */
    if (mailboxes == 0)
        report(s, L_SAN_NO_MAILBOX, "SAN has no rfc822Name or SmtpUTF8Mailbox");
}

/* ---- lints: subject ---- */

static void lint_subject_attr(lstate *s, const mc_der_tlv *oid, const mc_der_tlv *v)
{
    char b[64], o[64];
    const struct known_attr *a = NULL;
    for (size_t i = 0; i < sizeof known_attrs / sizeof known_attrs[0]; i++)
        if (mc_der_oid_eq(oid, known_attrs[i].oid, known_attrs[i].len))
            a = &known_attrs[i];
    const char *name = a ? a->name : oidstr(oid, o, sizeof o);
    /* the subject's own attributes, or those of a SAN directoryName (s->prefix says which) */
    const char *w = s->prefix && s->prefix[0] ? "attribute" : "subject";
    /* SBR 7.1.4.2.3 (mailbox), 7.1.4.2.4-6 */
    unsigned gens = a ? a->gens[s->type] : other_attr_gens[s->type];
    if (!(gens & (1u << s->gen))) {
        report(s, L_SUBJ_PROHIBITED, "%s %s is not allowed in a %s %s certificate", w, name,
               type_name(s->type), gen_name(s->gen));
        return;
    }
    if (!a)
        return; /* Legacy "other" attributes: no format to check */
    /* SBR 7.1.4: PrintableString or UTF8String for DirectoryString; RFC 5280 App. A */
    int tag_ok = a->str == S_DIR ? v->tag == MC_DER_PRINTABLESTRING || v->tag == MC_DER_UTF8STRING
                 : a->str == S_PRINTABLE ? v->tag == MC_DER_PRINTABLESTRING
                                         : v->tag == MC_DER_IA5STRING;
    long chars = -1;
    if (tag_ok && v->tag == MC_DER_UTF8STRING) {
        chars = utf8_count(v->val, v->len, NULL);
    } else if (tag_ok) {
        chars = (long)v->len;
        for (size_t i = 0; i < v->len; i++)
            if (v->tag == MC_DER_PRINTABLESTRING ? !printable_char(v->val[i]) : v->val[i] >= 0x80)
                chars = -1;
    }
    if (!tag_ok || chars < 0) {
        report(s, L_SUBJ_ENCODING, "%s %s \"%s\" is tag 0x%02x%s", w, name,
               show(v->val, v->len, b, sizeof b), v->tag,
               tag_ok ? " with characters outside its type" : ", a string type not allowed");
        return;
    }
    /* RFC 5280 Appendix A upper bounds */
    if (a->ub && (size_t)chars > a->ub)
        report(s, L_SUBJ_LENGTH, "%s %s is %ld characters (upper bound %zu)", w, name, chars,
               a->ub);
    /* SBR 7.1.4.2 */
    if (placeholder(v->val, v->len)) {
        report(s, L_SUBJ_PLACEHOLDER, "%s %s \"%s\" is only a placeholder", w, name,
               show(v->val, v->len, b, sizeof b));
        return;
    }
    /* SBR 7.1.4.2.2(a): a mailbox-validated CN is a SAN mailbox */
    if (oid->len == 3 && oid->val[2] == 0x03 && s->type == MC_TYPE_MAILBOX &&
        !in_san(s, v->val, v->len))
        report(s, L_SUBJ_CN, "commonName \"%s\" is not a mailbox in the SAN",
               show(v->val, v->len, b, sizeof b));
    /* SBR 7.1.4.2.2(h), 7.1.4.2.1: one mailbox, repeated in the SAN */
    if (mc_der_oid_eq(oid, OIDL(oid_at_email)) &&
        (!ascii_mailbox_ok(v->val, v->len) || !in_san(s, v->val, v->len)))
        report(s, L_SUBJ_EMAIL, "emailAddress \"%s\" is %s", show(v->val, v->len, b, sizeof b),
               ascii_mailbox_ok(v->val, v->len) ? "not in the SAN" : "not a single mailbox");
}

/* ASCII-case-insensitive substring search (a personal name in a commonName). */
static int contains_ci(const uint8_t *h, size_t hn, const uint8_t *n, size_t nn)
{
    if (nn == 0 || nn > hn)
        return 0;
    for (size_t i = 0; i + nn <= hn; i++) {
        size_t k = 0;
        while (k < nn && lower(h[i + k]) == lower(n[k]))
            k++;
        if (k == nn)
            return 1;
    }
    return 0;
}

static int tlv_eq(const mc_der_tlv *a, const mc_der_tlv *b)
{
    return a->len == b->len && memcmp(a->val, b->val, a->len) == 0;
}

static void lint_orgids(lstate *s, const mc_der_tlv *country);

/* Rules that tie attributes together, per type (SBR 7.1.4.2.2 - 7.1.4.2.6). v[i] is the first
 * value of known_attrs[i], NULL when absent. */
static void lint_subject_set(lstate *s, const mc_der_tlv *const *v)
{
    char b[64], b2[64];
    if (s->type == MC_TYPE_MAILBOX)
        return; /* every attribute below is already e_smime_subject_attribute_prohibited */
    int org = s->type == MC_TYPE_ORGANIZATION || s->type == MC_TYPE_SPONSOR;
    int person = s->type == MC_TYPE_SPONSOR || s->type == MC_TYPE_INDIVIDUAL;
    /* SBR 7.1.4.2.4, 7.1.4.2.5: SHALL */
    if (org && (!v[A_O] || !v[A_ORGID]))
        report(s, L_SUBJ_REQUIRED, "%s certificate without %s%s%s", type_name(s->type),
               v[A_O] ? "" : "organizationName", !v[A_O] && !v[A_ORGID] ? " and " : "",
               v[A_ORGID] ? "" : "organizationIdentifier");
    int names = v[A_GN] || v[A_SN];
    /* SBR 7.1.4.2.5, 7.1.4.2.6 Note 2 */
    if (person && s->gen != MC_GEN_LEGACY && !names && !v[A_PSEUDO])
        report(s, L_SUBJ_NAME_MISSING,
               "%s %s certificate has neither givenName/surname nor "
               "pseudonym",
               type_name(s->type), gen_name(s->gen));
    /* SBR 7.1.4.2.2(e)(f) */
    if (names && v[A_PSEUDO])
        report(s, L_SUBJ_PSEUDO_MIX, "pseudonym \"%s\" together with %s",
               show(v[A_PSEUDO]->val, v[A_PSEUDO]->len, b, sizeof b),
               v[A_GN] ? "givenName" : "surname");
    /* SBR 7.1.4.2.2(j) */
    if (v[A_STREET] && !v[A_L] && !v[A_ST])
        report(s, L_STREET_DEP, "streetAddress without localityName or stateOrProvinceName");
    /* SBR 7.1.4.2.2(k)(l)(m) */
    if (!v[A_C] && (v[A_L] || v[A_ST] || v[A_POSTAL]))
        report(s, L_ADDR_COUNTRY, "%s without countryName",
               v[A_L]    ? "localityName"
               : v[A_ST] ? "stateOrProvinceName"
                         : "postalCode");
    /* SBR 7.1.4.2.2(n) (type and length are e_subject_attribute_encoding/too_long) */
    int c_ok = v[A_C] && v[A_C]->tag == MC_DER_PRINTABLESTRING && v[A_C]->len == 2;
    if (c_ok && !mc_country_code_valid((const char *)v[A_C]->val, 2)) {
        report(s, L_COUNTRY, "countryName \"%s\" is not an ISO 3166-1 alpha-2 code or XX",
               show(v[A_C]->val, v[A_C]->len, b, sizeof b));
        c_ok = 0;
    }
    /* SBR 7.1.4.2.2(d) and its Note 1: every organizationIdentifier, not only the first */
    if (v[A_ORGID])
        lint_orgids(s, c_ok ? v[A_C] : NULL);
    /* SBR 7.1.4.2.2(a): commonName contents by type (mailbox-validated: e_smime_mailbox_cn_...) */
    const mc_der_tlv *cn = v[A_CN];
    if (!cn || s->type == MC_TYPE_MAILBOX || in_san(s, cn->val, cn->len))
        return;
    show(cn->val, cn->len, b, sizeof b);
    if (memchr(cn->val, '@', cn->len)) {
        /* a mailbox, but not one of the SAN's (SBR 7.1.4.2.1) */
        report(s, L_CN_VALUE, "commonName \"%s\" looks like a mailbox that is not in the SAN", b);
        return;
    }
    if (s->type == MC_TYPE_ORGANIZATION) {
        if (!v[A_O] || !tlv_eq(cn, v[A_O]))
            report(s, L_CN_VALUE,
                   "commonName \"%s\" is neither organizationName \"%s\" nor a SAN "
                   "mailbox",
                   b, v[A_O] ? show(v[A_O]->val, v[A_O]->len, b2, sizeof b2) : "");
        return;
    }
    if (v[A_PSEUDO]) {
        if (!tlv_eq(cn, v[A_PSEUDO]))
            report(s, L_CN_PSEUDO, "commonName \"%s\" is not the pseudonym \"%s\"", b,
                   show(v[A_PSEUDO]->val, v[A_PSEUDO]->len, b2, sizeof b2));
        return;
    }
    /* A Personal Name: at least one of the verified names appears in it (a heuristic: local
     * presentation and abbreviations vary, SBR 3.1.2). Without names (Legacy) nothing to judge. */
    if (names && !(v[A_SN] && contains_ci(cn->val, cn->len, v[A_SN]->val, v[A_SN]->len)) &&
        !(v[A_GN] && contains_ci(cn->val, cn->len, v[A_GN]->val, v[A_GN]->len)))
        report(s, L_CN_VALUE, "commonName \"%s\" holds neither givenName nor surname", b);
}

/* The attributes of a Name (SEQUENCE OF SET OF AttributeTypeAndValue), one at a time: the
 * walk every per-attribute lint shares. An attribute without a type and value is skipped (its
 * structure is checked by the parser for the subject, by lint_dirnames for a directoryName). */
typedef struct name_iter {
    mc_der_cur name, rdn;
    int in_rdn;
} name_iter;

static name_iter name_iter_make(const mc_der_tlv *name)
{
    return (name_iter){.name = mc_der_cur_in(name)};
}

static int name_next(name_iter *it, mc_der_tlv *oid, mc_der_tlv *v)
{
    mc_der_tlv rdn, atv;
    for (;;) {
        if (!it->in_rdn) {
            if (mc_der_next(&it->name, &rdn) != MC_OK)
                return 0;
            it->rdn = mc_der_cur_in(&rdn);
            it->in_rdn = 1;
        }
        if (mc_der_next(&it->rdn, &atv) != MC_OK) {
            it->in_rdn = 0;
            continue;
        }
        mc_der_cur a = mc_der_cur_in(&atv);
        if (mc_der_next(&a, oid) == MC_OK && mc_der_next(&a, v) == MC_OK)
            return 1;
    }
}

static void name_mailboxes(lstate *s);

/* The attributes of one Name and the rules that tie them together (s->name: the subject, or a
 * SAN directoryName, which SBR 7.1.4.2.1 holds to the same Sections 7.1.4.2.2-7.1.4.2.6). */
static void lint_name(lstate *s)
{
    name_iter it = name_iter_make(s->name);
    mc_der_tlv oid, v;
    mc_der_tlv first[A_COUNT];
    const mc_der_tlv *seen[A_COUNT] = {0};
    while (name_next(&it, &oid, &v)) {
        lint_subject_attr(s, &oid, &v);
        for (int i = 0; i < A_COUNT; i++)
            if (!seen[i] && mc_der_oid_eq(&oid, known_attrs[i].oid, known_attrs[i].len)) {
                first[i] = v;
                seen[i] = &first[i];
            }
    }
    lint_subject_set(s, seen);
    name_mailboxes(s);
}

static void lint_subject(lstate *s)
{
    s->name = &s->x->subject;
    s->prefix = "";
    lint_name(s);
}

/* Is n a well-formed Name: a SEQUENCE OF SET OF SEQUENCE { OID, value }, nothing left over? */
static int name_well_formed(const mc_der_tlv *n)
{
    if (n->tag != MC_DER_SEQUENCE)
        return 0;
    mc_der_cur c = mc_der_cur_in(n);
    mc_der_tlv rdn, atv, oid, v;
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_next(&c, &rdn) != MC_OK || rdn.tag != MC_DER_SET || rdn.len == 0)
            return 0;
        mc_der_cur r = mc_der_cur_in(&rdn);
        while (!mc_der_cur_empty(&r)) {
            if (mc_der_next(&r, &atv) != MC_OK || atv.tag != MC_DER_SEQUENCE)
                return 0;
            mc_der_cur a = mc_der_cur_in(&atv);
            if (mc_der_expect(&a, MC_DER_OID, &oid) != MC_OK || mc_der_next(&a, &v) != MC_OK ||
                !mc_der_cur_empty(&a))
                return 0;
        }
    }
    return 1;
}

/* SBR 7.1.4.2.1: a SAN directoryName "complies with the requirements set forth in Sections
 * 7.1.4.2.2 through 7.1.4.2.6, according to the Certificate Type": each is linted as the
 * subject is, its findings prefixed with the entry it came from. */
static void lint_dirnames(lstate *s)
{
    if (!s->san || s->san->value.tag != MC_DER_SEQUENCE)
        return; /* missing or malformed: L_SAN_MISSING / L_EXT_MALFORMED */
    mc_der_cur c = mc_der_cur_in(&s->san->value);
    mc_der_tlv gn, name;
    char where[40];
    for (int k = 0; mc_der_next(&c, &gn) == MC_OK; k++) {
        if (gn.tag != MC_DER_CTX_CONS(4))
            continue;
        snprintf(where, sizeof where, "SAN entry #%d (directoryName)", k + 1);
        mc_der_cur d = mc_der_cur_in(&gn);
        s->prefix = where;
        if (mc_der_next(&d, &name) != MC_OK || !mc_der_cur_empty(&d) || !name_well_formed(&name)) {
            report(s, L_EXT_MALFORMED, "not a well-formed Name");
            continue;
        }
        /* RFC 5280 4.2.1.6: "conforming CAs MUST NOT issue certificates with subjectAltNames
         * containing empty GeneralName fields"; a Name of no RDN names nothing */
        if (name.len == 0) {
            report(s, L_SAN_DIRNAME_EMPTY, "the directoryName is an empty Name (no RDN)");
            continue;
        }
        s->name = &name;
        lint_name(s);
    }
    s->name = &s->x->subject;
    s->prefix = "";
}

/* SBR 7.1.2.3(l), ISO 17442: the LEI extension value (where the type allows it at all). */
static void lint_lei(lstate *s)
{
    char b[64];
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_lei));
    if (!e || (s->type != MC_TYPE_ORGANIZATION && s->type != MC_TYPE_SPONSOR))
        return;
    if (e->value.tag != MC_DER_PRINTABLESTRING ||
        !mc_lei_valid((const char *)e->value.val, e->value.len))
        report(s, L_LEI_FORMAT,
               "LEI \"%s\" (tag 0x%02x) is not a 20-character LEI with valid "
               "check digits",
               show(e->value.val, e->value.len, b, sizeof b), e->value.tag);
}

/* SBR 7.1.2.3(l), ISO 17442-2 Clause 4: the role extension value (sponsor certificates; where it
 * is prohibited lint_ext_list reports it). */
static void lint_lei_role(lstate *s)
{
    char b[64];
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_lei_role));
    if (!e || s->type != MC_TYPE_SPONSOR)
        return;
    if (e->value.tag != MC_DER_PRINTABLESTRING ||
        !mc_lei_role_valid((const char *)e->value.val, e->value.len))
        report(s, L_LEI_ROLE_FORMAT,
               "role \"%s\" (tag 0x%02x) is not a PrintableString of 1..100 characters",
               show(e->value.val, e->value.len, b, sizeof b), e->value.tag);
}

/* ---- qcStatements, SBR 7.1.2.3(k): RFC 3739 3.2.6 and ETSI EN 319 412-5 4 ---- */

static int qcs_bad(lstate *s, const char *why)
{
    report(s, L_QCS_MALFORMED, "qcStatements: %s", why);
    return 0;
}

/* Every element of a non-empty SEQUENCE OF has tag (and, for strings, len 2 when two). */
static int qcs_seq_of(const mc_der_tlv *t, unsigned tag, int two)
{
    if (t->tag != MC_DER_SEQUENCE || t->len == 0)
        return 0;
    mc_der_cur c = mc_der_cur_in(t);
    mc_der_tlv v;
    while (!mc_der_cur_empty(&c))
        if (mc_der_next(&c, &v) != MC_OK || v.tag != tag || (two && v.len != 2))
            return 0;
    return 1;
}

/* QcType (4.2.3): esign for natural persons, eseal for legal persons; web is for websites. */
static void lint_qc_type(lstate *s, const mc_der_tlv *info)
{
    mc_der_cur c = mc_der_cur_in(info);
    mc_der_tlv v;
    int legal = s->type == MC_TYPE_ORGANIZATION;
    while (mc_der_next(&c, &v) == MC_OK) {
        if (mc_der_oid_eq(&v, OIDL(oid_qct_web)))
            report(s, L_QCS_TYPE, "QcType web (website authentication) in an S/MIME certificate");
        else if (s->type == MC_TYPE_MAILBOX &&
                 (mc_der_oid_eq(&v, OIDL(oid_qct_esign)) || mc_der_oid_eq(&v, OIDL(oid_qct_eseal))))
            report(s, L_QCS_TYPE,
                   "QcType in a mailbox-validated certificate (no subject identity)");
        else if (mc_der_oid_eq(&v, OIDL(oid_qct_esign)) && legal)
            report(s, L_QCS_TYPE, "QcType esign in an organization-validated certificate");
        else if (mc_der_oid_eq(&v, OIDL(oid_qct_eseal)) && !legal)
            report(s, L_QCS_TYPE, "QcType eseal in a %s certificate", type_name(s->type));
    }
}

/* ETSI EN 319 412-1 5.1.3: a natural person identifier reads "PAS", "IDC", "PNO", "TAX", "TIN"
 * or a national scheme's two characters and ":", then an ISO 3166-1 alpha-2 country code, "-"
 * and the identifier (at least one character). */
static int natural_id_ok(const uint8_t *p, size_t n)
{
    static const char *const types[] = {"PAS", "IDC", "PNO", "TAX", "TIN"};
    int known = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0] && !known; i++)
        known = n >= 3 && memcmp(p, types[i], 3) == 0;
    if (!known &&
        !(n >= 3 && p[2] == ':' && p[0] > 0x20 && p[1] > 0x20 && p[0] < 0x7f && p[1] < 0x7f))
        return 0;
    return n > 6 && p[3] >= 'A' && p[3] <= 'Z' && p[4] >= 'A' && p[4] <= 'Z' && p[5] == '-';
}

/* With semanticsId-Natural, every subject serialNumber is such an identifier. */
static void lint_qc_natural_serial(lstate *s)
{
    char b[64];
    name_iter it = name_iter_make(&s->x->subject);
    mc_der_tlv oid, v;
    while (name_next(&it, &oid, &v))
        if (mc_der_oid_eq(&oid, known_attrs[A_SERIAL].oid, known_attrs[A_SERIAL].len) &&
            !natural_id_ok(v.val, v.len))
            report(s, L_QCS_NATURAL_SN,
                   "serialNumber \"%s\" is not a natural person identifier (semanticsId-"
                   "Natural)",
                   show(v.val, v.len, b, sizeof b));
}

/* SemanticsInformation ::= SEQUENCE { semanticsIdentifier OID OPTIONAL,
 *   nameRegistrationAuthorities SEQUENCE OF GeneralName OPTIONAL } -- at least one present */
static int lint_qc_semantics(lstate *s, const mc_der_tlv *info)
{
    if (info->tag != MC_DER_SEQUENCE || info->len == 0)
        return qcs_bad(s, "SemanticsInformation is not a non-empty SEQUENCE");
    mc_der_cur c = mc_der_cur_in(info);
    mc_der_tlv id, nra;
    int has_id = mc_der_optional(&c, MC_DER_OID, &id);
    if (mc_der_optional(&c, MC_DER_SEQUENCE, &nra) && nra.len == 0)
        return qcs_bad(s, "nameRegistrationAuthorities is empty");
    if (!mc_der_cur_empty(&c))
        return qcs_bad(s, "SemanticsInformation has unexpected fields");
    int legal = s->type == MC_TYPE_ORGANIZATION;
    /* ETSI EN 319 412-1 5.1: natural person identifiers (serialNumber) vs legal person ones
     * (organizationIdentifier) */
    if (has_id && mc_der_oid_eq(&id, OIDL(oid_qc_sem_natural)) && legal)
        report(s, L_QCS_TYPE, "semanticsId-Natural in an organization-validated certificate");
    else if (has_id && mc_der_oid_eq(&id, OIDL(oid_qc_sem_legal)) && !legal)
        report(s, L_QCS_TYPE, "semanticsId-Legal in a %s certificate", type_name(s->type));
    /* ETSI EN 319 412-1 5.1.3 */
    if (has_id && mc_der_oid_eq(&id, OIDL(oid_qc_sem_natural)))
        lint_qc_natural_serial(s);
    return 1;
}

/* PdsLocations ::= SEQUENCE SIZE (1..MAX) OF SEQUENCE { url IA5String, language PrintableString
 * (SIZE(2)) } (4.3.4): the URL https. */
static int lint_qc_pds(lstate *s, const mc_der_tlv *info)
{
    char b[64];
    if (info->tag != MC_DER_SEQUENCE || info->len == 0)
        return qcs_bad(s, "QcPDS is not a non-empty SEQUENCE OF PdsLocation");
    mc_der_cur c = mc_der_cur_in(info);
    mc_der_tlv loc, url, lang;
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_expect(&c, MC_DER_SEQUENCE, &loc) != MC_OK)
            return qcs_bad(s, "PdsLocation is not a SEQUENCE");
        mc_der_cur l = mc_der_cur_in(&loc);
        if (mc_der_expect(&l, MC_DER_IA5STRING, &url) != MC_OK ||
            mc_der_expect(&l, MC_DER_PRINTABLESTRING, &lang) != MC_OK || lang.len != 2 ||
            !mc_der_cur_empty(&l))
            return qcs_bad(s, "PdsLocation is not {IA5String url, PrintableString(SIZE(2))}");
        if (!prefix_ci(url.val, url.len, "https://") || url.len <= 8) {
            report(s, L_QCS_MALFORMED, "qcStatements: PDS URL \"%s\" is not https",
                   show(url.val, url.len, b, sizeof b));
            return 0;
        }
    }
    return 1;
}

static void lint_qcs(lstate *s)
{
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_qcs));
    if (!e)
        return;
    /* QCStatements ::= SEQUENCE OF QCStatement; an empty one states nothing */
    if (e->value.tag != MC_DER_SEQUENCE || e->value.len == 0) {
        qcs_bad(s, "not a non-empty SEQUENCE OF QCStatement");
        return;
    }
    mc_der_cur c = mc_der_cur_in(&e->value);
    mc_der_tlv st, ids[16];
    size_t n = 0;
    char b[64];
    while (!mc_der_cur_empty(&c)) {
        mc_der_tlv id, info;
        if (mc_der_expect(&c, MC_DER_SEQUENCE, &st) != MC_OK) {
            qcs_bad(s, "a QCStatement is not a SEQUENCE");
            return;
        }
        mc_der_cur q = mc_der_cur_in(&st);
        if (mc_der_expect(&q, MC_DER_OID, &id) != MC_OK) {
            qcs_bad(s, "a QCStatement has no statementId");
            return;
        }
        int has_info = !mc_der_cur_empty(&q);
        if (has_info && (mc_der_next(&q, &info) != MC_OK || !mc_der_cur_empty(&q))) {
            qcs_bad(s, "a QCStatement has more than statementId and statementInfo");
            return;
        }
        for (size_t i = 0; i < n; i++)
            if (mc_der_oid_eq(&ids[i], id.val, id.len)) {
                report(s, L_QCS_MALFORMED, "qcStatements: statement %s appears twice",
                       oidstr(&id, b, sizeof b));
                return;
            }
        if (n < sizeof ids / sizeof ids[0])
            ids[n++] = id;
        /* ETSI EN 319 412-5 4.2.1, 4.2.2: QcCompliance and QcSSCD carry no statementInfo */
        if (mc_der_oid_eq(&id, OIDL(oid_qc_compliance)) || mc_der_oid_eq(&id, OIDL(oid_qc_sscd))) {
            if (has_info) {
                report(s, L_QCS_MALFORMED, "qcStatements: %s has a statementInfo",
                       mc_der_oid_eq(&id, OIDL(oid_qc_sscd)) ? "QcSSCD" : "QcCompliance");
                return;
            }
        } else if (mc_der_oid_eq(&id, OIDL(oid_qc_retention))) {
            int64_t years; /* 4.3.3: QcEuRetentionPeriod ::= INTEGER (years) */
            if (!has_info || info.tag != MC_DER_INTEGER || mc_der_int_i64(&info, &years) != MC_OK ||
                years < 1) {
                qcs_bad(s, "QcRetentionPeriod is not a positive INTEGER");
                return;
            }
        } else if (mc_der_oid_eq(&id, OIDL(oid_qc_limit))) {
            /* 4.3.2: QcEuLimitValue ::= SEQUENCE { currency (PrintableString SIZE(3) or INTEGER),
             * amount INTEGER, exponent INTEGER } */
            mc_der_tlv cur, amt, ex;
            mc_der_cur l = has_info && info.tag == MC_DER_SEQUENCE ? mc_der_cur_in(&info)
                                                                   : mc_der_cur_make(NULL, 0);
            if (!has_info || mc_der_next(&l, &cur) != MC_OK ||
                !((cur.tag == MC_DER_PRINTABLESTRING && cur.len == 3) ||
                  cur.tag == MC_DER_INTEGER) ||
                mc_der_expect(&l, MC_DER_INTEGER, &amt) != MC_OK ||
                mc_der_expect(&l, MC_DER_INTEGER, &ex) != MC_OK || !mc_der_cur_empty(&l)) {
                qcs_bad(s, "QcLimitValue is not {currency, amount, exponent}");
                return;
            }
        } else if (mc_der_oid_eq(&id, OIDL(oid_qc_pds))) {
            if (!has_info) {
                qcs_bad(s, "QcPDS without PdsLocations");
                return;
            }
            if (!lint_qc_pds(s, &info))
                return;
        } else if (mc_der_oid_eq(&id, OIDL(oid_qc_type))) {
            if (!has_info || !qcs_seq_of(&info, MC_DER_OID, 0)) {
                qcs_bad(s, "QcType is not a non-empty SEQUENCE OF OBJECT IDENTIFIER");
                return;
            }
            lint_qc_type(s, &info);
        } else if (mc_der_oid_eq(&id, OIDL(oid_qc_legislation))) {
            if (!has_info || !qcs_seq_of(&info, MC_DER_PRINTABLESTRING, 1)) {
                qcs_bad(s, "QcCClegislation is not a SEQUENCE OF PrintableString (SIZE(2))");
                return;
            }
        } else if (mc_der_oid_eq(&id, OIDL(oid_qcs_pkix_v1)) ||
                   mc_der_oid_eq(&id, OIDL(oid_qcs_pkix_v2))) {
            /* RFC 3739 3.2.6.1: statementInfo SemanticsInformation OPTIONAL */
            if (has_info && !lint_qc_semantics(s, &info))
                return;
        }
        /* other statements (other legal frameworks, RFC 3739 3.2.6) are not judged */
    }
}

/* ---- entry points ---- */

/* ---- lints found by comparing with pkilint's S/MIME test corpus (issue 3) ---- */

/* Does this attribute value read as a Mailbox Address (SBR 1.6.1: RFC 5321 local@domain, the
 * local part RFC 6532 UTF-8 allowed, the domain LDH or with U-labels)? */
static int value_is_mailbox(const uint8_t *p, size_t n)
{
    size_t at;
    if (!split_at(p, n, &at) || at == 0 || !local_part_ok(p, at, 1))
        return 0;
    const uint8_t *d = p + at + 1;
    size_t dn = n - at - 1;
    if (domain_ok(d, dn, 0))
        return 1;
    if (!domain_non_ascii(p, n) || dn == 0 || d[0] == '.' || d[dn - 1] == '.')
        return 0;
    for (size_t i = 0; i < dn; i++)
        if (d[i] <= ' ' || d[i] == '@' || d[i] == 0x7f)
            return 0;
    return 1;
}

/* SBR 7.1.4.2.1: "All Mailbox Addresses in the subject field or entries of type directoryName
 * of this extension SHALL be repeated as rfc822Name or otherName values of type
 * id-on-SmtpUTF8Mailbox", for s->name (lint_name: the subject and each SAN directoryName).
 * commonName and emailAddress have their own lints there (L_SUBJ_CN, L_CN_VALUE, L_SUBJ_EMAIL)
 * and are skipped. */
static void name_mailboxes(lstate *s)
{
    char b[64], o[64];
    const char *w = s->prefix && s->prefix[0] ? "attribute" : "subject";
    name_iter it = name_iter_make(s->name);
    mc_der_tlv oid, v;
    while (name_next(&it, &oid, &v)) {
        if (mc_der_oid_eq(&oid, known_attrs[A_CN].oid, known_attrs[A_CN].len) ||
            mc_der_oid_eq(&oid, OIDL(oid_at_email)))
            continue;
        if (v.tag != MC_DER_UTF8STRING && v.tag != MC_DER_PRINTABLESTRING &&
            v.tag != MC_DER_IA5STRING)
            continue;
        if (value_is_mailbox(v.val, v.len) && !in_san(s, v.val, v.len))
            report(s, L_NAME_MAILBOX, "%s %s \"%s\" is a mailbox that is not in the SAN", w,
                   oidstr(&oid, o, sizeof o), show(v.val, v.len, b, sizeof b));
    }
}

/* SBR 7.1.4.2.2(d) Note 3 (since 1.0.9): a German NTR Registration Reference SHOULD be the EUID:
 * "DE", the register identifier, '.', the locally-assigned reference. An EUID is unique at the
 * national level, so a subdivision ("NTRDE+BY-...") is not EUID use either. */
static void lint_orgid_euid(lstate *s, const uint8_t *p, size_t n)
{
    char b[64];
    if (n < 5 || memcmp(p, "NTRDE", 5) != 0)
        return;
    const char *why = NULL;
    if (n > 5 && p[5] == '+') {
        why = "has a subdivision, an EUID is national";
    } else if (n > 5 && p[5] == '-') {
        const uint8_t *r = p + 6;
        size_t rn = n - 6, i = 2;
        if (rn < 5 || r[0] != 'D' || r[1] != 'E')
            why = "reference does not start with the EUID country code DE";
        while (!why && i < rn &&
               ((r[i] >= 'A' && r[i] <= 'Z') || (r[i] >= 'a' && r[i] <= 'z') ||
                (r[i] >= '0' && r[i] <= '9')))
            i++;
        if (!why && (i == 2 || i + 1 >= rn || r[i] != '.'))
            why = "reference is not DE<register>.<local reference>";
    }
    if (why)
        report(s, W_ORGID_EUID, "organizationIdentifier \"%s\": %s", show(p, n, b, sizeof b), why);
}

/* SBR 7.1.4.2.2(d) and its Note 1 for every organizationIdentifier in the subject (a subject
 * may carry more than one; each is a Registration Reference and each must match countryName),
 * plus the Note 3 EUID warning. country: the valid countryName, or NULL. */
static void lint_orgids(lstate *s, const mc_der_tlv *country)
{
    char b[64], why[160];
    name_iter it = name_iter_make(s->name);
    mc_der_tlv oid, v;
    while (name_next(&it, &oid, &v)) {
        if (!mc_der_oid_eq(&oid, known_attrs[A_ORGID].oid, known_attrs[A_ORGID].len))
            continue;
        int e = mc_org_identifier_check((const char *)v.val, v.len,
                                        country ? (const char *)country->val : NULL,
                                        country ? 2 : 0, why, sizeof why);
        if (e)
            report(s, e == 2 ? L_ORGID_COUNTRY : L_ORGID_FORMAT, "organizationIdentifier \"%s\" %s",
                   show(v.val, v.len, b, sizeof b), why);
        else
            lint_orgid_euid(s, v.val, v.len);
    }
}

/* RFC 5280 rules found missing by the comparison with zlint's rfc lints. */
static void lint_rfc_extra(lstate *s)
{
    /* RFC 5280 4.1.2.4: "The issuer field MUST contain a non-empty distinguished name (DN)." */
    if (s->x->issuer.len == 0)
        report(s, L_ISSUER_EMPTY, "issuer is an empty Name (no RDN)");

    /* RFC 5280 4.2.1.4: "A certificate policy OID MUST NOT appear more than once in a
     * certificate policies extension." A malformed extension is reported by lint_policies. */
    const mc_x509_ext *e = mc_x509_find_ext(s->x, OIDL(oid_policies));
    if (!e || e->value.tag != MC_DER_SEQUENCE)
        return;
    mc_der_cur c = mc_der_cur_in(&e->value);
    mc_der_tlv seen[16]; /* a certificate asserts a handful of policies; past 16 none is checked */
    size_t n = 0;
    mc_der_tlv pi, oid;
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_next(&c, &pi) != MC_OK || pi.tag != MC_DER_SEQUENCE)
            return;
        mc_der_cur p = mc_der_cur_in(&pi);
        if (mc_der_expect(&p, MC_DER_OID, &oid) != MC_OK)
            return;
        for (size_t i = 0; i < n; i++) {
            if (seen[i].len == oid.len && memcmp(seen[i].val, oid.val, oid.len) == 0) {
                char b[64];
                report(s, L_POL_DUP, "policy %s appears more than once", oidstr(&oid, b, sizeof b));
                return;
            }
        }
        if (n < sizeof seen / sizeof seen[0])
            seen[n++] = oid;
    }
}

void mc_lint_run(const mc_x509 *x, const mc_lint_ctx *ctx, mc_lint_result *out)
{
    memset(out, 0, sizeof *out);
    lstate s = {.x = x, .ctx = ctx, .out = out};
    s.now = ctx && ctx->now ? ctx->now : x->nb; /* linters key on notBefore otherwise */
    int ptype = MC_TYPE_MAILBOX, pgen = MC_GEN_STRICT;
    int reserved = scan_policies(x, &ptype, &pgen);
    if (ctx && ctx->profile) {
        s.type = ctx->profile->type;
        s.gen = ctx->profile->generation;
    } else {
        s.type = (mc_certtype)ptype;
        s.gen = (mc_generation)pgen;
    }
    if (s.type < MC_TYPE_MAILBOX || s.type > MC_TYPE_INDIVIDUAL)
        s.type = MC_TYPE_MAILBOX;
    if (s.gen < MC_GEN_LEGACY || s.gen > MC_GEN_STRICT)
        s.gen = MC_GEN_STRICT;
    s.san = mc_x509_find_ext(x, OIDL(oid_san));

    lint_structure(&s);
    lint_serial(&s);
    lint_signature(&s);
    lint_validity(&s);
    lint_spki(&s);
    lint_ext_list(&s);
    lint_policies(&s, reserved, ptype, pgen);
    /* SBR 7.1.6.1 */
    if (s.gen == MC_GEN_LEGACY)
        report(&s, L_LEGACY, "Legacy generation (2.23.140.1.5.%d.1) after 2025-07-15", s.type);
    lint_crldp(&s);
    lint_aia(&s);
    lint_bc(&s);
    lint_ku(&s);
    lint_eku(&s);
    lint_aki(&s);
    lint_san(&s);
    lint_ski_smimecap(&s);
    lint_subject(&s);
    lint_dirnames(&s);
    lint_lei(&s);
    lint_lei_role(&s);
    lint_qcs(&s);
    lint_rfc_extra(&s);
}

static mc_err finish(const mc_lint_result *out, mc_errdetail *err)
{
    for (size_t i = 0; i < out->n; i++)
        if (out->f[i].severity == MC_LINT_ERROR)
            return mc_err_set(err, MC_ERR_LINT, "certificate", out->f[i].lint->id, "%s",
                              out->f[i].detail);
    if (err)
        mc_err_clear(err);
    return MC_OK;
}

static mc_err lint_parsed(mc_err pe, const mc_x509 *x, const mc_lint_ctx *ctx, mc_lint_result *out,
                          mc_errdetail *err)
{
    if (pe != MC_OK) {
        /* structural failure: one finding, with the parser's words */
        memset(out, 0, sizeof *out);
        out->errors = 1;
        out->n = 1;
        out->f[0].lint = &defs[L_DER];
        out->f[0].severity = defs[L_DER].severity;
        snprintf(out->f[0].detail, sizeof out->f[0].detail, "%.40s: %.110s", err->field,
                 err->message);
        return finish(out, err);
    }
    mc_lint_run(x, ctx, out);
    return finish(out, err);
}

mc_err mc_lint_tbs(const uint8_t *tbs, size_t len, const mc_lint_ctx *ctx, mc_lint_result *out,
                   mc_errdetail *err)
{
    mc_x509 x;
    mc_errdetail pe_detail;
    mc_errdetail *e = err ? err : &pe_detail;
    mc_err pe = mc_x509_parse_tbs(tbs, len, &x, e);
    return lint_parsed(pe, &x, ctx, out, e);
}

mc_err mc_lint_cert(const uint8_t *der, size_t len, const mc_lint_ctx *ctx, mc_lint_result *out,
                    mc_errdetail *err)
{
    mc_x509 x;
    mc_errdetail pe_detail;
    mc_errdetail *e = err ? err : &pe_detail;
    mc_err pe = mc_x509_parse_cert(der, len, &x, e);
    return lint_parsed(pe, &x, ctx, out, e);
}

const mc_lint_def *mc_lint_defs(size_t *n)
{
    if (n)
        *n = L_COUNT;
    return defs;
}

int mc_lint_set_cmp(const char *a, const char *b)
{
    int va[4], vb[4];
    int ba = set_parse(a, va), bb = set_parse(b, vb);
    if (ba || bb)
        return ba - bb; /* malformed sorts first */
    return set_vcmp(va, vb);
}

/* Appends id to the comma-separated list in buf, whose end is *o. An id that does not fit is
 * left out whole and ends the list (*o = len): never a truncated id. */
static void append_id(char *buf, size_t len, size_t *o, const char *id)
{
    if (*o >= len)
        return;
    int k = snprintf(buf + *o, len - *o, "%s%s", *o ? "," : "", id);
    if (k < 0 || (size_t)k >= len - *o) {
        buf[*o] = '\0';
        *o = len;
        return;
    }
    *o += (size_t)k;
}

size_t mc_lint_not_enforced(const char *enforced, char *buf, size_t len)
{
    size_t n = 0, o = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < L_COUNT; i++)
        if (defs[i].severity == MC_LINT_ERROR && defs[i].since &&
            not_enforced(&defs[i], enforced)) {
            n++;
            append_id(buf, len, &o, defs[i].id);
        }
    return n;
}

mc_err mc_lint_set_check(const char *v, const char *field, mc_errdetail *err)
{
    int x[4];
    /* A set newer than this build's is well formed too: it enforces every lint the build knows
     * (not_enforced demotes none), so rolling the binary back after raising it fails closed
     * rather than halting issuance. */
    if (set_parse(v, x) != 0)
        return mc_err_set(err, MC_ERR_CONFIG, field, NULL,
                          "'%s' is not a lint set version (mailca-lints-YYYY.M.D[.N]: a real "
                          "date, no leading zeros, N from 2)",
                          v);
    return MC_OK;
}

const char *mc_lint_set_effective(const char *enforced)
{
    int ve[4], vb[4];
    if (enforced && enforced[0] && set_parse(enforced, ve) == 0 &&
        set_parse(MC_LINT_SET_VERSION, vb) == 0 && set_vcmp(ve, vb) < 0)
        return enforced;
    return MC_LINT_SET_VERSION;
}

_Static_assert(L_COUNT <= MC_LINT_MAX, "mc_lint_result.warned has a bit per lint");

const char *mc_lint_warning_ids(const mc_lint_result *r, char *buf, size_t len)
{
    size_t o = 0;
    uint64_t done[MC_LINT_MAX / 64] = {0};
    if (len == 0)
        return buf;
    buf[0] = '\0';
    /* each id once (a lint may report several times, once per URL say): the list is a set,
     * sized by mc_lint_warning_ids_len, and selectors match its elements */
    for (size_t i = 0; i < r->n; i++) {
        size_t k = (size_t)(r->f[i].lint - defs);
        if (r->f[i].severity != MC_LINT_WARNING || k >= L_COUNT || (done[k / 64] >> (k % 64) & 1))
            continue;
        done[k / 64] |= UINT64_C(1) << (k % 64);
        append_id(buf, len, &o, defs[k].id);
    }
    /* then those past the findings cap */
    for (size_t k = 0; k < L_COUNT; k++)
        if ((r->warned[k / 64] >> (k % 64) & 1) && !(done[k / 64] >> (k % 64) & 1))
            append_id(buf, len, &o, defs[k].id);
    return buf;
}

size_t mc_lint_warning_ids_len(const mc_lint_result *r)
{
    size_t n = 1; /* the NUL */
    for (size_t i = 0; i < L_COUNT; i++)
        if (r->warned[i / 64] >> (i % 64) & 1)
            n += strlen(defs[i].id) + 1; /* and its comma */
    return n;
}

/*
 * mc_order: one S/MIME order, decoded strictly from a msgpack map (format: docs/orders.md).
 *
 * Decoding never ignores anything: an unknown field, a wrong type, an oversized value or an
 * invalid mailbox address is an error naming the field and the rule. Strings and byte arrays
 * point into memory owned by the caller (the msgpack object or the worker's arena), so the order
 * lives as long as that memory; the one exception is a mailbox whose domain was converted to
 * A-labels (SBR 7.1.4.2.1), whose address points into the order's own idn buffer: an mc_order
 * must not be copied by value once decoded (the copy's addresses would point into the original).
 */
#ifndef MAILCA_ORDER_H
#define MAILCA_ORDER_H

#include "mailca/alg.h"
#include "mailca/arena.h"
#include "mailca/err.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* Size limits (bytes unless said). */
#define MC_ORDER_ID_MAX 128
#define MC_ORDER_ACCOUNT_MAX 256
#define MC_ORDER_PROFILE_MAX 64
#define MC_ORDER_MAILBOXES_MAX 16
#define MC_MAILBOX_MAX 254      /* RFC 5321 4.5.3.1.3 path limit less the brackets */
#define MC_MAILBOX_LOCAL_MAX 64 /* RFC 5321 4.5.3.1.1 */
#define MC_ORDER_REFERENCE_MAX 256
#define MC_ORDER_CSR_MAX 16384
#define MC_ORDER_REPLACES_MAX 40 /* hex serial, 20 octets */
#define MC_ORDER_KEY_SOURCE_MAX 64
#define MC_LEI_LEN 20       /* ISO 17442-1 */
#define MC_LEI_ROLE_MAX 100 /* ISO 17442-2 ub-leiRole-length */

typedef enum mc_usage {
    MC_USAGE_SIGNING = 1, /* SBR 7.1.2.3(e) signing-only */
    MC_USAGE_KEYMGMT,     /* key management only */
    MC_USAGE_DUAL,        /* dual use */
} mc_usage;

/* Mailbox validation methods, SBR 3.2.2.1 - 3.2.2.4. */
typedef enum mc_vmethod {
    MC_VM_DOMAIN = 1, /* 3.2.2.1 authority over the domain */
    MC_VM_EMAIL,      /* 3.2.2.2 email a random value */
    MC_VM_SMTP,       /* 3.2.2.3 control of the SMTP FQDN */
    MC_VM_ACME,       /* 3.2.2.4 ACME for S/MIME (RFC 8823) */
} mc_vmethod;

typedef struct mc_str {
    const char *p; /* not NUL-terminated */
    size_t len;
} mc_str;

typedef struct mc_mailbox {
    mc_str address;       /* local@domain, validated syntax; the domain as A-labels (an IDN
                             domain given as U-labels is converted, SBR 7.1.4.2.1) */
    mc_vmethod method;    /* validation method */
    int64_t validated_at; /* Unix seconds */
    mc_str reference;     /* the CA's evidence reference */
} mc_mailbox;

/* Subject identity attributes an order may carry (docs/orders.md "subject"), in the order the TBS
 * builder writes them into the subject DN (countryName first, commonName and emailAddress come
 * after these). Which ones a certificate may or must have is the profile's business
 * (SBR 7.1.4.2.3 - 7.1.4.2.6, mc_profile_check_order). */
typedef enum mc_subj_attr {
    MC_SA_COUNTRY = 0,    /* countryName, PrintableString, ISO 3166-1 alpha-2 or XX */
    MC_SA_STATE,          /* stateOrProvinceName */
    MC_SA_LOCALITY,       /* localityName */
    MC_SA_STREET,         /* streetAddress */
    MC_SA_POSTAL_CODE,    /* postalCode */
    MC_SA_ORGANIZATION,   /* organizationName */
    MC_SA_ORG_UNIT,       /* organizationalUnitName: an Affiliate's legal name only */
    MC_SA_ORG_IDENTIFIER, /* organizationIdentifier, SBR 7.1.4.2.2(d) */
    MC_SA_TITLE,          /* title */
    MC_SA_SURNAME,        /* surname */
    MC_SA_GIVEN_NAME,     /* givenName */
    MC_SA_PSEUDONYM,      /* pseudonym */
    MC_SA_SERIAL_NUMBER,  /* serialNumber, PrintableString */
    MC_SA_COUNT
} mc_subj_attr;

/* Static facts about one attribute: the order/profile key ("organization_name"), the X.520 name,
 * the OID contents, the upper bound in characters (RFC 5280 App. A / X.520, or mailca's own
 * limit where X.520 sets none) and the string type the TBS builder writes. */
typedef struct mc_subj_attr_info {
    const char *key;
    const char *name;
    const uint8_t *oid;
    size_t oid_len;
    size_t max_chars;
    int printable; /* 1: PrintableString, 0: UTF8String */
} mc_subj_attr_info;

/* NULL for an index outside 0..MC_SA_COUNT-1. Static storage. */
const mc_subj_attr_info *mc_subj_attr_get(mc_subj_attr a);

/* commonName source an order picks (SBR 7.1.4.2.2(a)); MC_CN_DEFAULT: the profile's first. */
typedef enum mc_cn_source {
    MC_CN_DEFAULT = 0,
    MC_CN_NONE,
    MC_CN_MAILBOX,       /* the first mailbox */
    MC_CN_ORGANIZATION,  /* the organizationName value */
    MC_CN_PERSONAL_NAME, /* "givenName surname" (or the one present) */
    MC_CN_PSEUDONYM,     /* the pseudonym value */
} mc_cn_source;

/* A source's name in profiles and orders ("none", "mailbox", "organization-name", "personal-name",
 * "pseudonym"); NULL for MC_CN_DEFAULT and outside the enum. Static storage. */
const char *mc_cn_source_name(mc_cn_source c);

typedef struct mc_subject {
    mc_str attr[MC_SA_COUNT]; /* len 0: absent */
    mc_cn_source cn;
} mc_subject;

/* A Legal Entity Identifier the CA verified against the GLEIF record (SBR 7.1.2.3(l), 3.2.3.2.1,
 * 3.2.3.3): the order carries what was verified (docs/orders.md "lei"). mc_order_decode accepts
 * only RegistrationStatus ISSUED, EntityStatus ACTIVE and ValidationSources FULLY_CORROBORATED, so
 * a decoded LEI always had those. value.len 0: absent. For lei_role, value is the role text
 * (ISO 17442-2 Clause 4: PrintableString, 1..100 characters) and reference the evidence that the
 * role LEI data is assigned to the Individual Subject. */
typedef struct mc_lei {
    mc_str value;
    int64_t verified_at; /* Unix seconds */
    mc_str reference;    /* the CA's evidence reference */
} mc_lei;

/* A completed validation of the subject's identity (SBR 3.2.3 organization, 3.2.4 individual):
 * when it was obtained and the CA's evidence reference. validated_at 0: not in the order.
 * SBR 4.2.1 items 2 and 3 allow reusing it for at most 825 days (mc_evidence_check_identity). */
typedef struct mc_identity_evidence {
    int64_t validated_at; /* Unix seconds */
    mc_str reference;
} mc_identity_evidence;

typedef struct mc_order {
    mc_str id;      /* idempotency key */
    mc_str account; /* the platform account placing the order */
    mc_str profile; /* profile name */
    mc_usage usage;
    size_t n_mailboxes;
    mc_mailbox mailboxes[MC_ORDER_MAILBOXES_MAX];
    const uint8_t *csr; /* PKCS#10 DER; exactly one of csr and public_key */
    size_t csr_len;
    const uint8_t *public_key; /* SubjectPublicKeyInfo DER of a key whose source the account
                                  attests (key_source); no proof of possession */
    size_t public_key_len;
    mc_str key_source;  /* with public_key: how the key was produced, recorded as provenance */
    mc_str replaces;    /* hex serial, len 0 when absent */
    mc_subject subject; /* identity attributes; all absent when the order has no "subject" */
    mc_lei lei;         /* LEI extension 1.3.6.1.4.1.52266.1 (organization, sponsor) */
    mc_lei lei_role;    /* role extension 1.3.6.1.4.1.52266.2 (sponsor only, needs lei) */
    mc_identity_evidence id_org;        /* "identity.organization" (SBR 3.2.3) */
    mc_identity_evidence id_individual; /* "identity.individual" (SBR 3.2.4) */
    /* Filled by mc_order_check_csr: */
    const uint8_t *spki; /* SubjectPublicKeyInfo DER inside csr */
    size_t spki_len;
    mc_keytype keytype;
    unsigned key_bits; /* RSA modulus bits; 256/384/521 for P-curves; 256 Ed25519, 448 Ed448 */
    /* Mailbox addresses whose domain was converted to A-labels (mailboxes[i].address points
     * here then). Last, and not cleared by mc_order_decode, so that the ~4 KB stay untouched
     * (and, in calloc'd batches, not even resident) for orders without IDN domains. */
    char idn[MC_ORDER_MAILBOXES_MAX][MC_MAILBOX_MAX + 1];
} mc_order;

/* Decodes one order from a msgpack object (a map). out's strings point into obj's memory, but
 * for a mailbox whose U-label domain was converted to A-labels (SBR 7.1.4.2.1), which points into
 * out->idn; nothing is allocated (libidn2 allocates and frees a temporary for IDN domains). On
 * error every field of out is zeroed except id (and the idn scratch buffer).
 * On error, err names the field (e.g. "mailboxes[1].address") and rule, and out->id holds the
 * order id if it could be read (so the rejection can carry it). */
mc_err mc_order_decode(const msgpack_object *obj, mc_order *out, mc_errdetail *err);

/* SBR 7.1.4.2.2(n): two upper-case letters naming an ISO 3166-1 alpha-2 code (officially
 * assigned, per the ISO 3166 Maintenance Agency) or the user-assigned XX. 1 when valid. */
int mc_country_code_valid(const char *p, size_t len);

/* SBR 7.1.4.2.2(d), Appendix A.1: checks an organizationIdentifier value: scheme NTR, VAT, PSD,
 * LEI (country XG, a 20-character ISO 17442 LEI with valid check digits as the reference), GOV
 * (no reference) or INT (exactly INTXG); an ISO 3166-1 country (VAT may use the EU Article 215
 * prefixes EL and XI); an optional "+" and 1..3 letters/digits of ISO 3166-2 subdivision (not for
 * LEI/INT); then "-" and a non-empty reference. When country (2 bytes) is given, the
 * identifier's country must match it (Note 1: not for LEI and INT; EL means GR, XI means GB).
 * Returns 0 when valid, else 1 for a format error and 2 for a country mismatch, with why filled
 * (NUL-terminated, may be NULL). Never allocates. */
int mc_org_identifier_check(const char *p, size_t len, const char *country, size_t country_len,
                            char *why, size_t whylen);

/* ISO 17442 LEI: 18 upper-case letters/digits then 2 check digits, ISO 7064 MOD 97-10. */
int mc_lei_valid(const char *p, size_t len);

/* ISO 17442-2 Clause 4 role: 1..MC_LEI_ROLE_MAX PrintableString characters (X.680 41.4), not all
 * spaces. 1 when valid. */
int mc_lei_role_valid(const char *p, size_t len);

/* Validates a mailbox address per SBR 1.6.1 (RFC 5321 Mailbox, RFC 6532 UTF-8 local parts
 * allowed), bare address only. Deliberately refused (docs/orders.md, "Mailbox addresses"):
 * quoted-string local parts and address literals. An internationalized domain is valid when
 * mc_idn_to_ascii converts it (U-labels) or accepts it unchanged (xn-- A-labels); otherwise
 * the rule is SBR 7.1.4.2.1. field (may be NULL) is copied into err's field. */
mc_err mc_mailbox_check(const char *p, size_t len, const char *field, mc_errdetail *err);

/* mc_mailbox_check, then writes the address as a certificate carries it into out (cap bytes,
 * NUL-terminated; cap >= MC_MAILBOX_MAX + 1 always suffices): the local part as given and the
 * domain as A-labels (SBR 7.1.4.2.1, RFC 9598 3); an ASCII domain is copied unchanged. The
 * A-label form must also fit MC_MAILBOX_MAX octets. *out_len gets the length. Allocates only
 * inside libidn2, and only for a domain with U-labels or xn-- labels. */
mc_err mc_mailbox_to_ascii(const char *p, size_t len, char *out, size_t cap, size_t *out_len,
                           const char *field, mc_errdetail *err);

/* IDNA2008 with UTS #46 non-transitional processing, as libidn2's idn2_lookup_u8 does it (NFC,
 * mapping, STD3 ASCII rules, A-label round trip): converts the UTF-8 domain dom[0..dlen) to its
 * lower-case A-label form in out (cap bytes, NUL-terminated). An A-label in the input must
 * decode to a valid U-label and encode back to itself. Returns 0; -1 when the domain is not a
 * valid IDN (or does not fit); *why (may be NULL) then gets a
 * static reason. Thread-safe. */
int mc_idn_to_ascii(const char *dom, size_t dlen, char *out, size_t cap, const char **why);

/* Parses the CSR, verifies its self-signature (proof of possession) with a digest from d (fetched
 * once), checks the key per SBR 6.1.5 (RSA >= 2048 and a multiple of 8, odd exponent >= 3;
 * ECDSA P-256/P-384/P-521 on the curve; Ed25519 of 32 bytes, Ed448 of 57) and the SPKI's
 * byte-exact algid (SBR 7.1.3.1), and fills spki/keytype/key_bits (left zero on error). Codes:
 * MC_ERR_CSR (malformed, or the signature does not verify), MC_ERR_INVALID (key breaks an SBR
 * rule), MC_ERR_UNSUPPORTED (SHA-1 and other signature algorithms); field is always "csr".
 * Thread-safe, no global state; allocates only inside OpenSSL. */
struct mc_digests;
mc_err mc_order_check_csr(mc_order *o, const struct mc_digests *d, mc_errdetail *err);

/* Per-worker state for CSR checks on the hot path: key-management contexts fetched once (an
 * EVP_PKEY built with EVP_PKEY_fromdata from our own DER parse, because OpenSSL 3.0's d2i_PUBKEY
 * runs its decoder framework per call: ~110 us and global read locks, measured here) and a reused
 * digest context. Not thread-safe: one per worker. Free with mc_csr_ctx_free. */
typedef struct mc_csr_ctx {
    struct evp_pkey_ctx_st *ec, *rsa, *ed25519, *ed448; /* EVP_PKEY_CTX for fromdata */
    struct evp_md_ctx_st *md;
    /* For attested public keys, where no signature is verified and so no EVP_PKEY is needed:
     * the point is validated on the curve directly (P-256, P-384, P-521). */
    struct ec_group_st *group[3];
    struct ec_point_st *point[3];
    struct bignum_ctx *bn;
    /* The RFC 8032 decoding check of Ed25519 / Ed448 keys, for CSRs and attested keys alike
     * (include/mailca/keycheck.h says why a CSR's signature does not cover it). */
    struct mc_keycheck_ed *ed;
    /* Known weak RSA keys (SBR 6.1.1.3 item 5, include/mailca/weakkeys.h): shared, read-only,
     * owned by the engine; NULL when the CA configured no list. Set by the owner after
     * mc_csr_ctx_init (which leaves it NULL). */
    const struct mc_weakkeys *weak;
} mc_csr_ctx;

mc_err mc_csr_ctx_init(mc_csr_ctx *cc, mc_errdetail *err);
void mc_csr_ctx_free(mc_csr_ctx *cc);

/* mc_order_check_csr with the worker's contexts (cc may be NULL: temporary ones are made).
 * For an order with public_key instead of csr, the same key checks run without the proof of
 * possession (the account attests the key's source, see docs/orders.md). */
mc_err mc_order_check_csr_ctx(mc_order *o, const struct mc_digests *d, mc_csr_ctx *cc,
                              mc_errdetail *err);

#endif

/*
 * mc_profile: a declarative certificate profile (YAML in profiles/, read with libyaml), compiled
 * once at start into DER fragments the TBS builder copies. A profile that would produce a
 * non-compliant certificate is refused at load with file:line and the rule (SBR section).
 */
#ifndef MAILCA_PROFILE_H
#define MAILCA_PROFILE_H

#include "mailca/alg.h"
#include "mailca/err.h"
#include "mailca/issuer.h"
#include "mailca/order.h"

#include <stddef.h>
#include <stdint.h>

typedef enum mc_certtype {
    MC_TYPE_MAILBOX = 1,
    MC_TYPE_ORGANIZATION,
    MC_TYPE_SPONSOR,
    MC_TYPE_INDIVIDUAL,
} mc_certtype;

typedef enum mc_generation {
    MC_GEN_LEGACY = 1,
    MC_GEN_MULTIPURPOSE,
    MC_GEN_STRICT,
} mc_generation;

/* URLs from the CA config that go into every certificate. */
typedef struct mc_ca_urls {
    const char *crl;        /* cRLDistributionPoints fullName URI (http, SBR 7.1.2.3(b)) */
    const char *ocsp;       /* AIA id-ad-ocsp, may be NULL */
    const char *ca_issuers; /* AIA id-ad-caIssuers (SHOULD, SBR 7.1.2.3(c)), may be NULL */
    const char *cps;        /* id-qt-cps URI, may be NULL */
    unsigned crl_shards;    /* ca.crl_shards: 0 or 1 = one CRL; N > 1: crl holds "{shard}" */
} mc_ca_urls;

#define MC_PROFILE_ATTR_ABSENT 0
#define MC_PROFILE_ATTR_OPTIONAL 1
#define MC_PROFILE_ATTR_REQUIRED 2

typedef struct mc_profile {
    char name[64];
    char path[512];
    uint8_t hash[32]; /* SHA-256 of the file as read: recorded with each certificate */
    mc_certtype type;
    mc_generation generation;
    int lint_only;     /* legacy: may be loaded for linting, never issues (SBR 1.2.1) */
    int64_t validity;  /* notAfter - notBefore in seconds (<= 825 days - 1 s) */
    int64_t backdate;  /* notBefore = now - backdate */
    unsigned keytypes; /* bit (1 << mc_keytype) per allowed subscriber key type */
    unsigned usages;   /* bit (1 << mc_usage) per allowed usage */
    /* nonRepudiation set beside every digitalSignature (SBR 7.1.2.3(e) allows it in signing and
     * dual-use certificates): for profiles whose CP/CPS promises signer commitment, such as
     * qualified eSign ones (ETSI EN 319 412-2 4.3.2). */
    int non_repudiation;
    int cn_mailbox; /* default commonName is the first mailbox (when it fits 64 chars) */
    int email_attr; /* subject emailAddress = first mailbox */
    /* Subject identity attributes (docs/profiles.md "subject"), indexed by mc_subj_attr:
     * MC_PROFILE_ATTR_ABSENT (the order may not give it), _OPTIONAL or _REQUIRED. */
    unsigned char subj[MC_SA_COUNT];
    unsigned cn_choices;     /* bit (1 << mc_cn_source) per commonName source an order may pick */
    mc_cn_source cn_default; /* the first listed: used when the order does not pick one */
    /* legal_entity_identifier (SBR 7.1.2.3(l)): MC_PROFILE_ATTR_ABSENT (orders may not carry an
     * LEI), _OPTIONAL or _REQUIRED; never other than absent for mailbox and individual types. */
    unsigned char lei;
    const mc_issuer *issuer; /* not owned */
    /* Compiled fragments (owned): extensions that do not depend on the order, in order. */
    uint8_t *ext_const;
    size_t ext_const_len;
    /* Partitioned CRLs (crl.h): crl_shards > 1 and the MC_CRL_SHARD_DIGITS digits of the CRL
     * DP URI at ext_const + crl_shard_off, which mc_tbs_build overwrites with the
     * certificate's shard (mc_crl_shard_of its serial) in the TBS it writes. crl_shards 1:
     * nothing to patch. */
    unsigned crl_shards;
    size_t crl_shard_off;
    uint8_t *ext_eku; /* extKeyUsage extension TLV */
    size_t ext_eku_len;
    /* extKeyUsage for a keyUsage with neither digitalSignature nor keyAgreement (an RSA
     * key-management certificate): ext_eku without clientAuth, the one purpose such a key cannot
     * serve (RFC 5280 4.2.1.12). Same bytes as ext_eku when the profile lists no clientAuth. */
    uint8_t *ext_eku_nosign;
    size_t ext_eku_nosign_len;
} mc_profile;

/* Loads and compiles one profile file (format: docs/profiles.md) against an issuer and the CA's
 * URLs. On a bad profile, err->field is "file:line" (the file's base name) and err->rule the SBR
 * section: MC_ERR_PROFILE. A bad URL is MC_ERR_CONFIG with field "ca.crl_url", "ca.ocsp_url",
 * "ca.issuers_url" or "ca.cps_url" (the config keys). NULL or "" URLs are absent. iss must outlive
 * the profile. The caller owns *out and frees it with mc_profile_free. */
mc_err mc_profile_load(const char *path, const mc_issuer *iss, const mc_ca_urls *urls,
                       mc_profile **out, mc_errdetail *err);
void mc_profile_free(mc_profile *p);

/* The profiles of a directory (every *.yaml, loaded in name order; two files with one profile
 * name are an error), looked up by name. Free with mc_profile_set_free. */
typedef struct mc_profile_set {
    mc_profile **v;
    size_t n;
} mc_profile_set;

mc_err mc_profile_set_load(const char *dir, const mc_issuer *iss, const mc_ca_urls *urls,
                           mc_profile_set *out, mc_errdetail *err);
const mc_profile *mc_profile_set_find(const mc_profile_set *set, const char *name, size_t len);
void mc_profile_set_free(mc_profile_set *set);

/* Checks that an order fits the profile: key type, usage, mailbox count (SBR rules the profile
 * encodes), the subject attributes (allowed and required by the profile, SBR 7.1.4.2.2 - 7.1.4.2.6:
 * pseudonym vs names, address dependencies, the commonName source), and that the profile may issue
 * at time now (a lint-only legacy profile may not from MC_PROFILE_LEGACY_END on), and the LEI
 * (SBR 7.1.2.3(l): only where the profile allows it, the role only in sponsor profiles). Errors:
 * field "profile", "mailboxes", "mailboxes[i].address", "csr", "usage", "lei", "lei_role",
 * "subject" or "subject.<key>",
 * with the SBR rule (or "profile key_types" / "profile usages" / "profile subject"). */
#define MC_PROFILE_LEGACY_END 1752537600 /* 2025-07-15T00:00:00Z, SBR 7.1.6.1 */
mc_err mc_profile_check_order(const mc_profile *p, const mc_order *o, int64_t now,
                              mc_errdetail *err);

/* The commonName source for an order under p: the order's choice, else the profile's default.
 * Only meaningful once mc_profile_check_order passed. */
mc_cn_source mc_profile_cn_source(const mc_profile *p, const mc_order *o);

/* SBR 7.1.4.2.3 - 7.1.4.2.6: whether attribute a is forbidden (0), optional (1) or required (2)
 * in certificates of this type and generation, and the section that says so (static string). */
int mc_profile_sbr_attr(mc_certtype t, mc_generation g, mc_subj_attr a, const char **section);

#endif

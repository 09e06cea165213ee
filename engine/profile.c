/*
 * Profiles: a declarative YAML file per certificate type and generation (format: docs/profiles.md),
 * read with libyaml and compiled once at start into the DER fragments the TBS builder copies
 * (ext_const, ext_eku). Every key is known and every value checked; a profile or CA URL that could
 * produce a non-compliant certificate is refused here, naming "file:line" and the SBR section,
 * so no order can ever reach the hot path with it.
 */
#include "mailca/profile.h"

#include "mailca/crl.h"
#include "mailca/der.h"
#include "mailca/tbs.h"

#include <dirent.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define PROFILE_FILE_MAX 65536
#define PROFILE_VALUE_MAX 256
#define PROFILE_POLICIES_MAX 8
#define PROFILE_BACKDATE_MAX 3600 /* clock skew allowance, not a way to predate certificates */
#define EXT_CONST_MAX 4096
#define URL_MAX 1024
/* SBR 7.1.6.1: legacy OIDs SHALL NOT be used for new certificates from 2025-07-15 00:00 UTC. */
#define LEGACY_END MC_PROFILE_LEGACY_END

/* Root keys, one bit each (to find duplicates and missing required keys). */
enum {
    K_NAME,
    K_TYPE,
    K_GENERATION,
    K_VALIDITY,
    K_BACKDATE,
    K_KEYTYPES,
    K_USAGES,
    K_SUBJECT,
    K_EKU,
    K_POLICIES,
    K_CPS,
    K_CAPS,
    K_LEI,
    K_QC,
    K_NR,
    K_COUNT
};
static const char *const key_names[K_COUNT] = {
    "name",
    "type",
    "generation",
    "validity_days",
    "backdate",
    "key_types",
    "usages",
    "subject",
    "extended_key_usages",
    "certificate_policies",
    "include_cps",
    "smime_capabilities",
    "legal_entity_identifier",
    "qc_statements",
    "non_repudiation",
};
#define REQUIRED                                                                                   \
    ((1u << K_NAME) | (1u << K_TYPE) | (1u << K_GENERATION) | (1u << K_VALIDITY) |                 \
     (1u << K_KEYTYPES) | (1u << K_USAGES) | (1u << K_SUBJECT) | (1u << K_EKU))

/* Extended key usages the file may name. Refused ones are listed so the error can cite the rule
 * instead of "unknown". */
enum { EKU_EMAIL, EKU_CLIENT, EKU_SERVER, EKU_CODE, EKU_TIME, EKU_ANY, EKU_COUNT };
static const struct {
    const char *name;
    int refused; /* SBR 7.1.2.3(f): never present */
    uint8_t oid[9];
    size_t len;
} ekus[EKU_COUNT] = {
    {"emailProtection", 0, {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04}, 8},
    {"clientAuth", 0, {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02}, 8},
    {"serverAuth", 1, {0}, 0},
    {"codeSigning", 1, {0}, 0},
    {"timeStamping", 1, {0}, 0},
    {"anyExtendedKeyUsage", 1, {0}, 0},
};

/* S/MIME capabilities (RFC 4262, RFC 8551 2.7) with absent parameters. */
enum { CAP_COUNT = 5 };
static const struct {
    const char *name;
    uint8_t oid[9];
} caps[CAP_COUNT] = {
    {"aes256-gcm", {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e}},
    {"aes128-gcm", {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x06}},
    {"aes256-cbc", {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a}},
    {"aes192-cbc", {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16}},
    {"aes128-cbc", {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02}},
};

/* SBR 6.1.5, 7.1.3.1: RSA, the three NIST curves, and curve25519/curve448 as id-Ed25519/id-Ed448.
 */
static const mc_keytype profile_keytypes[] = {MC_KEY_RSA,  MC_KEY_P256,    MC_KEY_P384,
                                              MC_KEY_P521, MC_KEY_ED25519, MC_KEY_ED448};
static const struct {
    const char *name;
    mc_usage u;
} usage_names[] = {
    {"signing", MC_USAGE_SIGNING},
    {"key-management", MC_USAGE_KEYMGMT},
    {"dual", MC_USAGE_DUAL},
};

/* OIDs of the constant extensions. */
static const uint8_t OID_CP[] = {0x55, 0x1d, 0x20};
static const uint8_t OID_CRLDP[] = {0x55, 0x1d, 0x1f};
static const uint8_t OID_AIA[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01};
static const uint8_t OID_AKI[] = {0x55, 0x1d, 0x23};
static const uint8_t OID_EKU[] = {0x55, 0x1d, 0x25};
static const uint8_t OID_SMIMECAPS[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0f};
static const uint8_t OID_QT_CPS[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x02, 0x01};
static const uint8_t OID_AD_OCSP[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01};
static const uint8_t OID_AD_CAISSUERS[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02};
static const uint8_t OID_CABF_SMIME[] = {0x67, 0x81, 0x0c, 0x01, 0x05}; /* 2.23.140.1.5 */
static const uint8_t OID_CABF[] = {0x67, 0x81, 0x0c};                   /* 2.23.140 */
static const uint8_t OID_ANYPOLICY[] = {0x55, 0x1d, 0x20, 0x00};
/* qcStatements (RFC 3739 3.2.6) and the statements of ETSI EN 319 412-5 4 / 412-1 5.1. */
static const uint8_t OID_QCS[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x03};
static const uint8_t OID_QCS_PKIX_V2[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x0b, 0x02};
#define OID_ETSI_QCS 0x04, 0x00, 0x8e, 0x46, 0x01 /* 0.4.0.1862.1 */
static const uint8_t OID_QC_COMPLIANCE[] = {OID_ETSI_QCS, 0x01};
static const uint8_t OID_QC_RETENTION[] = {OID_ETSI_QCS, 0x03};
static const uint8_t OID_QC_SSCD[] = {OID_ETSI_QCS, 0x04};
static const uint8_t OID_QC_PDS[] = {OID_ETSI_QCS, 0x05};
static const uint8_t OID_QC_TYPE[] = {OID_ETSI_QCS, 0x06};
static const uint8_t OID_QC_LEGISLATION[] = {OID_ETSI_QCS, 0x07};
/* QcType values id-etsi-qct-esign / -eseal (0.4.0.1862.1.6.1 / .2), index by QC_TYPE_* - 1 */
static const uint8_t OID_QCT[2][7] = {{OID_ETSI_QCS, 0x06, 0x01}, {OID_ETSI_QCS, 0x06, 0x02}};
/* id-etsi-qcs-semanticsId-Natural / -Legal (0.4.0.194121.1.1 / .2), index by QC_SEM_* - 1 */
static const uint8_t OID_QC_SEM[2][7] = {{0x04, 0x00, 0x8b, 0xec, 0x49, 0x01, 0x01},
                                         {0x04, 0x00, 0x8b, 0xec, 0x49, 0x01, 0x02}};
enum { QC_TYPE_NONE, QC_TYPE_ESIGN, QC_TYPE_ESEAL };
enum { QC_SEM_NONE, QC_SEM_NATURAL, QC_SEM_LEGAL };
#define QC_PDS_MAX 4
#define QC_LEGISLATION_MAX 8
#define QC_URL_MAX 200

/* Parser state: the event stream plus what the file said that mc_profile does not keep. */
typedef struct pstate {
    yaml_parser_t parser;
    yaml_event_t ev;
    int have_ev;
    const char *path;
    const char *base; /* file name without folders, for err->field */
    mc_errdetail *err;
    mc_profile *p;
    unsigned seen;          /* K_* bits */
    unsigned line[K_COUNT]; /* line of each key's value */
    unsigned root_line;
    int64_t validity_days;
    unsigned eku; /* EKU_* bits */
    unsigned eku_line[EKU_COUNT];
    size_t n_pol;
    uint8_t pol[PROFILE_POLICIES_MAX][32];
    size_t pol_len[PROFILE_POLICIES_MAX];
    int include_cps;
    unsigned caps;
    int subject_cn_set, subject_email_set;
    unsigned subj_line[MC_SA_COUNT]; /* line of each subject attribute key */
    unsigned cn_line;
    /* qc_statements (docs/profiles.md): what the qcStatements extension will say */
    int qc_compliance, qc_sscd, qc_type, qc_semantics;
    int64_t qc_retention; /* years, 0: no QcRetentionPeriod */
    size_t n_pds;
    char pds_lang[QC_PDS_MAX][3];
    char pds_url[QC_PDS_MAX][QC_URL_MAX + 1];
    size_t n_leg;
    char leg[QC_LEGISLATION_MAX][3];
    unsigned qc_type_line, qc_sem_line, qc_pds_line;
    unsigned qc_seen; /* bits of the qc_statements keys read */
} pstate;

/* Sets err with field "file:line" (the tail of the file name if it does not fit). */
static mc_err perr(pstate *s, mc_err code, unsigned line, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static mc_err perr(pstate *s, mc_err code, unsigned line, const char *rule, const char *fmt, ...)
{
    char field[MC_ERR_FIELD_MAX], suffix[16], msg[MC_ERR_MSG_MAX];
    snprintf(suffix, sizeof suffix, ":%u", line);
    size_t bl = strlen(s->base), room = sizeof field - 1 - strlen(suffix);
    const char *b = bl > room ? s->base + (bl - room) : s->base;
    snprintf(field, sizeof field, "%s%s", b, suffix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mc_err_set(s->err, code, field, rule, "%s", msg);
}

static unsigned ev_line(const pstate *s)
{
    return (unsigned)s->ev.start_mark.line + 1;
}

/* Next event; libyaml's syntax errors and aliases are refused here. */
static mc_err next(pstate *s)
{
    if (s->have_ev) {
        yaml_event_delete(&s->ev);
        s->have_ev = 0;
    }
    if (!yaml_parser_parse(&s->parser, &s->ev))
        return perr(s, MC_ERR_PROFILE, (unsigned)s->parser.problem_mark.line + 1, NULL,
                    "YAML syntax: %s%s%s", s->parser.problem ? s->parser.problem : "error",
                    s->parser.context ? " " : "", s->parser.context ? s->parser.context : "");
    s->have_ev = 1;
    if (s->ev.type == YAML_ALIAS_EVENT)
        return perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "YAML aliases are not allowed");
    return MC_OK;
}

static mc_err expect(pstate *s, yaml_event_type_t t, const char *what)
{
    mc_err rc = next(s);
    if (rc)
        return rc;
    if (s->ev.type != t)
        return perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "expected %s", what);
    return MC_OK;
}

/* Copies the current scalar event into buf; refuses embedded NULs and overlong values. */
static mc_err scalar_copy(pstate *s, char *buf, size_t cap)
{
    size_t n = s->ev.data.scalar.length;
    if (n >= cap)
        return perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "value longer than %zu bytes", cap - 1);
    if (memchr(s->ev.data.scalar.value, 0, n))
        return perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "value contains a NUL byte");
    memcpy(buf, s->ev.data.scalar.value, n);
    buf[n] = '\0';
    return MC_OK;
}

/* Reads a scalar value (the current key's value). */
static mc_err scalar(pstate *s, char *buf, size_t cap)
{
    mc_err rc = next(s);
    if (rc)
        return rc;
    if (s->ev.type != YAML_SCALAR_EVENT)
        return perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "expected a single value");
    return scalar_copy(s, buf, cap);
}

/* Reads a boolean value (exactly true or false, docs/profiles.md) of the key named key. */
static mc_err boolean(pstate *s, const char *key, int *out)
{
    char v[PROFILE_VALUE_MAX];
    mc_err rc = scalar(s, v, sizeof v);
    if (rc)
        return rc;
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
        *out = v[0] == 't';
        return MC_OK;
    }
    return perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "%s is '%s' (true, false)", key, v);
}

static mc_err integer(pstate *s, int64_t min, int64_t max, const char *rule, int64_t *out)
{
    char v[PROFILE_VALUE_MAX];
    mc_err rc = scalar(s, v, sizeof v);
    if (rc)
        return rc;
    int64_t x = 0;
    size_t n = strlen(v);
    if (n == 0 || n > 9)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            goto bad;
        x = x * 10 + (v[i] - '0');
    }
    if (x < min || x > max)
        return perr(s, MC_ERR_PROFILE, ev_line(s), rule, "%lld is out of range %lld..%lld",
                    (long long)x, (long long)min, (long long)max);
    *out = x;
    return MC_OK;
bad:
    return perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "'%s' is not a decimal integer", v);
}

/* Calls item() for each scalar of a sequence whose start event has been read; a duplicate is the
 * item's business. */
typedef mc_err (*item_fn)(pstate *s, const char *v, unsigned line);
static mc_err sequence_items(pstate *s, item_fn item)
{
    mc_err rc = MC_OK;
    while (!rc) {
        if ((rc = next(s)))
            break;
        if (s->ev.type == YAML_SEQUENCE_END_EVENT)
            break;
        if (s->ev.type != YAML_SCALAR_EVENT) {
            rc = perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "list items must be single values");
            break;
        }
        char v[PROFILE_VALUE_MAX];
        if ((rc = scalar_copy(s, v, sizeof v)))
            break;
        rc = item(s, v, ev_line(s));
    }
    return rc;
}

/* Calls item() for each scalar of a sequence value. */
static mc_err sequence(pstate *s, item_fn item)
{
    mc_err rc = expect(s, YAML_SEQUENCE_START_EVENT, "a list");
    return rc ? rc : sequence_items(s, item);
}

/* Calls key() for each key of a mapping whose start event has been read, with the key's line;
 * key() reads the value. A key that is not a single value is refused as "expected <key_what>";
 * a duplicate is the key's business. */
typedef mc_err (*key_fn)(pstate *s, const char *k, unsigned kl);
static mc_err mapping_keys(pstate *s, const char *key_what, key_fn key)
{
    mc_err rc = MC_OK;
    while (!rc) {
        if ((rc = next(s)))
            break;
        if (s->ev.type == YAML_MAPPING_END_EVENT)
            break;
        char k[PROFILE_VALUE_MAX];
        unsigned kl = ev_line(s);
        if (s->ev.type != YAML_SCALAR_EVENT)
            return perr(s, MC_ERR_PROFILE, kl, NULL, "expected %s", key_what);
        if ((rc = scalar_copy(s, k, sizeof k)))
            break;
        rc = key(s, k, kl);
    }
    return rc;
}

/* Calls key() for each key of a mapping value; anything else is refused as "expected <what>". */
static mc_err mapping(pstate *s, const char *what, const char *key_what, key_fn key)
{
    mc_err rc = expect(s, YAML_MAPPING_START_EVENT, what);
    return rc ? rc : mapping_keys(s, key_what, key);
}

static mc_err item_keytype(pstate *s, const char *v, unsigned line)
{
    for (size_t i = 0; i < sizeof profile_keytypes / sizeof profile_keytypes[0]; i++) {
        mc_keytype k = profile_keytypes[i];
        if (strcmp(v, mc_keytype_name(k)) == 0) {
            if (s->p->keytypes & (1u << k))
                return perr(s, MC_ERR_PROFILE, line, NULL, "key type '%s' listed twice", v);
            s->p->keytypes |= 1u << k;
            return MC_OK;
        }
    }
    /* SBR 6.1.5: only these key families are allowed for subscribers. */
    return perr(s, MC_ERR_PROFILE, line, "SBR 6.1.5",
                "unknown key type '%s' (rsa, p256, p384, p521, ed25519, ed448)", v);
}

static mc_err item_usage(pstate *s, const char *v, unsigned line)
{
    for (size_t i = 0; i < sizeof usage_names / sizeof usage_names[0]; i++)
        if (strcmp(v, usage_names[i].name) == 0) {
            unsigned bit = 1u << usage_names[i].u;
            if (s->p->usages & bit)
                return perr(s, MC_ERR_PROFILE, line, NULL, "usage '%s' listed twice", v);
            s->p->usages |= bit;
            return MC_OK;
        }
    return perr(s, MC_ERR_PROFILE, line, "SBR 7.1.2.3(e)",
                "unknown usage '%s' (signing, key-management, dual)", v);
}

static mc_err item_eku(pstate *s, const char *v, unsigned line)
{
    for (int i = 0; i < EKU_COUNT; i++)
        if (strcmp(v, ekus[i].name) == 0) {
            /* SBR 7.1.2.3(f): serverAuth, codeSigning, timeStamping, anyEKU SHALL NOT be present */
            if (ekus[i].refused)
                return perr(s, MC_ERR_PROFILE, line, "SBR 7.1.2.3(f)",
                            "extended key usage %s is not allowed in S/MIME certificates", v);
            if (s->eku & (1u << i))
                return perr(s, MC_ERR_PROFILE, line, NULL, "'%s' listed twice", v);
            s->eku |= 1u << i;
            s->eku_line[i] = line;
            return MC_OK;
        }
    /* SBR 7.1.2.4: nothing beyond 7.1.2.3 without a documented reason; we know of none. */
    return perr(s, MC_ERR_PROFILE, line, "SBR 7.1.2.4",
                "unknown extended key usage '%s' (emailProtection, clientAuth)", v);
}

static mc_err item_policy(pstate *s, const char *v, unsigned line)
{
    uint8_t oid[32];
    size_t n = mc_der_oid_encode(v, oid, sizeof oid);
    if (n == 0)
        return perr(s, MC_ERR_PROFILE, line, NULL, "'%s' is not a dotted OID", v);
    /* SBR 7.1.2.3(a): exactly one reserved OID, which the loader adds from type + generation. */
    if (n >= sizeof OID_CABF_SMIME && memcmp(oid, OID_CABF_SMIME, sizeof OID_CABF_SMIME) == 0)
        return perr(s, MC_ERR_PROFILE, line, "SBR 7.1.2.3(a)",
                    "%s is a reserved S/MIME policy OID; it is added from type and generation", v);
    /* SBR 7.1.6.4: extra OIDs are the CA's own, documented in its CP/CPS; another CABF policy or
     * anyPolicy would assert something else. */
    if ((n >= sizeof OID_CABF && memcmp(oid, OID_CABF, sizeof OID_CABF) == 0) ||
        (n == sizeof OID_ANYPOLICY && memcmp(oid, OID_ANYPOLICY, n) == 0))
        return perr(s, MC_ERR_PROFILE, line, "SBR 7.1.6.4",
                    "%s is not a policy the CA documents for S/MIME certificates", v);
    for (size_t i = 0; i < s->n_pol; i++)
        if (s->pol_len[i] == n && memcmp(s->pol[i], oid, n) == 0)
            return perr(s, MC_ERR_PROFILE, line, NULL, "policy %s listed twice", v);
    if (s->n_pol == PROFILE_POLICIES_MAX)
        return perr(s, MC_ERR_PROFILE, line, NULL, "more than %d policies", PROFILE_POLICIES_MAX);
    memcpy(s->pol[s->n_pol], oid, n);
    s->pol_len[s->n_pol++] = n;
    return MC_OK;
}

static mc_err item_cap(pstate *s, const char *v, unsigned line)
{
    for (int i = 0; i < CAP_COUNT; i++)
        if (strcmp(v, caps[i].name) == 0) {
            if (s->caps & (1u << i))
                return perr(s, MC_ERR_PROFILE, line, NULL, "'%s' listed twice", v);
            s->caps |= 1u << i;
            return MC_OK;
        }
    return perr(s, MC_ERR_PROFILE, line, NULL,
                "unknown capability '%s' (aes256-gcm, aes128-gcm, aes256-cbc, aes192-cbc, "
                "aes128-cbc)",
                v);
}

/* SBR 7.1.4.2.3 - 7.1.4.2.6, one row per mc_subj_attr: for each type (mailbox, organization,
 * sponsor, individual) three letters for Legacy, Multipurpose, Strict: R SHALL, O MAY,
 * X SHALL NOT. */
static const char *const sbr_attrs[MC_SA_COUNT][4] = {
    [MC_SA_COUNTRY] = {"XXX", "OOO", "OOO", "OOO"},
    [MC_SA_STATE] = {"XXX", "OOO", "OOO", "OOO"},
    [MC_SA_LOCALITY] = {"XXX", "OOO", "OOO", "OOO"},
    [MC_SA_STREET] = {"XXX", "OOX", "OOX", "OOX"},
    [MC_SA_POSTAL_CODE] = {"XXX", "OOX", "OOX", "OOX"},
    [MC_SA_ORGANIZATION] = {"XXX", "RRR", "RRR", "XXX"},
    [MC_SA_ORG_UNIT] = {"XXX", "OOO", "OOO", "XXX"},
    [MC_SA_ORG_IDENTIFIER] = {"XXX", "RRR", "RRR", "XXX"},
    [MC_SA_TITLE] = {"XXX", "XXX", "OOO", "OOO"},
    [MC_SA_SURNAME] = {"XXX", "XXX", "OOO", "OOO"},
    [MC_SA_GIVEN_NAME] = {"XXX", "XXX", "OOO", "OOO"},
    [MC_SA_PSEUDONYM] = {"XXX", "XXX", "OOO", "OOO"},
    [MC_SA_SERIAL_NUMBER] = {"OOO", "OOO", "OOO", "OOO"},
};
static const char *const type_sections[5] = {"SBR 7.1.4.2", "SBR 7.1.4.2.3", "SBR 7.1.4.2.4",
                                             "SBR 7.1.4.2.5", "SBR 7.1.4.2.6"};
static const char *const type_names[5] = {"?", "mailbox", "organization", "sponsor", "individual"};
static const char *const gen_names[4] = {"?", "legacy", "multipurpose", "strict"};

int mc_profile_sbr_attr(mc_certtype t, mc_generation g, mc_subj_attr a, const char **section)
{
    if (section)
        *section = type_sections[t >= MC_TYPE_MAILBOX && t <= MC_TYPE_INDIVIDUAL ? t : 0];
    if (t < MC_TYPE_MAILBOX || t > MC_TYPE_INDIVIDUAL || g < MC_GEN_LEGACY || g > MC_GEN_STRICT ||
        (int)a < 0 || a >= MC_SA_COUNT)
        return 0;
    char c = sbr_attrs[a][t - 1][g - 1];
    return c == 'R' ? MC_PROFILE_ATTR_REQUIRED : c == 'O' ? MC_PROFILE_ATTR_OPTIONAL : 0;
}

static mc_err item_cn(pstate *s, const char *v, unsigned line)
{
    for (int c = MC_CN_NONE; c <= MC_CN_PSEUDONYM; c++)
        if (strcmp(v, mc_cn_source_name((mc_cn_source)c)) == 0) {
            unsigned bit = 1u << c;
            if (s->p->cn_choices & bit)
                return perr(s, MC_ERR_PROFILE, line, NULL, "'%s' listed twice", v);
            if (!s->p->cn_choices)
                s->p->cn_default = (mc_cn_source)c;
            s->p->cn_choices |= bit;
            return MC_OK;
        }
    return perr(s, MC_ERR_PROFILE, line, "SBR 7.1.4.2.2(a)",
                "subject.common_name '%s' is not one of none, mailbox, organization-name, "
                "personal-name, pseudonym",
                v);
}

/* One key of subject: {common_name: <source> | [<source>, ...], email_address: mailbox | none,
 *                      <attribute key>: required | optional, ...} */
static mc_err subject_key(pstate *s, const char *k, unsigned kl)
{
    char v[PROFILE_VALUE_MAX];
    mc_err rc;
    if (strcmp(k, "common_name") == 0) {
        if (s->subject_cn_set)
            return perr(s, MC_ERR_PROFILE, kl, NULL, "duplicate key 'subject.%s'", k);
        s->subject_cn_set = 1;
        s->cn_line = kl;
        /* one source, or a list of them (the first is the default) */
        if ((rc = next(s)))
            return rc;
        if (s->ev.type == YAML_SCALAR_EVENT) {
            if ((rc = scalar_copy(s, v, sizeof v)) || (rc = item_cn(s, v, ev_line(s))))
                return rc;
        } else if (s->ev.type == YAML_SEQUENCE_START_EVENT) {
            if ((rc = sequence_items(s, item_cn)))
                return rc;
            if (!s->p->cn_choices)
                return perr(s, MC_ERR_PROFILE, kl, NULL, "subject.common_name is empty");
        } else {
            return perr(s, MC_ERR_PROFILE, ev_line(s), NULL,
                        "subject.common_name is a source or a list of sources");
        }
        s->p->cn_mailbox = s->p->cn_default == MC_CN_MAILBOX;
        return MC_OK;
    }
    if (strcmp(k, "email_address") == 0) {
        if (s->subject_email_set)
            return perr(s, MC_ERR_PROFILE, kl, NULL, "duplicate key 'subject.%s'", k);
        if ((rc = scalar(s, v, sizeof v)))
            return rc;
        if (strcmp(v, "mailbox") == 0)
            s->p->email_attr = 1;
        else if (strcmp(v, "none") == 0)
            s->p->email_attr = 0;
        else
            return perr(s, MC_ERR_PROFILE, ev_line(s), NULL,
                        "subject.email_address is '%s' (mailbox or none)", v);
        s->subject_email_set = 1;
        return MC_OK;
    }
    int a = -1;
    for (int i = 0; i < MC_SA_COUNT; i++)
        if (strcmp(k, mc_subj_attr_get((mc_subj_attr)i)->key) == 0)
            a = i;
    if (a < 0)
        return perr(s, MC_ERR_PROFILE, kl, NULL,
                    "unknown key 'subject.%s' (common_name, email_address, organization_name, "
                    "organization_identifier, organizational_unit, given_name, surname, "
                    "pseudonym, title, serial_number, street, locality, state, postal_code, "
                    "country)",
                    k);
    if (s->subj_line[a])
        return perr(s, MC_ERR_PROFILE, kl, NULL, "duplicate key 'subject.%s'", k);
    s->subj_line[a] = kl;
    if ((rc = scalar(s, v, sizeof v)))
        return rc;
    if (strcmp(v, "required") == 0)
        s->p->subj[a] = MC_PROFILE_ATTR_REQUIRED;
    else if (strcmp(v, "optional") == 0)
        s->p->subj[a] = MC_PROFILE_ATTR_OPTIONAL;
    else
        return perr(s, MC_ERR_PROFILE, ev_line(s), NULL,
                    "subject.%s is '%s' (required or optional; leave the key out to forbid it)", k,
                    v);
    return MC_OK;
}

/* true / false for a qc_statements flag. */
static mc_err qc_bool(pstate *s, const char *k, int *out)
{
    char v[PROFILE_VALUE_MAX];
    mc_err rc = scalar(s, v, sizeof v);
    if (rc)
        return rc;
    if (strcmp(v, "true") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0)
        *out = 0;
    else
        return perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "qc_statements.%s is '%s' (true, false)",
                    k, v);
    return MC_OK;
}

/* One entry of qc_statements.pds: {<ISO 639-1 code>: <https URL>, ...} (ETSI EN 319 412-5 4.3.4
 * QcPDS). */
static mc_err qc_pds_key(pstate *s, const char *lang, unsigned line)
{
    char url[PROFILE_VALUE_MAX];
    mc_err rc = scalar(s, url, sizeof url);
    if (rc)
        return rc;
    /* PdsLocation.language: PrintableString (SIZE(2)), an ISO 639-1 code */
    if (strlen(lang) != 2 || lang[0] < 'a' || lang[0] > 'z' || lang[1] < 'a' || lang[1] > 'z')
        return perr(s, MC_ERR_PROFILE, line, "ETSI EN 319 412-5 4.3.4",
                    "PDS language '%s' is not a lower-case ISO 639-1 code", lang);
    for (size_t i = 0; i < s->n_pds; i++)
        if (strcmp(s->pds_lang[i], lang) == 0)
            return perr(s, MC_ERR_PROFILE, line, NULL, "PDS language '%s' listed twice", lang);
    if (s->n_pds == QC_PDS_MAX)
        return perr(s, MC_ERR_PROFILE, line, NULL, "more than %d PDS locations", QC_PDS_MAX);
    /* PdsLocation.url: IA5String; the PDS is published over https */
    size_t n = strlen(url);
    int ok = n <= QC_URL_MAX && strncmp(url, "https://", 8) == 0 && n > 8 && url[8] != '/';
    for (size_t i = 0; ok && i < n; i++)
        ok = url[i] > 0x20 && url[i] < 0x7f;
    if (!ok)
        return perr(s, MC_ERR_PROFILE, line, "ETSI EN 319 412-5 4.3.4",
                    "PDS URL '%.80s' is not an https URL of printable ASCII (at most %d)", url,
                    QC_URL_MAX);
    memcpy(s->pds_lang[s->n_pds], lang, 3);
    memcpy(s->pds_url[s->n_pds++], url, n + 1);
    return MC_OK;
}

static mc_err item_legislation(pstate *s, const char *v, unsigned line)
{
    /* QcCClegislation: SEQUENCE OF CountryName, PrintableString (SIZE(2)), ISO 3166-1 */
    if (strlen(v) != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z')
        return perr(s, MC_ERR_PROFILE, line, "ETSI EN 319 412-5 4.2.4",
                    "legislation '%s' is not an ISO 3166-1 alpha-2 code", v);
    for (size_t i = 0; i < s->n_leg; i++)
        if (strcmp(s->leg[i], v) == 0)
            return perr(s, MC_ERR_PROFILE, line, NULL, "legislation '%s' listed twice", v);
    if (s->n_leg == QC_LEGISLATION_MAX)
        return perr(s, MC_ERR_PROFILE, line, NULL, "more than %d legislations", QC_LEGISLATION_MAX);
    memcpy(s->leg[s->n_leg++], v, 3);
    return MC_OK;
}

/* One key of qc_statements: {compliance, sscd, type, semantics, retention_years, pds,
 * legislation} (docs/profiles.md); which types may have which is checked once the whole file is
 * read. */
static mc_err qc_statements_key(pstate *s, const char *k, unsigned kl)
{
    char v[PROFILE_VALUE_MAX];
    mc_err rc = MC_OK;
    static const char *const keys[] = {"compliance",      "sscd", "type",       "semantics",
                                       "retention_years", "pds",  "legislation"};
    int idx = -1;
    for (int i = 0; i < (int)(sizeof keys / sizeof keys[0]); i++)
        if (strcmp(k, keys[i]) == 0)
            idx = i;
    if (idx < 0)
        return perr(s, MC_ERR_PROFILE, kl, NULL,
                    "unknown key 'qc_statements.%s' (compliance, sscd, type, semantics, "
                    "retention_years, pds, legislation)",
                    k);
    if (s->qc_seen & (1u << idx))
        return perr(s, MC_ERR_PROFILE, kl, NULL, "duplicate key 'qc_statements.%s'", k);
    s->qc_seen |= 1u << idx;
    switch (idx) {
    case 0:
        rc = qc_bool(s, k, &s->qc_compliance);
        break;
    case 1:
        rc = qc_bool(s, k, &s->qc_sscd);
        break;
    case 2:
        if ((rc = scalar(s, v, sizeof v)))
            break;
        s->qc_type_line = kl;
        if (strcmp(v, "esign") == 0)
            s->qc_type = QC_TYPE_ESIGN;
        else if (strcmp(v, "eseal") == 0)
            s->qc_type = QC_TYPE_ESEAL;
        else /* id-etsi-qct-web is for website certificates, never S/MIME */
            rc = perr(s, MC_ERR_PROFILE, kl, "ETSI EN 319 412-5 4.2.3",
                      "qc_statements.type is '%s' (esign, eseal)", v);
        break;
    case 3:
        if ((rc = scalar(s, v, sizeof v)))
            break;
        s->qc_sem_line = kl;
        if (strcmp(v, "natural") == 0)
            s->qc_semantics = QC_SEM_NATURAL;
        else if (strcmp(v, "legal") == 0)
            s->qc_semantics = QC_SEM_LEGAL;
        else
            rc = perr(s, MC_ERR_PROFILE, kl, "ETSI EN 319 412-1 5.1",
                      "qc_statements.semantics is '%s' (natural, legal)", v);
        break;
    case 4:
        rc = integer(s, 1, 100, "ETSI EN 319 412-5 4.3.3", &s->qc_retention);
        break;
    case 5:
        s->qc_pds_line = kl;
        rc = mapping(s, "a mapping of language: https URL", "a language code", qc_pds_key);
        break;
    case 6:
        rc = sequence(s, item_legislation);
        break;
    }
    return rc;
}

/* SBR 7.1.2.3(k): qcStatements MAY be present, "in accordance with RFC 3739 3.2.6 and/or ETSI EN
 * 319 412-5 4": the statements must fit the certificate type. */
static mc_err check_qc(pstate *s)
{
    mc_profile *p = s->p;
    unsigned line = s->line[K_QC];
    if (!(s->seen & (1u << K_QC)))
        return MC_OK;
    /* A qualified certificate attests an identified natural or legal person (ETSI EN 319 412-5
     * 4.2.1 with EN 319 412-2/-3); a mailbox-validated one identifies nobody, so the statements
     * would assert what the CA did not validate (SBR 7.1.2.4 item 2). */
    if (p->type == MC_TYPE_MAILBOX)
        return perr(s, MC_ERR_PROFILE, line, "SBR 7.1.2.4",
                    "qc_statements would assert an identity a mailbox-validated certificate "
                    "does not validate");
    if (!s->qc_compliance && !s->qc_sscd && !s->qc_type && !s->qc_semantics && !s->qc_retention &&
        !s->n_pds && !s->n_leg)
        return perr(s, MC_ERR_PROFILE, line, "SBR 7.1.2.3(k)", "qc_statements lists no statement");
    int legal = p->type == MC_TYPE_ORGANIZATION;
    /* ETSI EN 319 412-5 4.2.3: esign for natural persons (sponsor, individual), eseal for legal
     * persons (organization) */
    if (s->qc_type && (s->qc_type == QC_TYPE_ESEAL) != legal)
        return perr(s, MC_ERR_PROFILE, s->qc_type_line, "ETSI EN 319 412-5 4.2.3",
                    "qc_statements.type %s does not fit %s certificates (%s)",
                    s->qc_type == QC_TYPE_ESEAL ? "eseal" : "esign", type_names[p->type],
                    legal ? "eseal" : "esign");
    /* ETSI EN 319 412-1 5.1.2 / 5.1.3: the natural person semantics for a natural person's
     * serialNumber, the legal person semantics for organizationIdentifier */
    if (s->qc_semantics && (s->qc_semantics == QC_SEM_LEGAL) != legal)
        return perr(s, MC_ERR_PROFILE, s->qc_sem_line, "ETSI EN 319 412-1 5.1",
                    "qc_statements.semantics %s does not fit %s certificates (%s)",
                    s->qc_semantics == QC_SEM_LEGAL ? "legal" : "natural", type_names[p->type],
                    legal ? "legal" : "natural");
    /* ETSI EN 319 412-5 4.3.4: at least one PDS in English */
    int en = 0;
    for (size_t i = 0; i < s->n_pds; i++)
        en |= strcmp(s->pds_lang[i], "en") == 0;
    if (s->n_pds && !en)
        return perr(s, MC_ERR_PROFILE, s->qc_pds_line, "ETSI EN 319 412-5 4.3.4",
                    "qc_statements.pds needs an English (en) PDS");
    return MC_OK;
}

/* SBR 7.1.4.2.2 - 7.1.4.2.6: the subject the profile allows must fit its type and generation,
 * and every listed commonName source must be producible. */
static mc_err check_subject(pstate *s)
{
    mc_profile *p = s->p;
    const char *sec = NULL;
    unsigned sl = s->line[K_SUBJECT];
    for (int i = 0; i < MC_SA_COUNT; i++) {
        const mc_subj_attr_info *ai = mc_subj_attr_get((mc_subj_attr)i);
        int sbr = mc_profile_sbr_attr(p->type, p->generation, (mc_subj_attr)i, &sec);
        if (p->subj[i] && !sbr)
            return perr(s, MC_ERR_PROFILE, s->subj_line[i], sec,
                        "%s is not allowed in %s %s certificates", ai->name, type_names[p->type],
                        gen_names[p->generation]);
        if (sbr == MC_PROFILE_ATTR_REQUIRED && p->subj[i] != MC_PROFILE_ATTR_REQUIRED)
            return perr(s, MC_ERR_PROFILE, s->subj_line[i] ? s->subj_line[i] : sl, sec,
                        "%s certificates must have %s: set subject.%s: required",
                        type_names[p->type], ai->name, ai->key);
    }
    const unsigned char *a = p->subj;
    int names = a[MC_SA_GIVEN_NAME] || a[MC_SA_SURNAME];
    /* Notes 2 of SBR 7.1.4.2.5 and 7.1.4.2.6: givenName and/or surname, or pseudonym */
    if ((p->type == MC_TYPE_SPONSOR || p->type == MC_TYPE_INDIVIDUAL) &&
        p->generation != MC_GEN_LEGACY && !names && !a[MC_SA_PSEUDONYM])
        return perr(s, MC_ERR_PROFILE, sl, type_sections[p->type],
                    "%s certificates need given_name and/or surname, or pseudonym",
                    type_names[p->type]);
    /* SBR 7.1.4.2.2(e)(f): never both names and a pseudonym */
    if (a[MC_SA_PSEUDONYM] == MC_PROFILE_ATTR_REQUIRED &&
        (a[MC_SA_GIVEN_NAME] == MC_PROFILE_ATTR_REQUIRED ||
         a[MC_SA_SURNAME] == MC_PROFILE_ATTR_REQUIRED))
        return perr(s, MC_ERR_PROFILE, s->subj_line[MC_SA_PSEUDONYM], "SBR 7.1.4.2.2(f)",
                    "pseudonym and given_name/surname cannot both be required");
    /* SBR 7.1.4.2.2(j): streetAddress only with localityName or stateOrProvinceName */
    if (a[MC_SA_STREET] && !a[MC_SA_LOCALITY] && !a[MC_SA_STATE])
        return perr(s, MC_ERR_PROFILE, s->subj_line[MC_SA_STREET], "SBR 7.1.4.2.2(j)",
                    "street needs locality or state");
    /* SBR 7.1.4.2.2(k)(l)(m): locality, state, postal code only with countryName */
    static const struct {
        mc_subj_attr a;
        const char *rule;
    } needs_c[] = {{MC_SA_LOCALITY, "SBR 7.1.4.2.2(k)"},
                   {MC_SA_STATE, "SBR 7.1.4.2.2(l)"},
                   {MC_SA_POSTAL_CODE, "SBR 7.1.4.2.2(m)"}};
    for (size_t i = 0; i < 3; i++)
        if (a[needs_c[i].a] && !a[MC_SA_COUNTRY])
            return perr(s, MC_ERR_PROFILE, s->subj_line[needs_c[i].a], needs_c[i].rule,
                        "%s needs country", mc_subj_attr_get(needs_c[i].a)->key);
    /* SBR 7.1.4.2.2(a): what commonName may hold per type, and that the source exists */
    unsigned allowed = (1u << MC_CN_NONE) | (1u << MC_CN_MAILBOX);
    if (p->type == MC_TYPE_ORGANIZATION)
        allowed |= 1u << MC_CN_ORGANIZATION;
    if (p->type == MC_TYPE_SPONSOR || p->type == MC_TYPE_INDIVIDUAL)
        allowed |= (1u << MC_CN_PERSONAL_NAME) | (1u << MC_CN_PSEUDONYM);
    for (int c = MC_CN_NONE; c <= MC_CN_PSEUDONYM; c++) {
        if (!(p->cn_choices & (1u << c)))
            continue;
        if (!(allowed & (1u << c)))
            return perr(s, MC_ERR_PROFILE, s->cn_line, "SBR 7.1.4.2.2(a)",
                        "commonName of a %s certificate cannot be %s", type_names[p->type],
                        mc_cn_source_name((mc_cn_source)c));
        if ((c == MC_CN_PERSONAL_NAME && !names) || (c == MC_CN_PSEUDONYM && !a[MC_SA_PSEUDONYM]))
            return perr(s, MC_ERR_PROFILE, s->cn_line, "SBR 7.1.4.2.2(a)",
                        "common_name %s needs subject.%s", mc_cn_source_name((mc_cn_source)c),
                        c == MC_CN_PSEUDONYM ? "pseudonym" : "given_name or surname");
    }
    return MC_OK;
}

static int name_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n >= sizeof((mc_profile *)0)->name)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (i > 0 && (c == '-' || c == '.' || c == '_'))))
            return 0;
    }
    return 1;
}

/* One root key and its value. */
static mc_err root_key(pstate *s, int k)
{
    char v[PROFILE_VALUE_MAX];
    mc_err rc;
    mc_profile *p = s->p;
    switch (k) {
    case K_NAME:
        if ((rc = scalar(s, v, sizeof v)))
            return rc;
        if (!name_ok(v))
            return perr(s, MC_ERR_PROFILE, ev_line(s), NULL,
                        "name '%s' must be 1..63 of [a-z0-9._-], starting with a letter or digit",
                        v);
        memcpy(p->name, v, strlen(v) + 1);
        return MC_OK;
    case K_TYPE:
        if ((rc = scalar(s, v, sizeof v)))
            return rc;
        for (int t = MC_TYPE_MAILBOX; t <= MC_TYPE_INDIVIDUAL; t++)
            if (strcmp(v, type_names[t]) == 0) {
                p->type = (mc_certtype)t;
                return MC_OK;
            }
        return perr(s, MC_ERR_PROFILE, ev_line(s), "SBR 1.2",
                    "unknown type '%s' (mailbox, organization, sponsor, individual)", v);
    case K_GENERATION:
        if ((rc = scalar(s, v, sizeof v)))
            return rc;
        if (strcmp(v, "strict") == 0)
            p->generation = MC_GEN_STRICT;
        else if (strcmp(v, "multipurpose") == 0)
            p->generation = MC_GEN_MULTIPURPOSE;
        else if (strcmp(v, "legacy") == 0)
            p->generation = MC_GEN_LEGACY;
        else
            return perr(s, MC_ERR_PROFILE, ev_line(s), "SBR 1.2",
                        "unknown generation '%s' (strict, multipurpose, legacy)", v);
        return MC_OK;
    case K_VALIDITY:
        /* the generation-dependent maximum is checked once the whole file is read */
        return integer(s, 1, 100000, "SBR 6.3.2", &s->validity_days);
    case K_BACKDATE:
        return integer(s, 0, PROFILE_BACKDATE_MAX, NULL, &p->backdate);
    case K_KEYTYPES:
        return sequence(s, item_keytype);
    case K_USAGES:
        return sequence(s, item_usage);
    case K_SUBJECT:
        return mapping(s, "a mapping (common_name, email_address, ...)", "a key", subject_key);
    case K_EKU:
        return sequence(s, item_eku);
    case K_POLICIES:
        return sequence(s, item_policy);
    case K_CPS:
        return boolean(s, key_names[K_CPS], &s->include_cps);
    case K_NR:
        return boolean(s, key_names[K_NR], &p->non_repudiation);
    case K_CAPS:
        return sequence(s, item_cap);
    case K_QC:
        return mapping(s, "a mapping of statements", "a key", qc_statements_key);
    case K_LEI:
        /* SBR 7.1.2.3(l): which types may have it is checked once the type is known */
        if ((rc = scalar(s, v, sizeof v)))
            return rc;
        if (strcmp(v, "required") == 0)
            p->lei = MC_PROFILE_ATTR_REQUIRED;
        else if (strcmp(v, "optional") == 0)
            p->lei = MC_PROFILE_ATTR_OPTIONAL;
        else
            return perr(s, MC_ERR_PROFILE, ev_line(s), "SBR 7.1.2.3(l)",
                        "legal_entity_identifier is '%s' (optional, required)", v);
        return MC_OK;
    }
    return MC_ERR_INTERNAL;
}

/* One key of the root mapping: known, given once. */
static mc_err root_entry(pstate *s, const char *k, unsigned kl)
{
    int idx = -1;
    for (int i = 0; i < K_COUNT; i++)
        if (strcmp(k, key_names[i]) == 0)
            idx = i;
    if (idx < 0)
        return perr(s, MC_ERR_PROFILE, kl, NULL, "unknown key '%s'", k);
    if (s->seen & (1u << idx))
        return perr(s, MC_ERR_PROFILE, kl, NULL, "duplicate key '%s'", k);
    s->seen |= 1u << idx;
    s->line[idx] = kl;
    return root_key(s, idx);
}

static mc_err parse(pstate *s)
{
    mc_err rc;
    if ((rc = expect(s, YAML_STREAM_START_EVENT, "a YAML stream")) ||
        (rc = expect(s, YAML_DOCUMENT_START_EVENT, "a YAML document")) ||
        (rc = expect(s, YAML_MAPPING_START_EVENT, "a mapping of profile keys")))
        return rc;
    s->root_line = ev_line(s);
    if ((rc = mapping_keys(s, "a key", root_entry)) ||
        (rc = expect(s, YAML_DOCUMENT_END_EVENT, "the end of the document")))
        return rc;
    if ((rc = next(s)))
        return rc;
    if (s->ev.type != YAML_STREAM_END_EVENT)
        return perr(s, MC_ERR_PROFILE, ev_line(s), NULL, "one YAML document per profile");
    return MC_OK;
}

/* Rules that need the whole file (generation-dependent limits, required keys). */
static mc_err check(pstate *s)
{
    mc_profile *p = s->p;
    for (int i = 0; i < K_COUNT; i++)
        if ((REQUIRED & (1u << i)) && !(s->seen & (1u << i)))
            return perr(s, MC_ERR_PROFILE, s->root_line, NULL, "missing key '%s'", key_names[i]);
    if (!s->subject_cn_set || !s->subject_email_set)
        return perr(s, MC_ERR_PROFILE, s->line[K_SUBJECT], NULL,
                    "subject needs both common_name and email_address");
    mc_err rc = check_subject(s);
    if (rc)
        return rc;
    /* SBR 7.1.2.3(l): the LEI extension is prohibited in mailbox and individual certificates */
    if (p->lei && p->type != MC_TYPE_ORGANIZATION && p->type != MC_TYPE_SPONSOR)
        return perr(s, MC_ERR_PROFILE, s->line[K_LEI], "SBR 7.1.2.3(l)",
                    "legal_entity_identifier is prohibited in %s certificates",
                    type_names[p->type]);
    if ((rc = check_qc(s)))
        return rc;

    /* SBR 6.3.2: at most 825 days (legacy 1185), inclusive of both ends. */
    int64_t maxdays = p->generation == MC_GEN_LEGACY ? 1185 : 825;
    if (s->validity_days > maxdays)
        return perr(s, MC_ERR_PROFILE, s->line[K_VALIDITY], "SBR 6.3.2",
                    "validity_days %lld exceeds %lld for this generation",
                    (long long)s->validity_days, (long long)maxdays);
    p->validity = s->validity_days * 86400 - 1;

    if (p->keytypes == 0)
        return perr(s, MC_ERR_PROFILE, s->line[K_KEYTYPES], NULL, "key_types is empty");
    if (p->usages == 0)
        return perr(s, MC_ERR_PROFILE, s->line[K_USAGES], NULL, "usages is empty");
    /* SBR 7.1.2.3(e): each allowed key type needs at least one usage it may have (EdDSA keys are
     * signing only), or the profile lists a key it can never certify. */
    for (size_t i = 0; i < sizeof profile_keytypes / sizeof profile_keytypes[0]; i++) {
        mc_keytype k = profile_keytypes[i];
        if (!(p->keytypes & (1u << k)))
            continue;
        int any = 0;
        for (size_t u = 0; u < sizeof usage_names / sizeof usage_names[0]; u++)
            if ((p->usages & (1u << usage_names[u].u)) &&
                mc_tbs_key_usage(k, usage_names[u].u, (int)p->generation))
                any = 1;
        if (!any)
            return perr(s, MC_ERR_PROFILE, s->line[K_USAGES], "SBR 7.1.2.3(e)",
                        "no listed usage is allowed for key type %s", mc_keytype_name(k));
    }

    /* SBR 7.1.2.3(f): emailProtection SHALL be present; Strict: nothing else. */
    if (!(s->eku & (1u << EKU_EMAIL)))
        return perr(s, MC_ERR_PROFILE, s->line[K_EKU], "SBR 7.1.2.3(f)",
                    "extended_key_usages must contain emailProtection");
    if (p->generation == MC_GEN_STRICT)
        for (int i = 0; i < EKU_COUNT; i++)
            if (i != EKU_EMAIL && (s->eku & (1u << i)))
                return perr(s, MC_ERR_PROFILE, s->eku_line[i], "SBR 7.1.2.3(f)",
                            "a strict profile allows only emailProtection, not %s", ekus[i].name);
    return MC_OK;
}

/* A URL the certificate will carry: printable ASCII, "http://" (or https when allowed), a host. */
static mc_err check_url(mc_errdetail *err, const char *url, const char *field, const char *rule,
                        int allow_https)
{
    size_t n = strlen(url);
    if (n > URL_MAX)
        return mc_err_set(err, MC_ERR_CONFIG, field, rule, "URL longer than %d bytes", URL_MAX);
    for (size_t i = 0; i < n; i++)
        if (url[i] <= 0x20 || url[i] >= 0x7f)
            return mc_err_set(err, MC_ERR_CONFIG, field, rule,
                              "URL '%s' has a space, control or non-ASCII character", url);
    size_t skip = 0;
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (allow_https && strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    if (!skip)
        return mc_err_set(err, MC_ERR_CONFIG, field, rule, "URL '%s' must use the %s scheme", url,
                          allow_https ? "http or https" : "http");
    if (url[skip] == '\0' || url[skip] == '/')
        return mc_err_set(err, MC_ERR_CONFIG, field, rule, "URL '%s' has no host", url);
    return MC_OK;
}

static int url_set(const char *u)
{
    return u && u[0];
}

/* Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE (omitted), extnValue OCTET STRING } */
static size_t ext_begin(mc_der_w *w, const uint8_t *oid, size_t oidlen, size_t *oct)
{
    size_t m = mc_der_begin(w, MC_DER_SEQUENCE);
    mc_der_put(w, MC_DER_OID, oid, oidlen);
    *oct = mc_der_begin(w, MC_DER_OCTETSTRING);
    return m;
}

static void ext_end(mc_der_w *w, size_t m, size_t oct)
{
    mc_der_end(w, oct);
    mc_der_end(w, m);
}

/* The extKeyUsage extension, non-critical, of the EKU_* bits in eku: emailProtection first
 * (SBR 7.1.2.3(f)). *out is malloc'd; mc_profile_free frees it. */
static mc_err compile_eku(unsigned eku, uint8_t **out, size_t *outlen, mc_errdetail *err)
{
    uint8_t buf[64];
    mc_der_w w;
    size_t o;
    mc_der_w_init(&w, buf, sizeof buf);
    size_t e = ext_begin(&w, OID_EKU, sizeof OID_EKU, &o);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    for (int i = 0; i < EKU_COUNT; i++)
        if (eku & (1u << i))
            mc_der_put(&w, MC_DER_OID, ekus[i].oid, ekus[i].len);
    mc_der_end(&w, m);
    ext_end(&w, e, o);
    if (w.err != MC_OK)
        return mc_err_set(err, MC_ERR_INTERNAL, NULL, NULL, "extKeyUsage does not fit");
    if (!(*out = malloc(w.len)))
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "out of memory");
    memcpy(*out, buf, w.len);
    *outlen = w.len;
    return MC_OK;
}

/* Builds ext_const (policies, CRL DP, AIA, AKI, S/MIME capabilities, qcStatements), ext_eku and
 * ext_eku_nosign. */
static mc_err compile(pstate *s, const mc_issuer *iss, const mc_ca_urls *urls)
{
    mc_profile *p = s->p;
    mc_errdetail *err = s->err;
    mc_err rc;
    /* SBR 7.1.2.3(b): required, and every URI http for strict and multipurpose (we also hold
     * legacy to it: it only ever has this one URI). */
    if (!urls || !url_set(urls->crl))
        return mc_err_set(err, MC_ERR_CONFIG, "ca.crl_url", "SBR 7.1.2.3(b)",
                          "a CRL URL is required for profile %s", p->name);
    if ((rc = check_url(err, urls->crl, "ca.crl_url", "SBR 7.1.2.3(b)", 0)))
        return rc;
    /* partitioned CRLs: the URL carries "{shard}" iff there are shards; compiled with the
     * digits of shard 0, which mc_tbs_build overwrites per certificate (same length) */
    unsigned shards = urls->crl_shards ? urls->crl_shards : 1;
    char crl_url[URL_MAX + 1];
    if ((rc = mc_crl_url_check(urls->crl, shards, err)))
        return rc;
    if (shards > 1) {
        if ((rc = mc_crl_shard_url(urls->crl, 0, crl_url, sizeof crl_url, NULL, 0, err)))
            return rc;
    } else {
        snprintf(crl_url, sizeof crl_url, "%s", urls->crl);
    }
    /* SBR 7.1.2.3(c): AIA locations are http only */
    if (url_set(urls->ocsp) &&
        (rc = check_url(err, urls->ocsp, "ca.ocsp_url", "SBR 7.1.2.3(c)", 0)))
        return rc;
    if (url_set(urls->ca_issuers) &&
        (rc = check_url(err, urls->ca_issuers, "ca.issuers_url", "SBR 7.1.2.3(c)", 0)))
        return rc;
    if (s->include_cps) {
        if (!url_set(urls->cps))
            return perr(s, MC_ERR_CONFIG, s->line[K_CPS], "SBR 7.1.2.3(a)",
                        "include_cps is true but no CPS URL (ca.cps_url) is configured");
        /* SBR 7.1.2.3(a): the id-qt-cps qualifier is an HTTP or HTTPS URL */
        if ((rc = check_url(err, urls->cps, "ca.cps_url", "SBR 7.1.2.3(a)", 1)))
            return rc;
    }
    if (!iss || iss->ski_len == 0 || iss->ski_len > sizeof iss->ski)
        return mc_err_set(err, MC_ERR_INVALID, "ca.certificate", "SBR 7.1.2.3(g)",
                          "profile %s needs an issuer with a subjectKeyIdentifier", p->name);

    uint8_t *buf = malloc(EXT_CONST_MAX);
    if (!buf)
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "out of memory");
    mc_der_w w;
    size_t e, o, m, m2, m3;
    mc_der_w_init(&w, buf, EXT_CONST_MAX);

    /* certificatePolicies, non-critical (SBR 7.1.2.3(a), 7.1.6.4): the reserved OID
     * 2.23.140.1.5.<type>.<generation> first, then the CA's own. */
    e = ext_begin(&w, OID_CP, sizeof OID_CP, &o);
    m = mc_der_begin(&w, MC_DER_SEQUENCE);
    {
        uint8_t reserved[sizeof OID_CABF_SMIME + 2];
        memcpy(reserved, OID_CABF_SMIME, sizeof OID_CABF_SMIME);
        /* SBR 7.1.6.1: type arc 1..4, generation arc 1 legacy, 2 multipurpose, 3 strict */
        reserved[sizeof OID_CABF_SMIME] = (uint8_t)p->type;
        reserved[sizeof OID_CABF_SMIME + 1] = (uint8_t)p->generation;
        m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
        mc_der_put(&w, MC_DER_OID, reserved, sizeof reserved);
        if (s->include_cps) {
            m3 = mc_der_begin(&w, MC_DER_SEQUENCE);
            size_t q = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QT_CPS, sizeof OID_QT_CPS);
            mc_der_put(&w, MC_DER_IA5STRING, urls->cps, strlen(urls->cps));
            mc_der_end(&w, q);
            mc_der_end(&w, m3);
        }
        mc_der_end(&w, m2);
    }
    for (size_t i = 0; i < s->n_pol; i++) {
        m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
        mc_der_put(&w, MC_DER_OID, s->pol[i], s->pol_len[i]);
        mc_der_end(&w, m2);
    }
    mc_der_end(&w, m);
    ext_end(&w, e, o);

    /* cRLDistributionPoints, non-critical: one DistributionPoint, fullName = the http URI
     * (SBR 7.1.2.3(b)). DistributionPointName is a CHOICE, so its [0] is explicit. */
    size_t crldp_at = w.len; /* a top-level extension: later ones never move its bytes */
    e = ext_begin(&w, OID_CRLDP, sizeof OID_CRLDP, &o);
    m = mc_der_begin(&w, MC_DER_SEQUENCE);
    m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
    m3 = mc_der_begin(&w, MC_DER_CTX_CONS(0));
    size_t fn = mc_der_begin(&w, MC_DER_CTX_CONS(0));
    mc_der_put(&w, MC_DER_CTX(6), crl_url, strlen(crl_url));
    mc_der_end(&w, fn);
    mc_der_end(&w, m3);
    mc_der_end(&w, m2);
    mc_der_end(&w, m);
    ext_end(&w, e, o);

    /* authorityInformationAccess, non-critical (SBR 7.1.2.3(c)): OCSP then caIssuers. */
    if (url_set(urls->ocsp) || url_set(urls->ca_issuers)) {
        e = ext_begin(&w, OID_AIA, sizeof OID_AIA, &o);
        m = mc_der_begin(&w, MC_DER_SEQUENCE);
        if (url_set(urls->ocsp)) {
            m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_AD_OCSP, sizeof OID_AD_OCSP);
            mc_der_put(&w, MC_DER_CTX(6), urls->ocsp, strlen(urls->ocsp));
            mc_der_end(&w, m2);
        }
        if (url_set(urls->ca_issuers)) {
            m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_AD_CAISSUERS, sizeof OID_AD_CAISSUERS);
            mc_der_put(&w, MC_DER_CTX(6), urls->ca_issuers, strlen(urls->ca_issuers));
            mc_der_end(&w, m2);
        }
        mc_der_end(&w, m);
        ext_end(&w, e, o);
    }

    /* authorityKeyIdentifier, non-critical, keyIdentifier only (SBR 7.1.2.3(g)). */
    e = ext_begin(&w, OID_AKI, sizeof OID_AKI, &o);
    m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put(&w, MC_DER_CTX(0), iss->ski, iss->ski_len);
    mc_der_end(&w, m);
    ext_end(&w, e, o);

    /* smimeCapabilities, non-critical (SBR 7.1.2.3(i), RFC 4262), in the file's preference
     * order as fixed by the table. */
    if (s->caps) {
        e = ext_begin(&w, OID_SMIMECAPS, sizeof OID_SMIMECAPS, &o);
        m = mc_der_begin(&w, MC_DER_SEQUENCE);
        for (int i = 0; i < CAP_COUNT; i++)
            if (s->caps & (1u << i)) {
                m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
                mc_der_put(&w, MC_DER_OID, caps[i].oid, sizeof caps[i].oid);
                mc_der_end(&w, m2);
            }
        mc_der_end(&w, m);
        ext_end(&w, e, o);
    }
    /* qcStatements, non-critical (SBR 7.1.2.3(k)): SEQUENCE OF QCStatement {statementId,
     * statementInfo} (RFC 3739 3.2.6), the statements of ETSI EN 319 412-5 4 in its order. */
    if (s->seen & (1u << K_QC)) {
        e = ext_begin(&w, OID_QCS, sizeof OID_QCS, &o);
        m = mc_der_begin(&w, MC_DER_SEQUENCE);
        if (s->qc_semantics) { /* SemanticsInformation {semanticsIdentifier} (RFC 3739 3.2.6.1) */
            m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QCS_PKIX_V2, sizeof OID_QCS_PKIX_V2);
            m3 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QC_SEM[s->qc_semantics - 1], 7);
            mc_der_end(&w, m3);
            mc_der_end(&w, m2);
        }
        if (s->qc_compliance) { /* QcCompliance: no statementInfo (4.2.1) */
            m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QC_COMPLIANCE, sizeof OID_QC_COMPLIANCE);
            mc_der_end(&w, m2);
        }
        if (s->qc_retention) { /* QcEuRetentionPeriod ::= INTEGER (4.3.3) */
            m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QC_RETENTION, sizeof OID_QC_RETENTION);
            mc_der_put_small_uint(&w, (uint64_t)s->qc_retention);
            mc_der_end(&w, m2);
        }
        if (s->qc_sscd) { /* QcSSCD: no statementInfo (4.2.2) */
            m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QC_SSCD, sizeof OID_QC_SSCD);
            mc_der_end(&w, m2);
        }
        if (s->n_pds) { /* QcEuPDS ::= SEQUENCE OF PdsLocation {url IA5String, language} (4.3.4) */
            m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QC_PDS, sizeof OID_QC_PDS);
            m3 = mc_der_begin(&w, MC_DER_SEQUENCE);
            for (size_t i = 0; i < s->n_pds; i++) {
                size_t pl = mc_der_begin(&w, MC_DER_SEQUENCE);
                mc_der_put(&w, MC_DER_IA5STRING, s->pds_url[i], strlen(s->pds_url[i]));
                mc_der_put(&w, MC_DER_PRINTABLESTRING, s->pds_lang[i], 2);
                mc_der_end(&w, pl);
            }
            mc_der_end(&w, m3);
            mc_der_end(&w, m2);
        }
        if (s->qc_type) { /* QcType ::= SEQUENCE OF OBJECT IDENTIFIER (4.2.3) */
            m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QC_TYPE, sizeof OID_QC_TYPE);
            m3 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QCT[s->qc_type - 1], 7);
            mc_der_end(&w, m3);
            mc_der_end(&w, m2);
        }
        if (s->n_leg) { /* QcCClegislation ::= SEQUENCE OF CountryName (4.2.4) */
            m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put(&w, MC_DER_OID, OID_QC_LEGISLATION, sizeof OID_QC_LEGISLATION);
            m3 = mc_der_begin(&w, MC_DER_SEQUENCE);
            for (size_t i = 0; i < s->n_leg; i++)
                mc_der_put(&w, MC_DER_PRINTABLESTRING, s->leg[i], 2);
            mc_der_end(&w, m3);
            mc_der_end(&w, m2);
        }
        mc_der_end(&w, m);
        ext_end(&w, e, o);
    }
    if (w.err != MC_OK) {
        free(buf);
        return mc_err_set(err, MC_ERR_CONFIG, NULL, NULL,
                          "constant extensions exceed %d bytes (URLs too long?)", EXT_CONST_MAX);
    }
    p->crl_shards = shards;
    p->crl_shard_off = 0;
    if (shards > 1) {
        /* where the shard digits sit in ext_const: the URI's first bytes in the CRL DP */
        size_t ulen = strlen(crl_url);
        const uint8_t *at = memmem(buf + crldp_at, w.len - crldp_at, crl_url, ulen);
        if (!at) {
            free(buf);
            return mc_err_set(err, MC_ERR_INTERNAL, "ca.crl_url", NULL,
                              "the compiled CRL distribution point lost its URL");
        }
        p->crl_shard_off =
            (size_t)(at - buf) + (size_t)(strstr(urls->crl, MC_CRL_SHARD_PLACEHOLDER) - urls->crl);
    }
    uint8_t *shrunk = realloc(buf, w.len);
    p->ext_const = shrunk ? shrunk : buf;
    p->ext_const_len = w.len;

    /* RFC 5280 4.2.1.12: clientAuth is consistent with digitalSignature or keyAgreement only,
     * so a key that can do neither (RSA key management) gets the list without it. */
    if ((rc = compile_eku(s->eku, &p->ext_eku, &p->ext_eku_len, err)) != MC_OK)
        return rc;
    return compile_eku(s->eku & ~(1u << EKU_CLIENT), &p->ext_eku_nosign, &p->ext_eku_nosign_len,
                       err);
}

mc_err mc_profile_load(const char *path, const mc_issuer *iss, const mc_ca_urls *urls,
                       mc_profile **out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    pstate s;
    memset(&s, 0, sizeof s);
    uint8_t *buf = NULL;
    FILE *f = NULL;
    int parser_ready = 0;
    *out = NULL;
    mc_profile *p = calloc(1, sizeof *p);
    if (!p) {
        rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "out of memory");
        goto done;
    }
    s.p = p;
    s.err = err;
    s.path = path;
    const char *slash = strrchr(path, '/');
    s.base = slash ? slash + 1 : path;
    if (strlen(path) >= sizeof p->path) {
        rc = mc_err_set(err, MC_ERR_IO, s.base, NULL, "profile path longer than %zu bytes",
                        sizeof p->path - 1);
        goto done;
    }
    memcpy(p->path, path, strlen(path) + 1);

    f = fopen(path, "rb");
    buf = malloc(PROFILE_FILE_MAX);
    if (!f || !buf) {
        rc = mc_err_set(err, f ? MC_ERR_NOMEM : MC_ERR_IO, s.base, NULL, "cannot open %s", path);
        goto done;
    }
    size_t n = fread(buf, 1, PROFILE_FILE_MAX, f);
    if (ferror(f) || n == PROFILE_FILE_MAX) {
        rc = mc_err_set(err, MC_ERR_IO, s.base, NULL, "cannot read %s (or larger than %d bytes)",
                        path, PROFILE_FILE_MAX);
        goto done;
    }
    /* The hash of exactly the bytes compiled, recorded with each certificate. */
    if (!EVP_Q_digest(NULL, "SHA256", NULL, buf, n, p->hash, NULL)) {
        rc = mc_crypto_err(err, s.base, "SHA-256 of the profile");
        goto done;
    }

    if (!yaml_parser_initialize(&s.parser)) {
        rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "yaml_parser_initialize failed");
        goto done;
    }
    parser_ready = 1;
    yaml_parser_set_input_string(&s.parser, buf, n);
    if ((rc = parse(&s)) || (rc = check(&s)))
        goto done;
    /* SBR 1.2.1 / 7.1.6.1: legacy may be loaded to lint old certificates, never to issue. */
    p->lint_only = p->generation == MC_GEN_LEGACY;
    p->issuer = iss;
    rc = compile(&s, iss, urls);
done:
    if (s.have_ev)
        yaml_event_delete(&s.ev);
    if (parser_ready)
        yaml_parser_delete(&s.parser);
    if (f)
        fclose(f);
    free(buf);
    if (rc != MC_OK)
        mc_profile_free(p);
    else
        *out = p;
    return rc;
}

void mc_profile_free(mc_profile *p)
{
    if (!p)
        return;
    free(p->ext_const);
    free(p->ext_eku);
    free(p->ext_eku_nosign);
    free(p);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

mc_err mc_profile_set_load(const char *dir, const mc_issuer *iss, const mc_ca_urls *urls,
                           mc_profile_set *out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    char **names = NULL;
    size_t nn = 0, cap = 0;
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) {
        rc = mc_err_set(err, MC_ERR_IO, "engine.profiles", NULL, "cannot open folder %s", dir);
        goto done;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l <= 5 || strcmp(de->d_name + l - 5, ".yaml") != 0 || de->d_name[0] == '.')
            continue;
        if (nn == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **nv = realloc(names, nc * sizeof *nv);
            if (!nv) {
                rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "out of memory");
                goto done;
            }
            names = nv;
            cap = nc;
        }
        if (!(names[nn] = strdup(de->d_name))) {
            rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "out of memory");
            goto done;
        }
        nn++;
    }
    if (nn == 0) {
        rc =
            mc_err_set(err, MC_ERR_CONFIG, "engine.profiles", NULL, "no *.yaml profile in %s", dir);
        goto done;
    }
    qsort(names, nn, sizeof *names, cmp_str); /* load order, hence errors, are reproducible */
    out->v = calloc(nn, sizeof *out->v);
    if (!out->v) {
        rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nn; i++) {
        char path[1024];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
            rc = mc_err_set(err, MC_ERR_IO, names[i], NULL, "path too long in %s", dir);
            goto done;
        }
        mc_profile *p;
        if ((rc = mc_profile_load(path, iss, urls, &p, err)))
            goto done;
        out->v[out->n++] = p;
        for (size_t j = 0; j + 1 < out->n; j++)
            if (strcmp(out->v[j]->name, p->name) == 0) {
                rc = mc_err_set(err, MC_ERR_PROFILE, names[i], NULL,
                                "profile name '%s' is also used by %s", p->name, out->v[j]->path);
                goto done;
            }
    }
done:
    if (d)
        closedir(d);
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    if (rc != MC_OK)
        mc_profile_set_free(out);
    return rc;
}

const mc_profile *mc_profile_set_find(const mc_profile_set *set, const char *name, size_t len)
{
    for (size_t i = 0; i < set->n; i++)
        if (strlen(set->v[i]->name) == len && memcmp(set->v[i]->name, name, len) == 0)
            return set->v[i];
    return NULL;
}

void mc_profile_set_free(mc_profile_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        mc_profile_free(set->v[i]);
    free(set->v);
    memset(set, 0, sizeof *set);
}

static size_t utf8_chars(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)p[i] & 0xc0) != 0x80;
    return c;
}

/* The order's subject against the profile (allowlist, per-order choices) and the SBR rules that
 * tie attributes together, so that mc_tbs_build can only write a compliant subject. */
static mc_err check_order_subject(const mc_profile *p, const mc_order *o, mc_errdetail *err)
{
    const mc_subject *sj = &o->subject;
    char field[MC_ERR_FIELD_MAX];
    for (int i = 0; i < MC_SA_COUNT; i++) {
        int given = sj->attr[i].len != 0;
        if (given ? p->subj[i] != 0 : p->subj[i] != MC_PROFILE_ATTR_REQUIRED)
            continue; /* allowed as given: nothing to report */
        const mc_subj_attr_info *ai = mc_subj_attr_get((mc_subj_attr)i);
        mc_err_field(field, sizeof field, "subject", ai->key);
        const char *sec;
        int sbr = mc_profile_sbr_attr(p->type, p->generation, (mc_subj_attr)i, &sec);
        if (given)
            return mc_err_set(err, MC_ERR_INVALID, field, sbr ? "profile subject" : sec,
                              "profile %s does not allow %s", p->name, ai->name);
        return mc_err_set(err, MC_ERR_INVALID, field,
                          sbr == MC_PROFILE_ATTR_REQUIRED ? sec : "profile subject",
                          "profile %s requires %s", p->name, ai->name);
    }
    int names = sj->attr[MC_SA_GIVEN_NAME].len || sj->attr[MC_SA_SURNAME].len;
    int pseudo = sj->attr[MC_SA_PSEUDONYM].len != 0;
    /* SBR 7.1.4.2.2(e)(f) */
    if (names && pseudo)
        return mc_err_set(err, MC_ERR_INVALID, "subject.pseudonym", "SBR 7.1.4.2.2(f)",
                          "a pseudonym cannot go with given_name or surname");
    /* SBR 7.1.4.2.5 / 7.1.4.2.6 Note 2 */
    if ((p->type == MC_TYPE_SPONSOR || p->type == MC_TYPE_INDIVIDUAL) &&
        p->generation != MC_GEN_LEGACY && !names && !pseudo)
        return mc_err_set(err, MC_ERR_INVALID, "subject",
                          p->type == MC_TYPE_SPONSOR ? "SBR 7.1.4.2.5" : "SBR 7.1.4.2.6",
                          "needs given_name and/or surname, or pseudonym");
    /* SBR 7.1.4.2.2(j)-(m): address attributes depend on each other */
    if (sj->attr[MC_SA_STREET].len && !sj->attr[MC_SA_LOCALITY].len && !sj->attr[MC_SA_STATE].len)
        return mc_err_set(err, MC_ERR_INVALID, "subject.street", "SBR 7.1.4.2.2(j)",
                          "street needs locality or state");
    static const struct {
        mc_subj_attr a;
        const char *field, *rule;
    } needs_c[] = {{MC_SA_LOCALITY, "subject.locality", "SBR 7.1.4.2.2(k)"},
                   {MC_SA_STATE, "subject.state", "SBR 7.1.4.2.2(l)"},
                   {MC_SA_POSTAL_CODE, "subject.postal_code", "SBR 7.1.4.2.2(m)"}};
    for (size_t i = 0; i < 3; i++)
        if (sj->attr[needs_c[i].a].len && !sj->attr[MC_SA_COUNTRY].len)
            return mc_err_set(err, MC_ERR_INVALID, needs_c[i].field, needs_c[i].rule,
                              "needs country");
    /* SBR 7.1.4.2.2(a): the commonName source, from the profile's list only */
    mc_cn_source cn = mc_profile_cn_source(p, o);
    if (sj->cn != MC_CN_DEFAULT && !(p->cn_choices & (1u << sj->cn)))
        return mc_err_set(err, MC_ERR_INVALID, "subject.common_name", "profile subject",
                          "profile %s does not allow common_name %s", p->name,
                          mc_cn_source_name(sj->cn));
    switch (cn) {
    case MC_CN_ORGANIZATION:
        if (!sj->attr[MC_SA_ORGANIZATION].len)
            return mc_err_set(err, MC_ERR_INVALID, "subject.common_name", "SBR 7.1.4.2.2(a)",
                              "common_name organization-name needs organization_name");
        break;
    case MC_CN_PSEUDONYM:
        if (!pseudo)
            return mc_err_set(err, MC_ERR_INVALID, "subject.common_name", "SBR 7.1.4.2.2(a)",
                              "common_name pseudonym needs pseudonym");
        if (utf8_chars(sj->attr[MC_SA_PSEUDONYM].p, sj->attr[MC_SA_PSEUDONYM].len) > 64)
            return mc_err_set(err, MC_ERR_INVALID, "subject.common_name", "RFC 5280 App. A",
                              "the pseudonym is longer than the 64 characters of commonName");
        break;
    case MC_CN_PERSONAL_NAME: {
        if (!names)
            return mc_err_set(err, MC_ERR_INVALID, "subject.common_name", "SBR 7.1.4.2.2(a)",
                              "common_name personal-name needs given_name or surname");
        const mc_str *g = &sj->attr[MC_SA_GIVEN_NAME], *sn = &sj->attr[MC_SA_SURNAME];
        size_t n = utf8_chars(g->p, g->len) + utf8_chars(sn->p, sn->len) + (g->len && sn->len);
        if (n > 64)
            return mc_err_set(err, MC_ERR_INVALID, "subject.common_name", "RFC 5280 App. A",
                              "\"given_name surname\" is %zu characters, commonName allows 64", n);
        break;
    }
    case MC_CN_MAILBOX:
        /* an explicit choice must be honoured; the profile default is dropped when too long */
        if (sj->cn == MC_CN_MAILBOX &&
            utf8_chars(o->mailboxes[0].address.p, o->mailboxes[0].address.len) > 64)
            return mc_err_set(err, MC_ERR_INVALID, "subject.common_name", "RFC 5280 App. A",
                              "the first mailbox is longer than the 64 characters of commonName");
        break;
    default:
        break;
    }
    return MC_OK;
}

/* SBR 7.1.2.3(l): LEI (1.3.6.1.4.1.52266.1) MAY be in organization and sponsor certificates
 * (mailbox, individual: prohibited, so the profile cannot allow it), the role
 * (1.3.6.1.4.1.52266.2) only in sponsor ones. The GLEIF states were checked at decode. */
static mc_err check_order_lei(const mc_profile *p, const mc_order *o, mc_errdetail *err)
{
    if (o->lei.value.len && !p->lei)
        return mc_err_set(err, MC_ERR_INVALID, "lei", "SBR 7.1.2.3(l)",
                          "profile %s (%s) does not allow an LEI", p->name, type_names[p->type]);
    if (!o->lei.value.len && p->lei == MC_PROFILE_ATTR_REQUIRED)
        return mc_err_set(err, MC_ERR_INVALID, "lei", "SBR 7.1.2.3(l)",
                          "profile %s requires an LEI", p->name);
    if (o->lei_role.value.len && (p->type != MC_TYPE_SPONSOR || !p->lei))
        return mc_err_set(err, MC_ERR_INVALID, "lei_role", "SBR 7.1.2.3(l)",
                          "a role LEI is allowed only in sponsor certificates whose profile "
                          "allows an LEI, not in profile %s (%s)",
                          p->name, type_names[p->type]);
    return MC_OK;
}

mc_err mc_profile_check_order(const mc_profile *p, const mc_order *o, int64_t now,
                              mc_errdetail *err)
{
    /* SBR 7.1.6.1: no new certificate under a legacy OID from 2025-07-15 (SBR 1.2.1). */
    if (p->lint_only && now >= LEGACY_END)
        return mc_err_set(err, MC_ERR_PROFILE, "profile", "SBR 7.1.6.1",
                          "profile %s is legacy: lint only, no issuance since 2025-07-15", p->name);
    /* SBR 7.1.2.3(h): the SAN holds at least one mailbox. */
    if (o->n_mailboxes == 0 || o->n_mailboxes > MC_ORDER_MAILBOXES_MAX)
        return mc_err_set(err, MC_ERR_INVALID, "mailboxes", "SBR 7.1.2.3(h)",
                          "%zu mailboxes (1..%d allowed)", o->n_mailboxes, MC_ORDER_MAILBOXES_MAX);
    for (size_t i = 0; i < o->n_mailboxes; i++) {
        const mc_str *a = &o->mailboxes[i].address;
        char field[MC_ERR_FIELD_MAX], idx[24];
        mc_err_field(field, sizeof field, mc_err_field_index(idx, sizeof idx, "mailboxes", i),
                     "address");
        const char *at = a->p && a->len ? memrchr(a->p, '@', a->len) : NULL;
        if (!at || at == a->p || at == a->p + a->len - 1 || a->len > MC_MAILBOX_MAX)
            return mc_err_set(err, MC_ERR_INVALID, field, "SBR 1.6.1",
                              "not a bare mailbox address local@domain of at most %d bytes",
                              MC_MAILBOX_MAX);
        /* RFC 9598 3 / RFC 5280 4.2.1.6: the domain goes in as A-labels. Order decoding has
         * converted U-labels already (mc_mailbox_to_ascii); this is the last safety net. */
        for (const char *c = at + 1; c < a->p + a->len; c++)
            if ((unsigned char)*c >= 0x80)
                return mc_err_set(err, MC_ERR_INVALID, field, "SBR 7.1.4.2.1",
                                  "the domain must be given in A-label (xn--) form");
    }
    if (!o->spki || o->spki_len == 0)
        return mc_err_set(err, MC_ERR_INVALID, "csr", "SBR 6.1.5",
                          "the order's public key was not checked");
    mc_keytype k = o->keytype;
    if (k <= MC_KEY_NONE || k > MC_KEY_ED448 || !(p->keytypes & (1u << k)))
        return mc_err_set(err, MC_ERR_INVALID, "csr", "profile key_types",
                          "key type %s is not allowed by profile %s", mc_keytype_name(k), p->name);
    if (o->usage < MC_USAGE_SIGNING || o->usage > MC_USAGE_DUAL)
        return mc_err_set(err, MC_ERR_INVALID, "usage", "SBR 7.1.2.3(e)", "unknown usage %d",
                          (int)o->usage);
    /* SBR 7.1.2.3(e): e.g. EdDSA keys are signing only. */
    if (!mc_tbs_key_usage(k, o->usage, (int)p->generation))
        return mc_err_set(err, MC_ERR_INVALID, "usage", "SBR 7.1.2.3(e)",
                          "usage %s is not allowed for a %s key", usage_names[o->usage - 1].name,
                          mc_keytype_name(k));
    if (!(p->usages & (1u << o->usage)))
        return mc_err_set(err, MC_ERR_INVALID, "usage", "profile usages",
                          "usage %s is not allowed by profile %s", usage_names[o->usage - 1].name,
                          p->name);
    mc_err rc = check_order_lei(p, o, err);
    if (rc)
        return rc;
    return check_order_subject(p, o, err);
}

mc_cn_source mc_profile_cn_source(const mc_profile *p, const mc_order *o)
{
    return o->subject.cn != MC_CN_DEFAULT ? o->subject.cn : p->cn_default;
}

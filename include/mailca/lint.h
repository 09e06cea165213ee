/*
 * mc_lint: the pre-issuance linter. Every TBSCertificate is parsed back from the exact DER that
 * will be signed and checked against the S/MIME BR (and the RFC 5280 rules for end-entity
 * certificates). Each lint has an id, a severity (error blocks issuance, warning is recorded),
 * the source section and an effective date, so the rules in force at issuance are the ones
 * applied. MC_LINT_SET_VERSION names the set; it is recorded with every certificate.
 */
#ifndef MAILCA_LINT_H
#define MAILCA_LINT_H

#include "mailca/err.h"
#include "mailca/issuer.h"
#include "mailca/profile.h"
#include "mailca/x509.h"

#include <stddef.h>
#include <stdint.h>

/* Recorded with every certificate (provenance, `mailca revoke --lint-version`): changed whenever
 * a lint is added or its judgement changes, so the version names the rules a certificate passed.
 * 2026.11.24: e_issuer_name_empty, e_ext_cert_policy_duplicate, e_smime_name_mailbox_not_in_san,
 * w_smime_ntr_de_not_euid, every organizationIdentifier checked (not only the first), and each
 * SAN directoryName held to the subject's rules (SBR 7.1.4.2.1).
 * 2026.11.24.2: e_ext_san_directory_name_empty (a SAN directoryName of no RDN).
 * 2026.11.24.3: w_smime_uri_host_reserved (CRL, AIA or CPS URL host under .test, .example...).
 * 2026.11.24.4: e_qc_natural_serial_number_format (ETSI EN 319 412-1 5.1.3).
 * 2026.11.24.5: w_eku_key_usage_inconsistent (RFC 5280 4.2.1.12: clientAuth on a keyUsage of
 * neither digitalSignature nor keyAgreement).
 * 2026.11.24.6: e_smime_ec_point_invalid checks that the key is a point of its curve (SBR 6.1.5:
 * ECDSA on P-256/P-384/P-521, EdDSA decoded as RFC 8032 5.1.3/5.2.3), not only its length;
 * e_explicit_text_encoding no longer refuses a VisibleString or BMPString explicitText, which
 * RFC 6818 3 makes a SHOULD: w_explicit_text_not_utf8 warns; e_serial_number_too_short (SBR 7.1:
 * a serial below 2^32, which 64 bits of CSPRNG output are once in 2^32 draws),
 * w_serial_number_low_entropy now only for the short serials at or above 2^32. */
#define MC_LINT_SET_VERSION "mailca-lints-2026.11.24.6"

typedef enum mc_lint_severity {
    MC_LINT_ERROR = 1,
    MC_LINT_WARNING,
    MC_LINT_NOTICE,
} mc_lint_severity;

typedef struct mc_lint_def {
    const char *id; /* e.g. "e_sub_cert_eku_missing" */
    mc_lint_severity severity;
    const char *section; /* e.g. "SBR 7.1.2.3(f)" */
    int64_t effective;   /* Unix time from which the lint applies */
    const char *summary;
    /* The lint set that added the lint (MC_LINT_SET_VERSION form); NULL for the base set, the
     * lints of mailca-lints-2026.11.2 and before. An error lint newer than the set a run
     * enforces (mc_lint_ctx.enforced_set) reports as a warning. */
    const char *since;
} mc_lint_def;

#define MC_LINT_FINDINGS_MAX 32
/* Lints a build may define (mc_lint_result.warned has a bit for each). */
#define MC_LINT_MAX 256

typedef struct mc_lint_finding {
    const mc_lint_def *lint;
    mc_lint_severity severity; /* as applied: lint->severity, or a warning for an error lint the
                                  run does not enforce yet (mc_lint_ctx.enforced_set) */
    char detail[160];
} mc_lint_finding;

typedef struct mc_lint_result {
    size_t n;   /* findings recorded (at most MC_LINT_FINDINGS_MAX) */
    int errors; /* error-severity findings (counted even past the cap) */
    int warnings;
    mc_lint_finding f[MC_LINT_FINDINGS_MAX];
    /* Every lint that reported as a warning, by its index in mc_lint_defs, also past the cap of
     * f: the warnings recorded with a certificate (intents.lint_warnings, which incident
     * queries and `revoke --lint-warning` select by) must be complete. */
    uint64_t warned[MC_LINT_MAX / 64];
} mc_lint_result;

typedef struct mc_lint_ctx {
    const mc_profile *profile; /* NULL: type and generation from the policy OID */
    const mc_issuer *issuer;   /* NULL: issuer-dependent lints are skipped */
    int64_t now;               /* issuance (or evaluation) time: selects lints in force */
    /* NULL or "": every error lint blocks. A lint set version (config lint.enforced_set): error
     * lints added after it are reported as warnings, so that an upgrade that brings new lints
     * never stops issuance by surprise (DESIGN.md, lessons); the operator raises it after
     * reviewing what they find. */
    const char *enforced_set;
} mc_lint_ctx;

/* Lints a parsed certificate. Never allocates, except inside libidn2 for a mailbox domain with an
 * xn-- label (mc_idn_to_ascii checks that it is a valid A-label). */
void mc_lint_run(const mc_x509 *x, const mc_lint_ctx *ctx, mc_lint_result *out);

/* Parses then lints a TBSCertificate (the hot path); a structural parse failure is reported as
 * an error finding too. Returns MC_ERR_LINT when any error finding, with err naming the first. */
mc_err mc_lint_tbs(const uint8_t *tbs, size_t len, const mc_lint_ctx *ctx, mc_lint_result *out,
                   mc_errdetail *err);

/* Same for a whole Certificate (`mailca lint`): also checks signatureAlgorithm against the TBS. */
mc_err mc_lint_cert(const uint8_t *der, size_t len, const mc_lint_ctx *ctx, mc_lint_result *out,
                    mc_errdetail *err);

/* Orders two lint set versions ("mailca-lints-YYYY.M.D" with an optional ".N", N >= 2, spelt
 * as MC_LINT_SET_VERSION is: a real date, no leading zeros; so one version has one spelling):
 * <0, 0 or >0 as a is older than, the same as or newer than b. A malformed version sorts before
 * every well-formed one. */
int mc_lint_set_cmp(const char *a, const char *b);

/* The error lints that only warn under the lint set enforced (those added after it), as a
 * comma-separated list of ids in buf (truncated at a whole id); returns how many. For the
 * engine's notice at start. */
size_t mc_lint_not_enforced(const char *enforced, char *buf, size_t len);

/* Checks a lint set version a config names (field: the config key): well formed, else
 * MC_ERR_CONFIG. A set newer than this build's MC_LINT_SET_VERSION is accepted: it enforces
 * every lint of this build (mc_engine_open says so on stderr). */
mc_err mc_lint_set_check(const char *v, const char *field, mc_errdetail *err);

/* The lint set whose error lints block under enforced (mc_lint_ctx.enforced_set), as recorded
 * with each certificate: enforced itself when it is a well-formed set not newer than this
 * build's, else MC_LINT_SET_VERSION (NULL, "", a malformed or a newer set enforce every lint of
 * this build). Returns enforced or a static string: nothing to free. */
const char *mc_lint_set_effective(const char *enforced);

/* The table of all lints (for docs, `mailca lint --list`). */
const mc_lint_def *mc_lint_defs(size_t *n);

/* 1 when the host of url (len bytes, "scheme://[userinfo@]host[:port]/...", the host
 * percent-decoded, trailing dots dropped, compared case-insensitively) is under a
 * special-use top-level domain the public DNS never delegates (.test, .example, .invalid,
 * .localhost, .local, .onion, .alt, .home.arpa, .internal): w_smime_uri_host_reserved, and
 * `mailca init`'s note about a placeholder --base-url. */
int mc_lint_url_host_reserved(const char *url, size_t len);

/* Writes the id of every lint that reported as a warning, comma separated, into buf: those
 * among r's findings in their order, then any past the findings cap (mc_lint_result.warned) in
 * mc_lint_defs order. Returns buf. Truncated only when len is below mc_lint_warning_ids_len(r),
 * which callers use to size buf (never more than MC_LINT_WARNING_IDS_MAX). */
const char *mc_lint_warning_ids(const mc_lint_result *r, char *buf, size_t len);

/* The bytes mc_lint_warning_ids needs for r, the NUL included. */
size_t mc_lint_warning_ids_len(const mc_lint_result *r);

/* Bound on mc_lint_warning_ids_len: every id of the build, comma separated (a unit test checks
 * it against mc_lint_defs); results carry the list (MC_RESULT_WARNINGS_MAX). */
#define MC_LINT_WARNING_IDS_MAX 4096

#endif

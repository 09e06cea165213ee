/*
 * mc_caa: CAA checking for Mailbox Addresses (SBR 4.2.2.1, RFC 9495 section 4, RFC 8659, RFC 8657).
 *
 * Before a certificate naming a Mailbox Address is issued, the CA retrieves the Relevant RRset of
 * the mailbox's domain (RFC 8659 section 3: tree climbing from the domain towards the TLD, CNAMEs
 * followed by the resolver) and issues only if the RRset has no "issuemail" property or one of them
 * names one of the CA's Issuer Domain Names (RFC 9495 section 4). A property with the Issuer
 * Critical flag and a tag mailca does not process forbids issuance (RFC 8659 section 4.1).
 * Parameters on a matching issuemail property narrow it further (RFC 8657 applied to issuemail, as
 * smime-br-reference.md section 8 Q3 recommends):
 *   - accounturi=<uri>: the record authorises only the order whose account URI is exactly <uri>
 *     (RFC 8657 section 3); an order without an account URI is not authorised by such a record;
 *     a record with accounturi twice authorises no one.
 *   - validationmethods=<label>[,<label>...]: the record authorises only orders whose mailbox was
 *     validated with a listed method (RFC 8657 section 4). Labels (to be stated in CPS
 * section 4.2): 3.2.2.1 "ca-smime-domain", 3.2.2.2 "ca-smime-email", 3.2.2.3 "ca-smime-mailserver",
 *     3.2.2.4 "email-reply-00" (the RFC 8823 challenge type); exact, case-sensitive.
 *   Other parameters are ignored (their meaning is CA-defined, RFC 9495 section 4).
 *
 * Lookups use libunbound (a validating resolver library): forwarding to the configured resolvers,
 * or full recursion from the root when none are configured; DNSSEC validation when a trust anchor
 * is configured. mailca fails closed: SERVFAIL, a timeout or any other lookup failure is
 * MC_CAA_TEMPFAIL (retryable), a bogus DNSSEC answer is MC_CAA_DENY (SBR 4.2.2.1 allows treating a
 * failure as permission only under conditions mailca does not try to establish).
 *
 * Results are cached per domain (lower-cased) for the RRset's TTL clamped to [min_ttl, max_ttl];
 * max_ttl may not exceed 8 hours, so a cached answer is always within the SBR 4.2.2.1 window of
 * max(TTL, 8 h). Concurrent lookups of one domain are coalesced: one thread queries, the others
 * wait for its answer. Failures are cached for fail_ttl seconds (so that 100,000 mailboxes of a
 * broken domain do not cost 100,000 timeouts). The cache holds the RRset, not the decision: the
 * decision depends on the order's account and method and is computed per call.
 *
 * Multi-perspective issuance corroboration (SBR 4.2.2.2 -> TLS BR 3.2.2.9; ballot SMC010): the
 * configuration may name several perspectives, each a group of resolvers (in production: resolvers
 * in distinct regions, >= 500 km apart, reached over authenticated channels, which is deployment,
 * not code). perspectives[0] is the Primary Network Perspective, the others are remote ones. Each
 * perspective has its own libunbound context and its own cache (TLS BR 3.2.2.9: no results or
 * caches shared between perspectives); a check asks every perspective, the lookups that are not
 * cached in parallel (one thread per perspective that has to query), and decides:
 *   1. any perspective's DENY (CAA forbids, DNSSEC bogus, malformed RRset) -> DENY;
 *   2. else the primary did not permit (its lookup failed) -> TEMPFAIL: there is no result to
 *      corroborate;
 *   3. else fewer than `quorum` perspectives (the primary included) permit -> TEMPFAIL (fail
 *      closed, retryable);
 *   4. else PERMIT.
 * Reading of TLS BR 3.2.2.9 (smime-br-reference.md 5.3): remote perspectives corroborate the
 * primary's CAA result when they also find permission (byte-identical answers not required, SBR
 * 4.2.2.1); with 2..5 remote perspectives at most 1 may fail to corroborate, with 6 or more at
 * most 2. The default quorum follows that table: 1 + remote - allowed, i.e. for 1..8
 * perspectives 1, 2, 2, 3, 4, 5, 5, 6 (the primary and 0..7 remote ones). mailca is stricter than
 * the TLS BR in one respect: a remote perspective that finds a CAA prohibition is not merely
 * "non-corroborating" but refuses issuance (a prohibition seen anywhere is a stronger signal than a
 * permission, which an attacker near one resolver could forge). The TLS BR allows the CA to treat
 * some lookup failures at a remote perspective as corroboration; mailca does not (a failure never
 * counts as a permit). A smaller quorum may be configured (e.g. during the phase-in); it is
 * recorded in every result. The result keeps the primary's RRset (records, relevant, canonical,
 * matched), the lowest TTL and the oldest checked_at of all perspectives, and one mc_caa_view per
 * perspective.
 *
 * Thread-safety: one mc_caa_ctx is shared by every thread; mc_caa_check may run on many threads
 * at once. mc_caa_ctx_new/free must not race with checks.
 *
 * libunbound: loaded with dlopen("libunbound.so.8") unless mailca is built with
 * MAILCA_UNBOUND_LINKED defined and linked with -lunbound (see engine/caa.c).
 */
#ifndef MAILCA_CAA_H
#define MAILCA_CAA_H

#include "mailca/err.h"
#include "mailca/order.h"

#include <stddef.h>
#include <stdint.h>

#define MC_CAA_RESOLVERS_MAX 8
#define MC_CAA_ISSUERS_MAX 8
#define MC_CAA_RECORDS_MAX 16 /* records copied into a result (more are counted, not copied) */
#define MC_CAA_TAG_MAX 16     /* RFC 8659 4.1: tags are 1..15 characters */
#define MC_CAA_VALUE_MAX 256  /* value bytes kept in a result (longer values are cut) */
#define MC_CAA_DOMAIN_MAX 256 /* 253 octets, a trailing dot and the NUL */
#define MC_CAA_REASON_MAX 256
#define MC_CAA_RESOLVER_MAX 64
#define MC_CAA_MAX_TTL_LIMIT 28800 /* SBR 4.2.2.1: issue within max(TTL, 8 hours) of the check */
#define MC_CAA_PERSPECTIVES_MAX 8
#define MC_CAA_NAME_MAX 32 /* a perspective's name */

/* Codes mc_caa_check returns for a refusal (the order is rejected) and for a lookup failure (the
 * order fails, retryable: mc_err_retryable). */
#define MC_CAA_ERR_DENIED MC_ERR_CAA
#define MC_CAA_ERR_TEMPFAIL MC_ERR_DNS

/* One network perspective: a name for results and a group of resolvers. */
typedef struct mc_caa_perspective {
    const char *name; /* 1..31 bytes of [A-Za-z0-9._-]; NULL: "p<index>" */
    /* "ip" or "ip@port"; none: libunbound recurses from the root from this host. */
    const char *resolvers[MC_CAA_RESOLVERS_MAX];
    size_t n_resolvers;
} mc_caa_perspective;

typedef struct mc_caa_config {
    /* Resolver addresses "ip" or "ip@port" (IPv4 or IPv6). None: libunbound recurses itself.
     * Only without perspectives. */
    const char *resolvers[MC_CAA_RESOLVERS_MAX];
    size_t n_resolvers;
    /* Multi-perspective corroboration (see above): perspectives[0] is the primary. None: one
     * perspective made of `resolvers`, results without perspective views. */
    mc_caa_perspective perspectives[MC_CAA_PERSPECTIVES_MAX];
    size_t n_perspectives;
    unsigned quorum; /* permits needed, the primary's included, 1..n_perspectives; 0: the TLS
                        BR 3.2.2.9 table (above) */
    /* The Issuer Domain Names the CA discloses in its CP/CPS section 4.2 (SBR 4.2.2.1), matched
     * case-insensitively against issuemail values. At least one. */
    const char *issuers[MC_CAA_ISSUERS_MAX];
    size_t n_issuers;
    unsigned timeout_ms; /* per DNS query; 0: 5000 */
    /* Optional DNSSEC trust anchor: a file of DS or DNSKEY records in zone-file format
     * (ta_file), and/or one record as text (ta). NULL: no validation. */
    const char *ta_file;
    const char *ta;
    unsigned min_ttl;  /* cache floor for positive and empty answers, seconds (<= max_ttl) */
    unsigned max_ttl;  /* cache ceiling, seconds; 0: 28800; at most MC_CAA_MAX_TTL_LIMIT */
    unsigned fail_ttl; /* how long a lookup failure is remembered, seconds (0: not cached) */
} mc_caa_config;

typedef enum mc_caa_decision {
    MC_CAA_PERMIT = 1, /* issuance allowed for this domain */
    MC_CAA_DENY,       /* the CAA RRset forbids issuance (or DNSSEC says the answer is bogus) */
    MC_CAA_TEMPFAIL,   /* the lookup failed (SERVFAIL, timeout, network): retry later */
} mc_caa_decision;

typedef enum mc_caa_dnssec {
    MC_CAA_DNSSEC_INSECURE = 0, /* no trust anchor, or the zone is not signed */
    MC_CAA_DNSSEC_SECURE,       /* every answer used was validated */
    MC_CAA_DNSSEC_BOGUS,        /* validation failed */
} mc_caa_dnssec;

typedef struct mc_caa_record {
    uint8_t flags;
    char tag[MC_CAA_TAG_MAX]; /* as received (NUL-terminated; tags are never empty on the wire) */
    uint8_t value[MC_CAA_VALUE_MAX];
    size_t value_len; /* bytes in value (cut at MC_CAA_VALUE_MAX) */
    int cut;          /* 1 when the value on the wire was longer than MC_CAA_VALUE_MAX */
} mc_caa_record;

/* One perspective's answer within a multi-perspective result. */
typedef struct mc_caa_view {
    char name[MC_CAA_NAME_MAX];
    mc_caa_decision decision;
    char rule[MC_ERR_RULE_MAX];
    char reason[MC_CAA_REASON_MAX];
    char resolver[MC_CAA_RESOLVER_MAX];
    char relevant[MC_CAA_DOMAIN_MAX];
    mc_caa_dnssec dnssec;
    int rcode;
    unsigned ttl;
    int64_t checked_at;
    int cached;
    int matched; /* index of the authorising record in that perspective's RRset, or -1 */
    size_t n_records;
} mc_caa_view;

/* One check's outcome, a plain value (no pointers; copy freely). */
typedef struct mc_caa_result {
    mc_caa_decision decision;
    int retryable;                      /* 1 for MC_CAA_TEMPFAIL */
    char rule[MC_ERR_RULE_MAX];         /* e.g. "RFC 9495 4", "RFC 8657 3", "SBR 4.2.2.1" */
    char reason[MC_CAA_REASON_MAX];     /* human readable, names the record or failure */
    char domain[MC_CAA_DOMAIN_MAX];     /* the domain checked (lower case, no trailing dot) */
    char relevant[MC_CAA_DOMAIN_MAX];   /* where the Relevant RRset was found; "" if empty */
    char canonical[MC_CAA_DOMAIN_MAX];  /* CNAME target the RRset came from; "" if none */
    char resolver[MC_CAA_RESOLVER_MAX]; /* "127.0.0.1@53,..." or "recursive" */
    mc_caa_dnssec dnssec;
    int rcode;          /* DNS rcode of the last answer (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN) */
    unsigned ttl;       /* lowest TTL of the answers used */
    int64_t checked_at; /* Unix seconds of the DNS lookup (not of a cache hit) */
    int cached;         /* 1 when the answer came from mc_caa's cache */
    int matched;        /* index in records[] of the authorising issuemail record, or -1 */
    size_t n_records;   /* records in the Relevant RRset */
    mc_caa_record records[MC_CAA_RECORDS_MAX]; /* the first min(n_records, MAX) of them */
    /* Multi-perspective checks only (n_perspectives 0 otherwise): */
    unsigned quorum;       /* permits that were needed */
    unsigned permits;      /* perspectives that permitted */
    size_t n_perspectives; /* views[0] is the primary's */
    mc_caa_view views[MC_CAA_PERSPECTIVES_MAX];
} mc_caa_result;

typedef struct mc_caa_stats {
    uint64_t checks;     /* mc_caa_check calls */
    uint64_t cache_hits; /* answered from the cache (including coalesced waits) */
    uint64_t lookups;    /* cache misses that ran the tree-climbing lookup */
    uint64_t queries;    /* DNS queries sent to libunbound (one per name climbed) */
    uint64_t coalesced;  /* checks that waited for another thread's lookup */
} mc_caa_stats;

typedef struct mc_caa_ctx mc_caa_ctx;

/* Creates a context: copies cfg (its strings too), loads libunbound, applies resolvers and the
 * trust anchor (one libunbound context and cache per perspective). Errors: MC_ERR_CONFIG (bad
 * value, named in err->field "caa.<name>", "caa.perspectives[i]" or "caa.quorum"),
 * MC_ERR_UNSUPPORTED (libunbound missing), MC_ERR_NOMEM. Free with mc_caa_ctx_free. */
mc_err mc_caa_ctx_new(const mc_caa_config *cfg, mc_caa_ctx **out, mc_errdetail *err);
void mc_caa_ctx_free(mc_caa_ctx *ctx);

/* Checks whether the CA may issue for a mailbox at domain (A-labels, no trailing dot needed;
 * compared case-insensitively) for the order's account URI (may be NULL) and the mailbox's
 * validation method, at time now (Unix seconds; used for the cache and checked_at).
 * Fills *res in every case (also on error). Returns MC_OK when permitted, MC_CAA_ERR_DENIED
 * when refused, MC_CAA_ERR_TEMPFAIL when the lookup failed (retryable), MC_ERR_INVALID for a
 * syntactically bad domain, MC_ERR_NOMEM. err gets field "domain", the rule and the reason. */
mc_err mc_caa_check(mc_caa_ctx *ctx, const char *domain, const char *account_uri, mc_vmethod method,
                    int64_t now, mc_caa_result *res, mc_errdetail *err);

/* mc_caa_check for o->mailboxes[i]: the domain of its address and its method, with the error's
 * field "mailboxes[i].address". */
mc_err mc_caa_check_mailbox(mc_caa_ctx *ctx, const mc_order *o, size_t i, const char *account_uri,
                            int64_t now, mc_caa_result *res, mc_errdetail *err);

/* SBR 4.2.2.1: may a certificate still be issued at time now on the strength of res (a permit
 * no older than max(TTL, 8 hours))? 1 yes, 0 no. */
int mc_caa_result_fresh(const mc_caa_result *res, int64_t now);

/* Renders res as one line of compact JSON (provenance):
 * {"domain":..,"decision":"permit|deny|tempfail","rule":..,"reason":..,"relevant":..,
 *  "canonical":..,"dnssec":"secure|insecure|bogus","rcode":N,"ttl":N,"checked_at":N,
 *  "cached":B,"resolver":..,"matched":N,"records":[{"flags":N,"tag":..,"value":..},..],
 *  "n_records":N}
 * and, for a multi-perspective check, before the closing brace:
 *  ,"quorum":N,"permits":N,"perspectives":[{"name":..,"decision":..,"rule":..,"reason":..,
 *  "resolver":..,"relevant":..,"dnssec":..,"rcode":N,"ttl":N,"checked_at":N,"cached":B,
 *  "matched":N,"n_records":N},..]
 * into buf (NUL-terminated). *len (may be NULL) gets the length. Returns MC_ERR_NOMEM (buf
 * holds "" then) when cap is too small; MC_CAA_JSON_MAX always suffices. Bytes outside printable
 * ASCII are written one by one as \u00XX. */
#define MC_CAA_JSON_MAX                                                                            \
    (4096 + MC_CAA_RECORDS_MAX * (6 * MC_CAA_VALUE_MAX + 6 * MC_CAA_TAG_MAX + 64) +                \
     MC_CAA_PERSPECTIVES_MAX * (6 * (MC_CAA_NAME_MAX + MC_ERR_RULE_MAX + MC_CAA_REASON_MAX +       \
                                     MC_CAA_RESOLVER_MAX + MC_CAA_DOMAIN_MAX) +                    \
                                320))
mc_err mc_caa_result_json(const mc_caa_result *res, char *buf, size_t cap, size_t *len);

/* Counters since mc_caa_ctx_new (thread-safe snapshot). With perspectives: checks counts
 * mc_caa_check calls, the other counters are summed over the perspectives. */
void mc_caa_stats_get(mc_caa_ctx *ctx, mc_caa_stats *out);

/* The counters of perspective i (0 is the primary; without perspectives, 0 is the context
 * itself). MC_ERR_INVALID when there is no perspective i. */
mc_err mc_caa_stats_perspective(mc_caa_ctx *ctx, size_t i, mc_caa_stats *out);

/* Fills cfg->perspectives from the configuration value
 *   "[name=]ip[@port][,ip[@port]...][;[name=]ip[@port]...]"
 * (spaces around items ignored), e.g. "primary=10.0.0.53;eu=192.0.2.1@53,192.0.2.2@53".
 * spec is split in place and cfg points into it: keep spec alive while cfg is used. Errors:
 * MC_ERR_CONFIG with field "caa.perspectives" (too many perspectives or resolvers, an empty
 * one, a bad name). */
mc_err mc_caa_config_perspectives(mc_caa_config *cfg, char *spec, mc_errdetail *err);

/* Drops every cached answer (tests, or after a configuration change). */
void mc_caa_cache_clear(mc_caa_ctx *ctx);

/* ---- parsing, exposed for unit tests and tools ---- */

/* An issuemail (RFC 9495 section 3; RFC 8659 4.2 syntax) value parsed. Pointers point into the
 * value given to mc_caa_issuemail_parse. */
#define MC_CAA_PARAMS_MAX 16
typedef struct mc_caa_param {
    const char *tag, *value;
    size_t tag_len, value_len;
} mc_caa_param;

typedef struct mc_caa_issuemail {
    int valid;          /* 0: the value does not match the ABNF (treated as empty issuer) */
    const char *issuer; /* issuer-domain-name; issuer_len 0 when empty (";" forbids all) */
    size_t issuer_len;
    size_t n_params;
    mc_caa_param params[MC_CAA_PARAMS_MAX];
} mc_caa_issuemail;

/* Parses an issuemail value. Never fails: an ABNF mismatch (or more than MC_CAA_PARAMS_MAX
 * parameters) gives valid 0 and an empty issuer, per RFC 9495 section 4. */
void mc_caa_issuemail_parse(const uint8_t *value, size_t len, mc_caa_issuemail *out);

/* The validationmethods label for a method (see above). */
const char *mc_caa_method_label(mc_vmethod m);

/* Applies RFC 9495 section 4 and RFC 8659 section 4.1 (and RFC 8657 parameters) to an RRset
 * (the records as parsed from the wire; a cut value is treated as malformed, so it never
 * authorises),
 * without DNS. Fills decision, retryable, rule, reason and matched of *res; other fields are left
 * as they are. issuers: the CA's Issuer Domain Names. */
void mc_caa_evaluate(const mc_caa_record *recs, size_t n, const char *const *issuers,
                     size_t n_issuers, const char *account_uri, mc_vmethod method,
                     mc_caa_result *res);

#endif

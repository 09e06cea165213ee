/*
 * mc_ct: the Certificate Transparency submission sink (RFC 6962; research notes in
 * /work/shared/reference/ct-reference.md). Certificates (or, for a later precertificate flow,
 * precertificates) are put in a durable outbox in the store (mc_ct_enqueue, one row per configured
 * log), and a drainer (mc_ct_run_once / mc_ct_drain, one per thread with its own mc_store) submits
 * the due rows with add-chain / add-pre-chain over HTTP/1.1 keep-alive connections, many in
 * flight (libcurl multi), verifies every SCT against the log's key (RFC 6962 3.2) and stores it,
 * or reschedules the row with exponential back-off honouring Retry-After, or records a 4xx
 * refusal with the log's message. A log outage therefore delays submissions but never blocks
 * issuance (enqueueing is a store write) or loses one (rows stay pending until answered).
 *
 * CT is not required for S/MIME (no CT requirement in the S/MIME BRs; logs may refuse leaves
 * without id-kp-serverAuth; S/MIME leaves carry personal addresses): it is off unless a profile
 * is named in mc_ct_config.profiles (mc_ct_profile_enabled).
 *
 * Times are milliseconds since the epoch and passed in by the caller (mc_ct_drain uses the real
 * clock), so tests drive the schedule without sleeping.
 */
#ifndef MAILCA_CT_H
#define MAILCA_CT_H

#include "mailca/err.h"
#include "mailca/store.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MC_CT_LOGS_MAX 16
#define MC_CT_URL_MAX 256
#define MC_CT_SPKI_MAX 1100 /* DER SubjectPublicKeyInfo (RSA-8192 fits) */
#define MC_CT_PROFILES_MAX 512
#define MC_CT_EXT_MAX 256  /* SCT extensions (static-ct-api leaf_index: 8 bytes) */
#define MC_CT_SIG_MAX 1100 /* DigitallySigned: 4 header bytes and the signature */

/* One log: where it is and its key. */
typedef struct mc_ct_log {
    char url[MC_CT_URL_MAX]; /* submission prefix: "<url>/ct/v1/add-chain" is posted to */
    uint8_t spki[MC_CT_SPKI_MAX];
    size_t spki_len;
    uint8_t id[MC_CT_LOG_ID_LEN]; /* LogID: SHA-256 of spki (RFC 6962 3.2) */
} mc_ct_log;

/* The sink's configuration: a value type (no ownership). mc_ct_config_defaults fills it. */
typedef struct mc_ct_config {
    mc_ct_log logs[MC_CT_LOGS_MAX];
    size_t nlogs;
    /* Profiles whose certificates are submitted: comma-separated names, "*" for all. Default ""
     * (none): S/MIME certificates are not logged unless configured. */
    char profiles[MC_CT_PROFILES_MAX];
    int max_in_flight;          /* requests in flight in total (default 64) */
    int per_log_in_flight;      /* and per log: its connection cap (default 16) */
    int timeout_ms;             /* whole request (default 30000) */
    int connect_timeout_ms;     /* default 5000 */
    int64_t backoff_base_ms;    /* first retry delay (default 1000), doubled per attempt */
    int64_t backoff_max_ms;     /* cap (default 3600000) */
    int64_t retry_after_max_ms; /* a log's Retry-After is honoured up to this (default 6 h) */
    int64_t lease_ms;           /* how long a claimed row is reserved (default 600000) */
    size_t claim_max;           /* rows per mc_ct_run_once (default 1024), and at most
                                   lease_ms / timeout_ms * per_log_in_flight: a run ends within
                                   its lease even when every request times out */
    int64_t max_future_ms;      /* an SCT timestamp later than now + this is invalid (60000) */
    int poll_ms;                /* mc_ct_drain: wait when nothing is due (default 1000) */
    int stop_grace_ms;          /* mc_ct_drain told to stop: requests in flight get this long to
                                   be answered (default 1000), then are abandoned and their rows
                                   left due in the outbox, so a hung log does not hold up the end
                                   of an engine run for timeout_ms */
} mc_ct_config;

void mc_ct_config_defaults(mc_ct_config *c);

/* Adds a log: url (http or https, no trailing path needed; a trailing '/' is dropped) and its
 * public key as base64 DER SubjectPublicKeyInfo (an EC P-256 or RSA >= 2048 key, the kinds RFC
 * 6962 allows). The LogID is derived from the key. MC_ERR_CONFIG naming the value otherwise. */
mc_err mc_ct_config_add_log(mc_ct_config *c, const char *url, const char *key_b64,
                            mc_errdetail *err);

/* Adds the logs of a configuration value "<url> <base64 key>[, <url> <base64 key>]..." (the
 * form a one-line config key can hold), each as mc_ct_config_add_log. */
mc_err mc_ct_config_add_logs(mc_ct_config *c, const char *spec, mc_errdetail *err);

/* 1 when certificates of this profile are to be submitted (c->profiles), else 0. */
int mc_ct_profile_enabled(const mc_ct_config *c, const char *profile);

/* --- outbox ------------------------------------------------------------------------------- */

/* Encodes a chain for the outbox: { u24 length | DER }+ (the TLS certificate_list form).
 * *out is malloc'd (caller frees). */
mc_err mc_ct_chain_encode(const uint8_t *const *der, const size_t *len, size_t n, uint8_t **out,
                          size_t *out_len, mc_errdetail *err);

/* Walks an encoded chain: *i (start at 0) is advanced; returns 1 with the next certificate, 0 at
 * the end, -1 when malformed. */
int mc_ct_chain_next(const uint8_t *chain, size_t chain_len, size_t *i, const uint8_t **der,
                     size_t *der_len);

/* One certificate to submit: its serial and chain (leaf or precertificate first, then its
 * issuer and any intermediates; the root may be left out). A precertificate needs its issuer. */
typedef struct mc_ct_submission {
    const uint8_t *serial;
    size_t serial_len;
    int precert;
    const uint8_t *const *chain;
    const size_t *chain_len;
    size_t chain_n;
} mc_ct_submission;

/* Puts n submissions in the outbox of s, one row per configured log, due at now_ms, in one
 * transaction (idempotent: rows already there stay as they are). No logs configured: MC_OK,
 * nothing written. */
mc_err mc_ct_enqueue(mc_store *s, const mc_ct_config *cfg, const mc_ct_submission *v, size_t n,
                     int64_t now_ms, mc_errdetail *err);

/* What the collector calls after signing: commits n certificates (mc_store_certs_commit
 * semantics) and, in the SAME transaction, their CT outbox rows: each certificate whose profile
 * is enabled in cfg (profiles[i] through mc_ct_profile_enabled; profiles NULL: every
 * certificate) gets one row per configured log with the chain (certificate, issuer), due at
 * now_ms. Without logs or enabled profiles it is a plain certificate commit. */
mc_err mc_ct_certs_commit(mc_store *s, const mc_ct_config *cfg, const mc_stored_cert *v,
                          const char *const *profiles, size_t n, const uint8_t *issuer,
                          size_t issuer_len, int64_t now_ms, mc_errdetail *err);

/* --- the drainer --------------------------------------------------------------------------- */

typedef struct mc_ct mc_ct;

/* What one run did. */
typedef struct mc_ct_stats {
    size_t claimed;     /* rows claimed */
    size_t done;        /* SCT verified and stored */
    size_t retried;     /* rescheduled (429, 503, 5xx, 408, timeout, connection failure, ...) */
    size_t rejected;    /* refused for good (4xx) */
    size_t invalid;     /* answered 200 with an SCT that does not verify or parse (retried) */
    size_t connections; /* new TCP connections libcurl opened (the rest reused one) */
    size_t max_active;  /* most requests in flight at once */
    size_t left;        /* not answered because the drainer was stopped: left due (pending) in
                           the outbox, an attempt counted */
} mc_ct_stats;

/* Parses the configured keys and sets up libcurl (the first mc_ct_new runs curl_global_init,
 * which is not thread-safe with other libcurl users starting at the same time). The config is
 * copied. Caller frees *out with mc_ct_free. MC_ERR_UNSUPPORTED in a build without libcurl
 * (MAILCA_HAVE_LIBCURL undefined): the outbox, SCT and Merkle functions still work there. */
mc_err mc_ct_new(const mc_ct_config *cfg, mc_ct **out, mc_errdetail *err);
void mc_ct_free(mc_ct *ct);

/* Claims the rows due at now_ms (up to claim_max), submits them concurrently, waits for every
 * answer (each bounded by timeout_ms) and records the outcomes in one transaction. A failed
 * submission is an outcome, not an error: errors are store or setup failures. st may be NULL. */
mc_err mc_ct_run_once(mc_ct *ct, mc_store *s, int64_t now_ms, mc_ct_stats *st, mc_errdetail *err);

/* Runs mc_ct_run_once on the real clock. stop NULL: until a run finds nothing due. Otherwise
 * until *stop is set, waiting poll_ms between runs that found nothing (a drain thread). Once
 * *stop is set, a run in progress starts no new request and gives those in flight
 * stop_grace_ms to be answered; the rest stay pending, due at once, in the outbox (`mailca ct
 * drain` or the next run submits them), so mc_ct_drain returns within about stop_grace_ms +
 * 100 ms plus one store transaction, whatever the logs do. Totals are added to st (may be
 * NULL). */
mc_err mc_ct_drain(mc_ct *ct, mc_store *s, const atomic_int *stop, mc_ct_stats *st,
                   mc_errdetail *err);

/* The wall clock in milliseconds since the epoch. */
int64_t mc_ct_now_ms(void);

/* --- policy (pure functions, exposed for tests) -------------------------------------------- */

typedef enum mc_ct_verdict {
    MC_CT_V_DONE,      /* 200 */
    MC_CT_V_RETRY_NOW, /* 408 */
    MC_CT_V_RETRY,     /* 429, 503, other 5xx, no answer: back off */
    MC_CT_V_REJECT,    /* other 4xx (400 bad chain or EKU, 403, 410 retired log, 413) */
} mc_ct_verdict;

/* What an HTTP status means for the submission (0: no HTTP answer). */
mc_ct_verdict mc_ct_classify(int http_status);

/* The delay before attempt number attempts + 1 (attempts: failed attempts so far, >= 0):
 * retry_after_ms >= 0 (the log's Retry-After) is honoured, capped at retry_after_max_ms;
 * otherwise base * 2^attempts capped at backoff_max_ms, with jitter: a value in [d/2, d] chosen
 * by rnd. */
int64_t mc_ct_backoff_ms(const mc_ct_config *c, int attempts, int64_t retry_after_ms, uint32_t rnd);

/* A Retry-After header value (RFC 9110 10.2.3: delay-seconds, or an HTTP-date in the
 * IMF-fixdate form senders use) as milliseconds from now_ms (a date in the past is 0); -1 when
 * it is neither. */
int64_t mc_ct_retry_after_ms(const char *value, int64_t now_ms);

/* --- SCTs (RFC 6962 3.2, 3.3, 4.1) --------------------------------------------------------- */

typedef struct mc_ct_sct {
    uint8_t version; /* 0: v1 */
    uint8_t log_id[MC_CT_LOG_ID_LEN];
    uint64_t timestamp; /* ms */
    uint8_t ext[MC_CT_EXT_MAX];
    size_t ext_len;
    uint8_t sig[MC_CT_SIG_MAX]; /* DigitallySigned: hash u8 | sig u8 | u16 len | signature */
    size_t sig_len;
} mc_ct_sct;

/* Parses an add-chain answer ({"sct_version", "id", "timestamp", "extensions", "signature"}).
 * MC_ERR_INVALID naming the field when malformed. */
mc_err mc_ct_sct_from_json(const char *body, size_t len, mc_ct_sct *out, mc_errdetail *err);

/* Serialized SCT (RFC 6962 3.3: version | id | timestamp | u16 extensions | DigitallySigned),
 * the form embedded in certificates and stored. MC_ERR_NOMEM when cap is too small. */
mc_err mc_ct_sct_serialize(const mc_ct_sct *sct, uint8_t *out, size_t cap, size_t *len,
                           mc_errdetail *err);
mc_err mc_ct_sct_parse(const uint8_t *in, size_t len, mc_ct_sct *out, mc_errdetail *err);

/* The signed entry shared by the SCT signature input and the Merkle leaf: u64 timestamp | u16
 * entry_type | entry | u16 extensions. For an x509_entry, leaf is the certificate DER; for a
 * precert_entry, leaf is the precertificate DER (the poison extension is removed from its TBS)
 * and issuer the issuing CA's certificate DER (issuer_key_hash). *out malloc'd, caller frees. */
mc_err mc_ct_signed_entry(const mc_ct_sct *sct, int precert, const uint8_t *leaf, size_t leaf_len,
                          const uint8_t *issuer, size_t issuer_len, uint8_t **out, size_t *out_len,
                          mc_errdetail *err);

/* Verifies an SCT for a certificate (RFC 6962 3.2): version v1, LogID = SHA-256 of spki, the
 * timestamp not after now_ms + max_future_ms, and the signature over version |
 * certificate_timestamp | signed entry with the log key (ECDSA or RSA, SHA-256). MC_ERR_CRYPTO
 * naming what failed. */
mc_err mc_ct_sct_verify(const mc_ct_sct *sct, const uint8_t *spki, size_t spki_len, int precert,
                        const uint8_t *leaf, size_t leaf_len, const uint8_t *issuer,
                        size_t issuer_len, int64_t now_ms, int64_t max_future_ms,
                        mc_errdetail *err);

/* --- Merkle tree and tree heads (RFC 6962 2.1, 3.4, 3.5) ----------------------------------- */

/* Leaf hash of a log entry for this SCT: SHA-256(0x00 | MerkleTreeLeaf), MerkleTreeLeaf = v1 |
 * timestamped_entry | the signed entry (mc_ct_signed_entry). */
mc_err mc_ct_leaf_hash(const mc_ct_sct *sct, int precert, const uint8_t *leaf, size_t leaf_len,
                       const uint8_t *issuer, size_t issuer_len, uint8_t out[32],
                       mc_errdetail *err);

/* SHA-256(0x00 | data) and SHA-256(0x01 | l | r). */
void mc_ct_merkle_leaf(const uint8_t *data, size_t len, uint8_t out[32]);
void mc_ct_merkle_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32]);

/* Checks an audit path (RFC 6962 2.1.1, verified as RFC 9162 2.1.3.2 describes): leaf_hash at
 * index in a tree of tree_size leaves has root. 1 when it holds, 0 when not. */
int mc_ct_merkle_verify_inclusion(const uint8_t leaf_hash[32], uint64_t index, uint64_t tree_size,
                                  const uint8_t (*path)[32], size_t path_n, const uint8_t root[32]);

/* Verifies a signed tree head (RFC 6962 3.5: v1 | tree_hash | timestamp | tree_size | root)
 * against the log key; sig is the DigitallySigned tree_head_signature. */
mc_err mc_ct_sth_verify(const uint8_t *spki, size_t spki_len, uint64_t timestamp,
                        uint64_t tree_size, const uint8_t root[32], const uint8_t *sig,
                        size_t sig_len, mc_errdetail *err);

/* Base64 (RFC 4648, padded) decoding into out (cap bytes): -1 when malformed or too long, else
 * the length. */
long mc_ct_b64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap);

#endif

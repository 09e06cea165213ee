/*
 * mc_ctlog: an RFC 6962 log server on 127.0.0.1, for the CT tests (tests/test_ct.c,
 * tests/test_it_ct*.c link bench/ctlog.c) and `mailca bench --ct` (bench/ctbench.c), which is
 * why it lives in bench/ and not in tests/support/. A real HTTP/1.1 server (keep-alive, one
 * thread, poll over non-blocking sockets) on 127.0.0.1 with a port the kernel picks. It
 * keeps a Merkle tree of everything it accepted (RFC 6962 2.1), signs SCTs (3.2) and tree heads
 * (3.5) with its own ECDSA P-256 (or RSA-2048) key, and answers:
 *   POST /ct/v1/add-chain, /ct/v1/add-pre-chain   {"chain":[b64 DER, ...]} -> SCT JSON
 *   GET  /ct/v1/get-sth                            -> tree head JSON
 *   GET  /ct/v1/get-proof-by-hash?hash=&tree_size= -> {"leaf_index", "audit_path"}
 * Every submission gets a new SCT (and a new leaf), as the reference notes say of the test log:
 * no dedup. Faults for the submission endpoints are injected with mc_ctlog_fault; the read
 * endpoints always answer.
 *
 *     mc_ctlog *log = NULL;
 *     if (mc_ctlog_start(&log, &err) != MC_OK) ...
 *     ... mc_ct_config_add_log(&cfg, mc_ctlog_url(log), mc_ctlog_key_b64(log), &err) ...
 *     mc_ctlog_fault(log, MC_CTLOG_503, 10, 30);   // the next 10 submissions: 503, Retry-After 30
 *     mc_ctlog_stop(log);
 *
 * mc_ctlog_start reports failures as mc_err; the client-side checks at the end (for tests and
 * the bench's own cross-checks) print a line on stderr and return -1.
 */
#ifndef MAILCA_BENCH_CTLOG_H
#define MAILCA_BENCH_CTLOG_H

#include "mailca/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mc_ctlog mc_ctlog;

typedef enum mc_ctlog_fault_kind {
    MC_CTLOG_OK = 0,
    MC_CTLOG_429,    /* 429 Too Many Requests, Retry-After when retry_after_s >= 0 */
    MC_CTLOG_503,    /* 503 Service Unavailable, Retry-After when retry_after_s >= 0 */
    MC_CTLOG_500,    /* 500 Internal Server Error */
    MC_CTLOG_400,    /* 400 with a text body (mc_ctlog_fault_message) */
    MC_CTLOG_HANG,   /* read the request, never answer (the client times out) */
    MC_CTLOG_BADSIG, /* 200 with an SCT whose signature does not verify */
} mc_ctlog_fault_kind;

/* Generates the log key, listens on 127.0.0.1 (a port the kernel picks) and starts the server
 * thread. *out is freed with mc_ctlog_stop. MC_ERR_CRYPTO (key) or MC_ERR_IO (socket, thread)
 * otherwise, *out NULL. */
mc_err mc_ctlog_start(mc_ctlog **out, mc_errdetail *err);

/* The same with an RSA-2048 log key (RFC 6962 2.1.4 allows RSA too): SCTs and tree heads are
 * signed RSASSA-PKCS1-v1_5 with SHA-256. */
mc_err mc_ctlog_start_rsa(mc_ctlog **out, mc_errdetail *err);

/* Stops the thread, closes every connection, frees log (NULL: no-op). */
void mc_ctlog_stop(mc_ctlog *log);

/* "http://127.0.0.1:<port>" and the log key as base64 DER SubjectPublicKeyInfo. */
const char *mc_ctlog_url(const mc_ctlog *log);
const char *mc_ctlog_key_b64(const mc_ctlog *log);

/* The next count submissions get this fault (count < 0: every one until changed; MC_CTLOG_OK
 * clears). retry_after_s < 0: no Retry-After header. */
void mc_ctlog_fault(mc_ctlog *log, mc_ctlog_fault_kind kind, int count, int retry_after_s);

/* Body of MC_CTLOG_400 answers. */
void mc_ctlog_fault_message(mc_ctlog *log, const char *message);

/* Each submission's answer is held back delay_ms (0: none); other requests go on meanwhile. */
void mc_ctlog_delay(mc_ctlog *log, int delay_ms);

/* Refuse leaves without id-kp-serverAuth with 400, as Sunlight and EKU-filtering CTFE logs do. */
void mc_ctlog_require_server_auth(mc_ctlog *log, int on);

typedef struct mc_ctlog_stats {
    uint64_t requests;    /* every HTTP request */
    uint64_t submissions; /* add-chain / add-pre-chain requests */
    uint64_t accepted;    /* answered 200 with an SCT (tree leaves) */
    uint64_t faults;      /* answered with an injected fault */
    uint64_t connections; /* TCP connections accepted */
    int max_open;         /* most connections open at once */
    int max_pending;      /* most submissions held at once (delay, hang) */
} mc_ctlog_stats;

void mc_ctlog_get_stats(mc_ctlog *log, mc_ctlog_stats *out);

/* Merkle Tree Hash of D[0:n] (RFC 6962 2.1) over leaf hashes: for tests of the algorithm. */
void mc_ctlog_mth(const uint8_t (*leaves)[32], size_t n, uint8_t out[32]);

/* The audit path PATH(m, D[0:n]) (RFC 6962 2.1.1) into path (at most 64 entries); returns its
 * length. */
size_t mc_ctlog_path(const uint8_t (*leaves)[32], size_t n, size_t m, uint8_t (*path)[32]);

/* --- client side checks, independent of engine/ct.c ------------------------------------- */

/* OpenSSL's own CT code judges a serialized SCT (o2i_SCT, SCT_validate with a CTLOG_STORE
 * holding key_b64) for leaf (a certificate, or a precertificate when precert) issued by issuer.
 * 1: valid, 0: not valid, -1: could not be checked. */
int mc_ctlog_openssl_validate(const char *key_b64, const uint8_t *sct, size_t sct_len, int precert,
                              const uint8_t *leaf, size_t leaf_len, const uint8_t *issuer,
                              size_t issuer_len);

/* GET <url>/ct/v1/get-sth (a plain socket client, HTTP/1.0) and parse it. 0 or -1. */
int mc_ctlog_client_sth(const char *url, uint64_t *tree_size, uint64_t *timestamp, uint8_t root[32],
                        uint8_t *sig, size_t sig_cap, size_t *sig_len);

/* GET <url>/ct/v1/get-proof-by-hash for hash in a tree of tree_size. 0 or -1 (also for 404). */
int mc_ctlog_client_proof(const char *url, const uint8_t hash[32], uint64_t tree_size,
                          uint64_t *index, uint8_t (*path)[32], size_t path_cap, size_t *path_n);

#endif

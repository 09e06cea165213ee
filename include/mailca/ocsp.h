/*
 * mc_ocsp: an OCSP responder for the issuing CA (RFC 6960, with the RFC 5019 profile), answering
 * from the store and signing with the CA key itself (SBR 4.9.9 option 1: no delegated responder
 * certificate).
 *
 * mc_ocsp_respond turns one request (DER) into one OCSPResponse (DER):
 * - each CertID is checked to name this CA (issuerNameHash and issuerKeyHash under the hash the
 *   request used, SHA-1 or SHA-256); one that does not, or uses another hash, makes the whole
 *   response "unauthorized" (RFC 5019 2.2.3, RFC 6960 2.3: this responder is authoritative for
 *   this CA only, and the status is the response's, not a CertID's);
 * - each serial is looked up in the store (mc_store_serial_status): issued -> good; revoked ->
 *   revoked with revocationTime and, unless unspecified, revocationReason in RevokedInfo (SBR 7.3
 *   and 7.2.2; singleExtensions never carry reasonCode, SBR 7.3.2); a serial this CA never
 *   assigned, or reserved by an intent without a recorded certificate, -> unknown, never good
 *   (SBR 4.9.10: a CA that is not Technically Constrained SHALL NOT answer good for an unused
 *   serial; RFC 6960 2.2 "unknown": the responder does not know of the certificate);
 * - thisUpdate is the signing time and nextUpdate makes the validity interval, counted inclusively
 *   as SBR 4.9.10 does, exactly validity_hours;
 * - a nonce request extension is echoed in the response (RFC 6960 4.4.1); one of more than 128
 *   octets is malformedRequest (RFC 8954 2.1);
 * - undecodable requests are malformedRequest, a store failure tryLater, a signing failure
 *   internalError (RFC 6960 2.3).
 * Responses to nonce-less single-CertID requests are kept per CertID for MC_OCSP_CACHE_SECONDS
 * in a bounded direct-mapped cache, so a revocation shows within that time, and every response
 * is re-signed long before SBR 4.9.10 items 3 and 4 ask.
 *
 * A responder is used by one thread at a time (its cache and the signer's session are not
 * locked): `mailca ocsp serve` answers on libmicrohttpd's single polling thread.
 */
#ifndef MAILCA_OCSP_H
#define MAILCA_OCSP_H

#include "mailca/err.h"
#include "mailca/issuer.h"
#include "mailca/store.h"

#include <stddef.h>
#include <stdint.h>

/* SBR 4.9.10 items 1 and 2: a validity interval of eight hours to ten days, inclusive. */
#define MC_OCSP_VALIDITY_MIN_HOURS 8
#define MC_OCSP_VALIDITY_MAX_HOURS 240
#define MC_OCSP_VALIDITY_DEFAULT_HOURS 96
/* The largest request accepted (POST body or decoded GET): a request for a few dozen CertIDs. */
#define MC_OCSP_REQUEST_MAX 4096
/* CertIDs answered in one request; more is malformedRequest (each costs a store read and the
 * response grows with each: the request size bounds them anyway, this names the limit). */
#define MC_OCSP_CERTIDS_MAX 32
/* How long a response is served from the cache: the longest a revocation takes to show. */
#define MC_OCSP_CACHE_SECONDS 60
#define MC_OCSP_CACHE_SLOTS 4096
/* RFC 8954 2.1: nonces longer than this are refused with malformedRequest. */
#define MC_OCSP_NONCE_MAX 128

/* OCSPResponseStatus (RFC 6960 4.2.1). */
typedef enum mc_ocsp_status {
    MC_OCSP_SUCCESSFUL = 0,
    MC_OCSP_MALFORMED_REQUEST = 1,
    MC_OCSP_INTERNAL_ERROR = 2,
    MC_OCSP_TRY_LATER = 3,
    MC_OCSP_UNAUTHORIZED = 6,
} mc_ocsp_status;

/* Signs tbs (the DER ResponseData) with the issuing key as the issuer's sigalg says: sig (cap
 * *siglen bytes, 1024 is enough) gets the signatureValue contents in X.509 form. */
typedef mc_err (*mc_ocsp_sign_fn)(void *arg, const uint8_t *tbs, size_t len, uint8_t *sig,
                                  size_t *siglen, mc_errdetail *err);

typedef struct mc_ocsp_responder mc_ocsp_responder;

/* MC_OK when hours is in MC_OCSP_VALIDITY_MIN_HOURS..MC_OCSP_VALIDITY_MAX_HOURS; else
 * MC_ERR_INVALID naming field "validity-hours" and rule SBR 4.9.10. */
mc_err mc_ocsp_validity_check(long hours, mc_errdetail *err);

/* A responder for iss (copied: iss may be freed after) answering from store (borrowed: it must
 * outlive the responder and is used on the responder's thread only), signing with sign(arg).
 * The caller frees *out with mc_ocsp_responder_free. */
mc_err mc_ocsp_responder_new(const mc_issuer *iss, mc_store *store, long validity_hours,
                             mc_ocsp_sign_fn sign, void *arg, mc_ocsp_responder **out,
                             mc_errdetail *err);
void mc_ocsp_responder_free(mc_ocsp_responder *r);

/* What mc_ocsp_respond answered, for the HTTP layer's headers and the log. */
typedef struct mc_ocsp_answer {
    mc_ocsp_status status;
    int64_t this_update, next_update; /* successful only */
    int64_t produced_at;              /* successful only: when it was signed (cache: earlier) */
    int cached;                       /* served from the cache */
    size_t certids;
} mc_ocsp_answer;

/* Answers the request req (DER, req_len bytes) at time now (seconds since the epoch): *out gets
 * a malloc'd OCSPResponse DER the caller frees, for every outcome including the error statuses
 * (err then says why, for the log). Returns MC_ERR_NOMEM only when no response could be built
 * at all (then the caller sends mc_ocsp_error_response). */
mc_err mc_ocsp_respond(mc_ocsp_responder *r, const uint8_t *req, size_t req_len, int64_t now,
                       uint8_t **out, size_t *out_len, mc_ocsp_answer *ans, mc_errdetail *err);

/* The 5-byte OCSPResponse of an unsuccessful status (static storage). */
const uint8_t *mc_ocsp_error_response(mc_ocsp_status st, size_t *len);

/* `mailca ocsp serve [--config FILE] --listen ADDR:PORT [--validity-hours H]`. */
int mc_ocsp_main(int argc, char **argv);

#endif

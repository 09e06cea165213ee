/*
 * mc_crl: full CRLs of the issuing CA (RFC 5280 section 5, SBR 4.9.7 and 7.2), signed in the HSM.
 *
 * `mailca crl --out FILE` lists every revoked certificate of the store that has not expired
 * and takes the next CRL number, in one locked store transaction (mc_store_crl_begin: numbers
 * never go backwards and a higher one never lists less, across engine nodes too), builds the
 * TBSCertList in DER with the writer of the hot path (about 45 bytes an entry, 4-octet lengths
 * past 16 MiB), signs it through the HSM pool like a certificate, checks the result with
 * OpenSSL against the issuing certificate, writes it (DER, as served over HTTP: RFC 5280
 * 4.2.1.13) by rename unless FILE already holds a CRL whose number is not lower, and only then
 * records it as published (what `mailca status` judges).
 */
#ifndef MAILCA_CRL_H
#define MAILCA_CRL_H

#include "mailca/err.h"
#include "mailca/issuer.h"
#include "mailca/store.h"

#include <stddef.h>
#include <stdint.h>

/* SBR 4.9.7: nextUpdate no more than ten days after thisUpdate (subscriber certificates). */
#define MC_CRL_NEXT_UPDATE_MAX_DAYS 10
/* SBR 4.9.7: reissued at least every seven days; the default validity. */
#define MC_CRL_NEXT_UPDATE_DEFAULT_DAYS 7

typedef struct mc_crl_entry {
    uint8_t serial[MC_SERIAL_MAX];
    size_t serial_len;
    int64_t revoked_at; /* revocationDate, Unix seconds */
    int reason;         /* CRLReason (RFC 5280 5.3.1); 0 unspecified: no reasonCode */
} mc_crl_entry;

/* The TBSCertList (v2) of iss for the n entries (any order; written as given): signature
 * algorithm iss->sigalg, issuer iss's subject, thisUpdate, nextUpdate, the entries with a
 * non-critical reasonCode except for unspecified (SBR 7.2.2), and the CRL extensions
 * authorityKeyIdentifier (iss's SKI, RFC 5280 5.2.1) and cRLNumber (5.2.3). Refused with
 * MC_ERR_INVALID: nextUpdate not after thisUpdate or more than MC_CRL_NEXT_UPDATE_MAX_DAYS
 * later (field next_update, rule SBR 4.9.7); an entry whose reason is not one a subscriber
 * certificate is revoked with here (mc_crl_reason_allowed: field entries[i].reason, rule
 * SBR 7.2.2) or whose serial is empty or longer than 20 bytes (RFC 5280 4.1.2.2). *out is
 * malloc'd; the caller frees it. */
mc_err mc_crl_tbs(const mc_issuer *iss, uint64_t number, int64_t this_update, int64_t next_update,
                  const mc_crl_entry *v, size_t n, uint8_t **out, size_t *out_len,
                  mc_errdetail *err);

/* `mailca crl [--config FILE] --out FILE [--next-update-days D]`. */
int mc_crl_main(int argc, char **argv);

#endif

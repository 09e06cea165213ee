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
 *
 * Sharded CRLs (config ca.crl_shards N > 1): every certificate's cRLDistributionPoints names one
 * of N shard URLs (ca.crl_url with "{shard}" replaced by MC_CRL_SHARD_DIGITS decimal digits, a
 * stable function of the serial), and `mailca crl --out-dir DIR` writes one CRL per shard, each
 * listing only the certificates that name it and carrying a critical issuingDistributionPoint
 * with exactly that URL (RFC 5280 5.2.5). Which shard a certificate belongs to is read from its
 * own recorded TBSCertificate (the digits after the URL's prefix), never recomputed from the
 * current N: changing N never misplaces a certificate issued before.
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

/* ca.crl_shards: 1 (one full CRL, no placeholder) to 4096 shards. */
#define MC_CRL_SHARDS_MAX 4096
/* Shard numbers are written with this many decimal digits whatever N is (0000..4095), so the
 * compiled certificate template keeps its length, the worker patches the digits in place, and
 * shard k has the same URL under every N. */
#define MC_CRL_SHARD_DIGITS 4
#define MC_CRL_SHARD_PLACEHOLDER "{shard}"

/* The shard (0..shards-1) of a certificate with this serial: the serial's last four octets
 * (fewer when it is shorter) as a big-endian number, modulo shards. Serials are CSPRNG output
 * (SBR 7.1), so shards fill evenly; 0 when shards <= 1. */
unsigned mc_crl_shard_of(const uint8_t *serial, size_t serial_len, unsigned shards);

/* The shard a recorded TBSCertificate names: its cRLDistributionPoints extension, read with the
 * DER reader (never a byte search: the subject and the public key come first and are the
 * applicant's), holds a fullName URI that is tmpl with "{shard}" replaced by
 * MC_CRL_SHARD_DIGITS digits. 1 and *shard when so; 0 when the TBS does not parse or names no
 * such URI (issued before sharding, or under another URL). */
int mc_crl_shard_of_tbs(const uint8_t *tbs, size_t len, const char *tmpl, unsigned *shard);

/* Writes shard as MC_CRL_SHARD_DIGITS ASCII digits at p (no NUL): the hot-path patch. */
void mc_crl_shard_digits(uint8_t *p, unsigned shard);

/* Checks ca.crl_url against ca.crl_shards: with shards > 1 the URL holds "{shard}" exactly once,
 * in its last path segment, which is otherwise made of [A-Za-z0-9._-] (it names the file
 * `mailca crl --out-dir` writes); with shards == 1 it holds no "{shard}". shards outside
 * 1..MC_CRL_SHARDS_MAX: field ca.crl_shards. Other errors: MC_ERR_CONFIG, field ca.crl_url, rule
 * "ca.crl_shards". An empty URL passes here (the profile requires one, SBR 7.1.2.3(b)). */
mc_err mc_crl_url_check(const char *url, unsigned shards, mc_errdetail *err);

/* The URL of shard in template tmpl (with its "{shard}"), NUL-terminated in out[cap]; and the
 * file name `mailca crl --out-dir` gives it (the URL's last path segment), when file is not NULL
 * (fcap bytes). MC_ERR_INVALID when tmpl has no placeholder or out is too small. */
mc_err mc_crl_shard_url(const char *tmpl, unsigned shard, char *out, size_t cap, char *file,
                        size_t fcap, mc_errdetail *err);

typedef struct mc_crl_entry {
    uint8_t serial[MC_SERIAL_MAX];
    size_t serial_len;
    int64_t revoked_at; /* revocationDate, Unix seconds */
    int reason;         /* CRLReason (RFC 5280 5.3.1); 0 unspecified: no reasonCode */
} mc_crl_entry;

/* The TBSCertList (v2) of iss for the n entries (any order; written as given): signature
 * algorithm iss->sigalg, issuer iss's subject, thisUpdate, nextUpdate, the entries with a
 * non-critical reasonCode except for unspecified (SBR 7.2.2), and the CRL extensions
 * authorityKeyIdentifier (iss's SKI, RFC 5280 5.2.1) and cRLNumber (5.2.3), and, when idp_url
 * is not NULL (a shard), a critical issuingDistributionPoint (RFC 5280 5.2.5) whose
 * distributionPoint fullName is that one URI and onlyContainsUserCerts TRUE (these CRLs cover
 * subscriber certificates only; an idp_url that is empty or over 1024 bytes: MC_ERR_INVALID,
 * field idp_url). Refused with
 * MC_ERR_INVALID: nextUpdate not after thisUpdate or more than MC_CRL_NEXT_UPDATE_MAX_DAYS
 * later (field next_update, rule SBR 4.9.7); an entry whose reason is not one a subscriber
 * certificate is revoked with here (mc_crl_reason_allowed: field entries[i].reason, rule
 * SBR 7.2.2) or whose serial is empty or longer than 20 bytes (RFC 5280 4.1.2.2). *out is
 * malloc'd; the caller frees it. */
mc_err mc_crl_tbs(const mc_issuer *iss, uint64_t number, int64_t this_update, int64_t next_update,
                  const char *idp_url, const mc_crl_entry *v, size_t n, uint8_t **out,
                  size_t *out_len, mc_errdetail *err);

/* `mailca crl [--config FILE] (--out FILE | --out-dir DIR) [--next-update-days D]`: --out writes
 * the full CRL (every revoked certificate, no issuingDistributionPoint: N = 1, or the old URL of
 * certificates issued before sharding), --out-dir every shard (N > 1). */
int mc_crl_main(int argc, char **argv);

#endif

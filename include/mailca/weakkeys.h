/*
 * mc_weakkeys: the blocklist of known-weak RSA keys that SBR 6.1.1.3 item 5 makes a CA refuse
 * ("a demonstrated or proven method to easily compute the Applicant's Private Key based on the
 * Public Key (such as a Debian weak key)"). The Debian OpenSSL PRNG flaw (CVE-2008-0166) made
 * every key from a process id on each architecture and key size: a finite set, published as
 * fingerprint lists (Debian's openssl-blacklist, the CA/Browser Forum's collection), which are
 * the only practical check. Debian 12 no longer packages them, so the operator supplies them
 * (config keys.weak_rsa_blocklist: a file, or a folder whose files are all read, e.g. the
 * blacklist.RSA-1024 ... blacklist.RSA-4096 files of openssl-blacklist); without one mailca
 * says at each run that RSA keys go unchecked (engine/pipeline.c).
 *
 * Format (openssl-blacklist, openssl-vulnkey(1)): one fingerprint per line, the SHA-1 of the
 * line `openssl rsa -noout -modulus` prints ("Modulus=" + the modulus in upper-case hex without
 * leading zeros + "\n"), as its last 20 hex digits (the low 80 bits) or all 40; '#' starts a
 * comment line; blank lines are skipped. The same fingerprint serves every key size, so lists of
 * several sizes merge into one set.
 *
 * Cost on the hot path: one SHA-1 over about 520 bytes per RSA-2048 subscriber key (~1 us) and a
 * binary search; EC and EdDSA keys are not looked up (the lists hold RSA moduli).
 */
#ifndef MAILCA_WEAKKEYS_H
#define MAILCA_WEAKKEYS_H

#include "mailca/err.h"

#include <stddef.h>
#include <stdint.h>

#define MC_WEAKKEYS_RULE "SBR 6.1.1.3"
#define MC_WEAKKEYS_FP_LEN 10        /* the low 80 bits of the SHA-1 */
#define MC_WEAKKEYS_MODULUS_MAX 1024 /* bytes: 8192 bits, the largest key orders may carry */

struct evp_md_ctx_st;
typedef struct mc_weakkeys mc_weakkeys;

/* Reads path (a file, or every regular file of a folder, in name order) into *out, which the
 * caller frees with mc_weakkeys_free. MC_ERR_CONFIG naming field and "file:line" for a line that
 * is not a 20- or 40-digit hex fingerprint, an unreadable path, or a path with no fingerprint at
 * all (an empty list would check nothing while looking configured). */
mc_err mc_weakkeys_load(const char *path, const char *field, mc_weakkeys **out, mc_errdetail *err);
void mc_weakkeys_free(mc_weakkeys *w);

/* Distinct fingerprints loaded. */
size_t mc_weakkeys_count(const mc_weakkeys *w);

/* The fingerprint of an RSA modulus n (big-endian, leading zero bytes allowed, at most
 * MC_WEAKKEYS_MODULUS_MAX bytes) into fp, hashing with md (the caller's reused context; SHA-1
 * is fetched once per list). 0, or -1 when n is too long or OpenSSL fails. */
int mc_weakkeys_fingerprint(const mc_weakkeys *w, struct evp_md_ctx_st *md, const uint8_t *n,
                            size_t n_len, uint8_t fp[MC_WEAKKEYS_FP_LEN]);

/* The check: MC_OK when n is not listed (or w is NULL: no list configured); MC_ERR_INVALID with
 * field, rule MC_WEAKKEYS_RULE and a message naming the weak-key list when it is; MC_ERR_CRYPTO
 * when hashing fails. Thread-safe for one w shared by workers, each with its own md. */
mc_err mc_weakkeys_check_rsa(const mc_weakkeys *w, struct evp_md_ctx_st *md, const uint8_t *n,
                             size_t n_len, const char *field, mc_errdetail *err);

#endif

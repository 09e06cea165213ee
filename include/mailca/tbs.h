/*
 * mc_tbs: builds the TBSCertificate of one order from a compiled profile, without OpenSSL
 * objects (DESIGN.md: "no OpenSSL certificate objects on the hot path"), and assembles the signed
 * Certificate. Writes into caller buffers (the worker's arena).
 */
#ifndef MAILCA_TBS_H
#define MAILCA_TBS_H

#include "mailca/crypto.h"
#include "mailca/err.h"
#include "mailca/order.h"
#include "mailca/profile.h"

#include <stddef.h>
#include <stdint.h>

#define MC_SERIAL_LEN 16
#define MC_TBS_MAX 8192
#define MC_CERT_MAX (MC_TBS_MAX + 1024)

/* 16 bytes from the OS CSPRNG, top bit cleared and never all-zero: positive, < 2^159, 127 random
 * bits (SBR 7.1: at least 64 bits of CSPRNG output). */
mc_err mc_serial_generate(uint8_t serial[MC_SERIAL_LEN]);

/* Builds the TBS into out[0..cap). The order must have passed mc_order_check_csr and
 * mc_profile_check_order. md_ctx is the worker's reused digest context (for the SKI, SHA-1 of the
 * subjectPublicKey per RFC 5280 4.2.1.2 method 1). not_before is the issuance time. */
mc_err mc_tbs_build(const mc_profile *p, const mc_order *o, const uint8_t *serial,
                    size_t serial_len, int64_t not_before, const mc_digests *d, EVP_MD_CTX *md_ctx,
                    uint8_t *out, size_t cap, size_t *outlen, mc_errdetail *err);

/* The keyUsage bits (bit 0 = digitalSignature ... bit 8 = decipherOnly) for a key type, usage and
 * generation per SBR 7.1.2.3(e); 0 when the combination is not allowed. */
uint32_t mc_tbs_key_usage(mc_keytype k, mc_usage u, int generation);

/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }. */
mc_err mc_cert_assemble(const uint8_t *tbs, size_t tbs_len, mc_sigalg alg, const uint8_t *sig,
                        size_t sig_len, uint8_t *out, size_t cap, size_t *outlen);

#endif

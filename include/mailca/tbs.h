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

/* 16 bytes from the OS CSPRNG, top bit cleared and first octet non-zero (redrawn otherwise), so
 * the DER INTEGER is always 16 octets: positive, < 2^159, about 127 random bits (SBR 7.1: at least
 * 64 bits of CSPRNG output). MC_ERR_IO when the CSPRNG fails. */
mc_err mc_serial_generate(uint8_t serial[MC_SERIAL_LEN]);

/* Builds the TBS into out[0..cap). The order must have passed mc_order_check_csr and
 * mc_profile_check_order. md_ctx is the worker's reused digest context (for the SKI, SHA-1 of the
 * subjectPublicKey per RFC 5280 4.2.1.2 method 1). not_before is the issuance time: the
 * certificate's notBefore is not_before - p->backdate and notAfter = notBefore + p->validity.
 * Mailbox domains are written lower-cased (the same bytes in CN, emailAddress and SAN). */
mc_err mc_tbs_build(const mc_profile *p, const mc_order *o, const uint8_t *serial,
                    size_t serial_len, int64_t not_before, const mc_digests *d, EVP_MD_CTX *md_ctx,
                    uint8_t *out, size_t cap, size_t *outlen, mc_errdetail *err);

/* keyUsage bits as mc_tbs_key_usage returns them (RFC 5280 4.2.1.3 bit numbers). */
#define MC_KU_DIGITAL_SIGNATURE (1u << 0)
#define MC_KU_NON_REPUDIATION (1u << 1)
#define MC_KU_KEY_ENCIPHERMENT (1u << 2)
#define MC_KU_DATA_ENCIPHERMENT (1u << 3)
#define MC_KU_KEY_AGREEMENT (1u << 4)
#define MC_KU_KEY_CERT_SIGN (1u << 5)
#define MC_KU_CRL_SIGN (1u << 6)
#define MC_KU_ENCIPHER_ONLY (1u << 7)
#define MC_KU_DECIPHER_ONLY (1u << 8)

/* The keyUsage bits (bit 0 = digitalSignature ... bit 8 = decipherOnly) for a key type, usage and
 * generation per SBR 7.1.2.3(e); 0 when the combination is not allowed. */
uint32_t mc_tbs_key_usage(mc_keytype k, mc_usage u, int generation);

/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }. sig is the value
 * in its X.509 form (ECDSA: the DER Ecdsa-Sig-Value, not PKCS#11's raw r||s). Returns
 * MC_ERR_INVALID for a tbs that is not one SEQUENCE or an unknown alg, MC_ERR_NOMEM when out is
 * too small. */
mc_err mc_cert_assemble(const uint8_t *tbs, size_t tbs_len, mc_sigalg alg, const uint8_t *sig,
                        size_t sig_len, uint8_t *out, size_t cap, size_t *outlen);

#endif

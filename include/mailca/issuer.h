/*
 * mc_issuer: what the TBS builder and linter need from the issuing CA certificate: its subject
 * Name DER (copied byte for byte into the issuer field, SBR 7.1.4.1), its subjectKeyIdentifier
 * (for the AKI, SBR 7.1.2.3(g)) and the signature algorithm it signs with. Loaded once (cold path,
 * OpenSSL parses the PEM).
 */
#ifndef MAILCA_ISSUER_H
#define MAILCA_ISSUER_H

#include "mailca/alg.h"
#include "mailca/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mc_issuer {
    uint8_t *cert; /* Certificate DER (malloc'd) */
    size_t cert_len;
    mc_bytes name;   /* the subject Name TLV, pointing into cert */
    uint8_t ski[64]; /* subjectKeyIdentifier value */
    size_t ski_len;
    mc_keytype keytype;
    mc_sigalg sigalg; /* how certificates under this CA are signed */
} mc_issuer;

/* Reads a PEM (first CERTIFICATE block) or DER certificate file. sigalg must fit the key
 * (MC_SIG_NONE picks the default: ECDSA with the curve's hash, RSA PKCS#1 v1.5 SHA-256, Ed25519).
 * Refuses a certificate that is not a CA, has no subjectKeyIdentifier (SBR 7.1.2.3(g)) or a key
 * outside SBR 7.1.3.1; errors name the config keys "ca.certificate" / "ca.signature".
 * The caller frees *out with mc_issuer_free (also safe after a failed load). */
mc_err mc_issuer_load(const char *path, mc_sigalg sigalg, mc_issuer *out, mc_errdetail *err);
/* Same from DER bytes (copied). */
mc_err mc_issuer_from_der(const uint8_t *der, size_t len, mc_sigalg sigalg, mc_issuer *out,
                          mc_errdetail *err);
void mc_issuer_free(mc_issuer *iss);

#endif

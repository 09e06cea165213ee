/*
 * mc_alg: the key types and signature algorithms mailca knows, with their exact DER encodings
 * (SBR 7.1.3.1 for SubjectPublicKeyInfo, SBR 7.1.3.2 for signatures). One table, so the TBS
 * builder, the linter and the signer agree byte for byte.
 */
#ifndef MAILCA_ALG_H
#define MAILCA_ALG_H

#include "mailca/err.h"

#include <stddef.h>
#include <stdint.h>

typedef enum mc_keytype {
    MC_KEY_NONE = 0,
    MC_KEY_RSA,   /* rsaEncryption, any allowed size */
    MC_KEY_P256,
    MC_KEY_P384,
    MC_KEY_P521,
    MC_KEY_ED25519,
    MC_KEY_ED448,
} mc_keytype;

typedef enum mc_sigalg {
    MC_SIG_NONE = 0,
    MC_SIG_RSA_PKCS1_SHA256,
    MC_SIG_RSA_PKCS1_SHA384,
    MC_SIG_RSA_PKCS1_SHA512,
    MC_SIG_RSA_PSS_SHA256,
    MC_SIG_RSA_PSS_SHA384,
    MC_SIG_RSA_PSS_SHA512,
    MC_SIG_ECDSA_SHA256,
    MC_SIG_ECDSA_SHA384,
    MC_SIG_ECDSA_SHA512,
    MC_SIG_ED25519,
} mc_sigalg;

typedef struct mc_bytes {
    const uint8_t *p;
    size_t len;
} mc_bytes;

/* The exact AlgorithmIdentifier DER for a subject key type (SBR 7.1.3.1); empty for NONE. */
mc_bytes mc_keytype_algid(mc_keytype k);
/* Identifies a key type from an SPKI AlgorithmIdentifier TLV (whole TLV bytes); MC_KEY_NONE when
 * it is not one of the allowed byte-exact encodings. */
mc_keytype mc_keytype_from_algid(const uint8_t *der, size_t len);
const char *mc_keytype_name(mc_keytype k); /* "rsa", "p256", ... */

/* The exact AlgorithmIdentifier DER for a signature algorithm (SBR 7.1.3.2). */
mc_bytes mc_sigalg_algid(mc_sigalg s);
mc_sigalg mc_sigalg_from_algid(const uint8_t *der, size_t len);
const char *mc_sigalg_name(mc_sigalg s);
/* Parses a name as written in config files ("ecdsa-sha256", "rsa-pkcs1-sha256", ...). */
mc_sigalg mc_sigalg_from_name(const char *name);
/* The OpenSSL digest name for the hash the signer needs ("SHA256"...), NULL for Ed25519. */
const char *mc_sigalg_digest(mc_sigalg s);
/* The key type family a signature algorithm needs: MC_KEY_RSA, MC_KEY_P256.. or MC_KEY_ED25519. */
mc_keytype mc_sigalg_keytype(mc_sigalg s);

#endif

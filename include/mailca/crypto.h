/*
 * mc_digests: message digests fetched once at start (EVP_MD_fetch) and shared read-only by all
 * threads; each worker owns an EVP_MD_CTX and reuses it. Never EVP_sha256()-style implicit fetches
 * on the hot path: they take OpenSSL's global locks (DESIGN.md, lessons).
 */
#ifndef MAILCA_CRYPTO_H
#define MAILCA_CRYPTO_H

#include "mailca/alg.h"
#include "mailca/err.h"

#include <openssl/evp.h>

typedef struct mc_digests {
    EVP_MD *sha1;
    EVP_MD *sha256;
    EVP_MD *sha384;
    EVP_MD *sha512;
} mc_digests;

/* Fetches every digest from the default library context. Free with mc_digests_free. */
mc_err mc_digests_fetch(mc_digests *d, mc_errdetail *err);
void mc_digests_free(mc_digests *d);

/* The digest for an OpenSSL name ("SHA1", "SHA256", ...) or NULL. */
const EVP_MD *mc_digests_get(const mc_digests *d, const char *name);
/* The digest a signature algorithm hashes with, NULL for Ed25519 (which signs the message). */
const EVP_MD *mc_digests_for_sigalg(const mc_digests *d, mc_sigalg s);

/* One-shot digest using a caller-owned, reused context. out must hold EVP_MAX_MD_SIZE bytes. */
mc_err mc_digest(EVP_MD_CTX *ctx, const EVP_MD *md, const void *p, size_t n, uint8_t *out,
                 unsigned *outlen);

/* A software key pair of the given type (rsa_bits for MC_KEY_RSA; 0 means 2048). For tests,
 * the bench's subscribers and tools: the CA's own keys are made inside the HSM. Caller frees
 * with EVP_PKEY_free; NULL on failure or an unknown type. */
EVP_PKEY *mc_crypto_keygen(mc_keytype kt, unsigned rsa_bits);

/* Fills buf with n bytes from the OS CSPRNG (getrandom). */
mc_err mc_random(void *buf, size_t n);

/* Prints OpenSSL's error queue into the detail's message (and clears the queue). */
mc_err mc_crypto_err(mc_errdetail *err, const char *field, const char *what);

#endif

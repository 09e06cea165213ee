/*
 * mc_testca: a throwaway software CA for tests. It creates with OpenSSL a self-signed root and an
 * S/MIME issuing CA below it (basicConstraints CA:TRUE pathlen 0, keyUsage keyCertSign+cRLSign,
 * EKU emailProtection, SKI and AKI), so a test can build a TBSCertificate with mailca, sign it in
 * software with the issuing key, and check the result with OpenSSL (X509_verify, chain building).
 *
 * Usage:
 *   mc_testca ca;
 *   assert_int_equal(mc_testca_create(&ca, MC_TESTCA_P256, 0), 0);
 *   mc_issuer_from_der(ca.der, ca.der_len, MC_SIG_NONE, &iss, &err);
 *   ... mc_tbs_build ... mc_testca_sign(&ca, iss.sigalg, tbs, n, sig, &siglen) ...
 *   mc_testca_free(&ca);
 *
 * Everything is in memory except mc_testca_write_pem. Not thread-safe per object.
 */
#ifndef MAILCA_TESTCA_H
#define MAILCA_TESTCA_H

#include "mailca/alg.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mc_testca_kind {
    MC_TESTCA_P256 = 0, /* default: root and issuing CA on P-256, ecdsa-with-SHA256 */
    MC_TESTCA_P384,     /* P-384, ecdsa-with-SHA384 */
    MC_TESTCA_RSA2048,  /* RSA-2048, sha256WithRSAEncryption */
} mc_testca_kind;

/* Flags for mc_testca_create that make a deliberately broken issuing CA (negative tests). */
#define MC_TESTCA_NO_SKI 0x1u /* issuing CA certificate without subjectKeyIdentifier */
#define MC_TESTCA_NOT_CA 0x2u /* issuing certificate without basicConstraints CA:TRUE */

typedef struct mc_testca {
    EVP_PKEY *root_key;
    X509 *root;
    EVP_PKEY *key; /* issuing CA private key: sign TBS certificates with it */
    X509 *cert;    /* issuing CA certificate */
    uint8_t *der;  /* issuing CA certificate DER (owned, freed by mc_testca_free) */
    size_t der_len;
} mc_testca;

/* Creates the root and issuing CA (valid from one day ago for ten years). Returns 0 on success,
 * -1 on failure (OpenSSL's error queue says why). Free with mc_testca_free. */
int mc_testca_create(mc_testca *ca, mc_testca_kind kind, unsigned flags);
void mc_testca_free(mc_testca *ca);

/* Generates a subscriber key: MC_KEY_RSA (bits >= 2048), MC_KEY_P256, MC_KEY_P384, MC_KEY_P521,
 * MC_KEY_ED25519 or MC_KEY_ED448 (bits ignored for non-RSA). NULL on failure; EVP_PKEY_free. */
EVP_PKEY *mc_testca_keygen(mc_keytype k, unsigned bits);

/* The key's SubjectPublicKeyInfo DER (i2d_PUBKEY) into a malloc'd buffer the caller frees with
 * OPENSSL_free. Returns the length, or 0 on failure. */
size_t mc_testca_spki(EVP_PKEY *key, uint8_t **der);

/* A PKCS#10 CSR for key (subject CN=cn, may be NULL for an empty subject), self-signed with
 * SHA-256 (Ed25519: pure). *der is malloc'd, caller frees with OPENSSL_free. Returns the length,
 * or 0 on failure. */
size_t mc_testca_csr(EVP_PKEY *key, const char *cn, uint8_t **der);

/* Signs msg with the issuing CA key as the mailca signature algorithm alg says (PKCS#1 v1.5,
 * PSS with salt = hash length and MGF1 with the same hash, ECDSA giving a DER Ecdsa-Sig-Value,
 * or Ed25519). sig must hold *siglen bytes (1024 is enough); *siglen gets the length written.
 * Returns 0 on success, -1 on failure. */
int mc_testca_sign(const mc_testca *ca, mc_sigalg alg, const uint8_t *msg, size_t len, uint8_t *sig,
                   size_t *siglen);

/* Verifies leaf against root -> issuing CA with X509_verify_cert for an X509_PURPOSE_* (e.g.
 * X509_PURPOSE_SMIME_SIGN), at the current time. Returns 1 when it verifies, 0 when not (*why,
 * when not NULL, gets X509_verify_cert_error_string), -1 on an internal failure. */
int mc_testca_verify_chain(const mc_testca *ca, X509 *leaf, int purpose, const char **why);

/* Writes the issuing CA certificate (PEM) to path; with_root appends the root. 0 on success. */
int mc_testca_write_pem(const mc_testca *ca, const char *path, int with_root);

#endif

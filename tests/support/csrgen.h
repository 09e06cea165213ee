/*
 * mc_csrgen: test helpers that make subscriber keys and PKCS#10 CSRs with OpenSSL, and pack
 * orders (docs/orders.md) from a small C struct, so tests feed mailca real inputs.
 *
 * Usage:
 *   size_t csr_len;
 *   EVP_PKEY *key = mc_csrgen_key(MC_KEY_P256, 0);
 *   uint8_t *csr = mc_csrgen_csr(key, NULL, 0, &csr_len);         // free() it
 *   mc_csrgen_mailbox mb = {"alice@example.com", "3.2.2.2", 1700000000, "ticket-1"};
 *   mc_csrgen_order o = {.id = "o-1", .account = "acct", .profile = "mailbox-strict",
 *                        .usage = "signing", .mailboxes = &mb, .n_mailboxes = 1,
 *                        .csr = csr, .csr_len = csr_len};
 *   msgpack_sbuffer sb;
 *   msgpack_sbuffer_init(&sb);
 *   mc_csrgen_order_pack(&o, &sb);                                  // sb.data, sb.size
 *   ... msgpack_sbuffer_destroy(&sb); free(csr); EVP_PKEY_free(key);
 *
 * Not for production code: everything allocates and failures return NULL / -1 (OpenSSL's error
 * queue says why).
 */
#ifndef MAILCA_TEST_CSRGEN_H
#define MAILCA_TEST_CSRGEN_H

#include "mailca/alg.h"

#include <msgpack.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* Generates a key: MC_KEY_RSA with rsa_bits (any size OpenSSL accepts, >= 512, e.g. 2052 for a
 * modulus that is not a multiple of 8), MC_KEY_P256, MC_KEY_P384, MC_KEY_P521, MC_KEY_ED25519 or
 * MC_KEY_ED448 (rsa_bits ignored). NULL on failure. Caller frees with EVP_PKEY_free. */
EVP_PKEY *mc_csrgen_key(mc_keytype type, unsigned rsa_bits);

/* Flags for mc_csrgen_csr. */
#define MC_CSRGEN_PSS                                                                              \
    0x1u /* RSA keys: sign with RSASSA-PSS (MGF1 same hash, salt = hash length)                    \
          */

/* A PKCS#10 CSR DER (subject CN=mailca test) self-signed by key. digest is an OpenSSL digest name
 * ("SHA256", "SHA384", "SHA512"); NULL picks SHA-256 for RSA and P-256, SHA-384 for P-384,
 * SHA-512 for P-521, and none for EdDSA. Returns a malloc'd buffer and its length in *len;
 * caller frees with free(). NULL on failure. */
uint8_t *mc_csrgen_csr(EVP_PKEY *key, const char *digest, unsigned flags, size_t *len);

/* One entry of "mailboxes". NULL strings and validated_at == 0 leave the key out. */
typedef struct mc_csrgen_mailbox {
    const char *address;
    const char *method; /* "3.2.2.1" .. "3.2.2.4" */
    int64_t validated_at;
    const char *reference;
} mc_csrgen_mailbox;

/* An order. NULL strings leave the key out; csr == NULL leaves "csr" out; mailboxes == NULL
 * leaves "mailboxes" out (mailboxes != NULL with n_mailboxes == 0 packs an empty array). */
typedef struct mc_csrgen_order {
    const char *id;
    const char *account;
    const char *profile;
    const char *usage; /* "signing", "key-management", "dual" */
    const mc_csrgen_mailbox *mailboxes;
    size_t n_mailboxes;
    const uint8_t *csr;
    size_t csr_len;
    const char *replaces; /* optional */
    /* optional "identity" (docs/orders.md): when the organization's / the individual's identity
     * was validated (0: not in the order), with a fixed evidence reference */
    int64_t org_validated_at, individual_validated_at;
} mc_csrgen_order;

/* The identity validations an order for profile needs, by its name's certificate type
 * (organization-*: organization; sponsor-*: both; individual-*: individual; else none), set to
 * at (e.g. an hour ago). */
void mc_csrgen_order_identity(mc_csrgen_order *o, int64_t at);

/* Appends o as one msgpack map to sb (initialised by the caller, who also destroys it).
 * Returns 0, or -1 when packing failed. */
int mc_csrgen_order_pack(const mc_csrgen_order *o, msgpack_sbuffer *sb);

#endif

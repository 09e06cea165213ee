/*
 * mc_provider: an OpenSSL 3 provider ("mailca") over mc_hsm, so that OpenSSL code and the
 * `openssl` command sign with the CA key inside the HSM as with any EVP_PKEY. No ENGINE API.
 *
 * What it offers (property "provider=mailca"):
 * - a store loader for `pkcs11:` URIs (RFC 7512, as mc_hsm reads them): OSSL_STORE_open_ex on
 *   "pkcs11:token=ca;object=issuing" yields an EVP_PKEY whose private half stays in the token.
 *   The PIN comes from the environment variable MAILCA_PIN or the URI's pin-source file, never
 *   from argv (pin-value is refused). The PKCS#11 module is the URI's module-path, else the
 *   provider parameter "pkcs11-module-path" (openssl.cnf), else $MAILCA_PKCS11_MODULE.
 * - key management for EC (P-256, P-384, P-521), RSA and Ed25519: the public part plus the HSM
 *   reference. Public keys (and software keys) imported from other providers are held in a
 *   private library context with OpenSSL's default provider, so matching, validation, encoding
 *   and verification work on any key this key management ends up holding. Key generation is
 *   not offered; the HSM's private key is never exported.
 * - signatures: ECDSA with SHA-256/384/512, RSA PKCS#1 v1.5 and PSS (salt = digest length,
 *   MGF1 with the same digest: SBR 7.1.3.2.1), Ed25519; signing goes through mc_hsm_sign on a
 *   session the signature context opens, reopened once on MC_ERR_HSM_SESSION. Verification
 *   uses the public key with OpenSSL's default provider.
 *
 * Two ways in:
 * - the loadable module: a shared library named mailca.so exporting OSSL_provider_init, for
 *   `openssl x509 ... -provider-path DIR -provider mailca -provider default -CAkey 'pkcs11:...'`
 *   or an openssl.cnf provider section;
 * - in-process: mc_provider_load_builtin(libctx, ...).
 *
 * Load it next to (not instead of) the default provider. It registers the same algorithm names
 * as the default provider ("EC", "RSA", "ECDSA", ...), so in a library context that holds both,
 * fetch with a property query (e.g. "?provider=default") where a software operation must not
 * land here; keys loaded from the store always use this provider's signature code.
 */
#ifndef MAILCA_PROVIDER_H
#define MAILCA_PROVIDER_H

#include "mailca/err.h"

#include <openssl/core.h>
#include <openssl/provider.h>
#include <openssl/types.h>

#define MC_PROVIDER_NAME "mailca"

/* The provider's init function (what OSSL_provider_init is in the loadable module). */
int mc_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                     const OSSL_DISPATCH **out, void **provctx);

/* Registers the provider as a built-in of libctx (NULL: the default library context) and loads
 * it. *out gets the loaded provider; the caller unloads it with OSSL_PROVIDER_unload (after
 * freeing every key and context that came from it). Loading twice is allowed (two refs). */
mc_err mc_provider_load_builtin(OSSL_LIB_CTX *libctx, OSSL_PROVIDER **out, mc_errdetail *err);

#endif

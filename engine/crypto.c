/*
 * Digests fetched once, CSPRNG access, and OpenSSL error reporting.
 */
#include "mailca/crypto.h"

#include <errno.h>
#include <openssl/err.h>
#include <string.h>
#include <sys/random.h>

mc_err mc_digests_fetch(mc_digests *d, mc_errdetail *err)
{
    memset(d, 0, sizeof *d);
    d->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    d->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    d->sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
    d->sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
    if (!d->sha1 || !d->sha256 || !d->sha384 || !d->sha512) {
        mc_digests_free(d);
        return mc_crypto_err(err, NULL, "EVP_MD_fetch");
    }
    return MC_OK;
}

void mc_digests_free(mc_digests *d)
{
    EVP_MD_free(d->sha1);
    EVP_MD_free(d->sha256);
    EVP_MD_free(d->sha384);
    EVP_MD_free(d->sha512);
    memset(d, 0, sizeof *d);
}

const EVP_MD *mc_digests_get(const mc_digests *d, const char *name)
{
    if (!name)
        return NULL;
    if (strcmp(name, "SHA1") == 0)
        return d->sha1;
    if (strcmp(name, "SHA256") == 0)
        return d->sha256;
    if (strcmp(name, "SHA384") == 0)
        return d->sha384;
    if (strcmp(name, "SHA512") == 0)
        return d->sha512;
    return NULL;
}

const EVP_MD *mc_digests_for_sigalg(const mc_digests *d, mc_sigalg s)
{
    return mc_digests_get(d, mc_sigalg_digest(s));
}

mc_err mc_digest(EVP_MD_CTX *ctx, const EVP_MD *md, const void *p, size_t n, uint8_t *out,
                 unsigned *outlen)
{
    if (!EVP_DigestInit_ex(ctx, md, NULL) || !EVP_DigestUpdate(ctx, p, n) ||
        !EVP_DigestFinal_ex(ctx, out, outlen))
        return MC_ERR_CRYPTO;
    return MC_OK;
}

EVP_PKEY *mc_crypto_keygen(mc_keytype kt, unsigned rsa_bits)
{
    switch (kt) {
    case MC_KEY_RSA:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)(rsa_bits ? rsa_bits : 2048));
    case MC_KEY_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case MC_KEY_P384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case MC_KEY_P521:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    case MC_KEY_ED25519:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    case MC_KEY_ED448:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    default:
        return NULL;
    }
}

mc_err mc_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return MC_ERR_IO;
        }
        p += r;
        n -= (size_t)r;
    }
    return MC_OK;
}

mc_err mc_crypto_err(mc_errdetail *err, const char *field, const char *what)
{
    char buf[160] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return mc_err_set(err, MC_ERR_CRYPTO, field, NULL, "%s failed%s%s", what, buf[0] ? ": " : "",
                      buf);
}

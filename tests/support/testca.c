/*
 * A throwaway software root + S/MIME issuing CA for tests (see testca.h). Uses OpenSSL's object
 * API freely: this is test code, the reference the mailca hot path is checked against.
 */
#include "support/testca.h"

#include "mailca/crypto.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

EVP_PKEY *mc_testca_keygen(mc_keytype k, unsigned bits)
{
    return mc_crypto_keygen(k, bits);
}

size_t mc_testca_spki(EVP_PKEY *key, uint8_t **der)
{
    *der = NULL;
    int n = i2d_PUBKEY(key, der);
    return n > 0 ? (size_t)n : 0;
}

/* The digest name OpenSSL wants for signing with key (NULL for EdDSA, which hashes itself). */
static const char *default_md(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
        return NULL;
    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) > 256)
        return "SHA384";
    return "SHA256";
}

size_t mc_testca_csr(EVP_PKEY *key, const char *cn, uint8_t **der)
{
    size_t ret = 0;
    *der = NULL;
    X509_REQ *req = X509_REQ_new();
    if (!req || !X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key))
        goto done;
    if (cn && !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                          (const unsigned char *)cn, -1, -1, 0))
        goto done;
    const char *md = default_md(key);
    EVP_MD *m = md ? EVP_MD_fetch(NULL, md, NULL) : NULL;
    int ok = X509_REQ_sign(req, key, m);
    EVP_MD_free(m);
    if (!ok)
        goto done;
    int n = i2d_X509_REQ(req, der);
    if (n > 0)
        ret = (size_t)n;
done:
    X509_REQ_free(req);
    return ret;
}

static int add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return 0;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* One CA certificate: self-signed when issuer is NULL. */
static X509 *make_ca(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                     unsigned flags)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    X509 *ret = NULL;
    if (!x || !name || !serial)
        goto done;
    uint8_t rnd[12];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        goto done;
    rnd[0] &= 0x7f;
    rnd[0] |= 0x01;
    BIGNUM *bn = BN_bin2bn(rnd, sizeof rnd, NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, serial);
    BN_free(bn);
    if (!ok)
        goto done;
    if (!X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"XX", -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"mailca test",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0))
        goto done;
    if (!X509_set_version(x, 2) || !X509_set_serialNumber(x, serial) ||
        !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) ||
        !X509_set_pubkey(x, key) || !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400))
        goto done;
    X509 *iss = issuer ? issuer : x;
    if (!(flags & MC_TESTCA_NOT_CA) &&
        !add_ext(iss, x, NID_basic_constraints,
                 issuer ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE"))
        goto done;
    if (!add_ext(iss, x, NID_key_usage,
                 (flags & MC_TESTCA_NOT_CA) ? "critical,digitalSignature"
                                            : "critical,keyCertSign,cRLSign"))
        goto done;
    if (!(flags & MC_TESTCA_NO_SKI) && !add_ext(iss, x, NID_subject_key_identifier, "hash"))
        goto done;
    if (issuer) {
        if (!add_ext(iss, x, NID_authority_key_identifier, "keyid:always") ||
            !add_ext(iss, x, NID_ext_key_usage, "emailProtection"))
            goto done;
    }
    EVP_PKEY *sk = issuer ? issuer_key : key;
    const char *md = default_md(sk);
    EVP_MD *m = md ? EVP_MD_fetch(NULL, md, NULL) : NULL;
    ok = X509_sign(x, sk, m) > 0;
    EVP_MD_free(m);
    if (!ok)
        goto done;
    ret = x;
    x = NULL;
done:
    X509_free(x);
    X509_NAME_free(name);
    ASN1_INTEGER_free(serial);
    return ret;
}

int mc_testca_create(mc_testca *ca, mc_testca_kind kind, unsigned flags)
{
    memset(ca, 0, sizeof *ca);
    mc_keytype k = kind == MC_TESTCA_P384      ? MC_KEY_P384
                   : kind == MC_TESTCA_RSA2048 ? MC_KEY_RSA
                                               : MC_KEY_P256;
    const char *label = kind == MC_TESTCA_P384      ? "P-384"
                        : kind == MC_TESTCA_RSA2048 ? "RSA-2048"
                                                    : "P-256";
    char cn[64];
    ca->root_key = mc_testca_keygen(k, 2048);
    ca->key = mc_testca_keygen(k, 2048);
    if (!ca->root_key || !ca->key)
        goto fail;
    snprintf(cn, sizeof cn, "mailca test root %s", label);
    ca->root = make_ca(ca->root_key, cn, NULL, NULL, 0);
    if (!ca->root)
        goto fail;
    snprintf(cn, sizeof cn, "mailca test S/MIME CA %s", label);
    ca->cert = make_ca(ca->key, cn, ca->root, ca->root_key, flags);
    if (!ca->cert)
        goto fail;
    ca->der = NULL;
    int n = i2d_X509(ca->cert, &ca->der);
    if (n <= 0)
        goto fail;
    ca->der_len = (size_t)n;
    return 0;
fail:
    mc_testca_free(ca);
    return -1;
}

void mc_testca_free(mc_testca *ca)
{
    EVP_PKEY_free(ca->root_key);
    EVP_PKEY_free(ca->key);
    X509_free(ca->root);
    X509_free(ca->cert);
    OPENSSL_free(ca->der);
    memset(ca, 0, sizeof *ca);
}

int mc_testca_sign(const mc_testca *ca, mc_sigalg alg, const uint8_t *msg, size_t len, uint8_t *sig,
                   size_t *siglen)
{
    int ret = -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const char *md = mc_sigalg_digest(alg);
    if (!ctx || alg == MC_SIG_NONE)
        goto done;
    if (EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, ca->key, NULL) != 1)
        goto done;
    if (alg == MC_SIG_RSA_PSS_SHA256 || alg == MC_SIG_RSA_PSS_SHA384 ||
        alg == MC_SIG_RSA_PSS_SHA512) {
        /* SBR 7.1.3.2.1: salt length = hash length, MGF1 with the same hash */
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md, NULL) != 1)
            goto done;
    }
    if (EVP_DigestSign(ctx, sig, siglen, msg, len) != 1)
        goto done;
    ret = 0;
done:
    EVP_MD_CTX_free(ctx);
    return ret;
}

int mc_testca_verify_chain(const mc_testca *ca, X509 *leaf, int purpose, const char **why)
{
    int ret = -1;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (!store || !ctx || !untrusted || !X509_STORE_add_cert(store, ca->root) ||
        !sk_X509_push(untrusted, ca->cert))
        goto done;
    if (!X509_STORE_CTX_init(ctx, store, leaf, untrusted) ||
        !X509_STORE_CTX_set_purpose(ctx, purpose))
        goto done;
    int r = X509_verify_cert(ctx);
    if (r < 0)
        goto done;
    if (r == 0 && why)
        *why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    ret = r;
done:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_free(untrusted);
    return ret;
}

int mc_testca_write_pem(const mc_testca *ca, const char *path, int with_root)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = PEM_write_X509(f, ca->cert) && (!with_root || PEM_write_X509(f, ca->root));
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/*
 * The "mailca" OpenSSL 3 provider: a store loader for pkcs11: URIs, key management and
 * signatures over mc_hsm (see include/mailca/provider.h for what it offers and how to load it).
 *
 * Keys (mc_pkey) are refcounted and immutable once filled: `pub` is an EVP_PKEY in the
 * provider's private library context (default provider only) holding the public part, or a
 * whole software key imported from elsewhere; `hsm` is the open mc_hsm when the private half is
 * in a token. Everything OpenSSL asks of the public part (parameters, matching, validation,
 * export, verification) is answered by `pub`; only signing with an HSM key goes to the token.
 *
 * Why the HSM key refuses export of its private part: OpenSSL 3.0 first tries the signature
 * implementation it fetches by name (possibly the default provider's) and exports the key to
 * that provider; the export has to fail for OpenSSL to come back to this provider's signature
 * code, which is the only one that can sign with the token.
 *
 * Errors are raised on OpenSSL's error queue (ERR_LIB_PROV) with mc_hsm's message, which names
 * the CKR_ code and the call; the PIN never appears in them.
 */
#include "mailca/provider.h"

#include "mailca/alg.h"
#include "mailca/hsm.h"
#include "mailca/p11uri.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#define PROPS "provider=" MC_PROVIDER_NAME

/* Signature of the largest key we sign with (RSA 8192), plus DER slack. */
#define SIG_CAP 1100

/* ---- provider context ---- */

typedef struct mc_prov {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *soft; /* private: the default provider, for public-key and software work */
    OSSL_PROVIDER *soft_default;
    char module[PATH_MAX]; /* "pkcs11-module-path" from the provider's configuration */
} mc_prov;

static void perr(int reason, const char *fmt, const char *arg)
{
    ERR_raise_data(ERR_LIB_PROV, reason, fmt, arg ? arg : "");
}

static void perr_mc(const mc_errdetail *e)
{
    char buf[512];
    ERR_raise_data(ERR_LIB_PROV, ERR_R_OPERATION_FAIL, "mailca: %s",
                   mc_err_format(e, buf, sizeof buf));
}

/* ---- keys ---- */

enum { FAM_EC = 0, FAM_RSA, FAM_ED };

static const char *const fam_keytype[] = {"EC", "RSA", "ED25519"};

typedef struct mc_pkey {
    mc_prov *prov;
    int fam;
    atomic_int refs;
    EVP_PKEY *pub; /* in prov->soft; NULL while the key is empty */
    mc_hsm *hsm;   /* the token holds the private key; NULL for other keys */
    mc_keytype kt; /* MC_KEY_NONE unless hsm */
} mc_pkey;

static mc_pkey *pkey_new(mc_prov *prov, int fam)
{
    mc_pkey *k = OPENSSL_zalloc(sizeof *k);
    if (!k)
        return NULL;
    k->prov = prov;
    k->fam = fam;
    atomic_init(&k->refs, 1);
    return k;
}

static mc_pkey *pkey_ref(mc_pkey *k)
{
    if (k)
        atomic_fetch_add(&k->refs, 1);
    return k;
}

static void pkey_free(void *vk)
{
    mc_pkey *k = vk;
    if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    EVP_PKEY_free(k->pub);
    mc_hsm_close(k->hsm);
    OPENSSL_free(k);
}

static int pkey_has_private(const mc_pkey *k)
{
    if (k->hsm)
        return 1;
    if (!k->pub)
        return 0;
    /* a software key imported with its private half */
    BIGNUM *bn = NULL;
    uint8_t buf[64];
    size_t len = 0;
    int has = EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1 ||
              EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_RSA_D, &bn) == 1 ||
              EVP_PKEY_get_octet_string_param(k->pub, OSSL_PKEY_PARAM_PRIV_KEY, buf, sizeof buf,
                                              &len) == 1;
    BN_clear_free(bn);
    OPENSSL_cleanse(buf, sizeof buf);
    return has;
}

/* The digest SBR 7.1.3.2 pairs with the key (NULL: none, EdDSA). */
static const char *pkey_default_digest(const mc_pkey *k)
{
    if (k->fam == FAM_ED)
        return NULL;
    if (k->fam == FAM_EC && k->pub) {
        int bits = EVP_PKEY_get_bits(k->pub);
        return bits > 384 ? "SHA512" : bits > 256 ? "SHA384" : "SHA256";
    }
    return "SHA256";
}

/* ---- key management ---- */

static void *km_new_ec(void *provctx)
{
    return pkey_new(provctx, FAM_EC);
}
static void *km_new_rsa(void *provctx)
{
    return pkey_new(provctx, FAM_RSA);
}
static void *km_new_ed(void *provctx)
{
    return pkey_new(provctx, FAM_ED);
}

/* The store loader passes a pointer to its mc_pkey; the key gets one more reference. */
static void *km_load(const void *reference, size_t reference_sz)
{
    if (!reference || reference_sz != sizeof(mc_pkey *))
        return NULL;
    mc_pkey *k = *(mc_pkey *const *)reference;
    return pkey_ref(k);
}

static int km_has(const void *vk, int selection)
{
    const mc_pkey *k = vk;
    if (!k)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL) == 0)
        return 1;
    if (!k->pub)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !pkey_has_private(k))
        return 0;
    return 1;
}

static int km_match(const void *va, const void *vb, int selection)
{
    const mc_pkey *a = va, *b = vb;
    if (!a->pub || !b->pub)
        return 0;
    /* Public halves decide: a token's private key cannot be compared any other way, and
     * mc_hsm_open checked it signs for the public key it reads. */
    return EVP_PKEY_eq(a->pub, b->pub) == 1;
}

static int km_import(void *vk, int selection, const OSSL_PARAM params[])
{
    mc_pkey *k = vk;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    int ok = 0;
    if (!k || k->pub || k->hsm)
        return 0;
    ctx = EVP_PKEY_CTX_new_from_name(k->prov->soft, fam_keytype[k->fam], NULL);
    int sel = selection & OSSL_KEYMGMT_SELECT_ALL;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, sel ? sel : EVP_PKEY_KEYPAIR, (OSSL_PARAM *)params) != 1)
        goto done;
    k->pub = pk;
    ok = 1;
done:
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int km_export(void *vk, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    mc_pkey *k = vk;
    if (!k || !k->pub)
        return 0;
    if (k->hsm && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY))
        return 0; /* the token keeps it; see the top of the file */
    return EVP_PKEY_export(k->pub, selection, cb, cbarg);
}

static const OSSL_PARAM *km_types_ec(int selection)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

static const OSSL_PARAM *km_types_rsa(int selection)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_D, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

static const OSSL_PARAM *km_types_ed(int selection)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

static int km_get_params(void *vk, OSSL_PARAM params[])
{
    mc_pkey *k = vk;
    if (!k || !k->pub)
        return 0;
    /* Everything about the public part comes from OpenSSL's own key. */
    if (EVP_PKEY_get_params(k->pub, params) != 1)
        return 0;
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST);
    const char *dn = pkey_default_digest(k);
    if (p && dn && !OSSL_PARAM_set_utf8_string(p, dn))
        return 0;
    return 1;
}

static const OSSL_PARAM *km_gettable(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

static int km_validate(const void *vk, int selection, int checktype)
{
    const mc_pkey *k = vk;
    int ok = 0;
    if (!k || !k->pub)
        return 0;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(k->prov->soft, k->pub, NULL);
    if (!c)
        return 0;
    ok = 1;
    if (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY)
        ok = EVP_PKEY_public_check(c) == 1;
    /* An HSM key's pair was checked by a test signature at mc_hsm_open. */
    if (ok && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !k->hsm)
        ok = EVP_PKEY_private_check(c) == 1;
    EVP_PKEY_CTX_free(c);
    return ok;
}

static void *km_dup(const void *vk, int selection)
{
    /* Keys are immutable once filled: a duplicate is another reference. */
    return pkey_ref((mc_pkey *)vk);
}

static const char *km_opname_ec(int op)
{
    return op == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}
static const char *km_opname_rsa(int op)
{
    return op == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}
static const char *km_opname_ed(int op)
{
    return op == OSSL_OP_SIGNATURE ? "ED25519" : NULL;
}

#define KM_COMMON                                                                                  \
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))pkey_free},                                           \
        {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load},                                         \
        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},                                           \
        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},                                       \
        {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},                                     \
        {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},                                     \
        {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},                             \
        {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_gettable},                          \
        {OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))km_validate},                                 \
    {                                                                                              \
        OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup                                              \
    }

static const OSSL_DISPATCH km_ec[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new_ec},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_types_ec},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_types_ec},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_opname_ec},
    KM_COMMON,
    {0, NULL},
};
static const OSSL_DISPATCH km_rsa[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new_rsa},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_types_rsa},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_types_rsa},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_opname_rsa},
    KM_COMMON,
    {0, NULL},
};
static const OSSL_DISPATCH km_ed[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new_ed},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_types_ed},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_types_ed},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_opname_ed},
    KM_COMMON,
    {0, NULL},
};

/* The default provider's names, so keys and certificates of both providers compare. */
static const OSSL_ALGORITHM prov_keymgmt[] = {
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", PROPS, km_ec, "mailca EC (HSM) key"},
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROPS, km_rsa, "mailca RSA (HSM) key"},
    {"ED25519:1.3.101.112", PROPS, km_ed, "mailca Ed25519 (HSM) key"},
    {NULL, NULL, NULL, NULL},
};

/* ---- signatures ---- */

typedef struct sigctx {
    mc_prov *prov;
    int fam;
    mc_pkey *key;
    int verify;       /* 1: a verify operation */
    EVP_MD *md;       /* in prov->soft; NULL for EdDSA or until chosen */
    int pss;          /* RSA: PSS rather than PKCS#1 v1.5 */
    int saltlen;      /* requested PSS salt length: -1 digest length, or bytes */
    EVP_MD *mgf1;     /* requested MGF1 digest, NULL: same as md */
    EVP_MD_CTX *hash; /* HSM signing: the running digest */
    EVP_MD_CTX *oper; /* software key or verification: OpenSSL's own operation */
    mc_hsm_session *sess;
} sigctx;

static void *sig_new(mc_prov *prov, int fam)
{
    sigctx *c = OPENSSL_zalloc(sizeof *c);
    if (!c)
        return NULL;
    c->prov = prov;
    c->fam = fam;
    c->saltlen = RSA_PSS_SALTLEN_DIGEST;
    return c;
}
static void *sig_new_ec(void *provctx, const char *propq)
{
    return sig_new(provctx, FAM_EC);
}
static void *sig_new_rsa(void *provctx, const char *propq)
{
    return sig_new(provctx, FAM_RSA);
}
static void *sig_new_ed(void *provctx, const char *propq)
{
    return sig_new(provctx, FAM_ED);
}

/* Back to the state after newctx (keeps prov and fam). */
static void sig_reset(sigctx *c)
{
    mc_hsm_session_close(c->sess);
    EVP_MD_CTX_free(c->hash);
    EVP_MD_CTX_free(c->oper);
    EVP_MD_free(c->md);
    EVP_MD_free(c->mgf1);
    pkey_free(c->key);
    mc_prov *prov = c->prov;
    int fam = c->fam;
    memset(c, 0, sizeof *c);
    c->prov = prov;
    c->fam = fam;
    c->saltlen = RSA_PSS_SALTLEN_DIGEST;
}

static void sig_free(void *vc)
{
    sigctx *c = vc;
    if (!c)
        return;
    sig_reset(c);
    OPENSSL_free(c);
}

/* EVP_MD_CTX_dup is OpenSSL 3.1. */
static EVP_MD_CTX *md_ctx_dup(const EVP_MD_CTX *in)
{
    EVP_MD_CTX *out = EVP_MD_CTX_new();
    if (out && EVP_MD_CTX_copy_ex(out, in) != 1) {
        EVP_MD_CTX_free(out);
        out = NULL;
    }
    return out;
}

static void *sig_dup(void *vc)
{
    sigctx *c = vc, *d = sig_new(c->prov, c->fam);
    if (!d)
        return NULL;
    d->key = pkey_ref(c->key);
    d->verify = c->verify;
    d->pss = c->pss;
    d->saltlen = c->saltlen;
    if ((c->md && !EVP_MD_up_ref(c->md)) || (c->mgf1 && !EVP_MD_up_ref(c->mgf1)))
        goto bad;
    d->md = c->md;
    d->mgf1 = c->mgf1;
    /* the session is not shared: the copy opens its own when it signs */
    if ((c->hash && !(d->hash = md_ctx_dup(c->hash))) ||
        (c->oper && !(d->oper = md_ctx_dup(c->oper))))
        goto bad;
    return d;
bad:
    sig_free(d);
    return NULL;
}

static int set_md(sigctx *c, const char *name)
{
    if (c->fam == FAM_ED) {
        if (name && name[0]) {
            perr(ERR_R_UNSUPPORTED, "mailca: Ed25519 takes no digest (got %s)", name);
            return 0;
        }
        return 1;
    }
    EVP_MD *md = EVP_MD_fetch(c->prov->soft, name, NULL);
    /* SBR 7.1.3.2: SHA-256, SHA-384 or SHA-512 only */
    if (!md || !(EVP_MD_is_a(md, "SHA2-256") || EVP_MD_is_a(md, "SHA2-384") ||
                 EVP_MD_is_a(md, "SHA2-512"))) {
        EVP_MD_free(md);
        perr(ERR_R_UNSUPPORTED, "mailca: digest %s is not SHA-256/384/512 (SBR 7.1.3.2)", name);
        return 0;
    }
    EVP_MD_free(c->md);
    c->md = md;
    return 1;
}

/* The mailca algorithm for the context's key, digest and padding. */
static mc_sigalg sig_alg(const sigctx *c)
{
    if (c->fam == FAM_ED)
        return MC_SIG_ED25519;
    if (!c->md)
        return MC_SIG_NONE;
    int i = EVP_MD_is_a(c->md, "SHA2-256") ? 0 : EVP_MD_is_a(c->md, "SHA2-384") ? 1 : 2;
    static const mc_sigalg ec[] = {MC_SIG_ECDSA_SHA256, MC_SIG_ECDSA_SHA384, MC_SIG_ECDSA_SHA512};
    static const mc_sigalg v15[] = {MC_SIG_RSA_PKCS1_SHA256, MC_SIG_RSA_PKCS1_SHA384,
                                    MC_SIG_RSA_PKCS1_SHA512};
    static const mc_sigalg pss[] = {MC_SIG_RSA_PSS_SHA256, MC_SIG_RSA_PSS_SHA384,
                                    MC_SIG_RSA_PSS_SHA512};
    return c->fam == FAM_EC ? ec[i] : c->pss ? pss[i] : v15[i];
}

/* PSS parameters other than SBR's (salt = digest length, MGF1 with the same digest) are
 * refused when signing (SBR 7.1.3.2.1). */
static int pss_params_ok(const sigctx *c)
{
    if (c->fam != FAM_RSA || !c->pss)
        return 1;
    if (c->saltlen != RSA_PSS_SALTLEN_DIGEST && c->saltlen != EVP_MD_get_size(c->md)) {
        perr(ERR_R_UNSUPPORTED, "mailca: PSS salt length must equal the digest length%s",
             " (SBR 7.1.3.2.1)");
        return 0;
    }
    if (c->mgf1 && !EVP_MD_is_a(c->mgf1, EVP_MD_get0_name(c->md))) {
        perr(ERR_R_UNSUPPORTED, "mailca: PSS MGF1 digest must be the signature digest%s",
             " (SBR 7.1.3.2.1)");
        return 0;
    }
    return 1;
}

static int sig_set_params(void *vc, const OSSL_PARAM params[]);

static int sig_init(sigctx *c, mc_pkey *k, const char *mdname, int verify,
                    const OSSL_PARAM params[])
{
    if (k) {
        if (!k->pub || k->fam != c->fam) {
            perr(ERR_R_PASSED_INVALID_ARGUMENT, "mailca: %s", "key does not fit the algorithm");
            return 0;
        }
        sig_reset(c);
        c->key = pkey_ref(k);
    } else if (!c->key) {
        return 0;
    }
    c->verify = verify;
    if (!verify && !pkey_has_private(c->key)) {
        perr(ERR_R_PASSED_INVALID_ARGUMENT, "mailca: %s", "signing needs a private key");
        return 0;
    }
    if (mdname && mdname[0]) {
        if (!set_md(c, mdname))
            return 0;
    } else if (!c->md && c->fam != FAM_ED && !set_md(c, pkey_default_digest(c->key))) {
        return 0;
    }
    return sig_set_params(c, params);
}

static int sig_sign_init(void *vc, void *vk, const OSSL_PARAM params[])
{
    return sig_init(vc, vk, NULL, 0, params);
}
static int sig_verify_init(void *vc, void *vk, const OSSL_PARAM params[])
{
    return sig_init(vc, vk, NULL, 1, params);
}
static int sig_dsign_init(void *vc, const char *mdname, void *vk, const OSSL_PARAM params[])
{
    return sig_init(vc, vk, mdname, 0, params);
}
static int sig_dverify_init(void *vc, const char *mdname, void *vk, const OSSL_PARAM params[])
{
    return sig_init(vc, vk, mdname, 1, params);
}

/* Sets RSA padding, PSS salt length and MGF1 on an OpenSSL operation of the soft context. */
static int soft_params(const sigctx *c, EVP_PKEY_CTX *pc)
{
    if (c->fam != FAM_RSA)
        return 1;
    if (!c->pss)
        return EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1;
    const EVP_MD *mgf = c->mgf1 ? c->mgf1 : c->md;
    return EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, c->saltlen) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md_name(pc, EVP_MD_get0_name(mgf), NULL) == 1;
}

/* Starts the streaming part: a digest for HSM signing, OpenSSL's operation otherwise. */
static int sig_start(sigctx *c)
{
    if (c->hash || c->oper)
        return 1;
    if (!c->verify && c->key->hsm) {
        if (c->fam == FAM_ED) {
            perr(ERR_R_UNSUPPORTED, "mailca: %s", "Ed25519 signs in one shot (EVP_DigestSign)");
            return 0;
        }
        if (!pss_params_ok(c))
            return 0;
        c->hash = EVP_MD_CTX_new();
        return c->hash && EVP_DigestInit_ex2(c->hash, c->md, NULL) == 1;
    }
    EVP_PKEY_CTX *pc = NULL;
    const char *mdname = c->md ? EVP_MD_get0_name(c->md) : NULL;
    c->oper = EVP_MD_CTX_new();
    int ok = c->oper &&
             (c->verify ? EVP_DigestVerifyInit_ex(c->oper, &pc, mdname, c->prov->soft, NULL,
                                                  c->key->pub, NULL)
                        : EVP_DigestSignInit_ex(c->oper, &pc, mdname, c->prov->soft, NULL,
                                                c->key->pub, NULL)) == 1 &&
             soft_params(c, pc);
    if (!ok) {
        EVP_MD_CTX_free(c->oper);
        c->oper = NULL;
    }
    return ok;
}

static int sig_update(void *vc, const unsigned char *data, size_t len)
{
    sigctx *c = vc;
    if (!sig_start(c))
        return 0;
    if (c->hash)
        return EVP_DigestUpdate(c->hash, data, len);
    return c->verify ? EVP_DigestVerifyUpdate(c->oper, data, len)
                     : EVP_DigestSignUpdate(c->oper, data, len);
}

static size_t sig_max(const sigctx *c)
{
    int n = EVP_PKEY_get_size(c->key->pub);
    return n > 0 ? (size_t)n : 0;
}

/* Signs in the token: in is the digest (or the message for Ed25519). A dead session is
 * reopened once (mc_hsm_session_reopen) and the signature tried again. */
static int hsm_sign(sigctx *c, const unsigned char *in, size_t inlen, unsigned char *sig,
                    size_t *siglen, size_t sigsize)
{
    mc_errdetail e;
    mc_err rc = MC_OK;
    mc_sigalg alg = sig_alg(c);
    /* mc_hsm_sign's DER writer wants room for its worst case, more than OpenSSL's exact
     * maximum: sign into our own buffer and copy. */
    unsigned char buf[SIG_CAP];
    size_t len = 0;
    if (!c->sess && (rc = mc_hsm_session_open(c->key->hsm, &c->sess, &e)))
        goto bad;
    for (int attempt = 0; attempt < 2; attempt++) {
        len = sizeof buf;
        rc = mc_hsm_sign(c->sess, alg, in, inlen, buf, &len, &e);
        if (rc != MC_ERR_HSM_SESSION || attempt > 0)
            break;
        if ((rc = mc_hsm_session_reopen(c->sess, &e)))
            break;
    }
    if (rc)
        goto bad;
    if (len > sigsize) {
        perr(ERR_R_PASSED_INVALID_ARGUMENT, "mailca: %s", "signature buffer too small");
        return 0;
    }
    memcpy(sig, buf, len);
    *siglen = len;
    return 1;
bad:
    perr_mc(&e);
    return 0;
}

static int sig_final(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    sigctx *c = vc;
    if (!sig_start(c))
        return 0;
    if (!sig) {
        *siglen = sig_max(c);
        return 1;
    }
    if (c->oper) {
        size_t len = sigsize;
        if (EVP_DigestSignFinal(c->oper, sig, &len) != 1)
            return 0;
        *siglen = len;
        return 1;
    }
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    if (EVP_DigestFinal_ex(c->hash, dg, &dlen) != 1)
        return 0;
    return hsm_sign(c, dg, dlen, sig, siglen, sigsize);
}

static int sig_verify_final(void *vc, const unsigned char *sig, size_t siglen)
{
    sigctx *c = vc;
    if (!sig_start(c))
        return 0;
    return EVP_DigestVerifyFinal(c->oper, sig, siglen);
}

static int sig_digest_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    sigctx *c = vc;
    if (!c->key)
        return 0;
    if (!sig) {
        *siglen = sig_max(c);
        return 1;
    }
    if (c->key->hsm && c->fam == FAM_ED)
        return hsm_sign(c, tbs, tbslen, sig, siglen, sigsize);
    if (!c->key->hsm) {
        if (!sig_start(c))
            return 0;
        size_t len = sigsize;
        if (EVP_DigestSign(c->oper, sig, &len, tbs, tbslen) != 1)
            return 0;
        *siglen = len;
        return 1;
    }
    return sig_update(c, tbs, tbslen) && sig_final(c, sig, siglen, sigsize);
}

static int sig_digest_verify(void *vc, const unsigned char *sig, size_t siglen,
                             const unsigned char *tbs, size_t tbslen)
{
    sigctx *c = vc;
    if (!c->key || !sig_start(c))
        return 0;
    return EVP_DigestVerify(c->oper, sig, siglen, tbs, tbslen);
}

/* Digest-size input: the digest when none was set follows from its length. */
static int md_for_len(sigctx *c, size_t len)
{
    if (c->fam == FAM_ED || (c->md && (size_t)EVP_MD_get_size(c->md) == len))
        return 1;
    const char *n = len == 32 ? "SHA256" : len == 48 ? "SHA384" : len == 64 ? "SHA512" : NULL;
    if (!n) {
        perr(ERR_R_PASSED_INVALID_ARGUMENT, "mailca: %s", "input is not a SHA-2 digest");
        return 0;
    }
    return set_md(c, n);
}

static int sig_sign(void *vc, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    sigctx *c = vc;
    if (!c->key)
        return 0;
    if (!sig) {
        *siglen = sig_max(c);
        return 1;
    }
    if (c->key->hsm) {
        if (!md_for_len(c, tbslen) || !pss_params_ok(c))
            return 0;
        return hsm_sign(c, tbs, tbslen, sig, siglen, sigsize);
    }
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(c->prov->soft, c->key->pub, NULL);
    size_t len = sigsize;
    int ok = pc && EVP_PKEY_sign_init(pc) == 1 &&
             (!c->md || EVP_PKEY_CTX_set_signature_md(pc, c->md) == 1) && soft_params(c, pc) &&
             EVP_PKEY_sign(pc, sig, &len, tbs, tbslen) == 1;
    EVP_PKEY_CTX_free(pc);
    if (ok)
        *siglen = len;
    return ok;
}

static int sig_verify(void *vc, const unsigned char *sig, size_t siglen, const unsigned char *tbs,
                      size_t tbslen)
{
    sigctx *c = vc;
    if (!c->key || !md_for_len(c, tbslen))
        return 0;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(c->prov->soft, c->key->pub, NULL);
    int ok = pc && EVP_PKEY_verify_init(pc) == 1 &&
             (!c->md || EVP_PKEY_CTX_set_signature_md(pc, c->md) == 1) && soft_params(c, pc) &&
             EVP_PKEY_verify(pc, sig, siglen, tbs, tbslen) == 1;
    EVP_PKEY_CTX_free(pc);
    return ok;
}

static int sig_get_params(void *vc, OSSL_PARAM params[])
{
    sigctx *c = vc;
    OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID))) {
        mc_bytes a = mc_sigalg_algid(sig_alg(c));
        if (!a.len || !OSSL_PARAM_set_octet_string(p, a.p, a.len))
            return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) &&
        !OSSL_PARAM_set_utf8_string(p, c->md ? EVP_MD_get0_name(c->md) : ""))
        return 0;
    if (c->fam != FAM_RSA)
        return 1;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE))) {
        int ok = p->data_type == OSSL_PARAM_INTEGER
                     ? OSSL_PARAM_set_int(p, c->pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING)
                     : OSSL_PARAM_set_utf8_string(p, c->pss ? OSSL_PKEY_RSA_PAD_MODE_PSS
                                                            : OSSL_PKEY_RSA_PAD_MODE_PKCSV15);
        if (!ok)
            return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN))) {
        int ok = p->data_type == OSSL_PARAM_INTEGER
                     ? OSSL_PARAM_set_int(p, c->saltlen)
                     : OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST);
        if (!ok)
            return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST))) {
        const EVP_MD *m = c->mgf1 ? c->mgf1 : c->md;
        if (!OSSL_PARAM_set_utf8_string(p, m ? EVP_MD_get0_name(m) : ""))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM *sig_gettable(void *vc, void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

static int sig_set_params(void *vc, const OSSL_PARAM params[])
{
    sigctx *c = vc;
    const OSSL_PARAM *p;
    if (!params)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST))) {
        const char *n = NULL;
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &n) || !set_md(c, n))
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE))) {
        int mode = 0;
        const char *s = NULL;
        if (c->fam != FAM_RSA)
            return 0;
        if (p->data_type == OSSL_PARAM_INTEGER ? !OSSL_PARAM_get_int(p, &mode)
                                               : !OSSL_PARAM_get_utf8_string_ptr(p, &s))
            return 0;
        if (s)
            mode = strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0       ? RSA_PKCS1_PSS_PADDING
                   : strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0 ? RSA_PKCS1_PADDING
                                                                    : 0;
        if (mode != RSA_PKCS1_PADDING && mode != RSA_PKCS1_PSS_PADDING) {
            perr(ERR_R_UNSUPPORTED, "mailca: RSA padding %s: only pkcs1 and pss",
                 s ? s : "(number)");
            return 0;
        }
        c->pss = mode == RSA_PKCS1_PSS_PADDING;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN))) {
        int len = 0;
        const char *s = NULL;
        if (p->data_type == OSSL_PARAM_INTEGER ? !OSSL_PARAM_get_int(p, &len)
                                               : !OSSL_PARAM_get_utf8_string_ptr(p, &s))
            return 0;
        if (s)
            len = strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0 ? RSA_PSS_SALTLEN_DIGEST
                  : strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0  ? RSA_PSS_SALTLEN_MAX
                  : strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0 ? RSA_PSS_SALTLEN_AUTO
                                                                    : atoi(s);
        c->saltlen = len; /* checked against the digest when signing */
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST))) {
        const char *n = NULL;
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &n))
            return 0;
        EVP_MD *m = EVP_MD_fetch(c->prov->soft, n, NULL);
        if (!m)
            return 0;
        EVP_MD_free(c->mgf1);
        c->mgf1 = m;
    }
    return 1;
}

static const OSSL_PARAM *sig_settable(void *vc, void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

#define SIG_COMMON                                                                                 \
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_free},                                       \
        {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dup},                                     \
        {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init},                            \
        {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},                                      \
        {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init},                        \
        {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify},                                  \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_dsign_init},                    \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},                        \
        {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))sig_dverify_init},                \
        {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))sig_digest_verify},                    \
        {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_params},                      \
        {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable},                   \
        {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_params},                      \
    {                                                                                              \
        OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable                      \
    }

#define SIG_STREAM                                                                                 \
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_update},                          \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_final},                        \
        {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))sig_update},                    \
    {                                                                                              \
        OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))sig_verify_final                  \
    }

static const OSSL_DISPATCH sig_ec[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_new_ec},
    SIG_COMMON,
    SIG_STREAM,
    {0, NULL},
};
static const OSSL_DISPATCH sig_rsa[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_new_rsa},
    SIG_COMMON,
    SIG_STREAM,
    {0, NULL},
};
/* EdDSA is one-shot only (as in OpenSSL's default provider). */
static const OSSL_DISPATCH sig_ed[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_new_ed},
    SIG_COMMON,
    {0, NULL},
};

static const OSSL_ALGORITHM prov_signature[] = {
    {"ECDSA", PROPS, sig_ec, "mailca ECDSA (HSM)"},
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROPS, sig_rsa, "mailca RSA (HSM)"},
    {"ED25519:1.3.101.112", PROPS, sig_ed, "mailca Ed25519 (HSM)"},
    {NULL, NULL, NULL, NULL},
};

/* ---- store loader for pkcs11: URIs ---- */

typedef struct storectx {
    mc_prov *prov;
    char *uri;
    int done;
} storectx;

static void *st_open(void *provctx, const char *uri)
{
    if (!uri || strncmp(uri, "pkcs11:", 7) != 0)
        return NULL;
    storectx *s = OPENSSL_zalloc(sizeof *s);
    if (!s || !(s->uri = OPENSSL_strdup(uri))) {
        OPENSSL_free(s);
        return NULL;
    }
    s->prov = provctx;
    return s;
}

static int st_set_params(void *vs, const OSSL_PARAM params[])
{
    return 1; /* only keys are found here; an "expect" of something else finds nothing */
}

static const OSSL_PARAM *st_settable(void *provctx)
{
    static const OSSL_PARAM t[] = {OSSL_PARAM_END};
    return t;
}

/* Opens the key: module from the URI, else the configuration, else $MAILCA_PKCS11_MODULE;
 * PIN from $MAILCA_PIN, else the URI's pin-source (read by mc_hsm_open). */
static mc_pkey *st_open_key(storectx *s)
{
    mc_errdetail e;
    mc_p11uri *u = OPENSSL_zalloc(sizeof *u);
    mc_pkey *k = NULL;
    mc_err rc;
    if (!u) {
        mc_err_set(&e, MC_ERR_NOMEM, "uri", NULL, "out of memory");
        goto bad;
    }
    if ((rc = mc_p11uri_parse(s->uri, u, &e)))
        goto bad;
    const char *module = NULL;
    if (!u->module_path[0]) {
        module = s->prov->module[0] ? s->prov->module : getenv("MAILCA_PKCS11_MODULE");
        if (!module || !module[0]) {
            mc_err_set(&e, MC_ERR_CONFIG, "module", NULL,
                       "no PKCS#11 module: give module-path in the URI, pkcs11-module-path in "
                       "the provider configuration, or MAILCA_PKCS11_MODULE");
            goto bad;
        }
    }
    const char *pin = getenv("MAILCA_PIN");
    mc_hsm_config cfg = {module, s->uri, pin && pin[0] ? pin : NULL};
    mc_hsm *h = NULL;
    if ((rc = mc_hsm_open(&cfg, &h, &e)))
        goto bad;
    mc_keytype kt = mc_hsm_keytype(h);
    int fam = kt == MC_KEY_RSA ? FAM_RSA : kt == MC_KEY_ED25519 ? FAM_ED : FAM_EC;
    mc_bytes spki = mc_hsm_spki(h);
    const unsigned char *p = spki.p;
    EVP_PKEY *pub = d2i_PUBKEY_ex(NULL, &p, (long)spki.len, s->prov->soft, NULL);
    if (!pub || !(k = pkey_new(s->prov, fam))) {
        EVP_PKEY_free(pub);
        mc_hsm_close(h);
        mc_err_set(&e, MC_ERR_CRYPTO, "hsm", NULL, "cannot hold the token's public key");
        goto bad;
    }
    k->pub = pub;
    k->hsm = h;
    k->kt = kt;
    OPENSSL_free(u);
    return k;
bad:
    OPENSSL_free(u);
    perr_mc(&e);
    return NULL;
}

static int st_load(void *vs, OSSL_CALLBACK *object_cb, void *object_cbarg,
                   OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    storectx *s = vs;
    if (s->done)
        return 0;
    s->done = 1;
    mc_pkey *k = st_open_key(s);
    if (!k)
        return 0;
    int type = OSSL_OBJECT_PKEY;
    OSSL_PARAM params[4];
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)fam_keytype[k->fam], 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &k, sizeof k);
    params[3] = OSSL_PARAM_construct_end();
    /* km_load takes its own reference; ours goes when the callback is done. */
    int ok = object_cb(params, object_cbarg);
    pkey_free(k);
    return ok;
}

static int st_eof(void *vs)
{
    return ((storectx *)vs)->done;
}

static int st_close(void *vs)
{
    storectx *s = vs;
    if (s) {
        OPENSSL_free(s->uri);
        OPENSSL_free(s);
    }
    return 1;
}

static const OSSL_DISPATCH store_fns[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))st_open},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))st_settable},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))st_set_params},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))st_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))st_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))st_close},
    {0, NULL},
};

static const OSSL_ALGORITHM prov_store[] = {
    {"pkcs11", PROPS, store_fns, "mailca pkcs11: URI key loader"},
    {NULL, NULL, NULL, NULL},
};

/* ---- the provider ---- */

static const OSSL_ALGORITHM *prov_query(void *provctx, int op, int *no_cache)
{
    *no_cache = 0;
    switch (op) {
    case OSSL_OP_KEYMGMT:
        return prov_keymgmt;
    case OSSL_OP_SIGNATURE:
        return prov_signature;
    case OSSL_OP_STORE:
        return prov_store;
    default:
        return NULL;
    }
}

static const OSSL_PARAM *prov_gettable(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
        OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
        OSSL_PARAM_END,
    };
    return t;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) &&
        !OSSL_PARAM_set_utf8_ptr(p, "mailca PKCS#11 provider"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) &&
        !OSSL_PARAM_set_utf8_ptr(p, MAILCA_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) &&
        !OSSL_PARAM_set_utf8_ptr(p, "mailca " MAILCA_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static void prov_teardown(void *provctx)
{
    mc_prov *prov = provctx;
    if (!prov)
        return;
    OSSL_PROVIDER_unload(prov->soft_default);
    OSSL_LIB_CTX_free(prov->soft);
    OPENSSL_free(prov);
}

static const OSSL_DISPATCH prov_fns[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query},
    {0, NULL},
};

int mc_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                     const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *core_get_params = NULL;
    for (; in && in->function_id; in++)
        if (in->function_id == OSSL_FUNC_CORE_GET_PARAMS)
            core_get_params = OSSL_FUNC_core_get_params(in);
    mc_prov *prov = OPENSSL_zalloc(sizeof *prov);
    if (!prov)
        return 0;
    prov->handle = handle;
    if (core_get_params) {
        /* openssl.cnf: [mailca_sect] pkcs11-module-path = /usr/lib/.../module.so */
        char *module = NULL;
        OSSL_PARAM p[] = {OSSL_PARAM_utf8_ptr("pkcs11-module-path", &module, 0), OSSL_PARAM_END};
        if (core_get_params(handle, p) && module)
            snprintf(prov->module, sizeof prov->module, "%s", module);
    }
    prov->soft = OSSL_LIB_CTX_new();
    if (!prov->soft || !(prov->soft_default = OSSL_PROVIDER_load(prov->soft, "default"))) {
        prov_teardown(prov);
        return 0;
    }
    *out = prov_fns;
    *provctx = prov;
    return 1;
}

#ifdef MAILCA_PROVIDER_MODULE
/* The loadable module's entry point (built with -DMAILCA_PROVIDER_MODULE). */
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    return mc_provider_init(handle, in, out, provctx);
}
#endif

mc_err mc_provider_load_builtin(OSSL_LIB_CTX *libctx, OSSL_PROVIDER **out, mc_errdetail *err)
{
    *out = NULL;
    /* A second registration of the name fails harmlessly: the first one stays. */
    ERR_set_mark();
    OSSL_PROVIDER_add_builtin(libctx, MC_PROVIDER_NAME, mc_provider_init);
    ERR_pop_to_mark();
    OSSL_PROVIDER *p = OSSL_PROVIDER_load(libctx, MC_PROVIDER_NAME);
    if (!p) {
        unsigned long e = ERR_peek_last_error();
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        return mc_err_set(err, MC_ERR_CRYPTO, "provider", NULL, "loading provider %s: %s",
                          MC_PROVIDER_NAME, e ? buf : "unknown error");
    }
    *out = p;
    return MC_OK;
}

/*
 * `mailca init`: a ready CA on SoftHSM2. Certificates for the root and the issuing CA are built
 * with the same DER writer as subscriber certificates and signed inside the token; OpenSSL then
 * re-parses and verifies them before anything is written as final (state is committed only once
 * nothing else can fail).
 */
#include "mailca/ca.h"

#include "mailca/audit.h"

#include "mailca/config.h"
#include "mailca/crypto.h"
#include "mailca/der.h"
#include "mailca/hsm.h"
#include "mailca/lint.h"
#include "mailca/tbs.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define TOKEN_LABEL "mailca"
#define ROOT_LABEL "mailca-root"
#define ISSUING_LABEL "mailca-issuing"

static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_O[] = {0x55, 0x04, 0x0a};
static const uint8_t OID_C[] = {0x55, 0x04, 0x06};
static const uint8_t OID_BC[] = {0x55, 0x1d, 0x13};
static const uint8_t OID_KU[] = {0x55, 0x1d, 0x0f};
static const uint8_t OID_EKU[] = {0x55, 0x1d, 0x25};
static const uint8_t OID_SKI[] = {0x55, 0x1d, 0x0e};
static const uint8_t OID_AKI[] = {0x55, 0x1d, 0x23};
static const uint8_t OID_CP[] = {0x55, 0x1d, 0x20};
static const uint8_t OID_CRLDP[] = {0x55, 0x1d, 0x1f};
static const uint8_t OID_AIA[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01};
static const uint8_t OID_CAISSUERS[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02};
static const uint8_t OID_EMAILPROT[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04};
static const uint8_t OID_CLIENTAUTH[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02};

/* KU bit numbers (RFC 5280 4.2.1.3) */
#define KU_DIGITAL_SIGNATURE (1u << 0)
#define KU_KEY_CERT_SIGN (1u << 5)
#define KU_CRL_SIGN (1u << 6)

static void put_rdn(mc_der_w *w, const uint8_t *oid, size_t oidlen, unsigned tag, const char *v)
{
    size_t set = mc_der_begin(w, MC_DER_SET);
    size_t seq = mc_der_begin(w, MC_DER_SEQUENCE);
    mc_der_put(w, MC_DER_OID, oid, oidlen);
    mc_der_put(w, tag, v, strlen(v));
    mc_der_end(w, seq);
    mc_der_end(w, set);
}

static void put_name(mc_der_w *w, const char *cn, const char *org)
{
    size_t m = mc_der_begin(w, MC_DER_SEQUENCE);
    put_rdn(w, OID_C, sizeof OID_C, MC_DER_PRINTABLESTRING, "XX");
    put_rdn(w, OID_O, sizeof OID_O, MC_DER_UTF8STRING, org);
    put_rdn(w, OID_CN, sizeof OID_CN, MC_DER_UTF8STRING, cn);
    mc_der_end(w, m);
}

/* Opens an Extension; the caller writes the extnValue contents and closes with ext_end. */
static void ext_begin(mc_der_w *w, size_t *m1, size_t *m2, const uint8_t *oid, size_t oidlen,
                      int critical)
{
    *m1 = mc_der_begin(w, MC_DER_SEQUENCE);
    mc_der_put(w, MC_DER_OID, oid, oidlen);
    if (critical)
        mc_der_put_bool(w, 1);
    *m2 = mc_der_begin(w, MC_DER_OCTETSTRING);
}

static void ext_end(mc_der_w *w, size_t m1, size_t m2)
{
    mc_der_end(w, m2);
    mc_der_end(w, m1);
}

static void put_uri_gn(mc_der_w *w, const char *uri)
{
    mc_der_put(w, MC_DER_CTX(6), uri, strlen(uri)); /* GeneralName uniformResourceIdentifier */
}

/* SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 4.2.1.2 method 1). */
static mc_err spki_key_id(mc_bytes spki, const mc_digests *d, uint8_t out[20], mc_errdetail *err)
{
    mc_der_cur c = mc_der_cur_make(spki.p, spki.len);
    mc_der_tlv seq, alg, bits;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &seq) != MC_OK)
        return mc_err_set(err, MC_ERR_INVALID, "spki", NULL, "not a SEQUENCE");
    mc_der_cur in = mc_der_cur_in(&seq);
    if (mc_der_expect(&in, MC_DER_SEQUENCE, &alg) != MC_OK ||
        mc_der_expect(&in, MC_DER_BITSTRING, &bits) != MC_OK || bits.len < 1)
        return mc_err_set(err, MC_ERR_INVALID, "spki", NULL, "malformed SubjectPublicKeyInfo");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    mc_err rc = ctx ? mc_digest(ctx, d->sha1, bits.val + 1, bits.len - 1, md, &n) : MC_ERR_NOMEM;
    EVP_MD_CTX_free(ctx);
    if (rc != MC_OK)
        return mc_crypto_err(err, "spki", "SHA-1");
    memcpy(out, md, 20);
    return MC_OK;
}

typedef struct ca_cert_spec {
    const char *subject_cn;
    const char *issuer_cn;
    mc_bytes spki;
    const uint8_t *aki; /* NULL for the root */
    int64_t not_before, not_after;
    int is_root;
    const char *base_url;
    const char *org;
} ca_cert_spec;

static mc_err build_ca_tbs(const ca_cert_spec *s, mc_sigalg alg, const mc_digests *d, uint8_t *out,
                           size_t cap, size_t *outlen, mc_errdetail *err)
{
    uint8_t serial[MC_SERIAL_LEN], ski[20];
    mc_err rc;
    if ((rc = mc_serial_generate(serial)) != MC_OK)
        return mc_err_set(err, rc, "serial", NULL, "CSPRNG failed");
    if ((rc = spki_key_id(s->spki, d, ski, err)) != MC_OK)
        return rc;
    mc_der_w w;
    mc_der_w_init(&w, out, cap);
    size_t tbs = mc_der_begin(&w, MC_DER_SEQUENCE);
    size_t v = mc_der_begin(&w, MC_DER_CTX_CONS(0));
    mc_der_put_small_uint(&w, 2);
    mc_der_end(&w, v);
    mc_der_put_uint(&w, serial, sizeof serial);
    mc_bytes a = mc_sigalg_algid(alg);
    mc_der_put_raw(&w, a.p, a.len);
    put_name(&w, s->issuer_cn, s->org);
    size_t val = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_time(&w, s->not_before);
    mc_der_put_time(&w, s->not_after);
    mc_der_end(&w, val);
    put_name(&w, s->subject_cn, s->org);
    mc_der_put_raw(&w, s->spki.p, s->spki.len);
    size_t exts = mc_der_begin(&w, MC_DER_CTX_CONS(3));
    size_t el = mc_der_begin(&w, MC_DER_SEQUENCE);
    size_t m1, m2, m;
    /* SBR 7.1.2.1(a) / 7.1.2.2(d): critical, cA true; the issuing CA gets pathLen 0 */
    ext_begin(&w, &m1, &m2, OID_BC, sizeof OID_BC, 1);
    m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_bool(&w, 1);
    if (!s->is_root)
        mc_der_put_small_uint(&w, 0);
    mc_der_end(&w, m);
    ext_end(&w, m1, m2);
    /* SBR 7.1.2.1(b) / 7.1.2.2(e): critical, keyCertSign + cRLSign; digitalSignature for OCSP */
    ext_begin(&w, &m1, &m2, OID_KU, sizeof OID_KU, 1);
    mc_der_put_named_bits(&w, KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN, 9);
    ext_end(&w, m1, m2);
    /* SBR 7.1.2.1(e) / 7.1.2.2(i) */
    ext_begin(&w, &m1, &m2, OID_SKI, sizeof OID_SKI, 0);
    mc_der_put(&w, MC_DER_OCTETSTRING, ski, sizeof ski);
    ext_end(&w, m1, m2);
    if (!s->is_root) {
        char url[MC_URL_MAX + 32];
        /* SBR 7.1.2.2(h): keyIdentifier only */
        ext_begin(&w, &m1, &m2, OID_AKI, sizeof OID_AKI, 0);
        m = mc_der_begin(&w, MC_DER_SEQUENCE);
        mc_der_put(&w, MC_DER_CTX(0), s->aki, 20);
        mc_der_end(&w, m);
        ext_end(&w, m1, m2);
        /* SBR 7.1.2.2(g): emailProtection SHALL be present, non-critical; clientAuth MAY ("other
         * values"), and without it clients refuse the clientAuth of Multipurpose leaves. Never
         * serverAuth, codeSigning, timeStamping or anyExtendedKeyUsage. */
        ext_begin(&w, &m1, &m2, OID_EKU, sizeof OID_EKU, 0);
        m = mc_der_begin(&w, MC_DER_SEQUENCE);
        mc_der_put(&w, MC_DER_OID, OID_CLIENTAUTH, sizeof OID_CLIENTAUTH);
        mc_der_put(&w, MC_DER_OID, OID_EMAILPROT, sizeof OID_EMAILPROT);
        mc_der_end(&w, m);
        ext_end(&w, m1, m2);
        /* SBR 7.1.2.2(a), 7.1.6.3: explicit reserved S/MIME policy OIDs, no anyPolicy. The
         * issuing CA may issue every current-generation type (7.1.6.1). */
        ext_begin(&w, &m1, &m2, OID_CP, sizeof OID_CP, 0);
        m = mc_der_begin(&w, MC_DER_SEQUENCE);
        for (int type = 1; type <= 4; type++)
            for (int gen = 2; gen <= 3; gen++) {
                uint8_t oid[] = {0x67, 0x81, 0x0c, 0x01, 0x05, (uint8_t)type, (uint8_t)gen};
                size_t pi = mc_der_begin(&w, MC_DER_SEQUENCE);
                mc_der_put(&w, MC_DER_OID, oid, sizeof oid);
                mc_der_end(&w, pi);
            }
        mc_der_end(&w, m);
        ext_end(&w, m1, m2);
        /* SBR 7.1.2.2(b): HTTP URL of the issuer's CRL, non-critical */
        ext_begin(&w, &m1, &m2, OID_CRLDP, sizeof OID_CRLDP, 0);
        m = mc_der_begin(&w, MC_DER_SEQUENCE);
        size_t dp = mc_der_begin(&w, MC_DER_SEQUENCE);
        size_t dpn = mc_der_begin(&w, MC_DER_CTX_CONS(0));
        size_t fn = mc_der_begin(&w, MC_DER_CTX_CONS(0));
        snprintf(url, sizeof url, "%s/root.crl", s->base_url);
        put_uri_gn(&w, url);
        mc_der_end(&w, fn);
        mc_der_end(&w, dpn);
        mc_der_end(&w, dp);
        mc_der_end(&w, m);
        ext_end(&w, m1, m2);
        /* SBR 7.1.2.2(c): caIssuers HTTP URL, non-critical */
        ext_begin(&w, &m1, &m2, OID_AIA, sizeof OID_AIA, 0);
        m = mc_der_begin(&w, MC_DER_SEQUENCE);
        size_t ad = mc_der_begin(&w, MC_DER_SEQUENCE);
        mc_der_put(&w, MC_DER_OID, OID_CAISSUERS, sizeof OID_CAISSUERS);
        snprintf(url, sizeof url, "%s/root.crt", s->base_url);
        put_uri_gn(&w, url);
        mc_der_end(&w, ad);
        mc_der_end(&w, m);
        ext_end(&w, m1, m2);
    }
    mc_der_end(&w, el);
    mc_der_end(&w, exts);
    mc_der_end(&w, tbs);
    if (w.err == MC_ERR_INVALID)
        return mc_err_set(err, w.err, "validity", "RFC 5280 4.1.2.5",
                          "a CA certificate validity time is outside the years 0000-9999");
    if (w.err != MC_OK)
        return mc_err_set(err, w.err, "tbs", NULL, "CA certificate larger than %zu bytes", cap);
    *outlen = w.len;
    return MC_OK;
}

/* Hashes and signs tbs with the key behind h, and assembles the Certificate. */
static mc_err sign_cert(mc_hsm *h, mc_sigalg alg, const mc_digests *d, const uint8_t *tbs,
                        size_t tbs_len, uint8_t *out, size_t cap, size_t *outlen, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    mc_hsm_session *s = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t md[EVP_MAX_MD_SIZE], sig[1024];
    unsigned mdlen = 0;
    size_t siglen = sizeof sig;
    const uint8_t *in = tbs;
    size_t inlen = tbs_len;
    if (!ctx) {
        rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "EVP_MD_CTX_new");
        goto done;
    }
    const EVP_MD *dg = mc_digests_for_sigalg(d, alg);
    if (dg) {
        if ((rc = mc_digest(ctx, dg, tbs, tbs_len, md, &mdlen)) != MC_OK) {
            rc = mc_crypto_err(err, "tbs", "digest");
            goto done;
        }
        in = md;
        inlen = mdlen;
    }
    if ((rc = mc_hsm_session_open(h, &s, err)) != MC_OK)
        goto done;
    if ((rc = mc_hsm_sign(s, alg, in, inlen, sig, &siglen, err)) != MC_OK)
        goto done;
    if ((rc = mc_cert_assemble(tbs, tbs_len, alg, sig, siglen, out, cap, outlen)) != MC_OK)
        rc = mc_err_set(err, rc, "certificate", NULL, "assembly failed");
done:
    mc_hsm_session_close(s);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static mc_err write_secret(const char *path, const char *value, mc_errdetail *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return mc_err_set(err, MC_ERR_IO, path, NULL, "cannot create: %s", strerror(errno));
    size_t n = strlen(value);
    ssize_t wr = write(fd, value, n);
    if (close(fd) != 0 || wr != (ssize_t)n)
        return mc_err_set(err, MC_ERR_IO, path, NULL, "write failed");
    return MC_OK;
}

static mc_err random_hex(char *out, size_t nbytes)
{
    uint8_t b[32];
    if (nbytes > sizeof b || mc_random(b, nbytes) != MC_OK)
        return MC_ERR_IO;
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    OPENSSL_cleanse(b, sizeof b);
    return MC_OK;
}

static mc_err write_pem(const char *path, const uint8_t *der, size_t len, X509 **keep,
                        mc_errdetail *err)
{
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x || p != der + len) {
        X509_free(x);
        return mc_err_set(err, MC_ERR_INTERNAL, path, NULL, "OpenSSL cannot parse what we built");
    }
    FILE *f = fopen(path, "w");
    int ok = f && PEM_write_X509(f, x);
    if (f)
        ok &= fclose(f) == 0;
    if (!ok) {
        X509_free(x);
        return mc_err_set(err, MC_ERR_IO, path, NULL, "cannot write certificate");
    }
    *keep = x;
    return MC_OK;
}

static mc_err open_key(const char *module, const char *label, const char *pin, mc_hsm **h,
                       mc_errdetail *err)
{
    char uri[256];
    snprintf(uri, sizeof uri, "pkcs11:token=%s;object=%s;type=private", TOKEN_LABEL, label);
    mc_hsm_config hc = {.module = module, .key_uri = uri, .pin = pin};
    return mc_hsm_open(&hc, h, err);
}

/* ---- BENCHMARK ONLY: one software issuing key imported into several tokens ----
 * `mailca bench --tokens N` needs the same issuing key on N tokens of its SoftHSM2, which cannot
 * copy a key generated inside a token (CKA_EXTRACTABLE false). So for the bench alone the key is
 * generated in memory with OpenSSL and written into each token with C_CreateObject (sensitive,
 * not extractable from there on); the in-memory copy is wiped. `mailca init` never does this: a
 * production issuing key is generated in, and never leaves, its HSM (HA clones are made by the
 * HSM vendor's own key replication). */

enum { RSA_N, RSA_E, RSA_D, RSA_P, RSA_Q, RSA_DP, RSA_DQ, RSA_QINV, RSA_PARTS };

typedef struct key_parts {
    CK_KEY_TYPE ckk;
    uint8_t params[16]; /* CKA_EC_PARAMS: the curve OID (RFC 8410 OID for Ed25519) */
    size_t params_len;
    uint8_t point[2 + 97]; /* CKA_EC_POINT: DER OCTET STRING of the point / raw Ed25519 key */
    size_t point_len;
    uint8_t value[48]; /* CKA_VALUE: EC private scalar / Ed25519 private key */
    size_t value_len;
    uint8_t rsa[RSA_PARTS][1025]; /* up to RSA-8192 */
    size_t rsa_len[RSA_PARTS];
} key_parts;

static const uint8_t PARAMS_P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t PARAMS_P384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t PARAMS_ED25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

static int bn_part(EVP_PKEY *k, const char *name, uint8_t *out, size_t cap, size_t pad, size_t *len)
{
    BIGNUM *bn = NULL;
    int n = EVP_PKEY_get_bn_param(k, name, &bn) ? BN_num_bytes(bn) : -1;
    int ok = n >= 0 && (size_t)n <= cap && pad <= cap &&
             BN_bn2binpad(bn, out, (int)(pad ? pad : (size_t)n)) >= 0;
    *len = pad ? pad : (size_t)n;
    BN_clear_free(bn);
    return ok;
}

/* Splits k into the PKCS#11 attributes of its private and public key objects. */
static mc_err key_parts_get(EVP_PKEY *k, mc_keytype kt, key_parts *kp, mc_errdetail *err)
{
    int ok = 0;
    uint8_t pub[97];
    size_t publen = 0;
    memset(kp, 0, sizeof *kp);
    if (kt == MC_KEY_RSA) {
        static const char *const names[RSA_PARTS] = {
            OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
            OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
            OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
            OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
        kp->ckk = CKK_RSA;
        ok = 1;
        for (int i = 0; i < RSA_PARTS; i++)
            ok &= bn_part(k, names[i], kp->rsa[i], sizeof kp->rsa[i], 0, &kp->rsa_len[i]);
    } else if (kt == MC_KEY_ED25519) {
        kp->ckk = CKK_EC_EDWARDS;
        memcpy(kp->params, PARAMS_ED25519, sizeof PARAMS_ED25519);
        kp->params_len = sizeof PARAMS_ED25519;
        kp->value_len = 32;
        publen = 32;
        ok = EVP_PKEY_get_raw_private_key(k, kp->value, &kp->value_len) &&
             EVP_PKEY_get_raw_public_key(k, pub, &publen) && kp->value_len == 32 && publen == 32;
    } else if (kt == MC_KEY_P256 || kt == MC_KEY_P384) {
        const uint8_t *prm = kt == MC_KEY_P256 ? PARAMS_P256 : PARAMS_P384;
        kp->params_len = kt == MC_KEY_P256 ? sizeof PARAMS_P256 : sizeof PARAMS_P384;
        kp->ckk = CKK_EC;
        memcpy(kp->params, prm, kp->params_len);
        size_t fl = kt == MC_KEY_P256 ? 32 : 48;
        ok =
            bn_part(k, OSSL_PKEY_PARAM_PRIV_KEY, kp->value, sizeof kp->value, fl, &kp->value_len) &&
            EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &publen) &&
            publen == 1 + 2 * fl && pub[0] == 0x04;
    } else {
        return mc_err_set(err, MC_ERR_UNSUPPORTED, "keytype", NULL,
                          "cannot import %s keys (P-256, P-384, RSA, Ed25519)",
                          mc_keytype_name(kt));
    }
    if (!ok)
        return mc_crypto_err(err, "key", "reading the software key's parts");
    if (kt != MC_KEY_RSA) {
        /* DER OCTET STRING around the point (PKCS#11 2.40 CKA_EC_POINT; SoftHSM2 does the
         * same for Ed25519) */
        kp->point[0] = 0x04;
        kp->point[1] = (uint8_t)publen;
        memcpy(kp->point + 2, pub, publen);
        kp->point_len = 2 + publen;
    }
    return MC_OK;
}

static mc_err p11_fail(mc_errdetail *err, const char *call, CK_RV rv, const char *token)
{
    return mc_err_set(err, MC_ERR_HSM_FATAL, "hsm", NULL, "%s on token '%s': %s", call, token,
                      mc_hsm_rv_name(rv));
}

static mc_err find_slot(CK_FUNCTION_LIST_PTR f, const char *token, CK_SLOT_ID *slot,
                        mc_errdetail *err)
{
    CK_ULONG n = 0;
    CK_SLOT_ID slots[64];
    CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv == CKR_OK && n > 64)
        n = 64;
    if (rv == CKR_OK)
        rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return p11_fail(err, "C_GetSlotList", rv, token);
    char want[32];
    memset(want, ' ', sizeof want);
    memcpy(want, token, strlen(token));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            memcmp(ti.label, want, sizeof want) == 0) {
            *slot = slots[i];
            return MC_OK;
        }
    }
    return mc_err_set(err, MC_ERR_HSM_FATAL, "hsm", NULL, "no token labelled '%s'", token);
}

/* Writes the private and public key objects of kp into the token labelled token. */
static mc_err import_into(CK_FUNCTION_LIST_PTR f, const char *token, const char *pin,
                          const key_parts *kp, const char *label, const uint8_t *id, size_t idlen,
                          mc_errdetail *err)
{
    mc_err rc = MC_OK;
    CK_SLOT_ID slot = 0;
    CK_SESSION_HANDLE sh = 0;
    if ((rc = find_slot(f, token, &slot, err)) != MC_OK)
        return rc;
    CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sh);
    if (rv != CKR_OK)
        return p11_fail(err, "C_OpenSession", rv, token);
    rv = f->C_Login(sh, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        rc = p11_fail(err, "C_Login", rv, token);
        goto done;
    }
    CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE ckk = kp->ckk;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE priv[20] = {
        {CKA_CLASS, &priv_cls, sizeof priv_cls},
        {CKA_KEY_TYPE, &ckk, sizeof ckk},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &yes, sizeof yes},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)id, idlen},
    };
    CK_ATTRIBUTE pub[12] = {
        {CKA_CLASS, &pub_cls, sizeof pub_cls},
        {CKA_KEY_TYPE, &ckk, sizeof ckk},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_VERIFY, &yes, sizeof yes},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)id, idlen},
    };
    CK_ULONG npriv = 9, npub = 6;
    if (kp->ckk == CKK_RSA) {
        static const CK_ATTRIBUTE_TYPE types[RSA_PARTS] = {
            CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
            CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT};
        for (int i = 0; i < RSA_PARTS; i++)
            priv[npriv++] = (CK_ATTRIBUTE){types[i], (void *)kp->rsa[i], kp->rsa_len[i]};
        pub[npub++] = (CK_ATTRIBUTE){CKA_MODULUS, (void *)kp->rsa[RSA_N], kp->rsa_len[RSA_N]};
        pub[npub++] =
            (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, (void *)kp->rsa[RSA_E], kp->rsa_len[RSA_E]};
    } else {
        priv[npriv++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)kp->params, kp->params_len};
        priv[npriv++] = (CK_ATTRIBUTE){CKA_VALUE, (void *)kp->value, kp->value_len};
        pub[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)kp->params, kp->params_len};
        pub[npub++] = (CK_ATTRIBUTE){CKA_EC_POINT, (void *)kp->point, kp->point_len};
    }
    CK_OBJECT_HANDLE h;
    if ((rv = f->C_CreateObject(sh, priv, npriv, &h)) != CKR_OK) {
        rc = p11_fail(err, "C_CreateObject (private key)", rv, token);
        goto done;
    }
    if ((rv = f->C_CreateObject(sh, pub, npub, &h)) != CKR_OK)
        rc = p11_fail(err, "C_CreateObject (public key)", rv, token);
done:
    f->C_CloseSession(sh); /* no C_Logout: the login belongs to the token */
    return rc;
}

/* The label of bench token i: mailca, mailca-2, mailca-3, ... */
static void token_label(char *buf, size_t cap, int i)
{
    if (i == 0)
        snprintf(buf, cap, "%s", TOKEN_LABEL);
    else
        snprintf(buf, cap, "%s-%d", TOKEN_LABEL, i + 1);
}

/* BENCHMARK ONLY (see above): one software key of type kt into tokens 0..ntokens-1, with the
 * same label and id on each. Runs while no mc_hsm of this process holds the module (mc_ca_init
 * opens its keys afterwards), so it initialises and finalises the module itself. */
static mc_err bench_import_key(const char *module, int ntokens, const char *pin, mc_keytype kt,
                               unsigned rsa_bits, const char *label, const uint8_t *id,
                               size_t idlen, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    void *dl = NULL;
    int inited = 0;
    CK_FUNCTION_LIST_PTR f = NULL;
    key_parts *kp = OPENSSL_secure_zalloc(sizeof *kp);
    EVP_PKEY *k = mc_crypto_keygen(kt, rsa_bits);
    if (!kp || !k) {
        rc = mc_crypto_err(err, "key", "software key generation");
        goto done;
    }
    if ((rc = key_parts_get(k, kt, kp, err)) != MC_OK)
        goto done;
    if (!(dl = dlopen(module, RTLD_NOW | RTLD_LOCAL))) {
        rc = mc_err_set(err, MC_ERR_HSM_FATAL, "module", NULL, "dlopen %s: %s", module, dlerror());
        goto done;
    }
    CK_C_GetFunctionList gfl;
    *(void **)&gfl = dlsym(dl, "C_GetFunctionList");
    if (!gfl || gfl(&f) != CKR_OK || !f) {
        rc = mc_err_set(err, MC_ERR_HSM_FATAL, "module", NULL, "%s: no C_GetFunctionList", module);
        goto done;
    }
    CK_C_INITIALIZE_ARGS args = {0};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        rc = p11_fail(err, "C_Initialize", rv, "-");
        goto done;
    }
    inited = rv == CKR_OK;
    for (int i = 0; i < ntokens && rc == MC_OK; i++) {
        char tok[40];
        token_label(tok, sizeof tok, i);
        rc = import_into(f, tok, pin, kp, label, id, idlen, err);
    }
done:
    if (inited)
        f->C_Finalize(NULL);
#if !defined(__SANITIZE_ADDRESS__)
    if (dl) /* sanitizer builds keep it mapped, as engine/hsm.c does (tests/lsan.supp) */
        dlclose(dl);
#endif
    OPENSSL_secure_clear_free(kp, sizeof *kp);
    EVP_PKEY_free(k);
    return rc;
}

/* dir/name into a config path field; the caller checked dir's length up front. */
static void join(char *dst, size_t cap, const char *dir, const char *name)
{
    if (snprintf(dst, cap, "%s%s%s", dir, name[0] ? "/" : "", name) >= (int)cap)
        dst[0] = '\0';
}

static mc_sigalg default_sigalg(mc_keytype k)
{
    switch (k) {
    case MC_KEY_P256:
        return MC_SIG_ECDSA_SHA256;
    case MC_KEY_P384:
        return MC_SIG_ECDSA_SHA384;
    case MC_KEY_P521:
        return MC_SIG_ECDSA_SHA512;
    case MC_KEY_RSA:
        return MC_SIG_RSA_PKCS1_SHA256;
    case MC_KEY_ED25519:
        return MC_SIG_ED25519;
    default:
        return MC_SIG_NONE;
    }
}

/* SBR 5.4.1 1.i: the CA keys' generation (inside the token, non-extractable) and the CA
 * certificates made with them, as the store's first audit record. */
static mc_err audit_init(const mc_config *c, const mc_digests *d, const mc_ca_init_opts *o,
                         mc_keytype root_kt, mc_sigalg iss_alg, int ntokens, const char *root_cn,
                         const char *iss_cn, const uint8_t *root_der, size_t root_len,
                         const uint8_t *iss_der, size_t iss_len, mc_errdetail *err)
{
    mc_store *s = NULL;
    mc_audit_json j;
    uint8_t h[2][32];
    char hex[2][65];
    unsigned hl = 0;
    for (int k = 0; k < 2; k++) {
        if (EVP_Digest(k ? iss_der : root_der, k ? iss_len : root_len, h[k], &hl, d->sha256,
                       NULL) != 1)
            return mc_crypto_err(err, NULL, "SHA-256");
        for (int i = 0; i < 32; i++)
            snprintf(hex[k] + 2 * i, 3, "%02x", h[k][i]);
    }
    mc_audit_json_begin(&j);
    mc_audit_json_str(&j, "org", o->org);
    mc_audit_json_str(&j, "root_subject_cn", root_cn);
    mc_audit_json_str(&j, "root_key", mc_keytype_name(root_kt));
    mc_audit_json_str(&j, "root_key_label", ROOT_LABEL);
    mc_audit_json_str(&j, "root_sha256", hex[0]);
    mc_audit_json_str(&j, "issuing_subject_cn", iss_cn);
    mc_audit_json_str(&j, "issuing_key", mc_keytype_name(o->keytype));
    mc_audit_json_str(&j, "issuing_key_label", ISSUING_LABEL);
    mc_audit_json_str(&j, "issuing_signature", mc_sigalg_name(iss_alg));
    mc_audit_json_str(&j, "issuing_sha256", hex[1]);
    mc_audit_json_int(&j, "tokens", ntokens);
    mc_audit_json_str(&j, "keys",
                      o->bench_tokens > 1
                          ? "root generated in the token; issuing key imported into "
                            "each token (bench only)"
                          : "generated in the token, non-extractable");
    mc_audit_json_str(&j, "base_url", o->base_url);
    const char *detail = mc_audit_json_end(&j);
    mc_err rc = MC_OK;
    if (!detail)
        rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "audit: ca.init");
    else if ((rc = mc_store_open(c->store_sqlite, &s, err)) == MC_OK)
        rc = mc_audit_record(s, "ca.init", iss_cn, detail, err);
    mc_store_close(s);
    mc_audit_json_free(&j);
    return rc;
}

mc_err mc_ca_init(const mc_ca_init_opts *o, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    char dir[PATH_MAX], path[PATH_MAX + 64], pin[40] = "", so_pin[40] = "";
    mc_hsm *root = NULL, *iss = NULL;
    mc_digests d = {0};
    X509 *root_x = NULL, *iss_x = NULL;
    EVP_PKEY *root_pub = NULL;
    uint8_t tbs[4096], root_der[6144], iss_der[6144];
    size_t tbs_len = 0, root_len = 0, iss_len = 0;
    const char *module = o->module ? o->module : MAILCA_SOFTHSM2_MODULE;
    mc_keytype root_kt = o->root_keytype ? o->root_keytype : o->keytype;
    unsigned rsa_bits = o->rsa_bits ? o->rsa_bits : 2048;
    int ntokens = o->bench_tokens > 1 ? o->bench_tokens : 1;
    mc_sigalg iss_alg = o->sigalg ? o->sigalg : default_sigalg(o->keytype);

    /* SBR 7.1.3.2: the signature algorithm must be one allowed for the issuing key's type */
    if (mc_sigalg_keytype(iss_alg) != o->keytype) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "ca.signature", "SBR 7.1.3.2",
                        "signature algorithm %s does not fit a %s issuing key",
                        mc_sigalg_name(iss_alg), mc_keytype_name(o->keytype));
        goto done;
    }
    if (o->bench_tokens < 0 || o->bench_tokens > MC_CA_BENCH_TOKENS_MAX) {
        rc = mc_err_set(err, MC_ERR_INVALID, "bench_tokens", NULL, "%d tokens: 0..%d",
                        o->bench_tokens, MC_CA_BENCH_TOKENS_MAX);
        goto done;
    }

    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
        rc = mc_err_set(err, MC_ERR_IO, o->dir, NULL, "mkdir: %s", strerror(errno));
        goto done;
    }
    if (!realpath(o->dir, dir)) {
        rc = mc_err_set(err, MC_ERR_IO, o->dir, NULL, "realpath: %s", strerror(errno));
        goto done;
    }
    if (strlen(dir) > 400) {
        rc = mc_err_set(err, MC_ERR_CONFIG, o->dir, NULL, "path longer than 400 bytes");
        goto done;
    }
    snprintf(path, sizeof path, "%s/mailca.yaml", dir);
    if (access(path, F_OK) == 0) {
        rc = mc_err_set(err, MC_ERR_CONFIG, path, NULL,
                        "a CA already exists here; choose another folder or remove it");
        goto done;
    }
    /* A private SoftHSM2 configuration: never the system one. */
    snprintf(path, sizeof path, "%s/tokens", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        rc = mc_err_set(err, MC_ERR_IO, path, NULL, "mkdir: %s", strerror(errno));
        goto done;
    }
    snprintf(path, sizeof path, "%s/softhsm2.conf", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        rc = mc_err_set(err, MC_ERR_IO, path, NULL, "cannot write: %s", strerror(errno));
        goto done;
    }
    fprintf(f,
            "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
            "slots.removable = false\n",
            dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", path, 1);

    if (random_hex(pin, 16) != MC_OK || random_hex(so_pin, 16) != MC_OK) {
        rc = mc_err_set(err, MC_ERR_IO, "pin", NULL, "CSPRNG failed");
        goto done;
    }
    snprintf(path, sizeof path, "%s/pin", dir);
    if ((rc = write_secret(path, pin, err)) != MC_OK)
        goto done;
    snprintf(path, sizeof path, "%s/so-pin", dir);
    if ((rc = write_secret(path, so_pin, err)) != MC_OK)
        goto done;

    for (int i = 0; i < ntokens; i++) {
        char tok[40];
        token_label(tok, sizeof tok, i);
        if ((rc = mc_hsm_token_init(module, tok, so_pin, pin, err)) != MC_OK)
            goto done;
    }
    const uint8_t root_id[] = {0x01}, iss_id[] = {0x02};
    if ((rc = mc_hsm_keygen(module, TOKEN_LABEL, pin, root_kt, rsa_bits, ROOT_LABEL, root_id, 1,
                            err)) != MC_OK)
        goto done;
    if (ntokens == 1)
        rc = mc_hsm_keygen(module, TOKEN_LABEL, pin, o->keytype, rsa_bits, ISSUING_LABEL, iss_id, 1,
                           err);
    else /* the bench only: see bench_import_key */
        rc = bench_import_key(module, ntokens, pin, o->keytype, rsa_bits, ISSUING_LABEL, iss_id, 1,
                              err);
    if (rc != MC_OK)
        goto done;
    if ((rc = open_key(module, ROOT_LABEL, pin, &root, err)) != MC_OK ||
        (rc = open_key(module, ISSUING_LABEL, pin, &iss, err)) != MC_OK)
        goto done;
    if ((rc = mc_digests_fetch(&d, err)) != MC_OK)
        goto done;

    int64_t now = (int64_t)time(NULL);
    uint8_t root_ski[20];
    if ((rc = spki_key_id(mc_hsm_spki(root), &d, root_ski, err)) != MC_OK)
        goto done;
    char root_cn[128], iss_cn[128];
    snprintf(root_cn, sizeof root_cn, "%s S/MIME Root CA", o->org);
    snprintf(iss_cn, sizeof iss_cn, "%s S/MIME Issuing CA %s", o->org, mc_keytype_name(o->keytype));
    /* an RSA root signs with the issuing CA's RSA scheme (PKCS#1 v1.5 or PSS) */
    mc_sigalg root_alg = root_kt == o->keytype ? iss_alg : default_sigalg(root_kt);
    ca_cert_spec rs = {.subject_cn = root_cn,
                       .issuer_cn = root_cn,
                       .spki = mc_hsm_spki(root),
                       .not_before = now - 3600,
                       .not_after = now + 20LL * 365 * 86400,
                       .is_root = 1,
                       .base_url = o->base_url,
                       .org = o->org};
    if ((rc = build_ca_tbs(&rs, root_alg, &d, tbs, sizeof tbs, &tbs_len, err)) != MC_OK ||
        (rc = sign_cert(root, root_alg, &d, tbs, tbs_len, root_der, sizeof root_der, &root_len,
                        err)) != MC_OK)
        goto done;
    ca_cert_spec is = {.subject_cn = iss_cn,
                       .issuer_cn = root_cn,
                       .spki = mc_hsm_spki(iss),
                       .aki = root_ski,
                       .not_before = now - 3600,
                       .not_after = now + 10LL * 365 * 86400,
                       .base_url = o->base_url,
                       .org = o->org};
    if ((rc = build_ca_tbs(&is, root_alg, &d, tbs, sizeof tbs, &tbs_len, err)) != MC_OK ||
        (rc = sign_cert(root, root_alg, &d, tbs, tbs_len, iss_der, sizeof iss_der, &iss_len,
                        err)) != MC_OK)
        goto done;

    snprintf(path, sizeof path, "%s/root.pem", dir);
    if ((rc = write_pem(path, root_der, root_len, &root_x, err)) != MC_OK)
        goto done;
    snprintf(path, sizeof path, "%s/issuing-ca.pem", dir);
    if ((rc = write_pem(path, iss_der, iss_len, &iss_x, err)) != MC_OK)
        goto done;
    /* Verify both signatures with OpenSSL before declaring the CA ready. */
    root_pub = X509_get_pubkey(root_x);
    if (!root_pub || X509_verify(root_x, root_pub) != 1 || X509_verify(iss_x, root_pub) != 1) {
        rc = mc_err_set(err, MC_ERR_CRYPTO, "certificate", NULL,
                        "a CA certificate signed through the HSM does not verify");
        goto done;
    }

    mc_config c;
    mc_config_defaults(&c);
    join(c.dir, sizeof c.dir, dir, "");
    snprintf(c.hsm_module, sizeof c.hsm_module, "%s", module);
    size_t kl = 0;
    for (int i = 0; i < ntokens; i++) {
        char tok[40];
        token_label(tok, sizeof tok, i);
        kl += (size_t)snprintf(c.hsm_key + kl, sizeof c.hsm_key - kl,
                               "%spkcs11:token=%s;object=%s;type=private", i ? " " : "", tok,
                               ISSUING_LABEL);
    }
    join(c.hsm_pin_file, sizeof c.hsm_pin_file, dir, "pin");
    join(c.softhsm2_conf, sizeof c.softhsm2_conf, dir, "softhsm2.conf");
    join(c.ca_certificate, sizeof c.ca_certificate, dir, "issuing-ca.pem");
    join(c.ca_root, sizeof c.ca_root, dir, "root.pem");
    snprintf(c.ca_signature, sizeof c.ca_signature, "%s", mc_sigalg_name(iss_alg));
    snprintf(c.ca_crl_url, sizeof c.ca_crl_url, "%s/issuing-ca.crl", o->base_url);
    snprintf(c.ca_ocsp_url, sizeof c.ca_ocsp_url, "%s/ocsp", o->base_url);
    snprintf(c.ca_issuers_url, sizeof c.ca_issuers_url, "%s/issuing-ca.crt", o->base_url);
    snprintf(c.ca_cps_url, sizeof c.ca_cps_url, "%s/cps", o->base_url);
    join(c.store_sqlite, sizeof c.store_sqlite, dir, "mailca.db");
    /* A new CA enforces every lint of this build; lints a later upgrade adds warn until the
     * operator raises this (docs: README, lint.enforced_set). */
    snprintf(c.lint_enforced_set, sizeof c.lint_enforced_set, "%s", MC_LINT_SET_VERSION);
    snprintf(path, sizeof path, "%s/mailca.yaml", dir);
    if ((rc = mc_config_write(&c, path, err)) != MC_OK)
        goto done;
    rc = audit_init(&c, &d, o, root_kt, iss_alg, ntokens, root_cn, iss_cn, root_der, root_len,
                    iss_der, iss_len, err);
done:
    OPENSSL_cleanse(pin, sizeof pin);
    OPENSSL_cleanse(so_pin, sizeof so_pin);
    EVP_PKEY_free(root_pub);
    X509_free(root_x);
    X509_free(iss_x);
    mc_hsm_close(iss);
    mc_hsm_close(root);
    mc_digests_free(&d);
    return rc;
}

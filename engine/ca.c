/*
 * `mailca init`: a ready CA on SoftHSM2. Certificates for the root and the issuing CA are built
 * with the same DER writer as subscriber certificates and signed inside the token; OpenSSL then
 * re-parses and verifies them before anything is written as final (state is committed only once
 * nothing else can fail).
 */
#include "mailca/ca.h"

#include "mailca/config.h"
#include "mailca/crypto.h"
#include "mailca/der.h"
#include "mailca/hsm.h"
#include "mailca/tbs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

    if ((rc = mc_hsm_token_init(module, TOKEN_LABEL, so_pin, pin, err)) != MC_OK)
        goto done;
    const uint8_t root_id[] = {0x01}, iss_id[] = {0x02};
    if ((rc = mc_hsm_keygen(module, TOKEN_LABEL, pin, root_kt, rsa_bits, ROOT_LABEL, root_id, 1,
                            err)) != MC_OK ||
        (rc = mc_hsm_keygen(module, TOKEN_LABEL, pin, o->keytype, rsa_bits, ISSUING_LABEL, iss_id,
                            1, err)) != MC_OK)
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
    mc_sigalg root_alg = default_sigalg(root_kt);
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
    snprintf(c.hsm_key, sizeof c.hsm_key, "pkcs11:token=%s;object=%s;type=private", TOKEN_LABEL,
             ISSUING_LABEL);
    join(c.hsm_pin_file, sizeof c.hsm_pin_file, dir, "pin");
    join(c.softhsm2_conf, sizeof c.softhsm2_conf, dir, "softhsm2.conf");
    join(c.ca_certificate, sizeof c.ca_certificate, dir, "issuing-ca.pem");
    join(c.ca_root, sizeof c.ca_root, dir, "root.pem");
    snprintf(c.ca_signature, sizeof c.ca_signature, "%s",
             mc_sigalg_name(default_sigalg(o->keytype)));
    snprintf(c.ca_crl_url, sizeof c.ca_crl_url, "%s/issuing-ca.crl", o->base_url);
    snprintf(c.ca_ocsp_url, sizeof c.ca_ocsp_url, "%s/ocsp", o->base_url);
    snprintf(c.ca_issuers_url, sizeof c.ca_issuers_url, "%s/issuing-ca.crt", o->base_url);
    snprintf(c.ca_cps_url, sizeof c.ca_cps_url, "%s/cps", o->base_url);
    join(c.store_sqlite, sizeof c.store_sqlite, dir, "mailca.db");
    snprintf(path, sizeof path, "%s/mailca.yaml", dir);
    rc = mc_config_write(&c, path, err);
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

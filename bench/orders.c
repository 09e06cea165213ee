/*
 * Order generator for the bench harness and `mailca gen-orders`: realistic orders (one mailbox
 * each, spread round-robin over N domains org<k>.<suffix>, 20 under example.com by default, a CSR
 * per order from a pool of software keys). Key generation is the slow part, hence the pool; every
 * order still carries a CSR that the engine verifies.
 */

#include "mailca/cli.h"

#include "mailca/crypto.h"
#include "mailca/der.h"
#include "mailca/wire.h"

#include <msgpack.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int mc_keyspec_parse(const char *s, mc_keytype *kt, unsigned *rsa_bits)
{
    *rsa_bits = 0;
    if (strcmp(s, "p256") == 0)
        *kt = MC_KEY_P256;
    else if (strcmp(s, "p384") == 0)
        *kt = MC_KEY_P384;
    else if (strcmp(s, "p521") == 0)
        *kt = MC_KEY_P521;
    else if (strcmp(s, "ed25519") == 0)
        *kt = MC_KEY_ED25519;
    else if (strcmp(s, "ed448") == 0)
        *kt = MC_KEY_ED448;
    else if (strncmp(s, "rsa", 3) == 0 && atoi(s + 3) >= 1024) {
        *kt = MC_KEY_RSA;
        *rsa_bits = (unsigned)atoi(s + 3);
    } else
        return 0;
    return 1;
}

int mc_issuer_keyspec_parse(const char *s, mc_keytype *kt, unsigned *rsa_bits, mc_sigalg *sig)
{
    char spec[32];
    size_t n = strlen(s);
    *sig = MC_SIG_NONE;
    if (n >= sizeof spec)
        return 0;
    memcpy(spec, s, n + 1);
    if (n > 4 && strcmp(spec + n - 4, "-pss") == 0) {
        spec[n - 4] = '\0';
        *sig = MC_SIG_RSA_PSS_SHA256;
    }
    if (!mc_keyspec_parse(spec, kt, rsa_bits))
        return 0;
    if (*sig != MC_SIG_NONE && *kt != MC_KEY_RSA)
        return 0;
    /* SBR 7.1.3.1: RSA of at least 2048 bits; P-521 and Ed448 have no SoftHSM2-generated issuing
     * key here (Ed448 is a subscriber key type only) */
    return *kt == MC_KEY_P256 || *kt == MC_KEY_P384 || *kt == MC_KEY_ED25519 ||
           (*kt == MC_KEY_RSA && *rsa_bits >= 2048 && *rsa_bits % 8 == 0);
}

void mc_orders_id_prefix(char *buf, size_t len, const char *tag)
{
    uint8_t r[8] = {0};
    (void)mc_random(r, sizeof r); /* on failure the ids still differ within the file */
    snprintf(buf, len, "%s-%02x%02x%02x%02x%02x%02x%02x%02x", tag, r[0], r[1], r[2], r[3], r[4],
             r[5], r[6], r[7]);
}

static int make_csr(EVP_PKEY *k, mc_keytype kt, const EVP_MD *md, uint8_t **der, int *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    int ok = req && n && X509_REQ_set_version(req, 0) &&
             X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"subscriber",
                                        -1, -1, 0) &&
             X509_REQ_set_subject_name(req, n) && X509_REQ_set_pubkey(req, k) &&
             X509_REQ_sign(req, k, kt == MC_KEY_ED25519 || kt == MC_KEY_ED448 ? NULL : md) > 0;
    *der = NULL;
    if (ok)
        ok = (*len = i2d_X509_REQ(req, der)) > 0;
    X509_NAME_free(n);
    X509_REQ_free(req);
    return ok;
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_str(pk, strlen(v));
    msgpack_pack_str_body(pk, v, strlen(v));
}

static void pack_key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

mc_err mc_orders_generate(FILE *out, uint64_t n, mc_keytype kt, unsigned rsa_bits, mc_key_form form,
                          const char *profile, const char *usage, const char *id_prefix,
                          unsigned pool_size, mc_errdetail *err)
{
    return mc_orders_generate_domains(out, n, kt, rsa_bits, form, profile, usage, id_prefix,
                                      pool_size, MC_ORDERS_DOMAINS_DEFAULT,
                                      MC_ORDERS_SUFFIX_DEFAULT, err);
}

/* 1 when s is a plausible LDH domain name of at most max bytes (labels 1..63). */
static int suffix_ok(const char *s, size_t max)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > max || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

mc_err mc_orders_generate_domains(FILE *out, uint64_t n, mc_keytype kt, unsigned rsa_bits,
                                  mc_key_form form, const char *profile, const char *usage,
                                  const char *id_prefix, unsigned pool_size, unsigned n_domains,
                                  const char *domain_suffix, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    uint8_t **csr = NULL;
    int *csr_len = NULL;
    EVP_MD *sha256 = NULL;
    /* "org" + up to 10 digits + "." + suffix stays a domain name (253 bytes) */
    if (n_domains == 0 || !suffix_ok(domain_suffix, 253 - 14)) {
        rc = mc_err_set(err, MC_ERR_INVALID, "domains", NULL,
                        "%u domains under \"%.80s\": need at least one domain and a suffix of "
                        "LDH labels",
                        n_domains, domain_suffix);
        goto done;
    }
    csr = calloc(pool_size, sizeof *csr);
    csr_len = calloc(pool_size, sizeof *csr_len);
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); /* fetched once, not per CSR */
    if (!csr || !csr_len || !sha256) {
        rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "CSR pool");
        goto done;
    }
    for (unsigned i = 0; i < pool_size; i++) {
        EVP_PKEY *k = mc_crypto_keygen(kt, rsa_bits);
        int ok = k && (form == MC_KEY_FORM_CSR ? make_csr(k, kt, sha256, &csr[i], &csr_len[i])
                                               : (csr_len[i] = i2d_PUBKEY(k, &csr[i])) > 0);
        EVP_PKEY_free(k);
        if (!ok) {
            rc = mc_err_set(err, MC_ERR_CRYPTO, "key", NULL, "cannot generate a %s key/CSR",
                            mc_keytype_name(kt));
            goto done;
        }
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mc_wire_file_write);
    long long validated = (long long)time(NULL) - 3600;
    char buf[256];
    for (uint64_t i = 0; i < n; i++) {
        msgpack_pack_map(&pk, form == MC_KEY_FORM_CSR ? 6 : 7);
        snprintf(buf, sizeof buf, "%s-%llu", id_prefix, (unsigned long long)i);
        pack_kv_str(&pk, "id", buf);
        pack_kv_str(&pk, "account", "acct-bench-platform");
        pack_kv_str(&pk, "profile", profile);
        pack_kv_str(&pk, "usage", usage);
        pack_key(&pk, "mailboxes");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 4);
        snprintf(buf, sizeof buf, "user%llu@org%llu.%s", (unsigned long long)i,
                 (unsigned long long)(i % n_domains), domain_suffix);
        pack_kv_str(&pk, "address", buf);
        pack_kv_str(&pk, "method", "3.2.2.2");
        pack_key(&pk, "validated_at");
        msgpack_pack_int64(&pk, validated);
        snprintf(buf, sizeof buf, "email-rv-%llu", (unsigned long long)i);
        pack_kv_str(&pk, "reference", buf);
        unsigned j = (unsigned)(i % pool_size);
        if (form == MC_KEY_FORM_PUBLIC_KEY) {
            pack_kv_str(&pk, "key_source", "platform-generated");
            pack_key(&pk, "public_key");
        } else {
            pack_key(&pk, "csr");
        }
        msgpack_pack_bin(&pk, (size_t)csr_len[j]);
        msgpack_pack_bin_body(&pk, csr[j], (size_t)csr_len[j]);
    }
    if (fflush(out) != 0 || ferror(out))
        rc = mc_err_set(err, MC_ERR_IO, "orders", NULL, "write failed");
done:
    for (unsigned i = 0; csr && i < pool_size; i++)
        OPENSSL_free(csr[i]);
    free(csr);
    free(csr_len);
    EVP_MD_free(sha256);
    return rc;
}

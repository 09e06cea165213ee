/*
 * Test helpers: subscriber keys and CSRs made by OpenSSL's own API (so that mailca's parser is
 * checked against an independent encoder), and orders packed from a C struct (see csrgen.h).
 */
#include "support/csrgen.h"

#include "mailca/crypto.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

EVP_PKEY *mc_csrgen_key(mc_keytype type, unsigned rsa_bits)
{
    return mc_crypto_keygen(type, rsa_bits);
}

static const char *default_digest(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
        return NULL;
    if (EVP_PKEY_is_a(key, "EC")) {
        int bits = EVP_PKEY_get_bits(key);
        return bits > 384 ? "SHA512" : bits > 256 ? "SHA384" : "SHA256";
    }
    return "SHA256";
}

uint8_t *mc_csrgen_csr(EVP_PKEY *key, const char *digest, unsigned flags, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *out = NULL;
    if (!req || !name || !mctx || !key)
        goto done;
    if (!digest)
        digest = default_digest(key);
    if (X509_REQ_set_version(req, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"mailca test",
                                   -1, -1, 0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1)
        goto done;
    if (EVP_DigestSignInit_ex(mctx, &pctx, digest, NULL, NULL, key, NULL) != 1)
        goto done;
    if ((flags & MC_CSRGEN_PSS) &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        goto done;
    if (X509_REQ_sign_ctx(req, mctx) <= 0)
        goto done;
    int n = i2d_X509_REQ(req, NULL);
    if (n <= 0 || !(out = malloc((size_t)n)))
        goto done;
    unsigned char *p = out;
    i2d_X509_REQ(req, &p);
    *len = (size_t)n;
done:
    EVP_MD_CTX_free(mctx);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return out;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
    return pack_str(pk, k) || pack_str(pk, v);
}

int mc_csrgen_order_pack(const mc_csrgen_order *o, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    size_t n = !!o->id + !!o->account + !!o->profile + !!o->usage + !!o->mailboxes + !!o->csr +
               !!o->replaces + (o->org_validated_at || o->individual_validated_at);
    int bad = msgpack_pack_map(&pk, n);
    if (o->id)
        bad |= pack_kv(&pk, "id", o->id);
    if (o->account)
        bad |= pack_kv(&pk, "account", o->account);
    if (o->profile)
        bad |= pack_kv(&pk, "profile", o->profile);
    if (o->usage)
        bad |= pack_kv(&pk, "usage", o->usage);
    if (o->mailboxes) {
        bad |= pack_str(&pk, "mailboxes") || msgpack_pack_array(&pk, o->n_mailboxes);
        for (size_t i = 0; i < o->n_mailboxes; i++) {
            const mc_csrgen_mailbox *m = &o->mailboxes[i];
            bad |= msgpack_pack_map(&pk, !!m->address + !!m->method + !!m->validated_at +
                                             !!m->reference);
            if (m->address)
                bad |= pack_kv(&pk, "address", m->address);
            if (m->method)
                bad |= pack_kv(&pk, "method", m->method);
            if (m->validated_at)
                bad |= pack_str(&pk, "validated_at") || msgpack_pack_int64(&pk, m->validated_at);
            if (m->reference)
                bad |= pack_kv(&pk, "reference", m->reference);
        }
    }
    if (o->csr)
        bad |= pack_str(&pk, "csr") || msgpack_pack_bin(&pk, o->csr_len) ||
               msgpack_pack_bin_body(&pk, o->csr, o->csr_len);
    if (o->replaces)
        bad |= pack_kv(&pk, "replaces", o->replaces);
    if (o->org_validated_at || o->individual_validated_at) {
        bad |= pack_str(&pk, "identity") ||
               msgpack_pack_map(&pk, !!o->org_validated_at + !!o->individual_validated_at);
        if (o->org_validated_at)
            bad |= pack_str(&pk, "organization") || msgpack_pack_map(&pk, 2) ||
                   pack_str(&pk, "validated_at") || msgpack_pack_int64(&pk, o->org_validated_at) ||
                   pack_kv(&pk, "reference", "org-identity-test");
        if (o->individual_validated_at)
            bad |= pack_str(&pk, "individual") || msgpack_pack_map(&pk, 2) ||
                   pack_str(&pk, "validated_at") ||
                   msgpack_pack_int64(&pk, o->individual_validated_at) ||
                   pack_kv(&pk, "reference", "individual-identity-test");
    }
    return bad ? -1 : 0;
}

void mc_csrgen_order_identity(mc_csrgen_order *o, int64_t at)
{
    const char *p = o->profile ? o->profile : "";
    int org = strncmp(p, "organization-", 13) == 0 || strncmp(p, "sponsor-", 8) == 0;
    int ind = strncmp(p, "individual-", 11) == 0 || strncmp(p, "sponsor-", 8) == 0;
    o->org_validated_at = org ? at : 0;
    o->individual_validated_at = ind ? at : 0;
}

/*
 * Unit tests for mc_ct (engine/ct.c) and the test log (bench/ctlog.c):
 * - Merkle tree hashes against the RFC 6962 test vectors of the certificate-transparency
 *   project (also recomputed independently with Python's hashlib), audit paths built by the
 *   test log (RFC 6962 2.1.1, recursive) checked by the engine (RFC 9162 2.1.3.2, iterative),
 *   with tampered paths, other indexes and short paths failing;
 * - SCT signatures (RFC 6962 3.2): hand-built signed data signed here, verified by the engine;
 *   every field that is signed, changed, fails; SCTs from the test log verified by the engine
 *   AND by OpenSSL's CT code (SCT_validate), for x509 and precert entries;
 * - the answer JSON, serialized SCTs, base64, configuration (key kinds, LogID), profile opt-in;
 * - the retry policy: classification, back-off schedule with jitter bounds, Retry-After;
 * - the drainer against the test log with a SQLite store: many submissions in flight on reused
 *   keep-alive connections, a hung log (timeout), a bad signature, a log no longer configured,
 *   idempotent enqueueing, claim leases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailca/ct.h"
#include "mailca/store.h"
#include "ctlog.h" /* bench/ctlog.h: the RFC 6962 log server */
#include "support/itutil.h"

/* --- helpers ------------------------------------------------------------------------------ */

static void hex2bin(const char *h, uint8_t *out)
{
    for (size_t i = 0; h[2 * i]; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

/* A small CA and certificates built with OpenSSL's object API (test only). */
typedef struct tca {
    EVP_PKEY *key;
    X509 *cert;
    uint8_t *der;
    size_t der_len;
} tca;

static X509 *cert_new(EVP_PKEY *subject_key, const char *cn, const uint8_t *serial, size_t sl)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    BIGNUM *bn = BN_bin2bn(serial, (int)sl, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_NAME_free(n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, subject_key);
    return x;
}

static uint8_t *x509_der(X509 *x, size_t *len)
{
    uint8_t *d = NULL;
    int n = i2d_X509(x, &d);
    assert_true(n > 0);
    uint8_t *c = malloc((size_t)n);
    memcpy(c, d, (size_t)n);
    OPENSSL_free(d);
    *len = (size_t)n;
    return c;
}

static void tca_make(tca *ca)
{
    static const uint8_t one = 1;
    ca->key = EVP_EC_gen("P-256");
    assert_non_null(ca->key);
    ca->cert = cert_new(ca->key, "CT Test CA", &one, 1);
    X509_set_issuer_name(ca->cert, X509_get_subject_name(ca->cert));
    assert_true(X509_sign(ca->cert, ca->key, EVP_sha256()) > 0);
    ca->der = x509_der(ca->cert, &ca->der_len);
}

static void tca_free(tca *ca)
{
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca->der);
}

/* A leaf (precert: with the critical poison extension) with EKU emailProtection. */
static uint8_t *leaf_make(const tca *ca, const uint8_t *serial, size_t sl, int precert, size_t *len)
{
    X509 *x = cert_new(ca->key, "alice@example.com", serial, sl);
    X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
    X509V3_CTX v;
    X509V3_set_ctx(&v, ca->cert, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, NID_ext_key_usage, "emailProtection");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (precert) {
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        static const uint8_t null_der[] = {0x05, 0x00};
        ASN1_OCTET_STRING_set(os, null_der, 2);
        e = X509_EXTENSION_create_by_NID(NULL, NID_ct_precert_poison, 1, os);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
    }
    assert_true(X509_sign(x, ca->key, EVP_sha256()) > 0);
    uint8_t *d = x509_der(x, len);
    X509_free(x);
    return d;
}

/* base64 of a DER SPKI for the config. */
static void key_b64(EVP_PKEY *k, char *out)
{
    uint8_t *d = NULL;
    int n = i2d_PUBKEY(k, &d);
    EVP_EncodeBlock((unsigned char *)out, d, n);
    OPENSSL_free(d);
}

static size_t spki_of(EVP_PKEY *k, uint8_t *out)
{
    uint8_t *d = NULL;
    int n = i2d_PUBKEY(k, &d);
    memcpy(out, d, (size_t)n);
    OPENSSL_free(d);
    return (size_t)n;
}

/* --- Merkle tree ---------------------------------------------------------------------------- */

/* RFC 6962 test vectors (certificate-transparency merkle_tree_test): leaf inputs and the roots
 * of the trees of their first 1..8 leaves. */
static const uint8_t v_l0[] = {0};
static const struct {
    const uint8_t *d;
    size_t n;
} vleaves[8] = {
    {(const uint8_t *)"", 0},
    {v_l0, 1},
    {(const uint8_t *)"\x10", 1},
    {(const uint8_t *)"\x20\x21", 2},
    {(const uint8_t *)"\x30\x31", 2},
    {(const uint8_t *)"\x40\x41\x42\x43", 4},
    {(const uint8_t *)"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
    {(const uint8_t *)"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
};
static const char *const vroots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static void vector_leaves(uint8_t (*h)[32])
{
    for (int i = 0; i < 8; i++)
        mc_ct_merkle_leaf(vleaves[i].d, vleaves[i].n, h[i]);
}

static void test_merkle_vectors(void **state)
{
    (void)state;
    uint8_t h[8][32], root[32], want[32];
    vector_leaves(h);
    for (int n = 1; n <= 8; n++) {
        mc_ctlog_mth((const uint8_t(*)[32])h, (size_t)n, root);
        hex2bin(vroots[n - 1], want);
        assert_memory_equal(root, want, 32);
    }
    /* the empty tree: SHA-256 of the empty string */
    mc_ctlog_mth(NULL, 0, root);
    hex2bin("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want);
    assert_memory_equal(root, want, 32);
    /* audit paths of the same project: leaf 0 and leaf 5 of the 8-leaf tree */
    uint8_t path[64][32], w[3][32];
    assert_int_equal(mc_ctlog_path((const uint8_t(*)[32])h, 8, 0, path), 3);
    hex2bin("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", w[0]);
    hex2bin("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", w[1]);
    hex2bin("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4", w[2]);
    assert_memory_equal(path, w, sizeof w);
    assert_int_equal(mc_ctlog_path((const uint8_t(*)[32])h, 8, 5, path), 3);
    hex2bin("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", w[0]);
    hex2bin("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", w[1]);
    hex2bin("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7", w[2]);
    assert_memory_equal(path, w, sizeof w);
}

/* Every leaf of every tree up to 70 leaves: the log's path verifies with the engine's
 * iterative check; a flipped bit, another index, a short path or an index past the end fail.
 * (A wrong tree size is not always caught by a path alone: size 4 with [h1, h2] proves the
 * 3-leaf root. Clients compare the size with the signed tree head's.) */
static void test_merkle_inclusion(void **state)
{
    (void)state;
    enum { N = 70 };
    uint8_t h[N][32], root[32], path[64][32];
    for (int i = 0; i < N; i++) {
        uint8_t d[4] = {(uint8_t)i, 1, 2, 3};
        mc_ct_merkle_leaf(d, sizeof d, h[i]);
    }
    for (size_t n = 1; n <= N; n++) {
        mc_ctlog_mth((const uint8_t(*)[32])h, n, root);
        for (size_t m = 0; m < n; m++) {
            size_t pn = mc_ctlog_path((const uint8_t(*)[32])h, n, m, path);
            assert_int_equal(
                mc_ct_merkle_verify_inclusion(h[m], m, n, (const uint8_t(*)[32])path, pn, root), 1);
            if (n > 1) {
                assert_int_equal(mc_ct_merkle_verify_inclusion(
                                     h[m], (m + 1) % n, n, (const uint8_t(*)[32])path, pn, root),
                                 0);
                path[pn - 1][7] ^= 0x20;
                assert_int_equal(
                    mc_ct_merkle_verify_inclusion(h[m], m, n, (const uint8_t(*)[32])path, pn, root),
                    0);
                path[pn - 1][7] ^= 0x20;
                assert_int_equal(mc_ct_merkle_verify_inclusion(
                                     h[m], m, n, (const uint8_t(*)[32])path, pn - 1, root),
                                 0);
            }
        }
        /* index out of range */
        assert_int_equal(
            mc_ct_merkle_verify_inclusion(h[0], n, n, (const uint8_t(*)[32])path, 0, root), 0);
    }
}

/* --- SCTs ----------------------------------------------------------------------------------- */

/* Signs an SCT over hand-built RFC 6962 3.2 bytes (not the engine's builder). */
static void sct_sign_by_hand(EVP_PKEY *key, mc_ct_sct *sct, const uint8_t *cert, size_t cl)
{
    uint8_t buf[4096];
    size_t o = 0;
    buf[o++] = 0; /* v1 */
    buf[o++] = 0; /* certificate_timestamp */
    for (int i = 7; i >= 0; i--)
        buf[o++] = (uint8_t)(sct->timestamp >> (8 * i));
    buf[o++] = 0;
    buf[o++] = 0; /* x509_entry */
    buf[o++] = (uint8_t)(cl >> 16);
    buf[o++] = (uint8_t)(cl >> 8);
    buf[o++] = (uint8_t)cl;
    memcpy(buf + o, cert, cl);
    o += cl;
    buf[o++] = (uint8_t)(sct->ext_len >> 8);
    buf[o++] = (uint8_t)sct->ext_len;
    memcpy(buf + o, sct->ext, sct->ext_len);
    o += sct->ext_len;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t sl = sizeof sct->sig - 4;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, sct->sig + 4, &sl, buf, o), 1);
    EVP_MD_CTX_free(md);
    sct->sig[0] = 4;
    sct->sig[1] = EVP_PKEY_is_a(key, "EC") ? 3 : 1;
    sct->sig[2] = (uint8_t)(sl >> 8);
    sct->sig[3] = (uint8_t)sl;
    sct->sig_len = sl + 4;
}

static void test_sct_verify_by_hand(void **state)
{
    (void)state;
    const int64_t now = 1767225600000LL;
    static const uint8_t cert[] = "not even DER: an x509_entry is opaque bytes";
    EVP_PKEY *keys[2] = {EVP_EC_gen("P-256"), EVP_RSA_gen(2048)};
    for (int k = 0; k < 2; k++) {
        uint8_t spki[MC_CT_SPKI_MAX];
        size_t spl = spki_of(keys[k], spki);
        mc_ct_sct sct;
        memset(&sct, 0, sizeof sct);
        SHA256(spki, spl, sct.log_id);
        sct.timestamp = (uint64_t)now - 5000;
        sct.ext_len = 3;
        memcpy(sct.ext, "\x01\x02\x03", 3);
        sct_sign_by_hand(keys[k], &sct, cert, sizeof cert);
        mc_errdetail err;
        assert_int_equal(
            mc_ct_sct_verify(&sct, spki, spl, 0, cert, sizeof cert, NULL, 0, now, 60000, &err),
            MC_OK);
        /* every signed field matters */
        mc_ct_sct bad = sct;
        bad.timestamp++;
        assert_int_equal(
            mc_ct_sct_verify(&bad, spki, spl, 0, cert, sizeof cert, NULL, 0, now, 60000, &err),
            MC_ERR_CRYPTO);
        assert_non_null(strstr(err.message, "does not verify"));
        bad = sct;
        bad.ext[1] ^= 1;
        assert_int_equal(
            mc_ct_sct_verify(&bad, spki, spl, 0, cert, sizeof cert, NULL, 0, now, 60000, &err),
            MC_ERR_CRYPTO);
        assert_int_equal(
            mc_ct_sct_verify(&sct, spki, spl, 0, cert, sizeof cert - 1, NULL, 0, now, 60000, &err),
            MC_ERR_CRYPTO);
        /* LogID must be the hash of the key */
        bad = sct;
        bad.log_id[0] ^= 1;
        assert_int_equal(
            mc_ct_sct_verify(&bad, spki, spl, 0, cert, sizeof cert, NULL, 0, now, 60000, &err),
            MC_ERR_CRYPTO);
        assert_string_equal(err.field, "id");
        /* v1 only */
        bad = sct;
        bad.version = 1;
        assert_int_equal(
            mc_ct_sct_verify(&bad, spki, spl, 0, cert, sizeof cert, NULL, 0, now, 60000, &err),
            MC_ERR_CRYPTO);
        /* the signature algorithm byte must match the key */
        bad = sct;
        bad.sig[1] = k == 0 ? 1 : 3;
        assert_int_equal(
            mc_ct_sct_verify(&bad, spki, spl, 0, cert, sizeof cert, NULL, 0, now, 60000, &err),
            MC_ERR_CRYPTO);
        /* a timestamp more than a minute ahead of now is refused; exactly a minute is fine */
        assert_int_equal(mc_ct_sct_verify(&sct, spki, spl, 0, cert, sizeof cert, NULL, 0,
                                          now - 65001, 60000, &err),
                         MC_ERR_CRYPTO);
        assert_string_equal(err.field, "timestamp");
        assert_int_equal(mc_ct_sct_verify(&sct, spki, spl, 0, cert, sizeof cert, NULL, 0,
                                          now - 65000, 60000, &err),
                         MC_OK);
        /* serialized form round trip */
        uint8_t ser[2048];
        size_t sl;
        mc_ct_sct back;
        assert_int_equal(mc_ct_sct_serialize(&sct, ser, sizeof ser, &sl, &err), MC_OK);
        assert_int_equal(sl, 1 + 32 + 8 + 2 + 3 + sct.sig_len);
        assert_int_equal(mc_ct_sct_parse(ser, sl, &back, &err), MC_OK);
        assert_memory_equal(&back.log_id, sct.log_id, 32);
        assert_true(back.timestamp == sct.timestamp);
        assert_int_equal(back.ext_len, 3);
        assert_int_equal(back.sig_len, sct.sig_len);
        assert_memory_equal(back.sig, sct.sig, sct.sig_len);
        assert_int_equal(mc_ct_sct_parse(ser, sl - 1, &back, &err), MC_ERR_INVALID);
        assert_int_equal(mc_ct_sct_serialize(&sct, ser, 40, &sl, &err), MC_ERR_NOMEM);
        EVP_PKEY_free(keys[k]);
    }
}

static void test_sct_json(void **state)
{
    (void)state;
    mc_ct_sct s;
    mc_errdetail err;
    /* id: 32 bytes of 0x01; signature 04 03 00 02 aa bb; "\/" is an escaped '/' */
    const char *ok =
        "{ \"sct_version\": 0, \"id\": \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
        " \"timestamp\": 1767225600123, \"extensions\": \"\","
        " \"signature\": \"BAMAAqq7\", \"unknown\": [1, {\"a\": null}] }";
    assert_int_equal(mc_ct_sct_from_json(ok, strlen(ok), &s, &err), MC_OK);
    assert_int_equal(s.version, 0);
    assert_int_equal(s.log_id[31], 1);
    assert_true(s.timestamp == 1767225600123ULL);
    assert_int_equal(s.ext_len, 0);
    assert_int_equal(s.sig_len, 6);
    assert_int_equal(s.sig[5], 0xbb);
    const char *slash =
        "{\"sct_version\":0,\"id\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
        "\"timestamp\":1,\"extensions\":\"AAAF\\/w==\",\"signature\":\"BAMAAqq7\"}";
    assert_int_equal(mc_ct_sct_from_json(slash, strlen(slash), &s, &err), MC_OK);
    assert_int_equal(s.ext_len, 4);
    assert_int_equal(s.ext[3], 0xff);
    static const char *const bad[] = {
        /* missing signature */
        "{\"sct_version\":0,\"id\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
        "\"timestamp\":1}",
        /* id of 31 bytes */
        "{\"sct_version\":0,\"id\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ==\","
        "\"timestamp\":1,\"signature\":\"BAMAAqq7\"}",
        /* signature length field says 3, 2 bytes follow */
        "{\"sct_version\":0,\"id\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
        "\"timestamp\":1,\"signature\":\"BAMAA6q7\"}",
        /* negative timestamp, fraction */
        "{\"sct_version\":0,\"id\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
        "\"timestamp\":-1,\"signature\":\"BAMAAqq7\"}",
        "{\"sct_version\":0,\"id\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
        "\"timestamp\":1.5,\"signature\":\"BAMAAqq7\"}",
        /* bad base64, trailing bytes, not an object, unterminated */
        "{\"sct_version\":0,\"id\":\"AQEB!QEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
        "\"timestamp\":1,\"signature\":\"BAMAAqq7\"}",
        "{\"sct_version\":0,\"id\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\","
        "\"timestamp\":1,\"signature\":\"BAMAAqq7\"} x",
        "[]",
        "{\"sct_version\":0,\"id\":\"AQEB",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_err_clear(&err);
        assert_int_equal(mc_ct_sct_from_json(bad[i], strlen(bad[i]), &s, &err), MC_ERR_INVALID);
        assert_true(err.message[0] != '\0');
    }
}

static void test_b64_and_chain(void **state)
{
    (void)state;
    uint8_t out[16];
    assert_int_equal(mc_ct_b64_decode("", 0, out, sizeof out), 0);
    assert_int_equal(mc_ct_b64_decode("Zg==", 4, out, sizeof out), 1);
    assert_int_equal(out[0], 'f');
    assert_int_equal(mc_ct_b64_decode("Zm8=", 4, out, sizeof out), 2);
    assert_int_equal(mc_ct_b64_decode("Zm9v", 4, out, sizeof out), 3);
    assert_memory_equal(out, "foo", 3);
    assert_int_equal(mc_ct_b64_decode("Zm9", 3, out, sizeof out), -1);
    assert_int_equal(mc_ct_b64_decode("Z=9v", 4, out, sizeof out), -1);
    assert_int_equal(mc_ct_b64_decode("Zg==Zg==", 8, out, sizeof out), -1);
    assert_int_equal(mc_ct_b64_decode("Zm9v", 4, out, 2), -1);

    const uint8_t a[] = {1, 2, 3}, b[] = {9};
    const uint8_t *der[] = {a, b};
    const size_t len[] = {3, 1};
    uint8_t *enc;
    size_t el, i = 0;
    mc_errdetail err;
    assert_int_equal(mc_ct_chain_encode(der, len, 2, &enc, &el, &err), MC_OK);
    assert_int_equal(el, 3 + 3 + 3 + 1);
    const uint8_t *d;
    size_t dl;
    assert_int_equal(mc_ct_chain_next(enc, el, &i, &d, &dl), 1);
    assert_int_equal(dl, 3);
    assert_memory_equal(d, a, 3);
    assert_int_equal(mc_ct_chain_next(enc, el, &i, &d, &dl), 1);
    assert_int_equal(dl, 1);
    assert_int_equal(mc_ct_chain_next(enc, el, &i, &d, &dl), 0);
    i = 0;
    assert_int_equal(mc_ct_chain_next(enc, el - 1, &i, &d, &dl), 1);
    assert_int_equal(mc_ct_chain_next(enc, el - 1, &i, &d, &dl), -1);
    free(enc);
    assert_int_equal(mc_ct_chain_encode(der, len, 0, &enc, &el, &err), MC_ERR_INVALID);
}

static void test_config(void **state)
{
    (void)state;
    mc_ct_config c;
    mc_errdetail err;
    char b64[2048];
    mc_ct_config_defaults(&c);
    EVP_PKEY *p256 = EVP_EC_gen("P-256"), *p384 = EVP_EC_gen("P-384");
    EVP_PKEY *rsa1024 = EVP_RSA_gen(1024), *rsa2048 = EVP_RSA_gen(2048);
    key_b64(p256, b64);
    assert_int_equal(mc_ct_config_add_log(&c, "http://127.0.0.1:1/log/", b64, &err), MC_OK);
    assert_string_equal(c.logs[0].url, "http://127.0.0.1:1/log");
    uint8_t spki[MC_CT_SPKI_MAX], id[32];
    SHA256(spki, spki_of(p256, spki), id);
    assert_memory_equal(c.logs[0].id, id, 32); /* RFC 6962 3.2: LogID = SHA-256(key) */
    /* the same key twice */
    assert_int_equal(mc_ct_config_add_log(&c, "http://127.0.0.1:2", b64, &err), MC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "same key"));
    /* RFC 6962 2.1.4: P-256 or RSA >= 2048 only */
    key_b64(p384, b64);
    assert_int_equal(mc_ct_config_add_log(&c, "http://127.0.0.1:3", b64, &err), MC_ERR_CONFIG);
    assert_string_equal(err.rule, "RFC 6962 2.1.4");
    assert_non_null(strstr(err.message, "secp384r1"));
    key_b64(rsa1024, b64);
    assert_int_equal(mc_ct_config_add_log(&c, "http://127.0.0.1:4", b64, &err), MC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "1024"));
    key_b64(rsa2048, b64);
    assert_int_equal(mc_ct_config_add_log(&c, "https://log.example", b64, &err), MC_OK);
    assert_int_equal(mc_ct_config_add_log(&c, "ftp://log.example", b64, &err), MC_ERR_CONFIG);
    assert_int_equal(mc_ct_config_add_log(&c, "http://x.example", "not base64!", &err),
                     MC_ERR_CONFIG);
    assert_int_equal(mc_ct_config_add_log(&c, "http://x.example", "AAAA", &err), MC_ERR_CONFIG);
    assert_int_equal(c.nlogs, 2);
    /* the one-line config form */
    mc_ct_config c2;
    mc_ct_config_defaults(&c2);
    char spec[4200], b2[2048];
    key_b64(p256, b64);
    key_b64(rsa2048, b2);
    snprintf(spec, sizeof spec, " http://a.example/ %s ,https://b.example\t%s", b64, b2);
    assert_int_equal(mc_ct_config_add_logs(&c2, spec, &err), MC_OK);
    assert_int_equal(c2.nlogs, 2);
    assert_string_equal(c2.logs[0].url, "http://a.example");
    assert_string_equal(c2.logs[1].url, "https://b.example");
    assert_memory_equal(c2.logs[1].id, c.logs[1].id, 32);
    mc_ct_config_defaults(&c2);
    assert_int_equal(mc_ct_config_add_logs(&c2, "http://a.example", &err), MC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "needs a key"));
    assert_int_equal(mc_ct_config_add_logs(&c2, "", &err), MC_OK);
    assert_int_equal(c2.nlogs, 0);
    /* per-profile opt-in, off by default */
    assert_int_equal(mc_ct_profile_enabled(&c, "mailbox-strict"), 0);
    snprintf(c.profiles, sizeof c.profiles, " mailbox-strict , org-strict");
    assert_int_equal(mc_ct_profile_enabled(&c, "mailbox-strict"), 1);
    assert_int_equal(mc_ct_profile_enabled(&c, "org-strict"), 1);
    assert_int_equal(mc_ct_profile_enabled(&c, "mailbox"), 0);
    assert_int_equal(mc_ct_profile_enabled(&c, "org-strict2"), 0);
    snprintf(c.profiles, sizeof c.profiles, "*");
    assert_int_equal(mc_ct_profile_enabled(&c, "anything"), 1);
#ifdef MAILCA_HAVE_LIBCURL
    /* the drainer: an RSA log key sets up its reusable verify context too; the stop grace may
     * be 0 (abandon at once) but not negative */
    mc_ct_config c3;
    mc_ct *ct = NULL;
    mc_ct_config_defaults(&c3);
    assert_int_equal(c3.stop_grace_ms, 1000);
    key_b64(rsa2048, b64);
    assert_int_equal(mc_ct_config_add_log(&c3, "http://127.0.0.1:5", b64, &err), MC_OK);
    c3.stop_grace_ms = 0;
    assert_int_equal(mc_ct_new(&c3, &ct, &err), MC_OK);
    mc_ct_free(ct);
    ct = NULL;
    c3.stop_grace_ms = -1;
    assert_int_equal(mc_ct_new(&c3, &ct, &err), MC_ERR_CONFIG);
    assert_null(ct);
    assert_non_null(strstr(err.message, "stop grace -1 ms"));
#endif
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(rsa2048);
}

/* --- policy --------------------------------------------------------------------------------- */

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(mc_ct_classify(200), MC_CT_V_DONE);
    assert_int_equal(mc_ct_classify(408), MC_CT_V_RETRY_NOW);
    assert_int_equal(mc_ct_classify(429), MC_CT_V_RETRY);
    assert_int_equal(mc_ct_classify(503), MC_CT_V_RETRY);
    assert_int_equal(mc_ct_classify(500), MC_CT_V_RETRY);
    assert_int_equal(mc_ct_classify(504), MC_CT_V_RETRY);
    assert_int_equal(mc_ct_classify(0), MC_CT_V_RETRY);
    assert_int_equal(mc_ct_classify(400), MC_CT_V_REJECT);
    assert_int_equal(mc_ct_classify(403), MC_CT_V_REJECT);
    assert_int_equal(mc_ct_classify(410), MC_CT_V_REJECT);
    assert_int_equal(mc_ct_classify(413), MC_CT_V_REJECT);
    assert_int_equal(mc_ct_classify(302), MC_CT_V_RETRY);
}

static void test_backoff(void **state)
{
    (void)state;
    mc_ct_config c;
    mc_ct_config_defaults(&c);
    c.backoff_base_ms = 1000;
    c.backoff_max_ms = 60000;
    c.retry_after_max_ms = 3600000;
    int64_t want = 1000;
    for (int a = 0; a < 12; a++) {
        /* the bounds are reached: rnd 0 gives d/2, rnd d/2 gives d */
        int64_t lo = mc_ct_backoff_ms(&c, a, -1, 0);
        int64_t hi = mc_ct_backoff_ms(&c, a, -1, (uint32_t)(want - want / 2));
        assert_int_equal(lo, want / 2);
        assert_int_equal(hi, want);
        for (uint32_t r = 1; r < 2000000000u; r = r * 7 + 13) {
            int64_t d = mc_ct_backoff_ms(&c, a, -1, r);
            assert_true(d >= want / 2 && d <= want);
        }
        want = want * 2 > c.backoff_max_ms ? c.backoff_max_ms : want * 2;
    }
    assert_int_equal(mc_ct_backoff_ms(&c, 1000000, -1, 0), 30000); /* capped, no overflow */
    /* Retry-After wins over the schedule, up to its own cap */
    assert_int_equal(mc_ct_backoff_ms(&c, 0, 45000, 12345), 45000);
    assert_int_equal(mc_ct_backoff_ms(&c, 9, 0, 12345), 0);
    assert_int_equal(mc_ct_backoff_ms(&c, 0, 86400000, 0), 3600000);
}

static void test_retry_after(void **state)
{
    (void)state;
    const int64_t now = 1445412480000LL; /* Wed, 21 Oct 2015 07:28:00 GMT */
    assert_int_equal(mc_ct_retry_after_ms("30", now), 30000);
    assert_int_equal(mc_ct_retry_after_ms(" 0", now), 0);
    assert_int_equal(mc_ct_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
    assert_int_equal(mc_ct_retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
    assert_int_equal(mc_ct_retry_after_ms("soon", now), -1);
    assert_int_equal(mc_ct_retry_after_ms("30s", now), -1);
    assert_int_equal(mc_ct_retry_after_ms("", now), -1);
    assert_int_equal(mc_ct_retry_after_ms(NULL, now), -1);
}

/* --- the drainer against the test log ------------------------------------------------------ */

typedef struct fx {
    char dir[512], db[640];
    mc_store *s;
    tca ca;
    mc_ctlog *log;
    mc_ct_config cfg;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    mc_errdetail err;
    if (mc_it_tmpdir("mc-ct-", f->dir, sizeof f->dir) != 0)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/store.db", f->dir);
    if (mc_store_open(f->db, &f->s, &err) != MC_OK)
        return -1;
    tca_make(&f->ca);
    if (mc_ctlog_start(&f->log, &err) != MC_OK)
        return -1;
    mc_ct_config_defaults(&f->cfg);
    f->cfg.timeout_ms = 2000;
    f->cfg.lease_ms = 60000; /* 30 timeouts: up to 480 rows per run */
    if (mc_ct_config_add_log(&f->cfg, mc_ctlog_url(f->log), mc_ctlog_key_b64(f->log), &err) !=
        MC_OK)
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    mc_store_close(f->s);
    mc_ctlog_stop(f->log);
    tca_free(&f->ca);
    mc_it_rmtree(f->dir);
    free(f);
    return 0;
}

/* Records an intent (the outbox references intents) and returns the leaf DER for serial k. */
static uint8_t *issue(fx *f, unsigned k, int precert, size_t *len)
{
    uint8_t serial[16] = {0x11};
    serial[14] = (uint8_t)(k >> 8);
    serial[15] = (uint8_t)k;
    serial[1] = (uint8_t)precert;
    uint8_t *der = leaf_make(&f->ca, serial, sizeof serial, precert, len);
    static const uint8_t h[32] = {1};
    char oid[32];
    snprintf(oid, sizeof oid, "order-%u-%d", k, precert);
    mc_intent in = {.order_id = oid,
                    .profile_hash = h,
                    .serial = serial,
                    .serial_len = sizeof serial,
                    .tbs = der,
                    .tbs_len = *len,
                    .tbs_hash = h};
    mc_intent_state st;
    mc_errdetail err;
    assert_int_equal(mc_store_intents_commit(f->s, &in, 1, &st, &err), MC_OK);
    return der;
}

static void enqueue(fx *f, const mc_ct_config *cfg, const uint8_t *der, size_t len, int precert,
                    int64_t now)
{
    uint8_t serial[64];
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    int sl = BN_bn2bin(bn, serial);
    BN_free(bn);
    X509_free(x);
    const uint8_t *chain[2] = {der, f->ca.der};
    const size_t cl[2] = {len, f->ca.der_len};
    mc_ct_submission sub = {.serial = serial,
                            .serial_len = (size_t)sl,
                            .precert = precert,
                            .chain = chain,
                            .chain_len = cl,
                            .chain_n = 2};
    mc_errdetail err;
    mc_err e = mc_ct_enqueue(f->s, cfg, &sub, 1, now, &err);
    if (e)
        fail_msg("enqueue: %s", err.message);
}

#ifdef MAILCA_HAVE_LIBCURL
typedef struct rows {
    size_t n;
    mc_ct_row r[64];
    uint8_t sct[64][600];
    char msg[64][256];
} rows;

static void collect(void *arg, const mc_ct_row *row)
{
    rows *r = arg;
    if (r->n == 64)
        return;
    r->r[r->n] = *row;
    if (row->sct) {
        memcpy(r->sct[r->n], row->sct, row->sct_len);
        r->r[r->n].sct = r->sct[r->n];
    }
    snprintf(r->msg[r->n], 256, "%s", row->message);
    r->r[r->n].message = r->msg[r->n];
    r->r[r->n].serial = NULL;
    r->r[r->n].log_id = NULL;
    r->n++;
}

/* An x509 and a precert SCT from the test log, stored, verified by the engine and OpenSSL. */
static void test_drain_x509_and_precert(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    size_t l1, l2;
    uint8_t *cert = issue(f, 1, 0, &l1), *pre = issue(f, 1, 1, &l2);
    int64_t now = mc_ct_now_ms();
    enqueue(f, &f->cfg, cert, l1, 0, now);
    enqueue(f, &f->cfg, pre, l2, 1, now);
    mc_ct *ct = NULL;
    assert_int_equal(mc_ct_new(&f->cfg, &ct, &err), MC_OK);
    mc_ct_stats st;
    assert_int_equal(mc_ct_run_once(ct, f->s, now, &st, &err), MC_OK);
    assert_int_equal(st.claimed, 2);
    assert_int_equal(st.done, 2);
    rows r = {0};
    assert_int_equal(mc_store_ct_list(f->s, NULL, 0, collect, &r, &err), MC_OK);
    assert_int_equal(r.n, 2);
    uint8_t spki[MC_CT_SPKI_MAX];
    long spl = mc_ct_b64_decode(mc_ctlog_key_b64(f->log), strlen(mc_ctlog_key_b64(f->log)), spki,
                                sizeof spki);
    for (size_t i = 0; i < 2; i++) {
        const mc_ct_row *row = &r.r[i];
        int pc = row->precert;
        const uint8_t *leaf = pc ? pre : cert;
        size_t ll = pc ? l2 : l1;
        assert_int_equal(row->state, MC_CT_DONE);
        assert_int_equal(row->attempts, 1);
        assert_int_equal(row->http_status, 200);
        mc_ct_sct sct;
        assert_int_equal(mc_ct_sct_parse(row->sct, row->sct_len, &sct, &err), MC_OK);
        assert_true((int64_t)sct.timestamp == row->sct_timestamp);
        assert_int_equal(sct.ext_len, 8); /* leaf_index extension kept byte for byte */
        assert_int_equal(mc_ct_sct_verify(&sct, spki, (size_t)spl, pc, leaf, ll, f->ca.der,
                                          f->ca.der_len, mc_ct_now_ms(), 60000, &err),
                         MC_OK);
        assert_int_equal(mc_ctlog_openssl_validate(mc_ctlog_key_b64(f->log), row->sct, row->sct_len,
                                                   pc, leaf, ll, f->ca.der, f->ca.der_len),
                         1);
        /* the SCT of one entry type does not validate as the other, nor for another leaf */
        assert_int_equal(mc_ctlog_openssl_validate(mc_ctlog_key_b64(f->log), row->sct, row->sct_len,
                                                   !pc, pc ? cert : pre, pc ? l1 : l2, f->ca.der,
                                                   f->ca.der_len),
                         0);
        assert_int_equal(mc_ct_sct_verify(&sct, spki, (size_t)spl, !pc, pc ? cert : pre,
                                          pc ? l1 : l2, f->ca.der, f->ca.der_len, mc_ct_now_ms(),
                                          60000, &err),
                         MC_ERR_CRYPTO);
    }
    /* nothing is due any more */
    assert_int_equal(mc_ct_run_once(ct, f->s, now + 3600000, &st, &err), MC_OK);
    assert_int_equal(st.claimed, 0);
    mc_ct_free(ct);
    free(cert);
    free(pre);
}

/* 200 submissions with the log holding each answer 50 ms: they are in flight together (up to
 * the per-log cap) on a few kept-alive connections, and the next run opens none. */
static void test_drain_many_in_flight(void **state)
{
    fx *f = *state;
    enum { N = 200 };
    mc_errdetail err;
    int64_t now = mc_ct_now_ms();
    for (unsigned k = 0; k < N; k++) {
        size_t l;
        uint8_t *d = issue(f, 100 + k, 0, &l);
        enqueue(f, &f->cfg, d, l, 0, now);
        free(d);
    }
    mc_ctlog_delay(f->log, 50);
    mc_ct *ct = NULL;
    assert_int_equal(mc_ct_new(&f->cfg, &ct, &err), MC_OK);
    mc_ct_stats st;
    assert_int_equal(mc_ct_run_once(ct, f->s, now, &st, &err), MC_OK);
    assert_int_equal(st.claimed, N);
    assert_int_equal(st.done, N);
    assert_int_equal(st.max_active, f->cfg.per_log_in_flight);
    assert_true(st.connections <= (size_t)f->cfg.per_log_in_flight);
    mc_ctlog_stats ls;
    mc_ctlog_get_stats(f->log, &ls);
    assert_true(ls.max_pending > 1); /* really concurrent at the server */
    assert_true(ls.connections <= (uint64_t)f->cfg.per_log_in_flight);
    assert_int_equal(ls.accepted, N);
    int64_t pend, done, rej;
    assert_int_equal(mc_store_ct_counts(f->s, &pend, &done, &rej, &err), MC_OK);
    assert_int_equal(done, N);
    /* the same certificates again: enqueueing is idempotent, nothing is due */
    for (unsigned k = 0; k < 3; k++) {
        size_t l;
        uint8_t serial[16] = {0x11};
        serial[15] = (uint8_t)(100 + k);
        uint8_t *d = leaf_make(&f->ca, serial, sizeof serial, 0, &l);
        enqueue(f, &f->cfg, d, l, 0, now);
        free(d);
    }
    assert_int_equal(mc_store_ct_counts(f->s, &pend, &done, &rej, &err), MC_OK);
    assert_int_equal(pend, 0);
    /* a second run reuses the open connections */
    size_t l;
    uint8_t *d = issue(f, 999, 0, &l);
    enqueue(f, &f->cfg, d, l, 0, now);
    free(d);
    assert_int_equal(mc_ct_run_once(ct, f->s, now + 1, &st, &err), MC_OK);
    assert_int_equal(st.done, 1);
    assert_int_equal(st.connections, 0);
    mc_ct_free(ct);
}

/* A log that never answers: the request times out, the row is rescheduled with back-off and the
 * message says why; a later run succeeds. A bad signature is not stored and retried. */
static void test_drain_hang_and_bad_signature(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    f->cfg.timeout_ms = 1000;
    f->cfg.backoff_base_ms = 1000;
    int64_t now = mc_ct_now_ms();
    size_t l;
    uint8_t *d = issue(f, 7, 0, &l);
    enqueue(f, &f->cfg, d, l, 0, now);
    mc_ct *ct = NULL;
    assert_int_equal(mc_ct_new(&f->cfg, &ct, &err), MC_OK);
    mc_ctlog_fault(f->log, MC_CTLOG_HANG, 1, -1);
    mc_ct_stats st;
    assert_int_equal(mc_ct_run_once(ct, f->s, now, &st, &err), MC_OK);
    assert_int_equal(st.retried, 1);
    rows r = {0};
    assert_int_equal(mc_store_ct_list(f->s, NULL, 0, collect, &r, &err), MC_OK);
    assert_int_equal(r.r[0].state, MC_CT_PENDING);
    assert_int_equal(r.r[0].http_status, 0);
    assert_non_null(strstr(r.r[0].message, "no answer"));
    assert_true(r.r[0].next_ms >= now + 500 && r.r[0].next_ms <= now + 1000);
    /* not due before its time */
    assert_int_equal(mc_ct_run_once(ct, f->s, now + 499, &st, &err), MC_OK);
    assert_int_equal(st.claimed, 0);
    /* then the log signs with the wrong bytes: invalid, retried, no SCT stored */
    mc_ctlog_fault(f->log, MC_CTLOG_BADSIG, 1, -1);
    assert_int_equal(mc_ct_run_once(ct, f->s, now + 1000, &st, &err), MC_OK);
    assert_int_equal(st.invalid, 1);
    assert_int_equal(st.done, 0);
    memset(&r, 0, sizeof r);
    assert_int_equal(mc_store_ct_list(f->s, NULL, 0, collect, &r, &err), MC_OK);
    assert_int_equal(r.r[0].state, MC_CT_PENDING);
    assert_null(r.r[0].sct);
    assert_non_null(strstr(r.r[0].message, "invalid SCT"));
    assert_int_equal(r.r[0].attempts, 2);
    /* second failure: delay in [1 s, 2 s] */
    assert_true(r.r[0].next_ms >= now + 1000 + 1000 && r.r[0].next_ms <= now + 1000 + 2000);
    assert_int_equal(mc_ct_run_once(ct, f->s, now + 3000, &st, &err), MC_OK);
    assert_int_equal(st.done, 1);
    mc_ct_free(ct);
    free(d);
}

/* A log with an RSA-2048 key (RFC 6962 2.1.4): the drainer's reused verify context (RSA
 * PKCS#1 v1.5, SHA-256) accepts its SCTs, which OpenSSL's CT code validates too, and refuses one
 * whose signature was altered. */
static void test_drain_rsa_log(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    mc_ctlog *rsa = NULL;
    assert_int_equal(mc_ctlog_start_rsa(&rsa, &err), MC_OK);
    mc_ct_config cfg = f->cfg;
    cfg.nlogs = 0;
    assert_int_equal(mc_ct_config_add_log(&cfg, mc_ctlog_url(rsa), mc_ctlog_key_b64(rsa), &err),
                     MC_OK);
    size_t l1, l2;
    uint8_t *good = issue(f, 11, 0, &l1), *bad = issue(f, 12, 0, &l2);
    int64_t now = mc_ct_now_ms();
    enqueue(f, &cfg, good, l1, 0, now);
    mc_ct *ct = NULL;
    assert_int_equal(mc_ct_new(&cfg, &ct, &err), MC_OK);
    mc_ct_stats st;
    assert_int_equal(mc_ct_run_once(ct, f->s, now, &st, &err), MC_OK);
    assert_int_equal(st.done, 1);
    rows r = {0};
    assert_int_equal(mc_store_ct_list(f->s, NULL, 0, collect, &r, &err), MC_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.r[0].state, MC_CT_DONE);
    mc_ct_sct sct;
    assert_int_equal(mc_ct_sct_parse(r.r[0].sct, r.r[0].sct_len, &sct, &err), MC_OK);
    assert_int_equal(sct.sig[1], 1); /* SignatureAlgorithm rsa */
    assert_int_equal(mc_ctlog_openssl_validate(mc_ctlog_key_b64(rsa), r.r[0].sct, r.r[0].sct_len, 0,
                                               good, l1, f->ca.der, f->ca.der_len),
                     1);
    /* an altered signature: invalid, retried, nothing stored */
    enqueue(f, &cfg, bad, l2, 0, now);
    mc_ctlog_fault(rsa, MC_CTLOG_BADSIG, 1, -1);
    assert_int_equal(mc_ct_run_once(ct, f->s, now, &st, &err), MC_OK);
    assert_int_equal(st.claimed, 1);
    assert_int_equal(st.invalid, 1);
    assert_int_equal(st.done, 0);
    mc_ct_free(ct);
    mc_ctlog_stop(rsa);
    free(good);
    free(bad);
}

/* Rows for a log that left the configuration wait (not lost); a 500 is retried; a 400 is final
 * with the log's message. */
static void test_drain_unconfigured_500_400(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    mc_ctlog *other = NULL;
    assert_int_equal(mc_ctlog_start(&other, &err), MC_OK);
    mc_ct_config two = f->cfg;
    assert_int_equal(mc_ct_config_add_log(&two, mc_ctlog_url(other), mc_ctlog_key_b64(other), &err),
                     MC_OK);
    int64_t now = mc_ct_now_ms();
    size_t l;
    uint8_t *d = issue(f, 8, 0, &l);
    enqueue(f, &two, d, l, 0, now); /* two rows */
    mc_ct *ct = NULL;
    assert_int_equal(mc_ct_new(&f->cfg, &ct, &err), MC_OK); /* knows only the first log */
    mc_ctlog_fault(f->log, MC_CTLOG_500, 1, -1);
    mc_ct_stats st;
    assert_int_equal(mc_ct_run_once(ct, f->s, now, &st, &err), MC_OK);
    assert_int_equal(st.claimed, 2);
    assert_int_equal(st.retried, 2);
    rows r = {0};
    assert_int_equal(mc_store_ct_list(f->s, NULL, 0, collect, &r, &err), MC_OK);
    assert_int_equal(r.n, 2);
    int saw_unconf = 0, saw_500 = 0;
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(r.r[i].state, MC_CT_PENDING);
        if (strstr(r.r[i].message, "not configured")) {
            saw_unconf = 1;
            assert_true(r.r[i].next_ms == now + f->cfg.backoff_max_ms);
        }
        if (r.r[i].http_status == 500)
            saw_500 = 1;
    }
    assert_true(saw_unconf && saw_500);
    mc_ctlog_fault_message(f->log, "chain does not end in an accepted root");
    mc_ctlog_fault(f->log, MC_CTLOG_400, -1, -1);
    assert_int_equal(mc_ct_run_once(ct, f->s, now + 1000, &st, &err), MC_OK);
    assert_int_equal(st.rejected, 1);
    memset(&r, 0, sizeof r);
    assert_int_equal(mc_store_ct_list(f->s, NULL, 0, collect, &r, &err), MC_OK);
    int rejected = 0;
    for (size_t i = 0; i < 2; i++)
        if (r.r[i].state == MC_CT_REJECTED) {
            rejected++;
            assert_int_equal(r.r[i].http_status, 400);
            assert_string_equal(r.r[i].message, "HTTP 400: chain does not end in an accepted root");
        }
    assert_int_equal(rejected, 1);
    /* a rejected row is never claimed again */
    mc_ctlog_fault(f->log, MC_CTLOG_OK, 0, -1);
    assert_int_equal(mc_ct_run_once(ct, f->s, now + 100000, &st, &err), MC_OK);
    assert_int_equal(st.claimed, 0);
    mc_ct_free(ct);
    mc_ctlog_stop(other);
    free(d);
}

#else
/* Without libcurl the drainer says so instead of failing later. */
static void test_no_libcurl(void **state)
{
    (void)state;
    mc_ct_config c;
    mc_ct *ct = (mc_ct *)1;
    mc_errdetail err;
    mc_ct_config_defaults(&c);
    assert_int_equal(mc_ct_new(&c, &ct, &err), MC_ERR_UNSUPPORTED);
    assert_null(ct);
}
#endif

/* The collector's call: certificates and their outbox rows in one transaction, only for the
 * profiles CT is enabled for (none by default). */
static void test_certs_commit_profiles(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    uint8_t serial[3][16];
    uint8_t *der[3];
    size_t len[3];
    mc_stored_cert sc[3];
    char oid[3][32];
    for (unsigned k = 0; k < 3; k++) {
        der[k] = issue(f, 50 + k, 0, &len[k]);
        memset(serial[k], 0, 16);
        serial[k][0] = 0x11;
        serial[k][15] = (uint8_t)(50 + k);
        snprintf(oid[k], sizeof oid[k], "order-%u-0", 50 + k);
        sc[k] = (mc_stored_cert){.order_id = oid[k],
                                 .serial = serial[k],
                                 .serial_len = 16,
                                 .der = der[k],
                                 .der_len = len[k]};
    }
    const char *profiles[3] = {"mailbox-strict", "org-strict", "org-strict"};
    /* default: CT off for every profile, a plain certificate commit */
    assert_int_equal(
        mc_ct_certs_commit(f->s, &f->cfg, sc, profiles, 1, f->ca.der, f->ca.der_len, 1000, &err),
        MC_OK);
    int64_t certs, pend;
    assert_int_equal(mc_store_counts(f->s, &certs, NULL, &err), MC_OK);
    assert_int_equal(certs, 1);
    assert_int_equal(mc_store_ct_counts(f->s, &pend, NULL, NULL, &err), MC_OK);
    assert_int_equal(pend, 0);
    snprintf(f->cfg.profiles, sizeof f->cfg.profiles, "org-strict");
    assert_int_equal(mc_ct_certs_commit(f->s, &f->cfg, sc + 1, profiles + 1, 2, f->ca.der,
                                        f->ca.der_len, 1000, &err),
                     MC_OK);
    assert_int_equal(mc_store_counts(f->s, &certs, NULL, &err), MC_OK);
    assert_int_equal(certs, 3);
    assert_int_equal(mc_store_ct_counts(f->s, &pend, NULL, NULL, &err), MC_OK);
    assert_int_equal(pend, 2);
    mc_ct_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(mc_store_ct_claim(f->s, 1000, 2000, 10, &jobs, &n, &err), MC_OK);
    assert_int_equal(n, 2);
    for (size_t j = 0; j < n; j++) {
        size_t i = 0;
        const uint8_t *d;
        size_t dl;
        assert_int_equal(mc_ct_chain_next(jobs[j].chain, jobs[j].chain_len, &i, &d, &dl), 1);
        assert_int_equal(mc_ct_chain_next(jobs[j].chain, jobs[j].chain_len, &i, &d, &dl), 1);
        assert_int_equal(dl, f->ca.der_len); /* the issuer follows the certificate */
        assert_memory_equal(jobs[j].log_id, f->cfg.logs[0].id, MC_CT_LOG_ID_LEN);
    }
    mc_store_ct_jobs_free(jobs, n);
    for (unsigned k = 0; k < 3; k++)
        free(der[k]);
}

/* Claims lease rows: a second drainer does not get them until the lease ends. */
static void test_claim_lease(void **state)
{
    fx *f = *state;
    mc_errdetail err;
    size_t l;
    uint8_t *d = issue(f, 9, 0, &l);
    enqueue(f, &f->cfg, d, l, 0, 1000);
    mc_store *s2 = NULL;
    assert_int_equal(mc_store_open(f->db, &s2, &err), MC_OK);
    mc_ct_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(mc_store_ct_claim(f->s, 999, 5000, 10, &jobs, &n, &err), MC_OK);
    assert_int_equal(n, 0); /* not due yet */
    assert_int_equal(mc_store_ct_claim(f->s, 1000, 5000, 10, &jobs, &n, &err), MC_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].attempts, 0);
    assert_int_equal(jobs[0].precert, 0);
    size_t i = 0;
    const uint8_t *leaf;
    size_t ll;
    assert_int_equal(mc_ct_chain_next(jobs[0].chain, jobs[0].chain_len, &i, &leaf, &ll), 1);
    assert_int_equal(ll, l);
    assert_memory_equal(leaf, d, l);
    mc_store_ct_jobs_free(jobs, n);
    assert_int_equal(mc_store_ct_claim(s2, 4999, 9000, 10, &jobs, &n, &err), MC_OK);
    assert_int_equal(n, 0);
    assert_int_equal(mc_store_ct_claim(s2, 5000, 9000, 10, &jobs, &n, &err), MC_OK);
    assert_int_equal(n, 1);
    mc_store_ct_jobs_free(jobs, n);
    assert_int_equal(mc_store_ct_claim(s2, 5000, 4000, 10, &jobs, &n, &err), MC_ERR_INVALID);
    mc_store_close(s2);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merkle_vectors),
        cmocka_unit_test(test_merkle_inclusion),
        cmocka_unit_test(test_sct_verify_by_hand),
        cmocka_unit_test(test_sct_json),
        cmocka_unit_test(test_b64_and_chain),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test_setup_teardown(test_claim_lease, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_certs_commit_profiles, fx_setup, fx_teardown),
#ifdef MAILCA_HAVE_LIBCURL
        cmocka_unit_test_setup_teardown(test_drain_x509_and_precert, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_drain_many_in_flight, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_drain_hang_and_bad_signature, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_drain_unconfigured_500_400, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_drain_rsa_log, fx_setup, fx_teardown),
#else
        cmocka_unit_test(test_no_libcurl),
#endif
    };
#ifndef MAILCA_HAVE_LIBCURL
    printf("ct: drainer tests not run, this build has no libcurl (MAILCA_HAVE_LIBCURL)\n");
#endif
    return cmocka_run_group_tests_name("ct", tests, NULL, NULL);
}

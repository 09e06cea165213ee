/*
 * Unit tests for the pre-issuance linter. The compliant certificates certgen builds (Strict and
 * Multipurpose mailbox-validated, the shape mailca profiles produce, plus other allowed key and
 * usage combinations) must pass with zero errors and zero warnings; then, table-driven, every
 * lint in the table is triggered by a certificate that breaks exactly that rule (asserting the
 * id is found and, where the rule allows, that it is the only error). A last test checks that no
 * lint in mc_lint_defs() lacks a failing case here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/keycheck.h"
#include "mailca/lint.h"
#include "mailca/result.h"
#include "support/certgen.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- DER fragments (generated from the ASN.1 with a small encoder, checked by the tests that
 * use them: a wrong length would show up as e_ext_value_malformed, not the expected id) ---- */
#define HX_POL_TWO "30 16 30 09 06 07 67 81 0c 01 05 01 03 30 09 06 07 67 81 0c 01 05 01 02"
/* certificatePolicies: the reserved Strict mailbox OID with an id-qt-cps qualifier
 * "http://cps.mailca.example/cps" (a special-use domain) / ".../cps.mailca.example.com/cps" */
#define HX_POL_CPS_RESERVED                                                                        \
    "30 38 30 36 06 07 67 81 0c 01 05 01 03 30 2b 30 29 06 08 2b 06 01 05 05 07 02 01 16 1d 68 "   \
    "74 "                                                                                          \
    "74 70 3a 2f 2f 63 70 73 2e 6d 61 69 6c 63 61 2e 65 78 61 6d 70 6c 65 2f 63 70 73"
#define HX_POL_CPS_PUBLIC                                                                          \
    "30 3c 30 3a 06 07 67 81 0c 01 05 01 03 30 2f 30 2d 06 08 2b 06 01 05 05 07 02 01 16 21 68 "   \
    "74 "                                                                                          \
    "74 70 3a 2f 2f 63 70 73 2e 6d 61 69 6c 63 61 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d 2f 63 70 73"
#define HX_POL_NONE "30 0d 30 0b 06 09 2b 06 01 04 01 86 8d 1f 01"
#define HX_POL_ANY "30 13 30 09 06 07 67 81 0c 01 05 01 03 30 06 06 04 55 1d 20 00"
#define HX_POL_CPS_OK                                                                              \
    "30 62 30 60 06 07 67 81 0c 01 05 01 03 30 55 30 27 06 08 2b 06 01 05 05 07 02 01 16 1b 68 "   \
    "74 74 70 73 3a 2f 2f 70 6b 69 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d 2f 63 70 73 30 2a 06 08 "   \
    "2b 06 01 05 05 07 02 02 30 1e 0c 1c 49 73 73 75 65 64 20 75 6e 64 65 72 20 74 68 65 20 65 "   \
    "78 61 6d 70 6c 65 20 43 50 53"
#define HX_POL_CPS_FTP                                                                             \
    "30 34 30 32 06 07 67 81 0c 01 05 01 03 30 27 30 25 06 08 2b 06 01 05 05 07 02 01 16 19 66 "   \
    "74 70 3a 2f 2f 70 6b 69 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d 2f 63 70 73"
#define HX_POL_NOTICEREF                                                                           \
    "30 2f 30 2d 06 07 67 81 0c 01 05 01 03 30 22 30 20 06 08 2b 06 01 05 05 07 02 02 30 14 30 "   \
    "0e 0c 07 45 78 61 6d 70 6c 65 30 03 02 01 01 0c 02 48 69"
#define HX_POL_NOTEXT                                                                              \
    "30 1b 30 19 06 07 67 81 0c 01 05 01 03 30 0e 30 0c 06 08 2b 06 01 05 05 07 02 02 30 00"
#define HX_POL_IA5TEXT                                                                             \
    "30 1f 30 1d 06 07 67 81 0c 01 05 01 03 30 12 30 10 06 08 2b 06 01 05 05 07 02 02 30 04 16 "   \
    "02 48 69"
#define HX_POL_BADQUAL "30 17 30 15 06 07 67 81 0c 01 05 01 03 30 0a 30 08 06 03 2a 03 04 0c 01 78"
#define HX_CRLDP_DNS "30 17 30 15 a0 13 a0 11 82 0f 63 72 6c 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d"
#define HX_CRLDP_HTTPS                                                                             \
    "30 26 30 24 a0 22 a0 20 86 1e 68 74 74 70 73 3a 2f 2f 63 72 6c 2e 65 78 61 6d 70 6c 65 2e "   \
    "63 6f 6d 2f 63 61 2e 63 72 6c"
#define HX_CRLDP_LDAP_HTTP                                                                         \
    "30 43 30 41 a0 3f a0 3d 86 1c 6c 64 61 70 3a 2f 2f 63 72 6c 2e 65 78 61 6d 70 6c 65 2e 63 "   \
    "6f 6d 2f 63 6e 3d 63 61 86 1d 68 74 74 70 3a 2f 2f 63 72 6c 2e 65 78 61 6d 70 6c 65 2e 63 "   \
    "6f 6d 2f 63 61 2e 63 72 6c"
#define HX_CRLDP_LDAP                                                                              \
    "30 24 30 22 a0 20 a0 1e 86 1c 6c 64 61 70 3a 2f 2f 63 72 6c 2e 65 78 61 6d 70 6c 65 2e 63 "   \
    "6f 6d 2f 63 6e 3d 63 61"
#define HX_TIME_NOSEC                                                                              \
    "30 1c 17 0b 32 36 30 31 31 35 30 30 30 30 5a 17 0d 32 38 30 31 31 34 32 33 35 39 35 39 5a"
#define HX_TIME_2050                                                                               \
    "30 20 17 0d 34 39 31 32 30 31 30 30 30 30 30 30 5a 18 0f 32 30 35 30 30 31 30 31 30 30 30 "   \
    "30 30 30 5a"
/* a SAN of one directoryName {serialNumber A-1234567} (no mailbox anywhere in the SAN) */
#define HX_SAN_DIRNAME_SERIAL                                                                      \
    "30 18 a4 16 30 14 31 12 30 10 06 03 55 04 05 13 09 41 2d 31 32 33 34 35 36 37"
/* a SAN of one directoryName holding an empty Name (no mailbox anywhere in the SAN) */
#define HX_SAN_DIRNAME "30 04 a4 02 30 00"
#define HX_SDA                                                                                     \
    "30 1f 30 1d 06 08 2b 06 01 05 05 07 09 01 31 11 18 0f 31 39 38 30 30 31 30 31 31 32 30 30 "   \
    "30 30 5a"
/* Adobe ArchiveRevInfo (SBR 7.1.2.3(m)); certgen names only the timestamp extension */
#define OID_ADOBE_ARCH "1.2.840.113583.1.1.9.2"
/* qcStatements (RFC 3739 3.2.6, ETSI EN 319 412-5 4): made by a small DER encoder */
#define HX_QCS_COMPLIANCE "30 0a 30 08 06 06 04 00 8e 46 01 01"
#define HX_QCS_OV                                                                                  \
    "30 81 86 30 15 06 08 2b 06 01 05 05 07 0b 02 30 09 06 07 04 00 8b ec 49 01 02 30 08 "         \
    "06 06 04 00 8e 46 01 01 30 08 06 06 04 00 8e 46 01 04 30 34 06 06 04 00 8e 46 01 05 "         \
    "30 2a 30 28 16 22 68 74 74 70 73 3a 2f 2f 70 6b 69 2e 65 78 61 6d 70 6c 65 2e 63 6f "         \
    "6d 2f 70 64 73 2d 65 6e 2e 70 64 66 13 02 65 6e 30 13 06 06 04 00 8e 46 01 06 30 09 "         \
    "06 07 04 00 8e 46 01 06 02 30 0e 06 06 04 00 8e 46 01 07 30 04 13 02 43 48"
#define HX_QCS_SV                                                                                  \
    "30 5b 30 15 06 08 2b 06 01 05 05 07 0b 02 30 09 06 07 04 00 8b ec 49 01 01 30 08 06 "         \
    "06 04 00 8e 46 01 01 30 0b 06 06 04 00 8e 46 01 03 02 01 0f 30 16 06 06 04 00 8e 46 "         \
    "01 02 30 0c 13 03 45 55 52 02 02 03 e8 02 01 00 30 13 06 06 04 00 8e 46 01 06 30 09 "         \
    "06 07 04 00 8e 46 01 06 01"
#define HX_QCS_COMP_INFO "30 0c 30 0a 06 06 04 00 8e 46 01 01 05 00"
#define HX_QCS_DUP "30 14 30 08 06 06 04 00 8e 46 01 01 30 08 06 06 04 00 8e 46 01 01"
#define HX_QCS_PDS_HTTP                                                                            \
    "30 3c 30 08 06 06 04 00 8e 46 01 01 30 30 06 06 04 00 8e 46 01 05 30 26 30 24 16 1e "         \
    "68 74 74 70 3a 2f 2f 70 6b 69 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d 2f 70 64 73 2e 70 "         \
    "64 66 13 02 65 6e"
#define HX_QCS_PDS_LANG                                                                            \
    "30 41 30 08 06 06 04 00 8e 46 01 01 30 35 06 06 04 00 8e 46 01 05 30 2b 30 29 16 22 "         \
    "68 74 74 70 73 3a 2f 2f 70 6b 69 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d 2f 70 64 73 2d "         \
    "65 6e 2e 70 64 66 13 03 65 6e 67"
#define HX_QCS_TYPE_NOTOID "30 13 30 11 06 06 04 00 8e 46 01 06 30 07 13 05 65 73 69 67 6e"
#define HX_QCS_LEG3                                                                                \
    "30 1b 30 08 06 06 04 00 8e 46 01 01 30 0f 06 06 04 00 8e 46 01 07 30 05 13 03 43 48 "         \
    "45"
#define HX_QCS_RET0 "30 17 30 08 06 06 04 00 8e 46 01 01 30 0b 06 06 04 00 8e 46 01 03 02 01 00"
#define HX_QCS_SEM_EMPTY "30 0e 30 0c 06 08 2b 06 01 05 05 07 0b 02 30 00"
#define HX_QCS_WEB                                                                                 \
    "30 1f 30 08 06 06 04 00 8e 46 01 01 30 13 06 06 04 00 8e 46 01 06 30 09 06 07 04 00 "         \
    "8e 46 01 06 03"
#define HX_QCS_ESIGN                                                                               \
    "30 1f 30 08 06 06 04 00 8e 46 01 01 30 13 06 06 04 00 8e 46 01 06 30 09 06 07 04 00 "         \
    "8e 46 01 06 01"
#define HX_QCS_ESEAL                                                                               \
    "30 1f 30 08 06 06 04 00 8e 46 01 01 30 13 06 06 04 00 8e 46 01 06 30 09 06 07 04 00 "         \
    "8e 46 01 06 02"
#define HX_QCS_SEM_LEGAL                                                                           \
    "30 17 30 15 06 08 2b 06 01 05 05 07 0b 02 30 09 06 07 04 00 8b ec 49 01 02"
#define HX_AKI_OTHER "30 16 80 14 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11"

#define T_BEFORE_LEGACY_SUNSET 1735689600LL /* 2025-01-01 */
#define T_BEFORE_SBR 1672531200LL           /* 2023-01-01 */

/* ---- raw TBS editors (for what OpenSSL will not encode) ---- */

static size_t t_truncate(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    memcpy(out, tbs, len - 1);
    (void)cap;
    return len - 1;
}

static size_t t_serial_negative(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return cg_tbs_replace_hex(tbs, len, 1, "02 10 85 3c 91 07 ee 42 18 d3 6b 20 a4 7f 01 99 c5 3e",
                              out, cap);
}

static size_t t_time_nosec(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return cg_tbs_replace_hex(tbs, len, 4, HX_TIME_NOSEC, out, cap);
}

static size_t t_time_2050(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return cg_tbs_replace_hex(tbs, len, 4, HX_TIME_2050, out, cap);
}

static size_t t_sigalg_sha1(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return cg_tbs_replace_hex(tbs, len, 2, "30 0d 06 09 2a 86 48 86 f7 0d 01 01 05 05 00", out,
                              cap);
}

static size_t t_crit_false(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    uint8_t e[64];
    size_t el = cg_hex("30 12 06 09 2a 86 48 86 f7 0d 01 09 0f 01 01 00 04 02 30 00", e, sizeof e);
    return cg_tbs_add_ext(tbs, len, e, el, out, cap);
}

/* SubjectPublicKeyInfo builders */
static size_t spki(const char *algid_hex, const uint8_t *key, size_t keylen, uint8_t *out,
                   size_t cap)
{
    uint8_t alg[64];
    size_t al = cg_hex(algid_hex, alg, sizeof alg);
    mc_der_w w;
    mc_der_w_init(&w, out, cap);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, alg, al);
    mc_der_put_bits(&w, key, keylen);
    mc_der_end(&w, m);
    return w.err == MC_OK ? w.len : 0;
}

#define ALG_RSA "30 0d 06 09 2a 86 48 86 f7 0d 01 01 01 05 00"
#define ALG_P256 "30 13 06 07 2a 86 48 ce 3d 02 01 06 08 2a 86 48 ce 3d 03 01 07"
#define ALG_P384 "30 10 06 07 2a 86 48 ce 3d 02 01 06 05 2b 81 04 00 22"
#define ALG_P521 "30 10 06 07 2a 86 48 ce 3d 02 01 06 05 2b 81 04 00 23"
#define ALG_K256 "30 10 06 07 2a 86 48 ce 3d 02 01 06 05 2b 81 04 00 0a"
#define ALG_ED25519 "30 05 06 03 2b 65 70"
#define ALG_ED448 "30 05 06 03 2b 65 71"
/* SBR 7.1.3.1.3: parameters absent, so these are not the allowed encoding of id-Ed448 */
#define ALG_ED448_NULL "30 07 06 03 2b 65 71 05 00"
#define ALG_X448 "30 05 06 03 2b 65 6f"
#define ALG_X25519 "30 05 06 03 2b 65 6e"

static size_t rsa_spki_tbs(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap,
                           size_t modbytes, uint8_t top, uint64_t e)
{
    uint8_t mod[600], key[700], s[800];
    memset(mod, 0x5b, modbytes);
    mod[0] = top;
    mod[modbytes - 1] |= 1;
    mc_der_w w;
    mc_der_w_init(&w, key, sizeof key);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_uint(&w, mod, modbytes);
    mc_der_put_small_uint(&w, e);
    mc_der_end(&w, m);
    assert_int_equal(w.err, MC_OK);
    size_t sl = spki(ALG_RSA, key, w.len, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

static size_t t_rsa_2040(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return rsa_spki_tbs(tbs, len, out, cap, 255, 0xc5, 65537);
}

static size_t t_rsa_2052(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return rsa_spki_tbs(tbs, len, out, cap, 257, 0x0f, 65537);
}

static size_t t_rsa_2048(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return rsa_spki_tbs(tbs, len, out, cap, 256, 0xc5, 65537);
}

static size_t t_rsa_even_exp(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return rsa_spki_tbs(tbs, len, out, cap, 256, 0xc5, 65536);
}

static size_t t_rsa_exp_1(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return rsa_spki_tbs(tbs, len, out, cap, 256, 0xc5, 1);
}

static size_t t_rsa_garbage(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    uint8_t s[64];
    static const uint8_t k[] = {0x05, 0x00};
    size_t sl = spki(ALG_RSA, k, sizeof k, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

/* SBR 6.1.5, 7.1.3.1.3: curve25519 keys only as id-Ed25519; an X25519 (key agreement) key has
 * no allowed encoding, so no X25519 key-management certificate can be issued. */
static size_t t_x25519(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    uint8_t k[32], s[64];
    memset(k, 0x42, sizeof k);
    size_t sl = spki(ALG_X25519, k, sizeof k, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

static size_t t_ed25519_short(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    uint8_t k[31], s[64];
    memset(k, 0x42, sizeof k);
    size_t sl = spki(ALG_ED25519, k, sizeof k, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

/* SBR 7.1.3.1.3, RFC 8410 3: an Ed448 key is 57 bytes */
static size_t ed448_spki_tbs(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap,
                             const char *algid, size_t keylen)
{
    uint8_t k[64], s[96];
    assert_true(keylen <= sizeof k);
    memset(k, 0x42, keylen);
    size_t sl = spki(algid, k, keylen, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

/* An EdDSA SPKI of this raw key. */
static size_t ed_key_tbs(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap, int ed448,
                         const uint8_t *key)
{
    uint8_t s[96];
    size_t sl = spki(ed448 ? ALG_ED448 : ALG_ED25519, key, ed448 ? 57 : 32, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

/* SBR 6.1.5, RFC 8032 5.1.3 / 5.2.3: keys as y (little-endian) and the sign bit x_0 on top. For
 * both curves y = 2 has no x (x^2 = (y^2 - 1) / (d y^2 - a) is not a square mod p) and y = 3 has
 * one (checked against mc_keycheck_ed_decode in test_point_validity). */
static size_t t_ed448_57(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t k[57] = {3};
    return ed_key_tbs(tbs, len, out, cap, 1, k);
}

static size_t t_ed448_y2(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t k[57] = {2};
    return ed_key_tbs(tbs, len, out, cap, 1, k);
}

/* y = 2^448 + 3: a bit between y and x_0 set */
static size_t t_ed448_bit448(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t k[57] = {3, [56] = 0x01};
    return ed_key_tbs(tbs, len, out, cap, 1, k);
}

static size_t t_ed25519_y3(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t k[32] = {3};
    return ed_key_tbs(tbs, len, out, cap, 0, k);
}

static size_t t_ed25519_y2(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t k[32] = {2};
    return ed_key_tbs(tbs, len, out, cap, 0, k);
}

/* y = p = 2^255 - 19 */
static size_t t_ed25519_y_p(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    uint8_t k[32];
    memset(k, 0xff, sizeof k);
    k[0] = 0xed;
    k[31] = 0x7f;
    return ed_key_tbs(tbs, len, out, cap, 0, k);
}

/* y = 1 (x = 0, the identity) with x_0 set: step 4 fails */
static size_t t_ed25519_x0(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t k[32] = {1, [31] = 0x80};
    return ed_key_tbs(tbs, len, out, cap, 0, k);
}

/* y = 1, x_0 clear: the identity, a valid point (of small order: refused for orders by mailca
 * policy, SBR 6.1.1.3, not by the SBR 6.1.5 lint) */
static size_t t_ed25519_identity(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t k[32] = {1};
    return ed_key_tbs(tbs, len, out, cap, 0, k);
}

/* The offset just past the TBS's subjectPublicKeyInfo (element 6): its last octet is the key's. */
static size_t spki_end(const uint8_t *tbs, size_t len)
{
    mc_der_cur c = mc_der_cur_make(tbs, len);
    mc_der_tlv t, e;
    assert_int_equal(mc_der_next(&c, &t), MC_OK);
    mc_der_cur in = mc_der_cur_in(&t);
    for (int i = 0; i <= 6; i++)
        assert_int_equal(mc_der_next(&in, &e), MC_OK);
    return (size_t)(e.raw + e.rawlen - tbs);
}

/* The TBS's own (valid) ECDSA key with the low bit of Y flipped: off the curve (for a given X only
 * Y and p - Y are on it, and p is odd). */
static size_t t_ec_flip_y(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    assert_true(len <= cap);
    memcpy(out, tbs, len);
    out[spki_end(tbs, len) - 1] ^= 1;
    return len;
}

/* A P-256 point whose X is p itself (Y = 1): a coordinate not below p. */
static size_t t_p256_x_is_p(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    uint8_t k[65], s[128];
    size_t kl = cg_hex("04 ffffffff 00000001 00000000 00000000 00000000 ffffffff ffffffff ffffffff "
                       "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001",
                       k, sizeof k);
    assert_int_equal(kl, 65);
    size_t sl = spki(ALG_P256, k, kl, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

/* The uncompressed point of a fresh OpenSSL key on this curve ("P-256", ...); its length. */
static size_t ec_fresh_point(const char *curve, uint8_t *pt, size_t cap)
{
    EVP_PKEY *k = EVP_EC_gen(curve);
    size_t n = 0;
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, cap, &n), 1);
    assert_int_equal(pt[0], 0x04);
    EVP_PKEY_free(k);
    return n;
}

/* P-521 (certgen has no such key): a fresh key, and the same with the low bit of Y flipped. */
static size_t p521_tbs(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap, int flip)
{
    uint8_t k[200], s[256];
    size_t kl = ec_fresh_point("P-521", k, sizeof k);
    assert_int_equal(kl, 133);
    k[kl - 1] ^= (uint8_t)flip;
    size_t sl = spki(ALG_P521, k, kl, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

static size_t t_p521(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return p521_tbs(tbs, len, out, cap, 0);
}

static size_t t_p521_flip_y(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return p521_tbs(tbs, len, out, cap, 1);
}

static size_t t_ed448_56(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return ed448_spki_tbs(tbs, len, out, cap, ALG_ED448, 56);
}

static size_t t_ed448_32(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return ed448_spki_tbs(tbs, len, out, cap, ALG_ED448, 32);
}

static size_t t_ed448_null(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return ed448_spki_tbs(tbs, len, out, cap, ALG_ED448_NULL, 57);
}

/* SBR 6.1.5, 7.1.3.1.3: curve448 keys only as id-Ed448; X448 has no allowed encoding. */
static size_t t_x448(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return ed448_spki_tbs(tbs, len, out, cap, ALG_X448, 56);
}

static size_t t_ec_compressed(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    uint8_t k[33], s[64];
    memset(k, 0x42, sizeof k);
    k[0] = 0x02;
    size_t sl = spki(ALG_P256, k, sizeof k, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

static size_t t_secp256k1(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    uint8_t k[65], s[128];
    memset(k, 0x42, sizeof k);
    k[0] = 0x04;
    size_t sl = spki(ALG_K256, k, sizeof k, s, sizeof s);
    return cg_tbs_replace(tbs, len, 6, s, sl, out, cap);
}

/* ---- X509 editors (run before signing) ---- */

static void e_version_v2(X509 *x)
{
    X509_set_version(x, X509_VERSION_2);
}

static void e_other_issuer(X509 *x)
{
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"Some Other CA", -1,
                               -1, 0);
    X509_set_issuer_name(x, n);
    X509_NAME_free(n);
}

static void e_subject_empty(X509 *x)
{
    cg_subject_clear(x);
}

static void e_subject_empty_san_dirname(X509 *x)
{
    uint8_t v[8];
    size_t l = cg_hex(HX_SAN_DIRNAME, v, sizeof v);
    cg_subject_clear(x);
    cg_ext_set_raw(x, CG_OID_SAN, 1, v, l);
}

static void e_subject_empty_san_critical(X509 *x)
{
    cg_subject_clear(x);
    cg_ext_set_critical(x, CG_OID_SAN, 1);
}

static void e_cn_other(X509 *x)
{
    cg_subject_cn(x, "bob@example.com");
}

static void e_cn_name(X509 *x)
{
    cg_subject_cn(x, "Alice Example");
}

static void e_cn_upper_domain(X509 *x)
{
    cg_subject_cn(x, "alice@EXAMPLE.com");
}

static void e_cn_printable_mailbox(X509 *x)
{
    cg_subject_clear(x);
    cg_subject_add(x, "2.5.4.3", V_ASN1_PRINTABLESTRING, CG_MAILBOX, strlen(CG_MAILBOX));
}

static void e_cn_bmp(X509 *x)
{
    cg_subject_clear(x);
    cg_subject_add(x, "2.5.4.3", V_ASN1_BMPSTRING, "\0a\0@\0b", 6);
}

static void e_add_org(X509 *x)
{
    cg_subject_add(x, "2.5.4.10", V_ASN1_UTF8STRING, "Example Ltd", 11);
}

static void e_add_street(X509 *x)
{
    cg_subject_add(x, "2.5.4.9", V_ASN1_UTF8STRING, "1 Main St", 9);
}

static void e_add_email_other(X509 *x)
{
    cg_subject_add(x, "1.2.840.113549.1.9.1", V_ASN1_IA5STRING, "bob@example.com", 15);
}

static void e_add_email_two(X509 *x)
{
    static const char v[] = "alice@example.com, bob@example.com";
    cg_subject_add(x, "1.2.840.113549.1.9.1", V_ASN1_IA5STRING, v, strlen(v));
}

static void e_add_email_same(X509 *x)
{
    cg_subject_add(x, "1.2.840.113549.1.9.1", V_ASN1_IA5STRING, CG_MAILBOX, strlen(CG_MAILBOX));
}

static void e_add_email_utf8(X509 *x)
{
    cg_subject_add(x, "1.2.840.113549.1.9.1", V_ASN1_UTF8STRING, CG_MAILBOX, strlen(CG_MAILBOX));
}

static void e_add_serial_ok(X509 *x)
{
    cg_subject_add(x, "2.5.4.5", V_ASN1_PRINTABLESTRING, "A-1234567", 9);
}

static void e_add_serial_long(X509 *x)
{
    char v[65];
    memset(v, 'A', sizeof v);
    cg_subject_add(x, "2.5.4.5", V_ASN1_PRINTABLESTRING, v, sizeof v);
}

static void e_cn_long(X509 *x)
{
    /* a 65-character mailbox in both SAN and CN: only the CN bound is broken */
    static const char m[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com";
    char san[100];
    snprintf(san, sizeof san, "email:%s", m);
    cg_ext_conf(x, "subjectAltName", san);
    cg_subject_cn(x, m);
}

static void e_add_serial_utf8(X509 *x)
{
    cg_subject_add(x, "2.5.4.5", V_ASN1_UTF8STRING, "A-1234567", 9);
}

static void e_add_serial_bad_printable(X509 *x)
{
    cg_subject_add(x, "2.5.4.5", V_ASN1_PRINTABLESTRING, "A_1234567", 9);
}

static void e_add_serial_placeholder(X509 *x)
{
    cg_subject_add(x, "2.5.4.5", V_ASN1_PRINTABLESTRING, "-", 1);
}

static void e_add_serial_na(X509 *x)
{
    cg_subject_add(x, "2.5.4.5", V_ASN1_PRINTABLESTRING, "N/A", 3);
}

/* SBR 7.1.2.3(l): a sponsor certificate with both the LEI and the role (ISO 17442-2). */
static void e_add_lei_and_role(X509 *x)
{
    static const char v[] = "\x13\x14"
                            "5493001KJTIIGC8Y1R12";
    static const char r[] = "\x13\x17"
                            "Chief Financial Officer";
    assert_int_equal(cg_ext_set_raw(x, CG_OID_LEI, 0, (const uint8_t *)v, sizeof v - 1), 0);
    assert_int_equal(cg_ext_set_raw(x, CG_OID_LEI_ROLE, 0, (const uint8_t *)r, sizeof r - 1), 0);
}

static void e_aki_with_serial(X509 *x)
{
    const mc_issuer *iss = cg_issuer();
    uint8_t v[80] = {0x30, (uint8_t)(2 + iss->ski_len + 3), 0x80, (uint8_t)iss->ski_len};
    memcpy(v + 4, iss->ski, iss->ski_len);
    memcpy(v + 4 + iss->ski_len, "\x82\x01\x01", 3);
    cg_ext_set_raw(x, CG_OID_AKI, 0, v, 4 + iss->ski_len + 3);
}

static void e_eku_email_client(X509 *x)
{
    assert_int_equal(cg_ext_conf(x, "extendedKeyUsage", "emailProtection,clientAuth"), 0);
}

static void e_smtputf8_cn(X509 *x)
{
    static const char m[] = CG_GREEK "@example.com";
    assert_int_equal(cg_ext_san(x, NULL, m), 0);
    cg_subject_cn(x, m);
}

static void e_smtputf8_upper(X509 *x)
{
    assert_int_equal(cg_ext_san(x, CG_MAILBOX, CG_GREEK "@Example.com"), 0);
}

static void e_smtputf8_bom(X509 *x)
{
    assert_int_equal(cg_ext_san(x, CG_MAILBOX, "\xef\xbb\xbf" CG_GREEK "@example.com"), 0);
}

static void e_smtputf8_bad_utf8(X509 *x)
{
    assert_int_equal(cg_ext_san(x, CG_MAILBOX, "\xc0\xaf" CG_GREEK "@example.com"),
                     0); /* overlong '/' */
}

/* SBR 7.1.4.2.1 / RFC 9598 3: IDN domains as A-labels (the U-label cases: certgen's
 * cg_edit_rfc822_ulabel and cg_edit_smtputf8_ulabel). */
static void e_smtputf8_alabel(X509 *x)
{
    assert_int_equal(cg_ext_san(x, CG_MAILBOX, CG_GREEK "@" CG_MUENCHEN_A), 0);
}

static void e_smtputf8_bad_alabel(X509 *x)
{
    assert_int_equal(cg_ext_san(x, CG_MAILBOX, CG_GREEK "@xn--ls8h.example"),
                     0); /* decodes to an emoji */
}

/* certificatePolicies: the reserved Strict mailbox OID with one id-qt-unotice qualifier whose
 * explicitText is the DisplayText of this tag and contents octets. */
static size_t pol_notice(unsigned tag, const uint8_t *text, size_t n, uint8_t *out, size_t cap)
{
    static const uint8_t pol[] = {0x67, 0x81, 0x0c, 0x01, 0x05, 0x01, 0x03};
    static const uint8_t unotice[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x02, 0x02};
    mc_der_w w;
    mc_der_w_init(&w, out, cap);
    size_t m0 = mc_der_begin(&w, MC_DER_SEQUENCE); /* certificatePolicies */
    size_t m1 = mc_der_begin(&w, MC_DER_SEQUENCE); /* PolicyInformation */
    mc_der_put(&w, MC_DER_OID, pol, sizeof pol);
    size_t m2 = mc_der_begin(&w, MC_DER_SEQUENCE); /* policyQualifiers */
    size_t m3 = mc_der_begin(&w, MC_DER_SEQUENCE); /* PolicyQualifierInfo */
    mc_der_put(&w, MC_DER_OID, unotice, sizeof unotice);
    size_t m4 = mc_der_begin(&w, MC_DER_SEQUENCE); /* UserNotice */
    mc_der_put(&w, tag, text, n);
    mc_der_end(&w, m4);
    mc_der_end(&w, m3);
    mc_der_end(&w, m2);
    mc_der_end(&w, m1);
    mc_der_end(&w, m0);
    assert_int_equal(w.err, MC_OK);
    return w.len;
}

/* Sets certificatePolicies to pol_notice with an explicitText of `count` copies of the
 * `unit`-byte character ch (then `tail` ASCII 'a's). */
static void set_notice(X509 *x, unsigned tag, const char *ch, size_t unit, size_t count,
                       size_t tail)
{
    uint8_t text[1024], der[1200];
    size_t n = 0;
    assert_true(count * unit + tail <= sizeof text);
    for (size_t i = 0; i < count; i++, n += unit)
        memcpy(text + n, ch, unit);
    memset(text + n, 'a', tail);
    n += tail;
    size_t l = pol_notice(tag, text, n, der, sizeof der);
    assert_int_equal(cg_ext_set_raw(x, CG_OID_POLICIES, 0, der, l), 0);
}

/* RFC 6818 3: "The explicitText field is a string with a maximum size of 200 characters":
 * characters, not octets (here 2-octet U+00E9). */
static void e_notice_utf8_200(X509 *x)
{
    set_notice(x, MC_DER_UTF8STRING, "\xc3\xa9", 2, 200, 0);
}

static void e_notice_utf8_201(X509 *x)
{
    set_notice(x, MC_DER_UTF8STRING, "\xc3\xa9", 2, 199, 2);
}

/* RFC 6818 3: VisibleString and BMPString "acceptable but less preferred" (a SHOULD), within the
 * same 200 characters (BMPString: 2 octets each) */
static void e_notice_visible(X509 *x)
{
    set_notice(x, MC_DER_VISIBLESTRING, "a", 1, 200, 0);
}

static void e_notice_bmp_200(X509 *x)
{
    set_notice(x, MC_DER_BMPSTRING, "\x00\xe9", 2, 200, 0);
}

static void e_notice_bmp_201(X509 *x)
{
    set_notice(x, MC_DER_BMPSTRING, "\x00\xe9", 2, 201, 0);
}

static void e_notice_visible_201(X509 *x)
{
    set_notice(x, MC_DER_VISIBLESTRING, "a", 1, 201, 0);
}

/* not valid contents of the type: a control character in a VisibleString; a BMPString of an odd
 * number of octets; a surrogate (not a BMP character) */
static void e_notice_visible_ctrl(X509 *x)
{
    set_notice(x, MC_DER_VISIBLESTRING, "a\x07b", 3, 1, 0);
}

static void e_notice_bmp_odd(X509 *x)
{
    set_notice(x, MC_DER_BMPSTRING, "\x00\x61\x00", 3, 1, 0);
}

static void e_notice_bmp_surrogate(X509 *x)
{
    set_notice(x, MC_DER_BMPSTRING, "\xd8\x3d\xde\x00", 4, 1, 0);
}

/* mc_lint_url_host_reserved: the host is found past the scheme, userinfo and before port, path,
 * query or fragment; the TLD compared case-insensitively, whole labels only. */
static void test_url_host_reserved(void **state)
{
    (void)state;
    static const char *const yes[] = {"http://pki.mailca.test/x.crl",
                                      "http://a.b.EXAMPLE",
                                      "http://ocsp.localhost:80",
                                      "https://u:p@x.invalid/",
                                      "http://printer.local?q",
                                      "http://x.onion#f",
                                      "http://x.alt/",
                                      "http://router.home.arpa./",
                                      "http://ca.internal",
                                      "http://x.%74est/",
                                      "http://x.TEST../",
                                      "http://test"};
    static const char *const no[] = {"http://crl.example.com/x.crl",
                                     "http://test.example.org/",
                                     "http://crl.contest/",
                                     "http://arpa/",
                                     "http://[fe80::1]/",
                                     "http://crl.example.com:8080/a.test",
                                     "http://x.%7",
                                     "http://x.te%st/",
                                     "mailto:a@b.test",
                                     "http:///x.test",
                                     ""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_int_equal(mc_lint_url_host_reserved(yes[i], strlen(yes[i])), 1);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_int_equal(mc_lint_url_host_reserved(no[i], strlen(no[i])), 0);
}

/* ---- the case table ---- */

enum {
    C_NO_ISSUER = 1,  /* lint without the issuer (issuer-dependent lints off) */
    C_ISSUER_384 = 2, /* issuer that signs with ECDSA-SHA384 */
    C_PROFILE_MP = 4, /* ctx profile: mailbox multipurpose */
    C_PROFILE_S = 8,  /* ctx profile: mailbox strict */
    C_WHOLE = 16,     /* lint the whole Certificate (mc_lint_cert) */
    C_OUTER_384 = 32, /* ... with signatureAlgorithm replaced by ecdsa-sha384 */
};

typedef struct lcase {
    const char *name;
    const char *id;  /* expected lint id; NULL: must pass with no error and no warning */
    int only;        /* the only error (for a warning id: no error, the only warning) */
    CG_CASE_MEMBERS; /* the certificate: gen (0: Strict), type (0: mailbox), key, edits... */
    cg_tbs_fn post;
    int ctx;
    int64_t now; /* 0: CG_NOW */
} lcase;

/* ---- RFC 5280 rules from the comparison with zlint's rfc lints ---- */
/* certificatePolicies: the reserved Strict mailbox OID, then 1.2.3.4.5 once / twice */
#define HX_POL_OTHER "30 13 30 09 06 07 67 81 0c 01 05 01 03 30 06 06 04 2a 03 04 05"
#define HX_POL_OTHER_TWICE                                                                         \
    "30 1b 30 09 06 07 67 81 0c 01 05 01 03 30 06 06 04 2a 03 04 05 30 06 06 04 2a 03 04 05"

/* The issuer replaced by an empty Name (an empty SEQUENCE). */
static size_t t_issuer_empty(const uint8_t *tbs, size_t len, uint8_t *out, size_t cap)
{
    return cg_tbs_replace_hex(tbs, len, 3, "30 00", out, cap);
}

static const lcase cases[] = {
    /* ---- compliant certificates ---- */
    {.name = "baseline strict"},
    {.name = "baseline multipurpose", .gen = MC_GEN_MULTIPURPOSE},
    {.name = "baseline whole certificate", .ctx = C_WHOLE},
    {.name = "baseline without issuer context", .ctx = C_NO_ISSUER},
    {.name = "strict with strict profile", .ctx = C_PROFILE_S},
    {.name = "MP with MP profile", .gen = MC_GEN_MULTIPURPOSE, .ctx = C_PROFILE_MP},
    {.name = "P-384", .key = CG_KEY_P384},
    {.name = "Ed25519", .key = CG_KEY_ED25519},
    {.name = "Ed448", .key = CG_KEY_ED448},
    {.name = "Ed448 MP", .key = CG_KEY_ED448, .gen = MC_GEN_MULTIPURPOSE},
    {.name = "Ed448 signing with nonRepudiation",
     .key = CG_KEY_ED448,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,nonRepudiation"},
    {.name = "crafted Ed448 SPKI (y = 3)", .post = t_ed448_57},
    {.name = "crafted Ed25519 SPKI (y = 3)", .post = t_ed25519_y3},
    {.name = "Ed25519 identity (y = 1): a valid point", .post = t_ed25519_identity},
    {.name = "P-521", .post = t_p521},
    {.name = "RSA signing", .key = CG_KEY_RSA2048},
    {.name = "RSA strict dual use",
     .key = CG_KEY_RSA2048,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,nonRepudiation,keyEncipherment"},
    {.name = "RSA strict key management",
     .key = CG_KEY_RSA2048,
     .conf_name = "keyUsage",
     .conf_value = "critical,keyEncipherment"},
    {.name = "RSA MP dual use with dataEncipherment",
     .key = CG_KEY_RSA2048,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyEncipherment,dataEncipherment"},
    {.name = "EC dual use",
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,nonRepudiation,keyAgreement"},
    {.name = "EC key agreement + decipherOnly",
     .conf_name = "keyUsage",
     .conf_value = "critical,keyAgreement,decipherOnly"},
    {.name = "crafted RSA-2048 SPKI", .post = t_rsa_2048},
    {.name = "subject emailAddress + serialNumber", .edit = e_add_email_same},
    {.name = "subject serialNumber", .edit = e_add_serial_ok},
    {.name = "CN domain in other case", .edit = e_cn_upper_domain},
    {.name = "SmtpUTF8Mailbox in SAN and CN", .edit = e_smtputf8_cn},
    {.name = "rfc822Name with an A-label domain", .mailbox = "alice@" CG_MUENCHEN_A},
    {.name = "rfc822Name with an upper-case A-label", .mailbox = "alice@XN--MNCHEN-3YA.example"},
    {.name = "SmtpUTF8Mailbox with an A-label domain", .edit = e_smtputf8_alabel},
    {.name = "empty subject, critical SAN", .edit = e_subject_empty_san_critical},
    {.name = "MP with clientAuth and a UPN otherName",
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "extendedKeyUsage",
     .conf_value = "emailProtection,clientAuth"},
    /* RFC 5280 4.2.1.12: clientAuth goes with digitalSignature or keyAgreement */
    {.name = "EC MP key agreement with clientAuth",
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "keyUsage",
     .conf_value = "critical,keyAgreement",
     .edit = e_eku_email_client},
    {.name = "RSA MP dual use with clientAuth",
     .key = CG_KEY_RSA2048,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyEncipherment",
     .edit = e_eku_email_client},
    {.name = "RSA MP key management without clientAuth",
     .key = CG_KEY_RSA2048,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "keyUsage",
     .conf_value = "critical,keyEncipherment"},
    {.name = "MP UPN otherName",
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "subjectAltName",
     .conf_value = "email:" CG_MAILBOX ",otherName:1.3.6.1.4.1.311.20.2.3;UTF8:" CG_MAILBOX},
    {.name = "https CPS and UTF8 explicitText",
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_CPS_OK},
    {.name = "basicConstraints cA FALSE",
     .conf_name = "basicConstraints",
     .conf_value = "critical,CA:FALSE"},
    {.name = "smimeCapabilities non-critical", .raw_oid = CG_OID_SMIMECAP, .raw_hex = "30 00"},
    {.name = "qcStatements non-critical (QcCompliance)",
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_COMPLIANCE},
    {.name = "Adobe timestamp in MP",
     .gen = MC_GEN_MULTIPURPOSE,
     .raw_oid = CG_OID_ADOBE_TS,
     .raw_hex = "30 00"},
    {.name = "validity one second below the maximum", .validity = 825 * CG_DAY - 2},
    {.name = "GeneralizedTime from 2050", .post = t_time_2050},
    {.name = "serial of 8 octets", .serial_hex = "7f 01 02 03 04 05 06 07"},
    {.name = "serial of 20 octets",
     .serial_hex = "7f 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13"},
    {.name = "mailbox with quoted local part", .mailbox = "\"a b\"@example.com"},
    {.name = "legacy before its sunset, 1000 days, ldap+http CRL",
     .gen = MC_GEN_LEGACY,
     .validity = 1000 * CG_DAY,
     .raw_oid = CG_OID_CRLDP,
     .raw_hex = HX_CRLDP_LDAP_HTTP,
     .now = T_BEFORE_LEGACY_SUNSET},
    {.name = "SBR lints not in force before 2023-09-01",
     .del = CG_OID_POLICIES,
     .now = T_BEFORE_SBR},

    /* ---- structure ---- */
    {.name = "truncated TBS", .id = "e_cert_der_invalid", .only = 1, .post = t_truncate},
    {.name = "version v2", .id = "e_cert_version_not_v3", .only = 1, .edit = e_version_v2},
    {.name = "issuerUniqueID",
     .id = "e_cert_unique_identifier_present",
     .only = 1,
     .post = cg_tbs_unique_id},
    {.name = "serial zero", .id = "e_serial_number_not_positive", .only = 1, .serial_hex = "00"},
    {.name = "serial negative",
     .id = "e_serial_number_not_positive",
     .only = 1,
     .post = t_serial_negative},
    {.name = "serial 21 octets",
     .id = "e_serial_number_longer_than_20_octets",
     .only = 1,
     .serial_hex = "7f 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14"},
    {.name = "serial 20 octets + sign octet",
     .id = "e_serial_number_longer_than_20_octets",
     .only = 1,
     .serial_hex = "80 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13"},
    {.name = "serial with a redundant 00",
     .id = "e_serial_number_not_minimal_der",
     .only = 1,
     .post = cg_tbs_serial_padded},
    /* SBR 7.1, 64 bits of CSPRNG output: below 2^32 an error, below 8 octets a warning */
    {.name = "serial 4 octets",
     .id = "e_serial_number_too_short",
     .only = 1,
     .serial_hex = "12 34 56 78"},
    {.name = "serial 1", .id = "e_serial_number_too_short", .only = 1, .serial_hex = "01"},
    {.name = "serial 2^32 - 1 (5 octets with the sign octet)",
     .id = "e_serial_number_too_short",
     .only = 1,
     .serial_hex = "ff ff ff ff"},
    {.name = "serial 2^32",
     .id = "w_serial_number_low_entropy",
     .only = 1,
     .serial_hex = "01 00 00 00 00"},
    {.name = "serial 7 octets",
     .id = "w_serial_number_low_entropy",
     .only = 1,
     .serial_hex = "7f 01 02 03 04 05 06"},
    {.name = "UTCTime without seconds",
     .id = "e_validity_time_format",
     .only = 1,
     .post = t_time_nosec},
    {.name = "GeneralizedTime in 2026",
     .id = "e_validity_time_wrong_type",
     .only = 1,
     .post = cg_tbs_time_generalized},
    {.name = "notAfter before notBefore",
     .id = "e_validity_not_after_before_not_before",
     .only = 1,
     .validity = -CG_DAY},
    {.name = "825 days + 1 s",
     .id = "e_smime_validity_too_long",
     .only = 1,
     .validity = 825 * CG_DAY},
    {.name = "MP 826 days",
     .id = "e_smime_validity_too_long",
     .only = 1,
     .gen = MC_GEN_MULTIPURPOSE,
     .validity = 826 * CG_DAY},
    {.name = "legacy 1185 days + 1 s",
     .id = "e_smime_validity_too_long",
     .only = 1,
     .gen = MC_GEN_LEGACY,
     .validity = 1185 * CG_DAY,
     .now = T_BEFORE_LEGACY_SUNSET},
    {.name = "exactly 825 days",
     .id = "w_smime_validity_at_maximum",
     .only = 1,
     .validity = 825 * CG_DAY - 1},

    /* ---- keys and algorithms ---- */
    {.name = "secp256k1 SPKI",
     .id = "e_smime_spki_algorithm_encoding",
     .only = 1,
     .post = t_secp256k1},
    {.name = "X25519 SPKI", .id = "e_smime_spki_algorithm_encoding", .only = 1, .post = t_x25519},
    {.name = "Ed25519 key of 31 bytes",
     .id = "e_spki_key_malformed",
     .only = 1,
     .post = t_ed25519_short},
    {.name = "Ed448 key of 56 bytes", .id = "e_spki_key_malformed", .only = 1, .post = t_ed448_56},
    {.name = "Ed448 key of 32 bytes", .id = "e_spki_key_malformed", .only = 1, .post = t_ed448_32},
    {.name = "id-Ed448 with NULL parameters",
     .id = "e_smime_spki_algorithm_encoding",
     .only = 1,
     .post = t_ed448_null},
    {.name = "X448 SPKI", .id = "e_smime_spki_algorithm_encoding", .only = 1, .post = t_x448},
    {.name = "RSAPublicKey not a SEQUENCE",
     .id = "e_spki_key_malformed",
     .only = 1,
     .post = t_rsa_garbage},
    {.name = "RSA 2040 bits", .id = "e_smime_rsa_modulus_size", .only = 1, .post = t_rsa_2040},
    {.name = "RSA 2052 bits", .id = "e_smime_rsa_modulus_size", .only = 1, .post = t_rsa_2052},
    {.name = "RSA even exponent", .id = "e_smime_rsa_exponent", .only = 1, .post = t_rsa_even_exp},
    {.name = "RSA exponent 1", .id = "e_smime_rsa_exponent", .only = 1, .post = t_rsa_exp_1},
    {.name = "compressed P-256 point",
     .id = "e_smime_ec_point_invalid",
     .only = 1,
     .post = t_ec_compressed},
    /* SBR 6.1.5: a valid point on the curve */
    {.name = "P-256 point off the curve (Y + 1)",
     .id = "e_smime_ec_point_invalid",
     .only = 1,
     .post = t_ec_flip_y},
    {.name = "P-384 point off the curve",
     .id = "e_smime_ec_point_invalid",
     .only = 1,
     .key = CG_KEY_P384,
     .post = t_ec_flip_y},
    {.name = "P-521 point off the curve",
     .id = "e_smime_ec_point_invalid",
     .only = 1,
     .post = t_p521_flip_y},
    {.name = "P-256 point with X = p",
     .id = "e_smime_ec_point_invalid",
     .only = 1,
     .post = t_p256_x_is_p},
    {.name = "Ed25519 y = 2 (no x)",
     .id = "e_smime_ec_point_invalid",
     .only = 1,
     .post = t_ed25519_y2},
    {.name = "Ed25519 y = p", .id = "e_smime_ec_point_invalid", .only = 1, .post = t_ed25519_y_p},
    {.name = "Ed25519 x = 0 with the sign bit set",
     .id = "e_smime_ec_point_invalid",
     .only = 1,
     .post = t_ed25519_x0},
    {.name = "Ed448 y = 2 (no x)", .id = "e_smime_ec_point_invalid", .only = 1, .post = t_ed448_y2},
    {.name = "Ed448 with bit 448 set",
     .id = "e_smime_ec_point_invalid",
     .only = 1,
     .post = t_ed448_bit448},
    {.name = "TBS signature sha1WithRSA",
     .id = "e_smime_signature_algorithm_encoding",
     .only = 1,
     .post = t_sigalg_sha1,
     .ctx = C_NO_ISSUER},
    {.name = "outer signatureAlgorithm differs",
     .id = "e_signature_algorithm_mismatch",
     .only = 1,
     .ctx = C_WHOLE | C_OUTER_384},
    {.name = "issuer signs with SHA-384",
     .id = "e_smime_signature_algorithm_not_issuer",
     .only = 1,
     .ctx = C_ISSUER_384},
    {.name = "issuer Name differs",
     .id = "e_smime_issuer_name_mismatch",
     .only = 1,
     .edit = e_other_issuer},

    /* ---- extension list ---- */
    {.name = "duplicate SKI",
     .id = "e_ext_duplicate",
     .only = 1,
     .raw_oid = CG_OID_SKI,
     .raw_hex = "04 02 ab cd",
     .raw_add = 1},
    {.name = "critical FALSE encoded",
     .id = "e_ext_critical_false_encoded",
     .only = 1,
     .post = t_crit_false},
    {.name = "EKU not a SEQUENCE",
     .id = "e_ext_value_malformed",
     .only = 1,
     .raw_oid = CG_OID_EKU,
     .raw_hex = "04 00"},
    {.name = "KU BIT STRING with trailing zero octet",
     .id = "e_ext_value_malformed",
     .only = 1,
     .raw_oid = CG_OID_KU,
     .raw_crit = 1,
     .raw_hex = "03 03 00 80 00"},
    {.name = "unknown policy qualifier",
     .id = "e_ext_value_malformed",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_BADQUAL},
    {.name = "basicConstraints cA FALSE encoded",
     .id = "e_ext_value_malformed",
     .only = 1,
     .raw_oid = CG_OID_BC,
     .raw_hex = "30 03 01 01 00"},
    {.name = "unknown extension",
     .id = "e_smime_ext_not_allowed",
     .only = 1,
     .raw_oid = "1.3.6.1.4.1.99999.7",
     .raw_hex = "05 00"},
    {.name = "nameConstraints",
     .id = "e_smime_ext_not_allowed",
     .only = 1,
     .raw_oid = "2.5.29.30",
     .raw_hex = "30 00"},
    {.name = "Adobe timestamp in Strict",
     .id = "e_smime_ext_prohibited_for_profile",
     .only = 1,
     .raw_oid = CG_OID_ADOBE_TS,
     .raw_hex = "30 00"},
    {.name = "subjectDirectoryAttributes in MP",
     .id = "e_smime_ext_prohibited_for_profile",
     .only = 1,
     .gen = MC_GEN_MULTIPURPOSE,
     .raw_oid = CG_OID_SDA,
     .raw_hex = HX_SDA},
    {.name = "LEI in mailbox-validated",
     .id = "e_smime_ext_prohibited_for_profile",
     .only = 1,
     .raw_oid = CG_OID_LEI,
     .raw_hex = "13 02 41 41"},
    {.name = "critical qcStatements",
     .id = "e_smime_ext_critical",
     .only = 1,
     .raw_oid = CG_OID_QCS,
     .raw_crit = 1,
     .raw_hex = HX_QCS_COMPLIANCE},
    {.name = "critical Adobe timestamp in MP",
     .id = "e_smime_ext_critical",
     .only = 1,
     .gen = MC_GEN_MULTIPURPOSE,
     .raw_oid = CG_OID_ADOBE_TS,
     .raw_crit = 1,
     .raw_hex = "30 00"},
    /* SBR 7.1.2.3(j): subjectDirectoryAttributes in Legacy only, non-critical */
    {.name = "subjectDirectoryAttributes in Legacy",
     .gen = MC_GEN_LEGACY,
     .raw_oid = CG_OID_SDA,
     .raw_hex = HX_SDA,
     .now = T_BEFORE_LEGACY_SUNSET},
    {.name = "critical subjectDirectoryAttributes in Legacy",
     .id = "e_smime_ext_critical",
     .only = 1,
     .gen = MC_GEN_LEGACY,
     .raw_oid = CG_OID_SDA,
     .raw_crit = 1,
     .raw_hex = HX_SDA,
     .now = T_BEFORE_LEGACY_SUNSET},
    {.name = "subjectDirectoryAttributes in Strict",
     .id = "e_smime_ext_prohibited_for_profile",
     .only = 1,
     .raw_oid = CG_OID_SDA,
     .raw_hex = HX_SDA},
    /* SBR 7.1.2.3(m): Adobe ArchiveRevInfo (ArchiveRevInfo ::= SEQUENCE { version INTEGER }) */
    {.name = "Adobe ArchiveRevInfo in MP",
     .gen = MC_GEN_MULTIPURPOSE,
     .raw_oid = OID_ADOBE_ARCH,
     .raw_hex = "30 03 02 01 01"},
    {.name = "Adobe ArchiveRevInfo in Legacy",
     .gen = MC_GEN_LEGACY,
     .raw_oid = OID_ADOBE_ARCH,
     .raw_hex = "30 03 02 01 01",
     .now = T_BEFORE_LEGACY_SUNSET},
    {.name = "Adobe ArchiveRevInfo in Strict",
     .id = "e_smime_ext_prohibited_for_profile",
     .only = 1,
     .raw_oid = OID_ADOBE_ARCH,
     .raw_hex = "30 03 02 01 01"},
    {.name = "critical Adobe ArchiveRevInfo in MP",
     .id = "e_smime_ext_critical",
     .only = 1,
     .gen = MC_GEN_MULTIPURPOSE,
     .raw_oid = OID_ADOBE_ARCH,
     .raw_crit = 1,
     .raw_hex = "30 03 02 01 01"},

    /* ---- certificatePolicies, SBR 7.1.2.3(a) ---- */
    {.name = "no policies",
     .id = "e_smime_certificate_policies_missing",
     .only = 1,
     .del = CG_OID_POLICIES},
    {.name = "critical policies",
     .id = "w_smime_certificate_policies_critical",
     .only = 1,
     .crit_oid = CG_OID_POLICIES},
    {.name = "two reserved OIDs",
     .id = "e_smime_exactly_one_reserved_policy",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_TWO},
    {.name = "no reserved OID",
     .id = "e_smime_exactly_one_reserved_policy",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_NONE},
    {.name = "anyPolicy",
     .id = "e_smime_any_policy_present",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_ANY},
    {.name = "ftp CPS URI",
     .id = "e_smime_cps_uri_not_http",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_CPS_FTP},
    {.name = "userNotice with noticeRef",
     .id = "e_smime_user_notice_has_notice_ref",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_NOTICEREF},
    {.name = "userNotice without explicitText",
     .id = "e_smime_user_notice_no_explicit_text",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_NOTEXT},
    {.name = "explicitText IA5String",
     .id = "e_explicit_text_encoding",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_IA5TEXT},
    {.name = "explicitText UTF8String of 200 characters (400 octets)", .edit = e_notice_utf8_200},
    {.name = "explicitText UTF8String of 201 characters",
     .id = "e_explicit_text_encoding",
     .only = 1,
     .edit = e_notice_utf8_201},
    {.name = "explicitText VisibleString",
     .id = "w_explicit_text_not_utf8",
     .only = 1,
     .edit = e_notice_visible},
    {.name = "explicitText BMPString of 200 characters",
     .id = "w_explicit_text_not_utf8",
     .only = 1,
     .edit = e_notice_bmp_200},
    {.name = "explicitText BMPString of 201 characters",
     .id = "e_explicit_text_encoding",
     .only = 1,
     .edit = e_notice_bmp_201},
    {.name = "explicitText VisibleString of 201 characters",
     .id = "e_explicit_text_encoding",
     .only = 1,
     .edit = e_notice_visible_201},
    {.name = "explicitText VisibleString with a control character",
     .id = "e_explicit_text_encoding",
     .only = 1,
     .edit = e_notice_visible_ctrl},
    {.name = "explicitText BMPString of 3 octets",
     .id = "e_explicit_text_encoding",
     .only = 1,
     .edit = e_notice_bmp_odd},
    {.name = "explicitText BMPString with a surrogate",
     .id = "e_explicit_text_encoding",
     .only = 1,
     .edit = e_notice_bmp_surrogate},
    {.name = "strict certificate, MP profile",
     .id = "e_smime_policy_not_profile",
     .only = 1,
     .ctx = C_PROFILE_MP},
    {.name = "legacy after 2025-07-15",
     .id = "e_smime_legacy_generation_prohibited",
     .only = 1,
     .gen = MC_GEN_LEGACY},

    /* ---- cRLDistributionPoints, (b) ---- */
    {.name = "no CRL DP", .id = "e_smime_crldp_missing", .only = 1, .del = CG_OID_CRLDP},
    {.name = "critical CRL DP",
     .id = "w_smime_crldp_critical",
     .only = 1,
     .crit_oid = CG_OID_CRLDP},
    {.name = "CRL DP with a dNSName only",
     .id = "e_smime_crldp_no_fullname_uri",
     .only = 1,
     .raw_oid = CG_OID_CRLDP,
     .raw_hex = HX_CRLDP_DNS},
    {.name = "https CRL URI",
     .id = "e_smime_crldp_uri_not_http",
     .only = 1,
     .raw_oid = CG_OID_CRLDP,
     .raw_hex = HX_CRLDP_HTTPS},
    {.name = "strict: ldap next to http",
     .id = "e_smime_crldp_uri_not_http",
     .only = 1,
     .raw_oid = CG_OID_CRLDP,
     .raw_hex = HX_CRLDP_LDAP_HTTP},
    {.name = "legacy: ldap only",
     .id = "e_smime_crldp_uri_not_http",
     .only = 1,
     .gen = MC_GEN_LEGACY,
     .raw_oid = CG_OID_CRLDP,
     .raw_hex = HX_CRLDP_LDAP,
     .now = T_BEFORE_LEGACY_SUNSET},

    /* ---- AIA, (c) ---- */
    {.name = "no AIA", .id = "w_smime_aia_missing", .only = 1, .del = CG_OID_AIA},
    {.name = "critical AIA", .id = "e_smime_aia_critical", .only = 1, .crit_oid = CG_OID_AIA},
    {.name = "https OCSP",
     .id = "e_smime_aia_location_not_http",
     .only = 1,
     .conf_name = "authorityInfoAccess",
     .conf_value = "OCSP;URI:https://ocsp.example.com,caIssuers;URI:http://ca.example.com/ca.cer"},
    {.name = "ldap caIssuers in MP",
     .id = "e_smime_aia_location_not_http",
     .only = 1,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "authorityInfoAccess",
     .conf_value = "OCSP;URI:http://ocsp.example.com,caIssuers;URI:ldap://ca.example.com/ca"},
    {.name = "AIA without caIssuers",
     .id = "w_smime_aia_ca_issuers_missing",
     .only = 1,
     .conf_name = "authorityInfoAccess",
     .conf_value = "OCSP;URI:http://ocsp.example.com"},
    /* Legacy: at least one http location per access method; other schemes may be present */
    {.name = "legacy: ldap OCSP only",
     .id = "e_smime_aia_location_not_http",
     .only = 1,
     .gen = MC_GEN_LEGACY,
     .conf_name = "authorityInfoAccess",
     .conf_value = "OCSP;URI:ldap://ocsp.example.com/,caIssuers;URI:http://ca.example.com/ca.cer",
     .now = T_BEFORE_LEGACY_SUNSET},
    {.name = "legacy: ldap caIssuers only",
     .id = "e_smime_aia_location_not_http",
     .only = 1,
     .gen = MC_GEN_LEGACY,
     .conf_name = "authorityInfoAccess",
     .conf_value = "OCSP;URI:http://ocsp.example.com,caIssuers;URI:ldap://ca.example.com/ca",
     .now = T_BEFORE_LEGACY_SUNSET},
    {.name = "legacy: ldap next to http, OCSP and caIssuers",
     .gen = MC_GEN_LEGACY,
     .conf_name = "authorityInfoAccess",
     .conf_value =
         "OCSP;URI:ldap://ocsp.example.com/,OCSP;URI:http://ocsp.example.com,"
         "caIssuers;URI:ldap://ca.example.com/ca,caIssuers;URI:http://ca.example.com/ca.cer",
     .now = T_BEFORE_LEGACY_SUNSET},

    /* ---- mailca policy (RFC 6761): (a)(b)(c) URLs for relying parties under a special-use
     * domain ---- */
    {.name = "CRL URI under .test (the demo default)",
     .id = "w_smime_uri_host_reserved",
     .only = 1,
     .conf_name = "crlDistributionPoints",
     .conf_value = "URI:http://pki.mailca.test/issuing-ca.crl"},
    {.name = "OCSP under .LOCALHOST with a port",
     .id = "w_smime_uri_host_reserved",
     .only = 1,
     .conf_name = "authorityInfoAccess",
     .conf_value =
         "OCSP;URI:http://ocsp.LOCALHOST:8080/,caIssuers;URI:http://ca.example.com/ca.cer"},
    {.name = "caIssuers under home.arpa., absolute, with userinfo",
     .id = "w_smime_uri_host_reserved",
     .only = 1,
     .conf_name = "authorityInfoAccess",
     .conf_value = "OCSP;URI:http://ocsp.example.com,caIssuers;URI:http://u@ca.home.arpa./ca.cer"},
    {.name = "CPS URI under .example",
     .id = "w_smime_uri_host_reserved",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_CPS_RESERVED},
    {.name = "CPS URI under example.com (delegated)",
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_CPS_PUBLIC},
    {.name = "CRL URI with a label named test, and a TLD ending in test",
     .conf_name = "crlDistributionPoints",
     .conf_value = "URI:http://test.example.com/ca.crl,URI:http://crl.contest/ca.crl"},

    /* ---- basicConstraints, (d) ---- */
    {.name = "cA TRUE",
     .id = "e_smime_basic_constraints_ca",
     .only = 1,
     .conf_name = "basicConstraints",
     .conf_value = "critical,CA:TRUE"},
    {.name = "pathLenConstraint",
     .id = "e_smime_basic_constraints_path_len",
     .only = 1,
     .raw_oid = CG_OID_BC,
     .raw_hex = "30 03 02 01 00"},

    /* ---- keyUsage, (e) ---- */
    {.name = "no KU", .id = "e_smime_key_usage_missing", .only = 1, .del = CG_OID_KU},
    {.name = "KU not critical",
     .id = "w_smime_key_usage_not_critical",
     .only = 1,
     .crit_oid = CG_OID_KU,
     .uncrit = 1},
    {.name = "KU no bits",
     .id = "e_key_usage_no_bits",
     .only = 1,
     .raw_oid = CG_OID_KU,
     .raw_crit = 1,
     .raw_hex = "03 01 00"},
    {.name = "encipherOnly + decipherOnly",
     .id = "e_smime_key_usage_encipher_and_decipher_only",
     .only = 1,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyAgreement,encipherOnly,decipherOnly"},
    {.name = "EC keyEncipherment",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyEncipherment"},
    {.name = "EC keyCertSign",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyCertSign"},
    {.name = "EC encipherOnly without keyAgreement",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,encipherOnly"},
    {.name = "EC nonRepudiation only",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .conf_name = "keyUsage",
     .conf_value = "critical,nonRepudiation"},
    {.name = "RSA strict dataEncipherment",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .key = CG_KEY_RSA2048,
     .conf_name = "keyUsage",
     .conf_value = "critical,keyEncipherment,dataEncipherment"},
    {.name = "RSA keyAgreement",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .key = CG_KEY_RSA2048,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyAgreement"},
    {.name = "Ed25519 keyAgreement",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .key = CG_KEY_ED25519,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyAgreement"},
    {.name = "Ed448 keyEncipherment",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .key = CG_KEY_ED448,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyEncipherment"},
    {.name = "Ed448 MP keyAgreement",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .key = CG_KEY_ED448,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "keyUsage",
     .conf_value = "critical,digitalSignature,keyAgreement"},
    {.name = "Ed448 nonRepudiation only",
     .id = "e_smime_key_usage_bits",
     .only = 1,
     .key = CG_KEY_ED448,
     .conf_name = "keyUsage",
     .conf_value = "critical,nonRepudiation"},

    /* ---- extKeyUsage, (f) ---- */
    {.name = "no EKU", .id = "e_smime_eku_missing", .only = 1, .del = CG_OID_EKU},
    {.name = "MP EKU clientAuth only",
     .id = "e_smime_eku_email_protection_missing",
     .only = 1,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "extendedKeyUsage",
     .conf_value = "clientAuth"},
    {.name = "serverAuth",
     .id = "e_smime_eku_prohibited",
     .only = 1,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "extendedKeyUsage",
     .conf_value = "emailProtection,serverAuth"},
    {.name = "anyExtendedKeyUsage",
     .id = "e_smime_eku_prohibited",
     .only = 1,
     .conf_name = "extendedKeyUsage",
     .conf_value = "emailProtection,anyExtendedKeyUsage"},
    {.name = "strict clientAuth",
     .id = "e_smime_eku_strict_other_purpose",
     .only = 1,
     .conf_name = "extendedKeyUsage",
     .conf_value = "emailProtection,clientAuth"},
    {.name = "RSA MP key management with clientAuth",
     .id = "w_eku_key_usage_inconsistent",
     .only = 1,
     .key = CG_KEY_RSA2048,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "keyUsage",
     .conf_value = "critical,keyEncipherment",
     .edit = e_eku_email_client},
    {.name = "RSA MP key management, dataEncipherment, with clientAuth",
     .id = "w_eku_key_usage_inconsistent",
     .only = 1,
     .key = CG_KEY_RSA2048,
     .gen = MC_GEN_MULTIPURPOSE,
     .conf_name = "keyUsage",
     .conf_value = "critical,keyEncipherment,dataEncipherment",
     .edit = e_eku_email_client},

    /* ---- authorityKeyIdentifier, (g) ---- */
    {.name = "no AKI", .id = "e_smime_aki_missing", .only = 1, .del = CG_OID_AKI},
    {.name = "critical AKI", .id = "e_smime_aki_critical", .only = 1, .crit_oid = CG_OID_AKI},
    {.name = "AKI without keyIdentifier",
     .id = "e_smime_aki_key_identifier_missing",
     .only = 1,
     .raw_oid = CG_OID_AKI,
     .raw_hex = "30 00"},
    {.name = "AKI with serial",
     .id = "e_smime_aki_issuer_serial_present",
     .only = 1,
     .edit = e_aki_with_serial},
    {.name = "AKI of another CA",
     .id = "e_smime_aki_not_issuer_ski",
     .only = 1,
     .raw_oid = CG_OID_AKI,
     .raw_hex = HX_AKI_OTHER},

    /* ---- subjectAltName, (h) and 7.1.4.2.1 ---- */
    {.name = "no SAN", .id = "e_smime_san_missing", .del = CG_OID_SAN},
    {.name = "SAN with a directoryName only",
     .id = "e_smime_san_no_mailbox",
     .edit = e_subject_empty_san_dirname},
    /* the same, each the only error: a subject of a serialNumber alone (no mailbox in it) */
    {.name = "no SAN, subject serialNumber only",
     .id = "e_smime_san_missing",
     .only = 1,
     .del = CG_OID_SAN,
     .subj = "!SER=A-1234567"},
    {.name = "SAN of a directoryName {serialNumber} only, subject serialNumber only",
     .id = "e_smime_san_no_mailbox",
     .only = 1,
     .raw_oid = CG_OID_SAN,
     .raw_hex = HX_SAN_DIRNAME_SERIAL,
     .subj = "!SER=A-1234567"},
    {.name = "SAN dNSName",
     .id = "e_smime_san_prohibited_name_type",
     .only = 1,
     .conf_name = "subjectAltName",
     .conf_value = "email:" CG_MAILBOX ",DNS:example.com"},
    {.name = "SAN URI",
     .id = "e_smime_san_prohibited_name_type",
     .only = 1,
     .conf_name = "subjectAltName",
     .conf_value = "email:" CG_MAILBOX ",URI:http://example.com/"},
    {.name = "SAN IP",
     .id = "e_smime_san_prohibited_name_type",
     .only = 1,
     .conf_name = "subjectAltName",
     .conf_value = "email:" CG_MAILBOX ",IP:192.0.2.1"},
    {.name = "SAN registeredID",
     .id = "e_smime_san_prohibited_name_type",
     .only = 1,
     .conf_name = "subjectAltName",
     .conf_value = "email:" CG_MAILBOX ",RID:1.2.3.4"},
    {.name = "strict UPN otherName",
     .id = "e_smime_san_strict_other_name",
     .only = 1,
     .conf_name = "subjectAltName",
     .conf_value = "email:" CG_MAILBOX ",otherName:1.3.6.1.4.1.311.20.2.3;UTF8:" CG_MAILBOX},
    {.name = "empty subject, SAN not critical",
     .id = "e_san_not_critical_subject_empty",
     .only = 1,
     .edit = e_subject_empty},
    {.name = "SAN critical with a subject",
     .id = "w_smime_san_critical",
     .only = 1,
     .crit_oid = CG_OID_SAN},
    {.name = "rfc822Name with '..'",
     .id = "e_smime_san_rfc822_name_syntax",
     .only = 1,
     .mailbox = "alice..x@example.com"},
    {.name = "rfc822Name with a display name",
     .id = "e_smime_san_rfc822_name_syntax",
     .only = 1,
     .mailbox = "Alice <alice@example.com>"},
    {.name = "rfc822Name without a domain",
     .id = "e_smime_san_rfc822_name_syntax",
     .only = 1,
     .mailbox = "alice@"},
    {.name = "rfc822Name with a bad label",
     .id = "e_smime_san_rfc822_name_syntax",
     .only = 1,
     .mailbox = "alice@-example.com"},
    {.name = "SmtpUTF8Mailbox with an upper-case domain",
     .id = "e_smime_san_smtputf8_mailbox_syntax",
     .only = 1,
     .edit = e_smtputf8_upper},
    {.name = "SmtpUTF8Mailbox with a BOM",
     .id = "e_smime_san_smtputf8_mailbox_syntax",
     .only = 1,
     .edit = e_smtputf8_bom},
    {.name = "SmtpUTF8Mailbox with invalid UTF-8",
     .id = "e_smime_san_smtputf8_mailbox_syntax",
     .only = 1,
     .edit = e_smtputf8_bad_utf8},
    {.name = "SmtpUTF8Mailbox as IA5String",
     .id = "e_smime_san_smtputf8_mailbox_syntax",
     .only = 1,
     .conf_name = "subjectAltName",
     .conf_value = "email:" CG_MAILBOX ",otherName:1.3.6.1.5.5.7.8.9;IA5:bob@example.com"},
    {.name = "SmtpUTF8Mailbox with an ASCII local part",
     .id = "e_smime_san_smtputf8_mailbox_ascii_local_part",
     .only = 1,
     .edit = cg_edit_smtputf8_ascii},
    {.name = "rfc822Name with a U-label domain",
     .id = "e_smime_san_mailbox_domain_u_label",
     .only = 1,
     .edit = cg_edit_rfc822_ulabel},
    {.name = "SmtpUTF8Mailbox with a U-label domain",
     .id = "e_smime_san_mailbox_domain_u_label",
     .only = 1,
     .edit = cg_edit_smtputf8_ulabel},
    {.name = "rfc822Name with undecodable punycode",
     .id = "e_smime_san_mailbox_domain_a_label_invalid",
     .only = 1,
     .mailbox = "alice@xn--zz.example"},
    {.name = "rfc822Name with an A-label of a disallowed character",
     .id = "e_smime_san_mailbox_domain_a_label_invalid",
     .only = 1,
     .mailbox = "alice@xn--n3h.example"},
    {.name = "SmtpUTF8Mailbox with an invalid A-label",
     .id = "e_smime_san_mailbox_domain_a_label_invalid",
     .only = 1,
     .edit = e_smtputf8_bad_alabel},

    /* ---- SKI (n), smimeCapabilities (i) ---- */
    {.name = "critical SKI", .id = "e_smime_ski_critical", .only = 1, .crit_oid = CG_OID_SKI},
    {.name = "no SKI", .id = "w_smime_ski_missing", .only = 1, .del = CG_OID_SKI},
    {.name = "critical smimeCapabilities",
     .id = "e_smime_capabilities_critical",
     .only = 1,
     .raw_oid = CG_OID_SMIMECAP,
     .raw_crit = 1,
     .raw_hex = "30 00"},

    /* ---- subject, SBR 7.1.4 ---- */
    {.name = "organizationName in MV",
     .id = "e_smime_subject_attribute_prohibited",
     .only = 1,
     .edit = e_add_org},
    {.name = "streetAddress in MV",
     .id = "e_smime_subject_attribute_prohibited",
     .only = 1,
     .edit = e_add_street},
    {.name = "CN another mailbox",
     .id = "e_smime_mailbox_cn_not_in_san",
     .only = 1,
     .edit = e_cn_other},
    {.name = "CN a personal name",
     .id = "e_smime_mailbox_cn_not_in_san",
     .only = 1,
     .edit = e_cn_name},
    {.name = "emailAddress not in SAN",
     .id = "e_smime_email_address_not_in_san",
     .only = 1,
     .edit = e_add_email_other},
    {.name = "emailAddress with two mailboxes",
     .id = "e_smime_email_address_not_in_san",
     .only = 1,
     .edit = e_add_email_two},
    {.name = "serialNumber 65 characters",
     .id = "e_subject_attribute_too_long",
     .only = 1,
     .edit = e_add_serial_long},
    {.name = "CN 65 characters",
     .id = "e_subject_attribute_too_long",
     .only = 1,
     .edit = e_cn_long},
    {.name = "serialNumber UTF8String",
     .id = "e_subject_attribute_encoding",
     .only = 1,
     .edit = e_add_serial_utf8},
    {.name = "serialNumber with '_'",
     .id = "e_subject_attribute_encoding",
     .only = 1,
     .edit = e_add_serial_bad_printable},
    {.name = "emailAddress UTF8String",
     .id = "e_subject_attribute_encoding",
     .only = 1,
     .edit = e_add_email_utf8},
    {.name = "CN BMPString", .id = "e_subject_attribute_encoding", .only = 1, .edit = e_cn_bmp},
    {.name = "CN mailbox in PrintableString",
     .id = "e_subject_attribute_encoding",
     .only = 1,
     .edit = e_cn_printable_mailbox},
    {.name = "serialNumber '-'",
     .id = "e_smime_subject_placeholder_value",
     .only = 1,
     .edit = e_add_serial_placeholder},
    {.name = "serialNumber 'N/A'",
     .id = "e_smime_subject_placeholder_value",
     .only = 1,
     .edit = e_add_serial_na},

/* ---- organization, sponsor and individual subjects, SBR 7.1.4.2.2 - 7.1.4.2.6 ---- */
#define OV_BASE "C=GB;O=Example Ltd;OI=NTRGB-12345678"
#define LEI_OK "35 34 39 33 30 30 31 4b 4a 54 49 49 47 43 38 59 31 52 31 32"
#define HX_10_R "52 52 52 52 52 52 52 52 52 52 "
#define HX_100_R HX_10_R HX_10_R HX_10_R HX_10_R HX_10_R HX_10_R HX_10_R HX_10_R HX_10_R HX_10_R
    {.name = "OV strict, CN mailbox", .type = MC_TYPE_ORGANIZATION, .subj = OV_BASE},
    {.name = "OV strict, CN organizationName",
     .type = MC_TYPE_ORGANIZATION,
     .subj = "!C=GB;O=Example Ltd;OU=Example Holdings BV;OI=NTRGB-12345678;CN=Example Ltd"},
    {.name = "OV MP with a full address",
     .type = MC_TYPE_ORGANIZATION,
     .gen = MC_GEN_MULTIPURPOSE,
     .subj = OV_BASE ";ST=London;L=London;STREET=1 High Street;PC=EC1A 1AA"},
    {.name = "OV with VATEL (country GR) and LEIXG identifiers",
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=GR;O=A;OI=VATEL-123456789;O=B;OI=LEIXG-5493001KJTIIGC8Y1R12"},
    {.name = "OV GOV with subdivision",
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=US;O=State of "
             "California;OI="
             "GOVUS+CA"},
    {.name = "OV INTXG without countryName",
     .type = MC_TYPE_ORGANIZATION,
     .subj = "O=United Nations;OI=INTXG"},
    {.name = "OV with a valid LEI extension",
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_LEI,
     .raw_hex = "13 14 " LEI_OK},
    /* SBR 7.1.2.3(k): qcStatements per RFC 3739 3.2.6 / ETSI EN 319 412-5 4 */
    {.name = "OV with legal semantics, QcCompliance, QcSSCD, QcPDS, QcType eseal, legislation",
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_OV},
    {.name = "SV with natural semantics, QcCompliance, retention, limit, QcType esign",
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_SV},
    /* ETSI EN 319 412-1 5.1.3: natural semantics, serialNumber as a natural person identifier */
    {.name = "SV natural semantics, serialNumber PNODE-...",
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith;SER=PNODE-1234567890",
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_SV},
    {.name = "SV natural semantics, serialNumber of a national scheme AB:DE-...",
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith;SER=AB:DE-12345",
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_SV},
    {.name = "SV natural semantics, serialNumber CASE-86",
     .id = "e_qc_natural_serial_number_format",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith;SER=CASE-86",
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_SV},
    {.name = "SV natural semantics, serialNumber with a lower-case country",
     .id = "e_qc_natural_serial_number_format",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith;SER=PNOde-123",
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_SV},
    {.name = "SV without qcStatements, serialNumber CASE-86",
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith;SER=CASE-86"},
    {.name = "IV with QcType esign",
     .type = MC_TYPE_INDIVIDUAL,
     .gen = MC_GEN_MULTIPURPOSE,
     .subj = "C=GB;GN=Ada;SN=Lovelace",
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_ESIGN},
    {.name = "SV with LEI and role extensions",
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .edit = e_add_lei_and_role},
    {.name = "SV with a role extension of 100 characters",
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .raw_oid = CG_OID_LEI_ROLE,
     .raw_hex = "13 64 " HX_100_R},
    {.name = "SV strict, personal name",
     .type = MC_TYPE_SPONSOR,
     .subj = "!C=DE;O=Beispiel GmbH;OI=NTRDE-DER3306.HRB12345;GN=Alice;SN=Smith;T=Engineer;"
             "CN=Alice Smith"},
    {.name = "SV MP, pseudonym in CN",
     .type = MC_TYPE_SPONSOR,
     .gen = MC_GEN_MULTIPURPOSE,
     .subj = "!O=Example Ltd;OI=NTRGB-12345678;P=Agent 7;CN=Agent 7"},
    {.name = "IV strict, personal name abbreviated",
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "!C=XX;L=Somewhere;GN=Alice;SN=Smith;SER=IDCXX-1234;CN=A. Smith"},
    {.name = "IV strict, surname only, CN mailbox", .type = MC_TYPE_INDIVIDUAL, .subj = "SN=Smith"},
    {.name = "IV legacy, CN only, before the sunset",
     .type = MC_TYPE_INDIVIDUAL,
     .gen = MC_GEN_LEGACY,
     .subj = "!CN=Alice Smith",
     .now = T_BEFORE_LEGACY_SUNSET},
    {.name = "OV without organizationIdentifier",
     .id = "e_smime_subject_attribute_required",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = "O=Example Ltd"},
    {.name = "SV without organizationName",
     .id = "e_smime_subject_attribute_required",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = "OI=NTRGB-12345678;SN=Smith"},
    {.name = "OV with givenName",
     .id = "e_smime_subject_attribute_prohibited",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE ";GN=Alice"},
    {.name = "IV with organizationName",
     .id = "e_smime_subject_attribute_prohibited",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "SN=Smith;O=Example Ltd"},
    {.name = "OV strict with streetAddress",
     .id = "e_smime_subject_attribute_prohibited",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE ";L=London;STREET=1 High Street"},
    {.name = "SV strict without names or pseudonym",
     .id = "e_smime_subject_name_or_pseudonym_missing",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE},
    {.name = "IV MP without names or pseudonym",
     .id = "e_smime_subject_name_or_pseudonym_missing",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .gen = MC_GEN_MULTIPURPOSE,
     .subj = "C=FR"},
    {.name = "IV pseudonym with surname",
     .id = "e_smime_subject_pseudonym_with_name",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "SN=Smith;P=Agent 7"},
    {.name = "OV CN another organization",
     .id = "e_smime_cn_value_not_allowed",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = "!" OV_BASE ";CN=Other Corp"},
    {.name = "IV CN another person",
     .id = "e_smime_cn_value_not_allowed",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "!GN=Alice;SN=Smith;CN=Bob Jones"},
    {.name = "SV CN a mailbox not in the SAN",
     .id = "e_smime_cn_value_not_allowed",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = "!" OV_BASE ";SN=Smith;CN=bob@example.org"},
    {.name = "IV CN not the pseudonym",
     .id = "e_smime_cn_pseudonym_mismatch",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "!P=Agent 7;CN=Agent 8"},
    {.name = "organizationIdentifier unknown scheme",
     .id = "e_smime_org_identifier_format",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=GB;O=Example Ltd;OI=ABCGB-12345678"},
    {.name = "organizationIdentifier without reference",
     .id = "e_smime_org_identifier_format",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=GB;O=Example Ltd;OI=NTRGB"},
    {.name = "organizationIdentifier LEI with bad check digits",
     .id = "e_smime_org_identifier_format",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = "O=Example Ltd;OI=LEIXG-5493001KJTIIGC8Y1R13"},
    {.name = "organizationIdentifier GOV with a reference",
     .id = "e_smime_org_identifier_format",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=US;O=Example;OI=GOVUS-123"},
    {.name = "organizationIdentifier country differs",
     .id = "e_smime_org_identifier_country_mismatch",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=GB;O=Example Ltd;OI=NTRDE-HRB12345"},
    {.name = "streetAddress without locality or state",
     .id = "e_smime_street_without_locality_or_state",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .gen = MC_GEN_MULTIPURPOSE,
     .subj = OV_BASE ";STREET=1 High Street"},
    {.name = "localityName without countryName",
     .id = "e_smime_address_without_country",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "SN=Smith;L=Paris"},
    {.name = "postalCode without countryName",
     .id = "e_smime_address_without_country",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .gen = MC_GEN_MULTIPURPOSE,
     .subj = "SN=Smith;PC=75001"},
    {.name = "countryName ZZ",
     .id = "e_smime_country_name_invalid",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "SN=Smith;C=ZZ"},
    {.name = "countryName lower-case",
     .id = "e_smime_country_name_invalid",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "SN=Smith;C=gb"},
    {.name = "LEI extension with bad check digits",
     .id = "e_smime_lei_malformed",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_LEI,
     .raw_hex = "13 14 35 34 39 33 30 30 31 4b 4a 54 49 49 47 43 38 59 31 52 31 33"},
    {.name = "LEI extension as UTF8String",
     .id = "e_smime_lei_malformed",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .raw_oid = CG_OID_LEI,
     .raw_hex = "0c 14 " LEI_OK},
    {.name = "LEI extension of 19 characters",
     .id = "e_smime_lei_malformed",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_LEI,
     .raw_hex = "13 13 35 34 39 33 30 30 31 4b 4a 54 49 49 47 43 38 59 31 52 31"},
    {.name = "LEI in individual-validated",
     .id = "e_smime_ext_prohibited_for_profile",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "SN=Smith",
     .raw_oid = CG_OID_LEI,
     .raw_hex = "13 14 " LEI_OK},
    {.name = "LEI role in organization-validated",
     .id = "e_smime_ext_prohibited_for_profile",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_LEI_ROLE,
     .raw_hex = "13 08 44 69 72 65 63 74 6f 72"},
    {.name = "LEI role in mailbox-validated",
     .id = "e_smime_ext_prohibited_for_profile",
     .only = 1,
     .raw_oid = CG_OID_LEI_ROLE,
     .raw_hex = "13 08 44 69 72 65 63 74 6f 72"},
    {.name = "critical LEI in organization-validated",
     .id = "e_smime_ext_critical",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_LEI,
     .raw_crit = 1,
     .raw_hex = "13 14 " LEI_OK},
    {.name = "critical LEI role in sponsor-validated",
     .id = "e_smime_ext_critical",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .raw_oid = CG_OID_LEI_ROLE,
     .raw_crit = 1,
     .raw_hex = "13 08 44 69 72 65 63 74 6f 72"},
    {.name = "LEI role empty",
     .id = "e_smime_lei_role_malformed",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .raw_oid = CG_OID_LEI_ROLE,
     .raw_hex = "13 00"},
    {.name = "LEI role of 101 characters",
     .id = "e_smime_lei_role_malformed",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .raw_oid = CG_OID_LEI_ROLE,
     .raw_hex = "13 65 52 " HX_100_R},
    {.name = "LEI role as UTF8String",
     .id = "e_smime_lei_role_malformed",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .raw_oid = CG_OID_LEI_ROLE,
     .raw_hex = "0c 08 44 69 72 65 63 74 6f 72"},
    {.name = "qcStatements empty SEQUENCE",
     .id = "e_smime_qc_statements_malformed",
     .only = 1,
     .raw_oid = CG_OID_QCS,
     .raw_hex = "30 00"},
    {.name = "QcCompliance with a statementInfo",
     .id = "e_smime_qc_statements_malformed",
     .only = 1,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_COMP_INFO},
    {.name = "QcCompliance twice",
     .id = "e_smime_qc_statements_malformed",
     .only = 1,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_DUP},
    {.name = "QcPDS over http",
     .id = "e_smime_qc_statements_malformed",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_PDS_HTTP},
    {.name = "QcPDS language of 3 letters",
     .id = "e_smime_qc_statements_malformed",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_PDS_LANG},
    {.name = "QcType holding a string",
     .id = "e_smime_qc_statements_malformed",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_TYPE_NOTOID},
    {.name = "QcCClegislation of 3 letters",
     .id = "e_smime_qc_statements_malformed",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_LEG3},
    {.name = "QcRetentionPeriod 0",
     .id = "e_smime_qc_statements_malformed",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_RET0},
    {.name = "empty SemanticsInformation",
     .id = "e_smime_qc_statements_malformed",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_SEM_EMPTY},
    {.name = "QcType web",
     .id = "e_smime_qc_type_mismatch",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_WEB},
    {.name = "QcType esign in OV",
     .id = "e_smime_qc_type_mismatch",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_ESIGN},
    {.name = "QcType eseal in SV",
     .id = "e_smime_qc_type_mismatch",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_ESEAL},
    {.name = "QcType esign in MV",
     .id = "e_smime_qc_type_mismatch",
     .only = 1,
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_ESIGN},
    {.name = "semanticsId-Legal in IV",
     .id = "e_smime_qc_type_mismatch",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "C=GB;GN=Ada;SN=Lovelace",
     .raw_oid = CG_OID_QCS,
     .raw_hex = HX_QCS_SEM_LEGAL},
    {.name = "LEI role with a character outside PrintableString",
     .id = "e_smime_lei_role_malformed",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith",
     .raw_oid = CG_OID_LEI_ROLE,
     .raw_hex = "13 08 43 46 4f 20 26 20 43 6f"},

/* ---- rules found by comparing with pkilint's S/MIME corpus (issue 3) ---- */
/* SAN: rfc822Name alice@example.com and a directoryName whose CN is a mailbox */
#define HX_SAN_MBX "81 11 61 6c 69 63 65 40 65 78 61 6d 70 6c 65 2e 63 6f 6d "
#define HX_SAN_DIRNAME_IN                                                                          \
    "30 33 " HX_SAN_MBX "a4 1e 30 1c 31 1a 30 18 06 03 55 04 03 0c 11 "                            \
    "61 6c 69 63 65 40 65 78 61 6d 70 6c 65 2e 63 6f 6d"
#define HX_SAN_DIRNAME_OUT                                                                         \
    "30 31 " HX_SAN_MBX "a4 1c 30 1a 31 18 30 16 06 03 55 04 03 0c 0f "                            \
    "62 6f 62 40 65 78 61 6d 70 6c 65 2e 63 6f 6d"
    /* SBR 7.1.4.2.1: mailboxes in the subject or a SAN directoryName are repeated in the SAN */
    {.name = "SAN directoryName CN that is the SAN mailbox",
     .raw_oid = CG_OID_SAN,
     .raw_hex = HX_SAN_DIRNAME_IN},
    {.name = "IV surname that is the SAN mailbox",
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "SN=alice@example.com"},
    /* SBR 7.1.4.2.1: a directoryName's Name is held to the subject's rules (7.1.4.2.2-6), so its
     * commonName mailbox is judged by the commonName rule */
    {.name = "SAN directoryName CN mailbox not in the SAN",
     .id = "e_smime_mailbox_cn_not_in_san",
     .only = 1,
     .raw_oid = CG_OID_SAN,
     .raw_hex = HX_SAN_DIRNAME_OUT},
    {.name = "SAN directoryName with organizationName in a mailbox certificate",
     .id = "e_smime_subject_attribute_prohibited",
     .only = 1,
     .raw_oid = CG_OID_SAN,
     .raw_hex = "30 26 " HX_SAN_MBX "a4 11 30 0f 31 0d 30 0b 06 03 55 04 0a 0c 04 41 63 6d 65"},
    /* RFC 5280 4.2.1.6: no empty GeneralName (found in review: `a4 02 30 00` passed) */
    {.name = "SAN directoryName with an empty Name",
     .id = "e_ext_san_directory_name_empty",
     .only = 1,
     .raw_oid = CG_OID_SAN,
     .raw_hex = "30 17 " HX_SAN_MBX "a4 02 30 00"},
    {.name = "SAN directoryName whose Name has an empty RDN",
     .id = "e_ext_value_malformed",
     .only = 1,
     .raw_oid = CG_OID_SAN,
     .raw_hex = "30 19 " HX_SAN_MBX "a4 04 30 02 31 00"},
    {.name = "IV surname mailbox not in the SAN",
     .id = "e_smime_name_mailbox_not_in_san",
     .only = 1,
     .type = MC_TYPE_INDIVIDUAL,
     .subj = "SN=Smith@example.com"},
    {.name = "SV organizationalUnitName with a UTF-8 mailbox not in the SAN",
     .id = "e_smime_name_mailbox_not_in_san",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = OV_BASE ";SN=Smith;OU=" CG_GREEK "@" CG_MUENCHEN_U},
    /* SBR 7.1.4.2.2(d) Note 1 holds for each organizationIdentifier, not only the first */
    {.name = "OV with two NTRGB/VATGB identifiers",
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE ";OI=VATGB-123456789"},
    {.name = "OV second organizationIdentifier country differs",
     .id = "e_smime_org_identifier_country_mismatch",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE ";OI=NTRUS+CA-12345678"},
    {.name = "OV second organizationIdentifier malformed",
     .id = "e_smime_org_identifier_format",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = OV_BASE ";OI=NTRGB"},
    /* SBR 7.1.4.2.2(d) Note 3 (SBR 1.0.9, 2025-05-14): German NTR reference SHOULD be the EUID */
    {.name = "SV NTRDE reference not an EUID",
     .id = "w_smime_ntr_de_not_euid",
     .only = 1,
     .type = MC_TYPE_SPONSOR,
     .subj = "C=DE;O=Beispiel GmbH;OI=NTRDE-HRB12345;SN=Smith"},
    {.name = "OV NTRDE with a subdivision",
     .id = "w_smime_ntr_de_not_euid",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=DE;O=Beispiel GmbH;OI=NTRDE+BY-DER3306.HRB12345"},
    {.name = "OV NTRDE EUID of another country",
     .id = "w_smime_ntr_de_not_euid",
     .only = 1,
     .type = MC_TYPE_ORGANIZATION,
     .subj = "C=DE;O=Beispiel GmbH;OI=NTRDE-FRR3306.HRB12345"},
    {.name = "OV NTRDE non-EUID reference before SBR 1.0.9",
     .type = MC_TYPE_ORGANIZATION,
     .now = 1747180800LL - CG_DAY,
     .subj = "C=DE;O=Beispiel GmbH;OI=NTRDE-HRB12345"},
    /* ---- RFC 5280 rules from the comparison with zlint's rfc lints ---- */
    {.name = "issuer is an empty Name (RFC 5280 4.1.2.4)",
     .id = "e_issuer_name_empty",
     .post = t_issuer_empty,
     .ctx = C_NO_ISSUER,
     .only = 1},
    {.name = "issuer empty before RFC 5280 is in force: not applied",
     .post = t_issuer_empty,
     .ctx = C_NO_ISSUER,
     .now = 1199145600 /* 2008-01-01 */},
    {.name = "a second, non-reserved policy OID once",
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_OTHER},
    {.name = "a policy OID twice (RFC 5280 4.2.1.4)",
     .id = "e_ext_cert_policy_duplicate",
     .only = 1,
     .raw_oid = CG_OID_POLICIES,
     .raw_hex = HX_POL_OTHER_TWICE},
};

#define NCASES (sizeof cases / sizeof cases[0])

/* ---- running one case ---- */

static mc_profile prof_mp = {.type = MC_TYPE_MAILBOX, .generation = MC_GEN_MULTIPURPOSE};
static mc_profile prof_strict = {.type = MC_TYPE_MAILBOX, .generation = MC_GEN_STRICT};

static void dump(const char *name, const mc_lint_result *r)
{
    print_message("case \"%s\": %d errors, %d warnings\n", name, r->errors, r->warnings);
    for (size_t i = 0; i < r->n; i++)
        print_message("  %s: %s\n", r->f[i].lint->id, r->f[i].detail);
}

static int has(const mc_lint_result *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->f[i].lint->id, id) == 0)
            return 1;
    return 0;
}

/* mc_lint_ctx.enforced_set for run_case (test_enforced_set) */
static const char *g_enforced;

/* Builds the case's certificate and lints it; returns the mc_lint_* result code. */
static mc_err run_case(const lcase *c, mc_lint_result *r, mc_errdetail *err)
{
    cg_cert cert;
    assert_int_equal(cg_case_build(&c->cg, &cert), 0);

    mc_issuer iss384;
    mc_lint_ctx ctx = {
        .now = c->now ? c->now : CG_NOW, .issuer = cg_issuer(), .enforced_set = g_enforced};
    if (c->ctx & C_NO_ISSUER)
        ctx.issuer = NULL;
    if (c->ctx & C_ISSUER_384) {
        iss384 = *cg_issuer();
        iss384.sigalg = MC_SIG_ECDSA_SHA384;
        ctx.issuer = &iss384;
    }
    if (c->ctx & C_PROFILE_MP)
        ctx.profile = &prof_mp;
    if (c->ctx & C_PROFILE_S)
        ctx.profile = &prof_strict;

    static uint8_t buf[16384];
    mc_err rc;
    if (c->ctx & C_WHOLE) {
        const uint8_t *der = cert.der;
        size_t len = cert.len;
        if (c->ctx & C_OUTER_384) {
            mc_x509 x;
            assert_int_equal(mc_x509_parse_cert(cert.der, cert.len, &x, NULL), MC_OK);
            uint8_t alg[32];
            size_t al = cg_hex("30 0a 06 08 2a 86 48 ce 3d 04 03 03", alg, sizeof alg);
            len = cg_cert_assemble(cert.tbs, cert.tbs_len, alg, al, x.signature.raw,
                                   x.signature.rawlen, buf, sizeof buf);
            assert_true(len > 0);
            der = buf;
        }
        rc = mc_lint_cert(der, len, &ctx, r, err);
    } else {
        const uint8_t *tbs = cert.tbs;
        size_t len = cert.tbs_len;
        if (c->post) {
            len = c->post(cert.tbs, cert.tbs_len, buf, sizeof buf);
            assert_true(len > 0);
            tbs = buf;
        }
        rc = mc_lint_tbs(tbs, len, &ctx, r, err);
    }
    cg_cert_free(&cert);
    return rc;
}

static void test_cases(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < NCASES; i++) {
        const lcase *c = &cases[i];
        mc_lint_result r;
        mc_errdetail err;
        mc_err rc = run_case(c, &r, &err);
        int ok;
        if (!c->id) {
            ok = rc == MC_OK && r.errors == 0 && r.warnings == 0 && r.n == 0;
        } else {
            int warning = c->id[0] == 'w';
            ok = has(&r, c->id);
            if (c->only && warning)
                ok = ok && r.errors == 0 && r.warnings == 1 && rc == MC_OK;
            else if (c->only)
                ok = ok && r.errors == 1 && rc == MC_ERR_LINT && strcmp(err.rule, c->id) == 0;
            else if (!warning)
                ok = ok && rc == MC_ERR_LINT;
        }
        if (!ok) {
            print_error("FAILED case \"%s\" (expected %s%s)\n", c->name, c->id ? c->id : "a pass",
                        c->only ? " only" : "");
            dump(c->name, &r);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static const mc_lint_finding *finding(const mc_lint_result *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->f[i].lint->id, id) == 0)
            return &r->f[i];
    return NULL;
}

/* DESIGN.md lessons: under an enforced lint set (config lint.enforced_set), an error lint added
 * after it reports as a warning: the certificate issues and the finding is recorded with its
 * warnings. The set that added the lint enforces it, and the base set's lints are enforced
 * whatever the setting. Every single-error case above, both ways. */
static void test_enforced_set(void **state)
{
    (void)state;
    size_t n;
    const mc_lint_def *d = mc_lint_defs(&n);
    int demoted = 0, kept = 0, failed = 0;
    for (size_t i = 0; i < NCASES; i++) {
        const lcase *c = &cases[i];
        if (!c->id || !c->only || c->id[0] != 'e')
            continue;
        const mc_lint_def *def = NULL;
        for (size_t k = 0; k < n; k++)
            if (strcmp(d[k].id, c->id) == 0)
                def = &d[k];
        assert_non_null(def);
        mc_lint_result r;
        mc_errdetail err;
        char ids[1024];
        g_enforced = "mailca-lints-2026.11.2"; /* the base set: older than every tagged lint */
        mc_err rc = run_case(c, &r, &err);
        const mc_lint_finding *f = finding(&r, c->id);
        int ok;
        if (def->since) {
            ok = rc == MC_OK && r.errors == 0 && f && f->severity == MC_LINT_WARNING &&
                 strstr(mc_lint_warning_ids(&r, ids, sizeof ids), c->id);
            demoted++;
            g_enforced = def->since;
            rc = run_case(c, &r, &err);
            f = finding(&r, c->id);
            ok = ok && rc == MC_ERR_LINT && r.errors == 1 && f && f->severity == MC_LINT_ERROR &&
                 strcmp(err.rule, c->id) == 0;
            /* a set newer than this build's (a rollback after raising it) enforces it too */
            g_enforced = "mailca-lints-2099.1.1";
            rc = run_case(c, &r, &err);
            f = finding(&r, c->id);
            ok = ok && rc == MC_ERR_LINT && r.errors == 1 && f && f->severity == MC_LINT_ERROR &&
                 strcmp(err.rule, c->id) == 0;
        } else {
            ok = rc == MC_ERR_LINT && r.errors == 1 && f && f->severity == MC_LINT_ERROR;
            kept++;
        }
        if (!ok) {
            print_error("FAILED enforced-set case \"%s\" (%s, since %s)\n", c->name, c->id,
                        def->since ? def->since : "the base set");
            dump(c->name, &r);
            failed++;
        }
    }
    g_enforced = NULL;
    assert_int_equal(failed, 0);
    assert_true(demoted >= 6);
    assert_true(kept >= 40);
    /* a set that does not parse demotes nothing (fails closed), nor does the build's own, nor a
     * newer one */
    const char *closed[] = {"garbage", "mailca-lints-2026.13.1", MC_LINT_SET_VERSION,
                            "mailca-lints-2026.11.02", "mailca-lints-2099.1.1"};
    char ids[1024];
    for (size_t k = 0; k < sizeof closed / sizeof closed[0]; k++) {
        for (size_t i = 0; i < NCASES; i++) {
            if (!cases[i].id || strcmp(cases[i].id, "e_qc_natural_serial_number_format") != 0)
                continue;
            mc_lint_result r;
            mc_errdetail err;
            g_enforced = closed[k];
            assert_int_equal(run_case(&cases[i], &r, &err), MC_ERR_LINT);
            assert_string_equal(err.rule, "e_qc_natural_serial_number_format");
        }
        assert_int_equal(mc_lint_not_enforced(closed[k], ids, sizeof ids), 0);
    }
    g_enforced = NULL;
    /* the engine's notice names exactly the demoted error lints */
    assert_true(mc_lint_not_enforced("mailca-lints-2026.11.24.3", ids, sizeof ids) == 2);
    assert_string_equal(ids, "e_qc_natural_serial_number_format,e_serial_number_too_short");
    assert_true(mc_lint_not_enforced("mailca-lints-2026.11.24.5", ids, sizeof ids) == 1);
    assert_string_equal(ids, "e_serial_number_too_short");
    assert_true(mc_lint_not_enforced("mailca-lints-2026.11.2", ids, sizeof ids) >= 9);
    assert_null(strstr(ids, "e_smime_lei_malformed")); /* a base-set lint */
}

/* Lint set versions order by date, then by the .N suffix as a number; malformed ones are
 * refused by mc_lint_set_check, naming the field; sets newer than this build's are not. */
/* The set recorded with each certificate (intents.lint_enforced) is the one whose error lints
 * blocked: the configured set when it is older than the build, else the build's own. */
static void test_lint_set_effective(void **state)
{
    (void)state;
    assert_string_equal(mc_lint_set_effective(NULL), MC_LINT_SET_VERSION);
    assert_string_equal(mc_lint_set_effective(""), MC_LINT_SET_VERSION);
    assert_string_equal(mc_lint_set_effective("garbage"), MC_LINT_SET_VERSION);
    assert_string_equal(mc_lint_set_effective("mailca-lints-2026.11.02"), MC_LINT_SET_VERSION);
    assert_string_equal(mc_lint_set_effective("mailca-lints-2099.1.1"), MC_LINT_SET_VERSION);
    assert_string_equal(mc_lint_set_effective(MC_LINT_SET_VERSION), MC_LINT_SET_VERSION);
    assert_string_equal(mc_lint_set_effective("mailca-lints-2026.11.2"), "mailca-lints-2026.11.2");
    /* consistent with what the lints do: under the recorded set, exactly the lints newer than
     * it are not enforced */
    char ids[1024];
    assert_int_equal(
        mc_lint_not_enforced(mc_lint_set_effective("mailca-lints-2099.1.1"), ids, sizeof ids), 0);
    assert_true(
        mc_lint_not_enforced(mc_lint_set_effective("mailca-lints-2026.11.2"), ids, sizeof ids) > 0);
}

static void test_lint_set_versions(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        int sign;
    } t[] = {
        {"mailca-lints-2026.11.24", "mailca-lints-2026.11.24.2", -1},
        {"mailca-lints-2026.11.24.9", "mailca-lints-2026.11.24.10", -1},
        {"mailca-lints-2026.11.5", "mailca-lints-2026.11.24", -1},
        {"mailca-lints-2026.12.1", "mailca-lints-2026.11.24.5", 1},
        {"mailca-lints-2027.1.1", "mailca-lints-2026.12.31.3", 1},
        {"mailca-lints-2026.11.24.1", "mailca-lints-2026.11.24", -1}, /* ".1" is malformed */
        {"mailca-lints-2026.11.24", "mailca-lints-2026.11.24", 0},
        {"lints-2026.11.24", "mailca-lints-2020.1.1", -1},
        {"mailca-lints-2026.11", "mailca-lints-2020.1.1", -1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int c = mc_lint_set_cmp(t[i].a, t[i].b);
        int got = c < 0 ? -1 : c > 0;
        if (got != t[i].sign)
            print_error("%s vs %s: %d, want %d\n", t[i].a, t[i].b, got, t[i].sign);
        assert_int_equal(got, t[i].sign);
        int r = mc_lint_set_cmp(t[i].b, t[i].a);
        assert_int_equal(r < 0 ? -1 : r > 0, -t[i].sign);
    }
    mc_errdetail err;
    assert_int_equal(mc_lint_set_check(MC_LINT_SET_VERSION, "lint.enforced_set", &err), MC_OK);
    assert_int_equal(mc_lint_set_check("mailca-lints-2026.11.2", "lint.enforced_set", &err), MC_OK);
    const char *bad[] = {"mailca-lints-2026.13.1",
                         "mailca-lints-2026.11.24.",
                         "mailca-lints-2026.11.24x",
                         "2026.11.24",
                         "",
                         "mailca-lints-2026.0.24"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mc_lint_set_check(bad[i], "lint.enforced_set", &err), MC_ERR_CONFIG);
        assert_string_equal(err.field, "lint.enforced_set");
    }
    assert_non_null(strstr(err.message, "not a lint set version"));
    /* newer than this build: accepted, and it enforces every lint (test_enforced_set) */
    assert_true(mc_lint_set_cmp("mailca-lints-2099.1.1", MC_LINT_SET_VERSION) > 0);
    assert_int_equal(mc_lint_set_check("mailca-lints-2099.1.1", "lint.enforced_set", &err), MC_OK);
    /* One spelling per version, the one the build's own versions use, and only real dates. */
    const char *good[] = {"mailca-lints-2026.11.24.10", "mailca-lints-2026.4.30",
                          "mailca-lints-2026.12.31",    "mailca-lints-2026.2.28",
                          "mailca-lints-2024.2.29",     "mailca-lints-2000.2.29",
                          "mailca-lints-2020.1.1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_true(mc_lint_set_cmp(good[i], "") > 0);
        assert_int_equal(mc_lint_set_check(good[i], "lint.enforced_set", &err), MC_OK);
    }
    /* each of these parsed before: two spellings of one version, or a date that does not exist */
    const char *refused[] = {
        "mailca-lints-2026.11.02",        "mailca-lints-2026.011.2",    "mailca-lints-02026.11.2",
        "mailca-lints-2026.11.24.02",     "mailca-lints-2026.11.24.1",  "mailca-lints-2026.2.31",
        "mailca-lints-2026.4.31",         "mailca-lints-2026.6.31",     "mailca-lints-2026.9.31",
        "mailca-lints-2026.11.31",        "mailca-lints-2026.2.30",     "mailca-lints-2026.2.29",
        "mailca-lints-2100.2.29",         "mailca-lints-10000.1.1",     "mailca-lints-999.1.1",
        "mailca-lints-2026.11.24.100000", "mailca-lints-2026.11.000024"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (mc_lint_set_check(refused[i], "lint.enforced_set", &err) != MC_ERR_CONFIG)
            fail_msg("%s accepted", refused[i]);
        assert_string_equal(err.field, "lint.enforced_set");
        assert_non_null(strstr(err.message, "not a lint set version"));
        assert_true(mc_lint_set_cmp(refused[i], "") == 0); /* malformed, as "" is */
    }
}

/* Every lint in the table has at least one failing case above, and the table is well formed. */
static void test_every_lint_has_a_case(void **state)
{
    (void)state;
    size_t n;
    const mc_lint_def *d = mc_lint_defs(&n);
    assert_true(n >= 70);
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        assert_non_null(d[i].id);
        assert_true(d[i].section && d[i].section[0]);
        assert_true(d[i].summary && d[i].summary[0]);
        assert_true(d[i].effective > 0);
        assert_true(strlen(d[i].id) < MC_ERR_RULE_MAX);
        /* zlint style: e_ for errors, w_ for warnings */
        assert_int_equal(d[i].id[0], d[i].severity == MC_LINT_ERROR ? 'e' : 'w');
        assert_int_equal(d[i].id[1], '_');
        /* a lint's set is one this build knows */
        if (d[i].since) {
            assert_int_equal(mc_lint_set_check(d[i].since, "since", NULL), MC_OK);
            assert_true(mc_lint_set_cmp(d[i].since, "mailca-lints-2026.11.2") > 0);
            assert_true(mc_lint_set_cmp(d[i].since, MC_LINT_SET_VERSION) <= 0);
        }
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(d[i].id, d[j].id);
        int found = 0;
        for (size_t k = 0; k < NCASES; k++)
            found |= cases[k].id && strcmp(cases[k].id, d[i].id) == 0;
        if (!found) {
            print_error("lint %s has no failing case\n", d[i].id);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

/* mc_lint_tbs reports the first error in err; details name the offending value. */
static void test_err_detail(void **state)
{
    (void)state;
    lcase c = {.name = "cps", .raw_oid = CG_OID_POLICIES, .raw_hex = HX_POL_CPS_FTP};
    mc_lint_result r;
    mc_errdetail err;
    assert_int_equal(run_case(&c, &r, &err), MC_ERR_LINT);
    assert_int_equal(err.code, MC_ERR_LINT);
    assert_string_equal(err.field, "certificate");
    assert_string_equal(err.rule, "e_smime_cps_uri_not_http");
    assert_non_null(strstr(err.message, "ftp://pki.example.com/cps"));
    assert_string_equal(r.f[0].lint->section, "SBR 7.1.2.3(a)");

    lcase v = {.name = "validity", .validity = 900 * CG_DAY};
    assert_int_equal(run_case(&v, &r, &err), MC_ERR_LINT);
    assert_non_null(strstr(err.message, "77760001 s"));

    /* a parse failure is a finding too, with the parser's words */
    lcase t = {.name = "truncated", .post = t_truncate};
    assert_int_equal(run_case(&t, &r, &err), MC_ERR_LINT);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.errors, 1);
    assert_string_equal(err.rule, "e_cert_der_invalid");

    /* success clears err */
    lcase ok = {.name = "ok"};
    assert_int_equal(run_case(&ok, &r, &err), MC_OK);
    assert_int_equal(err.code, MC_OK);
    assert_string_equal(err.rule, "");
}

static void test_warning_ids(void **state)
{
    (void)state;
    lcase c = {.name = "two warnings", .del = CG_OID_SKI, .crit_oid = CG_OID_POLICIES};
    mc_lint_result r;
    mc_errdetail err;
    assert_int_equal(run_case(&c, &r, &err), MC_OK);
    assert_int_equal(r.warnings, 2);
    char buf[256];
    assert_string_equal(mc_lint_warning_ids(&r, buf, sizeof buf),
                        "w_smime_certificate_policies_critical,w_smime_ski_missing");
    /* never a truncated id */
    assert_string_equal(mc_lint_warning_ids(&r, buf, 45), "w_smime_certificate_policies_critical");
    assert_string_equal(mc_lint_warning_ids(&r, buf, 10), "");
}

/* Without a profile the type and generation come from the policy OID: the same Multipurpose
 * certificate passes as MP and fails as Strict only through a Strict profile. */
static void test_generation_source(void **state)
{
    (void)state;
    lcase mp = {.name = "mp clientAuth",
                .gen = MC_GEN_MULTIPURPOSE,
                .conf_name = "extendedKeyUsage",
                .conf_value = "emailProtection,clientAuth"};
    mc_lint_result r;
    mc_errdetail err;
    assert_int_equal(run_case(&mp, &r, &err), MC_OK);
    mp.ctx = C_PROFILE_S;
    assert_int_equal(run_case(&mp, &r, &err), MC_ERR_LINT);
    assert_true(has(&r, "e_smime_policy_not_profile"));
    assert_true(has(&r, "e_smime_eku_strict_other_purpose"));
    assert_int_equal(r.errors, 2);
}

/* When more than MC_LINT_FINDINGS_MAX findings occur, counts stay exact and the first error is
 * still reported. */
static void test_many_findings(void **state)
{
    (void)state;
    static uint8_t a[16384], b[16384];
    cg_opts o;
    cg_opts_default(&o);
    cg_cert cert;
    assert_int_equal(cg_build(&o, &cert), 0);
    size_t n = cert.tbs_len;
    memcpy(a, cert.tbs, n);
    cg_cert_free(&cert);
    /* 24 critical-false smimeCapabilities: each one a duplicate and a DER finding */
    uint8_t ext[32];
    size_t el =
        cg_hex("30 12 06 09 2a 86 48 86 f7 0d 01 09 0f 01 01 00 04 02 30 00", ext, sizeof ext);
    for (int i = 0; i < 20; i++) {
        n = cg_tbs_add_ext(a, n, ext, el, b, sizeof b);
        assert_true(n > 0);
        memcpy(a, b, n);
    }
    mc_lint_result r;
    mc_errdetail err;
    mc_lint_ctx ctx = {.now = CG_NOW, .issuer = cg_issuer()};
    assert_int_equal(mc_lint_tbs(a, n, &ctx, &r, &err), MC_ERR_LINT);
    assert_int_equal(r.n, MC_LINT_FINDINGS_MAX);
    assert_int_equal(r.errors, 20 + 19);
    assert_string_equal(err.rule, "e_ext_critical_false_encoded");
}

/* RFC 5280 4.2.1.12: emailProtection with a keyUsage of none of digitalSignature,
 * nonRepudiation, keyEncipherment and keyAgreement. No such keyUsage is allowed for an S/MIME key
 * (SBR 7.1.2.3(e)), so the warning comes with that error: the findings are exactly these two.
 * The extKeyUsage is emailProtection alone, so the clientAuth half cannot be what fires. */
static void test_eku_email_ku_inconsistent(void **state)
{
    (void)state;
    static const lcase bad[] = {
        {.name = "RSA MP dataEncipherment only",
         .key = CG_KEY_RSA2048,
         .gen = MC_GEN_MULTIPURPOSE,
         .conf_name = "keyUsage",
         .conf_value = "critical,dataEncipherment"},
        {.name = "EC keyCertSign only",
         .conf_name = "keyUsage",
         .conf_value = "critical,keyCertSign"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_lint_result r;
        mc_errdetail err;
        mc_err rc = run_case(&bad[i], &r, &err);
        const mc_lint_finding *w = finding(&r, "w_eku_key_usage_inconsistent");
        if (r.n != 2 || !w)
            dump(bad[i].name, &r);
        assert_int_equal(rc, MC_ERR_LINT);
        assert_string_equal(err.rule, "e_smime_key_usage_bits");
        assert_int_equal(r.errors, 1);
        assert_int_equal(r.warnings, 1);
        assert_int_equal(r.n, 2);
        assert_non_null(finding(&r, "e_smime_key_usage_bits"));
        assert_non_null(w);
        assert_int_equal(w->severity, MC_LINT_WARNING);
        assert_non_null(strstr(w->detail, "1.3.6.1.5.5.7.3.4")); /* id-kp-emailProtection */
    }
    /* passing: keyEncipherment alone serves emailProtection (RSA key management) */
    static const lcase good = {.name = "RSA strict key management",
                               .key = CG_KEY_RSA2048,
                               .conf_name = "keyUsage",
                               .conf_value = "critical,keyEncipherment"};
    mc_lint_result r;
    mc_errdetail err;
    assert_int_equal(run_case(&good, &r, &err), MC_OK);
    assert_int_equal(r.n, 0);
}

/* ---- SBR 6.1.5 valid points, against independent implementations ----
 * The lint's own modular arithmetic (lint.c ec_point_check, ed_point_check) is compared with
 * OpenSSL's EC_POINT_oct2point (which refuses coordinates >= p and points off the curve) and
 * with mc_keycheck_ed_decode (OpenSSL BIGNUM) on fresh keys, their negations, near misses and
 * random points. */

/* Lints the baseline TBS with its SPKI replaced by (algid, key): 1 when the key is judged a valid
 * point (no finding at all), 0 when e_smime_ec_point_invalid is the one finding (else fails). */
static int lint_point(const uint8_t *tbs, size_t tlen, const char *algid, const uint8_t *key,
                      size_t klen)
{
    static uint8_t buf[16384];
    uint8_t sp[300];
    size_t sl = spki(algid, key, klen, sp, sizeof sp);
    size_t n = cg_tbs_replace(tbs, tlen, 6, sp, sl, buf, sizeof buf);
    assert_true(sl > 0 && n > 0);
    mc_lint_ctx ctx = {.now = CG_NOW, .issuer = cg_issuer()};
    mc_lint_result r;
    mc_errdetail err;
    mc_err rc = mc_lint_tbs(buf, n, &ctx, &r, &err);
    if (r.n == 0 && rc == MC_OK)
        return 1;
    if (r.n != 1 || rc != MC_ERR_LINT || !has(&r, "e_smime_ec_point_invalid")) {
        dump("point", &r);
        fail_msg("a key that is neither clean nor only e_smime_ec_point_invalid");
    }
    return 0;
}

/* OpenSSL's verdict on an encoded EC point of this curve. */
static int ec_oracle(int nid, const uint8_t *pt, size_t n)
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);
    EC_POINT *q = g ? EC_POINT_new(g) : NULL;
    assert_non_null(q);
    int ok = EC_POINT_oct2point(g, q, pt, n, NULL) == 1 && EC_POINT_is_on_curve(g, q, NULL) == 1;
    ERR_clear_error();
    EC_POINT_free(q);
    EC_GROUP_free(g);
    return ok;
}

/* v = a - b (big-endian, len octets, a >= b). */
static void be_sub(uint8_t *v, const uint8_t *a, const uint8_t *b, size_t len)
{
    int c = 0;
    for (size_t i = len; i-- > 0;) {
        int x = a[i] - b[i] - c;
        c = x < 0;
        v[i] = (uint8_t)(x & 0xff);
    }
}

static void test_point_validity(void **state)
{
    (void)state;
    cg_opts o;
    cg_opts_default(&o);
    cg_cert cert;
    assert_int_equal(cg_build(&o, &cert), 0);
    static const struct {
        const char *name, *alg;
        int nid;
        size_t len; /* octets per coordinate */
    } ec[] = {{"P-256", ALG_P256, NID_X9_62_prime256v1, 32},
              {"P-384", ALG_P384, NID_secp384r1, 48},
              {"P-521", ALG_P521, NID_secp521r1, 66}};
    int valid = 0, invalid = 0;
    for (size_t c = 0; c < sizeof ec / sizeof ec[0]; c++) {
        EC_GROUP *g = EC_GROUP_new_by_curve_name(ec[c].nid);
        BIGNUM *bp = BN_new();
        uint8_t p[66], pt[133], q[133];
        size_t len = ec[c].len, n = 1 + 2 * len;
        assert_true(g && bp && EC_GROUP_get_curve(g, bp, NULL, NULL, NULL) == 1);
        assert_int_equal(BN_bn2binpad(bp, p, (int)len), (int)len);
        for (int i = 0; i < 24; i++) {
            assert_int_equal(ec_fresh_point(ec[c].name, pt, sizeof pt), n);
            /* the key, and its negation (X, p - Y): both on the curve */
            memcpy(q, pt, n);
            be_sub(q + 1 + len, p, pt + 1 + len, len);
            assert_true(ec_oracle(ec[c].nid, pt, n) && ec_oracle(ec[c].nid, q, n));
            assert_int_equal(lint_point(cert.tbs, cert.tbs_len, ec[c].alg, pt, n), 1);
            assert_int_equal(lint_point(cert.tbs, cert.tbs_len, ec[c].alg, q, n), 1);
            valid += 2;
            /* near misses: Y with its low bit flipped, Y = p, X with its low bit flipped */
            const uint8_t *ys[3];
            memcpy(q, pt, n);
            q[n - 1] ^= 1;
            ys[0] = q;
            uint8_t r[133], t[133];
            memcpy(r, pt, n);
            memcpy(r + 1 + len, p, len);
            ys[1] = r;
            memcpy(t, pt, n);
            t[len] ^= 1;
            ys[2] = t;
            for (int k = 0; k < 3; k++) {
                int want = ec_oracle(ec[c].nid, ys[k], n);
                assert_int_equal(lint_point(cert.tbs, cert.tbs_len, ec[c].alg, ys[k], n), want);
                want ? valid++ : invalid++;
            }
            /* a random point, coordinates below 2^(8 len - 7) (P-521: below p) */
            uint8_t rnd[133];
            assert_int_equal(RAND_bytes(rnd, (int)n), 1);
            rnd[0] = 0x04;
            rnd[1] &= 1;
            rnd[1 + len] &= 1;
            int want = ec_oracle(ec[c].nid, rnd, n);
            assert_int_equal(lint_point(cert.tbs, cert.tbs_len, ec[c].alg, rnd, n), want);
            want ? valid++ : invalid++;
        }
        BN_free(bp);
        EC_GROUP_free(g);
    }
    /* EdDSA: y = 0..199, p - 1 .. p - 40, p .. p + 19, each with both signs, and fresh keys */
    mc_keycheck_ed *kc;
    mc_errdetail err;
    assert_int_equal(mc_keycheck_ed_new(&kc, &err), MC_OK);
    static const struct {
        mc_keytype kt;
        const char *alg, *name;
        size_t len;
    } ed[] = {{MC_KEY_ED25519, ALG_ED25519, "ED25519", 32}, {MC_KEY_ED448, ALG_ED448, "ED448", 57}};
    int ed_valid = 0, ed_invalid = 0;
    for (size_t c = 0; c < 2; c++) {
        size_t len = ed[c].len;
        uint8_t p[57] = {0}, k[57];
        /* p, little-endian: Ed25519 2^255 - 19; Ed448 2^448 - 2^224 - 1 */
        memset(p, 0xff, len);
        if (c == 0) {
            p[0] = 0xed;
            p[31] = 0x7f;
        } else {
            p[28] = 0xfe;
            p[56] = 0;
        }
        for (int w = 0; w < 260; w++) {
            memset(k, 0, sizeof k);
            if (w < 200) {
                k[0] = (uint8_t)w;
                k[1] = (uint8_t)(w >> 8);
            } else {
                /* p - (w - 199) for w < 240, then p + (w - 240) */
                int d = w < 240 ? w - 199 : w - 240;
                uint8_t dd[57] = {0};
                dd[0] = (uint8_t)d;
                int carry = 0;
                for (size_t i = 0; i < len; i++) {
                    int x = w < 240 ? p[i] - dd[i] - carry : p[i] + dd[i] + carry;
                    carry = w < 240 ? x < 0 : x > 0xff;
                    k[i] = (uint8_t)(x & 0xff);
                }
            }
            for (int x0 = 0; x0 < 2; x0++) {
                k[len - 1] = (uint8_t)((k[len - 1] & 0x7f) | (x0 << 7));
                mc_keycheck_ed_status st = mc_keycheck_ed_decode(kc, ed[c].kt, k, len);
                assert_int_not_equal(st, MC_KEYCHECK_ED_ERROR);
                int want = st == MC_KEYCHECK_ED_OK || st == MC_KEYCHECK_ED_SMALL_ORDER;
                if (lint_point(cert.tbs, cert.tbs_len, ed[c].alg, k, len) != want)
                    fail_msg("%s w=%d x0=%d: the lint says %s, mc_keycheck status %d", ed[c].name,
                             w, x0, want ? "invalid" : "valid", (int)st);
                want ? ed_valid++ : ed_invalid++;
            }
        }
        for (int i = 0; i < 16; i++) {
            EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, ed[c].name);
            size_t kl = sizeof k;
            assert_non_null(pk);
            assert_int_equal(EVP_PKEY_get_raw_public_key(pk, k, &kl), 1);
            assert_int_equal(kl, len);
            assert_int_equal(lint_point(cert.tbs, cert.tbs_len, ed[c].alg, k, len), 1);
            EVP_PKEY_free(pk);
            ed_valid++;
        }
    }
    mc_keycheck_ed_free(kc);
    cg_cert_free(&cert);
    /* both verdicts exercised on every path */
    assert_true(valid >= 3 * 24 * 2 && invalid >= 3 * 24 * 2);
    assert_true(ed_valid > 200 && ed_invalid > 200);
}

/* The warnings recorded with a certificate are complete: past the findings cap too, each id
 * once, and every id of the build fits the limits results and workers size them by. */
static void test_warning_ids_complete(void **state)
{
    (void)state;
    size_t nd = 0;
    const mc_lint_def *defs = mc_lint_defs(&nd);
    assert_true(nd > MC_LINT_FINDINGS_MAX + 2 && nd <= MC_LINT_MAX);
    mc_lint_result r;
    memset(&r, 0, sizeof r);
    size_t all = 1;
    for (size_t i = 0; i < nd; i++) {
        all += strlen(defs[i].id) + 1;
        r.warned[i / 64] |= UINT64_C(1) << (i % 64);
    }
    assert_true(all <= MC_LINT_WARNING_IDS_MAX);
    assert_true(MC_LINT_WARNING_IDS_MAX <= MC_RESULT_WARNINGS_MAX);
    /* the cap full of findings (in reverse order), every lint warned */
    r.warnings = (int)nd;
    r.n = MC_LINT_FINDINGS_MAX;
    for (size_t k = 0; k < r.n; k++)
        r.f[k] = (mc_lint_finding){.lint = &defs[nd - 1 - k], .severity = MC_LINT_WARNING};
    assert_int_equal(mc_lint_warning_ids_len(&r), all);
    char *buf = malloc(all);
    assert_non_null(buf);
    mc_lint_warning_ids(&r, buf, all);
    assert_int_equal(strlen(buf), all - 2); /* no trailing comma */
    /* the findings first, in their order, then the others in definition order */
    char first[128];
    snprintf(first, sizeof first, "%s,%s,", defs[nd - 1].id, defs[nd - 2].id);
    assert_int_equal(strncmp(buf, first, strlen(first)), 0);
    for (size_t i = 0; i < nd; i++) {
        char item[128];
        snprintf(item, sizeof item, ",%s,", defs[i].id);
        char *wrapped = malloc(all + 2);
        assert_non_null(wrapped);
        snprintf(wrapped, all + 2, ",%s,", buf);
        char *p = strstr(wrapped, item);
        assert_non_null(p);               /* listed ... */
        assert_null(strstr(p + 1, item)); /* ... once */
        free(wrapped);
    }
    /* a lint that reports twice (once per URL, say) and another after it: each once, and the
     * list fits the size mc_lint_warning_ids_len gives (review s13: the duplicate used up the
     * exactly-sized buffer and the second id was dropped) */
    memset(&r, 0, sizeof r);
    r.n = 3;
    r.warnings = 3;
    r.f[0] = (mc_lint_finding){.lint = &defs[1], .severity = MC_LINT_WARNING};
    r.f[1] = (mc_lint_finding){.lint = &defs[1], .severity = MC_LINT_WARNING};
    r.f[2] = (mc_lint_finding){.lint = &defs[2], .severity = MC_LINT_WARNING};
    r.warned[0] = UINT64_C(1) << 1 | UINT64_C(1) << 2;
    size_t two = mc_lint_warning_ids_len(&r);
    assert_int_equal(two, strlen(defs[1].id) + strlen(defs[2].id) + 3); /* 2 commas counted, NUL */
    char want2[160];
    snprintf(want2, sizeof want2, "%s,%s", defs[1].id, defs[2].id);
    mc_lint_warning_ids(&r, buf, two);
    assert_string_equal(buf, want2);
    /* the cap full of error findings and one lint warned past it: still listed (the failing
     * case of the old list, which wrote findings only) */
    memset(&r, 0, sizeof r);
    r.n = MC_LINT_FINDINGS_MAX;
    for (size_t k = 0; k < r.n; k++)
        r.f[k] = (mc_lint_finding){.lint = &defs[k], .severity = MC_LINT_ERROR};
    r.errors = (int)r.n;
    r.warnings = 1;
    r.warned[(nd - 1) / 64] |= UINT64_C(1) << ((nd - 1) % 64);
    mc_lint_warning_ids(&r, buf, all);
    assert_string_equal(buf, defs[nd - 1].id);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_url_host_reserved),
        cmocka_unit_test(test_every_lint_has_a_case),
        cmocka_unit_test(test_err_detail),
        cmocka_unit_test(test_warning_ids),
        cmocka_unit_test(test_generation_source),
        cmocka_unit_test(test_many_findings),
        cmocka_unit_test(test_enforced_set),
        cmocka_unit_test(test_lint_set_versions),
        cmocka_unit_test(test_eku_email_ku_inconsistent),
        cmocka_unit_test(test_lint_set_effective),
        cmocka_unit_test(test_point_validity),
        cmocka_unit_test(test_warning_ids_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for the DER reader/writer and the algorithm table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "mailca/alg.h"
#include "mailca/der.h"

static void test_roundtrip_nested(void **state)
{
    (void)state;
    uint8_t buf[512];
    mc_der_w w;
    mc_der_w_init(&w, buf, sizeof buf);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_small_uint(&w, 2);
    uint8_t big[200];
    memset(big, 0xab, sizeof big);
    mc_der_put(&w, MC_DER_OCTETSTRING, big, sizeof big);
    mc_der_end(&w, m);
    assert_int_equal(w.err, MC_OK);
    /* 200 bytes need the 0x81 length form; the outer SEQUENCE then needs 0x81 too */
    assert_int_equal(buf[0], 0x30);
    assert_int_equal(buf[1], 0x81);
    mc_der_cur c = mc_der_cur_make(buf, w.len);
    mc_der_tlv seq, i, o;
    assert_int_equal(mc_der_expect(&c, MC_DER_SEQUENCE, &seq), MC_OK);
    assert_true(mc_der_cur_empty(&c));
    mc_der_cur in = mc_der_cur_in(&seq);
    assert_int_equal(mc_der_expect(&in, MC_DER_INTEGER, &i), MC_OK);
    int64_t v;
    assert_int_equal(mc_der_int_i64(&i, &v), MC_OK);
    assert_int_equal(v, 2);
    assert_int_equal(mc_der_expect(&in, MC_DER_OCTETSTRING, &o), MC_OK);
    assert_int_equal(o.len, 200);
    assert_memory_equal(o.val, big, 200);
}

static void test_reject_non_der(void **state)
{
    (void)state;
    mc_der_tlv t;
    /* indefinite length */
    const uint8_t indef[] = {0x30, 0x80, 0x00, 0x00};
    mc_der_cur c = mc_der_cur_make(indef, sizeof indef);
    assert_int_not_equal(mc_der_next(&c, &t), MC_OK);
    /* long form for a short length */
    const uint8_t longform[] = {0x04, 0x81, 0x01, 0xaa};
    c = mc_der_cur_make(longform, sizeof longform);
    assert_int_not_equal(mc_der_next(&c, &t), MC_OK);
    /* truncated */
    const uint8_t trunc[] = {0x04, 0x05, 0x01};
    c = mc_der_cur_make(trunc, sizeof trunc);
    assert_int_not_equal(mc_der_next(&c, &t), MC_OK);
    /* non-minimal INTEGER */
    const uint8_t nonmin[] = {0x00, 0x01};
    assert_int_not_equal(mc_der_int_check(nonmin, 2), MC_OK);
    const uint8_t okint[] = {0x00, 0x80};
    assert_int_equal(mc_der_int_check(okint, 2), MC_OK);
}

static void test_uint_padding(void **state)
{
    (void)state;
    uint8_t buf[32];
    mc_der_w w;
    mc_der_w_init(&w, buf, sizeof buf);
    const uint8_t mag[] = {0x00, 0x00, 0x80, 0x01};
    mc_der_put_uint(&w, mag, sizeof mag);
    const uint8_t want[] = {0x02, 0x03, 0x00, 0x80, 0x01};
    assert_int_equal(w.len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
}

static void test_named_bits(void **state)
{
    (void)state;
    uint8_t buf[16];
    mc_der_w w;
    /* digitalSignature (0) + keyEncipherment (2) => 03 02 05 a0 */
    mc_der_w_init(&w, buf, sizeof buf);
    mc_der_put_named_bits(&w, (1u << 0) | (1u << 2), 9);
    const uint8_t want1[] = {0x03, 0x02, 0x05, 0xa0};
    assert_memory_equal(buf, want1, sizeof want1);
    /* decipherOnly (8) => 03 03 07 00 80 */
    mc_der_w_init(&w, buf, sizeof buf);
    mc_der_put_named_bits(&w, 1u << 8, 9);
    const uint8_t want2[] = {0x03, 0x03, 0x07, 0x00, 0x80};
    assert_memory_equal(buf, want2, sizeof want2);
}

static void test_time(void **state)
{
    (void)state;
    uint8_t buf[32];
    mc_der_w w;
    mc_der_w_init(&w, buf, sizeof buf);
    mc_der_put_time(&w, 1795392000); /* 2026-11-23T00:00:00Z */
    assert_int_equal(buf[0], MC_DER_UTCTIME);
    assert_memory_equal(buf + 2, "261123000000Z", 13);
    mc_der_cur c = mc_der_cur_make(buf, w.len);
    mc_der_tlv t;
    int64_t back;
    assert_int_equal(mc_der_next(&c, &t), MC_OK);
    assert_int_equal(mc_der_time(&t, &back), MC_OK);
    assert_int_equal(back, 1795392000);
    /* 2050 and later: GeneralizedTime (RFC 5280 4.1.2.5) */
    mc_der_w_init(&w, buf, sizeof buf);
    mc_der_put_time(&w, 2524608000); /* 2050-01-01 */
    assert_int_equal(buf[0], MC_DER_GENERALIZEDTIME);
    assert_memory_equal(buf + 2, "20500101000000Z", 15);
    assert_int_equal(w.err, MC_OK);
    /* before 1950 too, and the last second GeneralizedTime can hold */
    mc_der_w_init(&w, buf, sizeof buf);
    mc_der_put_time(&w, -631152001); /* 1949-12-31T23:59:59Z */
    assert_int_equal(buf[0], MC_DER_GENERALIZEDTIME);
    assert_memory_equal(buf + 2, "19491231235959Z", 15);
    mc_der_w_init(&w, buf, sizeof buf);
    mc_der_put_time(&w, 253402300799); /* 9999-12-31T23:59:59Z */
    assert_memory_equal(buf + 2, "99991231235959Z", 15);
    assert_int_equal(w.err, MC_OK);
    /* year 10000 has no four-digit form: the writer fails instead of writing a wrong time */
    mc_der_w_init(&w, buf, sizeof buf);
    mc_der_put_time(&w, 253402300800);
    assert_int_equal(w.err, MC_ERR_INVALID);
    /* Feb 30 is refused */
    const uint8_t bad[] = {0x17, 0x0d, '2', '6', '0', '2', '3', '0',
                           '0',  '0',  '0', '0', '0', '0', 'Z'};
    c = mc_der_cur_make(bad, sizeof bad);
    assert_int_equal(mc_der_next(&c, &t), MC_OK);
    assert_int_not_equal(mc_der_time(&t, &back), MC_OK);
}

static void test_oid(void **state)
{
    (void)state;
    uint8_t oid[32];
    size_t n = mc_der_oid_encode("2.23.140.1.5.1.3", oid, sizeof oid);
    const uint8_t want[] = {0x67, 0x81, 0x0c, 0x01, 0x05, 0x01, 0x03};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(oid, want, n);
    char s[64];
    assert_string_equal(mc_der_oid_str(oid, n, s, sizeof s), "2.23.140.1.5.1.3");
    assert_int_equal(mc_der_oid_encode("3.1", oid, sizeof oid), 0);
    assert_int_equal(mc_der_oid_encode("1.2.x", oid, sizeof oid), 0);
}

static void test_alg_table(void **state)
{
    (void)state;
    mc_bytes b = mc_keytype_algid(MC_KEY_P256);
    assert_int_equal(mc_keytype_from_algid(b.p, b.len), MC_KEY_P256);
    /* SBR 7.1.3.1: RSA without the NULL parameter is not an allowed encoding */
    const uint8_t rsa_nonull[] = {0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48,
                                  0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    assert_int_equal(mc_keytype_from_algid(rsa_nonull, sizeof rsa_nonull), MC_KEY_NONE);
    assert_int_equal(mc_sigalg_from_name("ecdsa-sha384"), MC_SIG_ECDSA_SHA384);
    b = mc_sigalg_algid(MC_SIG_RSA_PSS_SHA256);
    assert_int_equal(b.len, 0x43);
    assert_int_equal(mc_sigalg_from_algid(b.p, b.len), MC_SIG_RSA_PSS_SHA256);
}

/* Values past 16 MiB (a CRL of hundreds of thousands of entries) get a 4-octet length; small
 * ones still the minimal encoding; the reader takes both back. */
static void test_large_values(void **state)
{
    (void)state;
    const size_t big = (16u << 20) + 5;
    uint8_t *buf = malloc(big + 64), *payload = calloc(1, big);
    assert_non_null(buf);
    assert_non_null(payload);
    payload[big - 1] = 0xab;
    mc_der_w w;
    mc_der_w_init(&w, buf, big + 64);
    size_t m = mc_der_begin_large(&w, MC_DER_SEQUENCE);
    mc_der_put(&w, MC_DER_OCTETSTRING, payload, big);
    mc_der_end_large(&w, m);
    assert_int_equal(w.err, MC_OK);
    /* SEQUENCE 84 LL LL LL LL { OCTET STRING 84 LL LL LL LL ... } */
    assert_int_equal(buf[0], 0x30);
    assert_int_equal(buf[1], 0x84);
    assert_int_equal(w.len, big + 12);
    mc_der_cur c = mc_der_cur_make(buf, w.len);
    mc_der_tlv seq, os;
    assert_int_equal(mc_der_expect(&c, MC_DER_SEQUENCE, &seq), MC_OK);
    mc_der_cur in = mc_der_cur_in(&seq);
    assert_int_equal(mc_der_expect(&in, MC_DER_OCTETSTRING, &os), MC_OK);
    assert_int_equal(os.len, big);
    assert_int_equal(os.val[big - 1], 0xab);
    /* small: 30 03 02 01 05, as mc_der_begin would give */
    mc_der_w_init(&w, buf, 64);
    m = mc_der_begin_large(&w, MC_DER_SEQUENCE);
    mc_der_put_small_uint(&w, 5);
    mc_der_end_large(&w, m);
    static const uint8_t want[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    assert_int_equal(w.len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    /* mc_der_begin stops at 16 MiB (3-octet lengths) */
    mc_der_w_init(&w, buf, big + 64);
    m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put(&w, MC_DER_OCTETSTRING, payload, big);
    mc_der_end(&w, m);
    assert_int_equal(w.err, MC_ERR_NOMEM);
    free(buf);
    free(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_nested),
        cmocka_unit_test(test_reject_non_der),
        cmocka_unit_test(test_uint_padding),
        cmocka_unit_test(test_named_bits),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_oid),
        cmocka_unit_test(test_alg_table),
        cmocka_unit_test(test_large_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for results: pack and decode round trips for each status, the checks mc_result_pack
 * makes before writing, and the strictness of mc_result_decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/result.h"

#include <string.h>

/* Packs r, unpacks the bytes and decodes them into *out (up must be destroyed by the caller). */
static mc_err roundtrip(const mc_result *r, msgpack_sbuffer *sb, msgpack_unpacked *up,
                        mc_result *out, mc_errdetail *err)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_unpacked_init(up);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    mc_err e = mc_result_pack(&pk, r);
    if (e)
        return e;
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(up, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb->size); /* exactly one object */
    return mc_result_decode(&up->data, out, err);
}

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->via.str.size == strlen(key) && !memcmp(k->via.str.ptr, key, k->via.str.size))
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static void test_issued(void **state)
{
    (void)state;
    const uint8_t serial[] = {0x7f, 0x00, 0xab, 0xcd, 0xef, 0x01};
    const uint8_t cert[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    mc_result r = {.order_id = "order-1",
                   .order_id_len = 7,
                   .seq = 4294967296ull,
                   .status = MC_STATUS_ISSUED,
                   .serial = serial,
                   .serial_len = sizeof serial,
                   .cert = cert,
                   .cert_len = sizeof cert,
                   .lint_version = "lints-2025.07",
                   .warnings = "w_one,w_two"};
    msgpack_sbuffer sb;
    msgpack_unpacked up;
    mc_result d;
    mc_errdetail err;
    assert_int_equal(roundtrip(&r, &sb, &up, &d, &err), MC_OK);
    assert_int_equal(d.status, MC_STATUS_ISSUED);
    assert_int_equal(d.order_id_len, 7);
    assert_memory_equal(d.order_id, "order-1", 7);
    assert_int_equal(d.seq, 4294967296ull);
    assert_int_equal(d.serial_len, sizeof serial);
    assert_memory_equal(d.serial, serial, sizeof serial);
    assert_int_equal(d.cert_len, sizeof cert);
    assert_memory_equal(d.cert, cert, sizeof cert);
    assert_string_equal(d.lint_version, "lints-2025.07");
    assert_string_equal(d.warnings, "w_one,w_two");
    /* On the wire: the serial is lower-case hex, status a str, exactly 7 keys. */
    assert_int_equal(up.data.via.map.size, 7);
    const msgpack_object *s = get(&up.data, "serial");
    assert_non_null(s);
    assert_int_equal(s->type, MSGPACK_OBJECT_STR);
    assert_int_equal(s->via.str.size, 12);
    assert_memory_equal(s->via.str.ptr, "7f00abcdef01", 12);
    assert_int_equal(get(&up.data, "certificate")->type, MSGPACK_OBJECT_BIN);
    assert_null(get(&up.data, "error"));
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);

    /* No warnings: packed as an empty str. */
    r.warnings = NULL;
    assert_int_equal(roundtrip(&r, &sb, &up, &d, &err), MC_OK);
    assert_string_equal(d.warnings, "");
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static void test_rejected_and_failed(void **state)
{
    (void)state;
    for (int s = MC_STATUS_REJECTED; s <= MC_STATUS_FAILED; s++) {
        mc_result r = {.order_id = "o-2", .order_id_len = 3, .seq = 0, .status = (mc_status)s};
        if (s == MC_STATUS_REJECTED)
            mc_err_set(&r.error, MC_ERR_INVALID, "mailboxes[1].address", "SBR 1.6.1",
                       "local part is %d octets, the limit is 64", 65);
        else
            mc_err_set(&r.error, MC_ERR_HSM, NULL, NULL, "C_Sign: CKR_DEVICE_ERROR");
        msgpack_sbuffer sb;
        msgpack_unpacked up;
        mc_result d;
        mc_errdetail err;
        assert_int_equal(roundtrip(&r, &sb, &up, &d, &err), MC_OK);
        assert_int_equal(d.status, s);
        assert_memory_equal(d.order_id, "o-2", 3);
        assert_int_equal(d.seq, 0);
        assert_int_equal(d.error.code, r.error.code);
        assert_string_equal(d.error.field, r.error.field);
        assert_string_equal(d.error.rule, r.error.rule);
        assert_string_equal(d.error.message, r.error.message);
        assert_null(d.cert);
        assert_null(d.serial);
        assert_int_equal(up.data.via.map.size, 4);
        const msgpack_object *e = get(&up.data, "error");
        assert_non_null(e);
        assert_int_equal(e->type, MSGPACK_OBJECT_MAP);
        const msgpack_object *code = get(e, "code");
        const char *want = s == MC_STATUS_REJECTED ? "invalid" : "hsm";
        assert_int_equal(code->via.str.size, strlen(want));
        assert_memory_equal(code->via.str.ptr, want, strlen(want));
        const msgpack_object *st = get(&up.data, "status");
        assert_memory_equal(st->via.str.ptr, mc_status_name((mc_status)s), st->via.str.size);
        msgpack_unpacked_destroy(&up);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_every_code_roundtrips(void **state)
{
    (void)state;
    for (int c = MC_ERR_NOMEM; c <= MC_ERR_INTERNAL; c++) {
        mc_result r = {.status = MC_STATUS_FAILED}; /* no order id: packed as "" */
        mc_err_set(&r.error, (mc_err)c, "f", "r", "m");
        msgpack_sbuffer sb;
        msgpack_unpacked up;
        mc_result d;
        assert_int_equal(roundtrip(&r, &sb, &up, &d, NULL), MC_OK);
        assert_int_equal(d.error.code, c);
        assert_int_equal(d.order_id_len, 0);
        msgpack_unpacked_destroy(&up);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_pack_refuses_incomplete(void **state)
{
    (void)state;
    const uint8_t serial[21] = {1};
    const uint8_t cert[] = {0x30, 0x00};
    char longv[MC_RESULT_LINT_VERSION_MAX + 1];
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    mc_result good = {.order_id = "x",
                      .order_id_len = 1,
                      .status = MC_STATUS_ISSUED,
                      .serial = serial,
                      .serial_len = 20,
                      .cert = cert,
                      .cert_len = sizeof cert,
                      .lint_version = "v1"};
    mc_result bad[7];
    for (int i = 0; i < 7; i++)
        bad[i] = good;
    bad[0].serial = NULL;
    bad[1].serial_len = 21; /* RFC 5280 4.1.2.2: at most 20 octets */
    bad[2].cert = NULL;
    bad[3].lint_version = NULL;
    bad[4].lint_version = longv;
    bad[5].status = (mc_status)0;
    bad[6].status = MC_STATUS_REJECTED; /* error.code is MC_OK */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(mc_result_pack(&pk, &bad[i]), MC_ERR_INTERNAL);
        assert_int_equal(sb.size, 0); /* nothing written */
    }
    assert_int_equal(mc_result_pack(&pk, &good), MC_OK);
    assert_true(sb.size > 0);
    msgpack_sbuffer_destroy(&sb);
}

/* Packs a hand-made map and decodes it. */
static mc_err decode_raw(void (*build)(msgpack_packer *), mc_errdetail *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    build(&pk);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    mc_result r;
    mc_err e = mc_result_decode(&up.data, &r, err);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return e;
}

static void kv(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
    msgpack_pack_str_with_body(pk, v, strlen(v));
}

static void head(msgpack_packer *pk, int n, const char *status)
{
    msgpack_pack_map(pk, (size_t)n);
    kv(pk, "id", "o");
    msgpack_pack_str_with_body(pk, "seq", 3);
    msgpack_pack_uint64(pk, 9);
    kv(pk, "status", status);
}

static void error_map(msgpack_packer *pk, const char *code)
{
    msgpack_pack_str_with_body(pk, "error", 5);
    msgpack_pack_map(pk, 4);
    kv(pk, "code", code);
    kv(pk, "field", "f");
    kv(pk, "rule", "r");
    kv(pk, "message", "m");
}

static void b_ok_rejected(msgpack_packer *pk)
{
    head(pk, 4, "rejected");
    error_map(pk, "csr");
}
static void b_unknown_key(msgpack_packer *pk)
{
    head(pk, 5, "rejected");
    error_map(pk, "csr");
    kv(pk, "extra", "1");
}
static void b_missing_error(msgpack_packer *pk)
{
    head(pk, 3, "failed");
}
static void b_error_on_issued(msgpack_packer *pk)
{
    head(pk, 4, "issued");
    error_map(pk, "csr");
}
static void b_bad_code(msgpack_packer *pk)
{
    head(pk, 4, "rejected");
    error_map(pk, "no-such-code");
}
static void b_ok_code(msgpack_packer *pk)
{
    head(pk, 4, "rejected");
    error_map(pk, "ok"); /* a rejection cannot carry "ok" */
}
static void b_bad_status(msgpack_packer *pk)
{
    head(pk, 3, "done");
}
static void b_dup_key(msgpack_packer *pk)
{
    head(pk, 5, "rejected");
    error_map(pk, "csr");
    kv(pk, "id", "again");
}
static void issued_rest(msgpack_packer *pk, const char *serial)
{
    kv(pk, "serial", serial);
    msgpack_pack_str_with_body(pk, "certificate", 11);
    msgpack_pack_bin_with_body(pk, "\x30\x00", 2);
    kv(pk, "lint_version", "v");
    kv(pk, "warnings", "");
}
static void b_ok_issued(msgpack_packer *pk)
{
    head(pk, 7, "issued");
    issued_rest(pk, "00ff");
}
static void b_upper_serial(msgpack_packer *pk)
{
    head(pk, 7, "issued");
    issued_rest(pk, "00FF");
}
static void b_odd_serial(msgpack_packer *pk)
{
    head(pk, 7, "issued");
    issued_rest(pk, "0ff");
}

static void test_decode_strict(void **state)
{
    (void)state;
    mc_errdetail err;
    assert_int_equal(decode_raw(b_ok_rejected, &err), MC_OK);
    assert_int_equal(decode_raw(b_ok_issued, &err), MC_OK);
    assert_int_equal(decode_raw(b_unknown_key, &err), MC_ERR_INVALID);
    assert_non_null(strstr(err.message, "extra"));
    assert_int_equal(decode_raw(b_missing_error, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "error");
    assert_int_equal(decode_raw(b_error_on_issued, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "error");
    assert_int_equal(decode_raw(b_bad_code, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "error.code");
    assert_int_equal(decode_raw(b_ok_code, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "error.code");
    assert_int_equal(decode_raw(b_bad_status, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "status");
    assert_int_equal(decode_raw(b_dup_key, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "id");
    assert_int_equal(decode_raw(b_upper_serial, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "serial");
    assert_int_equal(decode_raw(b_odd_serial, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "serial");
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(mc_status_name(MC_STATUS_ISSUED), "issued");
    assert_string_equal(mc_status_name(MC_STATUS_REJECTED), "rejected");
    assert_string_equal(mc_status_name(MC_STATUS_FAILED), "failed");
    assert_string_equal(mc_status_name((mc_status)0), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issued),
        cmocka_unit_test(test_rejected_and_failed),
        cmocka_unit_test(test_every_code_roundtrips),
        cmocka_unit_test(test_pack_refuses_incomplete),
        cmocka_unit_test(test_decode_strict),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
